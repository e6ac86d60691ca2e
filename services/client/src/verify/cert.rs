//! The signing certificate: it chains to a trusted CA at the signing time, carries an SCT
//! from a trusted CT log, and names its OIDC issuer.

use super::trust::Trust;
use super::{VerifyError, fail};
use sigstack_crypto::Certificate;

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

fn valid_at(c: &Certificate, t: i64) -> bool {
    let (nb, na) = c.validity();
    (nb as i64) <= t && t <= na as i64
}

/// The certificate chains to a trusted CA valid at `t`, with the leaf and every CA
/// certificate valid at `t`; returns the issuing certificate.
pub fn verify_chain<'t>(
    leaf: &Certificate,
    trust: &'t Trust,
    t: i64,
) -> Result<&'t Certificate, VerifyError> {
    if !valid_at(leaf, t) {
        return fail("the signing certificate was not valid at the signing time");
    }
    if leaf.is_ca() {
        return fail("the signing certificate is a CA certificate");
    }
    let mut last = None;
    for ca in &trust.cas {
        let chain = ca.chain.as_ref().map_err(|e| VerifyError(e.clone()))?;
        let Some(issuer) = chain.first() else {
            continue;
        };
        if leaf.verify_issued_by(issuer).is_err() {
            continue;
        }
        let window = ca.window.as_ref().map_err(|e| VerifyError(e.clone()))?;
        if !window.contains(t) {
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
        if !chain.iter().all(|c| valid_at(c, t)) {
            last = Some("a CA certificate was not valid at the signing time");
            continue;
        }
        return Ok(issuer);
    }
    fail(last.unwrap_or("the signing certificate does not chain to a trusted CA"))
}

/// One embedded SCT verifies with a trusted CT log key valid at the SCT's time.
pub fn verify_sct(
    leaf: &Certificate,
    issuer: &Certificate,
    trust: &Trust,
) -> Result<(), VerifyError> {
    let scts = sigstack_log::ct::embedded_scts(leaf)
        .map_err(|e| VerifyError(format!("the certificate's SCT list does not parse: {e}")))?;
    if scts.is_empty() {
        return fail("the certificate has no embedded SCT");
    }
    let entry = sigstack_log::ct::embedded_entry(leaf, issuer)
        .map_err(|e| VerifyError(format!("cannot rebuild the precertificate: {e}")))?;
    for sct in &scts {
        for log in trust.ctlogs_named(&sct.log_id) {
            if !log.valid_at((sct.timestamp / 1000) as i64)? {
                continue;
            }
            if sct.verify(log.key()?, &entry).is_ok() {
                return Ok(());
            }
        }
    }
    fail("no SCT verifies with a trusted CT log key")
}
