//! The offline side of the TUF repository: the root ceremony (`tuf init`), keyholders'
//! signatures (`tuf sign`), staging new targets (trust-material changes) and new roots
//! (key rotation), and publishing signed metadata into the repository's database after
//! checking it chains to what is already trusted. Offline keys live in the ceremony
//! directory, which must be apart from anything the service reads.

pub use super::targets::{TargetFiles, trust_targets};
use anyhow::{Context, bail, ensure};
use sigstack_crypto::{Curve, FileSigner, PublicKey, Signer};
use sigstack_storage::{Store, TufFile};
use sigstack_tuf::metadata::*;
use sigstack_tuf::repo::{self, RoleSpec};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const DAY: i64 = 86_400;

fn now() -> i64 {
    crate::sequencer::unix_now()
}

#[derive(clap::Args)]
pub struct InitArgs {
    /// Directory for the offline root and targets keys and the signed metadata to
    /// publish (created, mode 0700). Move the keys somewhere safe afterwards.
    #[arg(long)]
    pub ceremony_dir: PathBuf,
    /// Directory holding the stack's trusted_root.json and signing_config.v0.2.json
    /// (`sigstackd trust export`).
    #[arg(long)]
    pub trust_dir: PathBuf,
    /// The online snapshot/timestamp key the service uses (generated if missing; must not
    /// be inside the ceremony directory).
    #[arg(long)]
    pub online_key: PathBuf,
    #[arg(long, default_value_t = 3)]
    pub root_keys: u32,
    #[arg(long, default_value_t = 2)]
    pub root_threshold: u32,
    #[arg(long, default_value_t = 1)]
    pub targets_keys: u32,
    #[arg(long, default_value_t = 1)]
    pub targets_threshold: u32,
    #[arg(long, default_value_t = 365)]
    pub root_expires_days: i64,
    #[arg(long, default_value_t = 180)]
    pub targets_expires_days: i64,
}

fn write_private(path: &Path, signer: &FileSigner) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(signer.to_pkcs8_pem()?.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

fn create_private_dir(path: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

/// A PEM public key, or the public half of a PEM private key.
pub fn load_public(path: &Path) -> anyhow::Result<PublicKey> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if let Ok(k) = PublicKey::from_pem(&bytes) {
        return Ok(k);
    }
    Ok(FileSigner::from_pem(&String::from_utf8_lossy(&bytes))
        .with_context(|| format!("{} is neither a public nor a private key", path.display()))?
        .public_key()
        .clone())
}

/// Every targets key in a ceremony directory (`keys/targets-N.pem`), in order: what signs
/// a new targets version when the stack itself publishes one (`init`, `dev`).
pub fn targets_keys(ceremony_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = ceremony_dir.join("keys");
    let mut keys: Vec<(u32, PathBuf)> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| {
            let p = e.ok()?.path();
            let n = p
                .file_name()?
                .to_str()?
                .strip_prefix("targets-")?
                .strip_suffix(".pem")?
                .parse()
                .ok()?;
            Some((n, p))
        })
        .collect();
    keys.sort();
    ensure!(
        !keys.is_empty(),
        "{} holds no targets key (targets-N.pem)",
        dir.display()
    );
    Ok(keys.into_iter().map(|(_, p)| p).collect())
}

/// Writes signed-or-not targets `version` and its files into `out`.
fn write_targets(
    out: &Path,
    version: u64,
    expires: i64,
    files: &TargetFiles,
    signers: &[&dyn Signer],
) -> anyhow::Result<PathBuf> {
    let dir = out.join("targets");
    create_private_dir(out)?;
    create_private_dir(&dir)?;
    let mut meta = BTreeMap::new();
    for (name, (bytes, custom)) in files {
        std::fs::write(dir.join(name), bytes)?;
        meta.insert(name.clone(), TargetFile::of(bytes, custom.clone()));
    }
    let mut env = Envelope::new(&repo::targets(version, expires, meta))?;
    for s in signers {
        env.sign(*s)?;
    }
    let path = out.join(format!("{version}.targets.json"));
    std::fs::write(&path, env.to_bytes())?;
    Ok(path)
}

/// Runs the ceremony; returns what to tell the operator.
pub fn init(a: &InitArgs) -> anyhow::Result<String> {
    for (what, n, t) in [
        ("root", a.root_keys, a.root_threshold),
        ("targets", a.targets_keys, a.targets_threshold),
    ] {
        ensure!(
            t >= 1 && t <= n,
            "the {what} threshold {t} cannot be met by {n} key(s)"
        );
    }
    ensure!(
        a.root_expires_days >= 1 && a.targets_expires_days >= 1,
        "expiry must be at least one day"
    );
    let ceremony = absolute(&a.ceremony_dir)?;
    // a key in a token or KMS is apart from the ceremony's files by nature
    let online = if crate::keys::is_reference(&a.online_key) {
        a.online_key.clone()
    } else {
        absolute(&a.online_key)?
    };
    let online_dir = online.parent().unwrap_or(Path::new("/")).to_path_buf();
    ensure!(
        crate::keys::is_reference(&online)
            || (!online.starts_with(&ceremony) && !ceremony.starts_with(&online_dir)),
        "the ceremony directory {} must be apart from the online key's directory {} (the service must not be able to read offline keys)",
        ceremony.display(),
        online_dir.display()
    );
    ensure!(
        !ceremony.join("1.root.json").exists(),
        "{} already holds a ceremony",
        ceremony.display()
    );
    let files = trust_targets(&a.trust_dir)?;
    create_private_dir(&ceremony)?;
    create_private_dir(&ceremony.join("keys"))?;
    let gen_keys = |prefix: &str, n: u32| -> anyhow::Result<Vec<FileSigner>> {
        (1..=n)
            .map(|i| {
                let k = FileSigner::generate(Curve::P256);
                write_private(&ceremony.join("keys").join(format!("{prefix}-{i}.pem")), &k)?;
                Ok(k)
            })
            .collect()
    };
    let root_keys = gen_keys("root", a.root_keys)?;
    let targets_keys = gen_keys("targets", a.targets_keys)?;
    let online_key =
        crate::keys::open_or_generate(&online, crate::keys::KeyKind::P256, "the online key")?;
    let t = now();
    let root = repo::root(
        1,
        t + a.root_expires_days * DAY,
        [
            (
                ROOT,
                &RoleSpec {
                    keys: root_keys.iter().map(|k| k.public_key()).collect(),
                    threshold: a.root_threshold,
                },
            ),
            (
                TARGETS,
                &RoleSpec {
                    keys: targets_keys.iter().map(|k| k.public_key()).collect(),
                    threshold: a.targets_threshold,
                },
            ),
            (
                SNAPSHOT,
                &RoleSpec {
                    keys: vec![online_key.public_key()],
                    threshold: 1,
                },
            ),
            (
                TIMESTAMP,
                &RoleSpec {
                    keys: vec![online_key.public_key()],
                    threshold: 1,
                },
            ),
        ],
    )?;
    let mut env = Envelope::new(&root)?;
    for k in &root_keys {
        env.sign(k)?;
    }
    std::fs::write(ceremony.join("1.root.json"), env.to_bytes())?;
    let signers: Vec<&dyn Signer> = targets_keys.iter().map(|k| k as &dyn Signer).collect();
    write_targets(
        &ceremony,
        1,
        t + a.targets_expires_days * DAY,
        &files,
        &signers,
    )?;
    Ok(format!(
        "TUF ceremony written to {}:\n  1.root.json (signed by all {} root keys; threshold {})\n  1.targets.json with {} targets\n  offline keys in {}/keys: move them away now\n\
         publish with: sigstackd tuf publish --database-url URL {}/1.root.json {}/1.targets.json",
        ceremony.display(),
        a.root_keys,
        a.root_threshold,
        files.len(),
        ceremony.display(),
        ceremony.display(),
        ceremony.display()
    ))
}

#[derive(clap::Args)]
pub struct SignArgs {
    /// A keyholder's PEM private key (repeatable).
    #[arg(long = "key", required = true)]
    pub keys: Vec<PathBuf>,
    /// Metadata files to add the signatures to (in place).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn sign(a: &SignArgs) -> anyhow::Result<()> {
    let keys = a
        .keys
        .iter()
        .map(|k| FileSigner::load(k).with_context(|| format!("loading {}", k.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for f in &a.files {
        let mut env = Envelope::parse(&std::fs::read(f)?, "metadata")?;
        for k in &keys {
            env.sign(k)?;
        }
        std::fs::write(f, env.to_bytes())?;
        println!("{}: {} signature(s)", f.display(), env.signatures.len());
    }
    Ok(())
}

/// The repository as published in `store`.
pub async fn load(store: &Store) -> anyhow::Result<super::Repo> {
    let mut repo = super::Repo::default();
    repo.apply(store.tuf_files(0).await?)?;
    Ok(repo)
}

pub async fn current(store: &Store) -> anyhow::Result<(Option<(u64, Root)>, Option<u64>)> {
    Ok(root_and_targets(load(store).await?))
}

fn root_and_targets(repo: super::Repo) -> (Option<(u64, Root)>, Option<u64>) {
    (
        repo.root.map(|r| (r.version, r.parsed)),
        repo.targets.map(|t| t.version),
    )
}

#[derive(clap::Args)]
pub struct StageTargetsArgs {
    #[arg(long, env = "SIGSTACK_TUF_DATABASE_URL")]
    pub database_url: String,
    /// The new trust files (trusted_root.json with old entries end-dated, new ones added).
    #[arg(long)]
    pub trust_dir: PathBuf,
    /// Where to write `<N>.targets.json` and `targets/`.
    #[arg(long)]
    pub out: PathBuf,
    /// Targets keys to sign with now (repeatable; others can `tuf sign` later).
    #[arg(long = "key")]
    pub keys: Vec<PathBuf>,
    #[arg(long, default_value_t = 180)]
    pub expires_days: i64,
    /// Stage trust files that take trust away from what clients hold now (a key or chain
    /// removed, a validity window moved: on purpose only, e.g. after a key compromise).
    #[arg(long)]
    pub allow_trust_loss: bool,
}

pub async fn stage_targets(a: &StageTargetsArgs) -> anyhow::Result<PathBuf> {
    let store = Store::open(&a.database_url).await?;
    let repo = load(&store).await?;
    let version = repo.targets.as_ref().map_or(1, |t| t.version + 1);
    let files = trust_targets(&a.trust_dir)?;
    {
        use crate::trust::{SIGNING_CONFIG_FILE, TRUSTED_ROOT_FILE};
        crate::trust::continuity::refuse_loss(
            (
                repo.target(TRUSTED_ROOT_FILE),
                repo.target(SIGNING_CONFIG_FILE),
            ),
            (&files[TRUSTED_ROOT_FILE].0, &files[SIGNING_CONFIG_FILE].0),
            a.allow_trust_loss,
            now(),
        )?;
    }
    let keys = a
        .keys
        .iter()
        .map(|k| FileSigner::load(k).with_context(|| format!("loading {}", k.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let signers: Vec<&dyn Signer> = keys.iter().map(|k| k as &dyn Signer).collect();
    std::fs::create_dir_all(&a.out)?;
    write_targets(
        &a.out,
        version,
        now() + a.expires_days * DAY,
        &files,
        &signers,
    )
}

#[derive(clap::Args)]
pub struct StageRootArgs {
    #[arg(long, env = "SIGSTACK_TUF_DATABASE_URL")]
    pub database_url: String,
    /// Where to write `<N>.root.json`.
    #[arg(long)]
    pub out: PathBuf,
    /// The new root keys (PEM public or private; repeatable). Default: unchanged.
    #[arg(long = "root-key")]
    pub root_keys: Vec<PathBuf>,
    #[arg(long)]
    pub root_threshold: Option<u32>,
    /// The new targets keys (repeatable). Default: unchanged.
    #[arg(long = "targets-key")]
    pub targets_keys: Vec<PathBuf>,
    #[arg(long)]
    pub targets_threshold: Option<u32>,
    /// The new online (snapshot and timestamp) key. Default: unchanged.
    #[arg(long)]
    pub online_key: Option<PathBuf>,
    #[arg(long, default_value_t = 365)]
    pub expires_days: i64,
    /// Private keys to sign with now, old and new root keys alike (repeatable).
    #[arg(long = "sign-key")]
    pub sign_keys: Vec<PathBuf>,
}

pub async fn stage_root(a: &StageRootArgs) -> anyhow::Result<PathBuf> {
    let store = Store::open(&a.database_url).await?;
    let (Some((version, old)), _) = current(&store).await? else {
        bail!("the repository has no root yet: run `sigstackd tuf init` first");
    };
    let mut root = old.clone();
    root.version = version + 1;
    root.expires = sigstack_types::time::rfc3339(now() + a.expires_days * DAY);
    let mut replace =
        |role: &str, paths: &[PathBuf], threshold: Option<u32>| -> anyhow::Result<()> {
            let entry = root
                .roles
                .get_mut(role)
                .with_context(|| format!("the root has no {role} role"))?;
            if !paths.is_empty() {
                let mut ids = Vec::new();
                for p in paths {
                    let key = Key::from_public(&load_public(p)?)?;
                    let id = key.key_id();
                    root.keys.insert(id.clone(), key);
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                entry.keyids = ids;
            }
            if let Some(t) = threshold {
                entry.threshold = t;
            }
            ensure!(
                entry.threshold >= 1 && entry.threshold as usize <= entry.keyids.len(),
                "the {role} threshold {} cannot be met by {} key(s)",
                entry.threshold,
                entry.keyids.len()
            );
            Ok(())
        };
    replace(ROOT, &a.root_keys, a.root_threshold)?;
    replace(TARGETS, &a.targets_keys, a.targets_threshold)?;
    let online: Vec<PathBuf> = a.online_key.iter().cloned().collect();
    replace(SNAPSHOT, &online, None)?;
    replace(TIMESTAMP, &online, None)?;
    // drop keys no role uses any more
    let used: std::collections::BTreeSet<String> = root
        .roles
        .values()
        .flat_map(|r| r.keyids.iter().cloned())
        .collect();
    root.keys.retain(|id, _| used.contains(id));
    let mut env = Envelope::new(&root)?;
    for k in &a.sign_keys {
        env.sign(&FileSigner::load(k).with_context(|| format!("loading {}", k.display()))?)?;
    }
    std::fs::create_dir_all(&a.out)?;
    let path = a.out.join(format!("{}.root.json", root.version));
    std::fs::write(&path, env.to_bytes())?;
    tracing::debug!(
        old_threshold = old.roles.get(ROOT).map_or(0, |r| r.threshold),
        new_threshold = root.roles.get(ROOT).map_or(0, |r| r.threshold),
        "staged {}",
        path.display()
    );
    Ok(path)
}

#[derive(clap::Args)]
pub struct PublishArgs {
    #[arg(long, env = "SIGSTACK_TUF_DATABASE_URL")]
    pub database_url: String,
    /// Signed root and/or targets metadata (`N.root.json`, `N.targets.json`).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Where the target files are (default: `targets/` beside the targets metadata).
    #[arg(long)]
    pub targets_dir: Option<PathBuf>,
}

/// Checks signed metadata against what the repository trusts and stores it; the running
/// service picks it up and signs a snapshot and timestamp for it.
pub async fn publish(a: &PublishArgs) -> anyhow::Result<Vec<String>> {
    let store = Store::open(&a.database_url).await?;
    let repo = load(&store).await?;
    // target files already published under their content-addressed paths
    let existing: std::collections::HashSet<String> = repo
        .paths()
        .filter(|p| p.starts_with("targets/"))
        .map(str::to_string)
        .collect();
    let (mut root, targets_version) = root_and_targets(repo);
    let mut out = Vec::new();
    let mut envs: Vec<(PathBuf, Envelope, String)> = Vec::new();
    for f in &a.files {
        let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        let env = Envelope::parse(&bytes, "metadata")?;
        let typ = env
            .signed
            .get("_type")
            .and_then(|t| t.as_str())
            .unwrap_or_default()
            .to_string();
        envs.push((f.clone(), env, typ));
    }
    // roots first, in version order
    envs.sort_by_key(|(_, e, t)| {
        (
            t != ROOT,
            e.signed
                .get("version")
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
        )
    });
    let mut targets_version = targets_version;
    for (path, env, typ) in envs {
        let bytes = env.to_bytes();
        match typ.as_str() {
            ROOT => {
                let new: Root = env.role()?;
                let expected = root.as_ref().map_or(1, |(v, _)| v + 1);
                ensure!(
                    new.version == expected,
                    "{}: root version {} but {expected} is next",
                    path.display(),
                    new.version
                );
                if let Some((_, old)) = &root {
                    env.verify_by(old, ROOT).with_context(|| {
                        format!("{}: not signed by the trusted root's keys", path.display())
                    })?;
                }
                env.verify_by(&new, ROOT).with_context(|| {
                    format!("{}: not signed by its own root keys", path.display())
                })?;
                ensure!(
                    !is_expired(&new.expires, now()),
                    "{}: already expired",
                    path.display()
                );
                out.push(TufFile {
                    seq: 0,
                    path: format!("{}.root.json", new.version),
                    role: ROOT.into(),
                    version: new.version as i64,
                    body: bytes,
                });
                root = Some((new.version, new));
            }
            TARGETS => {
                let new: Targets = env.role()?;
                let Some((_, trusted)) = &root else {
                    bail!("publish a root before any targets");
                };
                let expected = targets_version.map_or(1, |v| v + 1);
                ensure!(
                    new.version == expected,
                    "{}: targets version {} but {expected} is next",
                    path.display(),
                    new.version
                );
                env.verify_by(trusted, TARGETS).with_context(|| {
                    format!("{}: not signed by the targets keys", path.display())
                })?;
                ensure!(
                    !is_expired(&new.expires, now()),
                    "{}: already expired",
                    path.display()
                );
                let dir = a
                    .targets_dir
                    .clone()
                    .unwrap_or_else(|| path.parent().unwrap_or(Path::new(".")).join("targets"));
                for (name, info) in &new.targets {
                    ensure!(
                        !name.contains('/') && !name.starts_with('.'),
                        "target name {name:?} is not a plain file name"
                    );
                    let file = dir.join(name);
                    let content = std::fs::read(&file)
                        .with_context(|| format!("reading target {}", file.display()))?;
                    ensure!(
                        info.matches(&content),
                        "{} does not match its length or hash in {}",
                        file.display(),
                        path.display()
                    );
                    out.push(TufFile {
                        seq: 0,
                        path: format!("targets/{}.{name}", info.sha256().unwrap_or_default()),
                        role: "target".into(),
                        version: 0,
                        body: content,
                    });
                }
                out.push(TufFile {
                    seq: 0,
                    path: format!("{}.targets.json", new.version),
                    role: TARGETS.into(),
                    version: new.version as i64,
                    body: bytes,
                });
                targets_version = Some(new.version);
            }
            other => bail!(
                "{}: cannot publish {other:?} metadata (the service signs snapshot and timestamp)",
                path.display()
            ),
        }
    }
    // a target file already published under the same content-addressed path is fine
    out.retain(|f| !(f.role == "target" && existing.contains(&f.path)));
    let mut seen = std::collections::HashSet::new();
    out.retain(|f| seen.insert(f.path.clone()));
    ensure!(
        store.tuf_publish(&out).await?,
        "another publication took one of these versions first; stage again"
    );
    Ok(out
        .iter()
        .filter(|f| f.role != "target")
        .map(|f| f.path.clone())
        .collect())
}
