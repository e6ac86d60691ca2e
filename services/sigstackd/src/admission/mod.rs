//! `sigstackd admission`: a Kubernetes admission webhook that admits only images signed
//! as policy-controller's `ClusterImagePolicy` documents require. `POST /validate`
//! answers `AdmissionReview` v1 requests for Pods and the workloads that make them
//! (allow, deny with the reasons, or admit with warnings in `warn` mode); `POST /mutate`
//! pins tags to the digests they name now, as policy-controller's mutating webhook does.
//! Served over TLS only (the API server calls webhooks over HTTPS). Policies are read
//! from files (a ConfigMap mounted into the pod, or `kubectl get clusterimagepolicies -o
//! yaml` written to one) and reloaded when they change; the trust root comes from the
//! stack's TUF repository and is refreshed.

mod api;
mod cip;
mod decide;
mod review;

use anyhow::Context;
use decide::{Engine, NoMatch, OnFailure};
use sigstack::registry::RegistryArgs;
use sigstack::trust::Material;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct AdmissionArgs {
    /// Address to listen on (HTTPS).
    #[arg(
        long,
        env = "SIGSTACK_ADMISSION_LISTEN",
        default_value = "0.0.0.0:8443"
    )]
    listen: String,
    /// The webhook's TLS certificate chain (PEM), as the API server's caBundle verifies it.
    #[arg(
        long,
        env = "SIGSTACK_ADMISSION_TLS_CERT",
        required_unless_present = "check"
    )]
    tls_cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(
        long,
        env = "SIGSTACK_ADMISSION_TLS_KEY",
        required_unless_present = "check"
    )]
    tls_key: Option<PathBuf>,
    /// Only read the policies: print what each file holds, or why it is refused, and
    /// exit 1 if any is refused (to check policies before they go live).
    #[arg(long)]
    check: bool,
    /// ClusterImagePolicy documents: a YAML file or a directory of them (reloaded when
    /// they change; a broken change is refused and the policies in force stay).
    #[arg(long, env = "SIGSTACK_ADMISSION_POLICIES")]
    policies: PathBuf,
    /// The stack's TUF repository, for its trusted root (refreshed).
    #[arg(long, env = "SIGSTACK_ADMISSION_TUF_MIRROR")]
    tuf_mirror: Option<String>,
    /// The TUF root to start from (root.json), with --tuf-mirror.
    #[arg(long, env = "SIGSTACK_ADMISSION_TUF_ROOT")]
    tuf_root: Option<PathBuf>,
    /// A trusted root file instead of TUF.
    #[arg(long, env = "SIGSTACK_ADMISSION_TRUSTED_ROOT")]
    trusted_root: Option<PathBuf>,
    /// Where the Secrets that policies name with `secretRef` are mounted (DIR/NAME/, one
    /// entry each, as policy-controller requires).
    #[arg(long, env = "SIGSTACK_ADMISSION_SECRETS_DIR")]
    secrets_dir: Option<PathBuf>,
    /// A trust root a policy names with `trustRootRef` (NAME=trusted_root.json; repeatable).
    #[arg(long = "trust-root", value_parser = name_path)]
    trust_roots: Vec<(String, PathBuf)>,
    /// What happens to images no ClusterImagePolicy matches (policy-controller's
    /// no-match-policy).
    #[arg(
        long,
        env = "SIGSTACK_ADMISSION_NO_MATCH_POLICY",
        value_enum,
        default_value = "deny"
    )]
    no_match_policy: NoMatch,
    /// When a registry cannot be read: `closed` denies, saying why; `open` admits with a
    /// warning.
    #[arg(
        long,
        env = "SIGSTACK_ADMISSION_REGISTRY_FAILURE",
        value_enum,
        default_value = "closed"
    )]
    registry_failure: OnFailure,
    /// How long a decision is kept for a digest (seconds).
    #[arg(long, env = "SIGSTACK_ADMISSION_CACHE_SECONDS", default_value = "300")]
    cache_seconds: u64,
    /// How long one review may take before it is answered as a failure (seconds; keep it
    /// under the webhook configuration's timeoutSeconds).
    #[arg(long, env = "SIGSTACK_ADMISSION_TIMEOUT_SECONDS", default_value = "20")]
    timeout_seconds: u64,
    /// How often the trusted root is fetched again from TUF (seconds).
    #[arg(
        long,
        env = "SIGSTACK_ADMISSION_TRUST_REFRESH_SECONDS",
        default_value = "300"
    )]
    trust_refresh_seconds: u64,
    #[command(flatten)]
    registry: RegistryArgs,
}

fn name_path(s: &str) -> Result<(String, PathBuf), String> {
    s.split_once('=')
        .filter(|(n, p)| !n.is_empty() && !p.is_empty())
        .map(|(n, p)| (n.to_string(), PathBuf::from(p)))
        .ok_or_else(|| format!("{s:?} is not NAME=FILE"))
}

pub(crate) struct App {
    engine: Engine,
    timeout: Duration,
}

async fn load_trust(a: &AdmissionArgs, http: &reqwest::Client) -> anyhow::Result<Material> {
    match (&a.trusted_root, &a.tuf_mirror) {
        (Some(p), _) => {
            sigstack::trust::TrustArgs {
                trusted_root: Some(p.clone()),
                ..Default::default()
            }
            .load(http)
            .await
        }
        (None, Some(mirror)) => {
            let tuf = sigstack::trust::Tuf::new(mirror);
            let root = match &a.tuf_root {
                Some(p) => {
                    Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?)
                }
                None => None,
            };
            let t = tuf.initialize(http, root.as_deref()).await?;
            Ok(Material {
                trusted_root: serde_json::from_slice(&t.trusted_root)
                    .context("the repository's trusted_root.json")?,
                signing_config: None,
                source: mirror.clone(),
            })
        }
        (None, None) => anyhow::bail!(
            "give the stack's TUF repository (--tuf-mirror URL --tuf-root root.json) or --trusted-root FILE"
        ),
    }
}

/// Reads every policy file (and the Secrets they name).
fn read_policies(path: &Path, secrets: Option<&Path>) -> anyhow::Result<Vec<cip::Cip>> {
    let mut cips = Vec::new();
    for f in cip::files(path)? {
        let text =
            std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
        cips.extend(cip::parse(&text, &f.display().to_string(), secrets)?);
    }
    Ok(cips)
}

/// Visible entries of a directory, sorted (a Secret volume's bookkeeping is hidden).
fn visible(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// What the policies are read from — the policy files and the mounted Secrets, names and
/// contents — to see whether anything changed.
fn fingerprint(path: &Path, secrets: Option<&Path>) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut add = |f: &Path| {
        seen.extend_from_slice(f.display().to_string().as_bytes());
        seen.extend_from_slice(&sigstack_crypto::sha256(
            &std::fs::read(f).unwrap_or_default(),
        ));
    };
    for f in cip::files(path).unwrap_or_default() {
        add(&f);
    }
    for d in secrets.map(visible).unwrap_or_default() {
        for f in visible(&d) {
            add(&f);
        }
    }
    seen
}

/// `--check`: each policy file read on its own.
fn check_files(path: &Path, secrets: Option<&Path>) -> anyhow::Result<()> {
    let mut refused = 0;
    for f in cip::files(path)? {
        let text =
            std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
        match cip::parse(&text, &f.display().to_string(), secrets) {
            Ok(cips) => println!(
                "{}: ok: {}",
                f.display(),
                cips.iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(e) => {
                refused += 1;
                println!("{}: refused: {e:#}", f.display());
            }
        }
    }
    if refused > 0 {
        anyhow::bail!("{refused} policy file(s) refused");
    }
    Ok(())
}

pub async fn run(a: AdmissionArgs) -> anyhow::Result<()> {
    if a.check {
        return check_files(&a.policies, a.secrets_dir.as_deref());
    }
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let trust = load_trust(&a, &http).await?;
    let mut roots = HashMap::new();
    for (name, p) in &a.trust_roots {
        let m = sigstack::trust::TrustArgs {
            trusted_root: Some(p.clone()),
            ..Default::default()
        }
        .load(&http)
        .await
        .with_context(|| format!("--trust-root {name}"))?;
        roots.insert(name.clone(), m);
    }
    let secrets = a.secrets_dir.clone();
    let mut seen = fingerprint(&a.policies, secrets.as_deref());
    let cips = read_policies(&a.policies, secrets.as_deref())?;
    if cips.is_empty() {
        tracing::warn!(path = %a.policies.display(), "no ClusterImagePolicy documents: every image is decided by --no-match-policy");
    }
    tracing::info!(policies = cips.len(), trust = %trust.source, "admission policies loaded");
    let engine = Engine::new(
        cips,
        trust,
        roots,
        a.registry.clone(),
        Duration::from_secs(a.cache_seconds),
        a.no_match_policy,
        a.registry_failure,
    );
    let app = Arc::new(App {
        engine,
        timeout: Duration::from_secs(a.timeout_seconds.max(1)),
    });
    // policies: reloaded when a file changes; a broken change keeps the old set
    {
        let app = app.clone();
        let path = a.policies.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let now = fingerprint(&path, secrets.as_deref());
                if now == seen {
                    continue;
                }
                seen = now;
                match read_policies(&path, secrets.as_deref()) {
                    Ok(cips) => {
                        tracing::info!(policies = cips.len(), "admission policies reloaded");
                        app.engine.set_policies(cips);
                    }
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "the changed policies do not load; the previous ones stay in force");
                    }
                }
            }
        });
    }
    if a.tuf_mirror.is_some() && a.trusted_root.is_none() {
        let app = app.clone();
        let every = Duration::from_secs(a.trust_refresh_seconds.max(10));
        let mirror = a.tuf_mirror.clone().unwrap_or_default();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let t = sigstack::trust::Tuf::new(&mirror)
                    .targets(&http, false)
                    .await;
                match t.and_then(|t| {
                    Ok(Material {
                        trusted_root: serde_json::from_slice(&t.trusted_root)?,
                        signing_config: None,
                        source: t.source,
                    })
                }) {
                    Ok(m) => app.engine.set_trust(m),
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "refreshing the trusted root failed; the current one stays")
                    }
                }
            }
        });
    }
    let tls = tls_config(&a)?;
    let router = api::routes().with_state(app);
    let listener = tokio::net::TcpListener::bind(&a.listen)
        .await
        .with_context(|| format!("listening on {}", a.listen))?;
    tracing::info!(addr = %listener.local_addr()?, "admission webhook serving (TLS)");
    sigstack_http::serve_with(
        listener,
        router,
        sigstack_http::shutdown_signal(),
        Some(tls),
    )
    .await?;
    Ok(())
}

fn tls_config(a: &AdmissionArgs) -> anyhow::Result<sigstack_http::tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (Some(cert), Some(key)) = (&a.tls_cert, &a.tls_key) else {
        anyhow::bail!("the webhook is served over TLS only: give --tls-cert and --tls-key");
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: not PEM certificates", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{} holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{}: no PEM private key", key.display()))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not go together")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(sigstack_http::tokio_rustls::TlsAcceptor::from(Arc::new(
        config,
    )))
}

pub use api::document;
