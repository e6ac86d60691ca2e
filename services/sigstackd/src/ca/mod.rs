//! `sigstackd ca`: the certificate authority with Fulcio's v2 and legacy v1 HTTP APIs.
//! A request is turned into a certificate in this order, and nothing is issued or logged
//! until every check before it passed: token (signature with the issuer's cached JWKS,
//! issuer, audience, times) → principal → proof of possession (CSR self-signature or a
//! signature over the challenge) → precertificate → SCT from the CT log (a durable
//! append) → final certificate with the SCT embedded.

pub mod api;
pub mod config;
pub(crate) mod fetch;
pub mod intermediate;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use config::CaConfig;
use fetch::HttpFetcher;
use sigstack_ca::cert::{self, Authority};
use sigstack_ca::config::IssuerConfig;
use sigstack_ca::principal::{Principal, principal};
use sigstack_ca::token::{CachePolicy, KeyCache, UnverifiedToken};
use sigstack_crypto::{Certificate, KeyMaterial, PublicKey, Signer};
use sigstack_http::ApiError;
use sigstack_log::ct::{self, DigitallySigned, Sct};
use sigstack_types::ct::{AddChainRequest, AddChainResponse};
use std::sync::Arc;
use std::time::Duration;

pub struct CaService {
    http: Arc<sigstack_http::metrics::HttpMetrics>,
    /// Certificates issued by this process.
    issued: std::sync::atomic::AtomicU64,
    signer: Arc<dyn Signer>,
    /// The issuing certificate first, up to the root.
    chain: Vec<Certificate>,
    /// Derived once from the chain for every issuance: the AKI of leaves, the
    /// precertificate issuer key hash (RFC 6962 §3.2), the chain as the CT log and the
    /// clients receive it, and when the issuing certificate expires.
    key_id: Vec<u8>,
    issuer_key_hash: [u8; 32],
    chain_b64: Vec<String>,
    chain_pems: Vec<String>,
    not_after: u64,
    issuers: IssuerConfig,
    /// Key sets of the `oidc-issuers`, never evicted.
    exact_keys: KeyCache<HttpFetcher>,
    /// Key sets of concrete issuers matched by `meta-issuers` wildcards: a bounded LRU,
    /// so tokens naming many issuers cannot evict the exact ones.
    meta_keys: KeyCache<HttpFetcher>,
    ct: CtClient,
    leeway: i64,
    /// What the trust endpoints need, and their answer once built.
    trust: Option<TrustSource>,
}

struct TrustSource {
    public_url: String,
    tlog_url: String,
    ctlog_url: String,
    oidc_url: Option<String>,
    tsa: Option<crate::trust::TsaTrust>,
    tlog_v2: Option<crate::trust::TlogV2Trust>,
    operator: String,
    built: tokio::sync::OnceCell<Arc<crate::trust::StackTrust>>,
}

/// How the caller proves it holds the key.
pub enum KeyProof {
    /// A PEM CSR (its self-signature is the proof).
    Csr(Vec<u8>),
    /// A public key (PEM or DER) and a signature over the challenge.
    Signature { key: Vec<u8>, signature: Vec<u8> },
}

struct CtClient {
    http: reqwest::Client,
    add_pre_chain: String,
    /// Every SCT is verified with this key before it is embedded.
    key: PublicKey,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A token problem: 401, as Fulcio answers (`Unauthenticated`).
fn unauthenticated(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, message)
}

/// A certificate the CA could not sign: its key (in a token or KMS) briefly away is a
/// 503 the client retries; anything else is a fault of ours.
fn signing_failed(e: cert::CertError) -> ApiError {
    match e {
        cert::CertError::Crypto(e) => ApiError::unavailable(format!("the CA key: {e}")),
        other => ApiError::internal(other),
    }
}

impl CaService {
    pub async fn start(cfg: &CaConfig) -> anyhow::Result<Arc<Self>> {
        let tsa = match (&cfg.tsa_url, &cfg.tsa_chain) {
            (Some(url), Some(path)) => {
                let pem = std::fs::read(path)
                    .with_context(|| format!("reading the TSA chain {}", path.display()))?;
                let chain = match KeyMaterial::from_pem(&pem)
                    .with_context(|| format!("parsing {}", path.display()))?
                {
                    KeyMaterial::Certificates(c) => c,
                    _ => anyhow::bail!("{} holds no certificates", path.display()),
                };
                let leaf = chain
                    .first()
                    .context("an empty TSA chain")?
                    .public_key()
                    .clone();
                sigstack_tsa::check_chain(&chain, &leaf)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                Some(crate::trust::TsaTrust {
                    url: url.trim_end_matches('/').to_string(),
                    chain,
                })
            }
            (None, None) => None,
            _ => anyhow::bail!("tsa_url and tsa_chain go together"),
        };
        let tlog_v2 = match (&cfg.tlog_v2_url, &cfg.tlog_v2_public_key) {
            (Some(url), Some(path)) => Some(crate::trust::TlogV2Trust {
                url: url.trim_end_matches('/').to_string(),
                key: crate::tuf::ceremony::load_public(path)?,
            }),
            (None, None) => None,
            _ => anyhow::bail!("tlog_v2_url and tlog_v2_public_key go together"),
        };
        let signer = crate::keys::open(&cfg.signing_key, "the CA key")?;
        crate::keys::expect(
            signer.as_ref(),
            &["PKIX_ECDSA_P256_SHA_256", "PKIX_ECDSA_P384_SHA_384"],
            &cfg.signing_key,
            "the CA key",
        )?;
        let pem = std::fs::read(&cfg.ca_chain)
            .with_context(|| format!("reading CA chain {}", cfg.ca_chain.display()))?;
        let chain = match KeyMaterial::from_pem(&pem)
            .with_context(|| format!("parsing CA chain {}", cfg.ca_chain.display()))?
        {
            KeyMaterial::Certificates(c) => c,
            KeyMaterial::PublicKey(_) => anyhow::bail!("the CA chain must hold certificates"),
        };
        if chain[0].public_key() != signer.public_key() {
            anyhow::bail!(
                "the first certificate of {} is not for the key {}",
                cfg.ca_chain.display(),
                crate::keys::shown(&cfg.signing_key)
            );
        }
        KeyMaterial::Certificates(chain.clone())
            .verify_chain()
            .context("the CA chain does not verify")?;
        check_chain_profile(&chain)
            .with_context(|| format!("CA chain {}", cfg.ca_chain.display()))?;
        warn_about_validity(&chain, &cfg.ca_chain);
        let text = std::fs::read_to_string(&cfg.issuers)
            .with_context(|| format!("reading issuer configuration {}", cfg.issuers.display()))?;
        let issuers = IssuerConfig::parse(&text)
            .with_context(|| format!("issuer configuration {}", cfg.issuers.display()))?;
        let all = issuers
            .oidc_issuers()
            .chain(issuers.meta_issuers().map(|(_, i)| i));
        for i in all {
            if i.ca_cert.is_some() {
                tracing::warn!(issuer = %i.issuer_url, "ca-cert is not used: add the identity provider's CA to the system trust store");
            }
        }
        let fetcher = HttpFetcher::new(&cfg.issuer_routes)?;
        let p = &cfg.ctlog_public_key;
        let key = PublicKey::from_pem(
            &std::fs::read(p).with_context(|| format!("reading CT log key {}", p.display()))?,
        )
        .with_context(|| format!("CT log key {}", p.display()))?;
        let ct = CtClient {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            add_pre_chain: format!(
                "{}/ct/v1/add-pre-chain",
                cfg.ctlog_url.trim_end_matches('/')
            ),
            key,
        };
        Ok(Arc::new(Self {
            http: sigstack_http::metrics::HttpMetrics::new("ca"),
            issued: Default::default(),
            key_id: cert::authority_key_id(&chain[0])?,
            issuer_key_hash: sigstack_crypto::sha256(chain[0].public_key().spki_der()),
            chain_b64: chain.iter().map(|c| STANDARD.encode(c.der())).collect(),
            chain_pems: chain.iter().map(Certificate::to_pem).collect(),
            not_after: chain[0].validity().1,
            signer,
            chain,
            issuers,
            exact_keys: KeyCache::new(
                fetcher.clone(),
                CachePolicy {
                    max_issuers: usize::MAX,
                    ..CachePolicy::default()
                },
            ),
            meta_keys: KeyCache::new(fetcher, CachePolicy::default()),
            ct,
            leeway: cfg.token_leeway_secs,
            trust: cfg.tlog_url.as_ref().map(|t| TrustSource {
                public_url: cfg.public_url(),
                tlog_url: t.trim_end_matches('/').to_string(),
                ctlog_url: cfg.ctlog_url.trim_end_matches('/').to_string(),
                oidc_url: cfg.oidc_url.clone(),
                tsa: tsa.clone(),
                tlog_v2: tlog_v2.clone(),
                operator: cfg.operator.clone(),
                built: Default::default(),
            }),
        }))
    }

    pub fn router(self: &Arc<Self>, max_request_bytes: usize) -> Router {
        api::routes()
            .with_state(self.clone())
            .layer(DefaultBodyLimit::max(max_request_bytes))
            .layer(axum::middleware::from_fn_with_state(
                self.http.clone(),
                sigstack_http::metrics::observe,
            ))
    }

    pub fn chain(&self) -> &[Certificate] {
        &self.chain
    }

    /// The stack's trust files, built on first use from this CA's chain and the logs'
    /// keys (fetched from them once). `None` when the CA was not told the log's URL.
    pub async fn stack_trust(&self) -> Option<Result<Arc<crate::trust::StackTrust>, ApiError>> {
        let src = self.trust.as_ref()?;
        Some(
            src.built
                .get_or_try_init(|| async {
                    let (tlog_key, fetched_ct_key) =
                        crate::trust::fetch_log_keys(&self.ct.http, &src.tlog_url, &src.ctlog_url)
                            .await
                            .map_err(|e| ApiError::unavailable(format!("{e:#}")))?;
                    // publish the CT key the CA verifies SCTs with, and only if the log
                    // really uses it
                    if fetched_ct_key != self.ct.key {
                        return Err(ApiError::internal(
                            "the CT log's key differs from the configured ctlog_public_key",
                        ));
                    }
                    let ctlog_key = self.ct.key.clone();
                    let root = self.chain.last().unwrap_or(&self.chain[0]);
                    Ok(Arc::new(crate::trust::StackTrust {
                        operator: src.operator.clone(),
                        valid_from: crate::time::rfc3339(root.validity().0 as i64),
                        ca_url: src.public_url.clone(),
                        ca_chain: self.chain.clone(),
                        tlog_url: src.tlog_url.clone(),
                        tlog_key,
                        ctlog_url: src.ctlog_url.clone(),
                        ctlog_key,
                        oidc_url: src.oidc_url.clone(),
                        tsa: src.tsa.clone(),
                        extra_ca_chains: Vec::new(),
                        extra_tsa_chains: Vec::new(),
                        extra_ctlog_keys: Vec::new(),
                        extra_tlog_keys: Vec::new(),
                        extra_tlog_v2: Vec::new(),
                        tlog_v2: src.tlog_v2.clone(),
                    }))
                })
                .await
                .cloned(),
        )
    }

    /// Checks the token and returns who it names.
    async fn authenticate(&self, token: &str) -> Result<Principal, ApiError> {
        let parsed = UnverifiedToken::parse(token)
            .map_err(|e| unauthenticated(format!("invalid identity token: {e}")))?;
        let iss = parsed
            .unverified_issuer()
            .ok_or_else(|| unauthenticated("identity token has no iss claim"))?
            .to_string();
        if iss.len() > 1024 {
            return Err(unauthenticated(
                "identity token issuer is longer than 1024 bytes",
            ));
        }
        let issuer = self
            .issuers
            .lookup(&iss)
            .ok_or_else(|| unauthenticated(format!("issuer {iss:?} is not trusted by this CA")))?;
        let exact = self
            .issuers
            .oidc_issuers()
            .any(|i| i.issuer_url == issuer.issuer_url);
        let keys = if exact {
            &self.exact_keys
        } else {
            &self.meta_keys
        };
        let claims = keys
            .verify(
                &issuer.issuer_url,
                token,
                &issuer.client_id,
                self.leeway,
                unix_now() as i64,
            )
            .await
            .map_err(|e| {
                if e.is_unavailable() {
                    tracing::warn!(issuer = %iss, cause = %e, "identity provider unreachable");
                    ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("cannot reach the identity provider {iss} to check the token; retry later"),
                    )
                } else {
                    unauthenticated(format!("invalid identity token: {e}"))
                }
            })?;
        principal(&issuer, &self.issuers, claims.as_map())
            .map_err(|e| unauthenticated(format!("identity token rejected: {e}")))
    }

    /// Issues a certificate chain (PEM, leaf first) for a verified request.
    pub async fn issue(&self, token: &str, proof: KeyProof) -> Result<Vec<String>, ApiError> {
        let chain = self.issue_checked(token, proof).await?;
        self.issued
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(chain)
    }

    /// Seconds until the issuing chain's first certificate expires.
    pub fn chain_horizon(&self) -> i64 {
        self.not_after as i64 - crate::sequencer::unix_now()
    }

    pub fn issued(&self) -> u64 {
        self.issued.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn issue_checked(&self, token: &str, proof: KeyProof) -> Result<Vec<String>, ApiError> {
        let principal = self.authenticate(token).await?;
        let key = match proof {
            KeyProof::Csr(pem) => sigstack_crypto::parse_csr(&pem)
                .map_err(|e| ApiError::bad_request(format!("certificate signing request: {e}")))?,
            KeyProof::Signature { key, signature } => {
                let key = if key.starts_with(b"-----BEGIN") {
                    PublicKey::from_pem(&key)
                } else {
                    PublicKey::from_spki_der(&key)
                }
                .map_err(|e| ApiError::bad_request(format!("public key: {e}")))?;
                key.verify_default(principal.name.as_bytes(), &signature)
                    .map_err(|_| {
                        ApiError::bad_request(format!(
                            "proof of possession does not verify: it must be a signature over {:?} by the submitted key",
                            principal.name
                        ))
                    })?;
                key
            }
        };
        check_key_policy(&key)?;
        let ca = Authority {
            signer: self.signer.as_ref(),
            certificate: &self.chain[0],
            key_id: &self.key_id,
        };
        let serial = cert::serial(rand::random()).map_err(ApiError::internal)?;
        let template = cert::leaf_template(&ca, key.spki_der(), &principal, serial, unix_now())
            .map_err(|e| match e {
                cert::CertError::Identity(m) => ApiError::bad_request(m),
                other => ApiError::internal(other),
            })?;
        if template.validity.not_after.to_unix_duration().as_secs() > self.not_after {
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                if self.chain_horizon() <= 0 {
                    "the CA's certificate has expired; renew it with `sigstackd ca new-intermediate`"
                } else {
                    "the CA's certificate expires before a new certificate would; renew it with `sigstackd ca new-intermediate`"
                },
            ));
        }
        let precert = cert::precertificate(&template, ca.signer).map_err(signing_failed)?;
        // the precert entry is the template itself: its TBS without the poison
        let entry = ct::Entry::Precert {
            issuer_key_hash: self.issuer_key_hash,
            tbs: cert::tbs_der(&template).map_err(ApiError::internal)?,
        };
        let sct = self.submit_precert(&precert, &entry).await?;
        let list = ct::encode_sct_list(&[sct]).map_err(ApiError::internal)?;
        let leaf = cert::with_scts(&template, &list, ca.signer).map_err(signing_failed)?;
        let mut pems = vec![sigstack_crypto::pem::encode("CERTIFICATE", &leaf)];
        pems.extend(self.chain_pems.iter().cloned());
        Ok(pems)
    }

    /// Logs the precertificate and returns its SCT, verified over `entry` with the log's key.
    async fn submit_precert(&self, precert: &[u8], entry: &ct::Entry) -> Result<Sct, ApiError> {
        let mut chain = vec![STANDARD.encode(precert)];
        chain.extend(self.chain_b64.iter().cloned());
        let res = self
            .ct
            .http
            .post(&self.ct.add_pre_chain)
            .json(&AddChainRequest { chain })
            .send()
            .await
            .map_err(|e| ApiError::unavailable(format!("CT log: {e}")))?;
        let status = res.status();
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(ApiError::unavailable(format!("CT log answered {status}")));
        }
        if !status.is_success() {
            let body = res.text().await.unwrap_or_default();
            return Err(ApiError::internal(format!(
                "CT log refused the precertificate ({status}): {body}"
            )));
        }
        let r: AddChainResponse = res
            .json()
            .await
            .map_err(|e| ApiError::internal(format!("CT log answer: {e}")))?;
        let sct = parse_sct(&r).map_err(|e| ApiError::internal(format!("CT log SCT: {e}")))?;
        sct.verify(&self.ct.key, entry)
            .map_err(|e| ApiError::internal(format!("the CT log's SCT does not verify: {e}")))?;
        Ok(sct)
    }
}

/// What clients' path validation and Fulcio demand of a CA chain: the issuing certificate
/// is a CA with EKU codeSigning and valid now, and the chain ends in a self-signed root.
pub(crate) fn check_chain_profile(chain: &[Certificate]) -> anyhow::Result<()> {
    let issuing = &chain[0];
    anyhow::ensure!(
        issuing.is_ca(),
        "the issuing certificate is not a CA certificate (BasicConstraints CA:TRUE, keyCertSign)"
    );
    anyhow::ensure!(
        issuing
            .extended_key_usages()
            .iter()
            .any(|e| e == "1.3.6.1.5.5.7.3.3"),
        "the issuing certificate lacks EKU codeSigning"
    );
    let root = chain.last().unwrap_or(issuing);
    root.verify_issued_by(root)
        .context("the chain does not end in a self-signed root")?;
    // validity is not a reason to refuse to start: see warn_about_validity (an expired
    // intermediate still serves its trust endpoints and answers 503 with the remedy)
    Ok(())
}

fn parse_sct(r: &AddChainResponse) -> anyhow::Result<Sct> {
    anyhow::ensure!(r.sct_version == 0, "SCT version {}", r.sct_version);
    Ok(Sct {
        log_id: STANDARD
            .decode(&r.id)?
            .try_into()
            .map_err(|_| anyhow::anyhow!("log id is not 32 bytes"))?,
        timestamp: r.timestamp,
        extensions: STANDARD.decode(&r.extensions)?,
        signature: DigitallySigned::from_bytes(&STANDARD.decode(&r.signature)?)?,
    })
}

/// Client keys Fulcio accepts: ECDSA P-256/P-384/P-521, RSA 2048/3072/4096, Ed25519.
fn check_key_policy(key: &PublicKey) -> Result<(), ApiError> {
    let d = key.describe();
    let ok = matches!(
        d.as_str(),
        "ECDSA P-256"
            | "ECDSA P-384"
            | "ECDSA P-521"
            | "RSA-2048"
            | "RSA-3072"
            | "RSA-4096"
            | "Ed25519"
    );
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "unsupported key type {d}: use ECDSA P-256, P-384 or P-521, RSA 2048/3072/4096 or Ed25519"
        )))
    }
}

/// Says at start, naming each certificate, what of the CA's chain is expired, not yet
/// valid or expiring within 30 days: the CA still starts (its trust endpoints serve), and
/// `/readyz` and issuance answer 503 with the same reason once it cannot issue.
fn warn_about_validity(chain: &[Certificate], path: &std::path::Path) {
    let now = crate::sequencer::unix_now();
    for (i, c) in chain.iter().enumerate() {
        let (from, until) = c.validity();
        let name = c.parsed().tbs_certificate.subject.to_string();
        let which = format!("certificate {i} of {} ({name})", path.display());
        if (until as i64) < now {
            tracing::error!(certificate = %which, expired = %crate::time::rfc3339(until as i64), "the CA's certificate has expired: renew it with `sigstackd ca new-intermediate`");
        } else if (from as i64) > now {
            tracing::error!(certificate = %which, valid_from = %crate::time::rfc3339(from as i64), "the CA's certificate is not valid yet");
        } else if (until as i64) - now < 30 * 86_400 {
            tracing::warn!(certificate = %which, expires = %crate::time::rfc3339(until as i64), "the CA's certificate expires within 30 days: renew it with `sigstackd ca new-intermediate`");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_the_key_cannot_give_is_a_503_to_retry() {
        let gone = sigstack_crypto::CryptoError::Signing(
            "pkcs11:token=t;object=ca: the token is not present".into(),
        );
        let e = signing_failed(cert::CertError::Crypto(gone));
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            !e.message().contains("token"),
            "the cause is logged, not told: {}",
            e.message()
        );
        let e = signing_failed(cert::CertError::Encoding("a bug of ours".into()));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
