//! The timestamp authority (`sigstackd tsa`) against tools no one here wrote: OpenSSL's
//! `ts -verify` accepts its answers to DER and JSON requests; cosign v2 asks it for
//! timestamps (`--timestamp-server-url`, `--rfc3161-timestamp`) and `sigstack` verifies
//! them, and the reverse; cosign v3 verifies `sigstack`'s timestamped bundles through the
//! trusted root. A TSA the trusted root does not name is refused unless its chain is given,
//! and a chain outside the profile keeps `sigstackd tsa` from starting.

use crate::client::{Sigstack, p};
use crate::cosign::Cosign;
use crate::keyless::{Killed, dev_stack, run};
use crate::support::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

fn openssl(args: &[&str]) -> String {
    let (ok, out) = run(Command::new("openssl").args(args));
    assert!(ok, "openssl {args:?}: {out}");
    out
}

/// POSTs `body` to the TSA; returns the status and body.
async fn post(url: &str, ctype: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let res = http()
        .post(format!("{url}/api/v1/timestamp"))
        .header("Content-Type", ctype)
        .body(body)
        .send()
        .await
        .expect("the TSA answers");
    (
        res.status().as_u16(),
        res.bytes().await.expect("body").to_vec(),
    )
}

/// The chain file split into its certificates' PEM files (leaf, then up).
fn split_chain(chain: &Path, dir: &Path) -> Vec<std::path::PathBuf> {
    let text = std::fs::read_to_string(chain).expect("chain");
    text.split_inclusive("-----END CERTIFICATE-----\n")
        .filter(|c| c.contains("BEGIN"))
        .enumerate()
        .map(|(i, c)| {
            let f = dir.join(format!("chain-{i}.pem"));
            std::fs::write(&f, c).expect("w");
            f
        })
        .collect()
}

/// An openssl-made TSA: a root and a P-256 leaf; `eku` is the leaf's extendedKeyUsage line.
pub(crate) fn openssl_tsa(dir: &Path, eku: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    std::fs::create_dir_all(dir).expect("dir");
    let f = |n: &str| dir.join(n).display().to_string();
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        &f("root.key"),
    ]);
    openssl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        &f("root.key"),
        "-subj",
        "/O=elsewhere/CN=other TSA root",
        "-days",
        "30",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
        "-out",
        &f("root.pem"),
    ]);
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        &f("tsa.sec1"),
    ]);
    openssl(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-in",
        &f("tsa.sec1"),
        "-out",
        &f("tsa.key"),
    ]);
    openssl(&[
        "req",
        "-new",
        "-key",
        &f("tsa.key"),
        "-subj",
        "/O=elsewhere/CN=other TSA",
        "-out",
        &f("tsa.csr"),
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        format!("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n{eku}\n"),
    )
    .expect("w");
    openssl(&[
        "x509",
        "-req",
        "-in",
        &f("tsa.csr"),
        "-CA",
        &f("root.pem"),
        "-CAkey",
        &f("root.key"),
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        &f("ext.cnf"),
        "-out",
        &f("tsa.pem"),
    ]);
    let chain = dir.join("chain.pem");
    std::fs::write(
        &chain,
        std::fs::read_to_string(dir.join("tsa.pem")).expect("leaf")
            + &std::fs::read_to_string(dir.join("root.pem")).expect("root"),
    )
    .expect("w");
    (dir.join("tsa.key"), chain)
}

/// `sigstackd tsa` with this key and chain on a free port, configured by environment.
pub(crate) fn start_tsa(key: &Path, chain: &Path) -> (Option<Killed>, String, String) {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sigstackd"))
        .arg("tsa")
        .env("SIGSTACK_TSA_LISTEN", format!("127.0.0.1:{port}"))
        .env("SIGSTACK_TSA_SIGNING_KEY", key)
        .env("SIGSTACK_TSA_CERT_CHAIN", chain)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if let Ok(Some(_)) = child.try_wait() {
            let mut err = String::new();
            use std::io::Read;
            let _ = child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut err);
            return (None, url, err);
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (Some(Killed::new(child)), url, String::new());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("sigstackd tsa did not come up");
}

pub async fn timestamp_authority() {
    let dir = temp_dir("tsa");
    let (_stack, stack) = dev_stack(&dir.join("stack"), None);
    let s = |ptr: &str| crate::support::stack_str(&stack, ptr);
    let tsa = s("/services/tsa/url");
    let chain = std::path::PathBuf::from(s("/services/tsa/chain"));
    let certs = split_chain(&chain, &dir);
    assert_eq!(certs.len(), 2, "leaf and root");
    let f = |n: &str| dir.join(n);
    let ours_json = f("ours.json").display().to_string();
    let ours_ts = f("ours.ts.json").display().to_string();
    let v2_bundle = f("v2.bundle").display().to_string();
    let v2_ts = f("v2.ts.json").display().to_string();
    let other_json = f("other.json").display().to_string();
    let data = f("data.txt");
    std::fs::write(&data, b"timestamped\n").expect("w");

    // OpenSSL: a DER query with certReq and a nonce, then the JSON form
    openssl(&[
        "ts",
        "-query",
        "-data",
        p(&data),
        "-sha256",
        "-cert",
        "-out",
        p(&f("q.tsq")),
    ]);
    let (status, body) = post(
        &tsa,
        "application/timestamp-query",
        std::fs::read(f("q.tsq")).expect("q"),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    std::fs::write(f("r.tsr"), &body).expect("w");
    let out = openssl(&[
        "ts",
        "-verify",
        "-queryfile",
        p(&f("q.tsq")),
        "-in",
        p(&f("r.tsr")),
        "-CAfile",
        p(&certs[1]),
        "-untrusted",
        p(&certs[0]),
    ]);
    assert!(out.contains("Verification: OK"), "{out}");
    let text = openssl(&["ts", "-reply", "-in", p(&f("r.tsr")), "-text"]);
    assert!(text.contains("Policy OID: 1.3.6.1.4.1.57264.2"), "{text}");
    assert!(text.contains("Accuracy: 0x01 seconds"), "{text}");
    let digest = openssl(&[
        "dgst",
        "-sha256",
        "-binary",
        "-out",
        p(&f("d.bin")),
        p(&data),
    ]);
    let _ = digest;
    let b64 = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        std::fs::read(f("d.bin")).expect("digest"),
    );
    let (status, body) = post(
        &tsa,
        "application/json; charset=utf-8",
        format!(r#"{{"artifactHash":"{b64}","hashAlgorithm":"sha256","certificates":true,"nonce":123456789}}"#)
            .into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    std::fs::write(f("j.tsr"), &body).expect("w");
    let out = openssl(&[
        "ts",
        "-verify",
        "-data",
        p(&data),
        "-in",
        p(&f("j.tsr")),
        "-CAfile",
        p(&certs[1]),
    ]);
    assert!(out.contains("Verification: OK"), "{out}");
    let text = openssl(&["ts", "-reply", "-in", p(&f("j.tsr")), "-text"]);
    assert!(
        text.contains("Nonce: 0x075BCD15"),
        "the nonce is echoed: {text}"
    );
    // refusals, each with its status
    for (ctype, body, want) in [
        (
            "application/json",
            br#"{"artifactHash":"AAAA","hashAlgorithm":"sha1"}"#.to_vec(),
            400,
        ),
        (
            "application/json",
            br#"{"artifactHash":"AAAA","hashAlgorithm":"sha256"}"#.to_vec(),
            400,
        ),
        ("application/timestamp-query", b"not DER".to_vec(), 400),
        ("text/plain", b"x".to_vec(), 415),
        ("application/timestamp-query", vec![0x30; 20 << 10], 413),
    ] {
        let (status, answer) = post(&tsa, ctype, body).await;
        assert_eq!(
            status,
            want,
            "{ctype}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    let served = http()
        .get(format!("{tsa}/api/v1/timestamp/certchain"))
        .send()
        .await
        .expect("certchain")
        .text()
        .await
        .expect("text");
    assert_eq!(served, std::fs::read_to_string(&chain).expect("chain"));
    let metrics = http()
        .get(format!("{tsa}/metrics"))
        .send()
        .await
        .expect("m")
        .text()
        .await
        .expect("t");
    assert!(
        metrics.contains("sigstack_tsa_timestamps_issued_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sigstack_tsa_requests_refused_total 4"),
        "{metrics}"
    );

    // sigstack signs through the signing config, which names the TSA: the bundle carries a
    // timestamp that sigstack and cosign v3 verify through the trusted root
    let ours = Sigstack::new(&dir.join("home"));
    let root = s("/services/tuf/root");
    let tuf = s("/services/tuf/url");
    let ok = |o: &crate::client::Out, what: &str| assert!(o.ok(), "{what}: {o}");
    ok(
        &ours.run(&["initialize", "--mirror", &tuf, "--root", &root]),
        "sigstack initialize",
    );
    let token = {
        let (ok_, t) = run(Command::new(env!("CARGO_BIN_EXE_sigstackd"))
            .args(["dev-token", "--data-dir"])
            .arg(dir.join("stack")));
        assert!(ok_, "{t}");
        t.trim().to_string()
    };
    let me = s("/services/oidc/email");
    let issuer = s("/services/oidc/url");
    let id = [
        "--certificate-identity",
        me.as_str(),
        "--certificate-oidc-issuer",
        issuer.as_str(),
    ];
    let o = ours.run(&[
        "sign-blob",
        "--yes",
        "--identity-token",
        &token,
        "--bundle",
        &ours_json,
        "--rfc3161-timestamp",
        &ours_ts,
        p(&data),
    ]);
    ok(&o, "sigstack sign-blob with the TSA");
    let bundle: Value =
        serde_json::from_slice(&std::fs::read(&ours_json).expect("b")).expect("json");
    let stamped = bundle
        .pointer(
            "/verificationMaterial/timestampVerificationData/rfc3161Timestamps/0/signedTimestamp",
        )
        .and_then(Value::as_str)
        .expect("a timestamp in the bundle")
        .to_string();
    let file: Value = serde_json::from_slice(&std::fs::read(&ours_ts).expect("ts")).expect("json");
    assert_eq!(
        file["SignedRFC3161Timestamp"].as_str(),
        Some(stamped.as_str()),
        "cosign v2's file format"
    );
    let verify = |extra: &[&str]| {
        let mut args = vec!["verify-blob", "--bundle", &ours_json];
        args.extend_from_slice(&id);
        args.extend_from_slice(extra);
        args.push(p(&data));
        ours.run(&args)
    };
    ok(&verify(&[]), "sigstack verifies its timestamped bundle");
    let v3 = Cosign::v3(&dir.join("v3"));
    ok(
        &v3.run(&["initialize", "--mirror", &tuf, "--root", &root]),
        "cosign v3 initialize",
    );
    let mut args = vec!["verify-blob", "--bundle", &ours_json];
    args.extend_from_slice(&id);
    args.extend_from_slice(&["--use-signed-timestamps", p(&data)]);
    ok(&v3.run(&args), "cosign v3 verifies sigstack's timestamp");

    // cosign v2 asks our TSA and writes the timestamp beside its old-format bundle
    let v2 = Cosign::v2(&dir.join("v2"));
    ok(
        &v2.run(&["initialize", "--mirror", &tuf, "--root", &root]),
        "cosign v2 initialize",
    );
    let endpoint = format!("{tsa}/api/v1/timestamp");
    let o = v2.run(&[
        "sign-blob",
        "--yes",
        "--identity-token",
        &token,
        "--fulcio-url",
        &s("/services/ca/url"),
        "--rekor-url",
        &s("/services/log/url"),
        "--timestamp-server-url",
        &endpoint,
        "--rfc3161-timestamp",
        &v2_ts,
        "--bundle",
        &v2_bundle,
        p(&data),
    ]);
    ok(&o, "cosign v2 sign-blob --timestamp-server-url");
    let mut args = vec![
        "verify-blob",
        "--bundle",
        &v2_bundle,
        "--rfc3161-timestamp",
        &v2_ts,
    ];
    args.extend_from_slice(&id);
    args.push(p(&data));
    ok(
        &ours.run(&args),
        "sigstack verifies cosign v2's bundle with its timestamp file",
    );
    // cosign v2 verifies an old-format bundle with its legacy trust settings (the CA
    // chain, log and CT keys from the environment) and our TSA's chain
    let mut args2 = args.clone();
    let at = args2.len() - 1;
    args2.splice(
        at..at,
        [
            "--timestamp-certificate-chain",
            p(&chain),
            "--use-signed-timestamps",
        ],
    );
    let (ca_chain, log_key, ct_key) = (
        s("/services/ca/chain"),
        s("/services/log/public_key"),
        s("/services/ctlog/public_key"),
    );
    let legacy_trust = [
        ("SIGSTORE_ROOT_FILE", ca_chain.as_str()),
        ("SIGSTORE_REKOR_PUBLIC_KEY", log_key.as_str()),
        ("SIGSTORE_CT_LOG_PUBLIC_KEY_FILE", ct_key.as_str()),
    ];
    ok(
        &v2.run_env(&args2, &legacy_trust),
        "cosign v2 verifies its own timestamp from our TSA",
    );
    // a timestamp file for another signature is refused
    let mut wrong = vec![
        "verify-blob",
        "--bundle",
        &ours_json,
        "--rfc3161-timestamp",
        &v2_ts,
    ];
    wrong.extend_from_slice(&id);
    wrong.push(p(&data));
    let o = ours.run(&wrong);
    assert_eq!(o.code, Some(1), "{o}");
    assert!(o.stderr.contains("not over this signature"), "{o}");

    // a TSA the trusted root does not name: refused, unless its chain is given
    let (key, other_chain) =
        openssl_tsa(&dir.join("other"), "extendedKeyUsage=critical,timeStamping");
    let (_other, other_url, err) = start_tsa(&key, &other_chain);
    assert!(
        err.is_empty(),
        "an openssl-made TSA chain in profile starts: {err}"
    );
    let o = ours.run(&[
        "sign-blob",
        "--yes",
        "--identity-token",
        &token,
        "--bundle",
        &other_json,
        "--timestamp-server-url",
        &format!("{other_url}/api/v1/timestamp"),
        p(&data),
    ]);
    ok(&o, "sigstack sign-blob with another TSA");
    let mut args = vec!["verify-blob", "--bundle", &other_json];
    args.extend_from_slice(&id);
    args.push(p(&data));
    let o = ours.run(&args);
    assert_eq!(o.code, Some(1), "a timestamp from an untrusted TSA: {o}");
    assert!(
        o.stderr
            .contains("not signed by a trusted timestamp authority"),
        "{o}"
    );
    let mut v3args = args.clone();
    v3args.insert(v3args.len() - 1, "--use-signed-timestamps");
    assert!(!v3.run(&v3args).ok(), "cosign v3 refuses it too");
    args.insert(args.len() - 1, "--timestamp-certificate-chain");
    args.insert(args.len() - 1, p(&other_chain));
    ok(
        &ours.run(&args),
        "with the other TSA's chain given, it verifies",
    );
    // a leaf whose timeStamping usage is not critical: the TSA does not start
    let (key, bad_chain) = openssl_tsa(&dir.join("bad"), "extendedKeyUsage=timeStamping");
    let (proc_, _, err) = start_tsa(&key, &bad_chain);
    assert!(
        proc_.is_none(),
        "sigstackd tsa started with a chain outside the profile"
    );
    assert!(err.contains("must be critical"), "{err}");
}
