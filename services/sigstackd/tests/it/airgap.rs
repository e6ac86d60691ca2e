//! Trust carried across an air gap: the TUF repository exported as files
//! (`sigstackd tuf export`), and clients that trust the copy with no service of the
//! stack reachable: sigstack from a `file://` mirror; cosign v2, v3 and sigstore-python
//! from the copy served by a plain static web server.

use crate::client::{Sigstack, p};
use crate::keyless::{dev_stack, run};
use crate::support::*;
use std::process::Command;

fn sigstackd(args: &[&str]) -> (bool, String) {
    run(Command::new(env!("CARGO_BIN_EXE_sigstackd")).args(args))
}

pub async fn a_tuf_copy_on_a_disk_serves_clients_with_the_network_off() {
    let dir = temp_dir("airgap");
    let data = dir.join("stack");
    let (stack_proc, stack) = dev_stack(&data, None);
    let s = |ptr: &str| stack_str(&stack, ptr);
    let (tuf, root) = (s("/services/tuf/url"), s("/services/tuf/root"));
    let (oidc, me) = (s("/services/oidc/url"), s("/services/oidc/email"));

    // signed online, with trust from the stack's TUF repository
    let online = Sigstack::new(&dir.join("online"));
    let o = online.run(&["initialize", "--mirror", &tuf, "--root", &root]);
    assert!(o.ok(), "{o}");
    let token = crate::stack::dev_token(&data);
    let artifact = dir.join("a.txt");
    std::fs::write(&artifact, b"signed on the connected side\n").expect("w");
    let bundle = dir.join("a.sigstore.json");
    let o = online.run_env(
        &["sign-blob", "--yes", "--bundle", p(&bundle), p(&artifact)],
        &[("SIGSTORE_ID_TOKEN", &token)],
    );
    assert!(o.ok(), "{o}");

    // the copy: every file the repository serves, byte for byte
    let copy = dir.join("usb/tuf");
    let db = format!("sqlite://{}", data.join("sigstack.db").display());
    let export = || sigstackd(&["tuf", "export", "--database-url", &db, "--out", p(&copy)]);
    let (ok, out) = export();
    assert!(ok && out.contains("export again before"), "{out}");
    let (st, served) = get_bytes(&format!("{tuf}/timestamp.json")).await;
    assert_eq!(st, 200);
    let copied = std::fs::read(copy.join("timestamp.json")).expect("timestamp.json");
    assert_eq!(copied, served, "the copy's timestamp is the one served");
    // exported again over itself: brought up to date, never back
    let (ok, out) = export();
    assert!(ok, "{out}");

    // a mirror of the repository, as another site follows an upstream (the public
    // instance, another stack): what it verified, byte for byte
    let mirrored = dir.join("mirror");
    let mirror = |from: &str, out: &std::path::Path| {
        sigstackd(&[
            "tuf",
            "mirror",
            "--from",
            from,
            "--root",
            &root,
            "--out",
            p(out),
        ])
    };
    let (ok, out) = mirror(&tuf, &mirrored);
    assert!(ok && out.contains("mirrored"), "{out}");
    let (ok, out) = mirror(&tuf, &mirrored);
    assert!(ok, "a second refresh: {out}");
    let mut files = 0;
    for e in files_under(&mirrored) {
        let rel = e.strip_prefix(&mirrored).expect("inside");
        if rel == std::path::Path::new("timestamp.json") {
            continue;
        }
        let exported = std::fs::read(copy.join(rel)).unwrap_or_default();
        assert_eq!(std::fs::read(&e).expect("r"), exported, "{}", rel.display());
        files += 1;
    }
    assert!(files >= 5, "{files} files mirrored");
    // another repository, not signed by the root we start from: refused, nothing written
    let (other_proc, other) = dev_stack(&dir.join("other"), None);
    let other_tuf = other["services"]["tuf"]["url"]
        .as_str()
        .expect("url")
        .to_string();
    let refused = dir.join("refused");
    let (ok, out) = mirror(&other_tuf, &refused);
    assert!(!ok, "a repository another root signs was mirrored: {out}");
    assert!(!refused.exists(), "the refused mirror wrote files");
    drop(other_proc);
    drop(stack_proc);

    // the other side: no service answers; the client trusts the copy
    let mirror = format!("file://{}", p(&copy));
    let offline = Sigstack::new(&dir.join("offline"));
    let o = offline.run(&["initialize", "--mirror", &mirror, "--root", &root]);
    assert!(o.ok(), "initialize from the copy: {o}");
    // cosign's flags, which sigstack takes too
    let verify_blob = [
        "verify-blob",
        "--bundle",
        p(&bundle),
        "--certificate-identity",
        &me,
        "--certificate-oidc-issuer",
        &oidc,
        p(&artifact),
    ];
    let verify = |who: &Sigstack| who.run(&verify_blob);
    let o = verify(&offline);
    assert!(o.ok(), "verified from the copy, the network off: {o}");
    let from_mirror = Sigstack::new(&dir.join("from-mirror"));
    let mirror_url = format!("file://{}", p(&mirrored));
    let o = from_mirror.run(&["initialize", "--mirror", &mirror_url, "--root", &root]);
    assert!(o.ok(), "initialize from the mirror: {o}");
    let o = verify(&from_mirror);
    assert!(o.ok(), "verified from the mirror, the network off: {o}");
    // days later the copy is stale: said so, with when and what to do
    let o = offline.run_later("+3 days", &verify_blob);
    assert!(
        !o.ok()
            && o.stderr.contains("is stale (timestamp metadata expired at")
            && o.stderr.contains("sigstackd tuf export"),
        "{o}"
    );
    // cosign v2 and v3 accept a file:// mirror in `initialize` but verify over HTTP only:
    // on the disconnected side any static web server serves the copy (no stack runs)
    let (server, served) = static_server(&copy);
    for cosign in [
        crate::cosign::Cosign::v2(&dir.join("cosign-v2")),
        crate::cosign::Cosign::v3(&dir.join("cosign-v3")),
    ] {
        let o = cosign.run(&["initialize", "--mirror", &served, "--root", &root]);
        assert!(
            o.ok(),
            "{} initializes from the served copy: {o}",
            cosign.name
        );
        let o = cosign.run(&verify_blob);
        assert!(o.ok(), "{} verifies from the served copy: {o}", cosign.name);
    }
    // sigstore-python the same way
    let py_home = dir.join("python");
    let python = |args: &[&str]| {
        crate::keyless::run_within(
            Command::new(crate::keyless::venv().join("bin/sigstore"))
                .env("HOME", &py_home)
                .env("XDG_CACHE_HOME", py_home.join("cache"))
                .env("XDG_DATA_HOME", py_home.join("data"))
                .args(["--instance", &served])
                .args(args),
            std::time::Duration::from_secs(120),
        )
    };
    let (ok, out) = python(&["trust-instance", &root]);
    assert!(ok, "sigstore-python trust-instance: {out}");
    let (ok, out) = python(&[
        "verify",
        "identity",
        "--bundle",
        p(&bundle),
        "--cert-identity",
        &me,
        "--cert-oidc-issuer",
        &oidc,
        p(&artifact),
    ]);
    assert!(ok, "sigstore-python verifies from the served copy: {out}");
    drop(server);
    // a tampered copy is refused: the trusted root's bytes no longer match its hash
    let target = std::fs::read_dir(copy.join("targets"))
        .expect("targets")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|f| f.to_string_lossy().ends_with(".trusted_root.json"))
        .expect("the trusted root target");
    let mut bytes = std::fs::read(&target).expect("r");
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    std::fs::write(&target, bytes).expect("w");
    let tampered = Sigstack::new(&dir.join("tampered"));
    let o = tampered.run(&["initialize", "--mirror", &mirror, "--root", &root]);
    assert!(!o.ok(), "a tampered copy was trusted: {o}");
    // a directory without a repository: told what to do
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).expect("dir");
    let o = tampered.run(&[
        "initialize",
        "--mirror",
        &format!("file://{}", p(&empty)),
        "--root",
        &root,
    ]);
    assert!(
        o.code == Some(2) && o.stderr.contains("sigstackd tuf export"),
        "{o}"
    );
    // an older repository is never exported over a newer copy
    let newer = r#"{"signed":{"_type":"timestamp","version":99999999999}}"#;
    std::fs::write(copy.join("timestamp.json"), newer).expect("w");
    let (ok, out) = export();
    assert!(!ok && out.contains("newer than this repository"), "{out}");
    assert_eq!(
        std::fs::read_to_string(copy.join("timestamp.json")).expect("r"),
        newer
    );
    // a database with no repository: nothing to export
    let (ok, out) = sigstackd(&[
        "tuf",
        "export",
        "--database-url",
        &format!("sqlite://{}", dir.join("none.sqlite").display()),
        "--out",
        p(&dir.join("nothing")),
    ]);
    assert!(!ok && out.contains("no timestamp"), "{out}");
}

async fn get_bytes(url: &str) -> (u16, Vec<u8>) {
    let r = http().get(url).send().await.expect("request");
    (r.status().as_u16(), r.bytes().await.expect("body").to_vec())
}
