//! `sigstackd doctor`: checks a running stack from the outside, as a client sees it.
//! It starts from the TUF root clients are given, refreshes the repository, and then
//! holds every service to what the trust files it published say: the CA serves the
//! chain the trusted root names and can still issue, the log's key is the trusted one
//! and its checkpoint verifies, the CT log's signed tree head verifies, the identity
//! provider's discovery names itself, the timestamp authority stamps with a trusted
//! certificate, and each service is ready.

mod logs;
mod rollback;
mod tsa;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sigstack_crypto::KeyMaterial;
use sigstack_tuf::client::{Fetch, Updater};
use sigstack_tuf::metadata::seconds_left;
use sigstack_types::trust::{SigningConfig, TrustedRoot};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args)]
pub struct DoctorArgs {
    /// The stack's TUF repository (the mirror clients bootstrap from).
    #[arg(long, required_unless_present = "stack")]
    tuf_url: Option<String>,
    /// The initial root clients are given (1.root.json).
    #[arg(long, required_unless_present = "stack")]
    root: Option<PathBuf>,
    /// Or a stack.json (written by `sigstackd dev` and `sigstackd init`) naming both.
    #[arg(long, conflicts_with_all = ["tuf_url", "root"])]
    stack: Option<PathBuf>,
    /// Warn when a certificate or a TUF role expires within this many days.
    #[arg(long, default_value_t = 30)]
    warn_days: i64,
    /// Print the findings as JSON.
    #[arg(long)]
    json: bool,
    /// A TUF client's metadata directory (its root.json, timestamp.json, …): fail when
    /// the repository serves older versions than it holds (a restore from an older
    /// backup).
    #[arg(long, value_name = "DIR")]
    client_state: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warning,
    Failed,
}

#[derive(serde::Serialize)]
struct Finding {
    status: Status,
    part: String,
    message: String,
}

#[derive(Default)]
struct Report(Vec<Finding>);

impl Report {
    fn add(&mut self, status: Status, part: &str, message: impl Into<String>) {
        self.0.push(Finding {
            status,
            part: part.into(),
            message: message.into(),
        });
    }
    fn ok(&mut self, part: &str, m: impl Into<String>) {
        self.add(Status::Ok, part, m)
    }
    fn fail(&mut self, part: &str, m: impl Into<String>) {
        self.add(Status::Failed, part, m)
    }
    /// Ok, or a warning when `left` seconds is under the horizon, or a failure when
    /// under `min`.
    fn horizon(&mut self, part: &str, what: &str, left: i64, warn: i64, min: i64) {
        let m = format!("{what} {}", in_words(left));
        if left < min {
            self.fail(part, m)
        } else if left < warn {
            self.add(Status::Warning, part, m)
        } else {
            self.ok(part, m)
        }
    }
}

fn in_words(secs: i64) -> String {
    if secs <= 0 {
        return format!("expired {} ago", span(-secs));
    }
    format!("expires in {}", span(secs))
}

fn span(s: i64) -> String {
    match s {
        s if s >= 2 * 86_400 => format!("{} days", s / 86_400),
        s if s >= 7_200 => format!("{} hours", s / 3_600),
        s if s >= 120 => format!("{} minutes", s / 60),
        s => format!("{s} s"),
    }
}

struct HttpFetch {
    http: reqwest::Client,
    base: String,
}

impl Fetch for HttpFetch {
    async fn fetch(
        &self,
        path: &str,
        max_len: u64,
    ) -> Result<Option<Vec<u8>>, sigstack_tuf::TufError> {
        let err = |msg: String| sigstack_tuf::TufError::Fetch {
            what: format!("{}/{path}", self.base),
            msg,
        };
        let res = self
            .http
            .get(format!("{}/{path}", self.base))
            .send()
            .await
            .map_err(|e| err(causes(&e)))?;
        if matches!(res.status().as_u16(), 403 | 404) {
            return Ok(None);
        }
        if !res.status().is_success() {
            return Err(err(format!("HTTP {}", res.status())));
        }
        let body = res.bytes().await.map_err(|e| err(causes(&e)))?;
        if body.len() as u64 > max_len {
            return Err(err(format!("more than {max_len} bytes")));
        }
        Ok(Some(body.to_vec()))
    }
}

/// An error with its causes ("error sending request: ... Connection refused").
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(&format!(": {s}"));
        src = s.source();
    }
    out
}

use crate::trust::get_bytes as get;

async fn get_json(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    serde_json::from_slice(&get(http, url).await?).with_context(|| format!("GET {url}: not JSON"))
}

fn now() -> i64 {
    crate::sequencer::unix_now()
}

fn current(end: &Option<String>) -> bool {
    end.as_deref().is_none_or(|e| seconds_left(e, now()) > 0)
}

fn raw(b64: &str) -> anyhow::Result<Vec<u8>> {
    Ok(STANDARD.decode(b64)?)
}

pub async fn run(a: DoctorArgs) -> anyhow::Result<bool> {
    let (tuf_url, root_path) = match &a.stack {
        Some(p) => {
            let s: Value = serde_json::from_slice(
                &std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
            )?;
            let field = |ptr: &str| {
                s.pointer(ptr)
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .with_context(|| format!("{} has no {ptr}", p.display()))
            };
            (
                field("/services/tuf/url")?,
                PathBuf::from(field("/services/tuf/root")?),
            )
        }
        None => (
            a.tuf_url.clone().context("--tuf-url is required")?,
            a.root.clone().context("--root is required")?,
        ),
    };
    crate::settings::check_flag_url("--tuf-url", &tuf_url)?;
    let tuf_url = tuf_url.trim_end_matches('/').to_string();
    let root = std::fs::read(&root_path)
        .with_context(|| format!("reading the TUF root {}", root_path.display()))?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut r = Report::default();
    check(
        &http,
        &tuf_url,
        &root,
        (a.warn_days * 86_400, a.client_state.as_deref()),
        &mut r,
    )
    .await;

    let failed = r.0.iter().any(|f| f.status == Status::Failed);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "tuf_url": tuf_url, "healthy": !failed, "findings": r.0,
            }))?
        );
    } else {
        println!("sigstackd doctor: the stack behind {tuf_url}");
        for f in &r.0 {
            let tag = match f.status {
                Status::Ok => "ok  ",
                Status::Warning => "WARN",
                Status::Failed => "FAIL",
            };
            println!("  {tag}  {:<6} {}", f.part, f.message);
        }
        let warnings = r.0.iter().filter(|f| f.status == Status::Warning).count();
        let failures = r.0.iter().filter(|f| f.status == Status::Failed).count();
        println!(
            "{} checks: {failures} failed, {warnings} warnings",
            r.0.len()
        );
    }
    Ok(!failed)
}

async fn check(
    http: &reqwest::Client,
    tuf_url: &str,
    root: &[u8],
    (warn, client_state): (i64, Option<&std::path::Path>),
    r: &mut Report,
) {
    // --- TUF: the client workflow from the given root
    let fetch = HttpFetch {
        http: http.clone(),
        base: tuf_url.to_string(),
    };
    let mut up = match Updater::new(fetch, root) {
        Ok(u) => u,
        Err(e) => return r.fail("tuf", format!("the given root does not verify: {e}")),
    };
    if let Err(e) = up.refresh(now()).await {
        let hint = match e {
            sigstack_tuf::TufError::Threshold { .. } => {
                " (is the root file this repository's root?)"
            }
            _ => "",
        };
        return r.fail("tuf", format!("refresh failed: {e}{hint}"));
    }
    let t = up.trusted().clone();
    if let Some(dir) = client_state {
        rollback::check(dir, &t, r);
    }
    r.ok(
        "tuf",
        format!(
            "metadata verifies from the given root (root v{})",
            t.root.1.version
        ),
    );
    r.horizon(
        "tuf",
        "root",
        seconds_left(&t.root.1.expires, now()),
        warn,
        0,
    );
    if let Some((_, targets)) = &t.targets {
        r.horizon(
            "tuf",
            "targets",
            seconds_left(&targets.expires, now()),
            warn,
            0,
        );
    }
    if let Some((_, snapshot)) = &t.snapshot {
        // re-signed online like the timestamp
        r.horizon(
            "tuf",
            "snapshot",
            seconds_left(&snapshot.expires, now()),
            3_600,
            0,
        );
    }
    if let Some((_, ts)) = &t.timestamp {
        // re-signed at half-life: under an hour left means the service is not re-signing
        r.horizon(
            "tuf",
            "timestamp",
            seconds_left(&ts.expires, now()),
            3_600,
            0,
        );
    }
    match get_json(http, &format!("{tuf_url}/healthz")).await {
        Ok(v) if v["status"] == "ok" => r.ok("tuf", "service healthy"),
        Ok(v) if v["status"] == "expired" => r.fail("tuf", "the service reports expired metadata"),
        Ok(v) => r.add(
            Status::Warning,
            "tuf",
            format!("service reports {}", v["status"]),
        ),
        Err(e) => r.fail("tuf", format!("health: {e:#}")),
    }
    let trusted_root: TrustedRoot = match up.download("trusted_root.json").await {
        Ok(b) => match serde_json::from_slice(&b) {
            Ok(t) => t,
            Err(e) => return r.fail("tuf", format!("trusted_root.json: {e}")),
        },
        Err(e) => return r.fail("tuf", format!("target trusted_root.json: {e}")),
    };
    let signing: Option<SigningConfig> = match up.download("signing_config.v0.2.json").await {
        Ok(b) => match serde_json::from_slice(&b) {
            Ok(s) => Some(s),
            Err(e) => {
                r.fail("tuf", format!("signing_config.v0.2.json: {e}"));
                None
            }
        },
        Err(e) => {
            r.add(
                Status::Warning,
                "tuf",
                format!("no signing config ({e}): clients need service URLs by hand"),
            );
            None
        }
    };
    r.ok(
        "tuf",
        format!(
            "trusted root: {} CA(s), {} log(s), {} CT log(s), {} timestamp authorities",
            trusted_root.certificate_authorities.len(),
            trusted_root.tlogs.len(),
            trusted_root.ctlogs.len(),
            trusted_root.timestamp_authorities.len()
        ),
    );

    let live = |s: &Vec<sigstack_types::trust::Service>| -> Vec<String> {
        s.iter()
            .filter(|s| current(&s.valid_for.end))
            .map(|s| s.url.trim_end_matches('/').to_string())
            .collect()
    };
    let (ca_urls, log_urls, oidc_urls, tsa_urls) = match &signing {
        Some(s) => (
            live(&s.ca_urls),
            live(&s.rekor_tlog_urls),
            live(&s.oidc_urls),
            live(&s.tsa_urls),
        ),
        None => Default::default(),
    };
    for url in &tsa_urls {
        tsa::check_tsa(http, url, &trusted_root, warn, r).await;
    }
    if ca_urls.is_empty() && signing.is_some() {
        r.fail("ca", "the signing config names no current CA");
    }
    for url in &ca_urls {
        check_ca(http, url, &trusted_root, warn, r).await;
    }
    if log_urls.is_empty() && signing.is_some() {
        r.fail(
            "log",
            "the signing config names no current transparency log",
        );
    }
    for url in &log_urls {
        logs::check_log(http, url, &trusted_root, r).await;
    }
    let ctlogs: Vec<_> = trusted_root
        .ctlogs
        .iter()
        .filter(|c| current(&c.public_key.valid_for.end))
        .collect();
    if ctlogs.is_empty() {
        r.fail("ctlog", "the trusted root names no current CT log");
    }
    // several current keys at one URL: a CT log's successor published before the CA
    // switches to it (or the old one not yet end-dated): one of them must sign
    let mut by_url: Vec<(&str, Vec<_>)> = Vec::new();
    for c in ctlogs {
        let url = c.base_url.trim_end_matches('/');
        match by_url.iter_mut().find(|(u, _)| *u == url) {
            Some((_, keys)) => keys.push(c),
            None => by_url.push((url, vec![c])),
        }
    }
    for (url, instances) in by_url {
        logs::check_ctlog(http, url, &instances, r).await;
    }
    for url in &oidc_urls {
        match get_json(http, &format!("{url}/.well-known/openid-configuration")).await {
            Ok(d) if d["issuer"].as_str().map(|i| i.trim_end_matches('/')) == Some(url) => {
                match d["jwks_uri"].as_str() {
                    Some(j) => match get_json(http, j).await {
                        Ok(k) if k["keys"].as_array().is_some_and(|k| !k.is_empty()) => {
                            r.ok("oidc", format!("{url}: discovery and signing keys served"))
                        }
                        Ok(_) => r.fail("oidc", format!("{url}: the key set is empty")),
                        Err(e) => r.fail("oidc", format!("{url}: keys: {e:#}")),
                    },
                    None => r.fail("oidc", format!("{url}: discovery has no jwks_uri")),
                }
            }
            Ok(d) => r.fail(
                "oidc",
                format!("{url}: discovery names issuer {}", d["issuer"]),
            ),
            Err(e) => r.fail("oidc", format!("{url}: {e:#}")),
        }
    }
}

async fn check_ca(
    http: &reqwest::Client,
    url: &str,
    trusted: &TrustedRoot,
    warn: i64,
    r: &mut Report,
) {
    let served = match get_json(http, &format!("{url}/api/v2/trustBundle")).await {
        Ok(v) => v,
        Err(e) => return r.fail("ca", format!("{url}: {e:#}")),
    };
    let pem: String = served["chains"][0]["certificates"]
        .as_array()
        .map(|c| c.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let chain = match KeyMaterial::from_pem(pem.as_bytes()) {
        Ok(KeyMaterial::Certificates(c)) => c,
        _ => {
            return r.fail(
                "ca",
                format!("{url}: the trust bundle holds no certificates"),
            );
        }
    };
    let published = trusted
        .certificate_authorities
        .iter()
        .filter(|ca| current(&ca.valid_for.end))
        .any(|ca| {
            ca.cert_chain.certificates.len() == chain.len()
                && ca
                    .cert_chain
                    .certificates
                    .iter()
                    .zip(&chain)
                    .all(|(a, b)| raw(&a.raw_bytes).is_ok_and(|d| d == b.der()))
        });
    if published {
        r.ok(
            "ca",
            format!("{url}: serves the chain the trusted root names"),
        );
    } else {
        r.fail(
            "ca",
            format!(
                "{url}: serves a chain the trusted root does not name (republish the trust files)"
            ),
        );
    }
    let not_after = chain
        .iter()
        .map(|c| c.validity().1 as i64)
        .min()
        .unwrap_or(0);
    // a certificate lives 10 minutes and never outlives its chain
    r.horizon("ca", "chain", not_after - now(), warn, 600);
    if let Err(e) = get(http, &format!("{url}/readyz")).await {
        r.fail("ca", format!("{url}: not ready: {e:#}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horizons_grade() {
        let mut r = Report::default();
        r.horizon("x", "a", 100 * 86_400, 30 * 86_400, 0);
        r.horizon("x", "b", 86_400, 30 * 86_400, 0);
        r.horizon("x", "c", -5, 30 * 86_400, 0);
        let s: Vec<Status> = r.0.iter().map(|f| f.status).collect();
        assert!(s == [Status::Ok, Status::Warning, Status::Failed]);
        assert_eq!(r.0[2].message, "c expired 5 s ago");
        assert_eq!(r.0[0].message, "a expires in 100 days");
    }
}
