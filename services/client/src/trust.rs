//! Where the client's trust comes from: a TUF repository (the public-good or staging
//! instance, whose TUF roots ship inside the binary, or a private one set up with
//! `sigstack initialize --mirror URL --root FILE`), refreshed over HTTP and cached on
//! disk under `$TUF_ROOT` (default `~/.sigstore/root`, as cosign); or files given on the
//! command line (`--trusted-root`, `--trust-config`, `--signing-config`); with cosign's
//! legacy environment overrides for single keys and CA certificates on top.

use anyhow::{Context, bail};
use serde_json::Value;
use sigstack_tuf::TufError;
use sigstack_tuf::client::Updater;
use sigstack_types::trust::{Service, SigningConfig, TrustedRoot};
use std::path::{Path, PathBuf};

mod env;
pub use env::apply_env_overrides;

pub const PUBLIC_GOOD: &str = "https://tuf-repo-cdn.sigstore.dev";
pub const STAGING: &str = "https://tuf-repo-cdn.sigstage.dev";

/// Trust shipped in the binary for an instance: its TUF root (the starting point of
/// every refresh) and the targets as of the release (used when the repository cannot be
/// reached and nothing is cached).
pub struct Embedded {
    pub root: &'static [u8],
    pub trusted_root: &'static [u8],
    pub signing_config: &'static [u8],
}

pub fn embedded(mirror: &str) -> Option<Embedded> {
    match mirror.trim_end_matches('/') {
        PUBLIC_GOOD => Some(Embedded {
            root: include_bytes!("../trust/public-good/root.json"),
            trusted_root: include_bytes!("../trust/public-good/trusted_root.json"),
            signing_config: include_bytes!("../trust/public-good/signing_config.v0.2.json"),
        }),
        STAGING => Some(Embedded {
            root: include_bytes!("../trust/staging/root.json"),
            trusted_root: include_bytes!("../trust/staging/trusted_root.json"),
            signing_config: include_bytes!("../trust/staging/signing_config.v0.2.json"),
        }),
        _ => None,
    }
}

/// How long fetched TUF metadata is used before the next refresh.
const REFRESH_AFTER: i64 = 24 * 3600;
const TRUSTED_ROOT: &str = "trusted_root.json";
const SIGNING_CONFIG: &str = "signing_config.v0.2.json";

/// The cache directory: `$TUF_ROOT`, else `~/.sigstore/root`.
pub fn cache_root() -> PathBuf {
    if let Some(d) = std::env::var_os("TUF_ROOT").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".sigstore").join("root")
}

/// The cache directory of a TUF repository, named as sigstore-go names it (scheme
/// dropped, `/` and `:` made `-`, lower case), so cosign finds what we cached and we find
/// what it cached.
pub(crate) fn repository_dir_name(url: &str) -> String {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    rest.replace(['/', ':'], "-").to_lowercase()
}

/// A file or directory name for a URL or log origin (every byte outside `[A-Za-z0-9.-]`
/// %-escaped).
pub(crate) fn file_name_for(url: &str) -> String {
    url.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader never
/// sees half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

fn read_opt(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

pub use sigstack_tuf::http::{HttpFetch, mirror_dir};

/// The remote a user chose with `initialize` (`remote.json` in the cache).
#[derive(serde::Serialize, serde::Deserialize)]
struct Remote {
    mirror: String,
}

/// The mirror in use: `TUF_MIRROR`, else the one `initialize` recorded, else public good.
pub fn default_mirror() -> String {
    if let Ok(m) = std::env::var("TUF_MIRROR")
        && !m.is_empty()
    {
        return m;
    }
    read_opt(&cache_root().join("remote.json"))
        .and_then(|b| serde_json::from_slice::<Remote>(&b).ok())
        .map(|r| r.mirror)
        .unwrap_or_else(|| PUBLIC_GOOD.to_string())
}

/// The targets a client needs from a TUF repository.
pub struct TufTargets {
    pub trusted_root: Vec<u8>,
    pub signing_config: Option<Vec<u8>>,
    /// Where they came from, for messages.
    pub source: String,
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A TUF repository and its on-disk cache.
pub struct Tuf {
    pub mirror: String,
    dir: PathBuf,
}

impl Tuf {
    pub fn new(mirror: &str) -> Self {
        let mirror = mirror.trim_end_matches('/').to_string();
        let dir = cache_root().join(repository_dir_name(&mirror));
        Self { mirror, dir }
    }

    fn target_path(&self, name: &str) -> PathBuf {
        self.dir.join("targets").join(name)
    }

    /// The root to start from: the newest cached one (also one cached by an older
    /// sigstack under its former directory name), else the embedded one.
    fn start_root(&self) -> anyhow::Result<Vec<u8>> {
        for dir in [
            self.dir.clone(),
            cache_root().join(file_name_for(&self.mirror)),
        ] {
            if let Some(b) = read_opt(&dir.join("root.json")) {
                return Ok(b);
            }
        }
        match embedded(&self.mirror) {
            Some(e) => Ok(e.root.to_vec()),
            None => bail!(
                "no trusted TUF root for {}: run `sigstack initialize --mirror {} --root ROOT.json` first",
                self.mirror,
                self.mirror
            ),
        }
    }

    fn cached_targets(&self) -> Option<TufTargets> {
        Some(TufTargets {
            trusted_root: read_opt(&self.target_path(TRUSTED_ROOT))?,
            signing_config: read_opt(&self.target_path(SIGNING_CONFIG)),
            source: format!("the cached TUF repository {}", self.mirror),
        })
    }

    /// Refreshes from the repository, trusting `root` (or the cached/embedded root), and
    /// caches the verified metadata and targets.
    pub async fn refresh(
        &self,
        http: &reqwest::Client,
        root: Option<&[u8]>,
    ) -> anyhow::Result<TufTargets> {
        let fetch = HttpFetch {
            http: http.clone(),
            base: self.mirror.clone(),
        };
        let start = match root {
            Some(r) => r.to_vec(),
            None => self.start_root()?,
        };
        let mut up = Updater::new(fetch, &start).context("the trusted TUF root is not valid")?;
        if root.is_none() {
            up = up
                .with_cached(
                    read_opt(&self.dir.join("timestamp.json")).as_deref(),
                    read_opt(&self.dir.join("snapshot.json")).as_deref(),
                )
                .context("the cached TUF metadata does not verify")?;
        }
        up.refresh(now()).await.map_err(|e| {
            // a copy on a disk goes stale: say when, and what brings a fresh one
            let stale = match (&e, mirror_dir(&self.mirror)) {
                (TufError::Expired { role, expires }, Some(dir)) => format!(
                    "; the copy of the repository in {} is stale ({role} metadata expired at {expires}): export the repository again (`sigstackd tuf export --out …`, or a whole kit with `sigstackd airgap export`) and carry the new copy over",
                    dir.display()
                ),
                (TufError::Expired { role, expires }, None) => format!(
                    "; the repository serves stale metadata ({role} expired at {expires}): its operator must have it re-signed, or, if it is a copy carried across an air gap, carry a fresh kit over (`sigstackd airgap export` on the connected side, `sigstackd airgap import` here)"
                ),
                _ => String::new(),
            };
            anyhow::Error::new(e).context(format!(
                "updating from the TUF repository {}{stale}",
                self.mirror
            ))
        })?;
        let trusted_root = up
            .download(TRUSTED_ROOT)
            .await
            .with_context(|| format!("{TRUSTED_ROOT} from {}", self.mirror))?;
        let signing_config = match up.target(SIGNING_CONFIG) {
            Some(_) => Some(up.download(SIGNING_CONFIG).await?),
            None => None,
        };
        let t = up.trusted();
        write_atomic(&self.dir.join("root.json"), &t.root.0)?;
        for (name, part) in [
            ("timestamp.json", t.timestamp.as_ref().map(|x| &x.0)),
            ("snapshot.json", t.snapshot.as_ref().map(|x| &x.0)),
            ("targets.json", t.targets.as_ref().map(|x| &x.0)),
        ] {
            if let Some(b) = part {
                write_atomic(&self.dir.join(name), b)?;
            }
        }
        write_atomic(&self.target_path(TRUSTED_ROOT), &trusted_root)?;
        match &signing_config {
            Some(s) => write_atomic(&self.target_path(SIGNING_CONFIG), s)?,
            None => {
                let _ = std::fs::remove_file(self.target_path(SIGNING_CONFIG));
            }
        }
        write_atomic(&self.dir.join("refreshed"), now().to_string().as_bytes())?;
        Ok(TufTargets {
            trusted_root,
            signing_config,
            source: format!("the TUF repository {}", self.mirror),
        })
    }

    /// Whether the cached timestamp has not expired (a cache past it is stale: TUF's
    /// protection against freeze attacks).
    fn timestamp_valid(&self) -> bool {
        read_opt(&self.dir.join("timestamp.json"))
            .and_then(|b| sigstack_tuf::Envelope::parse(&b, "timestamp").ok())
            .and_then(|e| e.role::<sigstack_tuf::metadata::TimestampRole>().ok())
            .is_some_and(|t| !sigstack_tuf::metadata::is_expired(&t.0.expires, now()))
    }

    fn fresh(&self) -> bool {
        let refreshed = read_opt(&self.dir.join("refreshed"))
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.trim().parse::<i64>().ok());
        self.timestamp_valid() && refreshed.is_some_and(|r| now() - r < REFRESH_AFTER)
    }

    /// The targets: the cache while fresh, else a refresh. When the repository cannot be
    /// reached, an unexpired cache with a loud warning; the trust built into the binary
    /// only with `--offline`.
    /// Security failures (bad signatures, rollbacks, expiry) are never papered over.
    pub async fn targets(
        &self,
        http: &reqwest::Client,
        offline: bool,
    ) -> anyhow::Result<TufTargets> {
        if offline || self.fresh() {
            if let Some(t) = self.cached_targets() {
                return Ok(t);
            }
            if offline {
                return self.embedded_targets().with_context(|| {
                    format!(
                        "--offline: nothing is cached for {}; run `sigstack initialize` while online",
                        self.mirror
                    )
                });
            }
        }
        match self.refresh(http, None).await {
            Ok(t) => Ok(t),
            Err(e) if unreachable(&e) => {
                // an unexpired cache, else the trust shipped in the binary (public good and
                // staging only); an expired cache is never used (freeze attacks)
                let cached = self
                    .timestamp_valid()
                    .then(|| self.cached_targets())
                    .flatten();
                match cached {
                    Some(t) => {
                        eprintln!(
                            "WARNING: the TUF repository cannot be reached ({e:#}); using {}, whose timestamp has not expired. Revoked keys are not seen until the repository answers again.",
                            t.source
                        );
                        Ok(t)
                    }
                    // the trust built into the binary may be older than what the
                    // repository has since published: only on request
                    None if self.embedded_targets().is_ok() => Err(e.context(format!(
                        "the TUF repository {} cannot be reached and nothing fresh is cached: refusing to fall back to the trust built into sigstack, which may be out of date (pass --offline to use it anyway)",
                        self.mirror
                    ))),
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    fn embedded_targets(&self) -> anyhow::Result<TufTargets> {
        let e = embedded(&self.mirror).context("no trust is built in for this repository")?;
        Ok(TufTargets {
            trusted_root: e.trusted_root.to_vec(),
            signing_config: Some(e.signing_config.to_vec()),
            source: format!("the trust built into sigstack for {}", self.mirror),
        })
    }

    /// `initialize`: trust `root` (or the embedded root) for this mirror, fetch and cache
    /// everything, and make it the default remote.
    pub async fn initialize(
        &self,
        http: &reqwest::Client,
        root: Option<&[u8]>,
    ) -> anyhow::Result<TufTargets> {
        // a new trust anchor replaces what was cached for this mirror only once the
        // repository has verified under it (refresh writes after every check passed)
        let root = match root {
            Some(r) => Some(r.to_vec()),
            None => Some(self.start_root()?),
        };
        let t = self.refresh(http, root.as_deref()).await?;
        write_atomic(
            &cache_root().join("remote.json"),
            &serde_json::to_vec_pretty(&Remote {
                mirror: self.mirror.clone(),
            })?,
        )?;
        Ok(t)
    }
}

/// Whether a refresh failed only because the repository could not be reached.
fn unreachable(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|c| matches!(c.downcast_ref::<TufError>(), Some(TufError::Fetch { .. })))
}

/// Where trust comes from, as the user chose on the command line.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TrustArgs {
    /// A trusted root file (trusted_root.json) instead of the TUF repository.
    #[arg(long, env = "COSIGN_TRUSTED_ROOT", global = true)]
    pub trusted_root: Option<PathBuf>,
    /// A client trust config (trusted root plus signing config, sigstore-python's
    /// `--trust-config` format).
    #[arg(long, env = "COSIGN_TRUST_CONFIG", global = true)]
    pub trust_config: Option<PathBuf>,
    /// Use the Sigstore staging instance.
    #[arg(long, env = "COSIGN_STAGING", global = true)]
    pub staging: bool,
    /// Use only cached or built-in trust; never contact the TUF repository.
    #[arg(long, env = "COSIGN_OFFLINE", global = true)]
    pub offline: bool,
}

/// The trust material: a trusted root and, where one is known, a signing config.
pub struct Material {
    pub trusted_root: TrustedRoot,
    pub signing_config: Option<SigningConfig>,
    pub source: String,
}

fn parse_root(bytes: &[u8], what: &str) -> anyhow::Result<TrustedRoot> {
    serde_json::from_slice(bytes).with_context(|| format!("{what}: not a trusted root"))
}

fn parse_signing_config(bytes: &[u8], what: &str) -> anyhow::Result<SigningConfig> {
    let c: SigningConfig =
        serde_json::from_slice(bytes).with_context(|| format!("{what}: not a signing config"))?;
    if c.media_type != sigstack_types::trust::SIGNING_CONFIG_MEDIA_TYPE {
        bail!("{what}: media type {:?} is not supported", c.media_type);
    }
    Ok(c)
}

impl TrustArgs {
    /// The mirror for TUF: staging, or the configured default.
    pub fn mirror(&self) -> String {
        if self.staging {
            STAGING.to_string()
        } else {
            default_mirror()
        }
    }

    /// Resolves the trust material (files, then TUF), applying cosign's `SIGSTORE_*`
    /// environment overrides.
    pub async fn load(&self, http: &reqwest::Client) -> anyhow::Result<Material> {
        let mut m = if let Some(p) = &self.trust_config {
            let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            let what = p.display().to_string();
            let c: Value =
                serde_json::from_slice(&bytes).with_context(|| format!("{what}: not JSON"))?;
            if c["mediaType"] != sigstack_types::trust::CLIENT_TRUST_CONFIG_MEDIA_TYPE {
                bail!(
                    "{what}: media type {} is not a client trust config",
                    c["mediaType"]
                );
            }
            let trusted_root = serde_json::from_value(c["trustedRoot"].clone())
                .with_context(|| format!("{what}: trustedRoot"))?;
            // the signing config is optional for verification
            let signing_config = match c.get("signingConfig") {
                Some(sc) => Some(parse_signing_config(&serde_json::to_vec(sc)?, &what)?),
                None => None,
            };
            Material {
                trusted_root,
                signing_config,
                source: what,
            }
        } else if let Some(p) = &self.trusted_root {
            let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            Material {
                trusted_root: parse_root(&bytes, &p.display().to_string())?,
                signing_config: None,
                source: p.display().to_string(),
            }
        } else {
            let t = Tuf::new(&self.mirror()).targets(http, self.offline).await?;
            Material {
                trusted_root: parse_root(&t.trusted_root, &t.source)?,
                signing_config: match &t.signing_config {
                    Some(b) => Some(parse_signing_config(b, &t.source)?),
                    None => None,
                },
                source: t.source,
            }
        };
        apply_env_overrides(&mut m.trusted_root)?;
        Ok(m)
    }
}

/// Reads a signing config file (`--signing-config`).
pub fn read_signing_config(p: &Path) -> anyhow::Result<SigningConfig> {
    let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
    parse_signing_config(&bytes, &p.display().to_string())
}

/// The services a signer uses, chosen from a signing config as clients do: drop services
/// outside their validity or of API versions we do not speak, prefer the newest start.
pub struct Services {
    pub ca: Option<String>,
    pub oidc: Option<String>,
    pub rekor: Option<String>,
    /// The Rekor v2 (tiled) log, if the signing config lists one.
    pub rekor_v2: Option<String>,
    pub tsa: Option<String>,
}

fn pick(list: &[Service], versions: &[u32], now: i64) -> Option<String> {
    list.iter()
        .filter(|s| versions.contains(&s.major_api_version))
        .filter(|s| {
            let start = sigstack_types::time::parse_rfc3339(&s.valid_for.start).unwrap_or(i64::MAX);
            let end = s
                .valid_for
                .end
                .as_deref()
                .and_then(sigstack_types::time::parse_rfc3339)
                .unwrap_or(i64::MAX);
            start <= now && now < end
        })
        .max_by_key(|s| sigstack_types::time::parse_rfc3339(&s.valid_for.start))
        .map(|s| s.url.trim_end_matches('/').to_string())
}

impl Services {
    pub fn from_config(c: &SigningConfig) -> Self {
        let t = now();
        Self {
            ca: pick(&c.ca_urls, &[1], t),
            oidc: pick(&c.oidc_urls, &[1], t),
            rekor: pick(&c.rekor_tlog_urls, &[1], t),
            rekor_v2: pick(&c.rekor_tlog_urls, &[2], t),
            tsa: pick(&c.tsa_urls, &[1], t),
        }
    }
}
