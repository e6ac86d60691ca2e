//! `sigstackd ca new-intermediate`: a new issuing certificate under the CA's existing
//! root, made from the root key (kept offline, brought back for this), with the profile
//! the CA issues under: CA:TRUE with path length 0, key usage certSign and cRLSign,
//! extended key usage codeSigning, and a validity inside the root's.

use sigstack_crypto::Certificate;

#[derive(clap::Args)]
pub struct NewIntermediateArgs {
    #[command(flatten)]
    files: crate::reissue::Files,
    /// The new intermediate's subject: organisation and common name.
    #[arg(long, default_value = "sigstack")]
    organization: String,
    #[arg(long, default_value = "sigstack intermediate")]
    common_name: String,
}

pub fn run(a: &NewIntermediateArgs) -> anyhow::Result<()> {
    let r = crate::reissue::UnderRoot::load(&a.files)?;
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
    r.write(&Certificate::from_der(&der)?, &a.files, "intermediate")
}
