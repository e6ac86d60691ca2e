//! The logs' checks: the transparency log signs with a key the trusted root names and its
//! checkpoint verifies; each CT log signs its tree head with one of the current keys the
//! trusted root names for it.

use super::{Report, current, get, get_json, raw};
use anyhow::Context;
use sigstack_crypto::PublicKey;
use sigstack_types::trust::TrustedRoot;

fn trusted_key(c: &sigstack_types::trust::TransparencyLogInstance) -> anyhow::Result<PublicKey> {
    Ok(PublicKey::from_spki_der(&raw(&c.public_key.raw_bytes)?)?)
}

/// The log at `url` signs with a current key the trusted root names for it (another may
/// be published ahead of a key rotation), and its checkpoint verifies with that key.
pub(super) async fn check_log(
    http: &reqwest::Client,
    url: &str,
    trusted: &TrustedRoot,
    r: &mut Report,
) {
    let keys: Result<Vec<PublicKey>, _> = trusted
        .tlogs
        .iter()
        .filter(|t| t.base_url.trim_end_matches('/') == url && current(&t.public_key.valid_for.end))
        .map(trusted_key)
        .collect();
    let keys = match keys {
        Ok(k) if k.is_empty() => {
            return r.fail(
                "log",
                format!("{url}: the trusted root has no current key for it"),
            );
        }
        Ok(k) => k,
        Err(e) => return r.fail("log", format!("{url}: trusted key unreadable: {e:#}")),
    };
    if keys.iter().all(|k| k.key_details() == "PKIX_ED25519") {
        return check_tiled_log(http, url, &keys, r).await;
    }
    let key = match get(http, &format!("{url}/api/v1/log/publicKey")).await {
        Ok(pem) => match PublicKey::from_pem(&pem) {
            Ok(k) if keys.contains(&k) => {
                let ahead = match keys.len() {
                    1 => String::new(),
                    n => format!(" ({} more published for it)", n - 1),
                };
                r.ok("log", format!("{url}: signs with a trusted key{ahead}"));
                k
            }
            Ok(_) => {
                return r.fail(
                    "log",
                    format!("{url}: its key is not one the trusted root names"),
                );
            }
            Err(e) => return r.fail("log", format!("{url}: public key: {e}")),
        },
        Err(e) => return r.fail("log", format!("{url}: {e:#}")),
    };
    match get_json(http, &format!("{url}/api/v1/log")).await {
        Ok(info) => match info["signedTreeHead"].as_str() {
            Some(note) => match sigstack_log::checkpoint::verify_any_name(note, &key) {
                Ok(cp) => r.ok(
                    "log",
                    format!("{url}: checkpoint verifies ({} entries)", cp.size),
                ),
                Err(e) => r.fail("log", format!("{url}: checkpoint: {e}")),
            },
            None => r.fail("log", format!("{url}: no signed tree head")),
        },
        Err(e) => r.fail("log", format!("{url}: {e:#}")),
    }
    if let Err(e) = get(http, &format!("{url}/readyz")).await {
        r.fail("log", format!("{url}: not ready: {e:#}"));
    }
}

/// The CT log at `url` signs its tree head with one of the current keys the trusted root
/// names for it.
pub(super) async fn check_ctlog(
    http: &reqwest::Client,
    url: &str,
    instances: &[&sigstack_types::trust::TransparencyLogInstance],
    r: &mut Report,
) {
    let mut keys = Vec::new();
    for inst in instances {
        match trusted_key(inst) {
            Ok(k) => keys.push(k),
            Err(e) => return r.fail("ctlog", format!("{url}: trusted key unreadable: {e:#}")),
        }
    }
    let sth = match get_json(http, &format!("{url}/ct/v1/get-sth")).await {
        Ok(v) => v,
        Err(e) => return r.fail("ctlog", format!("{url}: {e:#}")),
    };
    let verified = (|| -> anyhow::Result<u64> {
        let size = sth["tree_size"].as_u64().context("no tree_size")?;
        let ts = sth["timestamp"].as_u64().context("no timestamp")?;
        let root: [u8; 32] = raw(sth["sha256_root_hash"].as_str().context("no root hash")?)?
            .try_into()
            .map_err(|_| anyhow::anyhow!("the root hash is not 32 bytes"))?;
        let sig = sigstack_log::ct::DigitallySigned::from_bytes(&raw(sth["tree_head_signature"]
            .as_str()
            .context("no signature")?)?)?;
        let input = sigstack_log::ct::sth_signature_input(ts, size, &root);
        anyhow::ensure!(
            keys.iter().any(|k| sig.verify(k, &input).is_ok()),
            "signed by none of the {} current key(s) the trusted root names for it",
            keys.len()
        );
        Ok(size)
    })();
    let ahead = match keys.len() {
        1 => String::new(),
        n => format!("; {} more key(s) published for it", n - 1),
    };
    match verified {
        Ok(size) => r.ok(
            "ctlog",
            format!("{url}: signed tree head verifies with a trusted key ({size} entries{ahead})"),
        ),
        Err(e) => r.fail("ctlog", format!("{url}: signed tree head: {e:#}")),
    }
    if let Err(e) = get(http, &format!("{url}/readyz")).await {
        r.fail("ctlog", format!("{url}: not ready: {e:#}"));
    }
}

/// A tiled (Rekor v2) log: its checkpoint verifies with one of the Ed25519 keys the
/// trusted root names for it, under the URL's host (the name clients check it under).
async fn check_tiled_log(http: &reqwest::Client, url: &str, keys: &[PublicKey], r: &mut Report) {
    let origin = match crate::log::config::host_of(url) {
        Ok(o) => o,
        Err(e) => return r.fail("log", format!("{url}: {e:#}")),
    };
    match get(http, &format!("{url}/checkpoint")).await {
        Ok(note) => {
            let note = String::from_utf8_lossy(&note);
            match keys
                .iter()
                .find_map(|k| sigstack_log::note::verify_ed25519(&note, &origin, k).ok())
            {
                Some(cp) => r.ok(
                    "log",
                    format!(
                        "{url}: tiled log, checkpoint verifies with a trusted key as {origin} ({} entries)",
                        cp.size
                    ),
                ),
                None => r.fail(
                    "log",
                    format!("{url}: its checkpoint is not signed by a key the trusted root names for it as {origin}"),
                ),
            }
        }
        Err(e) => return r.fail("log", format!("{url}: {e:#}")),
    }
    if let Err(e) = get(http, &format!("{url}/readyz")).await {
        r.fail("log", format!("{url}: not ready: {e:#}"));
    }
}
