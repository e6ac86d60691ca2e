//! Asking witnesses to cosign: after each new checkpoint, every configured witness gets
//! it with a consistency proof from the size it last cosigned (learnt from its 409 when
//! unknown); once a quorum of valid cosignatures is in, `/checkpoint` serves the
//! checkpoint with them. A witness that is down or refuses holds nothing up but the
//! cosigned view, which stays at the last checkpoint a quorum agreed on.

use super::LogV2Service;
use sigstack_crypto::PublicKey;
use sigstack_log::witness::{AddCheckpoint, verify_cosignature};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A witness as the log knows it.
pub(super) struct Witness {
    pub(super) url: String,
    pub(super) name: String,
    pub(super) key: PublicKey,
    /// The size it last cosigned, as far as we know (0: unknown; its 409 tells).
    known: AtomicU64,
}

impl Witness {
    pub(super) fn new(url: &str, name: &str, key: PublicKey) -> Self {
        Self {
            url: url.trim_end_matches('/').to_string(),
            name: name.to_string(),
            key,
            known: AtomicU64::new(0),
        }
    }
}

/// The newest checkpoint a quorum cosigned: its size and the note with the cosignatures.
#[derive(Default)]
pub(super) struct Cosigned {
    pub(super) size: u64,
    pub(super) note: Option<Arc<String>>,
}

const ROUND: Duration = Duration::from_millis(500);

impl LogV2Service {
    /// Runs the witnessing rounds for the life of the process.
    pub(super) async fn witness_loop(self: Arc<Self>) {
        let http = match reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
        {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(cause = %e, "no HTTP client for witnessing");
                return;
            }
        };
        let mut last_try = u64::MAX;
        loop {
            tokio::time::sleep(ROUND).await;
            let Ok(head) = self.fresh_head().await else {
                continue;
            };
            let done = self.cosigned.read().map(|c| c.size).unwrap_or(0);
            if (head.size == done && self.cosigned.read().is_ok_and(|c| c.note.is_some()))
                || head.size == last_try
            {
                continue;
            }
            let asks = self
                .witnesses
                .iter()
                .map(|w| self.ask(&http, w, &head.checkpoint, head.size));
            let lines: Vec<String> = futures::future::join_all(asks)
                .await
                .into_iter()
                .flatten()
                .collect();
            if lines.len() >= self.quorum {
                let note = format!("{}{}", head.checkpoint, lines.concat());
                if let Ok(mut c) = self.cosigned.write()
                    && c.size <= head.size
                {
                    *c = Cosigned {
                        size: head.size,
                        note: Some(Arc::new(note)),
                    };
                }
                last_try = u64::MAX;
            } else {
                // try this size again only when the tree grows or a round later
                last_try = if last_try == head.size {
                    u64::MAX
                } else {
                    head.size
                };
                tracing::warn!(
                    size = head.size,
                    cosigned = lines.len(),
                    quorum = self.quorum,
                    "checkpoint not cosigned by a quorum of witnesses"
                );
            }
        }
    }

    /// One witness's cosignature line for the checkpoint `note` of `size`, if it gives one.
    async fn ask(
        &self,
        http: &reqwest::Client,
        w: &Witness,
        note: &str,
        size: u64,
    ) -> Option<String> {
        for _ in 0..2 {
            let old = w.known.load(Ordering::Relaxed).min(size);
            let proof = if old == 0 || old == size {
                Vec::new()
            } else {
                match self.consistency(old, size).await {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(witness = w.name, cause = %e, "no consistency proof");
                        return None;
                    }
                }
            };
            let body = AddCheckpoint {
                old_size: old,
                proof,
                note: note.to_string(),
            }
            .encode();
            let res = match http
                .post(format!("{}/add-checkpoint", w.url))
                .body(body)
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(witness = w.name, cause = %e, "witness unreachable");
                    return None;
                }
            };
            let status = res.status();
            // an answer is a few signature lines
            if res.content_length().is_some_and(|n| n > 16 << 10) {
                tracing::warn!(witness = w.name, "an oversized answer");
                return None;
            }
            let text = res.text().await.unwrap_or_default();
            if text.len() > 16 << 10 {
                tracing::warn!(witness = w.name, "an oversized answer");
                return None;
            }
            match status.as_u16() {
                200 => {
                    // keep exactly a line that verifies: a witness cannot slip an invalid
                    // one into the published checkpoint
                    let line = text.lines().take(16).find_map(|l| {
                        let candidate = format!("{l}\n");
                        let prefixed = l
                            .strip_prefix("\u{2014} ")
                            .is_some_and(|r| r.starts_with(&format!("{} ", w.name)));
                        (prefixed
                            && verify_cosignature(&format!("{note}{candidate}"), &w.name, &w.key)
                                .is_ok())
                        .then_some(candidate)
                    });
                    match line {
                        Some(l) => {
                            w.known.store(size, Ordering::Relaxed);
                            return Some(l);
                        }
                        None => {
                            tracing::warn!(
                                witness = w.name,
                                "no cosignature that verifies in the witness's answer"
                            );
                            return None;
                        }
                    }
                }
                409 => match text.trim().parse::<u64>() {
                    Ok(theirs) if theirs <= size => w.known.store(theirs, Ordering::Relaxed),
                    Ok(theirs) => {
                        tracing::error!(
                            witness = w.name,
                            theirs,
                            ours = size,
                            "the witness has cosigned a larger tree than this log has: a fork or a rollback"
                        );
                        return None;
                    }
                    Err(_) => return None,
                },
                _ => {
                    tracing::warn!(witness = w.name, %status, answer = text.trim(), "the witness refused the checkpoint");
                    return None;
                }
            }
        }
        None
    }
}
