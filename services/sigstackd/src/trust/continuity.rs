//! What new trust files would take away from clients holding the published ones. Before
//! new targets are staged, every key and chain clients trust now must still be there,
//! valid from no later and until no earlier than now published, and each kind of
//! service (CA, log, CT log, timestamp authority) must keep a current entry: otherwise
//! bundles clients verify today would stop verifying — the usual causes are a stale
//! `--previous` given to `trust export`, or a flag (`--tsa-url`) left out.

use sigstack_types::time::parse_rfc3339;
use sigstack_types::trust::{
    CertificateAuthority, SigningConfig, TimeRange, TransparencyLogInstance, TrustedRoot,
};

/// One trusted entry, named for the operator, with its validity window.
struct Entry<'a> {
    id: String,
    what: String,
    window: &'a TimeRange,
}

fn logs<'a>(kind: &str, l: &'a [TransparencyLogInstance]) -> Vec<Entry<'a>> {
    l.iter()
        .map(|i| Entry {
            id: i.log_id.key_id.clone(),
            what: format!("the {kind} key {} ({})", i.log_id.key_id, i.base_url),
            window: &i.public_key.valid_for,
        })
        .collect()
}

fn authorities<'a>(kind: &str, l: &'a [CertificateAuthority]) -> Vec<Entry<'a>> {
    l.iter()
        .map(|c| Entry {
            id: c
                .cert_chain
                .certificates
                .iter()
                .map(|x| x.raw_bytes.as_str())
                .collect(),
            what: format!("the {kind} chain of {} ({})", c.subject.common_name, c.uri),
            window: &c.valid_for,
        })
        .collect()
}

fn time(t: &str) -> i64 {
    parse_rfc3339(t).unwrap_or(i64::MIN)
}

fn current(w: &TimeRange, now: i64) -> bool {
    w.end.as_deref().is_none_or(|e| time(e) > now)
}

/// Every way `new` would take trust away from clients that hold `published`, at `now`
/// (Unix seconds); empty when none.
pub fn regressions(
    published: (&TrustedRoot, &SigningConfig),
    new: (&TrustedRoot, &SigningConfig),
    now: i64,
) -> Vec<String> {
    fn kinds(r: &TrustedRoot) -> Vec<(&'static str, Vec<Entry<'_>>)> {
        vec![
            (
                "certificate authority",
                authorities("CA", &r.certificate_authorities),
            ),
            ("transparency log", logs("transparency log", &r.tlogs)),
            ("CT log", logs("CT log", &r.ctlogs)),
            (
                "timestamp authority",
                authorities("timestamp authority", &r.timestamp_authorities),
            ),
        ]
    }
    let mut out = Vec::new();
    for ((kind, old), (_, new)) in kinds(published.0).into_iter().zip(kinds(new.0)) {
        for o in &old {
            let Some(n) = new.iter().find(|n| n.id == o.id) else {
                out.push(format!(
                    "{} is gone: what it signed would no longer verify",
                    o.what
                ));
                continue;
            };
            if time(&n.window.start) > time(&o.window.start) {
                out.push(format!(
                    "{} would be valid from {} instead of {}: what it signed in between would no longer verify",
                    o.what, n.window.start, o.window.start
                ));
            }
            if let Some(ne) = &n.window.end
                && o.window.end.as_deref().is_none_or(|oe| time(ne) < time(oe))
                && time(ne) < now - 300
            {
                out.push(format!(
                    "{} would end at {ne}, in the past: what it signed since would no longer verify",
                    o.what
                ));
            }
        }
        let open = |l: &[Entry]| l.iter().any(|e| current(e.window, now));
        if open(&old) && !open(&new) {
            out.push(format!(
                "no {kind} would be current any more (was its flag left out of `trust export`?)"
            ));
        }
    }
    let (old_sc, new_sc) = (published.1, new.1);
    for (kind, old, new) in [
        ("CA", &old_sc.ca_urls, &new_sc.ca_urls),
        (
            "transparency log",
            &old_sc.rekor_tlog_urls,
            &new_sc.rekor_tlog_urls,
        ),
        ("timestamp authority", &old_sc.tsa_urls, &new_sc.tsa_urls),
        ("identity provider", &old_sc.oidc_urls, &new_sc.oidc_urls),
    ] {
        if !old.is_empty() && new.is_empty() {
            out.push(format!(
                "the signing config would name no {kind} any more (was its flag left out of `trust export`?)"
            ));
        }
    }
    out
}

/// Refuses new trust files (`new`: trusted root and signing config, as staged) that take
/// trust away from clients holding the `published` ones, naming each loss — unless
/// `allowed` (a compromised key), when each is printed as a warning.
pub fn refuse_loss(
    published: (Option<&[u8]>, Option<&[u8]>),
    new: (&[u8], &[u8]),
    allowed: bool,
    now: i64,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let (Some(old_root), Some(old_config)) = published else {
        return Ok(());
    };
    let root = |b: &[u8]| serde_json::from_slice::<TrustedRoot>(b);
    let config = |b: &[u8]| serde_json::from_slice::<SigningConfig>(b);
    let published = (
        root(old_root).context("the published trusted root")?,
        config(old_config).context("the published signing config")?,
    );
    let new = (
        root(new.0).context("the new trusted root")?,
        config(new.1).context("the new signing config")?,
    );
    let lost = regressions((&published.0, &published.1), (&new.0, &new.1), now);
    if lost.is_empty() || allowed {
        for l in &lost {
            eprintln!("WARNING (--allow-trust-loss): {l}");
        }
        return Ok(());
    }
    anyhow::bail!(
        "these trust files take away trust clients hold now:\n  - {}\nExport them again with --previous set to the trusted root clients have now (the one the last export or `init` run wrote), and every service's flag (--tsa-url …); or, if this is meant (a compromised key), stage with --allow-trust-loss",
        lost.join("\n  - ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> TrustedRoot {
        serde_json::from_value(serde_json::json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [{"baseUrl": "http://log", "hashAlgorithm": "SHA2_256",
                "publicKey": {"rawBytes": "AA==", "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": "2026-01-01T00:00:00Z"}},
                "logId": {"keyId": "k1"}}],
            "certificateAuthorities": [],
            "ctlogs": [],
            "timestampAuthorities": [{"subject": {"organization": "o", "commonName": "t"},
                "uri": "http://tsa", "certChain": {"certificates": [{"rawBytes": "AQ=="}]},
                "validFor": {"start": "2026-01-01T00:00:00Z"}}]
        }))
        .expect("root")
    }

    fn config(tsa: bool) -> SigningConfig {
        let svc = serde_json::json!([{"url": "http://tsa", "majorApiVersion": 1,
            "validFor": {"start": "2026-01-01T00:00:00Z"}, "operator": "o"}]);
        serde_json::from_value(serde_json::json!({
            "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
            "caUrls": [], "oidcUrls": [], "rekorTlogUrls": [],
            "tsaUrls": if tsa { svc } else { serde_json::json!([]) },
            "rekorTlogConfig": {"selector": "ANY"}, "tsaConfig": {"selector": "ANY"}
        }))
        .expect("config")
    }

    #[test]
    fn what_clients_hold_must_stay() {
        let now = parse_rfc3339("2026-06-01T00:00:00Z").expect("t");
        let (old, sc) = (root(), config(true));
        assert!(regressions((&old, &sc), (&old, &sc), now).is_empty());
        // a log key's window moved later (a stale --previous)
        let mut later = root();
        later.tlogs[0].public_key.valid_for.start = "2026-05-01T00:00:00Z".into();
        let r = regressions((&old, &sc), (&later, &sc), now);
        assert!(r.len() == 1 && r[0].contains("valid from"), "{r:?}");
        // the TSA end-dated with no other, and gone from the signing config (--tsa-url
        // left out)
        let mut no_tsa = root();
        no_tsa.timestamp_authorities[0].valid_for.end = Some("2026-06-01T00:00:00Z".into());
        let r = regressions((&old, &sc), (&no_tsa, &config(false)), now);
        assert!(
            r.iter()
                .any(|m| m.contains("no timestamp authority would be current")),
            "{r:?}"
        );
        assert!(
            r.iter()
                .any(|m| m.contains("signing config would name no timestamp")),
            "{r:?}"
        );
        // a key gone
        let mut gone = root();
        gone.tlogs.clear();
        let r = regressions((&old, &sc), (&gone, &sc), now);
        assert!(r.iter().any(|m| m.contains("is gone")), "{r:?}");
        // an end set long ago
        let mut past = root();
        past.tlogs[0].public_key.valid_for.end = Some("2026-02-01T00:00:00Z".into());
        let r = regressions((&old, &sc), (&past, &sc), now);
        assert!(r.iter().any(|m| m.contains("in the past")), "{r:?}");
        // end-dating now, with a successor published: a rotation, not a regression
        let mut rotated = root();
        rotated.tlogs[0].public_key.valid_for.end = Some("2026-06-01T00:00:00Z".into());
        let mut next = rotated.tlogs[0].clone();
        next.log_id.key_id = "k2".into();
        next.public_key.valid_for = TimeRange {
            start: "2026-06-01T00:00:00Z".into(),
            end: None,
        };
        rotated.tlogs.push(next);
        assert!(regressions((&old, &sc), (&rotated, &sc), now).is_empty());
    }
}
