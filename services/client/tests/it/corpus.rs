//! Real bundles of every kind the verifier accepts, from the shared conformance assets
//! (public-good and test instances): bundle v0.1–v0.3, message signatures and DSSE,
//! certificates and managed keys, Rekor v1 entries with signed entry timestamps and
//! Rekor v2 entries dated by RFC 3161 timestamps, cosigned checkpoints.

use sigstack::verify::{Artifact, Matcher, Policy, Verified, VerifyError};
use sigstack_crypto::PublicKey;
use sigstack_types::trust::TrustedRoot;
use std::path::PathBuf;

pub fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

pub fn cases() -> PathBuf {
    shared().join("conformance-assets/test/assets/bundle-verify")
}

/// The cases the corpus is made of, each a kind of its own.
pub const KINDS: [&str; 11] = [
    "happy-path-v0.1",
    "happy-path-v0.2",
    "happy-path-v0.3",
    "happy-path-v0.3-new-mediaType",
    "happy-path-intoto-in-dsse-v3",
    "managed-key-happy-path",
    "intoto-with-custom-trust-root",
    "rekor2-happy-path",
    "rekor2-dsse-happy-path",
    "rekor2-timestamp-with-embedded-cert",
    "rekor2-checkpoint-cosigned",
];

pub struct Case {
    pub name: &'static str,
    pub bundle: Vec<u8>,
    pub root: TrustedRoot,
    pub artifact: Vec<u8>,
    pub key: Option<PublicKey>,
}

impl Case {
    pub fn load(name: &'static str) -> Case {
        let dir = cases().join(name);
        let root_path = match dir.join("trusted_root.json") {
            p if p.exists() => p,
            _ => shared().join("conformance-assets/extra/public-good-trusted_root.json"),
        };
        let root = serde_json::from_slice(&std::fs::read(root_path).expect("root"))
            .expect("a trusted root");
        let key = std::fs::read(dir.join("key.pub"))
            .ok()
            .map(|k| PublicKey::from_pem(&k).expect("key.pub"));
        Case {
            name,
            bundle: std::fs::read(dir.join("bundle.sigstore.json")).expect("bundle"),
            root,
            artifact: std::fs::read(dir.join("artifact"))
                .or_else(|_| std::fs::read(cases().join("a.txt")))
                .expect("the artifact"),
            key,
        }
    }

    pub fn policy(&self) -> Policy {
        match &self.key {
            Some(k) => Policy::Key(k.clone()),
            None => Policy::Identity {
                identity: Matcher::Regex(regex::Regex::new(".").expect("re")),
                issuer: Matcher::Regex(regex::Regex::new(".").expect("re")),
            },
        }
    }

    /// Verifies `bundle` as this case's, at a time when its certificates are long expired
    /// (as the conformance runner does: what counts is the signed time).
    pub fn verify(&self, bundle: &[u8]) -> Result<Verified, VerifyError> {
        sigstack::verify::verify(
            bundle,
            &self.root,
            &Artifact::Bytes(self.artifact.clone()),
            &self.policy(),
            now(),
        )
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}
