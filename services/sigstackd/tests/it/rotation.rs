//! Key and trust lifecycle commands an operator runs on day 2.

use crate::client::p;
use crate::keyless::run;
use crate::support::*;
use std::process::Command;

fn sigstackd(args: &[&str]) -> (bool, String) {
    run(Command::new(env!("CARGO_BIN_EXE_sigstackd")).args(args))
}

/// The arguments of a command making a new certificate under an offline root (`ca
/// new-intermediate`, `tsa new-certificate`).
pub(crate) fn reissue_args(
    command: [&str; 2],
    root: &std::path::Path,
    chain: &std::path::Path,
    (out_key, out_chain): (&std::path::Path, &std::path::Path),
    extra: &[&str],
) -> Vec<String> {
    let mut v: Vec<String> = command.iter().map(|s| s.to_string()).collect();
    for (flag, path) in [
        ("--root-key", root),
        ("--chain", chain),
        ("--out-key", out_key),
        ("--out-chain", out_chain),
    ] {
        v.push(flag.into());
        v.push(p(path).into());
    }
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn openssl(args: &[&str]) -> String {
    let (ok, out) = run(Command::new("openssl").args(args));
    assert!(ok, "openssl {args:?}: {out}");
    out
}

/// `sigstackd ca new-intermediate` makes an issuing certificate under the existing root,
/// with the CA profile (CA:TRUE, path length 0, codeSigning) and a validity inside the
/// root's; it refuses another key than the root's and never overwrites a key.
pub fn ca_new_intermediate() {
    let dir = temp_dir("rotate-ca");
    let etc = dir.join("etc");
    let db = format!("sqlite://{}", dir.join("db.sqlite").display());
    let (ok, out) = sigstackd(&["init", "--dir", p(&etc), "--database-url", &db]);
    assert!(ok, "init: {out}");
    let offline = etc.join("offline");
    let (root_key, chain) = (offline.join("ca-root.pem"), etc.join("public/ca-chain.pem"));
    let (new_key, new_chain) = (dir.join("inter-2.pem"), dir.join("chain-2.pem"));
    let args = |root: &std::path::Path| {
        reissue_args(
            ["ca", "new-intermediate"],
            root,
            &chain,
            (&new_key, &new_chain),
            &[
                "--days",
                "100000",
                "--common-name",
                "sigstack intermediate 2",
            ],
        )
    };
    // another key than the root's: refused, nothing written
    let (ok, out) = sigstackd(&as_strs(&args(&offline.join("tsa-root.pem"))));
    assert!(
        !ok && out.contains("not the key of the chain's root"),
        "{out}"
    );
    assert!(!new_key.exists());
    let (ok, out) = sigstackd(&as_strs(&args(&root_key)));
    assert!(ok, "{out}");
    // the profile, as OpenSSL reads it
    let pems = std::fs::read_to_string(&new_chain).expect("chain");
    let certs: Vec<&str> = pems
        .split_inclusive("-----END CERTIFICATE-----\n")
        .collect();
    assert_eq!(certs.len(), 2);
    std::fs::write(dir.join("inter.pem"), certs[0]).expect("w");
    std::fs::write(dir.join("root.pem"), certs[1]).expect("w");
    let text = openssl(&["x509", "-in", p(&dir.join("inter.pem")), "-noout", "-text"]);
    assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
    assert!(text.contains("Code Signing"), "{text}");
    assert!(text.contains("sigstack intermediate 2"), "{text}");
    let v = openssl(&[
        "verify",
        "-CAfile",
        p(&dir.join("root.pem")),
        p(&dir.join("inter.pem")),
    ]);
    assert!(v.contains("OK"), "{v}");
    // inside the root's validity, though 100,000 days were asked for
    let end = |f: &str| openssl(&["x509", "-in", f, "-noout", "-enddate"]);
    let (inter_end, root_end) = (
        end(p(&dir.join("inter.pem"))),
        end(p(&dir.join("root.pem"))),
    );
    let parse = |s: &str| {
        let d = s.trim().trim_start_matches("notAfter=").to_string();
        let (ok, out) = run(Command::new("date").args(["-u", "-d", &d, "+%s"]));
        assert!(ok, "{out}");
        out.trim().parse::<i64>().expect("seconds")
    };
    assert!(
        parse(&inter_end) <= parse(&root_end),
        "{inter_end} {root_end}"
    );
    // the key is private and never overwritten
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&new_key)
            .expect("key")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    let (ok, out) = sigstackd(&as_strs(&args(&root_key)));
    assert!(!ok && out.contains("exists"), "{out}");

    // an intermediate that has expired: the CA starts, says so in its log, and is not
    // ready, naming the command that renews it
    let (old_key, old_chain) = (dir.join("expired.pem"), dir.join("expired-chain.pem"));
    let (ok, out) = sigstackd(&[
        "ca",
        "new-intermediate",
        "--root-key",
        p(&root_key),
        "--chain",
        p(&chain),
        "--out-key",
        p(&old_key),
        "--out-chain",
        p(&old_chain),
        "--days",
        "0",
    ]);
    assert!(ok, "{out}");
    let port = free_port();
    let log = std::fs::File::create(dir.join("ca.log")).expect("log");
    let child = Command::new(env!("CARGO_BIN_EXE_sigstackd"))
        .args(["ca", "--config", p(&etc.join("ca.toml"))])
        .env("SIGSTACK_CA_LISTEN", format!("127.0.0.1:{port}"))
        .env("SIGSTACK_CA_SIGNING_KEY", &old_key)
        .env("SIGSTACK_CA_CA_CHAIN", &old_chain)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn the CA");
    let _ca = crate::keyless::Killed::new(child);
    let ready = format!("http://127.0.0.1:{port}/readyz");
    let mut answer = None;
    for _ in 0..100 {
        if let Ok((code, body)) = get_text(&ready) {
            answer = Some((code, body));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (code, body) = answer.unwrap_or_else(|| {
        panic!(
            "the CA did not answer: {}",
            std::fs::read_to_string(dir.join("ca.log")).unwrap_or_default()
        )
    });
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("has expired") && body.contains("sigstackd ca new-intermediate"),
        "{body}"
    );
    let log = std::fs::read_to_string(dir.join("ca.log")).expect("log");
    assert!(
        log.contains("has expired") && log.contains("sigstack intermediate"),
        "{log}"
    );
}

/// A blocking GET: the status and body, or an error while nothing listens.
fn get_text(url: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut s = std::net::TcpStream::connect(host)?;
    s.write_all(
        format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let code = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

/// `sigstackd tsa new-certificate`: a new TSA certificate under the existing root with
/// the profile clients check (not a CA, one critical EKU timeStamping), as OpenSSL reads
/// it; another key than the root's is refused.
pub fn tsa_new_certificate() {
    let dir = temp_dir("rotate-tsa");
    let etc = dir.join("etc");
    let db = format!("sqlite://{}", dir.join("db.sqlite").display());
    let (ok, out) = sigstackd(&["init", "--dir", p(&etc), "--database-url", &db]);
    assert!(ok, "init: {out}");
    let offline = etc.join("offline");
    let (new_key, new_chain) = (dir.join("tsa-2.pem"), dir.join("tsa-chain-2.pem"));
    let args = |root: &std::path::Path| {
        reissue_args(
            ["tsa", "new-certificate"],
            root,
            &etc.join("public/tsa-chain.pem"),
            (&new_key, &new_chain),
            &[],
        )
    };
    let (ok, out) = sigstackd(&as_strs(&args(&offline.join("ca-root.pem"))));
    assert!(
        !ok && out.contains("not the key of the chain's root"),
        "{out}"
    );
    assert!(!new_key.exists());
    let (ok, out) = sigstackd(&as_strs(&args(&offline.join("tsa-root.pem"))));
    assert!(ok, "{out}");
    let pems = std::fs::read_to_string(&new_chain).expect("chain");
    let certs: Vec<&str> = pems
        .split_inclusive("-----END CERTIFICATE-----\n")
        .collect();
    assert_eq!(certs.len(), 2);
    std::fs::write(dir.join("leaf.pem"), certs[0]).expect("w");
    std::fs::write(dir.join("root.pem"), certs[1]).expect("w");
    let text = openssl(&["x509", "-in", p(&dir.join("leaf.pem")), "-noout", "-text"]);
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(
        text.contains("X509v3 Extended Key Usage: critical") && text.contains("Time Stamping"),
        "{text}"
    );
    let v = openssl(&[
        "verify",
        "-purpose",
        "timestampsign",
        "-CAfile",
        p(&dir.join("root.pem")),
        p(&dir.join("leaf.pem")),
    ]);
    assert!(v.contains("OK"), "{v}");
    // the new key signs: the TSA starts with it
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_sigstackd"))
        .args(["tsa", "--config", p(&etc.join("tsa.toml"))])
        .env("SIGSTACK_TSA_LISTEN", format!("127.0.0.1:{port}"))
        .env("SIGSTACK_TSA_SIGNING_KEY", &new_key)
        .env("SIGSTACK_TSA_CERT_CHAIN", &new_chain)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn the TSA");
    let _tsa = crate::keyless::Killed::new(child);
    let url = format!("http://127.0.0.1:{port}/api/v1/timestamp/certchain");
    let mut served = None;
    for _ in 0..100 {
        if let Ok((200, body)) = get_text(&url) {
            served = Some(body);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let served = served.expect("the TSA with its new certificate did not answer");
    assert_eq!(served.trim(), pems.trim());
}
