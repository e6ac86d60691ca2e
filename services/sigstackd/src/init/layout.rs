//! Where `init` puts things, and the configuration files a first run writes. A later run
//! follows the files (an operator may have moved a key), and finds a stack prepared
//! before this layout (everything in `keys/`, the ceremony in `tuf-ceremony/`) where it is.
//!
//! ```text
//! DIR/<service>.toml, issuers.yaml,   what every service reads
//!     trust files, stack.json
//! DIR/public/                         certificates and public keys
//! DIR/keys/<service>/                 one service's own key (and the identity
//!                                     provider's CI client secret): mount only that
//! OFFLINE/ (default DIR/offline)      what no service needs: the CA and TSA root keys,
//!                                     the TUF ceremony (root and targets keys, signed
//!                                     metadata), the admin password
//! ```

use super::files::{ConfigFile, q, qp};
use super::{InitArgs, STANDARD_PORTS, port_of};
use anyhow::Context;
use std::path::{Path, PathBuf};

/// The directories of a stack prepared by `init`.
pub(crate) struct Layout {
    pub(crate) dir: PathBuf,
    pub(crate) public: PathBuf,
    pub(crate) keys: PathBuf,
    pub(crate) offline: PathBuf,
    /// `--key-backend`: the token every service's signing key is made in.
    pub(crate) backend: Option<String>,
}

/// The services, each with a key directory of its own.
const SERVICES: [&str; 7] = ["log", "log-v2", "ctlog", "ca", "oidc", "tuf", "tsa"];

impl Layout {
    /// `dir` and `offline` absolute.
    pub(crate) fn new(dir: &Path, offline: Option<&Path>) -> Self {
        Self {
            dir: dir.to_path_buf(),
            public: dir.join("public"),
            keys: dir.join("keys"),
            offline: offline.map_or_else(|| dir.join("offline"), Path::to_path_buf),
            backend: None,
        }
    }

    pub(crate) fn with_backend(mut self, backend: Option<String>) -> Self {
        self.backend = backend;
        self
    }

    /// A service's signing key: its file, or its object in `--key-backend`'s token.
    pub(crate) fn signing_key(&self, service: &str, file: &str) -> anyhow::Result<PathBuf> {
        match &self.backend {
            Some(b) => crate::keys::in_backend(b, service),
            None => Ok(self.key(service, file)),
        }
    }

    /// A service's own file (in a stack prepared before this layout: `keys/<file>`).
    pub(crate) fn key(&self, service: &str, file: &str) -> PathBuf {
        self.either(&format!("keys/{file}"), self.keys.join(service).join(file))
    }

    /// A certificate or public key (before this layout: `keys/<file>`).
    pub(crate) fn public_file(&self, file: &str) -> PathBuf {
        self.either(&format!("keys/{file}"), self.public.join(file))
    }

    /// A root's key (`ca-root.pem`, `tsa-root.pem`; before this layout: in `keys/`).
    pub(crate) fn root_key(&self, file: &str) -> PathBuf {
        self.either(&format!("keys/{file}"), self.offline.join(file))
    }

    /// The offline directory out of the services' reach: neither the directory they read
    /// nor inside what they are given (`keys/`, `public/`), nor holding it.
    pub(crate) fn check_apart(&self) -> anyhow::Result<()> {
        let o = &self.offline;
        anyhow::ensure!(
            o != &self.dir
                && !self.dir.starts_with(o)
                && !o.starts_with(&self.keys)
                && !o.starts_with(&self.public),
            "--offline-dir {} is within the services' reach: give a directory apart from {} (DIR/offline, the default, is mounted by no service) and outside its keys/ and public/",
            o.display(),
            self.dir.display()
        );
        Ok(())
    }

    /// Whether this is a stack prepared before this layout.
    pub(crate) fn is_older(&self) -> bool {
        self.dir.join("keys/log.pem").exists() || self.dir.join("tuf-ceremony").exists()
    }

    /// The file at `new` in this layout, or at `old` in a directory prepared before it.
    fn either(&self, old: &str, new: PathBuf) -> PathBuf {
        let old = self.dir.join(old);
        if old.exists() && !new.exists() {
            old
        } else {
            new
        }
    }

    /// Where the public half of a log's key goes: `public/`, named after the key
    /// (`keys/ctlog/ctlog-2.pem` → `public/ctlog-2.pub.pem`), so a rotated key's half
    /// leaves its predecessor's alone.
    pub(crate) fn public_half(&self, key: &Path) -> PathBuf {
        if crate::keys::is_reference(key) {
            let name = crate::keys::backend_name(key).unwrap_or_else(|| "key".into());
            return self.public_file(&format!("{name}.pub.pem"));
        }
        let stem = key.file_stem().and_then(|s| s.to_str()).unwrap_or("key");
        self.public_file(&format!("{stem}.pub.pem"))
    }

    /// The TUF ceremony directory (`tuf init`'s `--ceremony-dir`).
    pub(crate) fn ceremony(&self) -> PathBuf {
        self.either("tuf-ceremony", self.offline.join("tuf-ceremony"))
    }

    /// The repository's first root, as clients bootstrap from it (a public copy: the
    /// ceremony directory goes offline).
    pub(crate) fn tuf_root(&self) -> PathBuf {
        self.public.join("1.root.json")
    }

    pub(crate) fn admin_password(&self) -> PathBuf {
        self.either("admin-password", self.offline.join("admin-password"))
    }

    pub(crate) fn ci_secret(&self) -> PathBuf {
        self.either("ci-secret", self.key("oidc", "ci-secret"))
    }

    /// Creates the directories (mode 0700; `public` too: only the services read it) —
    /// the offline one only for a stack not yet published (later, it may be away).
    pub(crate) fn create(&self, offline: bool) -> anyhow::Result<()> {
        let mut dirs = vec![self.dir.clone(), self.public.clone(), self.keys.clone()];
        if offline {
            dirs.push(self.offline.clone());
        }
        if !self.is_older() {
            dirs.extend(SERVICES.iter().map(|s| self.keys.join(s)));
        }
        for d in dirs {
            std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700))?;
            }
        }
        Ok(())
    }
}

/// The service URLs, trimmed.
pub(super) struct Urls {
    pub(super) log: String,
    pub(super) log_v2: String,
    pub(super) ca: String,
    pub(super) ct: String,
    pub(super) oidc: String,
    pub(super) tuf: String,
    pub(super) tsa: String,
}

/// Every configuration file as a first run writes it (keys at their default paths).
/// `password`: the admin's, when `oidc.toml` is to be written.
pub(super) fn config_files(
    a: &InitArgs,
    u: &Urls,
    l: &Layout,
    password: Option<&str>,
) -> anyhow::Result<Vec<ConfigFile>> {
    let dir = &l.dir;
    let listen = |url: &str, service: &str| -> anyhow::Result<String> {
        let standard = STANDARD_PORTS
            .iter()
            .find(|(n, _)| *n == service)
            .map_or(0, |p| p.1);
        Ok(q(std::net::SocketAddr::new(
            a.listen_host,
            port_of(url, standard)?,
        )
        .to_string()))
    };
    let k =
        |service: &str, n: &str| -> anyhow::Result<String> { Ok(qp(&l.signing_key(service, n)?)) };
    let public = |n: &str| qp(&l.public_file(n));
    let db = q(&a.database_url);
    let trim = |s: &str| s.trim_end_matches('/').to_string();
    // the hash is costly: made only for a file that will be written
    let password_hash = match password {
        None => String::new(),
        Some(p) => q(sigstack_oidc::login::hash_password(p, rand::random())?),
    };
    Ok(vec![
        ConfigFile {
            name: "log.toml",
            env: "SIGSTACK_LOG_",
            top: vec![
                ("listen", listen(&u.log, "log")?),
                ("public_url", q(&u.log)),
                ("database_url", db.clone()),
                ("signing_key", k("log", "log.pem")?),
            ],
            tables: String::new(),
        },
        ConfigFile {
            name: "log-v2.toml",
            env: "SIGSTACK_LOG_V2_",
            top: vec![
                ("listen", listen(&u.log_v2, "log-v2")?),
                ("public_url", q(&u.log_v2)),
                ("database_url", db.clone()),
                ("signing_key", k("log-v2", "log-v2.pem")?),
            ],
            tables: String::new(),
        },
        ConfigFile {
            name: "ctlog.toml",
            env: "SIGSTACK_CTLOG_",
            top: vec![
                ("listen", listen(&u.ct, "ctlog")?),
                ("database_url", db.clone()),
                ("signing_key", k("ctlog", "ctlog.pem")?),
                ("roots", public("ca-root.crt.pem")),
            ],
            tables: String::new(),
        },
        ConfigFile {
            name: "ca.toml",
            env: "SIGSTACK_CA_",
            top: vec![
                ("listen", listen(&u.ca, "ca")?),
                ("public_url", q(&u.ca)),
                (
                    "signing_key",
                    match &a.ca_key {
                        Some(own) => qp(own),
                        None => k("ca", "ca-intermediate.pem")?,
                    },
                ),
                ("ca_chain", public("ca-chain.pem")),
                ("issuers", qp(&dir.join("issuers.yaml"))),
                (
                    "ctlog_url",
                    q(a.ctlog_internal_url.as_deref().map_or(u.ct.clone(), trim)),
                ),
                ("ctlog_public_key", public("ctlog.pub.pem")),
                ("tlog_url", q(&u.log)),
                ("tlog_v2_url", q(&u.log_v2)),
                ("tlog_v2_public_key", public("log-v2.pub.pem")),
                ("oidc_url", q(&u.oidc)),
                ("tsa_url", q(&u.tsa)),
                ("tsa_chain", public("tsa-chain.pem")),
                ("operator", q(&a.operator)),
            ],
            tables: match &a.oidc_internal_url {
                Some(i) => format!("[issuer_routes]\n{} = {}\n", q(&u.oidc), q(trim(i))),
                None => String::new(),
            },
        },
        ConfigFile {
            name: "oidc.toml",
            env: "SIGSTACK_OIDC_",
            top: vec![
                ("listen", listen(&u.oidc, "oidc")?),
                ("public_url", q(&u.oidc)),
                ("signing_key", k("oidc", "oidc.pem")?),
            ],
            tables: format!(
                "[[users]]\nusername = {}\nemail = {}\npassword_hash = {password_hash}\n\n\
                 [[clients]]\nid = \"ci\"\nsecret_file = {}\n[clients.workload]\nsubject = {}\naudiences = [\"sigstore\"]\n",
                q(username(a)?),
                q(&a.admin_email),
                qp(&l.ci_secret()),
                q(format!("{}/jobs/ci", u.oidc)),
            ),
        },
        ConfigFile {
            name: "tuf.toml",
            env: "SIGSTACK_TUF_",
            top: vec![
                ("listen", listen(&u.tuf, "tuf")?),
                ("database_url", db),
                ("online_key", k("tuf", "tuf-online.pem")?),
            ],
            tables: "# Copies of other TUF repositories (`sigstackd tuf mirror --out DIR/NAME`,\n\
                     # `sigstackd airgap import --out DIR`), served at /mirrors/NAME/:\n\
                     # mirrors_dir = \"/var/lib/sigstack/mirrors\"\n"
                .into(),
        },
        ConfigFile {
            name: "tsa.toml",
            env: "SIGSTACK_TSA_",
            top: vec![
                ("listen", listen(&u.tsa, "tsa")?),
                ("signing_key", k("tsa", "tsa.pem")?),
                ("cert_chain", public("tsa-chain.pem")),
            ],
            tables: String::new(),
        },
    ])
}

pub(super) fn username(a: &InitArgs) -> anyhow::Result<&str> {
    a.admin_email
        .split('@')
        .next()
        .filter(|u| !u.is_empty())
        .context("--admin-email must be an e-mail address")
}
