//! The Rekor v1 API as clients use it, against a real `sigstackd log`.

use crate::support::*;
use serde_json::{Value, json};
use sigstack_crypto::Signer;
use sigstack_merkle::{Hash, verify_consistency};

pub async fn first_entry_and_reads(b: Backend) {
    let s = Server::start(b).await;
    let c = http();
    let a = Artifacts::new();
    let r = post_entry(&c, &s.url, &a.hashedrekord(b"first")).await;
    assert_eq!(r.status(), 201);
    let etag = r.headers()["etag"].to_str().expect("etag").to_string();
    let location = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let first = Answer::from_map(&r.json().await.expect("json"));
    first.verify(&s.key);
    assert_eq!(first.global_index(), 0);
    let proof = &first.entry["verification"]["inclusionProof"];
    assert_eq!(proof["logIndex"], json!(0), "logIndex emitted even when 0");
    assert_eq!(proof["hashes"], json!([]), "hashes emitted even when empty");
    assert_eq!(etag, first.id);
    assert_eq!(location, format!("/api/v1/log/entries/{}", first.id));

    // more entries; each proves against its own checkpoint
    let mut answers = vec![first.clone()];
    for i in 0..20 {
        let r = post_entry(
            &c,
            &s.url,
            &a.hashedrekord(format!("artifact {i}").as_bytes()),
        )
        .await;
        assert_eq!(r.status(), 201);
        let ans = Answer::from_map(&r.json().await.expect("json"));
        ans.verify(&s.key);
        answers.push(ans);
    }
    let indexes: Vec<u64> = answers.iter().map(Answer::global_index).collect();
    assert_eq!(indexes, (0..21).collect::<Vec<_>>());

    // reads by index, by 80-hex ID, by 64-hex UUID: proofs against the current head
    for ans in &answers {
        let (st, v) = get_json(
            &c,
            &format!(
                "{}/api/v1/log/entries?logIndex={}",
                s.url,
                ans.global_index()
            ),
        )
        .await;
        assert_eq!(st, 200);
        let got = Answer::from_map(&v);
        got.verify(&s.key);
        assert_eq!(got.entry["body"], ans.entry["body"]);
        assert_eq!(got.entry["integratedTime"], ans.entry["integratedTime"]);
        assert_eq!(
            got.entry["verification"]["inclusionProof"]["treeSize"],
            json!(21)
        );
        let (st, v) = get_json(&c, &format!("{}/api/v1/log/entries/{}", s.url, ans.id)).await;
        assert_eq!(st, 200);
        assert_eq!(Answer::from_map(&v).id, ans.id);
        let (st, v) = get_json(
            &c,
            &format!("{}/api/v1/log/entries/{}", s.url, &ans.id[16..]),
        )
        .await;
        assert_eq!(st, 200);
        assert_eq!(Answer::from_map(&v).id, ans.id);
    }
    let (st, v) = get_json(&c, &format!("{}/api/v1/log/entries?logIndex=21", s.url)).await;
    assert_eq!((st, v["code"].clone()), (404, json!(404)));
    let (st, _) = get_json(&c, &format!("{}/api/v1/log/entries?logIndex=-1", s.url)).await;
    assert_eq!(st, 422);
    let (st, _) = get_json(&c, &format!("{}/api/v1/log/entries?logIndex=x", s.url)).await;
    assert_eq!(st, 422);
    let (st, _) = get_json(
        &c,
        &format!("{}/api/v1/log/entries/{}", s.url, "ab".repeat(32)),
    )
    .await;
    assert_eq!(st, 404);
    let (st, _) = get_json(&c, &format!("{}/api/v1/log/entries/zz", s.url)).await;
    assert_eq!(st, 422);

    // log info and consistency from every checkpoint we were given to the head
    let (st, info) = get_json(&c, &format!("{}/api/v1/log", s.url)).await;
    assert_eq!(st, 200);
    assert_eq!(info["treeSize"], json!(21));
    assert!(info["treeID"].is_string());
    assert_eq!(info["inactiveShards"], Value::Null);
    let head_cp = sigstack_log::checkpoint::verify(
        info["signedTreeHead"].as_str().expect("sth"),
        "127.0.0.1",
        &s.key,
    )
    .expect("head checkpoint verifies");
    assert_eq!(
        hex::encode(head_cp.root),
        info["rootHash"].as_str().expect("root")
    );
    assert_eq!(
        head_cp.origin,
        format!("127.0.0.1 - {}", info["treeID"].as_str().expect("id"))
    );
    for ans in &answers {
        let cp =
            sigstack_log::checkpoint::verify(&ans.checkpoint(), "127.0.0.1", &s.key).expect("cp");
        check_consistency(&c, &s.url, cp.size, &cp.root, 21, &head_cp.root).await;
    }
    let (st, _) = get_json(
        &c,
        &format!("{}/api/v1/log/proof?firstSize=5&lastSize=4", s.url),
    )
    .await;
    assert_eq!(st, 400);
    let (st, _) = get_json(
        &c,
        &format!("{}/api/v1/log/proof?firstSize=1&lastSize=22", s.url),
    )
    .await;
    assert_eq!(st, 400);
    let (st, _) = get_json(
        &c,
        &format!("{}/api/v1/log/proof?firstSize=0&lastSize=3", s.url),
    )
    .await;
    assert_eq!(st, 422);
    let (st, _) = get_json(&c, &format!("{}/api/v1/log/proof", s.url)).await;
    assert_eq!(st, 422);

    // public key
    let r = c
        .get(format!("{}/api/v1/log/publicKey", s.url))
        .send()
        .await
        .expect("req");
    assert_eq!(r.headers()["content-type"], "application/x-pem-file");
    assert_eq!(r.text().await.expect("pem"), s.key.to_pem());
}

pub async fn check_consistency(
    c: &reqwest::Client,
    url: &str,
    old: u64,
    old_root: &Hash,
    new: u64,
    new_root: &Hash,
) {
    let (st, v) = get_json(
        c,
        &format!("{url}/api/v1/log/proof?firstSize={old}&lastSize={new}"),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let hashes: Vec<Hash> = v["hashes"]
        .as_array()
        .expect("hashes")
        .iter()
        .map(|h| {
            hex::decode(h.as_str().expect("s"))
                .expect("hex")
                .try_into()
                .expect("32")
        })
        .collect();
    assert_eq!(v["rootHash"], json!(hex::encode(new_root)));
    verify_consistency(old, new, &hashes, old_root, new_root).expect("consistent");
}

pub async fn duplicates_and_search(b: Backend) {
    let s = Server::start(b).await;
    let c = http();
    let a = Artifacts::new();
    let entry = a.hashedrekord(b"dup me");
    let r = post_entry(&c, &s.url, &entry).await;
    assert_eq!(r.status(), 201);
    let first = Answer::from_map(&r.json().await.expect("json"));
    let r = post_entry(&c, &s.url, &entry).await;
    assert_eq!(r.status(), 409);
    assert_eq!(
        r.headers()["location"].to_str().expect("loc"),
        format!("/api/v1/log/entries/{}", first.id)
    );
    let body: Value = r.json().await.expect("json");
    assert!(body["message"].as_str().expect("msg").contains(&first.id));
    // the same entry sent many times at once: one lands, the rest are 409
    let fresh = a.hashedrekord(b"raced");
    let results = futures::future::join_all((0..8).map(|_| post_entry(&c, &s.url, &fresh))).await;
    let mut codes: Vec<u16> = results.iter().map(|r| r.status().as_u16()).collect();
    codes.sort();
    assert_eq!(codes, vec![201, 409, 409, 409, 409, 409, 409, 409]);

    // search: by artifact digest (with and without prefix), by public key, and/or
    let b2 = Artifacts::new();
    let r = post_entry(&c, &s.url, &b2.hashedrekord(b"dup me")).await;
    assert_eq!(r.status(), 201, "same artifact, another signer");
    let other = Answer::from_map(&r.json().await.expect("json"));
    let digest = hex::encode(sigstack_crypto::sha256(b"dup me"));
    let search = |q: Value| {
        let c = c.clone();
        let url = s.url.clone();
        async move {
            let r = c
                .post(format!("{url}/api/v1/index/retrieve"))
                .json(&q)
                .send()
                .await
                .expect("req");
            // newest first; compared here as sets
            let status = r.status().as_u16();
            let mut v = r.json::<Value>().await.unwrap_or(Value::Null);
            if let Some(a) = v.as_array_mut() {
                a.sort_by(|x, y| x.as_str().cmp(&y.as_str()));
            }
            (status, v)
        }
    };
    let mut both = vec![first.id.clone(), other.id.clone()];
    both.sort();
    assert_eq!(
        search(json!({"hash": format!("sha256:{digest}")})).await,
        (200, json!(both))
    );
    assert_eq!(
        search(json!({"hash": digest.to_uppercase()})).await,
        (200, json!(both))
    );
    let pk = json!({"format": "x509", "content": b64(a.key.public_key().to_pem().as_bytes())});
    let (st, v) = search(json!({"publicKey": pk})).await;
    assert_eq!(st, 200);
    assert_eq!(
        v.as_array().expect("arr").len(),
        2,
        "a's two distinct entries"
    );
    assert_eq!(
        search(json!({"publicKey": pk, "hash": digest, "operator": "and"})).await,
        (200, json!([first.id]))
    );
    assert_eq!(search(json!({"hash": "sha256:1234"})).await.0, 422);
    assert_eq!(
        search(json!({"publicKey": {"format": "pgp", "content": "AA=="}}))
            .await
            .0,
        400
    );
    assert_eq!(
        search(json!({"operator": "xor", "hash": digest})).await.0,
        422
    );
    assert_eq!(search(json!({})).await, (200, json!([])));

    // retrieve by IDs, indexes and content, skipping what is not there
    let r = c
        .post(format!("{}/api/v1/log/entries/retrieve/", s.url))
        .json(&json!({"entryUUIDs": [first.id, "ab".repeat(32)], "logIndexes": [other.global_index(), 999], "entries": [entry]}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 200);
    let got: Vec<Value> = r.json().await.expect("json");
    let ids: Vec<String> = got.iter().map(|v| Answer::from_map(v).id).collect();
    assert_eq!(
        ids,
        vec![first.id.clone(), first.id.clone(), other.id.clone()]
    );
    let r = c
        .post(format!("{}/api/v1/log/entries/retrieve", s.url))
        .json(&json!({"logIndexes": (0..11).collect::<Vec<_>>()}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 422);
}

/// Every refusal is a 4xx with a message, and nothing is stored.
pub async fn bad_input_is_refused_and_nothing_stored(b: Backend) {
    let s = Server::start_on(
        b,
        if b == Backend::Postgres {
            fresh_pg_database(&pg_admin_url()).await
        } else {
            String::new()
        },
        &[("SIGSTACK_LOG_MAX_REQUEST_BYTES", "16384")],
    )
    .await;
    let c = http();
    let a = Artifacts::new();
    let good = a.hashedrekord(b"good");
    let mut bad_sig = good.clone();
    bad_sig["spec"]["signature"]["content"] = json!(b64(&a.key_sign(b"other")));
    let mut mismatch = good.clone();
    mismatch["spec"]["data"]["hash"]["value"] =
        json!(hex::encode(sigstack_crypto::sha256(b"not it")));
    let mut bad_pem = good.clone();
    bad_pem["spec"]["signature"]["publicKey"]["content"] = json!(b64(
        b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n"
    ));
    let mut unknown_kind = good.clone();
    unknown_kind["kind"] = json!("teapot");
    let mut bad_version = good.clone();
    bad_version["apiVersion"] = json!("0.0.9");
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "malformed JSON",
            c.post(format!("{}/api/v1/log/entries", s.url))
                .header("content-type", "application/json")
                .body("{\"kind\":"),
            400,
            "malformed",
        ),
        (
            "wrong content type",
            c.post(format!("{}/api/v1/log/entries", s.url))
                .header("content-type", "text/plain")
                .body(good.to_string()),
            415,
            "media type",
        ),
        (
            "missing kind",
            c.post(format!("{}/api/v1/log/entries", s.url))
                .json(&json!({"apiVersion": "0.0.1", "spec": {}})),
            422,
            "kind",
        ),
        (
            "unknown kind",
            c.post(format!("{}/api/v1/log/entries", s.url))
                .json(&unknown_kind),
            422,
            "teapot",
        ),
        (
            "unknown version",
            c.post(format!("{}/api/v1/log/entries", s.url))
                .json(&bad_version),
            400,
            "0.0.9",
        ),
        (
            "bad signature",
            c.post(format!("{}/api/v1/log/entries", s.url))
                .json(&bad_sig),
            400,
            "verifying signature",
        ),
        (
            "digest mismatch",
            c.post(format!("{}/api/v1/log/entries", s.url))
                .json(&mismatch),
            400,
            "verifying signature",
        ),
        (
            "invalid PEM",
            c.post(format!("{}/api/v1/log/entries", s.url))
                .json(&bad_pem),
            400,
            "public key",
        ),
        (
            "oversize",
            c.post(format!("{}/api/v1/log/entries", s.url))
                .header("content-type", "application/json")
                .body(format!("{{\"pad\":\"{}\"}}", "x".repeat(20_000))),
            413,
            "larger",
        ),
    ];
    for (name, req, status, needle) in cases {
        let r = req.send().await.expect("request");
        assert_eq!(r.status().as_u16(), status, "{name}");
        let v: Value = r
            .json()
            .await
            .unwrap_or_else(|_| panic!("{name}: JSON error body"));
        assert_eq!(v["code"], json!(status), "{name}");
        let msg = v["message"].as_str().unwrap_or("");
        assert!(
            msg.contains(needle),
            "{name}: message {msg:?} lacks {needle:?}"
        );
    }
    let (_, info) = get_json(&c, &format!("{}/api/v1/log", s.url)).await;
    assert_eq!(
        info["treeSize"],
        json!(0),
        "no refused request stored anything"
    );
    assert_eq!(post_entry(&c, &s.url, &good).await.status(), 201);
}

trait SignExt {
    fn key_sign(&self, data: &[u8]) -> Vec<u8>;
}
impl SignExt for Artifacts {
    fn key_sign(&self, data: &[u8]) -> Vec<u8> {
        use sigstack_crypto::Signer;
        self.key.sign(data).expect("sign")
    }
}

/// Concurrent clients get distinct indexes and valid proofs; entries are grouped into
/// fewer checkpoints than entries (group commit).
pub async fn concurrent_appends_group_commit(b: Backend) {
    let s = Server::start(b).await;
    let c = http();
    let a = std::sync::Arc::new(Artifacts::new());
    let n = 200usize;
    let futs = (0..n).map(|i| {
        let (c, a, url) = (c.clone(), a.clone(), s.url.clone());
        async move {
            let r = post_entry(
                &c,
                &url,
                &a.hashedrekord(format!("concurrent {i}").as_bytes()),
            )
            .await;
            assert_eq!(r.status(), 201);
            Answer::from_map(&r.json().await.expect("json"))
        }
    });
    let answers = futures::future::join_all(futs).await;
    let mut idx: Vec<u64> = answers.iter().map(Answer::global_index).collect();
    idx.sort();
    assert_eq!(idx, (0..n as u64).collect::<Vec<_>>());
    let mut sizes = std::collections::BTreeSet::new();
    for ans in &answers {
        ans.verify(&s.key);
        sizes.insert(
            ans.entry["verification"]["inclusionProof"]["treeSize"]
                .as_u64()
                .expect("size"),
        );
    }
    assert!(
        sizes.len() < n,
        "some entries shared a batch checkpoint ({} checkpoints for {n})",
        sizes.len()
    );
}

/// Two processes on one database: both accept writes under contention (every one
/// answered 201: a replica that finds the tree moved backs off and retries), neither
/// forks the tree.
pub async fn replicas_share_one_tree(b: Backend) {
    const N: u64 = 200;
    let s1 = Server::start(b).await;
    let s2 = s1.replica().await;
    let c = http();
    let a = std::sync::Arc::new(Artifacts::new());
    let futs = (0..N).map(|i| {
        let url = if i % 2 == 0 {
            s1.url.clone()
        } else {
            s2.url.clone()
        };
        let (c, a) = (c.clone(), a.clone());
        async move {
            let r = post_entry(&c, &url, &a.hashedrekord(format!("replica {i}").as_bytes())).await;
            assert_eq!(r.status(), 201);
            Answer::from_map(&r.json().await.expect("json"))
        }
    });
    let answers = futures::future::join_all(futs).await;
    let mut idx: Vec<u64> = answers.iter().map(Answer::global_index).collect();
    idx.sort();
    assert_eq!(
        idx,
        (0..N).collect::<Vec<_>>(),
        "one tree, no index handed out twice"
    );
    let (_, info) = get_json(&c, &format!("{}/api/v1/log", s2.url)).await;
    let head: Hash = hex::decode(info["rootHash"].as_str().expect("root"))
        .expect("hex")
        .try_into()
        .expect("32");
    for ans in &answers {
        ans.verify(&s1.key);
        let cp =
            sigstack_log::checkpoint::verify(&ans.checkpoint(), "127.0.0.1", &s1.key).expect("cp");
        check_consistency(&c, &s1.url, cp.size, &cp.root, N, &head).await;
    }
}

pub async fn openapi_is_current() {
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../openapi");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_sigstackd"))
        .args(["openapi", "--check", "--out"])
        .arg(&out)
        .status()
        .expect("run sigstackd openapi");
    assert!(
        status.success(),
        "openapi/ is stale: run `cargo run -p sigstackd -- openapi`"
    );
}

/// A new shard freezes the old one: indexes continue globally, old entries still prove
/// against the frozen head, and `inactiveShards` lists it.
pub async fn shards_rotate_and_indexes_continue(b: Backend) {
    let mut s = Server::start(b).await;
    let c = http();
    let a = Artifacts::new();
    let mut old = Vec::new();
    for i in 0..3 {
        let r = post_entry(
            &c,
            &s.url,
            &a.hashedrekord(format!("shard one {i}").as_bytes()),
        )
        .await;
        old.push(Answer::from_map(&r.json().await.expect("json")));
    }
    let (_, before) = get_json(&c, &format!("{}/api/v1/log", s.url)).await;
    s.kill();
    let out = s.cli(&["log", "new-shard"]);
    assert!(out.contains("new active shard"), "{out}");
    s.restart().await;
    let r = post_entry(&c, &s.url, &a.hashedrekord(b"shard two")).await;
    assert_eq!(r.status(), 201);
    let new = Answer::from_map(&r.json().await.expect("json"));
    new.verify(&s.key);
    assert_eq!(
        new.global_index(),
        3,
        "global index continues across shards"
    );
    assert_eq!(
        new.entry["verification"]["inclusionProof"]["logIndex"],
        json!(0)
    );
    let (_, info) = get_json(&c, &format!("{}/api/v1/log", s.url)).await;
    assert_ne!(info["treeID"], before["treeID"]);
    assert_eq!(info["treeSize"], json!(1));
    let shards = info["inactiveShards"]
        .as_array()
        .expect("inactive shards listed");
    assert_eq!(shards.len(), 1);
    assert_eq!(shards[0]["treeID"], before["treeID"]);
    assert_eq!(shards[0]["treeSize"], json!(3));
    assert_eq!(shards[0]["signedTreeHead"], before["signedTreeHead"]);
    for ans in &old {
        let (st, v) = get_json(
            &c,
            &format!(
                "{}/api/v1/log/entries?logIndex={}",
                s.url,
                ans.global_index()
            ),
        )
        .await;
        assert_eq!(st, 200);
        let got = Answer::from_map(&v);
        got.verify(&s.key);
        assert_eq!(got.id, ans.id, "old entries keep their entry IDs");
        let (st, _) = get_json(
            &c,
            &format!("{}/api/v1/log/entries/{}", s.url, &ans.id[16..]),
        )
        .await;
        assert_eq!(st, 200);
    }
    let tree = before["treeID"].as_str().expect("id");
    let (st, v) = get_json(
        &c,
        &format!(
            "{}/api/v1/log/proof?firstSize=1&lastSize=3&treeID={tree}",
            s.url
        ),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(v["rootHash"], before["rootHash"]);
    let (st, _) = get_json(
        &c,
        &format!(
            "{}/api/v1/log/proof?firstSize=1&lastSize=3&treeID=12345",
            s.url
        ),
    )
    .await;
    assert_eq!(st, 400);
}

/// Real keyless entries re-submitted from public-good bundles: the log accepts them
/// (as Rekor, it does not judge a single certificate's validity period), gives them the
/// same UUID Rekor gave them, and finds them by the certificate's e-mail or URI identity.
pub async fn search_by_certificate_identity(b: Backend) {
    let s = Server::start(b).await;
    let c = http();
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    let cases = [
        (
            "sigstore-python-test-assets/test/assets/bundle_v3.txt.sigstore",
            json!({"email": "William@Yossarian.net"}),
        ),
        (
            "conformance-assets/test/assets/bundle-verify/happy-path-v0.3/bundle.sigstore.json",
            json!({"subject": "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"}),
        ),
    ];
    for (path, query) in cases {
        let bundle: Value =
            serde_json::from_slice(&std::fs::read(shared.join(path)).expect("bundle"))
                .expect("json");
        let vm = &bundle["verificationMaterial"];
        let cert = vm["certificate"]["rawBytes"]
            .as_str()
            .or_else(|| vm["x509CertificateChain"]["certificates"][0]["rawBytes"].as_str())
            .expect("certificate");
        let pem = sigstack_crypto::pem::encode("CERTIFICATE", &unb64(cert));
        let ms = &bundle["messageSignature"];
        let entry = json!({
            "apiVersion": "0.0.1", "kind": "hashedrekord",
            "spec": {
                "signature": {"content": ms["signature"], "publicKey": {"content": b64(pem.as_bytes())}},
                "data": {"hash": {"algorithm": "sha256",
                                  "value": hex::encode(unb64(ms["messageDigest"]["digest"].as_str().expect("digest")))}}
            }
        });
        let r = post_entry(&c, &s.url, &entry).await;
        assert_eq!(r.status(), 201, "{path}");
        let ans = Answer::from_map(&r.json().await.expect("json"));
        ans.verify(&s.key);
        let rekor_body = unb64(
            vm["tlogEntries"][0]["canonicalizedBody"]
                .as_str()
                .expect("body"),
        );
        assert_eq!(
            ans.body(),
            rekor_body,
            "same canonical body as Rekor logged"
        );
        assert_eq!(
            &ans.id[16..],
            hex::encode(sigstack_merkle::leaf_hash(&rekor_body)),
            "same UUID as Rekor"
        );
        let r = c
            .post(format!("{}/api/v1/index/retrieve", s.url))
            .json(&query)
            .send()
            .await
            .expect("req");
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.json::<Value>().await.expect("json"),
            json!([ans.id]),
            "{query}"
        );
    }
}

/// A log refuses to start with a key other than the one that signed its checkpoints.
pub async fn refuses_another_key(b: Backend) {
    let mut s = Server::start(b).await;
    let c = http();
    assert_eq!(
        post_entry(&c, &s.url, &Artifacts::new().hashedrekord(b"k"))
            .await
            .status(),
        201
    );
    let (status, log) = s
        .restart_with_new_key()
        .await
        .expect("the process exits by itself");
    assert!(!status.success());
    assert!(
        log.contains("was not signed by signing_key") && log.contains("new-shard --signing-key"),
        "{log}"
    );
}

/// Thousands of self-signed entries naming someone's e-mail cannot hide that person's
/// real entry: answers are newest first, in pages whose next one the answer names (here
/// 10 to a page), and `email AND hash` is intersected before any limit. `sigstack log
/// search` follows the pages.
pub async fn search_poisoning_is_paged_newest_first(b: Backend) {
    let s = Server::start_on(
        b,
        if b == Backend::Postgres {
            fresh_pg_database(&pg_admin_url()).await
        } else {
            String::new()
        },
        &[("SIGSTACK_LOG_SEARCH_PAGE_SIZE", "10")],
    )
    .await;
    let c = http();
    // the real entry: a CA-issued certificate from a public-good bundle
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared");
    let bundle: Value = serde_json::from_slice(
        &std::fs::read(
            shared.join("sigstore-python-test-assets/test/assets/bundle_v3.txt.sigstore"),
        )
        .expect("bundle"),
    )
    .expect("json");
    let cert = bundle["verificationMaterial"]["certificate"]["rawBytes"]
        .as_str()
        .expect("certificate");
    let pem = sigstack_crypto::pem::encode("CERTIFICATE", &unb64(cert));
    let ms = &bundle["messageSignature"];
    let digest = hex::encode(unb64(
        ms["messageDigest"]["digest"].as_str().expect("digest"),
    ));
    let real = json!({
        "apiVersion": "0.0.1", "kind": "hashedrekord",
        "spec": {
            "signature": {"content": ms["signature"], "publicKey": {"content": b64(pem.as_bytes())}},
            "data": {"hash": {"algorithm": "sha256", "value": digest}}
        }
    });
    let r = post_entry(&c, &s.url, &real).await;
    assert_eq!(r.status(), 201);
    let real_id = Answer::from_map(&r.json().await.expect("json")).id;
    // the poison: 25 later entries with self-signed certificates naming the same address
    let dir = temp_dir("poison");
    let f = |n: &str| dir.join(n).display().to_string();
    let victim = "william@yossarian.net";
    for i in 0..25 {
        let (ok, out) = crate::keyless::run(std::process::Command::new("openssl").args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &f("k.pem"),
            "-out",
            &f("c.pem"),
            "-subj",
            "/CN=poison",
            "-days",
            "1",
            "-addext",
            &format!("subjectAltName=email:{victim}"),
        ]));
        assert!(ok, "{out}");
        let data = format!("poison {i}");
        std::fs::write(dir.join("d"), &data).expect("w");
        let (ok, out) = crate::keyless::run(std::process::Command::new("openssl").args([
            "dgst",
            "-sha256",
            "-sign",
            &f("k.pem"),
            "-out",
            &f("sig"),
            &f("d"),
        ]));
        assert!(ok, "{out}");
        let entry = json!({
            "apiVersion": "0.0.1", "kind": "hashedrekord",
            "spec": {
                "signature": {"content": b64(&std::fs::read(dir.join("sig")).expect("sig")),
                              "publicKey": {"content": b64(&std::fs::read(dir.join("c.pem")).expect("cert"))}},
                "data": {"hash": {"algorithm": "sha256", "value": hex::encode(sigstack_crypto::sha256(data.as_bytes()))}}
            }
        });
        let r = post_entry(&c, &s.url, &entry).await;
        assert_eq!(r.status(), 201, "poison {i}");
    }
    let search = |query: Value, before: Option<String>| {
        let c = c.clone();
        let url = match before {
            Some(b) => format!("{}/api/v1/index/retrieve?before={b}", s.url),
            None => format!("{}/api/v1/index/retrieve", s.url),
        };
        async move {
            let r = c.post(url).json(&query).send().await.expect("req");
            assert_eq!(r.status(), 200);
            let next = r
                .headers()
                .get("x-sigstack-next-page")
                .map(|v| v.to_str().expect("ascii").to_string());
            let ids: Vec<String> = r.json().await.expect("json");
            (ids, next)
        }
    };
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let (ids, next) = search(json!({"email": victim}), cursor.clone()).await;
        pages.push(ids);
        match next {
            Some(n) => cursor = Some(n),
            None => break,
        }
        assert!(pages.len() < 10, "the pages end");
    }
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [10, 10, 6], "26 entries, 10 to a page");
    let all: Vec<&String> = pages.iter().flatten().collect();
    assert_eq!(
        all.last(),
        Some(&&real_id),
        "newest first: the real entry, logged first, is last"
    );
    assert!(!pages[0].contains(&real_id));
    let unique: std::collections::BTreeSet<&&String> = all.iter().collect();
    assert_eq!(unique.len(), 26, "no entry twice across pages");
    // e-mail AND digest: intersected before the page limit
    let (ids, next) = search(
        json!({"email": victim, "hash": format!("sha256:{digest}"), "operator": "and"}),
        None,
    )
    .await;
    assert_eq!((ids, next), (vec![real_id.clone()], None));
    // a bad cursor is a 400
    let r = c
        .post(format!("{}/api/v1/index/retrieve?before=x", s.url))
        .json(&json!({"email": victim}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 400);
    // the client follows the pages
    let cli = crate::client::Sigstack::new(&temp_dir("poison-client"));
    let o = cli.run(&[
        "--output",
        "json",
        "log",
        "search",
        "--email",
        victim,
        "--rekor-url",
        &s.url,
    ]);
    assert!(o.ok(), "{o}");
    let got: Vec<String> = serde_json::from_str(&o.stdout).expect("json");
    assert_eq!(got.len(), 26);
    assert_eq!(got.last(), Some(&real_id));
}
