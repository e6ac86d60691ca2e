//! `sigstackd init`'s flags (each also an environment variable, for the compose file's
//! one-shot container).

use std::net::IpAddr;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct InitArgs {
    /// Directory for configuration, trust files, public certificates and keys (created,
    /// mode 0700): each service's key in `keys/<service>/`. Every path in the
    /// configuration files points inside it, so mount it at the same place wherever the
    /// services run — and of `keys/`, only the service's own directory.
    #[arg(long, env = "SIGSTACK_INIT_DIR", default_value = "/etc/sigstack")]
    pub dir: PathBuf,
    /// Directory for what no running service needs: the CA and TSA root keys, the TUF
    /// ceremony (root and targets keys, signed metadata) and the admin password. Keep it
    /// out of every service's reach, and offline once the stack runs. Default: DIR/offline.
    #[arg(long, env = "SIGSTACK_INIT_OFFLINE_DIR")]
    pub offline_dir: Option<PathBuf>,
    /// Root keys of the TUF ceremony a first run holds (`root-N.pem` in the ceremony
    /// directory, one per keyholder), and how many must sign a new root.
    #[arg(long, env = "SIGSTACK_INIT_TUF_ROOT_KEYS", default_value_t = 1)]
    pub tuf_root_keys: u32,
    #[arg(long, env = "SIGSTACK_INIT_TUF_ROOT_THRESHOLD", default_value_t = 1)]
    pub tuf_root_threshold: u32,
    /// The database every service shares: postgres://… (migrated here) or sqlite://PATH.
    #[arg(long, env = "SIGSTACK_DATABASE_URL")]
    pub database_url: String,
    /// Where clients reach the transparency log (the trusted root's baseUrl).
    #[arg(
        long,
        env = "SIGSTACK_INIT_LOG_URL",
        default_value = "http://localhost:3000"
    )]
    pub log_url: String,
    /// Where clients reach the tiled transparency log (Rekor v2). Its host is the
    /// checkpoint origin clients verify against.
    #[arg(
        long,
        env = "SIGSTACK_INIT_LOG_V2_URL",
        default_value = "http://localhost:3003"
    )]
    pub log_v2_url: String,
    /// Where clients reach the CA.
    #[arg(
        long,
        env = "SIGSTACK_INIT_CA_URL",
        default_value = "http://localhost:5555"
    )]
    pub ca_url: String,
    /// Where clients reach the CT log.
    #[arg(
        long,
        env = "SIGSTACK_INIT_CTLOG_URL",
        default_value = "http://localhost:6962"
    )]
    pub ctlog_url: String,
    /// The OIDC issuer URL (tokens' `iss`; what verifiers pass as the OIDC issuer).
    #[arg(
        long,
        env = "SIGSTACK_INIT_OIDC_URL",
        default_value = "http://localhost:5556"
    )]
    pub oidc_url: String,
    /// Where clients reach the timestamp authority (its chain goes into the trusted root,
    /// its endpoint into the signing config).
    #[arg(
        long,
        env = "SIGSTACK_INIT_TSA_URL",
        default_value = "http://localhost:3004"
    )]
    pub tsa_url: String,
    /// Where clients reach the TUF repository (the mirror they bootstrap from).
    #[arg(
        long,
        env = "SIGSTACK_INIT_TUF_URL",
        default_value = "http://localhost:8088"
    )]
    pub tuf_url: String,
    /// Where the CA reaches the CT log, if not at --ctlog-url (e.g. http://ctlog:6962).
    #[arg(long, env = "SIGSTACK_INIT_CTLOG_INTERNAL_URL")]
    pub ctlog_internal_url: Option<String>,
    /// Where the CA fetches the issuer's discovery and keys, if not at --oidc-url
    /// (e.g. http://oidc:5556 inside a compose network).
    #[arg(long, env = "SIGSTACK_INIT_OIDC_INTERNAL_URL")]
    pub oidc_internal_url: Option<String>,
    /// Address the services listen on. Each listens on its URL's port, or, for a URL
    /// without one (behind a TLS-terminating proxy), on its standard port: log 3000,
    /// log-v2 3003, CA 5555, OIDC 5556, CT log 6962, TUF 8088, TSA 3004.
    #[arg(long, env = "SIGSTACK_INIT_LISTEN_HOST", default_value = "0.0.0.0")]
    pub listen_host: IpAddr,
    /// Who runs the stack (trust files' operator, the CA's subject organisation).
    #[arg(long, env = "SIGSTACK_INIT_OPERATOR", default_value = "sigstack")]
    pub operator: String,
    /// The first local account of the identity provider (password written to
    /// OFFLINE/admin-password, mode 0600).
    #[arg(
        long,
        env = "SIGSTACK_INIT_ADMIN_EMAIL",
        default_value = "admin@sigstack.test"
    )]
    pub admin_email: String,
    /// Give the directory and every file in it to this user (and group): the UID the
    /// services run as (10001 in the image and the manifests). Needs root.
    #[arg(long, env = "SIGSTACK_INIT_OWNER", value_name = "UID[:GID]")]
    pub owner: Option<String>,
    /// Apply the URL flags (and --listen-host, --database-url, --operator) to existing
    /// configuration files, and publish trust naming the new URLs (needs the TUF targets
    /// key). Without it, a second run keeps the files as they are.
    #[arg(long, env = "SIGSTACK_INIT_RECONFIGURE")]
    pub reconfigure: bool,
    /// Make every service's signing key in this PKCS#11 token instead of a file:
    /// `pkcs11:token=LABEL?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=FILE`.
    /// Each key is the object `sigstack-<service>`; the configuration files name it (with
    /// the URI's module and PIN source, which every service must be able to read). The
    /// token is logged in to before anything is written. Roots stay offline files.
    #[arg(long, env = "SIGSTACK_INIT_KEY_BACKEND")]
    pub key_backend: Option<String>,
    /// Bring your own PKI: the CA issues under this chain from your organisation's CA
    /// (PEM: the CA's own issuing certificate first, then each issuer up to your root)
    /// instead of a root and intermediate made here. Checked before anything is written:
    /// the first certificate is for --ca-key, a CA (CA:TRUE) with EKU codeSigning, valid
    /// now and for at least a day more; each certificate is issued by the next; the last
    /// is a self-signed root.
    #[arg(long, env = "SIGSTACK_INIT_CA_CHAIN", requires = "ca_key")]
    pub ca_chain: Option<PathBuf>,
    /// The key of --ca-chain's first certificate: a PEM file, or a key in a token or KMS
    /// (`pkcs11:…`, `awskms://…`). The CA's configuration names it.
    #[arg(long, env = "SIGSTACK_INIT_CA_KEY", requires = "ca_chain")]
    pub ca_key: Option<PathBuf>,
}
