//! Keys in Google Cloud KMS, Azure Key Vault and HashiCorp Vault's transit engine, named
//! as cosign names them, implemented against each service's documented REST API (no
//! vendor SDK): the private key never leaves the service, which signs a digest.
//!
//! - `gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K[/cryptoKeyVersions/V]`:
//!   `asymmetricSign` and `publicKey` of Cloud KMS v1 (the newest enabled version when
//!   none is named); credentials from the service-account file `GOOGLE_APPLICATION_CREDENTIALS`
//!   (an RS256 JWT exchanged at its `token_uri`); the endpoint from
//!   `CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS`, else `https://cloudkms.googleapis.com/`.
//! - `azurekms://VAULT_HOST/KEY[/VERSION]`: Key Vault's `sign` and `get key` (API 7.4);
//!   a token from Entra ID's client-credentials grant (`AZURE_TENANT_ID`,
//!   `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`, `AZURE_AUTHORITY_HOST`).
//! - `hashivault://KEY`: the transit engine's `sign` (prehashed) and `keys` read/create;
//!   `VAULT_ADDR`, `VAULT_TOKEN`, `TRANSIT_SECRET_ENGINE_PATH` (default `transit`).
//!
//! A vault or endpoint on the loopback interface is spoken to over plain HTTP (a local
//! stand-in); every other over HTTPS.

use anyhow::{Context, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sigstack_crypto::{CryptoError, HashAlg, PublicKey, Signer};
use std::sync::Mutex;

use crate::awskms::block_on;
use crate::der;

/// Where configuration comes from: the process environment, or (tests) a map.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, empty values as unset.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn client() -> anyhow::Result<reqwest::Client> {
    // TLS through aws-lc-rs, as the binaries choose it (a no-op when one is installed)
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn is_loopback(host: &str) -> bool {
    let h = host.rsplit_once(':').map_or(host, |(h, _)| h);
    h == "127.0.0.1" || h == "localhost" || h == "[::1]"
}

/// A JSON answer, or an error naming the service, the status and its message.
async fn answer(res: reqwest::Response, what: &str) -> anyhow::Result<Value> {
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let msg = body["error"]["message"]
            .as_str()
            .or(body["error_description"].as_str())
            .or(body["errors"][0].as_str())
            .or(body["error"].as_str())
            .unwrap_or_default();
        bail!("{what}: HTTP {status} {msg}");
    }
    Ok(body)
}

fn unreachable(what: &str, url: &str) -> impl FnOnce(reqwest::Error) -> anyhow::Error {
    let m = format!("{what} at {url}: unreachable");
    move |e| anyhow!(e).context(m)
}

/// An OAuth 2 token endpoint's answer to `form`: the access token, kept in `cache` for
/// the lifetime the endpoint states.
async fn exchange(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
    what: &str,
    cache: &TokenCache,
) -> anyhow::Result<String> {
    let res = http
        .post(url)
        .form(form)
        .send()
        .await
        .map_err(unreachable(what, url))?;
    let v = answer(res, what).await?;
    let t = v["access_token"]
        .as_str()
        .with_context(|| format!("{what}: no access_token"))?;
    cache.put(t, v["expires_in"].as_u64().unwrap_or(3600));
    Ok(t.to_string())
}

/// A bearer token kept until shortly before it expires.
#[derive(Default)]
struct TokenCache(Mutex<Option<(String, u64)>>);

impl TokenCache {
    fn get(&self) -> Option<String> {
        let g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.as_ref()
            .filter(|(_, until)| *until > now() + 60)
            .map(|(t, _)| t.clone())
    }
    fn put(&self, token: &str, lifetime: u64) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((token.into(), now() + lifetime));
    }
}

mod azure;
mod gcp;
mod vault;
pub use azure::Azure;
pub use gcp::Gcp;
pub use vault::Vault;

/// A key in one of these services.
pub enum Remote {
    Gcp(Box<Gcp>),
    Azure(Azure),
    Vault(Vault),
}

impl Remote {
    pub fn parse(uri: &str, env: Env<'_>) -> anyhow::Result<Self> {
        Ok(if uri.starts_with("gcpkms://") {
            Self::Gcp(Box::new(Gcp::parse(uri, env)?))
        } else if uri.starts_with("azurekms://") {
            Self::Azure(Azure::parse(uri, env)?)
        } else if uri.starts_with("hashivault://") {
            Self::Vault(Vault::parse(uri, env)?)
        } else {
            bail!("{uri}: not a gcpkms://, azurekms:// or hashivault:// key")
        })
    }

    pub async fn public_key(&self) -> anyhow::Result<PublicKey> {
        match self {
            Self::Gcp(g) => g.public_key().await,
            Self::Azure(a) => a.public_key().await,
            Self::Vault(v) => v.public_key().await,
        }
    }

    async fn sign(
        &self,
        digest: &[u8],
        hash: HashAlg,
        public: &PublicKey,
    ) -> anyhow::Result<Vec<u8>> {
        match self {
            Self::Gcp(g) => g.sign(digest, hash).await,
            Self::Azure(a) => a.sign(digest, hash, public).await,
            Self::Vault(v) => v.sign(digest, hash, public).await,
        }
    }
}

/// A signer whose key stays in Cloud KMS, Key Vault or Vault.
pub struct RemoteSigner {
    remote: Remote,
    public: PublicKey,
    uri: String,
}

impl RemoteSigner {
    pub fn open(uri: &str, env: Env<'_>) -> anyhow::Result<Self> {
        let remote = Remote::parse(uri, env)?;
        let public = block_on(remote.public_key())?;
        if public.describe() == "Ed25519" {
            bail!(
                "{uri}: Ed25519 keys in a KMS cannot sign a digest here; use an ECDSA or RSA key"
            );
        }
        Ok(Self {
            remote,
            public,
            uri: uri.to_string(),
        })
    }

    fn sign_hashed(&self, digest: &[u8], hash: HashAlg) -> Result<Vec<u8>, CryptoError> {
        block_on(self.remote.sign(digest, hash, &self.public))
            .map_err(|e| CryptoError::Signing(format!("{}: {e:#}", self.uri)))
    }
}

impl Signer for RemoteSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let hash = self.public.default_hash();
        self.sign_hashed(&hash.digest(msg), hash)
    }

    fn sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, CryptoError> {
        if self.public.default_hash() != HashAlg::Sha256 {
            return Err(CryptoError::Unsupported(format!(
                "{}: a {} key does not sign SHA-256 digests",
                self.uri,
                self.public.describe()
            )));
        }
        self.sign_hashed(digest, HashAlg::Sha256)
    }
}

#[cfg(test)]
mod tests;
