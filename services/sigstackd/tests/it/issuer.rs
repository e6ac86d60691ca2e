//! A test OIDC issuer in the test process: discovery and JWKS over real HTTP, keys of
//! every algorithm the CA accepts, key rotation, and token minting. (The third-party
//! issuer `oidc-provider-mock` is used by the interop test; this one lets tests craft
//! tokens no real issuer would mint: expired, wrong audience, `alg: none`, ...)

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair,
};
use axum::Json;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

pub fn b64u(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

pub enum Key {
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

impl Key {
    pub fn es256() -> Self {
        Key::Es256(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("P-256"))
    }
    pub fn rs256() -> Self {
        Key::Rs256(RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("RSA"))
    }
    pub fn eddsa() -> Self {
        Key::EdDsa(Ed25519KeyPair::generate().expect("Ed25519"))
    }
    pub fn alg(&self) -> &'static str {
        match self {
            Key::Es256(_) => "ES256",
            Key::Rs256(_) => "RS256",
            Key::EdDsa(_) => "EdDSA",
        }
    }
    /// DER of the public key as the JWK needs it.
    pub fn public_der(&self) -> Vec<u8> {
        match self {
            Key::Es256(k) => k.public_key().as_ref().to_vec(),
            Key::Rs256(k) => k.public_key().as_ref().to_vec(),
            Key::EdDsa(k) => k.public_key().as_ref().to_vec(),
        }
    }
    fn jwk(&self, kid: &str) -> Value {
        match self {
            Key::Es256(k) => {
                let p = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
                       "x": b64u(&p[1..33]), "y": b64u(&p[33..65])})
            }
            Key::Rs256(k) => {
                // RSAPublicKey ::= SEQUENCE { n INTEGER, e INTEGER }
                use der::{Decode, Reader};
                let der = k.public_key().as_ref();
                let mut r = der::SliceReader::new(der).expect("der");
                let (n, e) = r
                    .sequence(|r| {
                        let n = der::asn1::UintRef::decode(r)?;
                        let e = der::asn1::UintRef::decode(r)?;
                        Ok((n.as_bytes().to_vec(), e.as_bytes().to_vec()))
                    })
                    .expect("RSAPublicKey");
                json!({"kty": "RSA", "kid": kid, "use": "sig", "n": b64u(&n), "e": b64u(&e)})
            }
            Key::EdDsa(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig", "x": b64u(k.public_key().as_ref())})
            }
        }
    }
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Key::Es256(k) => k.sign(&rng, msg).expect("sign").as_ref().to_vec(),
            Key::Rs256(k) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(&aws_lc_rs::signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig)
                    .expect("sign");
                sig
            }
            Key::EdDsa(k) => k.sign(msg).as_ref().to_vec(),
        }
    }
}

/// A compact JWS over `header` and `claims`, signed by `sign`.
pub fn jws(header: &Value, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        b64u(header.to_string().as_bytes()),
        b64u(claims.to_string().as_bytes())
    );
    let sig = sign(input.as_bytes());
    format!("{input}.{}", b64u(&sig))
}

#[derive(Default)]
pub struct IssuerState {
    pub base: String,
    pub keys: RwLock<Vec<(String, Key)>>,
    pub jwks_fetches: AtomicUsize,
}

pub struct TestIssuer {
    pub url: String,
    pub state: Arc<IssuerState>,
}

/// This server is two issuers: `<base>` and `<base>/k8s`.
async fn discovery(State(s): State<Arc<IssuerState>>) -> Json<Value> {
    discovery_of(&s, s.base.clone())
}

async fn k8s_discovery(State(s): State<Arc<IssuerState>>) -> Json<Value> {
    discovery_of(&s, format!("{}/k8s", s.base))
}

fn discovery_of(s: &IssuerState, issuer: String) -> Json<Value> {
    Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{}/jwks", s.base),
        "authorization_endpoint": format!("{}/auth", s.base),
        "token_endpoint": format!("{}/token", s.base),
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
    }))
}

async fn jwks(State(s): State<Arc<IssuerState>>) -> Json<Value> {
    s.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let keys = s.keys.read().expect("keys");
    Json(json!({"keys": keys.iter().map(|(kid, k)| k.jwk(kid)).collect::<Vec<_>>()}))
}

impl TestIssuer {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(IssuerState {
            base: url.clone(),
            keys: RwLock::new(vec![
                ("es".into(), Key::es256()),
                ("rs".into(), Key::rs256()),
                ("ed".into(), Key::eddsa()),
            ]),
            ..Default::default()
        });
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/k8s/.well-known/openid-configuration", get(k8s_discovery))
            .route("/jwks", get(jwks))
            .with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, state }
    }

    /// Claims of a valid e-mail identity token for `email`.
    pub fn claims(&self, email: &str) -> Value {
        let now = now();
        json!({"iss": self.url, "sub": email, "aud": ["sigstore"], "iat": now, "exp": now + 300,
               "email": email, "email_verified": true})
    }

    /// A token signed with the key `kid` (its own algorithm).
    pub fn token(&self, kid: &str, claims: &Value) -> String {
        let keys = self.state.keys.read().expect("keys");
        let (_, key) = keys.iter().find(|(k, _)| k == kid).expect("known kid");
        jws(
            &json!({"alg": key.alg(), "kid": kid, "typ": "JWT"}),
            claims,
            |m| key.sign(m),
        )
    }

    /// Adds a key (rotation); the CA learns it on the first token it cannot match.
    pub fn add_key(&self, kid: &str, key: Key) {
        self.state
            .keys
            .write()
            .expect("keys")
            .push((kid.into(), key));
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}
