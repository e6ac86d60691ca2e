//! `sigstackd tsa new-certificate`: a new signing key and certificate for the timestamp
//! authority under its existing root (the root key brought back from offline for this),
//! with the profile clients check: not a CA, exactly one extended key usage, timeStamping,
//! critical; validity inside the root's.

use anyhow::Context;
use sigstack_crypto::{Certificate, Curve, FileSigner, KeyMaterial, Signer};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct NewCertificateArgs {
    /// The TSA root's private key (PEM).
    #[arg(long)]
    root_key: PathBuf,
    /// The TSA's current chain (PEM, leaf first, root last): the root is read from its
    /// last certificate.
    #[arg(long)]
    chain: PathBuf,
    /// Where to write the new signing key (must not exist).
    #[arg(long)]
    out_key: PathBuf,
    /// Where to write the new chain (new certificate, then the root).
    #[arg(long)]
    out_chain: PathBuf,
    /// Validity in days (cut to the root's end).
    #[arg(long, default_value_t = 365)]
    days: u64,
    /// The certificate's subject: organisation and common name.
    #[arg(long, default_value = "sigstack")]
    organization: String,
    #[arg(long, default_value = "sigstack timestamp authority")]
    common_name: String,
}

pub fn run(a: &NewCertificateArgs) -> anyhow::Result<()> {
    let root_key = FileSigner::load(&a.root_key)
        .with_context(|| format!("loading the root key {}", a.root_key.display()))?;
    let pem = std::fs::read(&a.chain).with_context(|| format!("reading {}", a.chain.display()))?;
    let chain = match KeyMaterial::from_pem(&pem)? {
        KeyMaterial::Certificates(c) => c,
        _ => anyhow::bail!("{} holds no certificates", a.chain.display()),
    };
    let root = chain.last().context("an empty chain")?;
    root.verify_issued_by(root)
        .context("the chain's last certificate is not a self-signed root")?;
    anyhow::ensure!(
        root.public_key() == root_key.public_key(),
        "{} is not the key of the chain's root",
        a.root_key.display()
    );
    anyhow::ensure!(
        !a.out_key.exists(),
        "{} exists: choose a new file",
        a.out_key.display()
    );
    let now = crate::sequencer::unix_now() as u64 - 60;
    let (_, root_end) = root.validity();
    anyhow::ensure!(
        root_end > now + 86_400,
        "the root expires within a day: make a new root"
    );
    let until = (now + a.days * 86_400).min(root_end);
    let key = FileSigner::generate(Curve::P256);
    let root_name = root.parsed().tbs_certificate.subject.clone();
    let der = sigstack_ca::cert::tsa_certificate(
        sigstack_ca::cert::ca_name(&a.organization, &a.common_name)?,
        key.public_key(),
        (&root_name, &root_key as &dyn Signer),
        sigstack_ca::cert::serial(rand::random())?,
        now,
        until,
    )?;
    let leaf = Certificate::from_der(&der)?;
    let new_chain = vec![leaf, root.clone()];
    sigstack_tsa::check_chain(&new_chain, key.public_key()).map_err(|e| anyhow::anyhow!(e))?;
    crate::bootstrap::write_secret(&a.out_key, &key.to_pkcs8_pem()?)?;
    let out: String = new_chain.iter().map(Certificate::to_pem).collect();
    crate::bootstrap::write_atomic(&a.out_chain, out.as_bytes())?;
    println!(
        "new TSA certificate valid until {}: key {}, chain {}",
        crate::time::rfc3339(until as i64),
        a.out_key.display(),
        a.out_chain.display()
    );
    Ok(())
}
