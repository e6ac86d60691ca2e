//! Log checkpoints carried in a kit: the Rekor v1 log's signed tree head, the tiled
//! log's checkpoint and the CT log's STH, each verified with the log's key from a
//! trusted root carried beside it. On the far side they are the newest state of each
//! log a verifier has seen; an import never takes one back to a smaller tree or to
//! another tree of the same size.

use anyhow::{Context, bail, ensure};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use sigstack_crypto::PublicKey;
use sigstack_types::trust::{TransparencyLogInstance, TrustedRoot};

/// A checkpoint as the kit stores it (`checkpoints/<kind>-<host>.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// `rekor-v1`, `rekor-v2` or `ct`.
    pub kind: String,
    pub url: String,
    pub fetched: String,
    /// The signed note (Rekor v1 and v2) or the `get-sth` JSON (CT), as served.
    pub checkpoint: String,
}

pub const KINDS: [&str; 3] = ["rekor-v1", "rekor-v2", "ct"];

/// A verified checkpoint: its tree and the repository whose trusted root holds the key.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    pub size: u64,
    pub root: [u8; 32],
    pub repository: String,
}

impl Record {
    /// The kit path of this log's checkpoint: its kind, host, and a hash of its whole
    /// URL (two logs never share a file).
    pub fn file(&self) -> String {
        let url = self.url.trim_end_matches('/').to_ascii_lowercase();
        let host: String = url
            .split_once("://")
            .map_or(url.as_str(), |(_, r)| r)
            .split('/')
            .next()
            .unwrap_or_default()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let id = hex::encode(&sigstack_crypto::sha256(url.as_bytes())[..8]);
        format!("checkpoints/{}-{host}-{id}.json", self.kind)
    }

    /// Fetches the log's current checkpoint.
    pub async fn fetch(http: &reqwest::Client, kind: &str, url: &str) -> anyhow::Result<Self> {
        crate::settings::check_flag_url("--log", url)?;
        let base = url.trim_end_matches('/');
        let path = match kind {
            "rekor-v1" => "/api/v1/log",
            "rekor-v2" => "/checkpoint",
            "ct" => "/ct/v1/get-sth",
            other => bail!("unknown log kind {other:?} (one of {KINDS:?})"),
        };
        let r = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .with_context(|| format!("fetching the checkpoint of {url}"))?;
        ensure!(
            r.status().is_success(),
            "{url}{path} answered {}",
            r.status()
        );
        let text = r.text().await?;
        ensure!(text.len() < 1 << 16, "the checkpoint of {url} is too large");
        let checkpoint = if kind == "rekor-v1" {
            let v: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{url}/api/v1/log is not a log info document"))?;
            v["signedTreeHead"]
                .as_str()
                .with_context(|| format!("{url}/api/v1/log has no signedTreeHead"))?
                .to_string()
        } else {
            text
        };
        Ok(Self {
            kind: kind.to_string(),
            url: base.to_string(),
            fetched: sigstack_types::time::rfc3339(crate::sequencer::unix_now()),
            checkpoint,
        })
    }

    /// Verifies the checkpoint with the key a carried trusted root names for this very log
    /// (same URL, same kind, a key not end-dated): a checkpoint of another log, or one
    /// signed with a retired key, is refused.
    pub fn verify(&self, roots: &[(String, TrustedRoot)]) -> anyhow::Result<Tree> {
        let now = crate::sequencer::unix_now();
        let mut last = None;
        let mut named = false;
        for (name, root) in roots {
            let logs = if self.kind == "ct" {
                &root.ctlogs
            } else {
                &root.tlogs
            };
            for log in logs.iter().filter(|l| same_url(&l.base_url, &self.url)) {
                let Some(key) = key_of(log) else { continue };
                let ed25519 = key.key_details() == "PKIX_ED25519";
                let of_kind = match self.kind.as_str() {
                    "rekor-v2" => ed25519,
                    "rekor-v1" => !ed25519,
                    _ => true,
                };
                if !of_kind {
                    continue;
                }
                named = true;
                if !current(&log.public_key.valid_for, now) {
                    last = Some("its key there is end-dated".to_string());
                    continue;
                }
                match self.verify_with(log, &key) {
                    Ok((size, hash)) => {
                        return Ok(Tree {
                            size,
                            root: hash,
                            repository: name.clone(),
                        });
                    }
                    Err(e) => last = Some(e),
                }
            }
        }
        if !named {
            bail!(
                "no trusted root carried in the kit names a {} log at {}",
                self.kind,
                self.url
            );
        }
        bail!(
            "the {} checkpoint of {} is not signed by the log's key in the trusted roots carried with it{}",
            self.kind,
            self.url,
            last.map(|e| format!(" ({e})")).unwrap_or_default()
        )
    }

    fn verify_with(
        &self,
        log: &TransparencyLogInstance,
        key: &PublicKey,
    ) -> Result<(u64, [u8; 32]), String> {
        match self.kind.as_str() {
            "rekor-v1" => {
                let cp = sigstack_log::checkpoint::verify_any_name(&self.checkpoint, key)?;
                Ok((cp.size, cp.root))
            }
            "rekor-v2" => {
                // the checkpoint names its origin, which is the host of the log's URL
                let origin = self.checkpoint.lines().next().unwrap_or_default();
                if crate::log::config::host_of(&log.base_url).ok().as_deref() != Some(origin) {
                    return Err(format!("{origin:?} is not the log at {}", log.base_url));
                }
                let cp = sigstack_log::note::verify_ed25519(&self.checkpoint, origin, key)?;
                Ok((cp.size, cp.root))
            }
            "ct" => {
                #[derive(Deserialize)]
                struct Sth {
                    tree_size: u64,
                    timestamp: u64,
                    sha256_root_hash: String,
                    tree_head_signature: String,
                }
                let sth: Sth = serde_json::from_str(&self.checkpoint)
                    .map_err(|e| format!("not a signed tree head: {e}"))?;
                let root: [u8; 32] = STANDARD
                    .decode(&sth.sha256_root_hash)
                    .ok()
                    .and_then(|r| r.try_into().ok())
                    .ok_or("the STH's root hash is not 32 bytes of base64")?;
                let sig = STANDARD
                    .decode(&sth.tree_head_signature)
                    .map_err(|_| "the STH's signature is not base64")?;
                let ds = sigstack_log::ct::DigitallySigned::from_bytes(&sig)
                    .map_err(|e| e.to_string())?;
                let msg =
                    sigstack_log::ct::sth_signature_input(sth.timestamp, sth.tree_size, &root);
                ds.verify(key, &msg).map_err(|e| e.to_string())?;
                Ok((sth.tree_size, root))
            }
            other => Err(format!("unknown log kind {other:?}")),
        }
    }
}

fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim_end_matches('/'))
}

/// A validity window that holds now.
fn current(w: &sigstack_types::trust::TimeRange, now: i64) -> bool {
    let at = |t: &str| sigstack_types::time::parse_rfc3339(t);
    at(&w.start).is_some_and(|s| s <= now)
        && w.end
            .as_deref()
            .is_none_or(|e| at(e).is_some_and(|e| e > now))
}

fn key_of(log: &TransparencyLogInstance) -> Option<PublicKey> {
    let der = STANDARD.decode(&log.public_key.raw_bytes).ok()?;
    PublicKey::from_spki_der(&der).ok()
}

/// Refuses to replace `held` (published before) with `new`: a smaller tree is a
/// rollback, another root at the same size a fork.
pub fn refuse_going_back(url: &str, held: &Tree, new: &Tree) -> anyhow::Result<()> {
    ensure!(
        new.size >= held.size,
        "the kit's checkpoint of {url} has {} entries, fewer than the {} already published here: refusing a rollback",
        new.size,
        held.size
    );
    ensure!(
        new.size != held.size || new.root == held.root,
        "the kit's checkpoint of {url} has another tree of size {} than the one published here: the log has forked",
        new.size
    );
    Ok(())
}
