//! Transparency-log entries: the body describes this bundle's signature, the entry is
//! included in a tree whose checkpoint a trusted log signed, and (Rekor v1) its signed
//! entry timestamp verifies. What an entry proves is reported only from signed data.

use super::trust::Trust;
use super::{SKEW, VerifyError, fail};
use crate::bundle::{Bundle, TlogEntry, Version, b64};
use serde_json::Value;
use sigstack_crypto::{Certificate, PublicKey};

fn non_negative(field: &str, v: i64) -> Result<i64, VerifyError> {
    if v < 0 {
        return fail(format!("{field} {v} is negative"));
    }
    Ok(v)
}

/// A DSSE bundle's digests, computed once for all its log entries.
pub struct DsseDigests {
    /// SHA-256 of the decoded payload.
    pub payload: [u8; 32],
    /// SHA-256 of the pre-authentication encoding (what a Rekor v2 hashedrekord logs).
    pub pae: [u8; 32],
}

fn dsse_digests(d: Option<&DsseDigests>) -> Result<&DsseDigests, VerifyError> {
    d.ok_or_else(|| VerifyError("the bundle has no DSSE envelope".into()))
}

/// What a verified entry establishes.
pub struct EntryProof {
    /// The integrated time, when a signed entry timestamp signs it (Rekor v1).
    pub time: Option<i64>,
    /// The log index as signed: by the signed entry timestamp, else by the inclusion
    /// proof (an entry's bare `logIndex` is not authenticated).
    pub log_index: i64,
}

/// Checks one transparency-log entry: returns the integrated time of a Rekor v1 entry
/// (`None` for Rekor v2, whose entries carry no time: `tsa_times` date them).
pub fn verify_tlog_entry(
    e: &TlogEntry,
    version: Version,
    trust: &Trust,
    now: i64,
    tsa_times: &[i64],
) -> Result<EntryProof, VerifyError> {
    let log_index = non_negative("logIndex", e.log_index)?;
    let integrated = non_negative("integratedTime", e.integrated_time)?;
    if integrated > now + SKEW {
        return fail("the entry's integrated time is in the future");
    }
    let log_id = b64("logId.keyId", &e.log_id.key_id)?;
    if is_v2(e) {
        if tsa_times.is_empty() {
            return fail(
                "a Rekor v2 entry needs a signed timestamp to date it, and the bundle has none",
            );
        }
        // the log's key must have been valid at every time that dates the entry
        let mut found = None;
        for t in tsa_times {
            found = Some(trust.tlog(&log_id, *t)?);
        }
        let (log, key) = found.ok_or_else(|| VerifyError("no time for the entry".into()))?;
        let Some(p) = &e.inclusion_proof else {
            return fail("the entry has no inclusion proof");
        };
        // a Rekor v2 entry's only index is the proven one, and it has no time of its own:
        // unsigned fields that say otherwise are refused, not ignored
        if p.log_index != log_index {
            return fail("the entry's logIndex is not its inclusion proof's");
        }
        if integrated != 0 {
            return fail("a Rekor v2 entry carries no integrated time");
        }
        let body = b64("canonicalizedBody", &e.canonicalized_body)?;
        let (size, root_hash) = check_proof(p, &body)?;
        let Some(cp) = &p.checkpoint else {
            return fail("the inclusion proof has no checkpoint");
        };
        let checkpoint =
            crate::note::verify_checkpoint(&cp.envelope, &log.instance.base_url, &log_id, key)
                .map_err(|e| VerifyError(format!("the checkpoint does not verify: {e}")))?;
        if checkpoint.size != size || checkpoint.root != root_hash {
            return fail("the checkpoint does not match the inclusion proof's tree");
        }
        return Ok(EntryProof {
            time: None,
            log_index: p.log_index,
        });
    }
    // the log's key must have been valid when the entry was made: at the integrated time
    // when a signed entry timestamp signs it, else (proof only: the time is unsigned) at
    // every signed timestamp's time
    let key_times: Vec<i64> = if e.inclusion_promise.is_some() {
        vec![integrated]
    } else {
        tsa_times.to_vec()
    };
    if key_times.is_empty() {
        return fail(
            "no verified time: the entry has neither a signed entry timestamp nor a signed timestamp to date it",
        );
    }
    let mut found = None;
    for t in &key_times {
        found = Some(trust.tlog(&log_id, *t)?);
    }
    let (_, key) = found.ok_or_else(|| VerifyError("no time for the entry".into()))?;
    let body = b64("canonicalizedBody", &e.canonicalized_body)?;
    if version >= Version::V02 && e.inclusion_proof.is_none() {
        return fail("the entry has no inclusion proof (required from bundle v0.2 on)");
    }
    if e.inclusion_proof.is_none() && e.inclusion_promise.is_none() {
        return fail("the entry has neither an inclusion proof nor a signed entry timestamp");
    }
    if let Some(p) = &e.inclusion_promise {
        let set = b64("signedEntryTimestamp", &p.signed_entry_timestamp)?;
        sigstack_log::set::verify(
            key,
            &set,
            &e.canonicalized_body,
            integrated,
            &hex::encode(&log_id),
            log_index,
        )
        .map_err(|_| VerifyError("the signed entry timestamp does not verify".into()))?;
    }
    if let Some(p) = &e.inclusion_proof {
        let (size, root_hash) = check_proof(p, &body)?;
        let Some(cp) = &p.checkpoint else {
            return fail("the inclusion proof has no checkpoint");
        };
        let checkpoint = sigstack_log::checkpoint::verify_any_name(&cp.envelope, key)
            .map_err(|e| VerifyError(format!("the checkpoint does not verify: {e}")))?;
        if checkpoint.size != size || checkpoint.root != root_hash {
            return fail("the checkpoint does not match the inclusion proof's tree");
        }
    }
    // the integrated time and the index are signed by the SET; without one the entry
    // proves inclusion at the proof's index but dates nothing
    Ok(match (&e.inclusion_promise, &e.inclusion_proof) {
        (Some(_), _) => EntryProof {
            time: Some(integrated),
            log_index,
        },
        (None, Some(p)) => EntryProof {
            time: None,
            log_index: p.log_index,
        },
        (None, None) => return fail("the entry proves nothing"),
    })
}

/// Verifies a Rekor v1 entry on its own (as `sigstack log get` fetches it): signed entry
/// timestamp and inclusion proof against a checkpoint signed by a trusted log; returns
/// the integrated time.
pub fn verify_log_entry(e: &TlogEntry, trust: &Trust, now: i64) -> Result<i64, VerifyError> {
    verify_tlog_entry(e, Version::V03, trust, now, &[])?
        .time
        .ok_or_else(|| VerifyError("not a Rekor v1 entry".into()))
}

/// A Rekor v2 entry (hashedrekord or dsse 0.0.2).
pub fn is_v2(e: &TlogEntry) -> bool {
    e.kind_version.version == "0.0.2" && e.kind_version.kind != "intoto"
}

/// Verifies an inclusion proof for `body`; returns the tree size and root it proves to.
fn check_proof(
    p: &crate::bundle::InclusionProof,
    body: &[u8],
) -> Result<(u64, sigstack_merkle::Hash), VerifyError> {
    let index = non_negative("inclusionProof.logIndex", p.log_index)? as u64;
    let size = non_negative("inclusionProof.treeSize", p.tree_size)? as u64;
    let root_hash: sigstack_merkle::Hash = b64("rootHash", &p.root_hash)?
        .try_into()
        .map_err(|_| VerifyError("rootHash is not 32 bytes".into()))?;
    let path = p
        .hashes
        .iter()
        .map(|h| {
            b64("hashes", h)?
                .try_into()
                .map_err(|_| VerifyError("a proof hash is not 32 bytes".into()))
        })
        .collect::<Result<Vec<sigstack_merkle::Hash>, _>>()?;
    let leaf = sigstack_merkle::leaf_hash(body);
    sigstack_merkle::verify_inclusion(&leaf, index, size, &path, &root_hash)
        .map_err(|e| VerifyError(format!("the inclusion proof does not verify: {e}")))?;
    Ok((size, root_hash))
}

/// The PEM or DER in a tlog body's public key field, as DER.
fn body_key_der(b64_pem: &str) -> Result<Vec<u8>, VerifyError> {
    let raw = b64("publicKey", b64_pem)?;
    let blocks = sigstack_crypto::pem::decode_all(&raw)
        .map_err(|_| VerifyError("the entry's public key is not PEM".into()))?;
    Ok(blocks.into_iter().next().map(|b| b.der).unwrap_or_default())
}

/// The DER the bundle's signer is known by (certificate, or key SPKI).
fn signer_matches(body_der: &[u8], cert: Option<&Certificate>, key: &PublicKey) -> bool {
    match cert {
        Some(c) => body_der == c.der(),
        None => body_der == key.spki_der(),
    }
}

fn hash_field(v: &Value, path: &str) -> Option<String> {
    v.pointer(path)
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
}

fn mismatch(what: &str) -> VerifyError {
    VerifyError(format!("the log entry does not match the bundle: {what}"))
}

/// The tlog entry's body must describe this bundle's signature.
pub fn check_body(
    body: &Value,
    kind: &str,
    b: &Bundle,
    cert: Option<&Certificate>,
    key: &PublicKey,
    artifact_digest: &[u8; 32],
    dsse: Option<&DsseDigests>,
) -> Result<(), VerifyError> {
    match (kind, &b.message_signature, &b.dsse_envelope) {
        ("hashedrekord", Some(ms), None) => {
            let spec = &body["spec"];
            if hash_field(spec, "/data/hash/value") != Some(hex::encode(artifact_digest)) {
                return Err(mismatch("artifact digest"));
            }
            let sig_body = spec
                .pointer("/signature/content")
                .and_then(Value::as_str)
                .unwrap_or("");
            if b64("signature", sig_body)? != b64("signature", &ms.signature)? {
                return Err(mismatch("signature"));
            }
            let k = spec
                .pointer("/signature/publicKey/content")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !signer_matches(&body_key_der(k)?, cert, key) {
                return Err(mismatch("signing certificate or key"));
            }
        }
        ("dsse", None, Some(env)) => {
            let spec = &body["spec"];
            if hash_field(spec, "/payloadHash/value")
                != Some(hex::encode(dsse_digests(dsse)?.payload))
            {
                return Err(mismatch("payload hash"));
            }
            let sigs = spec["signatures"].as_array().cloned().unwrap_or_default();
            if sigs.len() != env.signatures.len() {
                return Err(mismatch("signatures"));
            }
            for (s, e) in sigs.iter().zip(&env.signatures) {
                if b64("signature", s["signature"].as_str().unwrap_or(""))? != b64("sig", &e.sig)? {
                    return Err(mismatch("signature"));
                }
                if !signer_matches(
                    &body_key_der(s["verifier"].as_str().unwrap_or(""))?,
                    cert,
                    key,
                ) {
                    return Err(mismatch("signing certificate or key"));
                }
            }
        }
        // intoto 0.0.1 (cosign's `--rekor-entry-type intoto`): the payload and the one key
        ("intoto", None, Some(env)) if body["apiVersion"] == "0.0.1" => {
            let spec = &body["spec"];
            if hash_field(spec, "/content/payloadHash/value")
                != Some(hex::encode(dsse_digests(dsse)?.payload))
            {
                return Err(mismatch("payload hash"));
            }
            let k = spec["publicKey"].as_str().unwrap_or("");
            if !signer_matches(&body_key_der(k)?, cert, key) {
                return Err(mismatch("signing certificate or key"));
            }
        }
        ("intoto", None, Some(env)) => {
            let content = &body["spec"]["content"];
            if hash_field(content, "/payloadHash/value")
                != Some(hex::encode(dsse_digests(dsse)?.payload))
            {
                return Err(mismatch("payload hash"));
            }
            let sigs = content
                .pointer("/envelope/signatures")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if sigs.len() != env.signatures.len() {
                return Err(mismatch("signatures"));
            }
            for (s, e) in sigs.iter().zip(&env.signatures) {
                // intoto 0.0.2 stores each signature base64-encoded once more
                let inner = String::from_utf8(b64("sig", s["sig"].as_str().unwrap_or(""))?)
                    .unwrap_or_default();
                if b64("sig", &inner)? != b64("sig", &e.sig)? {
                    return Err(mismatch("signature"));
                }
                if !signer_matches(
                    &body_key_der(s["publicKey"].as_str().unwrap_or(""))?,
                    cert,
                    key,
                ) {
                    return Err(mismatch("signing certificate or key"));
                }
            }
        }
        (k, _, _) => {
            return fail(format!(
                "log entry kind {k:?} does not fit this bundle's content"
            ));
        }
    }
    Ok(())
}

/// Rekor v2's signature verifier (`x509Certificate` or `publicKey`) is the bundle's signer.
fn v2_verifier_matches(
    v: &Value,
    cert: Option<&Certificate>,
    key: &PublicKey,
) -> Result<bool, VerifyError> {
    let raw = |p: &str| v.pointer(p).and_then(Value::as_str);
    Ok(
        match (raw("/x509Certificate/rawBytes"), raw("/publicKey/rawBytes")) {
            (Some(c), _) => {
                cert.is_some_and(|cert| b64("x509Certificate", c).is_ok_and(|d| d == cert.der()))
            }
            (None, Some(k)) => cert.is_none() && b64("publicKey", k)? == key.spki_der(),
            _ => false,
        },
    )
}

/// A Rekor v2 (0.0.2) body must describe this bundle's signature.
pub fn check_body_v2(
    body: &Value,
    kind: &str,
    b: &Bundle,
    cert: Option<&Certificate>,
    key: &PublicKey,
    artifact_digest: &[u8; 32],
    dsse: Option<&DsseDigests>,
) -> Result<(), VerifyError> {
    let text = |v: &Value, p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    match (kind, &b.message_signature, &b.dsse_envelope) {
        ("hashedrekord", _, _) => {
            let spec = &body["spec"]["hashedRekordV002"];
            // a DSSE bundle logged as hashedrekord: the digest is of the PAE
            let (digest, sig) = match (&b.message_signature, &b.dsse_envelope) {
                (Some(ms), None) => (artifact_digest.to_vec(), b64("signature", &ms.signature)?),
                (None, Some(env)) => (
                    dsse_digests(dsse)?.pae.to_vec(),
                    b64(
                        "sig",
                        &env.signatures
                            .first()
                            .map(|s| s.sig.clone())
                            .unwrap_or_default(),
                    )?,
                ),
                _ => return fail("the bundle has no content"),
            };
            if b64("data.digest", &text(spec, "/data/digest"))? != digest {
                return Err(mismatch("artifact digest"));
            }
            if b64("signature", &text(spec, "/signature/content"))? != sig {
                return Err(mismatch("signature"));
            }
            if !v2_verifier_matches(&spec["signature"]["verifier"], cert, key)? {
                return Err(mismatch("signing certificate or key"));
            }
        }
        ("dsse", None, Some(env)) => {
            let spec = &body["spec"]["dsseV002"];
            if b64("payloadHash", &text(spec, "/payloadHash/digest"))?
                != dsse_digests(dsse)?.payload
            {
                return Err(mismatch("payload hash"));
            }
            let sigs = spec["signatures"].as_array().cloned().unwrap_or_default();
            if sigs.len() != env.signatures.len() {
                return Err(mismatch("signatures"));
            }
            // the log lists the signatures sorted by their bytes, the envelope in its own
            // order: each of the envelope's must be in the body, with our verifier
            for e in &env.signatures {
                let sig = b64("sig", &e.sig)?;
                let mut found = false;
                for s in &sigs {
                    if b64("signature", &text(s, "/content"))? == sig {
                        if !v2_verifier_matches(&s["verifier"], cert, key)? {
                            return Err(mismatch("signing certificate or key"));
                        }
                        found = true;
                    }
                }
                if !found {
                    return Err(mismatch("signature"));
                }
            }
        }
        (k, _, _) => {
            return fail(format!(
                "log entry kind {k:?} does not fit this bundle's content"
            ));
        }
    }
    Ok(())
}
