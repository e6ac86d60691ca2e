//! Bundle verification, in the order a verifier must check and with a precise reason for
//! the first check that fails: the signing key (a certificate chaining to a trusted CA at
//! the signing time, with an SCT from a trusted CT log and the expected identity, or a
//! managed key), the signature over the artifact (a message signature, or a DSSE envelope
//! holding an in-toto statement that names the artifact), the transparency-log entry (its
//! body matches the bundle; inclusion proof against a checkpoint signed by a trusted log,
//! and/or a signed entry timestamp) and the signed timestamps.
//!
//! Work is bounded: the bundle's size and the length of each of its lists are capped as it
//! is read (`crate::bundle`), the trusted root is decoded once (`trust`), and every check
//! is linear in what the bundle carries.

mod cert;
pub mod dsse;
mod tlog;
pub mod trust;

pub use cert::cert_issuer;
pub use dsse::{IN_TOTO, pae};
pub use tlog::verify_log_entry;

use crate::bundle::{Bundle, Version, b64};
use serde_json::Value;
use sigstack_crypto::{Certificate, HashAlg, PublicKey};
use sigstack_types::trust::TrustedRoot;
use trust::Trust;

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
    /// No artifact: only for DSSE attestations verified with claims unchecked (cosign's
    /// `--check-claims=false`): the envelope must still hold an in-toto statement, whose
    /// subjects are then not checked against anything.
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
#[derive(Clone)]
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
#[derive(Clone)]
pub enum Policy {
    /// A certificate for this identity (SAN) from this OIDC issuer.
    Identity { identity: Matcher, issuer: Matcher },
    /// A managed key.
    Key(PublicKey),
}

/// A certificate extension the signer's certificate must carry with this value (cosign's
/// `--certificate-github-workflow-*`: Fulcio's raw-string extensions 1.3.6.1.4.1.57264.1.2–6).
pub struct Extension {
    pub oid: &'static str,
    /// The flag or claim it comes from, for messages.
    pub name: &'static str,
    pub want: String,
}

/// Checks beyond the policy, and the checks a user may switch off as cosign lets them.
#[derive(Default)]
pub struct Options {
    pub extensions: Vec<Extension>,
    /// cosign's `--insecure-ignore-tlog`: no log entry is needed and none is checked; a
    /// certificate is then checked at the signed timestamps' times, else now.
    pub ignore_tlog: bool,
    /// cosign's `--insecure-ignore-sct`: the certificate needs no SCT.
    pub ignore_sct: bool,
}

/// What verification established, every field from signed data.
#[derive(Debug)]
pub struct Verified {
    /// The earliest verified time: the log's signed integrated time, else a signed timestamp.
    pub signing_time: i64,
    /// The log index as signed (by the signed entry timestamp, else by the inclusion
    /// proof); none when the log was ignored.
    pub log_index: Option<i64>,
    /// A DSSE bundle's in-toto statement, the bytes exactly as signed.
    pub statement: Option<Vec<u8>>,
    /// The statement's predicate type.
    pub predicate_type: Option<String>,
}

impl Verified {
    /// The verified statement as JSON (read only now, once everything has verified).
    pub fn statement_json(&self) -> Option<Result<Value, VerifyError>> {
        self.statement.as_ref().map(|p| {
            crate::bundle::strict::from_slice(p)
                .map_err(|e| VerifyError(format!("the in-toto statement is not valid JSON: {e}")))
        })
    }
}

/// The largest log entry body read: canonical Rekor bodies keep hashes, keys and
/// signatures, never the artifact, and are a few KiB.
const MAX_BODY_BYTES: usize = 256 << 10;

/// The largest RFC 3161 timestamp read (a token with its authority's chain is a few KiB).
const MAX_TIMESTAMP_BYTES: usize = 64 << 10;

/// Seconds of clock skew tolerated for times in the future.
const SKEW: i64 = 60;

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

/// The bundle's content signature verifies with `key` and covers the artifact; returns a
/// DSSE bundle's statement.
fn verify_signature(
    b: &Bundle,
    key: &PublicKey,
    artifact: &Artifact,
) -> Result<Option<dsse::Statement>, VerifyError> {
    if let Some(ms) = &b.message_signature {
        if matches!(artifact, Artifact::Unchecked) {
            return fail("a message signature can only be verified against the artifact");
        }
        if let Some(md) = &ms.message_digest
            && (md.algorithm != "SHA2_256"
                || b64("messageDigest", &md.digest)? != artifact.sha256())
        {
            return fail("the bundle's message digest is not the artifact's");
        }
        let sig = b64("signature", &ms.signature)?;
        verify_message_signature(key, artifact, &sig)?;
        return Ok(None);
    }
    let Some(env) = &b.dsse_envelope else {
        return fail("the bundle has no content");
    };
    let payload = b64("payload", &env.payload)?;
    if env.signatures.len() != 1 {
        return fail("the DSSE envelope must carry exactly one signature");
    }
    let sig = b64("sig", &env.signatures[0].sig)?;
    let alg = key.default_hash();
    key.verify_digest(
        alg,
        &dsse::pae_digest(alg, &env.payload_type, &payload),
        &sig,
    )
    .map_err(|_| VerifyError("the DSSE signature does not verify".into()))?;
    let statement = dsse::statement(&env.payload_type, &payload)?;
    if !matches!(artifact, Artifact::Unchecked) {
        statement.names(artifact)?;
    }
    Ok(Some(statement))
}

/// The certificate a bundle is signed with, if any.
fn signing_certificate(b: &Bundle, version: Version) -> Result<Option<Certificate>, VerifyError> {
    let m = &b.verification_material;
    let raw = match (&m.certificate, &m.x509_certificate_chain, &m.public_key) {
        (Some(c), None, None) => &c.raw_bytes,
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
                Some(c) => &c.raw_bytes,
                None => return fail("the certificate chain is empty"),
            }
        }
        (None, None, Some(_)) => return Ok(None),
        _ => {
            return fail(
                "the bundle needs exactly one of certificate, certificate chain, public key",
            );
        }
    };
    Certificate::from_der(&b64("certificate", raw)?)
        .map(Some)
        .map_err(|e| VerifyError(format!("the certificate does not parse: {e}")))
}

/// The DER of the certificate a bundle is signed with (for comparing with one given apart).
pub fn bundle_certificate(bundle_json: &[u8]) -> Result<Option<Vec<u8>>, VerifyError> {
    let (b, version) = Bundle::parse(bundle_json)?;
    Ok(signing_certificate(&b, version)?.map(|c| c.der().to_vec()))
}

/// Verifies `bundle_json` for `artifact` under `policy` with trust from `root`, at `now`.
pub fn verify(
    bundle_json: &[u8],
    root: &TrustedRoot,
    artifact: &Artifact,
    policy: &Policy,
    now: i64,
) -> Result<Verified, VerifyError> {
    verify_with(
        bundle_json,
        root,
        artifact,
        policy,
        now,
        &Options::default(),
    )
}

/// `verify` with further checks, or with checks switched off.
pub fn verify_with(
    bundle_json: &[u8],
    root: &TrustedRoot,
    artifact: &Artifact,
    policy: &Policy,
    now: i64,
    opts: &Options,
) -> Result<Verified, VerifyError> {
    let (b, version) = Bundle::parse(bundle_json)?;
    let m = &b.verification_material;
    let cert = signing_certificate(&b, version)?;
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
    let statement = verify_signature(&b, &key, artifact)?;
    if m.tlog_entries.is_empty() && !opts.ignore_tlog {
        return fail("the bundle has no transparency-log entry");
    }
    let trust = Trust::new(root);
    // signed timestamps (RFC 3161) over the signature: each must verify
    let signature_bytes = match (&b.message_signature, &b.dsse_envelope) {
        (Some(ms), _) => b64("signature", &ms.signature)?,
        (None, Some(env)) => b64("sig", &env.signatures[0].sig)?,
        _ => return fail("the bundle has no content"),
    };
    let mut tsa_times = Vec::new();
    if let Some(tvd) = &m.timestamp_verification_data {
        for ts in &tvd.rfc3161_timestamps {
            let token = b64("signedTimestamp", &ts.signed_timestamp)?;
            if token.len() > MAX_TIMESTAMP_BYTES {
                return fail(format!(
                    "a signed timestamp is larger than {} KiB",
                    MAX_TIMESTAMP_BYTES >> 10
                ));
            }
            let t = crate::tsa::verify(&token, &signature_bytes, &trust.tsas)
                .map_err(|e| VerifyError(format!("signed timestamp: {e}")))?;
            if t > now + SKEW {
                return fail("a signed timestamp is in the future");
            }
            tsa_times.push(t);
        }
    }
    // the log entries: every body must describe this bundle; one must verify. A DSSE
    // payload is decoded and hashed once, not once per entry.
    let digest = artifact.sha256();
    let dsse_digests = match &b.dsse_envelope {
        Some(env) => {
            let payload = b64("payload", &env.payload)?;
            Some(tlog::DsseDigests {
                payload: sigstack_crypto::sha256(&payload),
                pae: dsse::pae_digest(HashAlg::Sha256, &env.payload_type, &payload)
                    .try_into()
                    .map_err(|_| VerifyError("a SHA-256 digest is 32 bytes".into()))?,
            })
        }
        None => None,
    };
    let mut verified = None;
    let mut last = None;
    let entries: &[crate::bundle::TlogEntry] = if opts.ignore_tlog {
        &[]
    } else {
        &m.tlog_entries
    };
    for e in entries {
        if !matches!(e.kind_version.version.as_str(), "0.0.1" | "0.0.2") {
            last = Some(VerifyError(format!(
                "log entry version {} is not supported",
                e.kind_version.version
            )));
            continue;
        }
        let body_bytes = b64("canonicalizedBody", &e.canonicalized_body)?;
        if body_bytes.len() > MAX_BODY_BYTES {
            return fail(format!(
                "a log entry body is larger than {} KiB (Rekor's are a few)",
                MAX_BODY_BYTES >> 10
            ));
        }
        let body: Value = crate::bundle::strict::from_slice(&body_bytes)
            .map_err(|e| VerifyError(format!("the log entry body is not valid JSON: {e}")))?;
        if body["kind"].as_str() != Some(e.kind_version.kind.as_str()) {
            return fail("the log entry's kind differs from its body");
        }
        let check = if tlog::is_v2(e) {
            tlog::check_body_v2
        } else {
            tlog::check_body
        };
        check(
            &body,
            &e.kind_version.kind,
            &b,
            cert.as_ref(),
            &key,
            &digest,
            dsse_digests.as_ref(),
        )?;
        match tlog::verify_tlog_entry(e, version, &trust, now, &tsa_times) {
            Ok(p) => {
                verified = Some(p);
                break;
            }
            Err(err) => last = Some(err),
        }
    }
    let entry = match verified {
        Some(e) => Some(e),
        None if opts.ignore_tlog => None,
        None => {
            return Err(
                last.unwrap_or_else(|| VerifyError("no transparency-log entry verifies".into()))
            );
        }
    };
    // every verified time: the log's and the timestamp authorities'
    let mut times: Vec<i64> = entry
        .as_ref()
        .and_then(|e| e.time)
        .into_iter()
        .chain(tsa_times)
        .collect();
    if times.is_empty() && opts.ignore_tlog {
        // nothing dates the signature: the certificate must be valid now
        times.push(now);
    }
    let Some(&signing_time) = times.first() else {
        return fail(
            "the bundle has no verified time: it needs a signed entry timestamp (inclusion promise) or an RFC 3161 timestamp",
        );
    };
    // the certificate, at every verified time
    if let (Some(c), Policy::Identity { identity, issuer }) = (&cert, policy) {
        let mut ca = cert::verify_chain(c, &trust, signing_time)?;
        for t in &times[1..] {
            ca = cert::verify_chain(c, &trust, *t)?;
        }
        if !opts.ignore_sct {
            cert::verify_sct(c, ca, &trust)?;
        }
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
    if !opts.extensions.is_empty() {
        let Some(c) = &cert else {
            return fail(
                "certificate extensions were required but the bundle is signed with a key",
            );
        };
        for x in &opts.extensions {
            let got = c.extension(x.oid).and_then(|v| std::str::from_utf8(v).ok());
            if got != Some(x.want.as_str()) {
                return fail(format!(
                    "the certificate's {} {:?} is not {:?}",
                    x.name,
                    got.unwrap_or("(none)"),
                    x.want
                ));
            }
        }
    }
    let (statement, predicate_type) = match statement {
        Some(s) => (Some(s.payload), Some(s.predicate_type)),
        None => (None, None),
    };
    Ok(Verified {
        signing_time,
        log_index: entry.map(|e| e.log_index),
        statement,
        predicate_type,
    })
}
