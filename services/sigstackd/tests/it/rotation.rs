//! Key and trust lifecycle commands an operator runs on day 2.

use crate::client::p;
use crate::keyless::run;
use crate::support::*;
use std::process::Command;

fn sigstackd(args: &[&str]) -> (bool, String) {
    run(Command::new(env!("CARGO_BIN_EXE_sigstackd")).args(args))
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
    let keys = etc.join("keys");
    let (root_key, chain) = (keys.join("ca-root.pem"), keys.join("ca-chain.pem"));
    let (new_key, new_chain) = (dir.join("inter-2.pem"), dir.join("chain-2.pem"));
    let args = |root: &std::path::Path| {
        vec![
            "ca".to_string(),
            "new-intermediate".into(),
            "--root-key".into(),
            p(root).into(),
            "--chain".into(),
            p(&chain).into(),
            "--out-key".into(),
            p(&new_key).into(),
            "--out-chain".into(),
            p(&new_chain).into(),
            "--days".into(),
            "100000".into(),
            "--common-name".into(),
            "sigstack intermediate 2".into(),
        ]
    };
    // another key than the root's: refused, nothing written
    let (ok, out) = sigstackd(&as_strs(&args(&keys.join("tsa-root.pem"))));
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
}
