//! Signing a blob: keyless (an ephemeral P-256 key certified by the CA for the identity
//! token, proven by a CSR) or with a managed key; the signature is logged in the Rekor v1
//! transparency log as a `hashedrekord` and everything is packed into a v0.3 bundle, with
//! the inclusion proof, checkpoint and signed entry timestamp the log returned, and, when
//! a timestamp authority is named, its RFC 3161 timestamp over the signature.

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use der::{Decode, Encode};
use serde_json::{Value, json};
use sigstack_crypto::{Certificate, Curve, FileSigner, Signer};
use sigstack_types::rekor::LogEntry;

/// Where to sign and as whom.
pub struct SignOptions<'a> {
    pub fulcio_url: &'a str,
    /// The transparency log; `None` signs without logging (`--tlog-upload=false`).
    pub rekor_url: Option<&'a str>,
    /// Which API that log speaks.
    pub rekor_api: RekorApi,
    /// The OIDC identity token (keyless).
    pub identity_token: Option<&'a str>,
    /// A managed key instead of a certificate.
    pub key: Option<&'a dyn Signer>,
    /// The managed key's certificate from the organisation's own CA, and the chain above
    /// it (bring-your-own PKI): in the bundle and the log entry in the key's place.
    pub key_certificate: Option<(&'a Certificate, &'a [Certificate])>,
    /// A timestamp authority's endpoint (`…/api/v1/timestamp`): the signature gets an
    /// RFC 3161 timestamp, carried in the bundle.
    pub tsa_url: Option<&'a str>,
}

/// The transparency log API to sign with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RekorApi {
    /// Rekor v1: the entry comes back with a signed entry timestamp.
    V1,
    /// Rekor v2 (a tiled log): a hashedrekord (over the DSSE pre-authentication encoding
    /// for attestations), an inclusion proof and a checkpoint; signing time comes from a
    /// timestamp authority.
    V2,
}

/// A PEM certificate signing request for `key`, signed by it (the proof of possession).
fn csr(key: &FileSigner) -> anyhow::Result<String> {
    use x509_cert::request::{CertReq, CertReqInfo};
    let info = CertReqInfo {
        version: x509_cert::request::Version::V1,
        subject: Default::default(),
        public_key: x509_cert::spki::SubjectPublicKeyInfoOwned::from_der(
            key.public_key().spki_der(),
        )?,
        attributes: Default::default(),
    };
    let sig = key.sign(&info.to_der()?)?;
    let req = CertReq {
        info,
        algorithm: x509_cert::spki::AlgorithmIdentifierOwned {
            oid: sigstack_crypto::sig_oid::ECDSA_SHA256,
            parameters: None,
        },
        signature: der::asn1::BitString::from_bytes(&sig)?,
    };
    Ok(sigstack_crypto::pem::encode(
        "CERTIFICATE REQUEST",
        &req.to_der()?,
    ))
}

pub(crate) async fn checked_json(res: reqwest::Response, what: &str) -> anyhow::Result<Value> {
    let status = res.status();
    let body = res
        .text()
        .await
        .with_context(|| format!("{what}: reading the answer"))?;
    if !status.is_success() {
        bail!("{what}: HTTP {status}: {}", body.trim());
    }
    serde_json::from_str(&body).with_context(|| format!("{what}: the answer is not JSON"))
}

/// A certificate for `key` from the CA, for the identity in `token`, with the CA's chain
/// (issuer-nearest first).
async fn certificate(
    http: &reqwest::Client,
    fulcio_url: &str,
    token: &str,
    key: &FileSigner,
) -> anyhow::Result<(Certificate, Vec<Certificate>)> {
    let url = format!("{}/api/v2/signingCert", fulcio_url.trim_end_matches('/'));
    let res = http
        .post(&url)
        .bearer_auth(token)
        .json(&json!({"certificateSigningRequest": STANDARD.encode(csr(key)?)}))
        .send()
        .await
        .with_context(|| format!("reaching the CA at {url}"))?;
    let v = checked_json(res, "the CA").await?;
    let pems = v
        .pointer("/signedCertificateEmbeddedSct/chain/certificates")
        .and_then(Value::as_array)
        .context("the CA's answer has no certificate (an SCT-embedded chain is required)")?;
    let mut certs = Vec::new();
    for pem in pems {
        let block = sigstack_crypto::pem::decode_all(pem.as_str().unwrap_or_default().as_bytes())?
            .into_iter()
            .next()
            .context("the CA's certificate is not PEM")?;
        certs.push(Certificate::from_der(&block.der)?);
    }
    if certs.is_empty() {
        bail!("the CA answered an empty chain");
    }
    let leaf = certs.remove(0);
    Ok((leaf, certs))
}

/// What was signed and how it went.
pub struct Signed {
    /// The v0.3 bundle.
    pub bundle: Value,
    pub signature: Vec<u8>,
    /// The certificate (keyless).
    pub certificate: Option<Certificate>,
    /// The CA's chain above the certificate (keyless).
    pub chain: Vec<Certificate>,
    /// The TSA's DER `TimeStampResp` over the signature, if one was asked for.
    pub timestamp: Option<Vec<u8>>,
}

/// Asks the TSA at `url` for a timestamp over `signature` (RFC 3161, DER request with a
/// nonce); returns the DER response after checking it is over this signature.
async fn timestamp(http: &reqwest::Client, url: &str, signature: &[u8]) -> anyhow::Result<Vec<u8>> {
    let digest = sigstack_crypto::sha256(signature);
    let nonce: u64 = rand::random::<u64>() >> 1;
    let res = http
        .post(url)
        .header("Content-Type", "application/timestamp-query")
        .body(crate::tsa::request_der(&digest, nonce))
        .send()
        .await
        .with_context(|| format!("reaching the timestamp authority at {url}"))?;
    let status = res.status();
    let body = res.bytes().await?.to_vec();
    if !status.is_success() {
        bail!(
            "the timestamp authority at {url} answered HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(512)])
        );
    }
    crate::tsa::check_response(&body, &digest, nonce)
        .map_err(|e| anyhow::anyhow!("the timestamp authority at {url}: {e}"))?;
    Ok(body)
}

/// `timestampVerificationData` for the bundle, if there is a timestamp.
fn with_timestamp(mut material: Value, ts: Option<&[u8]>) -> Value {
    if let Some(ts) = ts {
        material["timestampVerificationData"] =
            json!({"rfc3161Timestamps": [{"signedTimestamp": STANDARD.encode(ts)}]});
    }
    material
}

/// The signing key: a managed key, or an ephemeral one certified by the CA.
async fn signing_key(
    http: &reqwest::Client,
    opts: &SignOptions<'_>,
) -> anyhow::Result<(Option<FileSigner>, Option<Certificate>, Vec<Certificate>)> {
    match (opts.key, opts.identity_token) {
        (Some(_), _) => Ok(match opts.key_certificate {
            Some((cert, chain)) => (None, Some(cert.clone()), chain.to_vec()),
            None => (None, None, Vec::new()),
        }),
        (None, Some(token)) => {
            let ephemeral = FileSigner::generate(Curve::P256);
            let (cert, chain) = certificate(http, opts.fulcio_url, token, &ephemeral).await?;
            if cert.public_key() != ephemeral.public_key() {
                bail!("the CA certified another key than ours");
            }
            Ok((Some(ephemeral), Some(cert), chain))
        }
        (None, None) => bail!("keyless signing needs an identity token"),
    }
}

/// Most attempts at an upload the log answers 503 (busy, or its database away).
pub(crate) const UPLOAD_ATTEMPTS: u32 = 4;

/// How long to wait before another attempt after a 503, from its `Retry-After` (1–10 s,
/// halved, with jitter).
pub(crate) fn retry_wait(res: &reqwest::Response) -> std::time::Duration {
    let wait = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1)
        .clamp(1, 10);
    std::time::Duration::from_millis(wait * 1000 / 2 + rand::random::<u64>() % 500)
}

/// Uploads `entry` to the log; returns the bundle's `tlogEntries` item. A 503 is retried
/// with backoff (the log commits nothing it answers 503 to, so the retry is safe); a 409
/// means the entry is logged already, and that entry (from the answer's Location) is
/// used, as cosign does.
async fn upload(http: &reqwest::Client, rekor_url: &str, entry: &Value) -> anyhow::Result<Value> {
    let base = rekor_url.trim_end_matches('/');
    let url = format!("{base}/api/v1/log/entries");
    let mut attempt = 0;
    let res = loop {
        attempt += 1;
        let res = http
            .post(&url)
            .json(entry)
            .send()
            .await
            .with_context(|| format!("reaching the transparency log at {url}"))?;
        if res.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE || attempt >= UPLOAD_ATTEMPTS {
            break res;
        }
        tokio::time::sleep(retry_wait(&res)).await;
    };
    let res = if res.status() == reqwest::StatusCode::CONFLICT {
        let location = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .context("the log says the entry exists but not where")?
            .to_string();
        let existing = if location.starts_with("http") {
            location
        } else {
            format!("{base}{location}")
        };
        http.get(&existing)
            .send()
            .await
            .with_context(|| format!("reading the existing entry at {existing}"))?
    } else {
        res
    };
    let logged: LogEntry = serde_json::from_value(checked_json(res, "the transparency log").await?)
        .context("the transparency log's answer is not a log entry")?;
    let (_, e) = logged
        .into_iter()
        .next()
        .context("the transparency log answered no entry")?;
    let v = e
        .verification
        .as_ref()
        .context("the log entry has no verification data")?;
    if v.inclusion_proof.is_none() {
        bail!("the log entry has no inclusion proof");
    }
    crate::rekor::bundle_entry(&e)
}

fn material(cert: Option<&Certificate>, key: &dyn Signer, tlog: Option<Value>) -> Value {
    let mut m = match cert {
        Some(c) => json!({"certificate": {"rawBytes": STANDARD.encode(c.der())}}),
        None => {
            json!({"publicKey": {"hint": STANDARD.encode(sigstack_crypto::sha256(key.public_key().spki_der()))}})
        }
    };
    m["tlogEntries"] = Value::Array(tlog.into_iter().collect());
    m
}

fn verifier_pem(cert: Option<&Certificate>, key: &dyn Signer) -> String {
    match cert {
        Some(c) => c.to_pem(),
        None => key.public_key().to_pem(),
    }
}

/// Signs a blob known by its SHA-256 `digest` (hashed as it was read); returns the v0.3
/// bundle with a `hashedrekord` log entry.
pub async fn sign_blob(
    http: &reqwest::Client,
    digest: &[u8; 32],
    opts: &SignOptions<'_>,
) -> anyhow::Result<Signed> {
    let (ephemeral, cert, chain) = signing_key(http, opts).await?;
    let signer = ephemeral
        .as_ref()
        .map(|e| e as &dyn Signer)
        .or(opts.key)
        .context("no key")?;
    let signature = signer
        .sign_digest(digest)
        .context("signing the artifact's digest")?;
    let ts = match opts.tsa_url {
        Some(u) => Some(timestamp(http, u, &signature).await?),
        None => None,
    };
    let tlog = match (opts.rekor_url, opts.rekor_api) {
        (Some(u), RekorApi::V1) => {
            let entry = crate::rekor::hashedrekord(
                digest,
                &STANDARD.encode(&signature),
                verifier_pem(cert.as_ref(), signer).as_bytes(),
            );
            Some(upload(http, u, &entry).await?)
        }
        (Some(u), RekorApi::V2) => Some(
            crate::rekor_v2::upload(
                http,
                u,
                &crate::rekor_v2::request(digest, &signature, cert.as_ref(), signer)?,
            )
            .await?,
        ),
        (None, _) => None,
    };
    let bundle = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": with_timestamp(material(cert.as_ref(), signer, tlog), ts.as_deref()),
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": STANDARD.encode(digest)},
            "signature": STANDARD.encode(&signature),
        }
    });
    Ok(Signed {
        bundle,
        signature,
        certificate: cert,
        chain,
        timestamp: ts,
    })
}

pub use crate::verify::IN_TOTO;

/// Signs an in-toto statement as a DSSE envelope; returns the v0.3 bundle with a `dsse`
/// log entry.
pub async fn attest(
    http: &reqwest::Client,
    statement: &[u8],
    opts: &SignOptions<'_>,
) -> anyhow::Result<Signed> {
    let (ephemeral, cert, chain) = signing_key(http, opts).await?;
    let signer = ephemeral
        .as_ref()
        .map(|e| e as &dyn Signer)
        .or(opts.key)
        .context("no key")?;
    let signature = signer.sign(&crate::verify::pae(IN_TOTO, statement))?;
    let ts = match opts.tsa_url {
        Some(u) => Some(timestamp(http, u, &signature).await?),
        None => None,
    };
    let envelope = json!({
        "payload": STANDARD.encode(statement),
        "payloadType": IN_TOTO,
        "signatures": [{"sig": STANDARD.encode(&signature), "keyid": ""}],
    });
    let tlog = match (opts.rekor_url, opts.rekor_api) {
        (Some(u), RekorApi::V1) => {
            let entry = json!({
                "apiVersion": "0.0.1",
                "kind": "dsse",
                "spec": {"proposedContent": {
                    "envelope": envelope.to_string(),
                    "verifiers": [STANDARD.encode(verifier_pem(cert.as_ref(), signer).as_bytes())],
                }}
            });
            Some(upload(http, u, &entry).await?)
        }
        // Rekor v2 logs a DSSE envelope as a hashedrekord over its PAE
        (Some(u), RekorApi::V2) => {
            let pae_digest = sigstack_crypto::sha256(&crate::verify::pae(IN_TOTO, statement));
            Some(
                crate::rekor_v2::upload(
                    http,
                    u,
                    &crate::rekor_v2::request(&pae_digest, &signature, cert.as_ref(), signer)?,
                )
                .await?,
            )
        }
        (None, _) => None,
    };
    let bundle = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": with_timestamp(material(cert.as_ref(), signer, tlog), ts.as_deref()),
        "dsseEnvelope": envelope,
    });
    Ok(Signed {
        bundle,
        signature,
        certificate: cert,
        chain,
        timestamp: ts,
    })
}
