//! The target files a stack publishes through TUF: its trust files, and the per-key files
//! older cosign reads.

use anyhow::Context;
use serde_json::json;
use sigstack_crypto::PublicKey;
use sigstack_types::trust::TrustedRoot;
use std::collections::BTreeMap;
use std::path::Path;

fn sigstore_custom(usage: &str, ended: bool, uri: &str) -> serde_json::Value {
    json!({"sigstore": {"usage": usage, "status": if ended { "Expired" } else { "Active" }, "uri": uri}})
}

fn spki_pem(b64: &str) -> anyhow::Result<String> {
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD.decode(b64)?;
    Ok(PublicKey::from_spki_der(&der)?.to_pem())
}

/// Target files by name: contents and `custom` metadata.
pub type TargetFiles = BTreeMap<String, (Vec<u8>, Option<serde_json::Value>)>;

/// The target files for a stack's trust: `trusted_root.json`, `signing_config.v0.2.json`,
/// and the legacy per-key files older cosign reads (`fulcio_v1.crt.pem`, `rekor.pub`,
/// `ctfe.pub`, ... with the `sigstore` custom metadata).
pub fn trust_targets(trust_dir: &Path) -> anyhow::Result<TargetFiles> {
    use base64::Engine;
    let read = |name: &str| {
        let p = trust_dir.join(name);
        std::fs::read(&p).with_context(|| format!("reading {}", p.display()))
    };
    let trusted = read(crate::trust::TRUSTED_ROOT_FILE)?;
    let signing = read(crate::trust::SIGNING_CONFIG_FILE)?;
    let root: TrustedRoot = serde_json::from_slice(&trusted)
        .with_context(|| format!("{} is not a trusted root", crate::trust::TRUSTED_ROOT_FILE))?;
    serde_json::from_slice::<sigstack_types::trust::SigningConfig>(&signing).with_context(
        || {
            format!(
                "{} is not a signing config",
                crate::trust::SIGNING_CONFIG_FILE
            )
        },
    )?;
    let mut out = BTreeMap::new();
    out.insert(crate::trust::TRUSTED_ROOT_FILE.to_string(), (trusted, None));
    out.insert(
        crate::trust::SIGNING_CONFIG_FILE.to_string(),
        (signing, None),
    );
    let suffix = |i: usize| {
        if i == 0 {
            String::new()
        } else {
            format!("_{}", i + 1)
        }
    };
    for (i, ca) in root.certificate_authorities.iter().enumerate() {
        let mut pem = String::new();
        for c in &ca.cert_chain.certificates {
            let der = base64::engine::general_purpose::STANDARD.decode(&c.raw_bytes)?;
            pem.push_str(&sigstack_crypto::pem::encode("CERTIFICATE", &der));
        }
        out.insert(
            format!("fulcio_v1{}.crt.pem", suffix(i)),
            (
                pem.into_bytes(),
                Some(sigstore_custom(
                    "Fulcio",
                    ca.valid_for.end.is_some(),
                    &ca.uri,
                )),
            ),
        );
    }
    for (kind, usage, logs) in [
        ("rekor", "Rekor", &root.tlogs),
        ("ctfe", "CTFE", &root.ctlogs),
    ] {
        for (i, log) in logs.iter().enumerate() {
            out.insert(
                format!("{kind}{}.pub", suffix(i)),
                (
                    spki_pem(&log.public_key.raw_bytes)?.into_bytes(),
                    Some(sigstore_custom(
                        usage,
                        log.public_key.valid_for.end.is_some(),
                        &log.base_url,
                    )),
                ),
            );
        }
    }
    Ok(out)
}
