//! `sigstackd dev-token`: an identity token minted with the key of a dev (or `init`)
//! stack's issuer, for scripts that sign without a browser.

use super::OIDC_KEY_REF;
use anyhow::Context;
use std::path::PathBuf;

/// `sigstackd dev-token`: an ID token from the dev issuer of DATA_DIR, as a login would
/// give (an e-mail identity) or a workload token (`--sub`, no e-mail).
#[derive(clap::Args)]
pub struct DevTokenArgs {
    #[arg(long, default_value = ".sigstack-dev")]
    data_dir: PathBuf,
    /// The e-mail identity (verified); default: the stack's own account
    /// (dev@sigstack.test for `sigstackd dev`).
    #[arg(long, conflicts_with = "sub")]
    email: Option<String>,
    /// A workload token instead (no e-mail) for this job, from the dev workload issuer
    /// (`<issuer>/workload`); the dev CA certifies job URIs on the issuer's host, such as
    /// `http://127.0.0.1:5556/jobs/build`.
    #[arg(long)]
    sub: Option<String>,
}

pub fn dev_token(args: DevTokenArgs) -> anyhow::Result<()> {
    let stack: serde_json::Value = serde_json::from_slice(
        &std::fs::read(args.data_dir.join("stack.json")).with_context(|| {
            format!(
                "reading {}/stack.json (start `sigstackd dev` first)",
                args.data_dir.display()
            )
        })?,
    )?;
    let iss = stack["services"]["oidc"]["url"]
        .as_str()
        .context("stack.json has no OIDC issuer (restart `sigstackd dev`)")?
        .to_string();
    // the key `oidc.toml` names (an `init` directory), else dev's (in its token, or file)
    let oidc_toml = args.data_dir.join("oidc.toml");
    let reference = args.data_dir.join(OIDC_KEY_REF);
    let key_path = if oidc_toml.exists() {
        crate::oidc::config::OidcConfig::load(Some(&oidc_toml))?
            .signing_key
            .to_path_buf()
    } else if reference.exists() {
        PathBuf::from(
            std::fs::read_to_string(&reference)
                .with_context(|| format!("reading {}", reference.display()))?
                .trim(),
        )
    } else {
        args.data_dir.join("keys/oidc.pem")
    };
    let key = crate::keys::open(&key_path, "the OIDC key")?;
    let now = crate::sequencer::unix_now();
    let (iss, sub, email) = match (&args.sub, &args.email) {
        (Some(s), _) => (
            format!("{iss}{}", sigstack_oidc::discovery::WORKLOAD),
            s.clone(),
            None,
        ),
        (None, e) => {
            // the stack's own account (`dev`, or `init`'s admin) unless told otherwise
            let e = e.clone().unwrap_or_else(|| {
                stack["services"]["oidc"]["email"]
                    .as_str()
                    .unwrap_or("dev@sigstack.test")
                    .to_string()
            });
            (iss.to_string(), e.clone(), Some(e))
        }
    };
    let token = sigstack_oidc::jwt::mint(
        key.as_ref(),
        &sigstack_oidc::jwt::IdClaims {
            iss: iss.clone(),
            sub: sub.clone(),
            aud: "sigstore".into(),
            exp: now + 600,
            iat: now,
            nonce: None,
            email_verified: email.as_ref().map(|_| true),
            email,
            name: None,
            federated_claims: sigstack_oidc::jwt::FederatedClaims {
                connector_id: iss,
                user_id: sub,
            },
            extra: Default::default(),
        },
    )?;
    println!("{token}");
    Ok(())
}
