//! The explorer's pages other than the entry page: home, search results, logs, alerts,
//! TUF, and a person's own entries.

use super::super::Monitor;
use super::super::config::LogConfig;
use super::html::{esc, facts, search_form, table, when};
use sigstack_storage::monitor::EntryRow;

const RESULTS: i64 = 200;

/// The largest TUF metadata file the TUF page reads.
const MAX_METADATA: u64 = 16 << 20;

/// Root versions the TUF page walks through at most.
const MAX_ROOTS: u32 = 256;

fn entry_link(e: &EntryRow) -> String {
    format!(
        "<a href=\"/log/{l}/entry/{i}\">{l} #{i}</a>",
        l = esc(&e.log),
        i = e.idx
    )
}

fn entry_rows(rows: &[EntryRow]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|e| {
            vec![
                entry_link(e),
                esc(&e.kind),
                e.digest
                    .as_deref()
                    .map_or("—".into(), |d| format!("<code>{}</code>", esc(d))),
                when(e.time),
            ]
        })
        .collect()
}

fn entries_table(caption: &str, rows: &[EntryRow]) -> String {
    if rows.is_empty() {
        return "<p>No entries.</p>".into();
    }
    table(
        caption,
        &["Entry", "Kind", "Artifact digest", "Time"],
        &entry_rows(rows),
    )
}

pub async fn home(m: &Monitor) -> String {
    let mut out = search_form("");
    out.push_str("<h2>Logs followed</h2>");
    out.push_str(&logs(m));
    if let Ok(matches) = m.store.matches(10).await
        && !matches.is_empty()
    {
        out.push_str("<h2>Latest matches of the watch list</h2>");
        out.push_str(&matches_table(&matches));
    }
    out
}

/// What a search string means: the index keys it is looked up under.
pub fn keys_for(q: &str) -> Vec<String> {
    let l = q.trim().to_ascii_lowercase();
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some((alg, h)) = l.split_once(':')
        && matches!(alg, "sha256" | "sha384" | "sha512")
        && hex(h)
    {
        return vec![format!("digest:{alg}:{h}"), format!("fp:{h}")];
    }
    if hex(&l) && (l.len() == 64 || l.len() == 80) {
        return vec![
            format!("uuid:{l}"),
            format!("digest:sha256:{l}"),
            format!("fp:{l}"),
        ];
    }
    if hex(&l) && l.len() > 8 {
        return vec![format!("fp:{l}"), format!("serial:{l}")];
    }
    vec![format!("id:{l}")]
}

pub async fn search(m: &Monitor, q: &str) -> anyhow::Result<String> {
    let mut out = search_form(q);
    if q.is_empty() {
        return Ok(out);
    }
    let mut rows: Vec<EntryRow> = Vec::new();
    if let Ok(i) = q.parse::<u64>() {
        for l in &m.logs {
            if let Some(e) = m.store.entry(&l.name, i).await? {
                rows.push(e);
            }
        }
    } else {
        for k in keys_for(q) {
            for e in m.store.search(&k, RESULTS).await? {
                if !rows.contains(&e) {
                    rows.push(e);
                }
            }
        }
    }
    let looked_up = if q.parse::<u64>().is_ok() {
        "a log index".to_string()
    } else {
        let kinds: Vec<&str> = keys_for(q)
            .iter()
            .filter_map(|k| k.split(':').next())
            .map(|k| match k {
                "id" => "an identity (e-mail, URI, name)",
                "digest" => "an artifact digest",
                "fp" => "a key or certificate fingerprint",
                "uuid" => "an entry UUID",
                "serial" => "a certificate serial number",
                _ => "a value",
            })
            .collect();
        kinds.join(" or ")
    };
    out.push_str(&format!(
        "<p role=\"status\">{} {} found.</p><p class=\"muted\">Looked up as {}.</p>",
        rows.len(),
        if rows.len() == 1 { "entry" } else { "entries" },
        esc(&looked_up)
    ));
    if !rows.is_empty() {
        out.push_str(&entries_table("Matching entries, newest first", &rows));
    }
    Ok(out)
}

/// The bytes of the `file` field of a multipart/form-data body.
pub fn file_part<'a>(content_type: &str, body: &'a [u8]) -> Option<&'a [u8]> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))?
        .trim_matches('"');
    // RFC 2046: a boundary is 1 to 70 characters
    if !content_type.trim_start().starts_with("multipart/form-data")
        || boundary.is_empty()
        || boundary.len() > 70
    {
        return None;
    }
    let delim = format!("--{boundary}");
    let find = |hay: &[u8], needle: &[u8], from: usize| -> Option<usize> {
        hay.get(from..)?
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    let mut at = find(body, delim.as_bytes(), 0)?;
    loop {
        let start = at + delim.len();
        let headers_end = find(body, b"\r\n\r\n", start)?;
        let head = String::from_utf8_lossy(&body[start..headers_end]).to_ascii_lowercase();
        let data_start = headers_end + 4;
        let next = find(body, format!("\r\n{delim}").as_bytes(), data_start)?;
        if head.contains("name=\"file\"") {
            return Some(&body[data_start..next]);
        }
        at = next + 2;
    }
}

pub fn logs(m: &Monitor) -> String {
    let statuses = m.statuses.lock().map(|s| s.clone()).unwrap_or_default();
    let rows: Vec<Vec<String>> = m
        .logs
        .iter()
        .map(|l| {
            let s = statuses.get(&l.name).cloned().unwrap_or_default();
            let state = match &s.error {
                Some(e) => format!("<span class=\"bad\">{}</span>", esc(e)),
                None if !s.up => "<span class=\"muted\">not reached yet</span>".into(),
                None if s.verified == s.head => "<span class=\"ok\">verified</span>".into(),
                None => format!("catching up: {} behind", s.head.saturating_sub(s.read)),
            };
            vec![
                format!("<a href=\"/log/{n}\">{n}</a>", n = esc(&l.name)),
                esc(l.kind.label()),
                s.head.to_string(),
                s.verified.to_string(),
                state,
            ]
        })
        .collect();
    table(
        "Logs the monitor follows",
        &["Log", "Kind", "Signed size", "Verified size", "State"],
        &rows,
    )
}

pub async fn log(m: &Monitor, log: &LogConfig) -> anyhow::Result<String> {
    let s = m
        .statuses
        .lock()
        .ok()
        .and_then(|s| s.get(&log.name).cloned())
        .unwrap_or_default();
    let mut out = facts(&[
        ("Kind", esc(log.kind.label())),
        ("URL", format!("<code>{}</code>", esc(&log.url))),
        ("Signed tree size", s.head.to_string()),
        ("Entries read", s.read.to_string()),
        (
            "Verified up to",
            format!(
                "{} entries, {}",
                s.verified,
                when(Some(s.verified_at).filter(|t| *t > 0))
            ),
        ),
        (
            "State",
            match &s.error {
                Some(e) => format!("<span class=\"bad\">{}</span>", esc(e)),
                None => "<span class=\"ok\">following</span>".into(),
            },
        ),
    ]);
    out.push_str(
        "<h2>Checkpoint history</h2><p>The monitor rebuilt the tree from every entry and found \
each root below equal to the one the log signed, so each checkpoint is consistent with every \
earlier one.</p>",
    );
    let cps = m.store.checkpoints(&log.name, 50).await?;
    let rows: Vec<Vec<String>> = cps
        .iter()
        .map(|c| {
            vec![
                c.size.to_string(),
                format!("<code>{}</code>", hex::encode(c.root)),
                when(Some(c.seen_at)),
                format!(
                    "<details><summary>Signed note</summary><pre>{}</pre></details>",
                    esc(&c.note)
                ),
            ]
        })
        .collect();
    out.push_str(&if rows.is_empty() {
        "<p>None verified yet.</p>".to_string()
    } else {
        table(
            "Verified checkpoints, newest first",
            &["Size", "Root hash", "Verified at", "Checkpoint"],
            &rows,
        )
    });
    let alerts = m.store.alerts(Some(&log.name), 20).await?;
    if !alerts.is_empty() {
        out.push_str("<h2>Alerts</h2>");
        out.push_str(&alerts_table(&alerts));
    }
    out.push_str("<h2>Latest entries</h2>");
    out.push_str(&entries_table(
        "Latest entries",
        &m.store.latest(&log.name, 25).await?,
    ));
    Ok(out)
}

fn alerts_table(alerts: &[sigstack_storage::monitor::AlertRow]) -> String {
    let rows: Vec<Vec<String>> = alerts
        .iter()
        .map(|a| {
            vec![
                format!("<span class=\"bad\">{}</span>", esc(&a.kind)),
                format!("<a href=\"/log/{l}\">{l}</a>", l = esc(&a.log)),
                esc(&a.message),
                when(Some(a.at)),
                format!(
                    "<details><summary>Evidence</summary><pre>{}</pre></details>",
                    esc(&serde_json::from_str::<serde_json::Value>(&a.evidence)
                        .map(|v| serde_json::to_string_pretty(&v).unwrap_or_default())
                        .unwrap_or_else(|_| a.evidence.clone()))
                ),
            ]
        })
        .collect();
    table(
        "Alerts, newest first",
        &["Alert", "Log", "What", "When", "Evidence"],
        &rows,
    )
}

fn matches_table(matches: &[sigstack_storage::monitor::MatchRow]) -> String {
    let rows: Vec<Vec<String>> = matches
        .iter()
        .map(|x| {
            vec![
                format!(
                    "<a href=\"/log/{l}/entry/{i}\">{l} #{i}</a>",
                    l = esc(&x.log),
                    i = x.index
                ),
                esc(&x.matched_type),
                esc(&x.matched),
                esc(x.issuer.as_deref().unwrap_or("—")),
                when(x.time),
            ]
        })
        .collect();
    table(
        "Matches, newest first",
        &["Entry", "Matched", "Value", "Issuer", "Time"],
        &rows,
    )
}

pub async fn alerts(m: &Monitor) -> anyhow::Result<String> {
    let alerts = m.store.alerts(None, 100).await?;
    let mut out = String::from("<h2>Log alerts</h2>");
    out.push_str(&if alerts.is_empty() {
        "<p class=\"ok\">No fork, rollback or unverified checkpoint seen.</p>".to_string()
    } else {
        alerts_table(&alerts)
    });
    out.push_str("<h2>Watch-list matches</h2>");
    let matches = m.store.matches(100).await?;
    out.push_str(&if matches.is_empty() {
        "<p>None.</p>".to_string()
    } else {
        matches_table(&matches)
    });
    Ok(out)
}

pub async fn tuf(m: &Monitor) -> String {
    let Some(url) = &m.explorer.tuf_url else {
        return "<p>No TUF repository is configured for this explorer.</p>".into();
    };
    let base = url.trim_end_matches('/');
    let mut out = format!(
        "<p>Repository <code>{}</code>. Metadata as the repository serves it now; clients \
verify it from their own trusted root.</p>",
        esc(base)
    );
    let mut rows = Vec::new();
    let get = |path: String| {
        let http = m.http.clone();
        async move {
            let r = http.get(&path).send().await.ok()?;
            if !r.status().is_success() || r.content_length().is_some_and(|n| n > MAX_METADATA) {
                return None;
            }
            let body = r.bytes().await.ok()?;
            if body.len() as u64 > MAX_METADATA {
                return None;
            }
            serde_json::from_slice::<serde_json::Value>(&body).ok()
        }
    };
    // the newest root: follow N.root.json from 1 until one is missing
    let mut root = None;
    for n in 1..=MAX_ROOTS {
        match get(format!("{base}/{n}.root.json")).await {
            Some(v) => root = Some(v),
            None => break,
        }
    }
    let mut role_row = |name: &str, v: &serde_json::Value| {
        let signed = &v["signed"];
        let threshold = signed["roles"][name]["threshold"].as_u64().or_else(|| {
            root.as_ref()
                .and_then(|r| r["signed"]["roles"][name]["threshold"].as_u64())
        });
        rows.push(vec![
            esc(name),
            signed["version"]
                .as_u64()
                .map_or("—".into(), |v| v.to_string()),
            esc(signed["expires"].as_str().unwrap_or("—")),
            threshold.map_or("—".into(), |t| t.to_string()),
            v["signatures"].as_array().map_or(0, Vec::len).to_string(),
        ]);
    };
    let timestamp = get(format!("{base}/timestamp.json")).await;
    if let Some(r) = root.clone() {
        role_row("root", &r);
    }
    if let Some(t) = &timestamp {
        role_row("timestamp", t);
    }
    let snap_version = timestamp
        .as_ref()
        .and_then(|t| t["signed"]["meta"]["snapshot.json"]["version"].as_u64());
    let snapshot = match snap_version {
        Some(v) => get(format!("{base}/{v}.snapshot.json")).await,
        None => get(format!("{base}/snapshot.json")).await,
    };
    if let Some(s) = &snapshot {
        role_row("snapshot", s);
    }
    let targets_version = snapshot
        .as_ref()
        .and_then(|s| s["signed"]["meta"]["targets.json"]["version"].as_u64());
    let targets = match targets_version {
        Some(v) => get(format!("{base}/{v}.targets.json")).await,
        None => get(format!("{base}/targets.json")).await,
    };
    if let Some(t) = &targets {
        role_row("targets", t);
    }
    if rows.is_empty() {
        out.push_str("<p class=\"bad\" role=\"alert\">The repository could not be read.</p>");
        return out;
    }
    out.push_str(&table(
        "Roles",
        &["Role", "Version", "Expires", "Threshold", "Signatures"],
        &rows,
    ));
    if let Some(t) = targets {
        let rows: Vec<Vec<String>> = t["signed"]["targets"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, meta)| {
                vec![
                    format!("<code>{}</code>", esc(name)),
                    meta["length"]
                        .as_u64()
                        .map_or("—".into(), |v| v.to_string()),
                    format!(
                        "<code>{}</code>",
                        esc(meta["hashes"]["sha256"].as_str().unwrap_or(""))
                    ),
                ]
            })
            .collect();
        out.push_str("<h2>Targets</h2>");
        out.push_str(&table("Targets", &["Name", "Length", "SHA-256"], &rows));
    }
    out
}

pub async fn me(m: &Monitor, email: &str, csrf: &str) -> anyhow::Result<String> {
    let subscribed = m
        .subscriptions
        .read()
        .is_ok_and(|s| s.contains(&email.to_ascii_lowercase()));
    let mut out = format!(
        "<p>You are signed in as <strong>{}</strong>. Below is every entry the logs hold for this identity.</p>",
        esc(email)
    );
    let (action, label, state) = if subscribed {
        (
            "unsubscribe",
            "Stop e-mail alerts",
            "You get an e-mail for each new entry in your name.",
        )
    } else {
        (
            "subscribe",
            "E-mail me when something is signed in my name",
            "You get no e-mail alerts yet.",
        )
    };
    let mail = if m.smtp.is_some() {
        format!(
            "<div class=\"card\"><p>{state}</p><form method=\"post\" action=\"/me/subscription\">\
<input type=\"hidden\" name=\"csrf\" value=\"{c}\"><input type=\"hidden\" name=\"action\" value=\"{action}\">\
<button type=\"submit\">{label}</button></form></div>",
            c = esc(csrf)
        )
    } else {
        "<p class=\"muted\">E-mail alerts are not configured on this monitor.</p>".into()
    };
    out.push_str(&mail);
    let rows = m
        .store
        .search(&format!("id:{}", email.to_ascii_lowercase()), 500)
        .await?;
    out.push_str(&entries_table("Entries in your name, newest first", &rows));
    out.push_str(&format!(
        "<form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<button type=\"submit\" class=\"secondary\">Sign out</button></form>",
        esc(csrf)
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_search_looks_for() {
        assert_eq!(keys_for("Alice@Example.com"), vec!["id:alice@example.com"]);
        let h = "ab".repeat(32);
        assert_eq!(
            keys_for(&format!("sha256:{h}"))[0],
            format!("digest:sha256:{h}")
        );
        assert!(keys_for(&h).contains(&format!("uuid:{h}")));
    }

    #[test]
    fn the_file_of_a_form() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nno\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--XyZ--\r\n";
        assert_eq!(
            file_part("multipart/form-data; boundary=XyZ", body),
            Some(&b"hello"[..])
        );
        assert_eq!(file_part("text/plain", body), None);
        assert_eq!(
            file_part("multipart/form-data; boundary=XyZ", b"--XyZ\r\n"),
            None
        );
    }
}
