//! cosign's legacy environment overrides: single keys and CA certificates given as files
//! that replace what the trusted root names.

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sigstack_crypto::{Certificate, PublicKey};
use sigstack_types::trust::{
    CertChain, CertificateAuthority, LogId, RawBytes, TimeRange, TransparencyLogInstance,
    TrustedRoot,
};
use std::path::PathBuf;

const EPOCH: &str = "1970-01-01T00:00:00Z";

fn env_file(name: &str) -> anyhow::Result<Option<Vec<u8>>> {
    match std::env::var_os(name).filter(|v| !v.is_empty()) {
        Some(p) => Ok(Some(std::fs::read(&p).with_context(|| {
            format!("reading {name}={}", PathBuf::from(&p).display())
        })?)),
        None => Ok(None),
    }
}

fn log_instance(pem: &[u8], what: &str) -> anyhow::Result<TransparencyLogInstance> {
    let key = PublicKey::from_pem(pem).with_context(|| format!("{what}: not a PEM public key"))?;
    Ok(TransparencyLogInstance {
        base_url: String::new(),
        hash_algorithm: "SHA2_256".into(),
        public_key: sigstack_types::trust::PublicKey {
            raw_bytes: STANDARD.encode(key.spki_der()),
            key_details: key.key_details().to_string(),
            valid_for: TimeRange {
                start: EPOCH.into(),
                end: None,
            },
        },
        log_id: LogId {
            key_id: STANDARD.encode(sigstack_crypto::sha256(key.spki_der())),
        },
    })
}

/// cosign's legacy variables: `SIGSTORE_ROOT_FILE` (PEM CA certificates: self-signed
/// ones are roots, the others intermediates), `SIGSTORE_REKOR_PUBLIC_KEY`,
/// `SIGSTORE_CT_LOG_PUBLIC_KEY_FILE`, `SIGSTORE_TSA_CERTIFICATE_FILE`; each replaces
/// that part of the trusted root.
pub fn apply_env_overrides(root: &mut TrustedRoot) -> anyhow::Result<()> {
    if let Some(pem) = env_file("SIGSTORE_ROOT_FILE")? {
        root.certificate_authorities = vec![ca_from_pem(&pem, "SIGSTORE_ROOT_FILE")?];
    }
    if let Some(pem) = env_file("SIGSTORE_TSA_CERTIFICATE_FILE")? {
        root.timestamp_authorities = vec![ca_from_pem(&pem, "SIGSTORE_TSA_CERTIFICATE_FILE")?];
    }
    if let Some(pem) = env_file("SIGSTORE_REKOR_PUBLIC_KEY")? {
        root.tlogs = vec![log_instance(&pem, "SIGSTORE_REKOR_PUBLIC_KEY")?];
    }
    if let Some(pem) = env_file("SIGSTORE_CT_LOG_PUBLIC_KEY_FILE")? {
        root.ctlogs = vec![log_instance(&pem, "SIGSTORE_CT_LOG_PUBLIC_KEY_FILE")?];
    }
    Ok(())
}

/// A certificate authority from a PEM bundle, ordered issuer-nearest first, root last.
fn ca_from_pem(pem: &[u8], what: &str) -> anyhow::Result<CertificateAuthority> {
    let mut certs = Vec::new();
    for block in sigstack_crypto::pem::decode_all(pem)? {
        if block.label == "CERTIFICATE" {
            certs.push(
                Certificate::from_der(&block.der)
                    .with_context(|| format!("{what}: a certificate does not parse"))?,
            );
        }
    }
    if certs.is_empty() {
        bail!("{what}: no PEM certificate in the file");
    }
    // roots (self-signed) last
    certs.sort_by_key(|c| c.verify_issued_by(c).is_ok());
    Ok(CertificateAuthority {
        subject: Default::default(),
        uri: String::new(),
        cert_chain: CertChain {
            certificates: certs
                .iter()
                .map(|c| RawBytes {
                    raw_bytes: STANDARD.encode(c.der()),
                })
                .collect(),
        },
        valid_for: TimeRange {
            start: EPOCH.into(),
            end: None,
        },
    })
}
