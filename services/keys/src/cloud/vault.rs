//! Vault's (or OpenBao's) transit engine: `sign` (prehashed), and reading and creating
//! keys.

use super::*;

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
