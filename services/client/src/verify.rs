//! Bundle verification, in the order a verifier must check and with a precise reason for
//! the first check that fails: the signing key (a certificate chaining to a trusted CA at
//! the signing time, with an SCT from a trusted CT log and the expected identity, or a
//! managed key), the transparency-log entry (its body matches the bundle; inclusion proof
//! against a checkpoint signed by a trusted log, and/or a signed entry timestamp), and the
//! signature over the artifact (message signature or DSSE envelope).

use crate::bundle::{Bundle, TlogEntry, Version, b64};
use serde_json::Value;
use sigstack_crypto::{Certificate, HashAlg, PublicKey};
use sigstack_types::time::parse_rfc3339;
use sigstack_types::trust::{TimeRange, TransparencyLogInstance, TrustedRoot};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct VerifyError(pub String);

fn fail<T>(m: impl std::fmt::Display) -> Result<T, VerifyError> {
    Err(VerifyError(m.to_string()))
}

impl From<crate::bundle::BundleError> for VerifyError {
    fn from(e: crate::bundle::BundleError) -> Self {
        Self(e.to_string())
    }
}

/// What was signed: the artifact's bytes, or only its SHA-256.
pub enum Artifact {
    Bytes(Vec<u8>),
    Digest([u8; 32]),
    /// No artifact: only for DSSE attestations, whose envelope is verified but whose
    /// statement subjects are then not checked against anything.
    Unchecked,
}

impl Artifact {
    pub fn sha256(&self) -> [u8; 32] {
        match self {
            Self::Bytes(b) => sigstack_crypto::sha256(b),
            Self::Digest(d) => *d,
            Self::Unchecked => [0; 32],
        }
    }
}

/// An expected value: exact, or a regular expression (cosign's `-regexp` flags, which
/// match anywhere in the value unless anchored).
pub enum Matcher {
    Exact(String),
    Regex(regex::Regex),
}

impl Matcher {
    pub fn matches(&self, v: &str) -> bool {
        match self {
            Self::Exact(e) => e == v,
            Self::Regex(r) => r.is_match(v),
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exact(e) => write!(f, "{e:?}"),
            Self::Regex(r) => write!(f, "/{}/", r.as_str()),
        }
    }
}

/// Who must have signed.
pub enum Policy {
    /// A certificate for this identity (SAN) from this OIDC issuer.
    Identity { identity: Matcher, issuer: Matcher },
    /// A managed key.
    Key(PublicKey),
}

/// What verification established.
#[derive(Debug)]
pub struct Verified {
    pub signing_time: i64,
    pub log_index: i64,
}

/// Seconds of clock skew tolerated for times in the future.
const SKEW: i64 = 60;

fn in_range(r: &TimeRange, t: i64) -> Result<bool, VerifyError> {
    let Some(start) = parse_rfc3339(&r.start) else {
        return fail(format!(
            "trusted root: validFor.start {:?} is not a time",
            r.start
        ));
    };
    let end = match &r.end {
        Some(e) => Some(parse_rfc3339(e).ok_or_else(|| {
            VerifyError(format!("trusted root: validFor.end {e:?} is not a time"))
        })?),
        None => None,
    };
    Ok(start <= t && end.is_none_or(|e| t <= e))
}

fn key_of(log: &TransparencyLogInstance) -> Result<PublicKey, VerifyError> {
    PublicKey::from_spki_der(&b64("publicKey.rawBytes", &log.public_key.raw_bytes)?)
        .map_err(|e| VerifyError(format!("trusted root: a log key does not parse: {e}")))
}

fn int(field: &str, s: &str) -> Result<i64, VerifyError> {
    match s.parse::<i64>() {
        Ok(v) if v >= 0 => Ok(v),
        _ => fail(format!("{field} {s:?} is not a non-negative integer")),
    }
}

/// The trusted log an entry names, valid at `t`.
pub fn trusted_log<'a>(
    logs: &'a [TransparencyLogInstance],
    log_id: &[u8],
    t: i64,
) -> Result<(&'a TransparencyLogInstance, PublicKey), VerifyError> {
    for log in logs {
        if b64("logId.keyId", &log.log_id.key_id)? == log_id {
            if !in_range(&log.public_key.valid_for, t)? {
                return fail("the transparency log's key was not valid at the entry's time");
            }
            return Ok((log, key_of(log)?));
        }
    }
    fail("the entry's log is not a trusted transparency log")
}

/// Checks one transparency-log entry: returns the integrated time of a Rekor v1 entry
/// (`None` for Rekor v2, whose entries carry no time: `tsa_times` date them).
fn verify_tlog_entry(
    e: &TlogEntry,
    version: Version,
    root: &TrustedRoot,
    now: i64,
    tsa_times: &[i64],
) -> Result<Option<i64>, VerifyError> {
    let log_index = int("logIndex", &e.log_index)?;
    let integrated = int(
        "integratedTime",
        e.integrated_time.as_deref().unwrap_or("0"),
    )?;
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
        let mut found = None;
        for t in tsa_times {
            found = Some(trusted_log(&root.tlogs, &log_id, *t)?);
        }
        let (log, key) = found.ok_or_else(|| VerifyError("no time for the entry".into()))?;
        let Some(p) = &e.inclusion_proof else {
            return fail("the entry has no inclusion proof");
        };
        let body = b64("canonicalizedBody", &e.canonicalized_body)?;
        let (size, root_hash) = check_proof(p, &body)?;
        let Some(cp) = &p.checkpoint else {
            return fail("the inclusion proof has no checkpoint");
        };
        let checkpoint = crate::note::verify_checkpoint(&cp.envelope, &log.base_url, &log_id, &key)
            .map_err(|e| VerifyError(format!("the checkpoint does not verify: {e}")))?;
        if checkpoint.size != size || checkpoint.root != root_hash {
            return fail("the checkpoint does not match the inclusion proof's tree");
        }
        return Ok(None);
    }
    let (_, key) = trusted_log(&root.tlogs, &log_id, integrated)?;
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
            &key,
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
        let checkpoint = sigstack_log::checkpoint::verify_any_name(&cp.envelope, &key)
            .map_err(|e| VerifyError(format!("the checkpoint does not verify: {e}")))?;
        if checkpoint.size != size || checkpoint.root != root_hash {
            return fail("the checkpoint does not match the inclusion proof's tree");
        }
    }
    // the integrated time is signed only by the SET; without one the entry proves
    // inclusion but dates nothing
    Ok(e.inclusion_promise.is_some().then_some(integrated))
}

/// Verifies a Rekor v1 entry on its own (as `sigstack log get` fetches it): signed entry
/// timestamp and inclusion proof against a checkpoint signed by a trusted log; returns
/// the integrated time.
pub fn verify_log_entry(e: &TlogEntry, root: &TrustedRoot, now: i64) -> Result<i64, VerifyError> {
    verify_tlog_entry(e, Version::V03, root, now, &[])?
        .ok_or_else(|| VerifyError("not a Rekor v1 entry".into()))
}

/// A Rekor v2 entry (hashedrekord or dsse 0.0.2).
fn is_v2(e: &TlogEntry) -> bool {
    e.kind_version.version == "0.0.2" && e.kind_version.kind != "intoto"
}

/// Verifies an inclusion proof for `body`; returns the tree size and root it proves to.
fn check_proof(
    p: &crate::bundle::InclusionProof,
    body: &[u8],
) -> Result<(u64, sigstack_merkle::Hash), VerifyError> {
    let index = int("inclusionProof.logIndex", &p.log_index)? as u64;
    let size = int("inclusionProof.treeSize", &p.tree_size)? as u64;
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

/// The tlog entry's body must describe this bundle's signature.
fn check_body(
    body: &Value,
    kind: &str,
    b: &Bundle,
    cert: Option<&Certificate>,
    key: &PublicKey,
    artifact_digest: &[u8; 32],
) -> Result<(), VerifyError> {
    let mismatch =
        |what: &str| VerifyError(format!("the log entry does not match the bundle: {what}"));
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
            let payload = b64("payload", &env.payload)?;
            if hash_field(spec, "/payloadHash/value")
                != Some(hex::encode(sigstack_crypto::sha256(&payload)))
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
        ("intoto", None, Some(env)) => {
            let content = &body["spec"]["content"];
            let payload = b64("payload", &env.payload)?;
            if hash_field(content, "/payloadHash/value")
                != Some(hex::encode(sigstack_crypto::sha256(&payload)))
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
fn check_body_v2(
    body: &Value,
    kind: &str,
    b: &Bundle,
    cert: Option<&Certificate>,
    key: &PublicKey,
    artifact_digest: &[u8; 32],
) -> Result<(), VerifyError> {
    let mismatch =
        |what: &str| VerifyError(format!("the log entry does not match the bundle: {what}"));
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
                    sigstack_crypto::sha256(&pae(
                        &env.payload_type,
                        &b64("payload", &env.payload)?,
                    ))
                    .to_vec(),
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
            let payload = b64("payload", &env.payload)?;
            if b64("payloadHash", &text(spec, "/payloadHash/digest"))?
                != sigstack_crypto::sha256(&payload)
            {
                return Err(mismatch("payload hash"));
            }
            let sigs = spec["signatures"].as_array().cloned().unwrap_or_default();
            if sigs.len() != env.signatures.len() {
                return Err(mismatch("signatures"));
            }
            for (s, e) in sigs.iter().zip(&env.signatures) {
                if b64("signature", &text(s, "/content"))? != b64("sig", &e.sig)? {
                    return Err(mismatch("signature"));
                }
                if !v2_verifier_matches(&s["verifier"], cert, key)? {
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

/// The certificate's OIDC issuer: Fulcio's 1.3.6.1.4.1.57264.1.8 (UTF8String), else the
/// deprecated raw 1.1.
pub fn cert_issuer(c: &Certificate) -> Option<String> {
    if let Some(v) = c.extension("1.3.6.1.4.1.57264.1.8") {
        use der::Decode;
        return der::asn1::Utf8StringRef::from_der(v)
            .ok()
            .map(|s| s.as_str().to_string());
    }
    c.extension("1.3.6.1.4.1.57264.1.1")
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::to_string)
}

/// The certificate chains to a trusted CA valid at `t`, with the leaf and every CA
/// certificate valid at `t`; returns the issuing certificate.
fn verify_chain(
    leaf: &Certificate,
    root: &TrustedRoot,
    t: i64,
) -> Result<Certificate, VerifyError> {
    let valid_at = |c: &Certificate| {
        let (nb, na) = c.validity();
        (nb as i64) <= t && t <= na as i64
    };
    if !valid_at(leaf) {
        return fail("the signing certificate was not valid at the signing time");
    }
    if leaf.is_ca() {
        return fail("the signing certificate is a CA certificate");
    }
    let mut last = None;
    for ca in &root.certificate_authorities {
        let chain = ca
            .cert_chain
            .certificates
            .iter()
            .map(|c| {
                Certificate::from_der(&b64("certChain", &c.raw_bytes)?).map_err(|e| {
                    VerifyError(format!(
                        "trusted root: a CA certificate does not parse: {e}"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let Some(issuer) = chain.first() else {
            continue;
        };
        if leaf.verify_issued_by(issuer).is_err() {
            continue;
        }
        if !in_range(&ca.valid_for, t)? {
            last = Some("the issuing CA was not trusted at the signing time");
            continue;
        }
        let linked = chain
            .windows(2)
            .all(|w| w[0].verify_issued_by(&w[1]).is_ok())
            && chain.last().is_some_and(|r| r.verify_issued_by(r).is_ok());
        if !linked {
            last = Some("a trusted CA's chain does not link up to a self-signed root");
            continue;
        }
        if !chain.iter().all(valid_at) {
            last = Some("a CA certificate was not valid at the signing time");
            continue;
        }
        return Ok(chain[0].clone());
    }
    fail(last.unwrap_or("the signing certificate does not chain to a trusted CA"))
}

fn verify_sct(
    leaf: &Certificate,
    issuer: &Certificate,
    root: &TrustedRoot,
) -> Result<(), VerifyError> {
    let scts = sigstack_log::ct::embedded_scts(leaf)
        .map_err(|e| VerifyError(format!("the certificate's SCT list does not parse: {e}")))?;
    if scts.is_empty() {
        return fail("the certificate has no embedded SCT");
    }
    let entry = sigstack_log::ct::embedded_entry(leaf, issuer)
        .map_err(|e| VerifyError(format!("cannot rebuild the precertificate: {e}")))?;
    for sct in &scts {
        for log in &root.ctlogs {
            if b64("logId.keyId", &log.log_id.key_id)? != sct.log_id {
                continue;
            }
            if !in_range(&log.public_key.valid_for, (sct.timestamp / 1000) as i64)? {
                continue;
            }
            if sct.verify(&key_of(log)?, &entry).is_ok() {
                return Ok(());
            }
        }
    }
    fail("no SCT verifies with a trusted CT log key")
}

/// DSSE's pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    v.extend_from_slice(payload);
    v
}

/// Verifies a signature over the artifact (a message signature, or a detached one).
pub fn verify_message_signature(
    key: &PublicKey,
    artifact: &Artifact,
    sig: &[u8],
) -> Result<(), VerifyError> {
    let digest = artifact.sha256();
    let alg = key.default_hash();
    let ok = match artifact {
        // the SHA-256 is computed once; other hashes need the bytes again
        _ if alg == HashAlg::Sha256 => key.verify_digest(alg, &digest, sig).is_ok(),
        Artifact::Bytes(bytes) => key.verify_digest(alg, &alg.digest(bytes), sig).is_ok(),
        Artifact::Digest(_) => {
            // an ECDSA key of another curve may have signed the SHA-256 digest
            if key.verify_ecdsa_sha256_digest(&digest, sig).is_ok() {
                return Ok(());
            }
            return fail("this key needs the artifact itself, not its SHA-256");
        }
        Artifact::Unchecked => {
            return fail("a message signature can only be verified against the artifact");
        }
    };
    // an ECDSA key of another curve may have signed the SHA-256 digest (what
    // hashedrekord records; sigstore-python signs P-384 keys so)
    if ok || (alg != HashAlg::Sha256 && key.verify_ecdsa_sha256_digest(&digest, sig).is_ok()) {
        Ok(())
    } else {
        fail("the signature does not verify over the artifact")
    }
}

fn verify_signature(b: &Bundle, key: &PublicKey, artifact: &Artifact) -> Result<(), VerifyError> {
    let digest = artifact.sha256();
    if let Some(ms) = &b.message_signature {
        if matches!(artifact, Artifact::Unchecked) {
            return fail("a message signature can only be verified against the artifact");
        }
        if let Some(md) = &ms.message_digest
            && (md.algorithm != "SHA2_256" || b64("messageDigest", &md.digest)? != digest)
        {
            return fail("the bundle's message digest is not the artifact's");
        }
        let sig = b64("signature", &ms.signature)?;
        verify_message_signature(key, artifact, &sig)?;
        return Ok(());
    }
    let Some(env) = &b.dsse_envelope else {
        return fail("the bundle has no content");
    };
    let payload = b64("payload", &env.payload)?;
    let msg = pae(&env.payload_type, &payload);
    if env.signatures.len() != 1 {
        return fail("the DSSE envelope must carry exactly one signature");
    }
    let sig = b64("sig", &env.signatures[0].sig)?;
    let alg = key.default_hash();
    key.verify_digest(alg, &alg.digest(&msg), &sig)
        .map_err(|_| VerifyError("the DSSE signature does not verify".into()))?;
    if env.payload_type == "application/vnd.in-toto+json"
        && !matches!(artifact, Artifact::Unchecked)
    {
        let statement: Value = serde_json::from_slice(&payload)
            .map_err(|_| VerifyError("the in-toto statement is not JSON".into()))?;
        let want = hex::encode(digest);
        let found = statement["subject"].as_array().is_some_and(|subjects| {
            subjects
                .iter()
                .any(|s| s.pointer("/digest/sha256").and_then(Value::as_str) == Some(want.as_str()))
        });
        if !found {
            return fail("the artifact is not a subject of the in-toto statement");
        }
    }
    Ok(())
}

/// Verifies `bundle_json` for `artifact` under `policy` with trust from `root`, at `now`.
pub fn verify(
    bundle_json: &[u8],
    root: &TrustedRoot,
    artifact: &Artifact,
    policy: &Policy,
    now: i64,
) -> Result<Verified, VerifyError> {
    let (b, version) = Bundle::parse(bundle_json)?;
    let m = &b.verification_material;
    // the signer
    let cert = match (&m.certificate, &m.x509_certificate_chain, &m.public_key) {
        (Some(c), None, None) => Some(c.raw_bytes.clone()),
        (None, Some(chain), None) => {
            if version >= Version::V03 {
                return fail("bundle v0.3 carries a single certificate, not a chain");
            }
            for c in chain.certificates.iter().skip(1) {
                let c = Certificate::from_der(&b64("certificate", &c.raw_bytes)?)
                    .map_err(|e| VerifyError(format!("a chain certificate does not parse: {e}")))?;
                if c.verify_issued_by(&c).is_ok() {
                    return fail("the bundle's certificate chain contains a root certificate");
                }
            }
            match chain.certificates.first() {
                Some(c) => Some(c.raw_bytes.clone()),
                None => return fail("the certificate chain is empty"),
            }
        }
        (None, None, Some(_)) => None,
        _ => {
            return fail(
                "the bundle needs exactly one of certificate, certificate chain, public key",
            );
        }
    };
    let cert = match cert {
        Some(raw) => Some(
            Certificate::from_der(&b64("certificate", &raw)?)
                .map_err(|e| VerifyError(format!("the certificate does not parse: {e}")))?,
        ),
        None => None,
    };
    let key = match (&cert, policy) {
        (Some(c), Policy::Identity { .. }) => c.public_key().clone(),
        (None, Policy::Key(k)) => k.clone(),
        (Some(_), Policy::Key(_)) => {
            return fail("a key was given but the bundle is signed with a certificate");
        }
        (None, Policy::Identity { .. }) => {
            return fail("the bundle is signed with a key: verify with --key");
        }
    };
    // the artifact signature first: cheap and the most common failure
    verify_signature(&b, &key, artifact)?;
    // the log entries
    if m.tlog_entries.is_empty() {
        return fail("the bundle has no transparency-log entry");
    }
    // signed timestamps (RFC 3161) over the signature: each must verify
    let signature_bytes = match (&b.message_signature, &b.dsse_envelope) {
        (Some(ms), _) => b64("signature", &ms.signature)?,
        (None, Some(env)) => b64(
            "sig",
            &env.signatures
                .first()
                .map(|s| s.sig.clone())
                .unwrap_or_default(),
        )?,
        _ => return fail("the bundle has no content"),
    };
    let mut tsa_times = Vec::new();
    if let Some(tvd) = &m.timestamp_verification_data {
        for ts in &tvd.rfc3161_timestamps {
            let token = b64("signedTimestamp", &ts.signed_timestamp)?;
            let t = crate::tsa::verify(&token, &signature_bytes, root)
                .map_err(|e| VerifyError(format!("signed timestamp: {e}")))?;
            if t > now + SKEW {
                return fail("a signed timestamp is in the future");
            }
            tsa_times.push(t);
        }
    }
    let digest = artifact.sha256();
    let mut verified = None;
    let mut last = None;
    for e in &m.tlog_entries {
        int("logIndex", &e.log_index)?;
        if !matches!(e.kind_version.version.as_str(), "0.0.1" | "0.0.2") {
            last = Some(VerifyError(format!(
                "log entry version {} is not supported",
                e.kind_version.version
            )));
            continue;
        }
        let body: Value = serde_json::from_slice(&b64("canonicalizedBody", &e.canonicalized_body)?)
            .map_err(|_| VerifyError("the log entry body is not JSON".into()))?;
        if body["kind"].as_str() != Some(e.kind_version.kind.as_str()) {
            return fail("the log entry's kind differs from its body");
        }
        if is_v2(e) {
            check_body_v2(
                &body,
                &e.kind_version.kind,
                &b,
                cert.as_ref(),
                &key,
                &digest,
            )?;
        } else {
            check_body(
                &body,
                &e.kind_version.kind,
                &b,
                cert.as_ref(),
                &key,
                &digest,
            )?;
        }
        match verify_tlog_entry(e, version, root, now, &tsa_times) {
            Ok(t) => {
                verified = Some((t, int("logIndex", &e.log_index)?));
                break;
            }
            Err(err) => last = Some(err),
        }
    }
    let Some((integrated, log_index)) = verified else {
        return Err(
            last.unwrap_or_else(|| VerifyError("no transparency-log entry verifies".into()))
        );
    };
    // every verified time: the log's and the timestamp authorities'
    let times: Vec<i64> = integrated
        .into_iter()
        .chain(tsa_times.iter().copied())
        .collect();
    let Some(&signing_time) = times.first() else {
        return fail(
            "the bundle has no verified time: it needs a signed entry timestamp (inclusion promise) or an RFC 3161 timestamp",
        );
    };
    let v = Verified {
        signing_time,
        log_index,
    };
    // the certificate, at every verified time
    if let (Some(c), Policy::Identity { identity, issuer }) = (&cert, policy) {
        let mut ca = verify_chain(c, root, signing_time)?;
        for t in &times[1..] {
            ca = verify_chain(c, root, *t)?;
        }
        verify_sct(c, &ca, root)?;
        if !c.subjects().iter().any(|s| identity.matches(s)) {
            return fail(format!(
                "the certificate's identity {:?} does not match {identity}",
                c.subjects()
            ));
        }
        match cert_issuer(c) {
            Some(i) if issuer.matches(&i) => {}
            Some(i) => {
                return fail(format!(
                    "the certificate's issuer {i:?} does not match {issuer}"
                ));
            }
            None => return fail("the certificate names no OIDC issuer"),
        }
    }
    Ok(v)
}
