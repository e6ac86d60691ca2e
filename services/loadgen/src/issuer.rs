//! The token issuer `issue` mode runs beside the load: OIDC discovery and a JWKS on
//! loopback, one ES256 key, and identity tokens minted for the CA under test (which
//! must trust `http://127.0.0.1:<port>` as an e-mail issuer).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::sync::Arc;

pub struct Issuer {
    pub url: String,
    key: Arc<EcdsaKeyPair>,
    /// A new key id per run: a CA that cached an earlier run's key set must refetch.
    kid: String,
}

fn b64u(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

impl Issuer {
    pub async fn start(port: u16) -> anyhow::Result<Self> {
        let key = Arc::new(
            EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .map_err(|_| anyhow::anyhow!("key generation failed"))?,
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let kid = format!("load-{:016x}", rand::random::<u64>());
        let p = key.public_key().as_ref();
        let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
                                     "x": b64u(&p[1..33]), "y": b64u(&p[33..65])}]});
        let discovery = json!({"issuer": url, "jwks_uri": format!("{url}/jwks"),
            "authorization_endpoint": format!("{url}/auth"), "token_endpoint": format!("{url}/token"),
            "id_token_signing_alg_values_supported": ["ES256"]});
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || async move { axum::Json(discovery) }),
            )
            .route(
                "/jwks",
                axum::routing::get(move || async move { axum::Json(jwks) }),
            );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, key, kid })
    }

    /// An identity token for `email`, valid for `ttl` seconds.
    pub fn token(&self, email: &str, ttl: i64) -> anyhow::Result<String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs() as i64;
        let claims: Value = json!({"iss": self.url, "sub": email, "aud": "sigstore", "iat": now,
            "exp": now + ttl, "email": email, "email_verified": true});
        let header = json!({"alg": "ES256", "kid": self.kid, "typ": "JWT"});
        let input = format!(
            "{}.{}",
            b64u(header.to_string().as_bytes()),
            b64u(claims.to_string().as_bytes())
        );
        let sig = self
            .key
            .sign(&SystemRandom::new(), input.as_bytes())
            .map_err(|_| anyhow::anyhow!("signing failed"))?;
        Ok(format!("{input}.{}", b64u(sig.as_ref())))
    }
}
