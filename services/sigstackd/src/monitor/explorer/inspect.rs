//! The entry page: the entry fetched from its log now, decoded (kind, artifact digest,
//! key or certificate with its Fulcio extensions by name), and proven in the log: the
//! inclusion proof checked against a tree head signed by the key the trusted root names,
//! and the leaf compared with the one the monitor read. A certificate links to its CT
//! entry.

use super::super::Monitor;
use super::super::config::{LogConfig, LogKind};
use super::super::entry::{self, CertFacts, Facts, extension_name};
use super::super::sources;
use super::html::{esc, facts, query, table, when};
use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sigstack_merkle::Hash;

/// What the page shows of the proof.
struct Proof {
    /// The time the log states for the entry, when it states one.
    time: Option<i64>,
    verified: Result<(), String>,
    tree_size: u64,
    root: String,
    hashes: Vec<String>,
    checkpoint: String,
}

pub async fn entry(m: &Monitor, log: &LogConfig, index: u64) -> anyhow::Result<Option<String>> {
    let Some(row) = m.store.entry(&log.name, index).await? else {
        return Ok(None);
    };
    let (data, f, proof) = match log.kind {
        LogKind::RekorV1 => v1(m, log, index).await?,
        LogKind::Tiles => tiled(m, log, index).await?,
        LogKind::Ct => ct(m, log, index).await?,
    };
    let leaf = hex::encode(sigstack_merkle::leaf_hash(&data));
    let same = row.uuid.ends_with(&leaf);
    let mut out = String::new();
    let verdict = match (&proof.verified, same) {
        (Ok(()), true) => "<p class=\"ok\" role=\"status\">✔ Included in the log: the inclusion proof verifies against a tree head signed by the log's trusted key, and the entry is the one the monitor read.</p>".to_string(),
        (Ok(()), false) => "<p class=\"bad\" role=\"alert\">✘ The log now serves a different entry at this index than the monitor read.</p>".to_string(),
        (Err(e), _) => format!("<p class=\"bad\" role=\"alert\">✘ Not proven: {}</p>", esc(e)),
    };
    out.push_str(&verdict);
    out.push_str("<h2>Entry</h2>");
    let mut items = vec![
        (
            "Log",
            format!(
                "<a href=\"/log/{l}\">{l}</a> ({})",
                esc(log.kind.label()),
                l = esc(&log.name)
            ),
        ),
        ("Index", index.to_string()),
        ("UUID", format!("<code>{}</code>", esc(&row.uuid))),
        ("Kind", esc(&f.kind)),
        ("Time", when(proof.time.or(row.time))),
        (
            "Artifact digest",
            f.digest.as_deref().map_or("—".into(), |d| {
                format!(
                    "<a href=\"/search?q={q}\"><code>{d}</code></a>",
                    q = query(d),
                    d = esc(d)
                )
            }),
        ),
    ];
    for k in &f.key_fingerprints {
        items.push((
            "Public key (SHA-256)",
            format!(
                "<a href=\"/search?q={q}\"><code>{k}</code></a>",
                q = query(k),
                k = esc(k)
            ),
        ));
    }
    out.push_str(&facts(&items));
    for c in &f.certs {
        out.push_str(&cert_section(m, log, c).await);
    }
    out.push_str("<h2>Inclusion proof</h2>");
    out.push_str(&facts(&[
        ("Tree size", proof.tree_size.to_string()),
        ("Root hash", format!("<code>{}</code>", esc(&proof.root))),
        ("Leaf hash", format!("<code>{leaf}</code>")),
    ]));
    let rows: Vec<Vec<String>> = proof
        .hashes
        .iter()
        .enumerate()
        .map(|(i, h)| vec![i.to_string(), format!("<code>{}</code>", esc(h))])
        .collect();
    if !rows.is_empty() {
        out.push_str(&table("Proof hashes, leaf to root", &["#", "Hash"], &rows));
    }
    out.push_str(&format!(
        "<h2>Checkpoint</h2><pre>{}</pre><h2>Raw entry</h2><details><summary>The bytes the log hashed ({} bytes)</summary><pre>{}</pre></details>",
        esc(&proof.checkpoint),
        data.len(),
        esc(&match log.kind {
            LogKind::Ct => STANDARD.encode(&data),
            _ => String::from_utf8_lossy(&data).into_owned(),
        })
    ));
    Ok(Some(out))
}

async fn cert_section(m: &Monitor, log: &LogConfig, c: &CertFacts) -> String {
    let mut items = vec![
        (
            "Identity",
            c.sans
                .iter()
                .map(|s| {
                    format!(
                        "<a href=\"/search?q={q}\">{t}</a>",
                        q = query(s),
                        t = esc(s)
                    )
                })
                .collect::<Vec<_>>()
                .join("<br>"),
        ),
        ("OIDC issuer", esc(c.issuer.as_deref().unwrap_or("—"))),
        (
            "Subject",
            if c.subject_dn.is_empty() {
                "(empty)".into()
            } else {
                esc(&c.subject_dn)
            },
        ),
        ("Issued by", esc(&c.issuer_dn)),
        (
            "Valid",
            format!(
                "{} to {}",
                when(Some(c.not_before)),
                when(Some(c.not_after))
            ),
        ),
        ("Serial", format!("<code>{}</code>", esc(&c.serial))),
        (
            "Fingerprint (SHA-256)",
            format!("<code>{}</code>", esc(&c.fingerprint)),
        ),
    ];
    if log.kind != LogKind::Ct {
        let mut links = Vec::new();
        for ct in m.logs.iter().filter(|l| l.kind == LogKind::Ct) {
            if let Ok(rows) = m.store.search(&format!("serial:{}", c.serial), 5).await {
                for r in rows.iter().filter(|r| r.log == ct.name) {
                    links.push(format!(
                        "<a href=\"/log/{l}/entry/{i}\">{l} #{i}</a>",
                        l = esc(&r.log),
                        i = r.idx
                    ));
                }
            }
        }
        items.push((
            "Certificate transparency",
            if links.is_empty() {
                "not found in a followed CT log".into()
            } else {
                links.join(", ")
            },
        ));
    }
    let mut out = String::from("<h2>Certificate</h2>");
    out.push_str(&facts(&items));
    let rows: Vec<Vec<String>> = c
        .extensions
        .iter()
        .filter(|(oid, _)| oid != "2.5.29.17")
        .map(|(oid, v)| {
            vec![
                esc(extension_name(oid).unwrap_or("")),
                format!("<code>{}</code>", esc(oid)),
                format!("<code>{}</code>", esc(v)),
            ]
        })
        .collect();
    out.push_str(&table(
        "Certificate extensions",
        &["Name", "OID", "Value"],
        &rows,
    ));
    out
}

fn hexes(h: &[Hash]) -> Vec<String> {
    h.iter().map(hex::encode).collect()
}

async fn v1(m: &Monitor, log: &LogConfig, index: u64) -> anyhow::Result<(Vec<u8>, Facts, Proof)> {
    let rekor = sigstack::rekor::Rekor {
        http: &m.http,
        url: log.url.clone(),
    };
    let (_, e) = rekor.entry_by_index(index).await?;
    let data = STANDARD
        .decode(&e.body)
        .context("the entry body is not base64")?;
    let p = e
        .verification
        .as_ref()
        .and_then(|v| v.inclusion_proof.clone());
    let verified = sigstack::rekor::verify_entry(&e, &m.root, super::super::now())
        .map(|_| ())
        .map_err(|e| format!("{e:#}"));
    let proof = match p {
        Some(p) => Proof {
            time: Some(e.integrated_time),
            verified,
            tree_size: p.tree_size.max(0) as u64,
            root: p.root_hash,
            hashes: p.hashes,
            checkpoint: p.checkpoint,
        },
        None => Proof {
            time: Some(e.integrated_time),
            verified: Err("the log returned no inclusion proof".into()),
            tree_size: 0,
            root: String::new(),
            hashes: Vec::new(),
            checkpoint: String::new(),
        },
    };
    Ok((data.clone(), entry::rekor_body(&data), proof))
}

async fn tiled(
    m: &Monitor,
    log: &LogConfig,
    index: u64,
) -> anyhow::Result<(Vec<u8>, Facts, Proof)> {
    let (head, _) = sources::head(&m.http, log, &m.root)
        .await
        .map_err(|e| match e {
            sources::HeadError::Unreachable(e) => e,
            sources::HeadError::Unverified { why, .. } => {
                anyhow::anyhow!("the checkpoint does not verify: {why}")
            }
        })?;
    let cp = sigstack::tiles::verify_checkpoint(&head.text, log.trusted_url(), &m.root)?;
    let t = sigstack::tiles::TiledLog::new(&m.http, &log.url);
    let (data, hashes, verified) = match t.entry(index, &cp).await {
        Ok((d, h)) => (d, hexes(&h), Ok(())),
        Err(e) => {
            // the entry itself, to show what the log serves even if it cannot be proven
            let leaves =
                sources::leaves(&m.http, log, index, index + 1, &sources::Shard::default()).await?;
            let d = leaves
                .into_iter()
                .next()
                .map(|l| l.data)
                .unwrap_or_default();
            (d, Vec::new(), Err(format!("{e:#}")))
        }
    };
    let f = entry::rekor_body(&data);
    Ok((
        data,
        f,
        Proof {
            time: None,
            verified,
            tree_size: cp.size,
            root: hex::encode(cp.root),
            hashes,
            checkpoint: head.text,
        },
    ))
}

async fn ct(m: &Monitor, log: &LogConfig, index: u64) -> anyhow::Result<(Vec<u8>, Facts, Proof)> {
    let (head, _) = sources::head(&m.http, log, &m.root)
        .await
        .map_err(|e| match e {
            sources::HeadError::Unreachable(e) => e,
            sources::HeadError::Unverified { why, .. } => {
                anyhow::anyhow!("the tree head does not verify: {why}")
            }
        })?;
    let leaves =
        sources::leaves(&m.http, log, index, index + 1, &sources::Shard::default()).await?;
    let data = leaves
        .into_iter()
        .next()
        .map(|l| l.data)
        .unwrap_or_default();
    let leaf = sigstack_merkle::leaf_hash(&data);
    let base = log.url.trim_end_matches('/');
    let url = reqwest::Url::parse_with_params(
        &format!("{base}/ct/v1/get-proof-by-hash"),
        &[
            ("hash", STANDARD.encode(leaf)),
            ("tree_size", head.size.to_string()),
        ],
    )?;
    let v: serde_json::Value = m
        .http
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let path: Vec<Hash> = v["audit_path"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| STANDARD.decode(h.as_str()?).ok()?.try_into().ok())
        .collect();
    let verified = if v["leaf_index"].as_u64() != Some(index) {
        Err("the log proves the certificate at another index".to_string())
    } else {
        sigstack_merkle::verify_inclusion(&leaf, index, head.size, &path, &head.root)
            .map_err(|e| format!("the audit path does not lead to the signed root: {e}"))
    };
    let (time, f) = entry::ct_leaf(&data)
        .map(|(ts, f)| (Some((ts / 1000) as i64), f))
        .unwrap_or_default();
    Ok((
        data,
        f,
        Proof {
            time,
            verified,
            tree_size: head.size,
            root: hex::encode(head.root),
            hashes: hexes(&path),
            checkpoint: head.text,
        },
    ))
}
