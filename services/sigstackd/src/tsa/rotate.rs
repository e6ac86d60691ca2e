//! `sigstackd tsa new-certificate`: a new signing key and certificate for the timestamp
//! authority under its existing root (the root key brought back from offline for this),
//! with the profile clients check: not a CA, exactly one extended key usage, timeStamping,
//! critical; validity inside the root's.

use sigstack_crypto::{Certificate, Signer};

#[derive(clap::Args)]
pub struct NewCertificateArgs {
    #[command(flatten)]
    files: crate::reissue::Files,
    /// The certificate's subject: organisation and common name.
    #[arg(long, default_value = "sigstack")]
    organization: String,
    #[arg(long, default_value = "sigstack timestamp authority")]
    common_name: String,
}

pub fn run(a: &NewCertificateArgs) -> anyhow::Result<()> {
    let r = crate::reissue::UnderRoot::load(&a.files)?;
    let der = sigstack_ca::cert::tsa_certificate(
        sigstack_ca::cert::ca_name(&a.organization, &a.common_name)?,
        r.key.public_key(),
        r.issuer(),
        sigstack_ca::cert::serial(rand::random())?,
        r.not_before,
        r.not_after,
    )?;
    let leaf = Certificate::from_der(&der)?;
    sigstack_tsa::check_chain(&[leaf.clone(), r.root.clone()], r.key.public_key())
        .map_err(|e| anyhow::anyhow!(e))?;
    r.write(&leaf, &a.files, "TSA certificate")
}
