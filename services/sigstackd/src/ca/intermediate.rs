//! `sigstackd ca new-intermediate`: a new issuing certificate under the CA's existing
//! root, made from the root key (kept offline, brought back for this), with the profile
//! the CA issues under: CA:TRUE with path length 0, key usage certSign and cRLSign,
//! extended key usage codeSigning, and a validity inside the root's.

use anyhow::Context;
use sigstack_crypto::{Certificate, Curve, FileSigner, KeyMaterial, Signer};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct NewIntermediateArgs {
    /// The root's private key (PEM).
    #[arg(long)]
    root_key: PathBuf,
    /// The CA's current chain (PEM, intermediate first, root last): the root is read
    /// from its last certificate.
    #[arg(long)]
    chain: PathBuf,
    /// Where to write the new intermediate's private key (must not exist).
    #[arg(long)]
    out_key: PathBuf,
    /// Where to write the new chain (new intermediate, then the root).
    #[arg(long)]
    out_chain: PathBuf,
    /// Validity in days (cut to the root's end).
    #[arg(long, default_value_t = 365)]
    days: u64,
    /// The new intermediate's subject: organisation and common name.
    #[arg(long, default_value = "sigstack")]
    organization: String,
    #[arg(long, default_value = "sigstack intermediate")]
    common_name: String,
}

pub fn run(a: &NewIntermediateArgs) -> anyhow::Result<()> {
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
    let der = sigstack_ca::cert::ca_certificate(
        sigstack_ca::cert::ca_name(&a.organization, &a.common_name)?,
        &key,
        Some((&root_name, &root_key as &dyn Signer)),
        sigstack_ca::cert::serial(rand::random())?,
        now,
        until,
        Some(0),
        true,
    )?;
    let inter = Certificate::from_der(&der)?;
    inter.verify_issued_by(root)?;
    crate::bootstrap::write_secret(&a.out_key, &key.to_pkcs8_pem()?)?;
    let out: String = [inter.to_pem(), root.to_pem()].concat();
    crate::bootstrap::write_atomic(&a.out_chain, out.as_bytes())?;
    println!(
        "new intermediate valid until {}: key {}, chain {}",
        crate::time::rfc3339(until as i64),
        a.out_key.display(),
        a.out_chain.display()
    );
    Ok(())
}
