//! `sigstackd init`: prepares a production (or staging) stack — keys, a CA chain, one
//! configuration file per service, the trust files, and a TUF ceremony published into the
//! database — in one directory, with what no service needs (root keys, the ceremony) in
//! an offline directory apart (see `layout`). Every service then starts with
//! `sigstackd <service> --config DIR/<service>.toml`. The compose file's one-shot `init`
//! container runs it.
//!
//! Running it again is safe: it never makes a key for a stack whose trust is published
//! (a missing one is refused, naming what to do), never replaces the CA chain (its root
//! key can stay offline), keeps every configuration file as the operator left it (adding
//! only settings new in this version, and reporting flags that differ), and takes the
//! trust files from what the TUF repository has published. It publishes a new targets
//! version only when the stack uses material that trust lacks (a service added since),
//! and only with the targets key at hand.

mod args;
mod checks;
mod files;
mod layout;
mod owner;
mod published;
mod report;

use crate::bootstrap::{
    CaEntry, ChainFiles, CtEntry, LogEntry, OidcEntry, Services, StackFile, TufEntry, TufFiles,
    write_atomic,
};
use crate::keys::KeyKind;
use crate::trust::{self, StackTrust};
use anyhow::Context;
pub use args::InitArgs;
use checks::{own_ca, read_chain, require_key};
pub(crate) use layout::Layout;
use layout::{Urls, config_files, username};
use sigstack_crypto::Certificate;
use std::path::Path;

/// The settings `--reconfigure` takes from the flags.
const FROM_FLAGS: [&str; 9] = [
    "listen",
    "public_url",
    "database_url",
    "ctlog_url",
    "tlog_url",
    "tlog_v2_url",
    "oidc_url",
    "tsa_url",
    "operator",
];

/// Where each service listens when its URL names no port.
pub const STANDARD_PORTS: [(&str, u16); 7] = [
    ("log", 3000),
    ("log-v2", 3003),
    ("tsa", 3004),
    ("ca", 5555),
    ("oidc", 5556),
    ("ctlog", 6962),
    ("tuf", 8088),
];

/// The port a service listens on: its public URL's when the URL names one; else (the
/// scheme's default port: the service is behind a TLS-terminating proxy) `standard`.
fn port_of(url: &str, standard: u16) -> anyhow::Result<u16> {
    let u = reqwest::Url::parse(url).with_context(|| format!("{url} is not a URL"))?;
    anyhow::ensure!(
        matches!(u.scheme(), "http" | "https") && u.path() == "/" && u.query().is_none(),
        "{url}: give a service's base URL (http or https, no path)"
    );
    Ok(u.port().unwrap_or(standard))
}

/// Refuses, before anything is written, what would leave the directory and the database
/// disagreeing: another stack's TUF repository in the database, or none for a stack that
/// was published (a wrong or lost database) while its ceremony is away — a new one would
/// replace the root every client holds.
fn refuse_mismatch(l: &Layout, published_root: Option<&[u8]>) -> anyhow::Result<()> {
    let ceremony = l.ceremony();
    let prepared = l.dir.join("stack.json").exists() || l.tuf_root().exists();
    if published_root.is_none() && prepared && !ceremony.join("1.root.json").exists() {
        anyhow::bail!(
            "{} holds a stack whose TUF repository is not in this database, and its ceremony ({}) is not here: give the database the stack was published in (or restore it from a backup); with the ceremony at hand, init publishes the same root again",
            l.dir.display(),
            ceremony.display()
        );
    }
    let ours = std::fs::read(l.tuf_root())
        .or_else(|_| std::fs::read(ceremony.join("1.root.json")))
        .ok();
    match (published_root, &ours) {
        (Some(db), Some(mine)) if db != mine.as_slice() => anyhow::bail!(
            "this database holds another stack's TUF repository (its 1.root.json differs from {}): use a new database, or the directory that stack was prepared in",
            ceremony.display()
        ),
        (Some(_), None) => anyhow::bail!(
            "this database already holds a TUF repository, and {} has no ceremony for it: use a new database, or the directory that stack was prepared in",
            l.dir.display()
        ),
        _ => Ok(()),
    }
}

pub async fn run(a: InitArgs) -> anyhow::Result<()> {
    let trim = |u: &str| u.trim_end_matches('/').to_string();
    let u = Urls {
        log: trim(&a.log_url),
        log_v2: trim(&a.log_v2_url),
        ca: trim(&a.ca_url),
        ct: trim(&a.ctlog_url),
        oidc: trim(&a.oidc_url),
        tuf: trim(&a.tuf_url),
        tsa: trim(&a.tsa_url),
    };
    // every URL is checked before anything is touched
    for (url, s) in [
        (&u.log, "log"),
        (&u.log_v2, "log-v2"),
        (&u.ca, "ca"),
        (&u.ct, "ctlog"),
        (&u.oidc, "oidc"),
        (&u.tuf, "tuf"),
        (&u.tsa, "tsa"),
    ] {
        port_of(url, 0).with_context(|| format!("the {s} URL"))?;
    }
    username(&a)?;
    anyhow::ensure!(
        (1..=a.tuf_root_keys).contains(&a.tuf_root_threshold),
        "--tuf-root-threshold {} cannot be met by --tuf-root-keys {}",
        a.tuf_root_threshold,
        a.tuf_root_keys
    );
    // the token is reached and logged in to, and the organisation's CA chain checked,
    // before anything is touched
    if let Some(b) = &a.key_backend {
        crate::keys::check_backend(b)?;
    }
    let mut a = a;
    if let Some(k) = &a.ca_key
        && !crate::keys::is_reference(k)
    {
        a.ca_key = Some(std::path::absolute(k).with_context(|| k.display().to_string())?);
    }
    let own_chain = match (&a.ca_chain, &a.ca_key) {
        (Some(c), Some(k)) => Some(own_ca(c, k)?),
        _ => None,
    };
    let store = sigstack_storage::Store::connect(&a.database_url)
        .await
        .with_context(|| {
            format!(
                "connecting to {}",
                sigstack_storage::redact(&a.database_url)
            )
        })?;
    sigstack_storage::migrate(&store).await?;
    let tuf_files = store.tuf_files(0).await?;
    store.close().await;
    let first_root = tuf_files
        .iter()
        .find(|f| f.path == "1.root.json")
        .map(|f| f.body.clone());
    let absolute = |p: &Path| std::path::absolute(p).with_context(|| format!("{}", p.display()));
    let offline = a.offline_dir.as_deref().map(absolute).transpose()?;
    let l = Layout::new(&absolute(&a.dir)?, offline.as_deref());
    l.check_apart()?;
    refuse_mismatch(&l, first_root.as_deref())?;
    let mut repo = crate::tuf::Repo::default();
    repo.apply(tuf_files)?;
    // the stack's trust as clients have it, if it has been published
    let live = published::read(&repo)?;

    l.create(live.is_none())?;
    // symbolic links resolved: the paths the configuration files name
    let l = Layout::new(
        &std::fs::canonicalize(&l.dir)?,
        Some(&std::fs::canonicalize(&l.offline).unwrap_or_else(|_| l.offline.clone())),
    )
    .with_backend(a.key_backend.clone());
    l.check_apart()?;
    let dir = l.dir.clone();

    // the admin's password only while oidc.toml (which holds its hash) is to be written
    let password_file = l.admin_password();
    let password = if dir.join("oidc.toml").exists() {
        None
    } else {
        Some(crate::bootstrap::secret(&password_file)?)
    };
    let ci_secret = l.ci_secret();
    crate::bootstrap::secret(&ci_secret)?;
    let issuers = dir.join("issuers.yaml");
    if !issuers.exists() {
        write_atomic(
            &issuers,
            crate::bootstrap::issuer_yaml(
                "written by `sigstackd init`: the stack's own issuer (people, by e-mail) and its workload issuer (CI jobs); edit it and restart the CA to trust more",
                &u.oidc,
                &[],
            )
            .as_bytes(),
        )?;
    }
    let mut created = Vec::new();
    let mut notes = Vec::new();
    for f in config_files(&a, &u, &l, password.as_deref())? {
        let o = f.write_or_merge(&dir, &FROM_FLAGS, a.reconfigure)?;
        if o.created {
            created.push(f.name);
        }
        if !o.added.is_empty() {
            notes.push(format!("{}: added {}", f.name, o.added.join(", ")));
        }
        if !o.replaced.is_empty() {
            notes.push(format!("{}: set {}", f.name, o.replaced.join(", ")));
        }
        for (key, kept, flag) in o.differs {
            notes.push(format!(
                "{}: kept {key} = {kept} (the flags give {flag}; edit the file to change it)",
                f.name
            ));
        }
    }
    // every file must load as the service will load it
    let log_cfg = crate::log::config::LogConfig::load(Some(&dir.join("log.toml")))?;
    let log_v2_cfg = crate::log_v2::config::LogV2Config::load(Some(&dir.join("log-v2.toml")))?;
    let ct_cfg = crate::ctlog::config::CtLogConfig::load(Some(&dir.join("ctlog.toml")))?;
    let ca_cfg = crate::ca::config::CaConfig::load(Some(&dir.join("ca.toml")))?;
    let oidc_cfg = crate::oidc::config::OidcConfig::load(Some(&dir.join("oidc.toml")))?;
    let tuf_cfg = crate::tuf::config::TufConfig::load(Some(&dir.join("tuf.toml")))?;
    let tsa_cfg = crate::tsa::config::TsaConfig::load(Some(&dir.join("tsa.toml")))?;
    let make = |file: &str| live.is_none() || created.contains(&file);

    require_key(&log_cfg.signing_key, make("log.toml"), "the log's key")?;
    let log_key =
        crate::keys::open_or_generate(&log_cfg.signing_key, KeyKind::P256, "the log key")?;
    let log_pub = l.public_half(&log_cfg.signing_key);
    write_atomic(&log_pub, log_key.public_key().to_pem().as_bytes())?;
    require_key(
        &log_v2_cfg.signing_key,
        make("log-v2.toml"),
        "the v2 log's key",
    )?;
    let log_v2_key =
        crate::keys::open_or_generate(&log_v2_cfg.signing_key, KeyKind::Ed25519, "the v2 log key")?;
    crate::keys::expect(
        log_v2_key.as_ref(),
        &["PKIX_ED25519"],
        &log_v2_cfg.signing_key,
        "the v2 log key",
    )?;
    let log_v2_pub = l.public_half(&log_v2_cfg.signing_key);
    write_atomic(&log_v2_pub, log_v2_key.public_key().to_pem().as_bytes())?;
    require_key(&ct_cfg.signing_key, make("ctlog.toml"), "the CT log's key")?;
    let ct_key =
        crate::keys::open_or_generate(&ct_cfg.signing_key, KeyKind::P256, "the CT log key")?;
    let ct_pub = l.public_half(&ct_cfg.signing_key);
    write_atomic(&ct_pub, ct_key.public_key().to_pem().as_bytes())?;
    let chain = if let (true, Some(chain)) = (make("ca.toml"), &own_chain) {
        let pem: String = chain.iter().map(Certificate::to_pem).collect();
        write_atomic(&ca_cfg.ca_chain, pem.as_bytes())?;
        chain.clone()
    } else if make("ca.toml") {
        let files = ChainFiles {
            key: ca_cfg.signing_key.to_path_buf(),
            root_key: l.root_key("ca-root.pem"),
            chain: ca_cfg.ca_chain.clone(),
        };
        crate::bootstrap::ca_chain(&files, &a.operator, &format!("{} CA", a.operator))?
    } else {
        require_key(&ca_cfg.signing_key, false, "the CA's key")?;
        let key = crate::keys::open(&ca_cfg.signing_key, "the CA key")?;
        let chain = read_chain(&ca_cfg.ca_chain)?;
        anyhow::ensure!(
            chain[0].public_key() == key.public_key(),
            "{} is not the chain of {}",
            ca_cfg.ca_chain.display(),
            crate::keys::shown(&ca_cfg.signing_key)
        );
        chain
    };
    let ca_root = &chain[chain.len() - 1];
    if make("ctlog.toml") || !ct_cfg.roots.exists() {
        write_atomic(&ct_cfg.roots, ca_root.to_pem().as_bytes())?;
    }
    let tsa_chain = if make("tsa.toml") {
        let files = ChainFiles {
            key: tsa_cfg.signing_key.to_path_buf(),
            root_key: l.root_key("tsa-root.pem"),
            chain: tsa_cfg.cert_chain.clone(),
        };
        let name = format!("{} timestamp authority", a.operator);
        crate::bootstrap::tsa_chain(&files, &a.operator, &name)?
    } else {
        require_key(&tsa_cfg.signing_key, false, "the timestamp authority's key")?;
        let key = crate::keys::open(&tsa_cfg.signing_key, "the TSA key")?;
        let chain = read_chain(&tsa_cfg.cert_chain)?;
        sigstack_tsa::check_chain(&chain, key.public_key()).map_err(|e| anyhow::anyhow!(e))?;
        chain
    };
    require_key(
        &oidc_cfg.signing_key,
        make("oidc.toml"),
        "the identity provider's key",
    )?;
    let oidc_key =
        crate::keys::open_or_generate(&oidc_cfg.signing_key, KeyKind::Rsa2048, "the OIDC key")?;
    // its public half beside it (`oidc.pem` → `oidc.pub.pem`; a token's key: in public/):
    // what `previous_keys` names once the key is rotated. Named after the key, so a run
    // after a rotation writes the new key's half and leaves the old one's alone.
    let oidc_pub = if crate::keys::is_reference(&oidc_cfg.signing_key) {
        l.public_half(&oidc_cfg.signing_key)
    } else {
        oidc_cfg.signing_key.with_extension("pub.pem")
    };
    write_atomic(&oidc_pub, oidc_key.public_key().to_pem().as_bytes())?;
    if live.is_some() {
        require_key(&tuf_cfg.online_key, false, "the TUF online key")?;
    }

    let stack_trust = StackTrust {
        operator: a.operator.clone(),
        valid_from: crate::time::rfc3339(ca_root.validity().0 as i64),
        ca_url: u.ca.clone(),
        ca_chain: chain,
        tlog_url: u.log.clone(),
        tlog_key: log_key.public_key().clone(),
        ctlog_url: u.ct.clone(),
        ctlog_key: ct_key.public_key().clone(),
        oidc_url: Some(u.oidc.clone()),
        tsa: Some(trust::TsaTrust {
            url: u.tsa.clone(),
            chain: tsa_chain,
        }),
        extra_ca_chains: Vec::new(),
        extra_tsa_chains: Vec::new(),
        extra_ctlog_keys: Vec::new(),
        extra_tlog_keys: Vec::new(),
        extra_tlog_v2: Vec::new(),
        tlog_v2: Some(trust::TlogV2Trust {
            url: u.log_v2.clone(),
            key: log_v2_key.public_key().clone(),
        }),
    };
    let tuf = TufFiles {
        trust_dir: &dir,
        ceremony: l.ceremony(),
        online_key: tuf_cfg.online_key.to_path_buf(),
        root_keys: (a.tuf_root_keys, a.tuf_root_threshold),
    };
    match &live {
        None => {
            let previous = trust::read_trusted_root(&dir.join(trust::TRUSTED_ROOT_FILE))?;
            stack_trust.write(&dir, previous.as_ref(), None)?;
            crate::bootstrap::tuf_repository(&tuf, &a.database_url).await?;
        }
        Some((root, published_signing)) => {
            let now = crate::time::rfc3339(crate::sequencer::unix_now());
            let ours = stack_trust.trusted_root();
            let (mut merged, mut added) = published::add_missing(root, &ours, &now);
            let signing = if a.reconfigure {
                let (moved, changed) = published::with_our_urls(&merged, &ours);
                merged = moved;
                added.extend(changed);
                stack_trust.signing_config()
            } else {
                published::fill_signing_config(published_signing, &stack_trust.signing_config())
            };
            // compared as we read them: fields we do not know play no part
            let signing_changed =
                serde_json::to_value(&signing)? != serde_json::to_value(published_signing)?;
            if signing_changed && added.is_empty() {
                added.push("service URLs in the signing config".into());
            }
            if !added.is_empty() && crate::tuf::ceremony::targets_keys(&tuf.ceremony).is_err() {
                anyhow::bail!(
                    "the published trust lacks what this stack uses ({}), and the TUF targets key is not in {} (moved offline, as it should be). Publish it with `sigstackd trust export --previous PUBLISHED-trusted_root.json …`, `sigstackd tuf stage-targets` and `sigstackd tuf publish` (README, \"Keys and rotation\"), or bring the key back for this run",
                    added.join("; "),
                    tuf.ceremony.join("keys").display()
                );
            }
            if added.is_empty() {
                // clients' bytes, exactly
                for name in [trust::TRUSTED_ROOT_FILE, trust::SIGNING_CONFIG_FILE] {
                    write_atomic(&dir.join(name), repo.target(name).unwrap_or_default())?;
                }
                notes.push(format!(
                    "the published trust names everything this stack uses: nothing published ({} is the published trusted root, the --previous of the next `trust export`)",
                    dir.join(trust::TRUSTED_ROOT_FILE).display()
                ));
            } else {
                trust::write_json(&dir.join(trust::TRUSTED_ROOT_FILE), &merged)?;
                trust::write_json(&dir.join(trust::SIGNING_CONFIG_FILE), &signing)?;
                println!(
                    "publishing a new targets version: it adds {}",
                    added.join("; ")
                );
            }
            let mut config = stack_trust.client_trust_config();
            config.trusted_root = merged;
            config.signing_config = signing;
            trust::write_json(&dir.join(trust::CLIENT_TRUST_CONFIG_FILE), &config)?;
            if !added.is_empty() {
                crate::bootstrap::tuf_repository(&tuf, &a.database_url).await?;
            }
        }
    };
    // the first root as published: what clients bootstrap from, outside the ceremony
    let tuf_root = l.tuf_root();
    let published_root = match first_root {
        Some(bytes) => bytes,
        None => std::fs::read(tuf.ceremony.join("1.root.json"))?,
    };
    write_atomic(&tuf_root, &published_root)?;

    let username = username(&a)?.to_string();
    let services = Services {
        log: LogEntry {
            url: u.log.clone(),
            log_id: hex::encode(sigstack_crypto::log_id(log_key.public_key().spki_der())),
            tree_id: None,
            public_key: log_pub.display().to_string(),
        },
        log_v2: Some(crate::bootstrap::LogV2Entry {
            url: u.log_v2.clone(),
            log_id: hex::encode(sigstack_log::note::log_id(
                &log_v2_cfg.origin()?,
                log_v2_key.public_key(),
            )),
            origin: log_v2_cfg.origin()?,
            public_key: log_v2_pub.display().to_string(),
        }),
        witness: None,
        ctlog: CtEntry::new(&u.ct, ct_key.public_key(), &ct_pub),
        ca: CaEntry {
            url: u.ca.clone(),
            chain: ca_cfg.ca_chain.display().to_string(),
        },
        oidc: OidcEntry {
            url: u.oidc.clone(),
            username: username.clone(),
            email: a.admin_email.clone(),
            password_file: password_file.display().to_string(),
            workload_issuer: format!("{}{}", u.oidc, sigstack_oidc::discovery::WORKLOAD),
            ci_client_id: "ci".into(),
            ci_secret_file: ci_secret.display().to_string(),
        },
        tuf: TufEntry {
            url: u.tuf.clone(),
            root: tuf_root.display().to_string(),
            mirrors: None,
        },
        tsa: Some(crate::bootstrap::TsaEntry {
            url: u.tsa.clone(),
            chain: tsa_cfg.cert_chain.display().to_string(),
        }),
        monitor: None,
    };
    StackFile::write(
        &dir,
        sigstack_storage::redact(&a.database_url),
        services,
        &issuers,
    )?;
    if let Some(owner) = &a.owner {
        owner::give_to(&l, owner)?;
    }

    report::print(&a, &u, &l, live.is_some(), &notes, &tuf_root);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_from_urls() {
        assert_eq!(port_of("http://localhost:3000", 1).ok(), Some(3000));
        assert_eq!(port_of("https://rekor.example.org", 3000).ok(), Some(3000));
        assert_eq!(port_of("http://oidc.example.org/", 5556).ok(), Some(5556));
        assert_eq!(
            port_of("https://oidc.example.org:8443", 5556).ok(),
            Some(8443)
        );
        assert!(port_of("http://h:1/api", 1).is_err());
        assert!(port_of("ftp://h:1", 1).is_err());
        assert!(port_of("not a url", 1).is_err());
    }
}
