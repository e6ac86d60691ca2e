//! Google Cloud KMS v1: `asymmetricSign` and `publicKey`, with an access token from a
//! service account's RS256 JWT.

use super::*;

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
