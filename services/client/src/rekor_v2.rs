//! Logging a signature in a Rekor v2 (tiled) log: the `hashedRekordRequestV002` a
//! signature becomes, and the upload, whose answer is the bundle's `tlogEntries` item
//! as it stands (a TransparencyLogEntry with an inclusion proof and checkpoint).

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sigstack_crypto::{Certificate, Signer};

/// The request for a signature over a SHA-256 `digest` by `signer` (certified by `cert`,
/// or a bare key). The log checks the signature against the digest with the hash that
/// `keyDetails` names, so only keys that sign SHA-256 digests (ECDSA P-256) fit.
pub fn request(
    digest: &[u8; 32],
    signature: &[u8],
    cert: Option<&Certificate>,
    signer: &dyn Signer,
) -> anyhow::Result<Value> {
    let details = signer.public_key().key_details();
    if details != "PKIX_ECDSA_P256_SHA_256" {
        bail!(
            "signing into a Rekor v2 log needs an ECDSA P-256 key (the entry records a SHA-256 digest); this key is {}: use --rekor-version 1",
            signer.public_key().describe()
        );
    }
    let verifier = match cert {
        Some(c) => {
            json!({"x509Certificate": {"rawBytes": STANDARD.encode(c.der())}, "keyDetails": details})
        }
        None => {
            json!({"publicKey": {"rawBytes": STANDARD.encode(signer.public_key().spki_der())}, "keyDetails": details})
        }
    };
    Ok(json!({"hashedRekordRequestV002": {
        "digest": STANDARD.encode(digest),
        "signature": {"content": STANDARD.encode(signature), "verifier": verifier},
    }}))
}

/// Posts `request` to the log at `url`; returns the entry for the bundle. A 503
/// (pushback, or the log's database away) is retried with backoff: nothing answered 503
/// was logged.
pub async fn upload(http: &reqwest::Client, url: &str, request: &Value) -> anyhow::Result<Value> {
    let url = format!("{}/api/v2/log/entries", url.trim_end_matches('/'));
    let mut attempt = 0;
    let res = loop {
        attempt += 1;
        let res = http
            .post(&url)
            .json(request)
            .send()
            .await
            .with_context(|| format!("reaching the transparency log at {url}"))?;
        if res.status() != reqwest::StatusCode::SERVICE_UNAVAILABLE
            || attempt >= crate::sign::UPLOAD_ATTEMPTS
        {
            break res;
        }
        tokio::time::sleep(crate::sign::retry_wait(&res)).await;
    };
    if res.status() == reqwest::StatusCode::CONFLICT {
        let index = res
            .headers()
            .get("x-log-index")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?")
            .to_string();
        bail!(
            "the transparency log at {url} holds this signature already (log index {index}); a Rekor v2 log does not hand out existing entries: sign again (a new signature is a new entry)"
        );
    }
    let mut entry = crate::sign::checked_json(res, "the transparency log").await?;
    // protobuf JSON writes unset messages as null; a bundle leaves them out
    if let Some(o) = entry.as_object_mut() {
        o.retain(|_, v| !v.is_null());
    }
    if entry
        .pointer("/inclusionProof/checkpoint/envelope")
        .and_then(Value::as_str)
        .is_none()
    {
        bail!("the transparency log's answer has no inclusion proof with a checkpoint");
    }
    Ok(entry)
}
