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

/// A tiled log handed over to its successor (a new log at a new URL with its own key,
/// like an upstream shard): the successor published first (`trust export
/// --add-tlog-v2`), then started, then named in the signing config with the old log
/// end-dated and kept. Bundles of the old log still verify; new ones go to the
/// successor.
pub async fn a_tiled_log_successor_takes_over() {
    let dir = temp_dir("v2-successor");
    let data = dir.join("stack");
    let (_stack, stack) = crate::keyless::dev_stack(&data, None);
    let s = |ptr: &str| stack_str(&stack, ptr);
    let token = crate::stack::dev_token(&data);
    let signer = crate::client::Sigstack::new(&dir.join("signer"));
    let o = signer.run(&[
        "initialize",
        "--mirror",
        &s("/services/tuf/url"),
        "--root",
        &s("/services/tuf/root"),
    ]);
    assert!(o.ok(), "{o}");
    let sign = |name: &str, extra: &[&str]| {
        let artifact = dir.join(format!("{name}.txt"));
        std::fs::write(&artifact, format!("{name}\n")).expect("w");
        let bundle = dir.join(format!("{name}.sigstore.json"));
        let mut args = extra.to_vec();
        args.extend(["sign-blob", "--yes", "--rekor-version", "2", "--bundle"]);
        args.extend([p(&bundle), p(&artifact)]);
        let o = signer.run_env(&args, &[("SIGSTORE_ID_TOKEN", &token)]);
        assert!(o.ok(), "signing {name}: {o}");
        (artifact, bundle)
    };
    let before = sign("before", &[]);

    // the successor: its key, its URL, its own database
    let next_key = dir.join("log-v2-next.pem");
    let next_pub = dir.join("log-v2-next.pub.pem");
    let key = crate::log_v2::openssl_ed25519(&next_key);
    std::fs::write(&next_pub, key.to_pem()).expect("w");
    let next_db = format!("sqlite://{}", dir.join("next.db").display());
    let (config, next_url) = crate::log_v2::LogV2::write_config(&dir, &next_db, &next_key, false);
    let export_args = |out: &std::path::Path, extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = [
            "trust",
            "export",
            "--ca-url",
            &s("/services/ca/url"),
            "--tlog-url",
            &s("/services/log/url"),
            "--ctlog-url",
            &s("/services/ctlog/url"),
            "--tsa-url",
            &s("/services/tsa/url"),
            "--oidc-url",
            &s("/services/oidc/url"),
            "--out",
            p(out),
        ]
        .into_iter()
        .map(String::from)
        .collect();
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    };
    let export = |out: &std::path::Path, extra: &[&str]| {
        let args = export_args(out, extra);
        let (ok, text) = sigstackd(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(ok, "trust export {extra:?}: {text}");
        let json = |f: &str| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(out.join(f)).expect("r")).expect("json")
        };
        (json("trusted_root.json"), json("signing_config.v0.2.json"))
    };
    let v2_logs = |root: &serde_json::Value| -> Vec<(String, bool)> {
        root["tlogs"]
            .as_array()
            .expect("tlogs")
            .iter()
            .filter(|l| l["publicKey"]["keyDetails"] == "PKIX_ED25519")
            .map(|l| {
                (
                    l["baseUrl"].as_str().unwrap_or_default().to_string(),
                    l["publicKey"]["validFor"]["end"].is_string(),
                )
            })
            .collect()
    };
    let v2_in = |config: &serde_json::Value| -> Vec<String> {
        config["rekorTlogUrls"]
            .as_array()
            .expect("rekorTlogUrls")
            .iter()
            .filter(|u| u["majorApiVersion"] == 2)
            .map(|u| u["url"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let (old_url, old_pub) = (s("/services/log_v2/url"), s("/services/log_v2/public_key"));
    // 1. published first: in the trusted root, not yet in the signing config
    let first = dir.join("trust-1");
    let (root, config_1) = export(
        &first,
        &[
            "--tlog-v2-url",
            &old_url,
            "--tlog-v2-key",
            &old_pub,
            "--add-tlog-v2",
            &format!("{next_url}={}", p(&next_pub)),
            "--previous",
            &s("/trusted_root"),
        ],
    );
    let mut logs = v2_logs(&root);
    logs.sort();
    let mut want = vec![(old_url.clone(), false), (next_url.clone(), false)];
    want.sort();
    assert_eq!(logs, want);
    assert_eq!(v2_in(&config_1), vec![old_url.clone()]);
    // the running log's own URL is not a successor
    let args = export_args(
        &dir.join("refused"),
        &[
            "--tlog-v2-url",
            &old_url,
            "--tlog-v2-key",
            &old_pub,
            "--add-tlog-v2",
            &format!("{old_url}={}", p(&next_pub)),
        ],
    );
    let (ok, out) = sigstackd(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!ok && out.contains("a URL of its own"), "{out}");

    // 2. the successor runs; the signing config names it; the old log is end-dated
    let _next = crate::log_v2::LogV2::start(&config, &next_url).expect("the successor starts");
    let second = dir.join("trust-2");
    let (root, config_2) = export(
        &second,
        &[
            "--tlog-v2-url",
            &next_url,
            "--tlog-v2-key",
            p(&next_pub),
            "--previous",
            p(&first.join("trusted_root.json")),
        ],
    );
    let mut logs = v2_logs(&root);
    logs.sort();
    let mut want = vec![(old_url.clone(), true), (next_url.clone(), false)];
    want.sort();
    assert_eq!(logs, want, "the old log kept, its window ended");
    assert_eq!(v2_in(&config_2), vec![next_url.clone()]);

    // 3. signing with the new trust files goes to the successor; both bundles verify
    let trust_config = second.join("trust_config.json");
    let after = sign("after", &["--trust-config", p(&trust_config)]);
    let (_, checkpoint) = get_text(&format!("{next_url}/checkpoint")).expect("checkpoint");
    assert_eq!(
        checkpoint.lines().nth(1),
        Some("1"),
        "the successor holds the new entry: {checkpoint}"
    );
    for (artifact, bundle) in [&before, &after] {
        let o = signer.run(&[
            "--offline",
            "--trusted-root",
            p(&second.join("trusted_root.json")),
            "verify-blob",
            "--bundle",
            p(bundle),
            "--certificate-identity",
            &s("/services/oidc/email"),
            "--certificate-oidc-issuer",
            &s("/services/oidc/url"),
            p(artifact),
        ]);
        assert!(
            o.ok(),
            "{} with the new trusted root: {o}",
            bundle.display()
        );
    }
}
