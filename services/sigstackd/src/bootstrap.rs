//! Bootstrap shared by `sigstackd dev` and `sigstackd init`: the stack description
//! (`stack.json`), key and certificate chains made once and reused (the CA's, the
//! timestamp authority's), issuer configuration, secrets, and the first TUF repository.

use crate::trust;
use anyhow::Context;
use serde::Serialize;
use sigstack_ca::cert;
use sigstack_crypto::{Certificate, Curve, FileSigner, KeyMaterial, Signer};
use std::path::{Path, PathBuf};
use x509_cert::name::Name;

/// What `stack.json` holds: where each running service is and where the trust files are.
#[derive(Serialize)]
pub(crate) struct StackFile {
    pub(crate) version: u32,
    pub(crate) data_dir: String,
    pub(crate) database_url: String,
    pub(crate) services: Services,
    pub(crate) trusted_root: String,
    pub(crate) signing_config: String,
    pub(crate) trust_config: String,
    pub(crate) issuers: String,
}

#[derive(Serialize)]
pub(crate) struct Services {
    pub(crate) log: LogEntry,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) log_v2: Option<LogV2Entry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) witness: Option<WitnessEntry>,
    pub(crate) ctlog: CtEntry,
    pub(crate) ca: CaEntry,
    pub(crate) oidc: OidcEntry,
    pub(crate) tuf: TufEntry,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tsa: Option<TsaEntry>,
    /// The monitor and log explorer (`sigstackd dev` runs one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) monitor: Option<MonitorEntry>,
}

#[derive(Serialize)]
pub(crate) struct MonitorEntry {
    pub(crate) url: String,
}

#[derive(Serialize)]
pub(crate) struct TsaEntry {
    /// The base URL (`/api/v1/timestamp`, `/api/v1/timestamp/certchain`).
    pub(crate) url: String,
    /// The chain file, leaf first.
    pub(crate) chain: String,
}

#[derive(Serialize)]
pub(crate) struct TufEntry {
    /// The mirror URL clients bootstrap from.
    pub(crate) url: String,
    /// The initial `1.root.json` clients are given out of band.
    pub(crate) root: String,
    /// Where copies of other repositories are served (`URL/mirrors/NAME`), and the
    /// directory they are published into (`airgap import --out`, `tuf mirror --out`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) mirrors: Option<MirrorsEntry>,
}

#[derive(Serialize)]
pub(crate) struct MirrorsEntry {
    pub(crate) url: String,
    pub(crate) dir: String,
}

#[derive(Serialize)]
pub(crate) struct OidcEntry {
    /// The issuer URL: what verifiers pass as the certificate OIDC issuer.
    pub(crate) url: String,
    /// The dev user who can log in on the page (password in `password_file`).
    pub(crate) username: String,
    pub(crate) email: String,
    pub(crate) password_file: String,
    /// The issuer of workload tokens, and the dev CI client that obtains them with the
    /// `client_credentials` grant (secret in `ci_secret_file`).
    pub(crate) workload_issuer: String,
    pub(crate) ci_client_id: String,
    pub(crate) ci_secret_file: String,
}

#[derive(Serialize)]
pub(crate) struct LogEntry {
    pub(crate) url: String,
    pub(crate) log_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tree_id: Option<String>,
    pub(crate) public_key: String,
}

/// The tiled (Rekor v2) log: its URL, log ID (hex of the 32-byte C2SP key hash),
/// checkpoint origin and Ed25519 public key file.
#[derive(Serialize)]
pub(crate) struct LogV2Entry {
    pub(crate) url: String,
    pub(crate) log_id: String,
    pub(crate) origin: String,
    pub(crate) public_key: String,
}

/// A witness of the v2 log: its URL, name and Ed25519 public key file.
#[derive(Serialize)]
pub(crate) struct WitnessEntry {
    pub(crate) url: String,
    pub(crate) name: String,
    pub(crate) public_key: String,
}

#[derive(Serialize)]
pub(crate) struct CtEntry {
    pub(crate) url: String,
    pub(crate) log_id: String,
    pub(crate) public_key: String,
}

#[derive(Serialize)]
pub(crate) struct CaEntry {
    pub(crate) url: String,
    pub(crate) chain: String,
}

impl StackFile {
    /// Writes DIR/stack.json describing a stack whose trust files are in `dir`.
    pub(crate) fn write(
        dir: &Path,
        database_url: String,
        services: Services,
        issuers: &Path,
    ) -> anyhow::Result<PathBuf> {
        let at = |f: &str| dir.join(f).display().to_string();
        let stack = StackFile {
            version: 2,
            data_dir: dir.display().to_string(),
            database_url,
            services,
            trusted_root: at(trust::TRUSTED_ROOT_FILE),
            signing_config: at(trust::SIGNING_CONFIG_FILE),
            trust_config: at(trust::CLIENT_TRUST_CONFIG_FILE),
            issuers: issuers.display().to_string(),
        };
        let path = dir.join("stack.json");
        write_atomic(&path, &serde_json::to_vec_pretty(&stack)?)?;
        Ok(path)
    }
}

impl CtEntry {
    pub(crate) fn new(url: &str, key: &sigstack_crypto::PublicKey, public_key: &Path) -> Self {
        Self {
            url: url.to_string(),
            log_id: hex::encode(sigstack_crypto::log_id(key.spki_der())),
            public_key: public_key.display().to_string(),
        }
    }
}

/// Replaces `path` with `bytes` (readable by others: public material).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    replace(path, bytes, 0o644)
}

/// Writes `bytes` to a new file beside `path`, then renames it over `path`. Whatever sits
/// at the temporary name (a symbolic link planted by a less privileged user of the
/// directory) is removed, never followed; the rename replaces a link at `path` itself.
/// [`write_atomic`], and the directory synced after the rename, so the new file (not
/// the old one) is what a crash leaves: for state that must never go back.
pub(crate) fn write_durable(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_atomic(path, bytes)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

fn replace(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", tmp.display()));
        }
        _ => {}
    }
    create_new(&tmp, bytes, mode)?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// Creates `path` (never there before, never through a link) with `mode`.
fn create_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// A new private key or secret file (mode 0600): refused if anything is at `path`, a
/// dangling link included.
pub(crate) fn create_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    if std::fs::symlink_metadata(path).is_ok() {
        anyhow::bail!("{} exists: a key file is never overwritten", path.display());
    }
    create_new(path, text.as_bytes(), 0o600)
}

/// A two-certificate chain kept at `chain_path` (issuing certificate, then a self-signed
/// P-384 root whose key is kept at `root_key_path`), made once for `key`: reused while it
/// still names these keys and passes `usable`, else made anew with `issue` (given the
/// root's name and key, the start and end of validity).
fn two_level_chain(
    key: &dyn Signer,
    root_key_path: &Path,
    chain_path: &Path,
    root_name: Name,
    usable: impl Fn(&[Certificate]) -> bool,
    issue: impl FnOnce(&Name, &FileSigner, u64, u64) -> anyhow::Result<Vec<u8>>,
) -> anyhow::Result<Vec<Certificate>> {
    // the root key is needed only to make a chain: one moved offline is never replaced
    let root_key = if root_key_path.exists() {
        Some(FileSigner::load(root_key_path)?)
    } else {
        None
    };
    if let Ok(pem) = std::fs::read(chain_path)
        && let Ok(KeyMaterial::Certificates(c)) = KeyMaterial::from_pem(&pem)
        && c.len() == 2
        && c[0].public_key() == key.public_key()
        && root_key
            .as_ref()
            .is_none_or(|r| c[1].public_key() == r.public_key())
        && usable(&c)
    {
        return Ok(c);
    }
    if root_key.is_none() && chain_path.exists() {
        anyhow::bail!(
            "{} does not fit the issuing key beside it, and the root key {} is not here (offline, as it should be): bring the root key back for this run, or make a new issuing certificate with `sigstackd ca new-intermediate --root-key ROOT-KEY --chain {}`",
            chain_path.display(),
            root_key_path.display(),
            chain_path.display()
        );
    }
    let root_key = match root_key {
        Some(k) => k,
        None => FileSigner::load_or_generate(root_key_path, Curve::P384)?,
    };
    let now = crate::sequencer::unix_now() as u64 - 60;
    let until = now + 10 * 365 * 86_400;
    let root = cert::ca_certificate(
        root_name.clone(),
        &root_key,
        None,
        cert::serial(rand::random())?,
        now,
        until,
        None,
        false,
    )?;
    let leaf = issue(&root_name, &root_key, now, until)?;
    let chain = vec![Certificate::from_der(&leaf)?, Certificate::from_der(&root)?];
    let pem: String = chain.iter().map(Certificate::to_pem).collect();
    write_atomic(chain_path, pem.as_bytes())?;
    Ok(chain)
}

/// Where a two-level chain's files are: the issuing key, the root's key, the chain.
pub(crate) struct ChainFiles {
    pub(crate) key: PathBuf,
    pub(crate) root_key: PathBuf,
    pub(crate) chain: PathBuf,
}

impl ChainFiles {
    /// The three side by side in `dir`.
    pub(crate) fn beside(dir: &Path, key: &str, root_key: &str, chain: &str) -> Self {
        Self {
            key: dir.join(key),
            root_key: dir.join(root_key),
            chain: dir.join(chain),
        }
    }
}

/// A CA: a P-384 root and a P-256 intermediate, created once (`name` goes in their
/// subjects: "`name` root", "`name` intermediate").
pub(crate) fn ca_chain(f: &ChainFiles, org: &str, name: &str) -> anyhow::Result<Vec<Certificate>> {
    let inter_key =
        crate::keys::open_or_generate(&f.key, crate::keys::KeyKind::P256, "the CA key")?;
    two_level_chain(
        inter_key.as_ref(),
        &f.root_key,
        &f.chain,
        cert::ca_name(org, &format!("{name} root"))?,
        |_| true,
        |root_name, root_key, now, until| {
            Ok(cert::ca_certificate(
                cert::ca_name(org, &format!("{name} intermediate"))?,
                inter_key.as_ref(),
                Some((root_name, root_key)),
                cert::serial(rand::random())?,
                now,
                until,
                Some(0),
                true,
            )?)
        },
    )
}

/// A Fulcio issuer configuration trusting the dev issuer (people, by e-mail), its
/// workload issuer (`uri` identities on the issuer's own host, as Fulcio requires of a
/// `uri` issuer's subject domain) and `others` as e-mail issuers.
pub(crate) fn issuer_yaml(header: &str, own: &str, others: &[String]) -> String {
    let mut out = format!("# {header}\noidc-issuers:\n");
    let workload = format!("{own}{}", sigstack_oidc::discovery::WORKLOAD);
    out.push_str(&format!(
        "  {workload:?}:\n    issuer-url: {workload:?}\n    client-id: sigstore\n    type: uri\n    subject-domain: {own:?}\n"
    ));
    for url in std::iter::once(own).chain(others.iter().map(String::as_str)) {
        let url = url.trim_end_matches('/');
        out.push_str(&format!(
            "  {url:?}:\n    issuer-url: {url:?}\n    client-id: sigstore\n    type: email\n"
        ));
    }
    out
}

/// Where the TUF repository's files are: the trust files it publishes, the ceremony
/// directory (`tuf init`'s: offline keys and signed metadata), the online key.
pub(crate) struct TufFiles<'a> {
    pub(crate) trust_dir: &'a Path,
    pub(crate) ceremony: PathBuf,
    pub(crate) online_key: PathBuf,
    /// How many root keys a new ceremony makes, and how many must sign.
    pub(crate) root_keys: (u32, u32),
}

/// The first TUF repository: a ceremony on first start, and a new targets version
/// (signed with every targets key in the ceremony's `keys/`) whenever the stack's trust
/// files changed since the last start. Returns the initial root's path.
pub(crate) async fn tuf_repository(
    f: &TufFiles<'_>,
    database_url: &str,
) -> anyhow::Result<PathBuf> {
    use crate::tuf::ceremony;
    let dir = f.trust_dir;
    let ceremony_dir = &f.ceremony;
    let root = ceremony_dir.join("1.root.json");
    if !root.exists() {
        ceremony::init(&ceremony::InitArgs {
            ceremony_dir: ceremony_dir.clone(),
            trust_dir: dir.to_path_buf(),
            online_key: f.online_key.clone(),
            root_keys: f.root_keys.0,
            root_threshold: f.root_keys.1,
            targets_keys: 1,
            targets_threshold: 1,
            root_expires_days: 365,
            targets_expires_days: 180,
        })?;
    }
    let store = sigstack_storage::Store::open(database_url).await?;
    let published = ceremony::load(&store).await?;
    if published.root.is_none() {
        ceremony::publish(&ceremony::PublishArgs {
            database_url: database_url.to_string(),
            files: vec![root.clone(), ceremony_dir.join("1.targets.json")],
            targets_dir: None,
        })
        .await?;
    }
    let wanted = ceremony::trust_targets(dir)?;
    // read again: the first publication above may have added targets
    let latest = ceremony::load(&store).await?.targets.map(|t| t.parsed);
    let same = latest.is_some_and(|t| {
        wanted
            .iter()
            .all(|(name, (bytes, _))| t.targets.get(name).is_some_and(|f| f.matches(bytes)))
            && t.targets.len() == wanted.len()
    });
    if !same {
        let staged = ceremony_dir.join("staged");
        let path = ceremony::stage_targets(&ceremony::StageTargetsArgs {
            database_url: database_url.to_string(),
            trust_dir: dir.to_path_buf(),
            out: staged.clone(),
            keys: ceremony::targets_keys(ceremony_dir)?,
            expires_days: 180,
            allow_trust_loss: false,
        })
        .await?;
        ceremony::publish(&ceremony::PublishArgs {
            database_url: database_url.to_string(),
            files: vec![path],
            targets_dir: None,
        })
        .await?;
    }
    store.close().await;
    Ok(root)
}

/// A random secret kept (mode 0600) in `path`, made on first use.
pub(crate) fn secret(path: &Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(p) if p.trim().len() >= 16 => Ok(p.trim().to_string()),
        _ => {
            let p = sigstack_oidc::grants::handle(rand::random())[..24].to_string();
            write_secret(path, &p)?;
            Ok(p)
        }
    }
}

/// Replaces `path` with `text`, private (mode 0600).
pub(crate) fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    replace(path, text.as_bytes(), 0o600)
}

/// A timestamp authority's key and chain, created once: a P-384 root and a P-256 TSA
/// certificate (end entity, EKU timeStamping critical) issued by it (`name` goes in
/// their subjects). Returns the key's path, the chain's path (leaf first) and the chain.
pub(crate) fn tsa_chain(f: &ChainFiles, org: &str, name: &str) -> anyhow::Result<Vec<Certificate>> {
    let key = crate::keys::open_or_generate(&f.key, crate::keys::KeyKind::P256, "the TSA key")?;
    let chain = two_level_chain(
        key.as_ref(),
        &f.root_key,
        &f.chain,
        cert::ca_name(org, &format!("{name} root"))?,
        |c| sigstack_tsa::check_chain(c, key.public_key()).is_ok(),
        |root_name, root_key, now, until| {
            Ok(cert::tsa_certificate(
                cert::ca_name(org, name)?,
                key.public_key(),
                (root_name, root_key),
                cert::serial(rand::random())?,
                now,
                until,
            )?)
        },
    )?;
    sigstack_tsa::check_chain(&chain, key.public_key()).map_err(|e| anyhow::anyhow!(e))?;
    Ok(chain)
}
