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

/// Google Cloud KMS.
pub struct Gcp {
    http: reqwest::Client,
    base: String,
    version: Mutex<Option<String>>,
    key: String,
    email: String,
    signer: sigstack_crypto::RsaFileSigner,
    token_uri: String,
    token: TokenCache,
}

impl Gcp {
    pub fn parse(uri: &str, env: Env<'_>) -> anyhow::Result<Self> {
        let key = uri
            .strip_prefix("gcpkms://")
            .filter(|k| k.starts_with("projects/") && k.contains("/cryptoKeys/"))
            .with_context(|| {
                format!("{uri}: write gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K[/cryptoKeyVersions/V]")
            })?;
        let creds = env("GOOGLE_APPLICATION_CREDENTIALS").context(
            "Google Cloud KMS: no credentials (set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file)",
        )?;
        let sa: Value = serde_json::from_slice(
            &std::fs::read(&creds).with_context(|| format!("reading {creds}"))?,
        )
        .with_context(|| format!("{creds} is not JSON"))?;
        let field = |f: &str| {
            sa[f]
                .as_str()
                .map(String::from)
                .with_context(|| format!("{creds}: no {f} (a service-account key file has one)"))
        };
        let signer = sigstack_crypto::RsaFileSigner::from_pem(&field("private_key")?)
            .map_err(|e| anyhow!("{creds}: private_key: {e}"))?;
        let base = env("CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS")
            .unwrap_or_else(|| "https://cloudkms.googleapis.com/".into());
        Ok(Self {
            http: client()?,
            base: base.trim_end_matches('/').to_string(),
            version: Mutex::new(key.contains("/cryptoKeyVersions/").then(|| key.to_string())),
            key: key.to_string(),
            email: field("client_email")?,
            signer,
            token_uri: field("token_uri")
                .unwrap_or_else(|_| "https://oauth2.googleapis.com/token".into()),
            token: TokenCache::default(),
        })
    }

    /// An access token: a JWT signed with the service account's key, exchanged.
    async fn bearer(&self) -> anyhow::Result<String> {
        if let Some(t) = self.token.get() {
            return Ok(t);
        }
        let iat = now();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = URL_SAFE_NO_PAD.encode(
            json!({"iss": self.email, "scope": "https://www.googleapis.com/auth/cloudkms",
                   "aud": self.token_uri, "iat": iat, "exp": iat + 3600})
            .to_string(),
        );
        let input = format!("{header}.{claims}");
        let sig = self.signer.sign(input.as_bytes())?;
        let assertion = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig));
        exchange(
            &self.http,
            &self.token_uri,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ],
            "Google's token endpoint",
            &self.token,
        )
        .await
    }

    async fn call(&self, req: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Value> {
        let res = req
            .bearer_auth(self.bearer().await?)
            .send()
            .await
            .map_err(unreachable("Google Cloud KMS", &self.base))?;
        answer(res, &format!("Google Cloud KMS {what} for {}", self.key)).await
    }

    /// The version to use: the one the URI names, else the newest enabled one.
    async fn version(&self) -> anyhow::Result<String> {
        if let Some(v) = self
            .version
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Ok(v);
        }
        let url = format!("{}/v1/{}/cryptoKeyVersions", self.base, self.key);
        let v = self
            .call(
                self.http.get(&url).query(&[("filter", "state=ENABLED")]),
                "listing versions",
            )
            .await?;
        let newest = v["cryptoKeyVersions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|k| k["state"] == "ENABLED")
            .filter_map(|k| k["name"].as_str())
            .max_by_key(|n| n.rsplit('/').next().and_then(|v| v.parse::<u64>().ok()))
            .with_context(|| format!("Google Cloud KMS {}: no enabled version", self.key))?
            .to_string();
        *self.version.lock().unwrap_or_else(|p| p.into_inner()) = Some(newest.clone());
        Ok(newest)
    }

    pub async fn public_key(&self) -> anyhow::Result<PublicKey> {
        let url = format!("{}/v1/{}/publicKey", self.base, self.version().await?);
        let v = self.call(self.http.get(&url), "publicKey").await?;
        let pem = v["pem"]
            .as_str()
            .context("Google Cloud KMS publicKey: no pem")?;
        PublicKey::from_pem(pem.as_bytes())
            .map_err(|e| anyhow!("Google Cloud KMS key {}: {e}", self.key))
    }

    pub async fn sign(&self, digest: &[u8], hash: HashAlg) -> anyhow::Result<Vec<u8>> {
        let url = format!("{}/v1/{}:asymmetricSign", self.base, self.version().await?);
        let field = match hash {
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha384 => "sha384",
            HashAlg::Sha512 => "sha512",
        };
        let body = json!({"digest": {field: STANDARD.encode(digest)}});
        let v = self
            .call(self.http.post(&url).json(&body), "asymmetricSign")
            .await?;
        STANDARD
            .decode(
                v["signature"]
                    .as_str()
                    .context("Google Cloud KMS: no signature")?,
            )
            .context("Google Cloud KMS: the signature is not base64")
    }
}

/// Azure Key Vault.
pub struct Azure {
    http: reqwest::Client,
    vault: String,
    key: String,
    version: Mutex<Option<String>>,
    tenant: String,
    client_id: String,
    secret: String,
    authority: String,
    token: TokenCache,
}

const AZURE_API: &str = "7.4";

impl Azure {
    pub fn parse(uri: &str, env: Env<'_>) -> anyhow::Result<Self> {
        let rest = uri.strip_prefix("azurekms://").unwrap_or_default();
        let mut parts = rest.split('/');
        let (Some(host), Some(key)) = (
            parts.next().filter(|h| !h.is_empty()),
            parts.next().filter(|k| !k.is_empty()),
        ) else {
            bail!("{uri}: write azurekms://VAULT.vault.azure.net/KEY[/VERSION]");
        };
        let version = parts.next().filter(|v| !v.is_empty()).map(String::from);
        let scheme = if is_loopback(host) { "http" } else { "https" };
        let need = |n: &str| {
            env(n).with_context(|| {
                format!("Azure Key Vault: set {n} (with AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET: a service principal)")
            })
        };
        Ok(Self {
            http: client()?,
            vault: format!("{scheme}://{host}"),
            key: key.to_string(),
            version: Mutex::new(version),
            tenant: need("AZURE_TENANT_ID")?,
            client_id: need("AZURE_CLIENT_ID")?,
            secret: need("AZURE_CLIENT_SECRET")?,
            authority: env("AZURE_AUTHORITY_HOST")
                .unwrap_or_else(|| "https://login.microsoftonline.com".into())
                .trim_end_matches('/')
                .to_string(),
            token: TokenCache::default(),
        })
    }

    async fn bearer(&self) -> anyhow::Result<String> {
        if let Some(t) = self.token.get() {
            return Ok(t);
        }
        let url = format!("{}/{}/oauth2/v2.0/token", self.authority, self.tenant);
        exchange(
            &self.http,
            &url,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.secret.as_str()),
                ("scope", "https://vault.azure.net/.default"),
            ],
            "Entra ID's token endpoint",
            &self.token,
        )
        .await
    }

    async fn call(&self, req: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Value> {
        let res = req
            .query(&[("api-version", AZURE_API)])
            .bearer_auth(self.bearer().await?)
            .send()
            .await
            .map_err(unreachable("Azure Key Vault", &self.vault))?;
        answer(res, &format!("Azure Key Vault {what} for {}", self.key)).await
    }

    /// The key (its JSON Web Key), pinning the version it names.
    pub async fn public_key(&self) -> anyhow::Result<PublicKey> {
        let path = match self
            .version
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            Some(v) => format!("{}/keys/{}/{v}", self.vault, self.key),
            None => format!("{}/keys/{}", self.vault, self.key),
        };
        let v = self.call(self.http.get(&path), "get key").await?;
        let jwk = &v["key"];
        if let Some(version) = jwk["kid"].as_str().and_then(|k| k.rsplit('/').next()) {
            *self.version.lock().unwrap_or_else(|p| p.into_inner()) = Some(version.to_string());
        }
        let b = |f: &str| -> anyhow::Result<Vec<u8>> {
            URL_SAFE_NO_PAD
                .decode(
                    jwk[f]
                        .as_str()
                        .with_context(|| format!("Azure Key Vault key: no {f}"))?,
                )
                .with_context(|| format!("Azure Key Vault key: {f} is not base64url"))
        };
        let spki = match jwk["kty"].as_str().unwrap_or_default() {
            "EC" | "EC-HSM" => {
                let (oid, len): (&[u8], usize) = match jwk["crv"].as_str().unwrap_or_default() {
                    "P-256" => (
                        &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
                        32,
                    ),
                    "P-384" => (&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22], 48),
                    c => bail!(
                        "Azure Key Vault key {}: curve {c} is not supported (P-256, P-384 are)",
                        self.key
                    ),
                };
                let (x, y) = (b("x")?, b("y")?);
                if x.len() != len || y.len() != len {
                    bail!(
                        "Azure Key Vault key {}: x and y are not {len} bytes",
                        self.key
                    );
                }
                der::ec_spki(oid, &[&[0x04][..], &x, &y].concat())
            }
            "RSA" | "RSA-HSM" => der::rsa_spki(&b("n")?, &b("e")?),
            t => bail!(
                "Azure Key Vault key {}: type {t} cannot sign here",
                self.key
            ),
        };
        PublicKey::from_spki_der(&spki)
            .map_err(|e| anyhow!("Azure Key Vault key {}: {e}", self.key))
    }

    pub async fn sign(
        &self,
        digest: &[u8],
        hash: HashAlg,
        public: &PublicKey,
    ) -> anyhow::Result<Vec<u8>> {
        let ec = public.describe().starts_with("ECDSA");
        let alg = match (ec, hash) {
            (true, HashAlg::Sha256) => "ES256",
            (true, HashAlg::Sha384) => "ES384",
            (false, HashAlg::Sha256) => "RS256",
            _ => bail!(
                "Azure Key Vault: a {} key does not sign {}",
                public.describe(),
                hash.name()
            ),
        };
        let version = self
            .version
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .context("Azure Key Vault: the key's version is not known yet")?;
        let url = format!("{}/keys/{}/{version}/sign", self.vault, self.key);
        let v = self
            .call(
                self.http
                    .post(&url)
                    .json(&json!({"alg": alg, "value": URL_SAFE_NO_PAD.encode(digest)})),
                "sign",
            )
            .await?;
        let raw = URL_SAFE_NO_PAD
            .decode(
                v["value"]
                    .as_str()
                    .context("Azure Key Vault sign: no value")?,
            )
            .context("Azure Key Vault sign: value is not base64url")?;
        if ec {
            // JWS form (r‖s); Sigstore carries DER
            der::ecdsa_signature(&raw).context("Azure Key Vault sign: a malformed ECDSA signature")
        } else {
            Ok(raw)
        }
    }
}

/// HashiCorp Vault's (or OpenBao's) transit engine.
pub struct Vault {
    http: reqwest::Client,
    addr: String,
    token: String,
    mount: String,
    key: String,
}

impl Vault {
    pub fn parse(uri: &str, env: Env<'_>) -> anyhow::Result<Self> {
        let key = uri
            .strip_prefix("hashivault://")
            .filter(|k| !k.is_empty() && !k.contains('/'))
            .with_context(|| format!("{uri}: write hashivault://KEY (a transit key)"))?;
        Ok(Self {
            http: client()?,
            addr: env("VAULT_ADDR")
                .context("Vault: set VAULT_ADDR (and VAULT_TOKEN)")?
                .trim_end_matches('/')
                .to_string(),
            token: env("VAULT_TOKEN").context("Vault: set VAULT_TOKEN")?,
            mount: env("TRANSIT_SECRET_ENGINE_PATH").unwrap_or_else(|| "transit".into()),
            key: key.to_string(),
        })
    }

    async fn call(&self, req: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Value> {
        let res = req
            .header("X-Vault-Token", &self.token)
            .send()
            .await
            .map_err(unreachable("Vault", &self.addr))?;
        if res.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        answer(res, &format!("Vault {what} for {}", self.key)).await
    }

    pub async fn public_key(&self) -> anyhow::Result<PublicKey> {
        let url = format!("{}/v1/{}/keys/{}", self.addr, self.mount, self.key);
        let v = self.call(self.http.get(&url), "read key").await?;
        let latest = v["data"]["latest_version"]
            .as_u64()
            .context("Vault: the key has no latest_version")?;
        let pem = v["data"]["keys"][latest.to_string()]["public_key"]
            .as_str()
            .filter(|p| !p.is_empty())
            .with_context(|| format!("Vault key {}: not an asymmetric signing key", self.key))?;
        PublicKey::from_pem(pem.as_bytes()).map_err(|e| anyhow!("Vault key {}: {e}", self.key))
    }

    pub async fn create(&self, kind: crate::KeyKind) -> anyhow::Result<()> {
        let t = match kind {
            crate::KeyKind::P256 => "ecdsa-p256",
            crate::KeyKind::P384 => "ecdsa-p384",
            crate::KeyKind::Rsa2048 => "rsa-2048",
            crate::KeyKind::Ed25519 => "ed25519",
        };
        let url = format!("{}/v1/{}/keys/{}", self.addr, self.mount, self.key);
        self.call(self.http.post(&url).json(&json!({"type": t})), "create key")
            .await?;
        Ok(())
    }

    pub async fn sign(
        &self,
        digest: &[u8],
        hash: HashAlg,
        public: &PublicKey,
    ) -> anyhow::Result<Vec<u8>> {
        let algo = match hash {
            HashAlg::Sha256 => "sha2-256",
            HashAlg::Sha384 => "sha2-384",
            HashAlg::Sha512 => "sha2-512",
        };
        let url = format!("{}/v1/{}/sign/{}/{algo}", self.addr, self.mount, self.key);
        let mut body = json!({"input": STANDARD.encode(digest), "prehashed": true});
        if public.describe().starts_with("RSA") {
            body["signature_algorithm"] = json!("pkcs1v15");
        }
        let v = self.call(self.http.post(&url).json(&body), "sign").await?;
        let sig = v["data"]["signature"]
            .as_str()
            .context("Vault sign: no signature")?;
        // vault:v<N>:<base64>
        let b64 = sig.rsplit(':').next().unwrap_or_default();
        STANDARD
            .decode(b64)
            .context("Vault sign: the signature is not base64")
    }
}

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
