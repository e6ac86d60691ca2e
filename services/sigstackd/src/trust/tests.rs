//! The trust files' history rules: rotations keep old material end-dated.

use super::*;
use sigstack_crypto::{Curve, FileSigner, Signer};

fn stack(ca_der: &[u8], tlog: &PublicKey, ctlog: &PublicKey) -> TrustedRoot {
    let log = |k: &PublicKey| log_instance("http://log", k, "2026-01-01T00:00:00Z");
    TrustedRoot {
        media_type: TRUSTED_ROOT_MEDIA_TYPE.into(),
        tlogs: vec![log(tlog)],
        certificate_authorities: vec![trust::CertificateAuthority {
            subject: trust::DistinguishedName {
                organization: "o".into(),
                common_name: "o".into(),
            },
            uri: "http://ca".into(),
            cert_chain: trust::CertChain {
                certificates: vec![trust::RawBytes {
                    raw_bytes: STANDARD.encode(ca_der),
                }],
            },
            valid_for: trust::TimeRange {
                start: "2026-01-01T00:00:00Z".into(),
                end: None,
            },
        }],
        ctlogs: vec![log(ctlog)],
        timestamp_authorities: Vec::new(),
    }
}

#[test]
fn rotation_keeps_the_old_material_end_dated() {
    let k = || FileSigner::generate(Curve::P256).public_key().clone();
    let (tlog, ct_old, ct_new) = (k(), k(), k());
    let before = stack(b"old ca", &tlog, &ct_old);
    let now = "2026-06-01T00:00:00Z";
    // nothing changed: identical
    let same = with_history(&before, stack(b"old ca", &tlog, &ct_old), now, now);
    assert_eq!(
        serde_json::to_value(&same).expect("json"),
        serde_json::to_value(&before).expect("json")
    );
    // a new CA and CT log key: old ones end now, new ones start now, the log stays
    let after = with_history(&before, stack(b"new ca", &tlog, &ct_new), now, now);
    assert_eq!(after.certificate_authorities.len(), 2);
    assert_eq!(
        after.certificate_authorities[0].valid_for.end.as_deref(),
        Some(now)
    );
    assert_eq!(after.certificate_authorities[1].valid_for.start, now);
    assert_eq!(after.certificate_authorities[1].valid_for.end, None);
    assert_eq!(after.ctlogs.len(), 2);
    assert_eq!(
        after.ctlogs[0].public_key.valid_for.end.as_deref(),
        Some(now)
    );
    assert_eq!(after.ctlogs[1].public_key.valid_for.start, now);
    assert_eq!(after.tlogs.len(), 1);
    assert_eq!(
        after.tlogs[0].public_key.valid_for.start,
        "2026-01-01T00:00:00Z"
    );
    // a second rotation keeps the first end date
    let later = with_history(
        &after,
        stack(b"third ca", &tlog, &ct_new),
        "2026-09-01T00:00:00Z",
        "2026-09-01T00:00:00Z",
    );
    assert_eq!(later.certificate_authorities.len(), 3);
    assert_eq!(
        later.certificate_authorities[0].valid_for.end.as_deref(),
        Some(now)
    );
}

/// A new intermediate is published before the CA uses it, from a chosen time, while
/// the running chain stays open; after the switch the old chain is end-dated and the
/// new one keeps its start: no certificate falls in a gap.
#[test]
fn a_new_chain_is_published_before_use_from_a_chosen_time() {
    let k = || FileSigner::generate(Curve::P256).public_key().clone();
    let (tlog, ct) = (k(), k());
    let before = stack(b"old ca", &tlog, &ct);
    let mut both = stack(b"old ca", &tlog, &ct);
    let mut new = stack(b"new ca", &tlog, &ct).certificate_authorities;
    both.certificate_authorities.append(&mut new);
    let chosen = "2026-05-01T00:00:00Z";
    let published = with_history(&before, both, "2026-06-01T00:00:00Z", chosen);
    assert_eq!(published.certificate_authorities.len(), 2);
    assert_eq!(
        published.certificate_authorities[0].valid_for.end, None,
        "still in use"
    );
    assert_eq!(published.certificate_authorities[1].valid_for.start, chosen);
    let switched = with_history(
        &published,
        stack(b"new ca", &tlog, &ct),
        "2026-07-01T00:00:00Z",
        "2026-07-01T00:00:00Z",
    );
    let old = &switched.certificate_authorities[0];
    let new = &switched.certificate_authorities[1];
    assert_eq!(old.valid_for.end.as_deref(), Some("2026-07-01T00:00:00Z"));
    assert_eq!(
        new.valid_for.start, chosen,
        "keeps the start it was published with"
    );
}

/// A new TSA certificate: the old chain stays, end-dated, so timestamps it made before
/// still verify; the new one starts at its certificate's notBefore.
#[test]
fn a_tsa_rotation_keeps_the_old_chain_end_dated() {
    let k = || FileSigner::generate(Curve::P256).public_key().clone();
    let (tlog, ct) = (k(), k());
    let tsa = |der: &[u8]| trust::CertificateAuthority {
        subject: trust::DistinguishedName {
            organization: "o".into(),
            common_name: "o timestamp authority".into(),
        },
        uri: "http://tsa".into(),
        cert_chain: trust::CertChain {
            certificates: vec![trust::RawBytes {
                raw_bytes: STANDARD.encode(der),
            }],
        },
        valid_for: trust::TimeRange {
            start: "2026-05-01T00:00:00Z".into(),
            end: None,
        },
    };
    let mut before = stack(b"ca", &tlog, &ct);
    before.timestamp_authorities = vec![tsa(b"old tsa")];
    let mut current = stack(b"ca", &tlog, &ct);
    current.timestamp_authorities = vec![tsa(b"new tsa")];
    let now = "2026-06-01T00:00:00Z";
    let after = with_history(&before, current, now, now);
    assert_eq!(after.timestamp_authorities.len(), 2);
    assert_eq!(
        after.timestamp_authorities[0].valid_for.end.as_deref(),
        Some(now)
    );
    assert_eq!(
        after.timestamp_authorities[1].valid_for.start,
        "2026-05-01T00:00:00Z"
    );
    assert_eq!(after.timestamp_authorities[1].valid_for.end, None);
}
