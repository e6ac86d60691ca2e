//! Keys in AWS KMS, implemented against its JSON API (`TrentService`: GetPublicKey,
//! Sign, CreateKey, CreateAlias), requests signed with Signature Version 4; the private
//! key never leaves the KMS.
//!
//! `awskms://[ENDPOINT]/KEY`, KEY a key ID, `alias/NAME` or an ARN. As cosign (through the
//! AWS SDK): credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
//! `AWS_SESSION_TOKEN`; the region from an ARN, else `AWS_REGION` or `AWS_DEFAULT_REGION`;
//! the endpoint `https://ENDPOINT` when the URI names one, else `AWS_ENDPOINT_URL_KMS` or
//! `AWS_ENDPOINT_URL`, else `https://kms.REGION.amazonaws.com`.

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sigstack_crypto::{CryptoError, HashAlg, PublicKey, Signer};
use std::future::Future;

use crate::KeyKind;

/// An AWS KMS key and how to reach it.
pub struct AwsKms {
    endpoint: String,
    host: String,
    region: String,
    key_id: String,
    access_key: String,
    secret_key: String,
    session_token: Option<String>,
    http: reqwest::Client,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl AwsKms {
    /// The key `uri` names (`awskms://…`); other KMS schemes are refused by name.
    pub fn parse(uri: &str) -> anyhow::Result<Self> {
        let Some(rest) = uri.strip_prefix("awskms://") else {
            let scheme = uri.split("://").next().unwrap_or(uri);
            bail!(
                "{uri}: {scheme} keys are not supported yet (awskms:// is); use a key file, or an AWS KMS key"
            );
        };
        let (endpoint_host, key_id) = rest.split_once('/').with_context(|| {
            format!("{uri}: write awskms://[ENDPOINT]/KEY-ID (or alias/NAME, or an ARN)")
        })?;
        if key_id.is_empty() {
            bail!("{uri}: no key ID, alias or ARN after the endpoint");
        }
        let arn_region = key_id
            .strip_prefix("arn:")
            .and_then(|a| a.split(':').nth(2))
            .filter(|r| !r.is_empty())
            .map(String::from);
        let region = arn_region
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .with_context(|| format!("{uri}: no region: name the key by ARN, or set AWS_REGION"))?;
        let endpoint = if !endpoint_host.is_empty() {
            format!("https://{endpoint_host}")
        } else if let Some(e) = env("AWS_ENDPOINT_URL_KMS").or_else(|| env("AWS_ENDPOINT_URL")) {
            e.trim_end_matches('/').to_string()
        } else {
            format!("https://kms.{region}.amazonaws.com")
        };
        let url = reqwest::Url::parse(&endpoint)
            .with_context(|| format!("{uri}: endpoint {endpoint}"))?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => bail!("{uri}: endpoint {endpoint} has no host"),
        };
        let access_key = env("AWS_ACCESS_KEY_ID")
            .context("AWS KMS: no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")?;
        let secret_key = env("AWS_SECRET_ACCESS_KEY")
            .context("AWS KMS: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")?;
        Ok(Self {
            endpoint,
            host,
            region,
            key_id: key_id.to_string(),
            access_key,
            secret_key,
            session_token: env("AWS_SESSION_TOKEN"),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()?,
        })
    }

    /// One KMS action (`TrentService.<action>`), signed with SigV4.
    async fn call(&self, action: &str, body: &Value) -> anyhow::Result<Value> {
        let body = serde_json::to_vec(body)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let stamp = sigstack_types::time::rfc3339(now)
            .replace(['-', ':'], "")
            .replace(".000", "");
        let target = format!("TrentService.{action}");
        let mut headers = vec![
            ("content-type", "application/x-amz-json-1.1".to_string()),
            ("host", self.host.clone()),
            ("x-amz-date", stamp.clone()),
            ("x-amz-target", target.clone()),
        ];
        if let Some(t) = &self.session_token {
            headers.push(("x-amz-security-token", t.clone()));
        }
        let auth = sigv4::authorization(&sigv4::Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: &body,
            access_key: &self.access_key,
            secret_key: &self.secret_key,
            region: &self.region,
            service: "kms",
            stamp: &stamp,
        });
        let mut req = self.http.post(format!("{}/", self.endpoint)).body(body);
        for (k, v) in &headers {
            if *k != "host" {
                req = req.header(*k, v);
            }
        }
        let r = req
            .header("authorization", auth)
            .send()
            .await
            .with_context(|| format!("AWS KMS {action} at {}: unreachable", self.endpoint))?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "AWS KMS {action} for {}: HTTP {status}: {} {}",
                self.key_id,
                v["__type"].as_str().unwrap_or_default(),
                v["message"]
                    .as_str()
                    .or(v["Message"].as_str())
                    .unwrap_or_default()
            );
        }
        Ok(v)
    }

    /// The key's public half.
    pub async fn public_key(&self) -> anyhow::Result<PublicKey> {
        let v = self
            .call("GetPublicKey", &json!({"KeyId": self.key_id}))
            .await?;
        let der = STANDARD
            .decode(
                v["PublicKey"]
                    .as_str()
                    .context("AWS KMS GetPublicKey: no PublicKey")?,
            )
            .context("AWS KMS GetPublicKey: PublicKey is not base64")?;
        if v["KeyUsage"].as_str().is_some_and(|u| u != "SIGN_VERIFY") {
            bail!(
                "AWS KMS key {} is not a signing key (KeyUsage {})",
                self.key_id,
                v["KeyUsage"]
            );
        }
        PublicKey::from_spki_der(&der)
            .map_err(|e| anyhow::anyhow!("AWS KMS key {}: {e}", self.key_id))
    }

    /// A signature over `digest` (of the message) by the key.
    pub async fn sign_digest(&self, digest: &[u8], algorithm: &str) -> anyhow::Result<Vec<u8>> {
        let v = self
            .call(
                "Sign",
                &json!({"KeyId": self.key_id, "Message": STANDARD.encode(digest), "MessageType": "DIGEST", "SigningAlgorithm": algorithm}),
            )
            .await?;
        STANDARD
            .decode(
                v["Signature"]
                    .as_str()
                    .context("AWS KMS Sign: no Signature")?,
            )
            .context("AWS KMS Sign: Signature is not base64")
    }

    /// Creates a signing key and, when the URI named an alias, the alias (cosign's
    /// `generate-key-pair --kms`).
    pub async fn create(&self, kind: KeyKind) -> anyhow::Result<PublicKey> {
        let spec = match kind {
            KeyKind::P256 => "ECC_NIST_P256",
            KeyKind::P384 => "ECC_NIST_P384",
            KeyKind::Rsa2048 => "RSA_2048",
            KeyKind::Ed25519 => {
                bail!("AWS KMS: Ed25519 keys are not offered here; use a P-256 key")
            }
        };
        let v = self
            .call(
                "CreateKey",
                &json!({"KeySpec": spec, "KeyUsage": "SIGN_VERIFY", "Description": "Created by sigstack"}),
            )
            .await?;
        let id = v["KeyMetadata"]["KeyId"]
            .as_str()
            .context("AWS KMS CreateKey: no KeyId")?
            .to_string();
        if let Some(alias) = self
            .key_id
            .strip_prefix("alias/")
            .map(|_| self.key_id.clone())
        {
            self.call(
                "CreateAlias",
                &json!({"AliasName": alias, "TargetKeyId": id}),
            )
            .await?;
        }
        self.public_key().await
    }
}

/// Runs `f` to completion on a thread of its own (signing is synchronous, and may be
/// called from inside an async runtime).
pub fn block_on<F: Future + Send>(f: F) -> F::Output
where
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(f))
        })
        .join()
    })
    .map_err(|_| ())
    .and_then(|r| r.map_err(|_| ()))
    .unwrap_or_else(|()| panic!("the KMS worker thread failed"))
}

/// A signer whose key stays in AWS KMS.
pub struct KmsSigner {
    kms: AwsKms,
    public: PublicKey,
    uri: String,
}

impl KmsSigner {
    pub fn open(uri: &str) -> anyhow::Result<Self> {
        let kms = AwsKms::parse(uri)?;
        let public = block_on(kms.public_key())?;
        Ok(Self {
            kms,
            public,
            uri: uri.to_string(),
        })
    }
}

impl Signer for KmsSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, CryptoError> {
        let alg = match (
            self.public.default_hash(),
            self.public.describe().starts_with("RSA"),
        ) {
            (HashAlg::Sha256, false) => "ECDSA_SHA_256",
            (HashAlg::Sha256, true) => "RSASSA_PKCS1_V1_5_SHA_256",
            _ => {
                return Err(CryptoError::Signing(format!(
                    "{}: a {} key does not sign SHA-256 digests",
                    self.uri,
                    self.public.describe()
                )));
            }
        };
        block_on(self.kms.sign_digest(digest, alg))
            .map_err(|e| CryptoError::Signing(format!("{}: {e:#}", self.uri)))
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let hash = self.public.default_hash();
        let rsa = self.public.describe().starts_with("RSA");
        let alg = match (hash, rsa) {
            (HashAlg::Sha256, false) => "ECDSA_SHA_256",
            (HashAlg::Sha384, false) => "ECDSA_SHA_384",
            (HashAlg::Sha512, false) => "ECDSA_SHA_512",
            (HashAlg::Sha256, true) => "RSASSA_PKCS1_V1_5_SHA_256",
            _ => {
                return Err(CryptoError::Unsupported(format!(
                    "{}: a {} key is not supported for KMS signing",
                    self.uri,
                    self.public.describe()
                )));
            }
        };
        let digest = hash.digest(msg);
        block_on(self.kms.sign_digest(&digest, alg))
            .map_err(|e| CryptoError::Signing(format!("{}: {e:#}", self.uri)))
    }
}

/// AWS Signature Version 4 (the `Authorization` header of one request).
pub mod sigv4 {
    use aws_lc_rs::hmac;

    pub struct Request<'a> {
        pub method: &'a str,
        pub path: &'a str,
        pub query: &'a str,
        /// Lower-case names; all are signed.
        pub headers: &'a [(&'a str, String)],
        pub body: &'a [u8],
        pub access_key: &'a str,
        pub secret_key: &'a str,
        pub region: &'a str,
        pub service: &'a str,
        /// `YYYYMMDDTHHMMSSZ`.
        pub stamp: &'a str,
    }

    fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
            .as_ref()
            .to_vec()
    }

    /// The signing key for a day, region and service.
    pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
        let k = mac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
        let k = mac(&k, region.as_bytes());
        let k = mac(&k, service.as_bytes());
        mac(&k, b"aws4_request")
    }

    /// The signature and the header that carries it.
    pub fn authorization(r: &Request<'_>) -> String {
        let mut headers: Vec<(String, String)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        headers.sort();
        let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
        let signed = signed.join(";");
        let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let canonical = format!(
            "{}\n{}\n{}\n{canonical_headers}\n{signed}\n{}",
            r.method,
            r.path,
            r.query,
            hex::encode(sigstack_crypto::sha256(r.body))
        );
        let date = &r.stamp[..8];
        let scope = format!("{date}/{}/{}/aws4_request", r.region, r.service);
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
            r.stamp,
            hex::encode(sigstack_crypto::sha256(canonical.as_bytes()))
        );
        let key = signing_key(r.secret_key, date, r.region, r.service);
        let signature = hex::encode(mac(&key, to_sign.as_bytes()));
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
            r.access_key
        )
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// AWS's documented example (the IAM `ListUsers` request of "Create a signed AWS
        /// API request" and its derived signing key).
        #[test]
        fn the_documented_example_signs_as_aws_says() {
            let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
            assert_eq!(
                hex::encode(signing_key(secret, "20150830", "us-east-1", "iam")),
                "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
            );
            let headers = [
                (
                    "content-type",
                    "application/x-www-form-urlencoded; charset=utf-8".to_string(),
                ),
                ("host", "iam.amazonaws.com".to_string()),
                ("x-amz-date", "20150830T123600Z".to_string()),
            ];
            let auth = authorization(&Request {
                method: "GET",
                path: "/",
                query: "Action=ListUsers&Version=2010-05-08",
                headers: &headers,
                body: b"",
                access_key: "AKIDEXAMPLE",
                secret_key: secret,
                region: "us-east-1",
                service: "iam",
                stamp: "20150830T123600Z",
            });
            assert_eq!(
                auth,
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
            );
        }
    }
}
