//! Each service's documented wire format, spoken by a local stand-in (these services
//! cannot run here): the stand-in checks the credentials and requests as the service
//! would and signs with a real key, and the signatures must verify with the public key
//! the client read.

use super::*;
use sigstack_crypto::{Curve, FileSigner};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Request {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Request {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn form(&self) -> HashMap<String, String> {
        reqwest::Url::parse(&format!(
            "http://x/?{}",
            String::from_utf8_lossy(&self.body)
        ))
        .expect("form")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
    }
    fn bearer(&self) -> &str {
        self.headers
            .get("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or("")
    }
}

type Handler = dyn Fn(&Request) -> (u16, Value) + Send + Sync;

/// An HTTP/1.1 server on a loopback port answering with `handler`.
fn serve(handler: Arc<Handler>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let handler = handler.clone();
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let n = conn.read(&mut chunk).unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let mut lines = head.lines();
                let mut first = lines.next().unwrap_or_default().split(' ');
                let method = first.next().unwrap_or_default().to_string();
                let path = first.next().unwrap_or_default().to_string();
                let headers: HashMap<String, String> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                let len: usize = headers
                    .get("content-length")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0);
                let mut body = buf[head_end..].to_vec();
                while body.len() < len {
                    let n = conn.read(&mut chunk).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    body.extend_from_slice(&chunk[..n]);
                }
                let (status, answer) = handler(&Request {
                    method,
                    path,
                    headers,
                    body,
                });
                let text = answer.to_string();
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            });
        }
    });
    format!("http://{addr}")
}

fn env_of(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<&str, String> = pairs.into_iter().collect();
    move |k| map.get(k).cloned()
}

/// r‖s of a DER ECDSA signature (P-256), as a JWS carries it.
fn raw_of(der_sig: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = &der_sig[2..];
    for _ in 0..2 {
        let len = rest[1] as usize;
        let int = &rest[2..2 + len];
        let int = if int.len() > 32 {
            &int[int.len() - 32..]
        } else {
            int
        };
        out.extend(std::iter::repeat_n(0u8, 32 - int.len()));
        out.extend_from_slice(int);
        rest = &rest[2 + len..];
    }
    out
}

fn checks_out(signer: &RemoteSigner, key: &FileSigner) {
    assert_eq!(
        signer.public_key(),
        key.public_key(),
        "the public key read back"
    );
    let sig = signer.sign(b"release 1.0").expect("sign");
    key.public_key()
        .verify_default(b"release 1.0", &sig)
        .expect("the service's signature verifies");
    let digest = sigstack_crypto::sha256(b"another");
    let sig = signer.sign_digest(&digest).expect("sign a digest");
    key.public_key()
        .verify_default(b"another", &sig)
        .expect("a digest's signature verifies");
}

#[test]
fn google_cloud_kms_signs_with_a_service_accounts_token() {
    let key = Arc::new(FileSigner::generate(Curve::P256));
    let sa_pem = sigstack_crypto::RsaFileSigner::generate_pem().expect("rsa");
    let sa_public = sigstack_crypto::RsaFileSigner::from_pem(&sa_pem)
        .expect("sa key")
        .public_key()
        .clone();
    let tokens = Arc::new(AtomicUsize::new(0));
    let base = Arc::new(Mutex::new(String::new()));
    let k = "projects/p/locations/global/keyRings/r/cryptoKeys/release";
    let (key2, tokens2, base2) = (key.clone(), tokens.clone(), base.clone());
    let url = serve(Arc::new(move |r: &Request| {
        let token_uri = format!("{}/token", base2.lock().expect("l"));
        if r.path == "/token" {
            let form = r.form();
            assert_eq!(
                form["grant_type"],
                "urn:ietf:params:oauth:grant-type:jwt-bearer"
            );
            let parts: Vec<&str> = form["assertion"].split('.').collect();
            let sig = URL_SAFE_NO_PAD.decode(parts[2]).expect("b64");
            if sa_public
                .verify_default(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
                .is_err()
            {
                return (400, json!({"error": "invalid_grant"}));
            }
            let claims: Value =
                serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64"))
                    .expect("json");
            assert_eq!(claims["aud"], token_uri.as_str());
            assert_eq!(claims["scope"], "https://www.googleapis.com/auth/cloudkms");
            tokens2.fetch_add(1, Ordering::SeqCst);
            return (
                200,
                json!({"access_token": "gcp-token", "expires_in": 3600}),
            );
        }
        if r.bearer() != "gcp-token" {
            return (
                401,
                json!({"error": {"message": "Request had invalid authentication credentials."}}),
            );
        }
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", p) if p.starts_with(&format!("/v1/{k}/cryptoKeyVersions?")) => (
                200,
                json!({"cryptoKeyVersions": [
                    {"name": format!("{k}/cryptoKeyVersions/1"), "state": "DISABLED"},
                    {"name": format!("{k}/cryptoKeyVersions/2"), "state": "ENABLED"},
                ]}),
            ),
            ("GET", p) if p == format!("/v1/{k}/cryptoKeyVersions/2/publicKey") => (
                200,
                json!({"pem": key2.public_key().to_pem(), "algorithm": "EC_SIGN_P256_SHA256"}),
            ),
            ("POST", p) if p == format!("/v1/{k}/cryptoKeyVersions/2:asymmetricSign") => {
                let d = STANDARD
                    .decode(r.json()["digest"]["sha256"].as_str().expect("sha256"))
                    .expect("b64");
                let d: [u8; 32] = d.try_into().expect("32 bytes");
                let sig = key2.sign_digest(&d).expect("sign");
                (200, json!({"signature": STANDARD.encode(sig), "name": p}))
            }
            _ => (
                404,
                json!({"error": {"message": format!("no {} {}", r.method, r.path)}}),
            ),
        }
    }));
    *base.lock().expect("l") = url.clone();
    let dir = std::env::temp_dir().join(format!("sigstack-gcp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let creds = dir.join("sa.json");
    std::fs::write(
        &creds,
        json!({"type": "service_account", "client_email": "signer@p.iam.gserviceaccount.com",
               "private_key": sa_pem, "token_uri": format!("{url}/token")})
        .to_string(),
    )
    .expect("w");
    let env = env_of(vec![
        (
            "GOOGLE_APPLICATION_CREDENTIALS",
            creds.display().to_string(),
        ),
        (
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS",
            format!("{url}/"),
        ),
    ]);
    let signer = RemoteSigner::open(&format!("gcpkms://{k}"), &env).expect("open");
    checks_out(&signer, &key);
    assert_eq!(tokens.load(Ordering::SeqCst), 1, "the token is reused");
    // a key that is not there: the service's message
    let err = RemoteSigner::open(&format!("gcpkms://{k}-gone/cryptoKeyVersions/1"), &env)
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("HTTP 404"), "{err:#}");
    let err = Remote::parse("gcpkms://keyRings/r", &env)
        .err()
        .expect("refused");
    assert!(
        format!("{err:#}").contains("gcpkms://projects/P"),
        "{err:#}"
    );
}

#[test]
fn azure_key_vault_signs_with_a_service_principals_token() {
    let key = Arc::new(FileSigner::generate(Curve::P256));
    let key2 = key.clone();
    let url = serve(Arc::new(move |r: &Request| {
        if r.path == "/tenant-1/oauth2/v2.0/token" {
            let form = r.form();
            let ok = form["grant_type"] == "client_credentials"
                && form["client_id"] == "app-1"
                && form["client_secret"] == "s3cret"
                && form["scope"] == "https://vault.azure.net/.default";
            return if ok {
                (
                    200,
                    json!({"access_token": "az-token", "expires_in": 3599, "token_type": "Bearer"}),
                )
            } else {
                (
                    401,
                    json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}),
                )
            };
        }
        if r.bearer() != "az-token" {
            return (
                401,
                json!({"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer"}}),
            );
        }
        let spki = key2.public_key().spki_der();
        let point = &spki[spki.len() - 64..];
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/keys/release?api-version=7.4") => (
                200,
                json!({"key": {"kid": "https://corp.vault.azure.net/keys/release/v7", "kty": "EC-HSM", "crv": "P-256",
                    "x": URL_SAFE_NO_PAD.encode(&point[..32]), "y": URL_SAFE_NO_PAD.encode(&point[32..]),
                    "key_ops": ["sign", "verify"]}, "attributes": {"enabled": true}}),
            ),
            ("POST", "/keys/release/v7/sign?api-version=7.4") => {
                let b = r.json();
                assert_eq!(b["alg"], "ES256");
                let d = URL_SAFE_NO_PAD
                    .decode(b["value"].as_str().expect("value"))
                    .expect("b64url");
                let d: [u8; 32] = d.try_into().expect("32 bytes");
                let sig = key2.sign_digest(&d).expect("sign");
                (
                    200,
                    json!({"kid": "https://corp.vault.azure.net/keys/release/v7", "value": URL_SAFE_NO_PAD.encode(raw_of(&sig))}),
                )
            }
            _ => (
                404,
                json!({"error": {"code": "KeyNotFound", "message": format!("no {} {}", r.method, r.path)}}),
            ),
        }
    }));
    let host = url.trim_start_matches("http://").to_string();
    let env = env_of(vec![
        ("AZURE_TENANT_ID", "tenant-1".into()),
        ("AZURE_CLIENT_ID", "app-1".into()),
        ("AZURE_CLIENT_SECRET", "s3cret".into()),
        ("AZURE_AUTHORITY_HOST", url.clone()),
    ]);
    let signer = RemoteSigner::open(&format!("azurekms://{host}/release"), &env).expect("open");
    checks_out(&signer, &key);
    let wrong = env_of(vec![
        ("AZURE_TENANT_ID", "tenant-1".into()),
        ("AZURE_CLIENT_ID", "app-1".into()),
        ("AZURE_CLIENT_SECRET", "wrong".into()),
        ("AZURE_AUTHORITY_HOST", url.clone()),
    ]);
    let err = RemoteSigner::open(&format!("azurekms://{host}/release"), &wrong)
        .err()
        .expect("refused");
    assert!(
        format!("{err:#}").contains("Invalid client secret"),
        "{err:#}"
    );
}

#[test]
fn vault_transit_signs_prehashed_digests() {
    let key = Arc::new(FileSigner::generate(Curve::P256));
    let key2 = key.clone();
    let url = serve(Arc::new(move |r: &Request| {
        if r.headers.get("x-vault-token").map(String::as_str) != Some("vt-1") {
            return (403, json!({"errors": ["permission denied"]}));
        }
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/v1/transit/keys/release") => (
                200,
                json!({"data": {"latest_version": 1, "type": "ecdsa-p256",
                    "keys": {"1": {"name": "P-256", "public_key": key2.public_key().to_pem()}}}}),
            ),
            ("POST", "/v1/transit/sign/release/sha2-256") => {
                let b = r.json();
                assert_eq!(b["prehashed"], true);
                let d = STANDARD
                    .decode(b["input"].as_str().expect("input"))
                    .expect("b64");
                let d: [u8; 32] = d.try_into().expect("32 bytes");
                let sig = key2.sign_digest(&d).expect("sign");
                (
                    200,
                    json!({"data": {"signature": format!("vault:v1:{}", STANDARD.encode(sig)), "key_version": 1}}),
                )
            }
            _ => (404, json!({"errors": []})),
        }
    }));
    let env = env_of(vec![
        ("VAULT_ADDR", url.clone()),
        ("VAULT_TOKEN", "vt-1".into()),
    ]);
    let signer = RemoteSigner::open("hashivault://release", &env).expect("open");
    checks_out(&signer, &key);
    let wrong = env_of(vec![("VAULT_ADDR", url), ("VAULT_TOKEN", "nope".into())]);
    let err = RemoteSigner::open("hashivault://release", &wrong)
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("permission denied"), "{err:#}");
    let err = Remote::parse("hashivault://release", &env_of(vec![]))
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("VAULT_ADDR"), "{err:#}");
}
