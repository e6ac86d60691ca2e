//! A kit carried across an air gap, both ways at once: a private stack follows a public
//! one (here another dev stack stands in for the public instance) with `tuf mirror`,
//! serves the copy from its own TUF service, and exports a kit of both repositories and
//! its logs' checkpoints (`airgap export`). On the far side, a stack runs in a network
//! namespace with no route off the machine; the kit is imported there (a tampered one
//! and an older one are refused), and sigstack, cosign v2 and v3 and sigstore-python
//! verify from the far stack's mirrors with nothing else reachable. Signing there works,
//! and strace shows neither the stack nor the client tries to reach anything but
//! loopback.

use crate::client::{Sigstack, p};
use crate::cosign::Cosign;
use crate::keyless::{DEV_PORTS, dev_stack, dev_stack_wrapped, run, run_within, venv};
use crate::support::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn sigstackd(args: &[&str]) -> (bool, String) {
    run(Command::new(env!("CARGO_BIN_EXE_sigstackd")).args(args))
}

/// A blob signed by sigstack through a dev stack, with who signed it.
struct Signed {
    artifact: PathBuf,
    bundle: PathBuf,
    identity: String,
    issuer: String,
}

impl Signed {
    fn verify_args(&self) -> Vec<&str> {
        vec![
            "verify-blob",
            "--bundle",
            p(&self.bundle),
            "--certificate-identity",
            &self.identity,
            "--certificate-oidc-issuer",
            &self.issuer,
            p(&self.artifact),
        ]
    }
}

fn sign_on(dir: &Path, data: &Path, stack: &Value, tag: &str) -> Signed {
    let s = |ptr: &str| stack_str(stack, ptr);
    let client = Sigstack::new(&dir.join(format!("{tag}-signer")));
    let o = client.run(&[
        "initialize",
        "--mirror",
        &s("/services/tuf/url"),
        "--root",
        &s("/services/tuf/root"),
    ]);
    assert!(o.ok(), "{o}");
    let artifact = dir.join(format!("{tag}.txt"));
    std::fs::write(&artifact, format!("signed by {tag}\n")).expect("w");
    let bundle = dir.join(format!("{tag}.sigstore.json"));
    let token = crate::stack::dev_token(data);
    let o = client.run_env(
        &["sign-blob", "--yes", "--bundle", p(&bundle), p(&artifact)],
        &[("SIGSTORE_ID_TOKEN", &token)],
    );
    assert!(o.ok(), "{tag} signs: {o}");
    Signed {
        artifact,
        bundle,
        identity: s("/services/oidc/email"),
        issuer: s("/services/oidc/url"),
    }
}

async fn get_bytes(url: &str) -> (u16, Vec<u8>) {
    let r = http().get(url).send().await.expect("request");
    (r.status().as_u16(), r.bytes().await.expect("body").to_vec())
}

/// Copies a kit directory.
fn copy_dir(from: &Path, to: &Path) {
    let (ok, out) = run(Command::new("cp").arg("-r").arg(from).arg(to));
    assert!(ok, "{out}");
}

/// The kit's trusted-root target of repository `repo`.
fn trusted_root_target(kit: &Path, repo: &str) -> PathBuf {
    std::fs::read_dir(kit.join(repo).join("targets"))
        .expect("targets")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|f| f.to_string_lossy().ends_with(".trusted_root.json"))
        .expect("the trusted root target")
}

pub async fn an_airgap_kit_carries_trust_to_a_stack_with_no_network() {
    let dir = temp_dir("airgap-kit");
    // the upstream: a stand-in for the public instance
    let (upstream_proc, upstream) = dev_stack(&dir.join("upstream"), None);
    let upstream_root = stack_str(&upstream, "/services/tuf/root");
    let upstream_tuf = stack_str(&upstream, "/services/tuf/url");
    let signed_upstream = sign_on(&dir, &dir.join("upstream"), &upstream, "upstream");
    // the connected private stack, which follows the upstream
    let (private_proc, private) = dev_stack(&dir.join("private"), None);
    let ps = |ptr: &str| stack_str(&private, ptr);
    let private_root = ps("/services/tuf/root");
    let signed_private = sign_on(&dir, &dir.join("private"), &private, "private");
    let mirror = PathBuf::from(ps("/services/tuf/mirrors/dir")).join("public-good");
    let (ok, out) = sigstackd(&[
        "tuf",
        "mirror",
        "--from",
        &upstream_tuf,
        "--root",
        &upstream_root,
        "--out",
        p(&mirror),
    ]);
    assert!(ok, "{out}");
    // the private TUF service republishes the copy byte for byte: the upstream's
    // signatures, not ours
    let served = format!("{}/public-good", ps("/services/tuf/mirrors/url"));
    for file in ["timestamp.json", "root.json", "1.root.json"] {
        let (st, copy) = get_bytes(&format!("{served}/{file}")).await;
        let (_, original) = get_bytes(&format!("{upstream_tuf}/{file}")).await;
        assert_eq!(
            (st, copy),
            (200, original),
            "{file} as the mirror serves it"
        );
    }
    let (st, _) = get_bytes(&format!("{served}/..%2F..%2Fstack.json")).await;
    assert_eq!(st, 404, "a path out of the mirrors directory");
    let via_private = Sigstack::new(&dir.join("via-private"));
    let o = via_private.run(&["initialize", "--mirror", &served, "--root", &upstream_root]);
    assert!(
        o.ok(),
        "trusting the upstream through the private stack's copy: {o}"
    );
    assert!(via_private.run(&signed_upstream.verify_args()).ok());

    let export = |out: &Path| {
        sigstackd(&[
            "airgap",
            "export",
            "--out",
            p(out),
            "--tuf",
            &format!("private={}", ps("/services/tuf/url")),
            "--root",
            &format!("private={private_root}"),
            "--tuf",
            &format!("public-good={}", p(&mirror)),
            "--rekor",
            &ps("/services/log/url"),
            "--rekor-v2",
            &ps("/services/log_v2/url"),
            "--ctlog",
            &ps("/services/ctlog/url"),
        ])
    };
    let older_kit = dir.join("older.tar");
    let (ok, out) = export(&older_kit);
    assert!(ok && out.contains("3 checkpoints"), "{out}");
    // the log grows; a newer kit, as a directory
    let signed_later = sign_on(&dir, &dir.join("private"), &private, "private-later");
    let kit = dir.join("kit");
    let (ok, out) = export(&kit);
    assert!(ok, "{out}");
    let (ok, out) = export(&kit);
    assert!(
        !ok && out.contains("is not empty"),
        "a kit written over: {out}"
    );
    drop(upstream_proc);
    drop(private_proc);

    // the far side: a network namespace with nothing but loopback, the stack traced
    let ns = Netns::new();
    let nsp = ns.path();
    let far_data = dir.join("far");
    let stack_trace = dir.join("far-stack.strace");
    let trace = stack_trace.clone();
    let (far_proc, far) = dev_stack_wrapped(&far_data, &DEV_PORTS, |c| traced_in(&nsp, c, &trace));
    let fs = |ptr: &str| stack_str(&far, ptr);
    let mirrors = fs("/services/tuf/mirrors/dir");
    let mirrors_url = fs("/services/tuf/mirrors/url");
    let inside = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sigstackd"));
        c.args(args);
        run(&mut ns.wrap(c))
    };
    let import = |kit: &Path| {
        inside(&[
            "airgap",
            "import",
            "--kit",
            p(kit),
            "--out",
            &mirrors,
            "--root",
            &format!("private={private_root}"),
            "--root",
            &format!("public-good={upstream_root}"),
        ])
    };
    let published = || {
        std::fs::read_dir(&mirrors)
            .expect("mirrors")
            .flatten()
            .count()
    };
    // a changed file: the manifest catches it, nothing is published
    let tampered = dir.join("tampered");
    copy_dir(&kit, &tampered);
    let target = trusted_root_target(&tampered, "private");
    let mut bytes = std::fs::read(&target).expect("r");
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    std::fs::write(&target, &bytes).expect("w");
    let (ok, out) = import(&tampered);
    assert!(!ok && out.contains("does not match its SHA-256"), "{out}");
    assert_eq!(published(), 0, "a refused kit published files");
    // the manifest rewritten to match: the repository's signatures still catch it
    let manifest_path = tampered.join("manifest.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("r")).expect("json");
    let rel = target.strip_prefix(&tampered).expect("inside");
    manifest["files"][p(rel)] = hex::encode(sigstack_crypto::sha256(&bytes)).into();
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).expect("json")).expect("w");
    let (ok, out) = import(&tampered);
    assert!(
        !ok && out.contains("does not match its recorded length or hash"),
        "{out}"
    );
    assert_eq!(published(), 0, "a refused kit published files");
    // a log's checkpoint relabelled as another log's (file name and manifest made to
    // match): only the key the trusted root names for that URL may sign it
    let relabelled = dir.join("relabelled");
    copy_dir(&kit, &relabelled);
    let manifest_path = relabelled.join("manifest.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("r")).expect("json");
    let entry = manifest["checkpoints"]
        .as_array_mut()
        .expect("checkpoints")
        .iter_mut()
        .find(|c| c["kind"] == "rekor-v1")
        .expect("a v1 checkpoint");
    let old_file = entry["file"].as_str().expect("file").to_string();
    let other = "http://127.0.0.1:9";
    let new_file = format!(
        "checkpoints/rekor-v1-127-0-0-1-9-{}.json",
        hex::encode(&sigstack_crypto::sha256(other.as_bytes())[..8])
    );
    let mut record: Value =
        serde_json::from_slice(&std::fs::read(relabelled.join(&old_file)).expect("r"))
            .expect("json");
    record["url"] = other.into();
    let bytes = serde_json::to_vec(&record).expect("json");
    std::fs::remove_file(relabelled.join(&old_file)).expect("rm");
    std::fs::write(relabelled.join(&new_file), &bytes).expect("w");
    entry["file"] = new_file.clone().into();
    entry["url"] = other.into();
    let files = manifest["files"].as_object_mut().expect("files");
    files.remove(&old_file);
    files.insert(
        new_file,
        hex::encode(sigstack_crypto::sha256(&bytes)).into(),
    );
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).expect("json")).expect("w");
    let (ok, out) = import(&relabelled);
    assert!(
        !ok && out.contains("names a rekor-v1 log at http://127.0.0.1:9"),
        "a relabelled checkpoint: {out}"
    );
    assert_eq!(published(), 0, "a refused kit published files");
    // a repository that is new here needs its root handed over
    let (ok, out) = inside(&["airgap", "import", "--kit", p(&kit), "--out", &mirrors]);
    assert!(!ok && out.contains("pass --root"), "{out}");
    // the kit itself: verified and published; then the older kit is refused
    let (ok, out) = import(&kit);
    assert!(ok && out.contains("published public-good"), "{out}");
    let (ok, out) = import(&older_kit);
    assert!(
        !ok && out.contains("refusing a rollback"),
        "an older kit: {out}"
    );
    let (ok, out) = import(&kit);
    assert!(ok, "the same kit again: {out}");
    // days later the kit is stale: said so, with when, before anything is published
    let mut later = Command::new("faketime");
    later
        .arg("+3 days")
        .arg(env!("CARGO_BIN_EXE_sigstackd"))
        .args([
            "airgap",
            "import",
            "--kit",
            p(&kit),
            "--out",
            p(&dir.join("later")),
            "--root",
            &format!("private={private_root}"),
            "--root",
            &format!("public-good={upstream_root}"),
        ]);
    let (ok, out) = run(&mut ns.wrap(later));
    assert!(
        !ok && out.contains("metadata expired at") && out.contains("stale"),
        "a stale kit: {out}"
    );
    assert!(!dir.join("later").exists(), "a stale kit was published");

    // clients on the far side, nothing but the far stack reachable
    let in_ns = |c: Command| in_netns(&ns.path(), c);
    let sigstack_public = Sigstack::new(&dir.join("far-public")).wrapped({
        let nsp = ns.path();
        move |c| in_netns(&nsp, c)
    });
    let o = sigstack_public.run(&[
        "initialize",
        "--mirror",
        &format!("{mirrors_url}/public-good"),
        "--root",
        &upstream_root,
    ]);
    assert!(o.ok(), "{o}");
    let o = sigstack_public.run(&signed_upstream.verify_args());
    assert!(
        o.ok(),
        "sigstack verifies the upstream's bundle on the far side: {o}"
    );
    let sigstack_private = Sigstack::new(&dir.join("far-private")).wrapped({
        let nsp = ns.path();
        move |c| in_netns(&nsp, c)
    });
    let o = sigstack_private.run(&[
        "initialize",
        "--mirror",
        &format!("file://{mirrors}/private"),
        "--root",
        &private_root,
    ]);
    assert!(o.ok(), "{o}");
    for signed in [&signed_private, &signed_later] {
        let o = sigstack_private.run(&signed.verify_args());
        assert!(o.ok(), "sigstack verifies from the file:// copy: {o}");
    }
    // with only the kit's trust file, offline
    let only_file = Sigstack::new(&dir.join("far-file")).wrapped({
        let nsp = ns.path();
        move |c| in_netns(&nsp, c)
    });
    let trusted_root = format!("{mirrors}/trust/private/trusted_root.json");
    let mut args = vec!["--offline", "--trusted-root", &trusted_root];
    args.extend(signed_later.verify_args());
    let o = only_file.run(&args);
    assert!(o.ok(), "verified with the kit's trusted_root.json: {o}");
    // a bundle of the public-good instance, with its trusted root, nothing online
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    let case = shared.join("conformance-assets/test/assets/bundle-verify/happy-path-v0.3");
    let o = only_file.run(&[
        "--offline",
        "--trusted-root",
        p(&shared.join("conformance-assets/extra/public-good-trusted_root.json")),
        "verify-blob",
        "--bundle",
        p(&case.join("bundle.sigstore.json")),
        "--certificate-identity",
        "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main",
        "--certificate-oidc-issuer",
        "https://token.actions.githubusercontent.com",
        p(&case.join("../a.txt")),
    ]);
    assert!(
        o.ok(),
        "a public-good bundle verified offline on the far side: {o}"
    );
    // the far stack's copy goes stale days later: said so, and what to carry over
    let o = sigstack_public.run_later("+3 days", &signed_upstream.verify_args());
    assert!(
        !o.ok() && o.stderr.contains("expired at") && o.stderr.contains("sigstackd airgap export"),
        "{o}"
    );
    for cosign in [
        Cosign::v2(&dir.join("far-cosign-v2")),
        Cosign::v3(&dir.join("far-cosign-v3")),
    ] {
        let name = cosign.name;
        let nsp = ns.path();
        let cosign = cosign.wrapped(move |c| in_netns(&nsp, c));
        let o = cosign.run(&[
            "initialize",
            "--mirror",
            &format!("{mirrors_url}/private"),
            "--root",
            &private_root,
        ]);
        assert!(
            o.ok(),
            "{name} initializes from the far stack's mirror: {o}"
        );
        let o = cosign.run(&signed_later.verify_args());
        assert!(o.ok(), "{name} verifies on the far side: {o}");
    }
    let py_home = dir.join("far-python");
    let python = |args: &[&str]| {
        let mut c = Command::new(venv().join("bin/sigstore"));
        c.env("HOME", &py_home)
            .env("XDG_CACHE_HOME", py_home.join("cache"))
            .env("XDG_DATA_HOME", py_home.join("data"))
            .args(["--instance", &format!("{mirrors_url}/public-good")])
            .args(args);
        run_within(&mut in_ns(c), std::time::Duration::from_secs(120))
    };
    let (ok, out) = python(&["trust-instance", &upstream_root]);
    assert!(ok, "sigstore-python trust-instance: {out}");
    let (ok, out) = python(&[
        "verify",
        "identity",
        "--bundle",
        p(&signed_upstream.bundle),
        "--cert-identity",
        &signed_upstream.identity,
        "--cert-oidc-issuer",
        &signed_upstream.issuer,
        p(&signed_upstream.artifact),
    ]);
    assert!(ok, "sigstore-python verifies on the far side: {out}");

    // signing on the far side, against the far stack, the client traced too
    let client_trace = dir.join("far-client.strace");
    let signer = Sigstack::new(&dir.join("far-signer")).wrapped({
        let (nsp, log) = (ns.path(), client_trace.clone());
        move |c| traced_in(&nsp, c, &log)
    });
    let o = signer.run(&[
        "initialize",
        "--mirror",
        &fs("/services/tuf/url"),
        "--root",
        &fs("/services/tuf/root"),
    ]);
    assert!(o.ok(), "{o}");
    let (ok, token) = inside(&["dev-token", "--data-dir", p(&far_data)]);
    assert!(ok, "{token}");
    let artifact = dir.join("far.txt");
    std::fs::write(&artifact, b"signed where nothing leaves\n").expect("w");
    let bundle = dir.join("far.sigstore.json");
    let o = signer.run_env(
        &["sign-blob", "--yes", "--bundle", p(&bundle), p(&artifact)],
        &[("SIGSTORE_ID_TOKEN", token.trim())],
    );
    assert!(o.ok(), "signing on the far side: {o}");
    let o = signer.run(&[
        "verify-blob",
        "--bundle",
        p(&bundle),
        "--certificate-identity",
        &fs("/services/oidc/email"),
        "--certificate-oidc-issuer",
        &fs("/services/oidc/url"),
        p(&artifact),
    ]);
    assert!(o.ok(), "{o}");
    drop(far_proc);
    // nothing tried to leave: every connection and datagram went to loopback
    for log in [&stack_trace, &client_trace] {
        let text = std::fs::read_to_string(log).expect("strace log");
        let tried = addresses_tried(&text);
        assert!(
            !tried.is_empty(),
            "{} traced no connection at all",
            log.display()
        );
        let away: Vec<_> = tried
            .iter()
            .filter(|a| {
                !a.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
            })
            .collect();
        assert!(away.is_empty(), "{} tried to reach {away:?}", log.display());
    }
}
