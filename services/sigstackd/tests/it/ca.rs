//! The CA and its CT log as separate processes (`sigstackd ctlog`, `sigstackd ca`) on
//! either backend, with tokens from a test issuer served over HTTP: both request forms,
//! the legacy API, the certificate profile and its embedded SCT, the CT log's proofs,
//! and every kind of bad input refused with nothing logged.

use crate::castack::*;
use crate::issuer::{Key, b64u, jws, now};
use crate::support::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sigstack_ca::cert;
use sigstack_crypto::{Curve, FileSigner, KeyMaterial, Signer};
use sigstack_merkle::{leaf_hash, verify_consistency};
use std::time::Duration;

pub async fn issues_certificates_for_every_request_form(b: Backend) {
    let s = CaStack::start(b).await;
    let email = "dev@example.test";
    let before = s.tree_size().await;

    // sigstore-python / cosign: CSR + Bearer, with each token algorithm
    for kid in ["es", "rs", "ed"] {
        let key = FileSigner::generate(Curve::P256);
        let token = s.issuer.token(kid, &s.issuer.claims(email));
        let body = json!({"certificateSigningRequest": STANDARD.encode(csr(&key, &key))});
        let (st, res) = s.sign_cert(&body, Some(&token)).await;
        assert_eq!(st, 200, "{kid}: {res}");
        let pems = res["signedCertificateEmbeddedSct"]["chain"]["certificates"]
            .as_array()
            .expect("chain");
        let leaf = s.check_chain(pems, key.public_key()).await;
        assert_eq!(leaf.emails(), vec![email]);
        assert_eq!(
            leaf.extension("1.3.6.1.4.1.57264.1.1").expect("issuer v1"),
            s.issuer.url.as_bytes()
        );
    }

    // sigstore-js: credentials + publicKeyRequest with a proof of possession, P-384 key
    let key = FileSigner::generate(Curve::P384);
    let token = s.issuer.token("es", &s.issuer.claims(email));
    let (st, res) = s.sign_cert(&pop_request(&token, &key, email), None).await;
    assert_eq!(st, 200, "{res}");
    s.check_chain(
        res["signedCertificateEmbeddedSct"]["chain"]["certificates"]
            .as_array()
            .expect("chain"),
        key.public_key(),
    )
    .await;

    // a kubernetes meta-issuer: URI SAN, the challenge is `sub`
    let k8s = format!("{}/k8s", s.issuer.url);
    let mut claims = json!({"iss": k8s, "sub": "system:serviceaccount:ns1:builder", "aud": "sigstore",
        "iat": now(), "exp": now() + 300, "kubernetes.io": {"namespace": "ns1", "serviceaccount": {"name": "builder"}}});
    let token = s.issuer.token("ed", &claims);
    let key = FileSigner::generate(Curve::P256);
    let (st, res) = s
        .sign_cert(
            &pop_request(&token, &key, "system:serviceaccount:ns1:builder"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{res}");
    let leaf = s
        .check_chain(
            res["signedCertificateEmbeddedSct"]["chain"]["certificates"]
                .as_array()
                .expect("chain"),
            key.public_key(),
        )
        .await;
    assert_eq!(
        leaf.subjects(),
        vec!["https://kubernetes.io/namespaces/ns1/serviceaccounts/builder"]
    );
    claims["iss"] = json!(format!("{}/other/k8s", s.issuer.url));
    let (st, _) = s
        .sign_cert(
            &pop_request(&s.issuer.token("ed", &claims), &key, "x"),
            None,
        )
        .await;
    assert_eq!(st, 401, "the wildcard matches one URL segment only");

    // legacy v1: 201 and a PEM chain
    let key = FileSigner::generate(Curve::P256);
    let token = s.issuer.token("rs", &s.issuer.claims(email));
    let res = s.http.post(format!("{}/api/v1/signingCert", s.ca.url)).bearer_auth(&token)
        .json(&json!({"publicKey": {"algorithm": "ecdsa", "content": STANDARD.encode(key.public_key().to_pem())},
                      "signedEmailAddress": STANDARD.encode(key.sign(email.as_bytes()).expect("sign"))}))
        .send().await.expect("send");
    assert_eq!(res.status(), 201);
    assert_eq!(
        res.headers()["content-type"],
        "application/pem-certificate-chain"
    );
    let pem = res.text().await.expect("text");
    let KeyMaterial::Certificates(certs) = KeyMaterial::from_pem(pem.as_bytes()).expect("pem")
    else {
        panic!("chain")
    };
    assert_eq!(certs.len(), 3);
    assert_eq!(certs[0].public_key(), key.public_key());

    assert_eq!(
        s.tree_size().await,
        before + 6,
        "one CT entry per certificate"
    );

    // add-chain of a final certificate logs it once: a resubmission gets an SCT for the
    // same timestamp and adds nothing
    let chain: Vec<String> = certs.iter().map(|c| STANDARD.encode(c.der())).collect();
    let add = |chain: Vec<String>| {
        let http = s.http.clone();
        let url = format!("{}/ct/v1/add-chain", s.ctlog.url);
        async move {
            let r = http
                .post(url)
                .json(&json!({"chain": chain}))
                .send()
                .await
                .expect("send");
            let st = r.status().as_u16();
            (st, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (st, first) = add(chain.clone()).await;
    assert_eq!(st, 200, "{first}");
    let (st, again) = add(chain.clone()).await;
    assert_eq!(st, 200, "{again}");
    assert_eq!(first["timestamp"], again["timestamp"], "deduplicated");
    assert_eq!(s.tree_size().await, before + 7);
    // CA certificates are not logged, and a leaf cannot issue into the chain
    let (st, res) = add(chain[1..].to_vec()).await;
    assert_eq!(st, 400, "{res}");
    let t = now() as u64;
    let forged = cert::ca_certificate(
        cert::ca_name("x", "forged").expect("n"),
        &FileSigner::generate(Curve::P256),
        Some((&certs[0].parsed().tbs_certificate.subject, &key)),
        cert::serial([7; 20]).expect("s"),
        t,
        t + 60,
        None,
        false,
    )
    .expect("forged");
    let mut through_leaf = vec![STANDARD.encode(&forged)];
    through_leaf.extend(chain.iter().cloned());
    let (st, res) = add(through_leaf).await;
    assert_eq!(st, 400, "{res}");
    assert!(
        res["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not a CA"),
        "{res}"
    );
    assert_eq!(s.tree_size().await, before + 7);

    // trust bundle, root cert, configuration
    let (st, tb) = get_json(&s.http, &format!("{}/api/v2/trustBundle", s.ca.url)).await;
    assert_eq!(st, 200);
    assert_eq!(
        tb["chains"][0]["certificates"]
            .as_array()
            .expect("certs")
            .len(),
        2
    );
    let root_pem = s
        .http
        .get(format!("{}/api/v1/rootCert", s.ca.url))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    assert!(root_pem.contains(&s.chain[1].to_pem()));
    let (st, cfg) = get_json(&s.http, &format!("{}/api/v2/configuration", s.ca.url)).await;
    assert_eq!(st, 200);
    let issuers = cfg["issuers"].as_array().expect("issuers");
    assert!(
        issuers
            .iter()
            .any(|i| i["issuerUrl"] == s.issuer.url.as_str() && i["challengeClaim"] == "email")
    );
    assert!(issuers.iter().any(
        |i| i["wildcardIssuerUrl"] == "http://127.0.0.1:*/k8s" && i["challengeClaim"] == "sub"
    ));

    // CT log reads: entries and consistency
    let (st, entries) = get_json(
        &s.http,
        &format!("{}/ct/v1/get-entries?start=0&end=100", s.ctlog.url),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(
        entries["entries"].as_array().expect("entries").len() as u64,
        before + 7
    );
    // a precertificate resubmitted (from get-entries) gets the logged timestamp back
    let first = &entries["entries"][0];
    let extra = STANDARD
        .decode(first["extra_data"].as_str().expect("extra"))
        .expect("b64");
    let n = u32::from_be_bytes([0, extra[0], extra[1], extra[2]]) as usize;
    let precert = &extra[3..3 + n];
    let leaf_input = STANDARD
        .decode(first["leaf_input"].as_str().expect("leaf"))
        .expect("b64");
    let logged = u64::from_be_bytes(leaf_input[2..10].try_into().expect("8 bytes"));
    let chain = vec![
        STANDARD.encode(precert),
        STANDARD.encode(s.chain[0].der()),
        STANDARD.encode(s.chain[1].der()),
    ];
    let res = s
        .http
        .post(format!("{}/ct/v1/add-pre-chain", s.ctlog.url))
        .json(&json!({ "chain": chain }))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 200);
    let sct: Value = res.json().await.expect("json");
    assert_eq!(sct["timestamp"].as_u64(), Some(logged));
    assert_eq!(s.tree_size().await, before + 7, "nothing new was logged");
    let size = s.tree_size().await;
    let (_, sth) = get_json(&s.http, &format!("{}/ct/v1/get-sth", s.ctlog.url)).await;
    let leaves: Vec<[u8; 32]> = entries["entries"]
        .as_array()
        .expect("e")
        .iter()
        .map(|e| {
            leaf_hash(
                &STANDARD
                    .decode(e["leaf_input"].as_str().expect("s"))
                    .expect("b64"),
            )
        })
        .collect();
    let root = |n: usize| {
        let mut f = sigstack_merkle::Frontier::new();
        for l in &leaves[..n] {
            f.append(*l, |_, _| {});
        }
        f.root()
    };
    let root_now: [u8; 32] = STANDARD
        .decode(sth["sha256_root_hash"].as_str().expect("r"))
        .expect("b64")
        .try_into()
        .expect("32");
    assert_eq!(
        root(size as usize),
        root_now,
        "get-entries leaves reproduce the signed root"
    );
    let (st, cons) = get_json(
        &s.http,
        &format!(
            "{}/ct/v1/get-sth-consistency?first=2&second={size}",
            s.ctlog.url
        ),
    )
    .await;
    assert_eq!(st, 200);
    let proof = hashes(&cons["consistency"]);
    verify_consistency(2, size, &proof, &root(2), &root_now).expect("consistency");
    let (st, _) = get_json(
        &s.http,
        &format!(
            "{}/ct/v1/get-sth-consistency?first=3&second={}",
            s.ctlog.url,
            size + 1
        ),
    )
    .await;
    assert_eq!(st, 400);
}

pub async fn bad_requests_issue_nothing(b: Backend) {
    let s = CaStack::start(b).await;
    let email = "dev@example.test";
    let before = s.tree_size().await;
    let key = FileSigner::generate(Curve::P256);
    let good_csr = json!({"certificateSigningRequest": STANDARD.encode(csr(&key, &key))});
    let claims = s.issuer.claims(email);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims.clone();
        f(&mut c);
        c
    };
    let stranger = Key::es256();
    let es_pub = s.issuer.state.keys.read().expect("k")[0].1.public_der();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "unknown issuer",
            s.issuer.token(
                "es",
                &with(&|c| c["iss"] = json!("https://unknown.example")),
            ),
            401,
            "not trusted",
        ),
        (
            "bad signature",
            jws(&json!({"alg": "ES256", "kid": "es"}), &claims, |m| {
                stranger.sign(m)
            }),
            401,
            "signature",
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64u(br#"{"alg":"none"}"#),
                b64u(claims.to_string().as_bytes())
            ),
            401,
            "none",
        ),
        (
            "HS256 with the public key",
            jws(&json!({"alg": "HS256", "kid": "es"}), &claims, |m| {
                let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &es_pub);
                aws_lc_rs::hmac::sign(&k, m).as_ref().to_vec()
            }),
            401,
            "HS256",
        ),
        (
            "expired",
            s.issuer.token(
                "es",
                &with(&|c| {
                    c["exp"] = json!(now() - 3600);
                    c["iat"] = json!(now() - 4000);
                }),
            ),
            401,
            "expired",
        ),
        (
            "issued in the future",
            s.issuer.token(
                "es",
                &with(&|c| {
                    c["iat"] = json!(now() + 3600);
                    c["exp"] = json!(now() + 4000);
                }),
            ),
            401,
            "future",
        ),
        (
            "not yet valid",
            s.issuer
                .token("es", &with(&|c| c["nbf"] = json!(now() + 3600))),
            401,
            "not valid yet",
        ),
        (
            "wrong audience",
            s.issuer
                .token("es", &with(&|c| c["aud"] = json!("someone-else"))),
            401,
            "audience",
        ),
        (
            "unverified email",
            s.issuer
                .token("es", &with(&|c| c["email_verified"] = json!(false))),
            401,
            "verified",
        ),
        ("garbage", "not.a.jwt".to_string(), 401, "token"),
    ];
    for (what, token, status, needle) in &cases {
        let (st, res) = s.sign_cert(&good_csr, Some(token)).await;
        assert_eq!(st, *status, "{what}: {res}");
        let msg = res["message"].as_str().unwrap_or_default().to_lowercase();
        assert!(
            msg.contains(&needle.to_lowercase()),
            "{what}: message {msg:?} should mention {needle:?}"
        );
    }
    let token = s.issuer.token("es", &claims);
    let other = FileSigner::generate(Curve::P256);
    let secp256k1 = "-----BEGIN PUBLIC KEY-----\nMFYwEAYHKoZIzj0CAQYFK4EEAAoDQgAEEFVHcmpR2YLWMYQnhaDb0aO0cojvpZEF\n/54nTyQHY3tXix/IaB6xkCcMKWRCn6kvSXU/9nJVE7HKEseiuaRRjQ==\n-----END PUBLIC KEY-----\n";
    let bodies: Vec<(&str, Value, Option<&str>, u16, &str)> = vec![
        ("no token", good_csr.clone(), None, 401, "no identity token"),
        (
            "proof by another key",
            {
                let mut b = pop_request(&token, &key, email);
                b["publicKeyRequest"]["proofOfPossession"] =
                    json!(STANDARD.encode(other.sign(email.as_bytes()).expect("s")));
                b
            },
            None,
            400,
            "proof of possession",
        ),
        (
            "proof over another name",
            pop_request(&token, &key, "mallory@example.test"),
            None,
            400,
            "proof of possession",
        ),
        (
            "CSR signed by another key",
            json!({"certificateSigningRequest": STANDARD.encode(csr(&key, &other))}),
            Some(&token),
            400,
            "signature",
        ),
        (
            "unsupported curve",
            json!({"credentials": {"oidcIdentityToken": token}, "publicKeyRequest": {
            "publicKey": {"content": secp256k1}, "proofOfPossession": STANDARD.encode([1u8; 64])}}),
            None,
            400,
            "curve",
        ),
        (
            "malformed PEM",
            json!({"certificateSigningRequest": STANDARD.encode("-----BEGIN CERTIFICATE REQUEST-----\nAAAA")}),
            Some(&token),
            400,
            "pem",
        ),
        (
            "CSR not base64",
            json!({"certificateSigningRequest": "%%%"}),
            Some(&token),
            400,
            "base64",
        ),
        (
            "no key",
            json!({"credentials": {"oidcIdentityToken": token}}),
            None,
            400,
            "required",
        ),
    ];
    for (what, body, bearer, status, needle) in &bodies {
        let (st, res) = s.sign_cert(body, *bearer).await;
        assert_eq!(st, *status, "{what}: {res}");
        let msg = res["message"].as_str().unwrap_or_default().to_lowercase();
        assert!(
            msg.contains(&needle.to_lowercase()),
            "{what}: message {msg:?} should mention {needle:?}"
        );
    }
    // malformed JSON and oversize bodies
    let res = s
        .http
        .post(format!("{}/api/v2/signingCert", s.ca.url))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 400);
    let res = s
        .http
        .post(format!("{}/api/v2/signingCert", s.ca.url))
        .header("content-type", "application/json")
        .body(format!(
            "{{\"certificateSigningRequest\": \"{}\"}}",
            "A".repeat(200 << 10)
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 413);

    assert_eq!(s.tree_size().await, before, "nothing reached the CT log");

    // the CT log itself refuses chains to other roots and non-precerts on add-pre-chain
    let foreign = FileSigner::generate(Curve::P256);
    let name = cert::ca_name("evil", "evil").expect("n");
    let t = now() as u64;
    let evil = cert::ca_certificate(
        name,
        &foreign,
        None,
        cert::serial([9; 20]).expect("s"),
        t,
        t + 60,
        None,
        false,
    )
    .expect("c");
    for (path, chain) in [
        ("add-chain", vec![STANDARD.encode(&evil)]),
        (
            "add-pre-chain",
            vec![
                STANDARD.encode(s.chain[0].der()),
                STANDARD.encode(s.chain[1].der()),
            ],
        ),
        ("add-chain", vec!["!!".to_string()]),
    ] {
        let res = s
            .http
            .post(format!("{}/ct/v1/{path}", s.ctlog.url))
            .json(&json!({"chain": chain}))
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), 400, "{path}");
    }
    assert_eq!(s.tree_size().await, before);
}

pub async fn learns_rotated_issuer_keys(b: Backend) {
    let s = CaStack::start(b).await;
    let email = "dev@example.test";
    let key = FileSigner::generate(Curve::P256);
    let body = json!({"certificateSigningRequest": STANDARD.encode(csr(&key, &key))});
    for _ in 0..3 {
        let (st, res) = s
            .sign_cert(&body, Some(&s.issuer.token("es", &s.issuer.claims(email))))
            .await;
        assert_eq!(st, 200, "{res}");
    }
    let fetches = s
        .issuer
        .state
        .jwks_fetches
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(fetches, 1, "the key set is cached");
    s.issuer.add_key("rotated", Key::es256());
    // refetches for unknown key ids are at most one per 10 s per issuer
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    let (st, res) = s
        .sign_cert(
            &body,
            Some(&s.issuer.token("rotated", &s.issuer.claims(email))),
        )
        .await;
    assert_eq!(
        st, 200,
        "an unknown kid makes the CA refetch the key set: {res}"
    );
    assert_eq!(
        s.issuer
            .state
            .jwks_fetches
            .load(std::sync::atomic::Ordering::SeqCst),
        2
    );
    let _ = &s.dir;
}
