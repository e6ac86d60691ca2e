//! The tiled transparency log (`sigstackd log-v2`): Rekor v2's write API and the C2SP
//! tlog-tiles read API, on SQLite and PostgreSQL. Entries are answered with an inclusion
//! proof against an Ed25519 checkpoint that verifies under the log's host name; a reader
//! written from the C2SP specifications alone (python, `tests/interop/python/
//! tiles_reader.py`) fetches checkpoint, tiles and entry bundles, recomputes the root and
//! checks an earlier checkpoint's consistency, from the log and from a copy of its tiles
//! on a static file server, and notices a tampered copy. Duplicates, bad input, a frozen
//! log and a changed key are refused as upstream refuses them.

use crate::client::p;
use crate::keyless::{Killed, run, venv, workspace};
use crate::support::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sigstack_crypto::{Curve, FileSigner, PublicKey, Signer};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A `sigstackd log-v2` process with its configuration file.
pub(crate) struct LogV2 {
    _child: Killed,
    pub(crate) url: String,
}

/// An Ed25519 key made by OpenSSL (PKCS#8 v1, as operators make them).
pub(crate) fn openssl_ed25519(path: &Path) -> PublicKey {
    let (ok, out) = run(Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(path));
    assert!(ok, "openssl genpkey: {out}");
    set_mode_600(path);
    sigstack_crypto::Ed25519Signer::load(path)
        .expect("our loader reads OpenSSL's Ed25519 keys")
        .public_key()
        .clone()
}

fn set_mode_600(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

impl LogV2 {
    pub(crate) fn write_config(
        dir: &Path,
        database_url: &str,
        key: &Path,
        frozen: bool,
    ) -> (PathBuf, String) {
        let port = free_port();
        let config = dir.join("log-v2.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndatabase_url = \"{database_url}\"\nsigning_key = \"{}\"\nfrozen = {frozen}\n",
                key.display()
            ),
        )
        .expect("config");
        (config, format!("http://127.0.0.1:{port}"))
    }

    /// Starts the log; `Err` with its output when it refuses to start.
    pub(crate) fn start(config: &Path, url: &str) -> Result<Self, String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sigstackd"))
            .args(["log-v2", "--config"])
            .arg(config)
            .env("SIGSTACK_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn log-v2");
        for _ in 0..300 {
            if let Ok(Some(_)) = child.try_wait() {
                let mut err = String::new();
                use std::io::Read;
                let _ = child
                    .stderr
                    .take()
                    .expect("stderr")
                    .read_to_string(&mut err);
                return Err(err);
            }
            if crate::stack::get_ok(&format!("{url}/healthz")) {
                return Ok(Self {
                    _child: Killed::new(child),
                    url: url.to_string(),
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("sigstackd log-v2 did not come up");
    }
}

/// A hashedRekordRequestV002 for `data` signed by `key`.
fn request(key: &FileSigner, data: &[u8]) -> Value {
    let digest = sigstack_crypto::sha256(data);
    let sig = key.sign_sha256_digest(&digest).expect("sign");
    json!({"hashedRekordRequestV002": {
        "digest": STANDARD.encode(digest),
        "signature": {"content": STANDARD.encode(&sig), "verifier": {
            "publicKey": {"rawBytes": STANDARD.encode(key.public_key().spki_der())},
            "keyDetails": "PKIX_ECDSA_P256_SHA_256"}}}})
}

async fn post(url: &str, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let res = http()
        .post(format!("{url}/api/v2/log/entries"))
        .json(body)
        .send()
        .await
        .expect("post");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let v = res.json().await.unwrap_or(Value::Null);
    (status, headers, v)
}

async fn checkpoint(url: &str) -> String {
    http()
        .get(format!("{url}/checkpoint"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("text")
}

/// Checks an answer as a client would: the proof leads from the body to the root the
/// checkpoint signed by `key` as 127.0.0.1 states, and the log ID is the key's.
fn check_answer(a: &Value, key: &PublicKey) -> u64 {
    let p = &a["inclusionProof"];
    let note = p["checkpoint"]["envelope"].as_str().expect("checkpoint");
    let cp =
        sigstack_log::note::verify_ed25519(note, "127.0.0.1", key).expect("checkpoint verifies");
    let size: u64 = p["treeSize"].as_str().expect("size").parse().expect("n");
    let index: u64 = a["logIndex"].as_str().expect("index").parse().expect("n");
    assert_eq!(p["logIndex"], a["logIndex"]);
    assert_eq!(cp.size, size);
    assert_eq!(
        STANDARD.encode(cp.root),
        p["rootHash"].as_str().expect("root")
    );
    let body = unb64(a["canonicalizedBody"].as_str().expect("body"));
    let path: Vec<[u8; 32]> = p["hashes"]
        .as_array()
        .expect("hashes")
        .iter()
        .map(|h| unb64(h.as_str().expect("h")).try_into().expect("32"))
        .collect();
    sigstack_merkle::verify_inclusion(
        &sigstack_merkle::leaf_hash(&body),
        index,
        size,
        &path,
        &cp.root,
    )
    .expect("the proof verifies");
    assert_eq!(
        a["logId"]["keyId"].as_str(),
        Some(
            STANDARD
                .encode(sigstack_log::note::log_id("127.0.0.1", key))
                .as_str()
        )
    );
    assert_eq!(a["integratedTime"], "0");
    assert_eq!(a["kindVersion"]["version"], "0.0.2");
    index
}

/// Runs the spec-only reader; returns its JSON summary, or its error.
fn read_tiles(url: &str, key: &PublicKey, extra: &[&str]) -> Result<Value, String> {
    let raw = sigstack_crypto::ed25519_raw(key.spki_der()).expect("ed25519");
    let (ok, out) = run(Command::new(venv().join("bin/python"))
        .arg(workspace().join("tests/interop/python/tiles_reader.py"))
        .args([url, "127.0.0.1", &STANDARD.encode(raw)])
        .args(extra));
    if ok {
        Ok(serde_json::from_str(out.lines().last().unwrap_or(""))
            .map_err(|e| format!("{e}: {out}"))?)
    } else {
        Err(out)
    }
}

pub async fn tiled_log_writes_reads_and_refuses(backend: Backend) {
    let dir = temp_dir("log-v2");
    let key_path = dir.join("log-v2.pem");
    let key = openssl_ed25519(&key_path);
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.join("v2.db").display()),
        Backend::Postgres => fresh_pg_database(&pg_admin_url()).await,
    };
    let (config, url) = LogV2::write_config(&dir, &database_url, &key_path, false);
    let log = LogV2::start(&config, &url).expect("log-v2 starts");
    let empty = checkpoint(&log.url).await;
    let cp = sigstack_log::note::verify_ed25519(&empty, "127.0.0.1", &key).expect("verifies");
    assert_eq!(cp.size, 0, "a new log's checkpoint: {empty}");

    // one entry, its answer checked as a client checks it
    let signer = FileSigner::generate(Curve::P256);
    let first_request = request(&signer, b"first");
    let (status, _, first) = post(&log.url, &first_request).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(check_answer(&first, &key), 0);

    // a duplicate (the same signature again): 409 naming the existing entry's index
    let (status, headers, _) = post(&log.url, &first_request).await;
    assert_eq!(status, 409);
    assert_eq!(
        headers.get("x-log-index").and_then(|v| v.to_str().ok()),
        Some("0")
    );

    // bad input: refused, nothing stored
    let mut forged = request(&signer, b"second");
    forged["hashedRekordRequestV002"]["digest"] =
        json!(STANDARD.encode(sigstack_crypto::sha256(b"other")));
    let mut unknown = request(&signer, b"third");
    unknown["hashedRekordRequestV002"]["extra"] = json!(true);
    let mut pure = request(&signer, b"fourth");
    pure["hashedRekordRequestV002"]["signature"]["verifier"]["keyDetails"] =
        json!("PKIX_ECDSA_P384_SHA_384");
    for (what, body) in [
        ("a signature over another digest", forged),
        ("an unknown field", unknown),
        ("keyDetails of another key", pure),
        ("no entry", json!({})),
    ] {
        let (status, _, v) = post(&log.url, &body).await;
        assert_eq!(status, 400, "{what}: {v}");
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {v}"
        );
    }
    let res = http()
        .post(format!("{}/api/v2/log/entries", log.url))
        .header("Content-Type", "text/plain")
        .body(request(&signer, b"fifth").to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(res.status().as_u16(), 415);
    let after = checkpoint(&log.url).await;
    assert!(
        after.starts_with("127.0.0.1\n1\n"),
        "refused entries changed the tree: {after}"
    );

    // enough entries for full tiles, a partial one and a second level
    let submit = |from: usize, to: usize| {
        let url = log.url.clone();
        async move {
            let key = FileSigner::generate(Curve::P256);
            let tasks: Vec<_> = (from..to)
                .map(|i| {
                    let body = request(&key, format!("entry {i}").as_bytes());
                    let url = url.clone();
                    tokio::spawn(async move { post(&url, &body).await })
                })
                .collect();
            for t in tasks {
                let (status, _, v) = t.await.expect("task");
                assert_eq!(status, 201, "{v}");
            }
        }
    };
    submit(1, 300).await;
    let earlier = dir.join("earlier.checkpoint");
    std::fs::write(&earlier, checkpoint(&log.url).await).expect("w");
    submit(300, 600).await;
    let (status, _, last) = post(&log.url, &request(&signer, b"last")).await;
    assert_eq!(status, 201);
    assert_eq!(check_answer(&last, &key), 600);

    // tiles over HTTP as the specification says
    let get = |path: &str| http().get(format!("{}/{path}", log.url)).send();
    let full = get("tile/0/000").await.expect("get");
    assert_eq!(full.status().as_u16(), 200);
    assert_eq!(full.headers()["content-type"], "application/octet-stream");
    assert!(
        full.headers()["cache-control"]
            .to_str()
            .expect("s")
            .contains("immutable")
    );
    let etag = full.headers()["etag"].clone();
    assert_eq!(full.bytes().await.expect("b").len(), 8192);
    let again = http()
        .get(format!("{}/tile/0/000", log.url))
        .header("If-None-Match", etag.clone())
        .send()
        .await
        .expect("get");
    assert_eq!(again.status().as_u16(), 304);
    // a partial cut from the cached full tile: its own bytes, and the ETag of them
    let part = get("tile/0/000.p/100").await.expect("get");
    let part_tag = part.headers()["etag"].to_str().expect("s").to_string();
    let part_bytes = part.bytes().await.expect("b");
    assert_eq!(part_bytes.len(), 100 * 32);
    assert_eq!(
        part_tag,
        format!(
            "\"{}\"",
            hex::encode(&sigstack_crypto::sha256(&part_bytes)[..16])
        )
    );
    assert_ne!(part_tag.as_bytes(), etag.as_bytes());
    assert_eq!(
        get("tile/0/002.p/89")
            .await
            .expect("get")
            .bytes()
            .await
            .expect("b")
            .len(),
        89 * 32
    );
    for (path, why) in [
        ("tile/0/003", "beyond the tree"),
        ("tile/0/002.p/90", "wider than the tree"),
        ("tile/0/02", "a malformed index"),
        ("tile/64/000", "level 64"),
        ("tile/0/000.p/0", "width 0"),
    ] {
        assert_eq!(
            get(path).await.expect("get").status().as_u16(),
            404,
            "{path}: {why}"
        );
    }
    let cp_res = get("checkpoint").await.expect("get");
    assert_eq!(
        cp_res.headers()["content-type"],
        "text/plain; charset=utf-8"
    );

    // the reader from the specifications, live, with the earlier checkpoint's consistency
    let copy = dir.join("copy");
    let summary = read_tiles(
        &log.url,
        &key,
        &["--previous", p(&earlier), "--mirror", p(&copy)],
    )
    .expect("the spec reader accepts the log");
    assert_eq!(summary["size"], 601, "{summary}");
    assert_eq!(summary["consistent_with"], 300, "{summary}");
    assert_eq!(summary["levels"], 2, "{summary}");

    // the same from a copy on a static file server, and a tampered copy is caught
    let (_static, static_url) = static_server(&copy);
    let from_copy =
        read_tiles(&static_url, &key, &["--previous", p(&earlier)]).expect("the copy reads");
    assert_eq!(from_copy["root"], summary["root"]);
    let tile = copy.join("tile/0/001");
    let mut bytes = std::fs::read(&tile).expect("tile");
    bytes[100] ^= 1;
    std::fs::write(&tile, bytes).expect("w");
    let err = read_tiles(&static_url, &key, &[]).expect_err("a tampered tile is noticed");
    assert!(err.contains("does not hash"), "{err}");

    // pushback: with one submission in flight allowed, a burst gets 201 or 503 with
    // Retry-After, and nothing answered 503 is in the log
    drop(log);
    let (config, url) = LogV2::write_config(&dir, &database_url, &key_path, false);
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str("max_outstanding = 1\n");
    std::fs::write(&config, text).expect("w");
    let narrow = LogV2::start(&config, &url).expect("log-v2 with max_outstanding = 1");
    let burst_key = FileSigner::generate(Curve::P256);
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let body = request(&burst_key, format!("burst {i}").as_bytes());
            let url = narrow.url.clone();
            tokio::spawn(async move { post(&url, &body).await })
        })
        .collect();
    let (mut accepted, mut pushed_back) = (0u64, 0u64);
    for t in tasks {
        let (status, headers, v) = t.await.expect("task");
        match status {
            201 => accepted += 1,
            503 => {
                pushed_back += 1;
                assert!(headers.contains_key("retry-after"), "{v}");
            }
            other => panic!("a burst answered {other}: {v}"),
        }
    }
    let after_burst = checkpoint(&narrow.url).await;
    assert!(
        after_burst.starts_with(&format!("127.0.0.1\n{}\n", 601 + accepted)),
        "{accepted} accepted, {pushed_back} pushed back: {after_burst}"
    );
    drop(narrow);
    let log_size = 601 + accepted;

    // frozen: reads go on, writes are refused with 405; another key cannot take over
    let (config, url) = LogV2::write_config(&dir, &database_url, &key_path, true);
    let frozen = LogV2::start(&config, &url).expect("the frozen log starts");
    let (status, _, v) = post(&frozen.url, &request(&signer, b"after")).await;
    assert_eq!(status, 405, "{v}");
    assert!(
        checkpoint(&frozen.url)
            .await
            .starts_with(&format!("127.0.0.1\n{log_size}\n"))
    );
    drop(frozen);
    let other = dir.join("other.pem");
    openssl_ed25519(&other);
    let (config, url) = LogV2::write_config(&dir, &database_url, &other, false);
    let err = LogV2::start(&config, &url)
        .err()
        .expect("another key is refused");
    assert!(err.contains("was not signed by"), "{err}");
}

/// `sigstack log info` against a tiled log that forked: the checkpoint it keeps (size
/// 100, tree A) and a new signed checkpoint (size 300) of another tree B, served with
/// tiles mixed from both so that each root alone can be recomputed from some of them.
/// The client proves consistency with one proof built from the tiles and refuses.
pub async fn a_forked_tiled_log_is_caught() {
    use sigstack_log::checkpoint::Checkpoint;
    use sigstack_merkle::{Frontier, Hash, leaf_hash};
    let dir = temp_dir("log-v2-fork");
    let key_path = dir.join("log-v2.pem");
    let key = openssl_ed25519(&key_path);
    let signer = sigstack_crypto::Ed25519Signer::load(&key_path).expect("key");
    let leaves = |tag: &str, n: u64| -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("{tag} {i}").as_bytes()))
            .collect()
    };
    let root = |l: &[Hash]| {
        let mut f = Frontier::new();
        for h in l {
            f.append(*h, |_, _| {});
        }
        f.root()
    };
    let (a, b) = (leaves("A", 256), leaves("B", 300));
    let served = dir.join("served");
    let write = |path: &str, bytes: &[u8]| {
        let p = served.join(path);
        std::fs::create_dir_all(p.parent().expect("dir")).expect("mkdir");
        std::fs::write(p, bytes).expect("w");
    };
    let note = |size: u64, r: Hash| {
        Checkpoint {
            origin: "127.0.0.1".into(),
            size,
            root: r,
        }
        .sign_ed25519("127.0.0.1", &signer)
        .expect("sign")
    };
    let (_static, url) = static_server(&served);
    // a trusted root naming the log and its key
    let trusted = dir.join("trusted_root.json");
    std::fs::write(
        &trusted,
        json!({"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [{"baseUrl": url, "hashAlgorithm": "SHA2_256",
                "publicKey": {"rawBytes": STANDARD.encode(key.spki_der()), "keyDetails": "PKIX_ED25519",
                              "validFor": {"start": "2020-01-01T00:00:00Z"}},
                "logId": {"keyId": STANDARD.encode(sigstack_log::note::log_id("127.0.0.1", &key))}}],
            "certificateAuthorities": [], "ctlogs": [], "timestampAuthorities": []})
        .to_string(),
    )
    .expect("w");
    let ours = crate::client::Sigstack::new(&dir.join("home"));
    let info = || {
        ours.run(&[
            "--trusted-root",
            p(&trusted),
            "--output",
            "json",
            "log",
            "info",
            "--rekor-url",
            &url,
            "--rekor-version",
            "2",
        ])
    };
    // tree A at size 100: seen and kept
    write("checkpoint", note(100, root(&a[..100])).as_bytes());
    write("tile/0/000.p/100", &a[..100].concat());
    let o = info();
    assert!(o.ok(), "the first checkpoint: {o}");
    assert_eq!(crate::client::json_of(&o)["treeSize"], 100);
    // tree B at size 300, with A's first tile: A's root from tile/0/000, B's from the
    // level-1 tile and tile/0/001
    write("checkpoint", note(300, root(&b)).as_bytes());
    let mut mixed = a[..100].to_vec();
    mixed.extend_from_slice(&b[100..256]);
    write("tile/0/000", &mixed.concat());
    write("tile/1/000.p/1", &root(&b[..256]));
    write("tile/0/001.p/44", &b[256..].concat());
    let o = info();
    assert!(
        !o.ok() && o.stderr.contains("forked"),
        "a forked log must be refused: {o}"
    );
    // the honest continuation of A is accepted
    let a2 = [a[..].to_vec(), leaves("A", 300)[256..].to_vec()].concat();
    write("checkpoint", note(300, root(&a2)).as_bytes());
    write("tile/0/000", &a2[..256].concat());
    write("tile/1/000.p/1", &root(&a2[..256]));
    write("tile/0/001.p/44", &a2[256..].concat());
    let o = info();
    assert!(o.ok(), "a consistent checkpoint: {o}");
    assert_eq!(
        crate::client::json_of(&o)["consistency"],
        "consistent with the checkpoint of size 100 seen before"
    );
}
