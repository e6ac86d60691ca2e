//! Trust as the TUF repository has published it, and what a re-run of `init` may add to
//! it: only material the stack uses and the published trust lacks (a service added by a
//! newer version). Nothing published is ever removed or end-dated here — rotations are
//! `trust export`'s job, with the operator choosing the dates.

use crate::tuf::Repo;
use anyhow::Context;
use sigstack_types::trust::{
    CertificateAuthority, SigningConfig, TransparencyLogInstance, TrustedRoot,
};

/// The newest published trusted root and signing config, if targets name both.
pub fn read(repo: &Repo) -> anyhow::Result<Option<(TrustedRoot, SigningConfig)>> {
    let (Some(root), Some(signing)) = (
        repo.target(crate::trust::TRUSTED_ROOT_FILE),
        repo.target(crate::trust::SIGNING_CONFIG_FILE),
    ) else {
        return Ok(None);
    };
    Ok(Some((
        serde_json::from_slice(root).context("the published trusted root")?,
        serde_json::from_slice(signing).context("the published signing config")?,
    )))
}

fn same_chain(a: &CertificateAuthority, b: &CertificateAuthority) -> bool {
    a.cert_chain.certificates.iter().map(|c| &c.raw_bytes).eq(b
        .cert_chain
        .certificates
        .iter()
        .map(|c| &c.raw_bytes))
}

/// `published` with what `ours` has and it lacks, each new entry valid from `now`; and
/// a description of every addition (empty: nothing to publish).
pub fn add_missing(
    published: &TrustedRoot,
    ours: &TrustedRoot,
    now: &str,
) -> (TrustedRoot, Vec<String>) {
    let mut out = published.clone();
    let mut added = Vec::new();
    let logs = |have: &mut Vec<TransparencyLogInstance>,
                mine: &[TransparencyLogInstance],
                what: &str,
                added: &mut Vec<String>| {
        for l in mine {
            if !have.iter().any(|h| h.log_id.key_id == l.log_id.key_id) {
                let mut l = l.clone();
                l.public_key.valid_for.start = now.to_string();
                l.public_key.valid_for.end = None;
                added.push(format!("{what} key {} ({})", l.log_id.key_id, l.base_url));
                have.push(l);
            }
        }
    };
    logs(&mut out.tlogs, &ours.tlogs, "transparency log", &mut added);
    logs(&mut out.ctlogs, &ours.ctlogs, "CT log", &mut added);
    let cas = |have: &mut Vec<CertificateAuthority>,
               mine: &[CertificateAuthority],
               what: &str,
               added: &mut Vec<String>| {
        for c in mine {
            if !have.iter().any(|h| same_chain(h, c)) {
                let mut c = c.clone();
                c.valid_for.start = now.to_string();
                c.valid_for.end = None;
                added.push(format!("{what} chain ({})", c.uri));
                have.push(c);
            }
        }
    };
    cas(
        &mut out.certificate_authorities,
        &ours.certificate_authorities,
        "CA",
        &mut added,
    );
    cas(
        &mut out.timestamp_authorities,
        &ours.timestamp_authorities,
        "timestamp authority",
        &mut added,
    );
    (out, added)
}

/// The published signing config, with the services it lists none of taken from `ours`.
pub fn fill_signing_config(published: &SigningConfig, ours: &SigningConfig) -> SigningConfig {
    let mut out = published.clone();
    for (have, mine) in [
        (&mut out.ca_urls, &ours.ca_urls),
        (&mut out.oidc_urls, &ours.oidc_urls),
        (&mut out.rekor_tlog_urls, &ours.rekor_tlog_urls),
        (&mut out.tsa_urls, &ours.tsa_urls),
    ] {
        if have.is_empty() {
            have.clone_from(mine);
        }
    }
    out
}

/// `published` with the URLs of the entries `ours` also has (same key or chain) taken
/// from `ours` (`init --reconfigure`: the stack moved to new names); and a description
/// of every change.
pub fn with_our_urls(published: &TrustedRoot, ours: &TrustedRoot) -> (TrustedRoot, Vec<String>) {
    let mut out = published.clone();
    let mut changed = Vec::new();
    for (have, mine) in [
        (&mut out.tlogs, &ours.tlogs),
        (&mut out.ctlogs, &ours.ctlogs),
    ] {
        for h in have.iter_mut() {
            if let Some(m) = mine.iter().find(|m| m.log_id.key_id == h.log_id.key_id)
                && m.base_url != h.base_url
            {
                changed.push(format!("{} is now {}", h.base_url, m.base_url));
                h.base_url.clone_from(&m.base_url);
            }
        }
    }
    for (have, mine) in [
        (
            &mut out.certificate_authorities,
            &ours.certificate_authorities,
        ),
        (&mut out.timestamp_authorities, &ours.timestamp_authorities),
    ] {
        for h in have.iter_mut() {
            if let Some(m) = mine.iter().find(|m| same_chain(h, m))
                && m.uri != h.uri
            {
                changed.push(format!("{} is now {}", h.uri, m.uri));
                h.uri.clone_from(&m.uri);
            }
        }
    }
    (out, changed)
}
