//! Signing a blob: keyless (an ephemeral P-256 key certified by the CA for the identity
//! token, proven by a CSR) or with a managed key; the signature is logged in the Rekor v1
//! transparency log as a `hashedrekord` and everything is packed into a v0.3 bundle, with
//! the inclusion proof, checkpoint and signed entry timestamp the log returned.

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
    pub rekor_url: &'a str,
    /// The OIDC identity token (keyless).
    pub identity_token: Option<&'a str>,
    /// A managed key instead of a certificate.
    pub key: Option<&'a FileSigner>,
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

async fn checked_json(res: reqwest::Response, what: &str) -> anyhow::Result<Value> {
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

/// A certificate for `key` from the CA, for the identity in `token`.
async fn certificate(
    http: &reqwest::Client,
    fulcio_url: &str,
    token: &str,
    key: &FileSigner,
) -> anyhow::Result<Certificate> {
    let url = format!("{}/api/v2/signingCert", fulcio_url.trim_end_matches('/'));
    let res = http
        .post(&url)
        .bearer_auth(token)
        .json(&json!({"certificateSigningRequest": STANDARD.encode(csr(key)?)}))
        .send()
        .await
        .with_context(|| format!("reaching the CA at {url}"))?;
    let v = checked_json(res, "the CA").await?;
    let leaf = v
        .pointer("/signedCertificateEmbeddedSct/chain/certificates/0")
        .and_then(Value::as_str)
        .context("the CA's answer has no certificate (an SCT-embedded chain is required)")?;
    let block = sigstack_crypto::pem::decode_all(leaf.as_bytes())?
        .into_iter()
        .next()
        .context("the CA's certificate is not PEM")?;
    Ok(Certificate::from_der(&block.der)?)
}

/// Signs `artifact`; returns the v0.3 bundle.
pub async fn sign_blob(
    http: &reqwest::Client,
    artifact: &[u8],
    opts: &SignOptions<'_>,
) -> anyhow::Result<Value> {
    let ephemeral;
    let (signer, cert) = match (opts.key, opts.identity_token) {
        (Some(k), _) => (k, None),
        (None, Some(token)) => {
            ephemeral = FileSigner::generate(Curve::P256);
            let cert = certificate(http, opts.fulcio_url, token, &ephemeral).await?;
            if cert.public_key() != ephemeral.public_key() {
                bail!("the CA certified another key than ours");
            }
            (&ephemeral, Some(cert))
        }
        (None, None) => bail!("keyless signing needs an identity token"),
    };
    let digest = sigstack_crypto::sha256(artifact);
    let signature = signer.sign(artifact)?;
    let verifier_pem = match &cert {
        Some(c) => c.to_pem(),
        None => signer.public_key().to_pem(),
    };
    let entry = json!({
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hex::encode(digest)}},
            "signature": {
                "content": STANDARD.encode(&signature),
                "publicKey": {"content": STANDARD.encode(verifier_pem.as_bytes())}
            }
        }
    });
    let url = format!(
        "{}/api/v1/log/entries",
        opts.rekor_url.trim_end_matches('/')
    );
    let res = http
        .post(&url)
        .json(&entry)
        .send()
        .await
        .with_context(|| format!("reaching the transparency log at {url}"))?;
    let logged: LogEntry = serde_json::from_value(checked_json(res, "the transparency log").await?)
        .context("the transparency log's answer is not a log entry")?;
    let (_, e) = logged
        .into_iter()
        .next()
        .context("the transparency log answered no entry")?;
    let v = e
        .verification
        .context("the log entry has no verification data")?;
    let proof = v
        .inclusion_proof
        .context("the log entry has no inclusion proof")?;
    let hex_to_b64 = |h: &str| -> anyhow::Result<String> { Ok(STANDARD.encode(hex::decode(h)?)) };
    let material_key = match &cert {
        Some(c) => json!({"certificate": {"rawBytes": STANDARD.encode(c.der())}}),
        None => {
            json!({"publicKey": {"hint": STANDARD.encode(sigstack_crypto::sha256(signer.public_key().spki_der()))}})
        }
    };
    let mut material = material_key;
    material["tlogEntries"] = json!([{
        "logIndex": e.log_index.to_string(),
        "logId": {"keyId": hex_to_b64(&e.log_id)?},
        "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
        "integratedTime": e.integrated_time.to_string(),
        "inclusionPromise": {"signedEntryTimestamp": v.signed_entry_timestamp.unwrap_or_default()},
        "inclusionProof": {
            "logIndex": proof.log_index.to_string(),
            "rootHash": hex_to_b64(&proof.root_hash)?,
            "treeSize": proof.tree_size.to_string(),
            "hashes": proof.hashes.iter().map(|h| hex_to_b64(h)).collect::<anyhow::Result<Vec<_>>>()?,
            "checkpoint": {"envelope": proof.checkpoint},
        },
        "canonicalizedBody": e.body,
    }]);
    Ok(json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": material,
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": STANDARD.encode(digest)},
            "signature": STANDARD.encode(&signature),
        }
    }))
}
