//! A new certificate under an existing root whose key is brought back from offline for
//! the occasion: the CA's next intermediate, the timestamp authority's next certificate.
//! The checks and the writing are the same for both; only the profile differs.

use anyhow::Context;
use sigstack_crypto::{Certificate, Curve, FileSigner, KeyMaterial, Signer};
use std::path::PathBuf;
use x509_cert::name::Name;

/// The files both commands take and write.
#[derive(clap::Args)]
pub struct Files {
    /// The root's private key (PEM), brought back from offline for this.
    #[arg(long)]
    pub root_key: PathBuf,
    /// The current chain (PEM, issued certificate first, root last): the root is read
    /// from its last certificate.
    #[arg(long)]
    pub chain: PathBuf,
    /// Where to write the new private key (must not exist).
    #[arg(long)]
    pub out_key: PathBuf,
    /// Where to write the new chain (new certificate, then the root).
    #[arg(long)]
    pub out_chain: PathBuf,
    /// Validity in days (cut to the root's end).
    #[arg(long, default_value_t = 365)]
    pub days: u64,
}

/// What a new certificate is made from: the root (key, certificate, name), a fresh key,
/// and a validity from now for the days asked, cut to the root's end.
pub struct UnderRoot {
    pub root_key: FileSigner,
    pub root: Certificate,
    pub root_name: Name,
    pub key: FileSigner,
    pub not_before: u64,
    pub not_after: u64,
}

impl UnderRoot {
    /// Loads the root key and the current chain (its last certificate the root) and
    /// checks them: the chain ends in a self-signed root, the key is that root's, the
    /// new key's file does not exist yet, the root outlives tomorrow.
    pub fn load(f: &Files) -> anyhow::Result<Self> {
        let (root_key, chain, out_key, days) = (&f.root_key, &f.chain, &f.out_key, f.days);
        let key_of_root = FileSigner::load(root_key)
            .with_context(|| format!("loading the root key {}", root_key.display()))?;
        let pem = std::fs::read(chain).with_context(|| format!("reading {}", chain.display()))?;
        let certs = match KeyMaterial::from_pem(&pem)? {
            KeyMaterial::Certificates(c) => c,
            _ => anyhow::bail!("{} holds no certificates", chain.display()),
        };
        let root = certs.last().context("an empty chain")?.clone();
        root.verify_issued_by(&root)
            .context("the chain's last certificate is not a self-signed root")?;
        anyhow::ensure!(
            root.public_key() == key_of_root.public_key(),
            "{} is not the key of the chain's root",
            root_key.display()
        );
        anyhow::ensure!(
            !out_key.exists(),
            "{} exists: choose a new file",
            out_key.display()
        );
        let not_before = crate::sequencer::unix_now() as u64 - 60;
        let (_, root_end) = root.validity();
        anyhow::ensure!(
            root_end > not_before + 86_400,
            "the root expires within a day: make a new root"
        );
        Ok(Self {
            root_name: root.parsed().tbs_certificate.subject.clone(),
            root_key: key_of_root,
            root,
            key: FileSigner::generate(Curve::P256),
            not_before,
            not_after: (not_before + days * 86_400).min(root_end),
        })
    }

    /// The root's name and key, as certificate builders take an issuer.
    pub fn issuer(&self) -> (&Name, &dyn Signer) {
        (&self.root_name, &self.root_key)
    }

    /// Writes the new key (mode 0600) and the chain (`leaf`, then the root), and says so.
    pub fn write(&self, leaf: &Certificate, f: &Files, what: &str) -> anyhow::Result<()> {
        let (out_key, out_chain) = (&f.out_key, &f.out_chain);
        leaf.verify_issued_by(&self.root)?;
        crate::bootstrap::create_secret(out_key, &self.key.to_pkcs8_pem()?)?;
        let out: String = [leaf.to_pem(), self.root.to_pem()].concat();
        crate::bootstrap::write_atomic(out_chain, out.as_bytes())?;
        println!(
            "new {what} valid until {}: key {}, chain {}",
            crate::time::rfc3339(self.not_after as i64),
            out_key.display(),
            out_chain.display()
        );
        Ok(())
    }
}

/// `ctlog new-key` and `log new-key`: the key a log's successor signs with (a CT log
/// keeps its key for life, a Rekor shard too, so a new key starts a new one).
#[derive(clap::Args)]
pub struct NewKeyArgs {
    /// Where to write the new private key (ECDSA P-256; must not exist).
    #[arg(long)]
    pub out_key: PathBuf,
    /// Where to write its public half, for `trust export --add-ctlog-key` /
    /// `--add-tlog-key` (default: beside the key, `.pub.pem`).
    #[arg(long)]
    pub out_public: Option<PathBuf>,
}

/// Writes the key (mode 0600) and its public half; `next` tells the operator what follows.
pub fn new_log_key(a: &NewKeyArgs, what: &str, next: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !a.out_key.exists(),
        "{} exists: a key file is never overwritten",
        a.out_key.display()
    );
    let public = a
        .out_public
        .clone()
        .unwrap_or_else(|| a.out_key.with_extension("pub.pem"));
    let key = FileSigner::generate(Curve::P256);
    crate::bootstrap::create_secret(&a.out_key, &key.to_pkcs8_pem()?)?;
    crate::bootstrap::write_atomic(&public, key.public_key().to_pem().as_bytes())?;
    println!(
        "new {what} key {} (public half {}), log ID {}",
        a.out_key.display(),
        public.display(),
        hex::encode(sigstack_crypto::log_id(key.public_key().spki_der()))
    );
    println!(
        "next: {}",
        next.replace("PUBLIC", &public.display().to_string())
    );
    Ok(())
}
