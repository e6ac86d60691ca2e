//! Witnessing (C2SP tlog-witness, tlog-cosignature): two `sigstackd witness` processes
//! follow a `sigstackd log-v2`; the log asks both after each checkpoint and `/checkpoint`
//! serves the newest checkpoint they both cosigned, each cosignature verifying with the
//! witness's key. The witness answers as the specification says: 409 with its size for
//! a stale old size, 403 for a checkpoint not signed by the log, 404 for a log it does
//! not follow, 422 for a proof that does not prove consistency, 400 for an old size
//! beyond the checkpoint; and after a restart it still refuses to go back.

use crate::keyless::{Killed, wait_for};
use crate::log_v2::{LogV2, openssl_ed25519};
use crate::support::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use sigstack_crypto::{Curve, Ed25519Signer, FileSigner, PublicKey, Signer};
use sigstack_log::checkpoint::Checkpoint;
use std::path::Path;
use std::process::{Command, Stdio};

struct Witness {
    _child: Killed,
    url: String,
}

fn start_witness(dir: &Path, name: &str, key: &Path, log_key: &Path, port: u16) -> Witness {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\nname = \"witness.test/{name}\"\nsigning_key = \"{}\"\nstate_file = \"{}\"\n\n[[logs]]\norigin = \"127.0.0.1\"\npublic_key = \"{}\"\n",
            key.display(),
            dir.join(format!("{name}.state.json")).display(),
            log_key.display(),
        ),
    )
    .expect("config");
    if !dir.join(format!("{name}.state.json")).exists() {
        // a new witness refuses to start without its state, until it is created once
        let (ok, out) = crate::keyless::run(
            Command::new(env!("CARGO_BIN_EXE_sigstackd"))
                .args(["witness", "--config"])
                .arg(&config),
        );
        assert!(!ok && out.contains("init-state"), "{out}");
        let (ok, out) = crate::keyless::run(
            Command::new(env!("CARGO_BIN_EXE_sigstackd"))
                .args(["witness", "--config"])
                .arg(&config)
                .arg("init-state"),
        );
        assert!(ok, "{out}");
        let (ok, out) = crate::keyless::run(
            Command::new(env!("CARGO_BIN_EXE_sigstackd"))
                .args(["witness", "--config"])
                .arg(&config)
                .arg("init-state"),
        );
        assert!(!ok && out.contains("never reset"), "{out}");
    }
    let child = Command::new(env!("CARGO_BIN_EXE_sigstackd"))
        .args(["witness", "--config"])
        .arg(&config)
        .env("SIGSTACK_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn witness");
    let url = format!("http://127.0.0.1:{port}");
    wait_for("the witness", || {
        crate::stack::get_ok(&format!("{url}/healthz"))
    });
    Witness {
        _child: Killed::new(child),
        url,
    }
}

async fn post(url: &str, body: String) -> (u16, String, String) {
    let r = http()
        .post(format!("{url}/add-checkpoint"))
        .body(body)
        .send()
        .await
        .expect("post");
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (r.status().as_u16(), ct, r.text().await.expect("text"))
}

/// Appends `n` entries named after `tag`, then waits until `/checkpoint` is the
/// checkpoint of `want` entries with `lines` signature lines (the log's and its
/// witnesses'); returns the last note read.
async fn append_and_wait(
    url: &str,
    signer: &FileSigner,
    tag: &str,
    n: usize,
    want: usize,
    lines: usize,
) -> String {
    for i in 0..n {
        let digest = sigstack_crypto::sha256(format!("{tag} entry {i}").as_bytes());
        let sig = signer.sign_sha256_digest(&digest).expect("sign");
        let body = json!({"hashedRekordRequestV002": {"digest": STANDARD.encode(digest),
            "signature": {"content": STANDARD.encode(&sig), "verifier": {
                "publicKey": {"rawBytes": STANDARD.encode(signer.public_key().spki_der())},
                "keyDetails": "PKIX_ECDSA_P256_SHA_256"}}}});
        let r = http()
            .post(format!("{url}/api/v2/log/entries"))
            .json(&body)
            .send()
            .await
            .expect("post");
        assert_eq!(r.status().as_u16(), 201);
    }
    let mut note = String::new();
    for _ in 0..150 {
        note = http()
            .get(format!("{url}/checkpoint"))
            .send()
            .await
            .expect("get")
            .text()
            .await
            .expect("text");
        if note.starts_with(&format!("127.0.0.1\n{want}\n"))
            && note.matches('\u{2014}').count() == lines
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    note
}

fn pub_pem(dir: &Path, name: &str, key: &PublicKey) -> std::path::PathBuf {
    let p = dir.join(format!("{name}.pub.pem"));
    std::fs::write(&p, key.to_pem()).expect("w");
    p
}

pub async fn witnesses_cosign_consistent_checkpoints() {
    let dir = temp_dir("witness");
    let log_key_path = dir.join("log-v2.pem");
    let log_key = openssl_ed25519(&log_key_path);
    let log_pub = pub_pem(&dir, "log-v2", &log_key);
    let mut witness_keys = Vec::new();
    let mut witnesses = Vec::new();
    let ports = [free_port(), free_port()];
    for (i, name) in ["w1", "w2"].iter().enumerate() {
        let k = dir.join(format!("{name}.pem"));
        witness_keys.push(openssl_ed25519(&k));
        witnesses.push((start_witness(&dir, name, &k, &log_pub, ports[i]), k));
    }
    let database_url = format!("sqlite://{}", dir.join("v2.db").display());
    let (config, url) = LogV2::write_config(&dir, &database_url, &log_key_path, false);
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str("witness_quorum = 2\n");
    for (i, (w, _)) in witnesses.iter().enumerate() {
        let name = format!("w{}", i + 1);
        text.push_str(&format!(
            "\n[[witnesses]]\nurl = \"{}\"\nname = \"witness.test/{name}\"\npublic_key = \"{}\"\n",
            w.url,
            pub_pem(&dir, &format!("{name}-key"), &witness_keys[i]).display()
        ));
    }
    std::fs::write(&config, text).expect("w");
    let log = LogV2::start(&config, &url).expect("log-v2 starts with witnesses");

    // entries, then the cosigned checkpoint covering them
    let signer = FileSigner::generate(Curve::P256);
    for round in 0..2 {
        let want = 5 * (round + 1);
        let note = append_and_wait(&log.url, &signer, &format!("round {round}"), 5, want, 3).await;
        assert!(
            note.starts_with(&format!("127.0.0.1\n{want}\n")),
            "the cosigned checkpoint reaches {want}: {note}"
        );
        sigstack_log::note::verify_ed25519(&note, "127.0.0.1", &log_key)
            .expect("the log's signature");
        for (i, k) in witness_keys.iter().enumerate() {
            let name = format!("witness.test/w{}", i + 1);
            let ts = sigstack_log::witness::verify_cosignature(&note, &name, k)
                .unwrap_or_else(|e| panic!("{name}: {e}: {note}"));
            assert!(ts > 1_700_000_000, "a real timestamp");
        }
    }
    let metrics = http()
        .get(format!("{}/metrics", log.url))
        .send()
        .await
        .expect("m")
        .text()
        .await
        .expect("t");
    assert!(
        metrics.contains("sigstack_log_v2_cosigned_size 10"),
        "{metrics}"
    );

    // the protocol, against one witness: it has cosigned size 10
    let w1 = &witnesses[0].0.url;
    let plain = |size: u64, root: [u8; 32], key: &dyn Signer, origin: &str| {
        Checkpoint {
            origin: origin.into(),
            size,
            root,
        }
        .sign_ed25519(origin, key)
        .expect("sign")
    };
    let current = http()
        .get(format!("{}/checkpoint", log.url))
        .send()
        .await
        .expect("g")
        .text()
        .await
        .expect("t");
    let cp =
        Checkpoint::parse_body(&current[..current.find("\n\n").expect("sigs") + 1]).expect("cp");
    let log_signer = Ed25519Signer::load(&log_key_path).expect("key");
    let req = |old: u64, proof: &[[u8; 32]], note: &str| {
        sigstack_log::witness::AddCheckpoint {
            old_size: old,
            proof: proof.to_vec(),
            note: note.to_string(),
        }
        .encode()
    };
    let (st, ct, body) = post(
        w1,
        req(0, &[], &plain(cp.size, cp.root, &log_signer, "127.0.0.1")),
    )
    .await;
    assert_eq!(
        (st, ct.as_str(), body.as_str()),
        (409, "text/x.tlog.size", "10\n"),
        "a stale old size"
    );
    let impostor = Ed25519Signer::generate();
    let (st, _, _) = post(
        w1,
        req(10, &[], &plain(cp.size, cp.root, &impostor, "127.0.0.1")),
    )
    .await;
    assert_eq!(st, 403, "a checkpoint the log did not sign");
    let (st, _, _) = post(
        w1,
        req(0, &[], &plain(1, [1u8; 32], &impostor, "other.example")),
    )
    .await;
    assert_eq!(st, 404, "a log the witness does not follow");
    let (st, _, _) = post(
        w1,
        req(
            10,
            &[[9u8; 32]],
            &plain(12, [2u8; 32], &log_signer, "127.0.0.1"),
        ),
    )
    .await;
    assert_eq!(st, 422, "a proof that proves nothing");
    let (st, _, _) = post(
        w1,
        req(11, &[], &plain(10, cp.root, &log_signer, "127.0.0.1")),
    )
    .await;
    assert_eq!(st, 400, "an old size beyond the checkpoint");
    let (st, _, _) = post(
        w1,
        req(10, &[], &plain(10, [3u8; 32], &log_signer, "127.0.0.1")),
    )
    .await;
    assert_eq!(st, 422, "another root at the size it cosigned");
    let (st, _, body) = post(
        w1,
        req(10, &[], &plain(cp.size, cp.root, &log_signer, "127.0.0.1")),
    )
    .await;
    assert_eq!(st, 200, "the same checkpoint again: {body}");

    // a restart keeps what it saw: a smaller tree is refused
    drop(log);
    let (w, key) = witnesses.remove(0);
    drop(w);
    let w1 = start_witness(&dir, "w1", &key, &log_pub, ports[0]);
    let (st, _, body) = post(
        &w1.url,
        req(0, &[], &plain(3, [4u8; 32], &log_signer, "127.0.0.1")),
    )
    .await;
    assert_eq!(
        (st, body.as_str()),
        (409, "10\n"),
        "after a restart the witness remembers size 10"
    );
}

/// An outside witness: transparency-dev's OmniWitness (built from the Go module proxy)
/// follows our tiled log through C2SP tlog-witness; the log serves only checkpoints it
/// cosigned, and its cosignatures (tlog-cosignature v1) verify with its key.
pub async fn an_outside_witness_cosigns_our_checkpoints() {
    use aws_lc_rs::signature::KeyPair;
    let omni = crate::cosign::go_tool("SIGSTACK_OMNIWITNESS");
    let dir = temp_dir("omniwitness");
    let log_key_path = dir.join("log-v2.pem");
    let log_key = openssl_ed25519(&log_key_path);
    // the witness's key, in the note signer format the Go tools read
    let seed: [u8; 32] = rand::random();
    let pair = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(&seed).expect("seed");
    let raw = pair.public_key().as_ref().to_vec();
    let mut spki = hex::decode("302a300506032b6570032100").expect("hex");
    spki.extend_from_slice(&raw);
    let witness_key = PublicKey::from_spki_der(&spki).expect("key");
    let name = "witness.test/omniwitness";
    let hash = &sigstack_log::note::key_hash(name, 0x01, &raw)[..4];
    let mut typed = vec![0x01];
    typed.extend_from_slice(&seed);
    let private = dir.join("omniwitness.sec");
    std::fs::write(
        &private,
        format!(
            "PRIVATE+KEY+{name}+{}+{}",
            hex::encode(hash),
            STANDARD.encode(typed)
        ),
    )
    .expect("w");
    // the log it follows, besides its built-in list of public logs
    let logs = dir.join("logs.yaml");
    std::fs::write(
        &logs,
        format!(
            "Logs:\n  - Origin: \"127.0.0.1\"\n    PublicKey: \"{}\"\n    URL: \"http://127.0.0.1/\"\n",
            sigstack_log::note::vkey("127.0.0.1", &log_key).expect("vkey")
        ),
    )
    .expect("w");
    let (port, metrics) = (free_port(), free_port());
    let child = Command::new(&omni)
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg(format!("--metrics_listen=127.0.0.1:{metrics}"))
        .arg(format!(
            "--db_file={}",
            dir.join("omniwitness.db").display()
        ))
        .arg(format!("--private_key_path={}", private.display()))
        .arg(format!("--additional_logs={}", logs.display()))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("omniwitness.log")).expect("log"))
        .spawn()
        .expect("spawn omniwitness");
    let _omni = Killed::new(child);
    wait_for("the OmniWitness", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let database_url = format!("sqlite://{}", dir.join("v2.db").display());
    let (config, url) = LogV2::write_config(&dir, &database_url, &log_key_path, false);
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&format!(
        "witness_quorum = 1\n\n[[witnesses]]\nurl = \"http://127.0.0.1:{port}\"\nname = \"{name}\"\npublic_key = \"{}\"\n",
        pub_pem(&dir, "omniwitness", &witness_key).display()
    ));
    std::fs::write(&config, text).expect("w");
    let log = LogV2::start(&config, &url).expect("log-v2 starts with the outside witness");
    let signer = FileSigner::generate(Curve::P256);
    for round in 0..2 {
        // the second round needs a consistency proof the witness checks
        let want = 3 * (round + 1);
        let note =
            append_and_wait(&log.url, &signer, &format!("outside {round}"), 3, want, 2).await;
        let omni_log = std::fs::read_to_string(dir.join("omniwitness.log")).unwrap_or_default();
        assert!(
            note.starts_with(&format!("127.0.0.1\n{want}\n"))
                && note.matches('\u{2014}').count() == 2,
            "the OmniWitness cosigned size {want}: {note}\n{}",
            omni_log
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .join("\n")
        );
        sigstack_log::note::verify_ed25519(&note, "127.0.0.1", &log_key)
            .expect("the log's signature");
        let ts = sigstack_log::witness::verify_cosignature(&note, name, &witness_key)
            .unwrap_or_else(|e| panic!("the OmniWitness's cosignature: {e}: {note}"));
        assert!(ts > 1_700_000_000, "a real timestamp");
    }
}
