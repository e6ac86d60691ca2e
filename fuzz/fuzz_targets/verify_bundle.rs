//! Bundle verification on arbitrary input: parsing and every check must either verify or
//! refuse, never panic, and stay within the bounds the verifier documents. Seeds: the real
//! bundles of the shared conformance assets (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sigstack::verify::{Artifact, Matcher, Policy, verify};
use sigstack_types::trust::TrustedRoot;
use std::sync::OnceLock;

fn root() -> &'static TrustedRoot {
    static ROOT: OnceLock<TrustedRoot> = OnceLock::new();
    ROOT.get_or_init(|| {
        serde_json::from_slice(include_bytes!(
            "../../services/client/trust/public-good/trusted_root.json"
        ))
        .expect("the built-in public-good trusted root")
    })
}

fuzz_target!(|data: &[u8]| {
    let any = || regex_free_policy();
    let artifact = Artifact::Bytes(b"Hello, World!".to_vec());
    let _ = verify(data, root(), &artifact, &any(), 1_700_000_000);
    let _ = verify(data, root(), &Artifact::Unchecked, &any(), 1_700_000_000);
});

fn regex_free_policy() -> Policy {
    Policy::Identity {
        identity: Matcher::Exact(
            "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main".into(),
        ),
        issuer: Matcher::Exact("https://token.actions.githubusercontent.com".into()),
    }
}
