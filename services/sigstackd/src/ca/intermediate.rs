//! `sigstackd ca new-intermediate`: a new issuing certificate under the CA's existing
//! root, made from the root key (kept offline, brought back for this), with the profile
//! the CA issues under: CA:TRUE with path length 0, key usage certSign and cRLSign,
//! extended key usage codeSigning, and a validity inside the root's.

use sigstack_crypto::Certificate;
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
    let r = crate::reissue::UnderRoot::load(&a.root_key, &a.chain, &a.out_key, a.days)?;
    let der = sigstack_ca::cert::ca_certificate(
        sigstack_ca::cert::ca_name(&a.organization, &a.common_name)?,
        &r.key,
        Some(r.issuer()),
        sigstack_ca::cert::serial(rand::random())?,
        r.not_before,
        r.not_after,
        Some(0),
        true,
    )?;
    r.write(
        &Certificate::from_der(&der)?,
        &a.out_key,
        &a.out_chain,
        "intermediate",
    )
}
