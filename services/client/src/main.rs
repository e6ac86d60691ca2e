//! `sigstack`: the client. So far: `verify-blob` (cosign's flags for bundles) and the
//! conformance entry point `verify-bundle`.

use anyhow::Context;
use clap::{Parser, Subcommand};
use sigstack::verify::{Artifact, Matcher, Policy, verify};
use sigstack_types::trust::TrustedRoot;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "sigstack",
    version,
    about = "Sign and verify with Sigstore (cosign-compatible)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct VerifyArgs {
    /// The Sigstore bundle (v0.1–v0.3).
    #[arg(long)]
    bundle: PathBuf,
    /// The expected identity (certificate SAN).
    #[arg(long)]
    certificate_identity: Option<String>,
    /// A regular expression the identity must match (instead of --certificate-identity).
    #[arg(long, conflicts_with = "certificate_identity")]
    certificate_identity_regexp: Option<String>,
    /// The expected OIDC issuer.
    #[arg(long)]
    certificate_oidc_issuer: Option<String>,
    /// A regular expression the issuer must match (instead of --certificate-oidc-issuer).
    #[arg(long, conflicts_with = "certificate_oidc_issuer")]
    certificate_oidc_issuer_regexp: Option<String>,
    /// A public key (PEM) for bundles signed with a managed key.
    #[arg(long)]
    key: Option<PathBuf>,
    /// The trusted root (trusted_root.json).
    #[arg(long)]
    trusted_root: PathBuf,
    /// The artifact, or `sha256:<hex>` of it.
    artifact: String,
}

#[derive(clap::Args)]
struct SignArgs {
    /// Where to write the bundle (v0.3).
    #[arg(long)]
    bundle: PathBuf,
    /// The OIDC identity token for keyless signing.
    #[arg(long, env = "SIGSTORE_ID_TOKEN", hide_env_values = true)]
    identity_token: Option<String>,
    /// Sign with this PEM private key (PKCS#8, unencrypted) instead of a certificate.
    #[arg(long)]
    key: Option<PathBuf>,
    /// The CA (Fulcio API).
    #[arg(long, env = "COSIGN_FULCIO_URL")]
    fulcio_url: Option<String>,
    /// The transparency log (Rekor v1 API).
    #[arg(long, env = "COSIGN_REKOR_URL")]
    rekor_url: String,
    /// Skip the confirmation (the identity goes into a public log).
    #[arg(long, short = 'y')]
    yes: bool,
    /// The artifact to sign.
    artifact: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Sign a blob (keyless or with --key) and write a Sigstore bundle.
    SignBlob(SignArgs),
    /// Verify a bundle for a blob.
    VerifyBlob(VerifyArgs),
    /// The sigstore-conformance CLI protocol's verification.
    #[command(hide = true)]
    VerifyBundle(VerifyArgs),
}

fn run(a: &VerifyArgs) -> anyhow::Result<()> {
    let root: TrustedRoot = serde_json::from_slice(
        &std::fs::read(&a.trusted_root)
            .with_context(|| format!("reading {}", a.trusted_root.display()))?,
    )
    .context("the trusted root does not parse")?;
    let artifact = match a.artifact.strip_prefix("sha256:") {
        Some(h) => Artifact::Digest(
            hex::decode(h)
                .ok()
                .and_then(|d| d.try_into().ok())
                .context("sha256: needs 64 hex digits")?,
        ),
        None => Artifact::Bytes(
            std::fs::read(&a.artifact).with_context(|| format!("reading {}", a.artifact))?,
        ),
    };
    let matcher = |exact: &Option<String>, re: &Option<String>, what: &str| {
        anyhow::Ok(match (exact, re) {
            (Some(e), _) => Some(Matcher::Exact(e.clone())),
            (None, Some(r)) => {
                Some(Matcher::Regex(regex::Regex::new(r).with_context(|| {
                    format!("{what} is not a valid regular expression")
                })?))
            }
            (None, None) => None,
        })
    };
    let identity = matcher(
        &a.certificate_identity,
        &a.certificate_identity_regexp,
        "--certificate-identity-regexp",
    )?;
    let issuer = matcher(
        &a.certificate_oidc_issuer,
        &a.certificate_oidc_issuer_regexp,
        "--certificate-oidc-issuer-regexp",
    )?;
    let policy = match (&a.key, identity, issuer) {
        (Some(k), None, None) => Policy::Key(
            sigstack_crypto::PublicKey::from_pem(
                &std::fs::read(k).with_context(|| format!("reading {}", k.display()))?,
            )
            .context("the key does not parse")?,
        ),
        (None, Some(identity), Some(issuer)) => Policy::Identity { identity, issuer },
        (Some(_), _, _) => {
            anyhow::bail!("--key and the certificate identity flags exclude each other")
        }
        _ => anyhow::bail!(
            "keyless verification needs --certificate-identity (or -regexp) and --certificate-oidc-issuer (or -regexp); for a key, give --key"
        ),
    };
    let bundle =
        std::fs::read(&a.bundle).with_context(|| format!("reading {}", a.bundle.display()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    verify(&bundle, &root, &artifact, &policy, now)?;
    Ok(())
}

fn sign(a: &SignArgs) -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let artifact =
        std::fs::read(&a.artifact).with_context(|| format!("reading {}", a.artifact.display()))?;
    let key = match &a.key {
        Some(p) => Some(
            sigstack_crypto::FileSigner::load(p)
                .with_context(|| format!("loading the key {}", p.display()))?,
        ),
        None => None,
    };
    let fulcio = a.fulcio_url.clone().unwrap_or_default();
    if key.is_none() {
        anyhow::ensure!(!fulcio.is_empty(), "keyless signing needs --fulcio-url");
        anyhow::ensure!(
            a.identity_token.is_some(),
            "keyless signing needs --identity-token (or SIGSTORE_ID_TOKEN)"
        );
        if !a.yes {
            eprintln!(
                "Note: the identity in your token (e-mail or subject) goes into a certificate and a public transparency log. Pass --yes to confirm."
            );
            anyhow::bail!("not confirmed");
        }
    }
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let bundle = rt.block_on(sigstack::sign::sign_blob(
        &http,
        &artifact,
        &sigstack::sign::SignOptions {
            fulcio_url: &fulcio,
            rekor_url: &a.rekor_url,
            identity_token: a.identity_token.as_deref(),
            key: key.as_ref(),
        },
    ))?;
    std::fs::write(&a.bundle, serde_json::to_vec_pretty(&bundle)?)
        .with_context(|| format!("writing {}", a.bundle.display()))?;
    eprintln!("Wrote bundle to {}", a.bundle.display());
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::SignBlob(a) => {
            return match sign(a) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("Error: signing failed: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::VerifyBlob(a) | Command::VerifyBundle(a) => run(a),
    };
    match result {
        Ok(()) => {
            eprintln!("Verified OK");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("Error: verification failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
