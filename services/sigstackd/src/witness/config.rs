//! `sigstackd witness` configuration: a TOML file; scalar keys may also come from
//! `SIGSTACK_WITNESS_<KEY>`.

use anyhow::{Context, bail};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The witness's name: the key name of its cosignatures (a schemeless URL, e.g.
    /// `witness.example.org/w1`).
    pub name: String,
    /// PEM PKCS#8 Ed25519 private key that cosigns.
    pub signing_key: crate::keys::KeyPath,
    /// Where the latest cosigned checkpoint of each log is kept (JSON, replaced
    /// atomically before each answer): a witness that forgets can be rolled back.
    pub state_file: PathBuf,
    /// The logs this witness follows.
    #[serde(default)]
    pub logs: Vec<WitnessedLog>,
}

/// A log the witness follows: its checkpoint origin and Ed25519 key.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessedLog {
    pub origin: String,
    /// PEM public key file (or `vkey`).
    #[serde(default)]
    pub public_key: Option<PathBuf>,
    /// The key as a C2SP vkey `<origin>+<id>+<base64>` (or `public_key`).
    #[serde(default)]
    pub vkey: Option<String>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 3005))
}

pub const KEYS: &[&str] = &["listen", "name", "signing_key", "state_file"];

impl WitnessConfig {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let cfg: Self = crate::settings::load(path, "SIGSTACK_WITNESS_", KEYS, &[])
            .context("invalid witness configuration")?;
        if !sigstack_log::note::valid_name(&cfg.name) {
            bail!(
                "name {:?} cannot name a note key (no spaces, no '+')",
                cfg.name
            );
        }
        if cfg.logs.is_empty() {
            bail!("a witness needs at least one [[logs]] entry");
        }
        Ok(cfg)
    }
}

impl WitnessedLog {
    /// The log's key, from its PEM file or vkey (which must name this origin).
    pub fn key(&self) -> anyhow::Result<sigstack_crypto::PublicKey> {
        let key = match (&self.public_key, &self.vkey) {
            (Some(p), None) => crate::tuf::ceremony::load_public(p)?,
            (None, Some(v)) => {
                let (name, key) =
                    sigstack_log::note::parse_vkey(v).map_err(|e| anyhow::anyhow!(e))?;
                anyhow::ensure!(
                    name == self.origin,
                    "the vkey of {} names {name}",
                    self.origin
                );
                key
            }
            _ => bail!("log {}: give public_key or vkey (one of them)", self.origin),
        };
        anyhow::ensure!(
            key.key_details() == "PKIX_ED25519",
            "log {}: a witnessed log signs with Ed25519",
            self.origin
        );
        Ok(key)
    }
}
