//! Azure Key Vault (API 7.4): `sign` and `get key`, with a token from Entra ID's
//! client-credentials grant.

use super::*;

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
