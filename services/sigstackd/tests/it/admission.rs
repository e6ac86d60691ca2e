//! `sigstackd admission` as the Kubernetes API server calls it: AdmissionReview v1 over
//! TLS for Pods (init, regular and ephemeral containers), Deployments and CronJobs, by tag
//! and by digest, against images on Debian's docker-registry signed and attested by
//! `sigstack` and by cosign v2 and v3 (keyless through the stack, and with keys). The
//! policies are policy-controller's own end-to-end ClusterImagePolicy documents, with
//! their globs, identities and keys pointed at this stack; the files whose features the
//! webhook does not implement are refused by `--check`, naming the feature. Unsigned,
//! wrongly-signed, wrong-identity and policy-failing images are denied with the reason;
//! `warn` mode admits with warnings; a dead registry fails closed (or, configured, open);
//! decisions are cached per digest; `/mutate` pins tags to digests; a policy change is
//! picked up while serving and a broken one refused.

use crate::admission_hook::*;
use crate::cosign::{Cosign, go_tool};
use crate::cosign_interop::{initialized, ok, ours_on, start, with};
use crate::images::{oci_ok, registry};
use crate::keyless::{Killed, wait_for};
use crate::support::*;
use serde_json::{Value, json};
use std::process::{Command, Stdio};

pub async fn admission_webhook() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let (_stack, st) = start("admission");
    let dir = st.dir.clone();
    let upstream = go_tool_dir("SIGSTACK_POLICY_CONTROLLER");
    let (mut reg_proc, reg) = registry(&dir.join("registry"));
    let ours = ours_on(&st, "adm-home");
    let v2 = initialized(Cosign::v2(&dir.join("adm-v2")), &st);
    let v3 = initialized(Cosign::v3(&dir.join("adm-v3")), &st);
    let token = st.token();
    let insecure = "--allow-insecure-registry";
    let pw = [("COSIGN_PASSWORD", "")];
    let prefix = dir.join("signer");
    ok(
        &v3.run_env(
            &[
                "generate-key-pair",
                "--output-key-prefix",
                crate::client::p(&prefix),
            ],
            &pw,
        ),
        "cosign generate-key-pair",
    );
    let (key, public) = (
        dir.join("signer.key"),
        std::fs::read_to_string(dir.join("signer.pub")).expect("pub"),
    );
    // an AWS KMS (local-kms, the real server's API) holding a signing key
    let kms_port = free_port();
    let _kms = Killed::new(
        Command::new(go_tool("SIGSTACK_LOCAL_KMS"))
            .env("PORT", kms_port.to_string())
            .env("KMS_REGION", "us-east-1")
            .env("KMS_DATA_PATH", dir.join("kms-data"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("kms.log")).expect("log"))
            .spawn()
            .expect("local-kms"),
    );
    wait_for("local-kms", || {
        std::net::TcpStream::connect(("127.0.0.1", kms_port)).is_ok()
    });
    let kms_url = format!("http://127.0.0.1:{kms_port}");
    let kms_env = [
        ("AWS_ACCESS_KEY_ID", "sigstack-test"),
        ("AWS_SECRET_ACCESS_KEY", "sigstack-test-secret"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", kms_url.as_str()),
    ];
    let kms_key = "awskms:///alias/admission";
    ok(
        &ours.run_env(
            &[
                "generate-key-pair",
                "--kms",
                kms_key,
                "--output-key-prefix",
                crate::client::p(&dir.join("kms")),
            ],
            &kms_env,
        ),
        "sigstack generate-key-pair --kms",
    );
    let push = |repo: &str| {
        let digest = oci_ok(&["push-image", &reg, repo, "v1"]);
        (format!("{reg}/{repo}:v1"), format!("{reg}/{repo}@{digest}"))
    };

    // the images, each signed (or not) as its policy needs
    let (ours_tag, ours_digest) = push("kl/ours");
    ok(
        &ours.run(&["sign", "--yes", "--identity-token", &token, &ours_digest]),
        "sigstack signs",
    );
    let (_, v2_img) = push("kl/v2");
    ok(
        &v2.run(&[
            "sign",
            "--yes",
            "--identity-token",
            &token,
            insecure,
            "--fulcio-url",
            &st.ca,
            "--rekor-url",
            &st.log,
            &v2_img,
        ]),
        "cosign v2 signs (legacy .sig)",
    );
    let (_, v3_img) = push("kl/v3");
    ok(
        &v3.run(&[
            "sign",
            "--yes",
            "--identity-token",
            &token,
            insecure,
            &v3_img,
        ]),
        "cosign v3 signs",
    );
    let (_, unsigned) = push("kl/unsigned");
    let (_, mismatch) = push("mismatch/app");
    ok(
        &ours.run(&["sign", "--yes", "--identity-token", &token, &mismatch]),
        "sigstack signs",
    );
    let (_, keyed) = push("key/app");
    ok(
        &v3.run_env(
            &[
                "sign",
                "--yes",
                "--key",
                crate::client::p(&key),
                insecure,
                &keyed,
            ],
            &pw,
        ),
        "cosign v3 signs with a key",
    );
    let (_, wrong_key) = push("wrongkey/app");
    ok(
        &v3.run_env(
            &[
                "sign",
                "--yes",
                "--key",
                crate::client::p(&key),
                insecure,
                &wrong_key,
            ],
            &pw,
        ),
        "cosign v3 signs with a key",
    );
    let predicate = |name: &str, text: &str| {
        let f = dir.join(name);
        std::fs::write(&f, text).expect("w");
        f
    };
    let good = predicate("good.txt", "foobar e2e test");
    let bad = predicate("bad.txt", "something else");
    let key_good = predicate("key-good.txt", "foobar key e2e test");
    let (_, att_good) = push("att/good");
    ok(
        &v3.run(&[
            "attest",
            "--yes",
            "--identity-token",
            &token,
            insecure,
            "--type",
            "custom",
            "--predicate",
            crate::client::p(&good),
            &att_good,
        ]),
        "cosign v3 attests",
    );
    let (_, att_bad) = push("att/bad");
    ok(
        &ours.run(&[
            "attest",
            "--yes",
            "--identity-token",
            &token,
            "--type",
            "custom",
            "--predicate",
            crate::client::p(&bad),
            &att_bad,
        ]),
        "sigstack attests",
    );
    let (_, key_att) = push("keyatt/app");
    ok(
        &ours.run_env(
            &[
                "attest",
                "--yes",
                "--key",
                crate::client::p(&key),
                "--type",
                "custom",
                "--predicate",
                crate::client::p(&key_good),
                &key_att,
            ],
            &pw,
        ),
        "sigstack attests with a key",
    );
    let (_, warned_img) = push("warn/app");
    let (_, static_pass) = push("static/pass");
    let (_, static_fail) = push("static/fail");
    let (_, sourced) = push("sourced/app");
    ok(
        &ours.run_env(
            &["sign", "--yes", "--identity-token", &token, &sourced],
            &[("COSIGN_REPOSITORY", &format!("{reg}/sigs/demo"))],
        ),
        "sigstack signs into another repository",
    );
    let (_, secret_img) = push("secret/app");
    ok(
        &v3.run_env(
            &[
                "sign",
                "--yes",
                "--key",
                crate::client::p(&key),
                insecure,
                &secret_img,
            ],
            &pw,
        ),
        "cosign v3 signs with a key",
    );
    // signatureFormat: a bundle where only legacy images count, and the reverse
    let (_, fmt_bundle) = push("fmt/bundle");
    ok(
        &ours.run(&["sign", "--yes", "--identity-token", &token, &fmt_bundle]),
        "sigstack signs (bundle)",
    );
    let (_, fmt_legacy) = push("fmt/legacy");
    ok(
        &ours.run(&[
            "sign",
            "--yes",
            "--identity-token",
            &token,
            "--new-bundle-format=false",
            &fmt_legacy,
        ]),
        "sigstack signs (legacy)",
    );
    // KMS keys: cosign v3 signs with the KMS key, and so does sigstack; each verifies the
    // other's through the KMS
    let (_, kms_cosign) = push("kms/cosign");
    ok(
        &v3.run_env(
            &["sign", "--yes", "--key", kms_key, insecure, &kms_cosign],
            &kms_env,
        ),
        "cosign v3 signs with the KMS key",
    );
    let (_, kms_ours) = push("kms/ours");
    ok(
        &ours.run_env(&["sign", "--yes", "--key", kms_key, &kms_ours], &kms_env),
        "sigstack signs with the KMS key",
    );
    ok(
        &ours.run_env(&["verify", "--key", kms_key, &kms_cosign], &kms_env),
        "sigstack verifies cosign's KMS signature through the KMS",
    );
    ok(
        &v3.run_env(&["verify", "--key", kms_key, insecure, &kms_ours], &kms_env),
        "cosign v3 verifies sigstack's KMS signature through the KMS",
    );
    ok(
        &v2.run_env(
            &[
                "verify",
                "--key",
                crate::client::p(&dir.join("kms.pub")),
                insecure,
                &kms_ours,
            ],
            &kms_env,
        ),
        "cosign v2 verifies sigstack's KMS signature with the exported public key",
    );
    let (_, nomatch) = push("nomatch/app");
    let dead = format!("127.0.0.1:{}", free_port());

    let (policies, secrets) = write_policies(&Site {
        st: &st,
        dir: &dir,
        upstream: &upstream,
        reg: &reg,
        dead: &dead,
        public: &public,
        kms_key,
        kms_env: &kms_env,
    });
    let t = Template {
        upstream: &upstream,
        st: &st,
        key: &public,
    };

    let tls = tls_pair(&dir);
    let secrets_flag = ["--secrets-dir", crate::client::p(&secrets)];
    let hook = Webhook::start(
        &st,
        &dir.join("hook"),
        &policies,
        &tls,
        &secrets_flag,
        &kms_env,
    );
    let p1 = |image: &str| pod(&[image], &[], &[]);

    // keyless, by each signer, by tag (resolved) and by digest
    allowed(
        &hook.validate("Pod", p1(&ours_tag)).await,
        "sigstack's keyless signature, by tag",
    );
    allowed(
        &hook.validate("Pod", p1(&ours_digest)).await,
        "sigstack's keyless signature",
    );
    allowed(
        &hook.validate("Pod", p1(&v2_img)).await,
        "cosign v2's legacy signature",
    );
    allowed(
        &hook.validate("Pod", p1(&v3_img)).await,
        "cosign v3's bundle",
    );
    denied(
        &hook.validate("Pod", p1(&unsigned)).await,
        "no signatures found",
        "an unsigned image",
    );
    denied(
        &hook.validate("Pod", p1(&mismatch)).await,
        "securenamespace",
        "a signature by another identity",
    );
    // keys
    allowed(
        &hook.validate("Pod", p1(&keyed)).await,
        "signed with the policy's key",
    );
    denied(
        &hook.validate("Pod", p1(&wrong_key)).await,
        "none of its 1 signature(s) verifies",
        "signed with another key",
    );
    // attestations: rego and cue, keyless and with a key
    allowed(
        &hook.validate("Pod", p1(&att_good)).await,
        "an attestation the rego policy allows",
    );
    denied(
        &hook.validate("Pod", p1(&att_bad)).await,
        "custom-match-predicate",
        "an attestation the rego policy refuses",
    );
    allowed(
        &hook.validate("Pod", p1(&key_att)).await,
        "a key-signed attestation the cue policy allows",
    );
    // a key in a KMS, fetched by the webhook (upstream's example policy)
    allowed(
        &hook.validate("Pod", p1(&kms_cosign)).await,
        "signed by cosign with the policy's KMS key",
    );
    allowed(
        &hook.validate("Pod", p1(&kms_ours)).await,
        "signed by sigstack with the policy's KMS key",
    );
    // a key from a Secret; the layouts signatureFormat names
    allowed(
        &hook.validate("Pod", p1(&secret_img)).await,
        "signed with the key in the policy's Secret",
    );
    denied(
        &hook.validate("Pod", p1(&fmt_bundle)).await,
        "no signatures found",
        "a bundle where signatureFormat is simplesigning",
    );
    denied(
        &hook.validate("Pod", p1(&fmt_legacy)).await,
        "no signatures found",
        "a legacy signature where signatureFormat is bundle",
    );
    // warn mode admits, saying why it would not
    let r = hook.validate("Pod", p1(&warned_img)).await;
    allowed(&r, "an unsigned image under a warn-mode policy");
    assert!(
        warned(&r, "no signatures found") && warned(&r, "mode warn"),
        "{r}"
    );
    // static authorities, a signature in another repository, no policy at all
    allowed(
        &hook.validate("Pod", p1(&static_pass)).await,
        "a static pass",
    );
    denied(
        &hook.validate("Pod", p1(&static_fail)).await,
        "disallowed by static policy",
        "a static fail",
    );
    allowed(
        &hook.validate("Pod", p1(&sourced)).await,
        "signed into the policy's source repository",
    );
    denied(
        &hook.validate("Pod", p1(&nomatch)).await,
        "no matching policies",
        "an image no policy matches",
    );
    // every container of a pod counts: one bad init or ephemeral container denies it, and
    // the message names each failing container
    let r = hook
        .validate(
            "Pod",
            pod(&[&ours_digest, &v3_img], &[&unsigned], &[&v2_img]),
        )
        .await;
    denied(
        &r,
        "spec.initContainers[0]",
        "a pod with an unsigned init container",
    );
    let m = r["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        !m.contains("spec.containers["),
        "only the failing container is named: {m}"
    );
    let r = hook
        .validate("Pod", pod(&[&ours_digest], &[&v3_img], &[&att_bad]))
        .await;
    denied(
        &r,
        "spec.ephemeralContainers[0]",
        "a pod with a failing ephemeral container",
    );
    allowed(
        &hook
            .validate("Pod", pod(&[&ours_tag, &keyed], &[&v2_img], &[&att_good]))
            .await,
        "a pod whose every image passes",
    );
    // workloads: the pod template is checked
    let template = pod(&[&ours_tag], &[&v3_img], &[]);
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": template}});
    allowed(
        &hook.validate("Deployment", deployment).await,
        "a deployment of signed images",
    );
    let bad_template = pod(&[&unsigned], &[], &[]);
    let cron = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"}, "spec": {"jobTemplate": {"spec": {"template": bad_template}}}});
    denied(
        &hook.validate("CronJob", cron).await,
        "spec.jobTemplate.spec.template.spec.containers[0]",
        "a cronjob of an unsigned image",
    );
    // what is not a workload, and deletions, pass untouched
    allowed(
        &hook
            .validate(
                "ConfigMap",
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m"}}),
            )
            .await,
        "a config map",
    );
    // a review that is not one is refused as such
    let r = hook
        .http
        .post(format!("{}/validate", hook.url))
        .json(&json!({"apiVersion": "v1", "kind": "Pod"}))
        .send()
        .await
        .expect("answer");
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap_or_default()
            .contains("AdmissionReview")
    );

    // the mutating endpoint pins tags to digests
    let m = hook
        .call(
            "/mutate",
            &review("Pod", pod(&[&ours_tag], &[&ours_digest], &[]), "m1"),
        )
        .await;
    assert_eq!(m["response"]["allowed"], true, "{m}");
    assert_eq!(m["response"]["patchType"], "JSONPatch", "{m}");
    let patch: Value = serde_json::from_slice(&base64_decode(
        m["response"]["patch"].as_str().expect("patch"),
    ))
    .expect("patch json");
    assert_eq!(
        patch,
        json!([{"op": "replace", "path": "/spec/containers/0/image", "value": ours_digest}]),
        "only the tag is pinned"
    );

    // a dead registry fails closed, with a message saying so
    denied(
        &hook.validate("Pod", p1(&format!("{dead}/app:v1"))).await,
        "failing closed",
        "an image on a registry that does not answer",
    );
    // decisions are kept per digest: with the registry gone, images named by digest that
    // were decided keep their verdicts; a tag cannot be resolved and fails closed
    let open = Webhook::start(
        &st,
        &dir.join("hook-open"),
        &policies,
        &tls,
        &with(&secrets_flag, &["--registry-failure", "open"]),
        &kms_env,
    );
    allowed(
        &open.validate("Pod", p1(&v3_img)).await,
        "decided while the registry is up",
    );
    reg_proc.kill();
    allowed(
        &hook.validate("Pod", p1(&ours_digest)).await,
        "a cached allow",
    );
    denied(
        &hook.validate("Pod", p1(&unsigned)).await,
        "no signatures found",
        "a cached deny",
    );
    denied(
        &hook.validate("Pod", p1(&ours_tag)).await,
        "failing closed",
        "a tag while the registry is down",
    );
    let r = open.validate("Pod", p1(&ours_tag)).await;
    allowed(&r, "a tag while the registry is down, failing open");
    assert!(warned(&r, "admitted unchecked"), "{r}");
    allowed(
        &open.validate("Pod", p1(&v3_img)).await,
        "a cached allow (open)",
    );

    // policies are reloaded while serving: a new one takes effect, a broken one is refused
    // and the ones in force stay
    t.write(
        "cip-static-pass.yaml",
        &policies,
        "nomatch-now",
        &format!("{reg}/nomatch/**"),
        false,
    );
    let mut admitted = false;
    for _ in 0..50 {
        if hook.validate("Pod", p1(&nomatch)).await["allowed"] == true {
            admitted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(admitted, "the new policy was not picked up");
    std::fs::write(policies.join("broken.yaml"), "apiVersion: policy.sigstore.dev/v1beta1\nkind: ClusterImagePolicy\nmetadata: {name: b}\nspec: {images: [{glob: \"**\"}], authorities: [{key: {kms: \"gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k\"}}]}\n").expect("w");
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    allowed(
        &hook.validate("Pod", p1(&nomatch)).await,
        "the policies in force stay",
    );
    // a Secret changed is a policy changed: another key, and the image no longer passes
    std::fs::remove_file(policies.join("broken.yaml")).expect("rm");
    ok(
        &v3.run_env(
            &[
                "generate-key-pair",
                "--output-key-prefix",
                crate::client::p(&dir.join("other")),
            ],
            &pw,
        ),
        "another key",
    );
    std::fs::copy(dir.join("other.pub"), secrets.join("cip-secret/cosign.pub")).expect("cp");
    let mut refused = false;
    for _ in 0..50 {
        if hook.validate("Pod", p1(&secret_img)).await["allowed"] == false {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(refused, "the Secret's new key was not picked up");
    let log = std::fs::read_to_string(dir.join("hook/admission.log")).unwrap_or_default();
    assert!(
        log.contains("GOOGLE_APPLICATION_CREDENTIALS"),
        "the refusal is logged: {log}"
    );
}
