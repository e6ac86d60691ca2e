//! The TSA certificate profile timestamp-authority enforces (RFC 3161 §2.3): a chain of
//! at least two certificates, leaf first, each issued by the next and the last
//! self-signed; every certificate but the leaf a CA; the leaf not a CA, with exactly one
//! extended key usage, id-kp-timeStamping, marked critical; any intermediate allowing
//! timeStamping too; and the leaf's key the signer's.

use sigstack_crypto::{Certificate, PublicKey};

const EKU: &str = "2.5.29.37";
const TIME_STAMPING: &str = "1.3.6.1.5.5.7.3.8";

/// Checks `chain` (leaf first) against the profile and the signer's public key.
pub fn check_chain(chain: &[Certificate], signer: &PublicKey) -> Result<(), String> {
    if chain.len() < 2 {
        return Err("the TSA certificate chain must hold at least two certificates (leaf first, then its issuers up to the root)".into());
    }
    for (i, pair) in chain.windows(2).enumerate() {
        pair[0].verify_issued_by(&pair[1]).map_err(|e| {
            format!("certificate {i} of the TSA chain is not issued by the next: {e}")
        })?;
    }
    let root = &chain[chain.len() - 1];
    root.verify_issued_by(root).map_err(|e| {
        format!("the last certificate of the TSA chain is not a self-signed root: {e}")
    })?;
    for (i, c) in chain.iter().enumerate().skip(1) {
        if !c.is_ca() {
            return Err(format!(
                "certificate {i} of the TSA chain is not a CA certificate"
            ));
        }
    }
    let leaf = &chain[0];
    if leaf.is_ca() {
        return Err("the TSA leaf certificate must be an end-entity certificate, not a CA".into());
    }
    let ekus = leaf.extended_key_usages();
    if ekus != [TIME_STAMPING] {
        return Err(format!(
            "the TSA leaf certificate must have exactly one extended key usage, timeStamping ({TIME_STAMPING}); it has {ekus:?}"
        ));
    }
    let critical = leaf
        .parsed()
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .any(|e| e.extn_id.to_string() == EKU && e.critical);
    if !critical {
        return Err("the TSA leaf certificate's extended key usage must be critical".into());
    }
    for (i, c) in chain.iter().enumerate().take(chain.len() - 1).skip(1) {
        let ekus = c.extended_key_usages();
        if !ekus.is_empty() && !ekus.iter().any(|e| e == TIME_STAMPING) {
            return Err(format!(
                "intermediate {i} of the TSA chain restricts key usage without timeStamping"
            ));
        }
    }
    if leaf.public_key() != signer {
        return Err("the TSA signing key is not the key of the chain's leaf certificate".into());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for (i, c) in chain.iter().enumerate() {
        let (from, until) = c.validity();
        if now < from || now > until {
            return Err(format!("certificate {i} of the TSA chain is not valid now"));
        }
    }
    Ok(())
}
