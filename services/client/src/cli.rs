//! The command line: cosign's subcommands and flags (every flag also read from
//! `COSIGN_<FLAG>`), rekor-cli's under `log`, and the conformance protocol's.

mod images;
mod log;
mod sign;
mod verify;
mod verify_attestation;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};
use sha2::Digest;
use sign::*;
use sigstack::keys;
use sigstack::oidc::{OidcOptions, Provider};
use sigstack::rekor::{Consistency, Rekor};
use sigstack::sign::{RekorApi, SignOptions, Signed};
use sigstack::trust::{Material, Services, TrustArgs};
use sigstack::verify::{Artifact, Matcher, Policy, Verified, verify_with};
use sigstack_crypto::{Certificate, PublicKey};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use verify::*;
use verify_attestation::*;

/// Exit status when verification fails (the artifact must not be trusted).
pub const EXIT_VERIFY: u8 = 1;
/// Exit status for every other failure (files, network, services, configuration);
/// usage errors exit with 2.
pub const EXIT_ERROR: u8 = 3;

/// A verification failure, as opposed to being unable to run the check.
#[derive(Debug, thiserror::Error)]
#[error("verification failed: {0}")]
pub struct VerificationFailed(pub String);

/// Flags that parse but do not go together (exit status 2, as clap's own usage errors).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Exit status for usage errors.
pub const EXIT_USAGE: u8 = 2;

const EXAMPLES: &str = "\
Examples:
  # sign a file with your identity (browser sign-in) and write a Sigstore bundle
  sigstack sign-blob --bundle file.sigstore.json file
  # verify it
  sigstack verify-blob --bundle file.sigstore.json \\
      --certificate-identity you@example.com \\
      --certificate-oidc-issuer https://accounts.example.com file
  # use a private sigstack instead of the public-good instance
  sigstack initialize --mirror https://tuf.example.internal --root root.json
  # managed keys, as cosign
  sigstack generate-key-pair && sigstack sign-blob --key cosign.key --bundle b.json file
  sigstack verify-blob --key cosign.pub --bundle b.json file
  # the transparency log
  sigstack log search --artifact file && sigstack log info

Exit status: 0 success, 1 verification failed, 2 usage error, 3 any other error.";

#[derive(Parser)]
#[command(
    name = "sigstack",
    version,
    about = "Sign and verify software with Sigstore (cosign-compatible)",
    after_help = EXAMPLES
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    trust: TrustArgs,
    /// Output format for results on stdout.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "COSIGN_OUTPUT"
    )]
    output: Output,
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Trust a TUF repository (public good by default, --staging, or --mirror/--root for a
    /// private sigstack) and cache its trusted root and signing config.
    #[command(
        after_help = "Example:\n  sigstack initialize --mirror http://127.0.0.1:8088 --root root.json"
    )]
    Initialize(InitArgs),
    /// Sign a blob (keyless or with --key) and write a Sigstore bundle.
    #[command(
        after_help = "Examples:\n  sigstack sign-blob --bundle f.sigstore.json f\n  sigstack sign-blob --key cosign.key --bundle f.sigstore.json f\n  SIGSTORE_ID_TOKEN=$(cat token) sigstack sign-blob --yes --bundle f.sigstore.json f"
    )]
    SignBlob(SignBlobArgs),
    /// Verify a blob against a bundle (or a signature and certificate).
    #[command(
        after_help = "Examples:\n  sigstack verify-blob --bundle f.sigstore.json --certificate-identity you@example.com --certificate-oidc-issuer https://issuer f\n  sigstack verify-blob --key cosign.pub --bundle f.sigstore.json f\n  sigstack verify-blob --offline --bundle f.sigstore.json --certificate-identity-regexp '^.*@example\\.com$' --certificate-oidc-issuer https://issuer sha256:<hex>\n\nThe -regexp flags match anywhere in the value, as cosign's do: anchor them (^…$) and escape dots."
    )]
    VerifyBlob(VerifyBlobArgs),
    /// Sign an in-toto attestation about a blob (DSSE) and write a bundle.
    #[command(
        after_help = "Example:\n  sigstack attest-blob --predicate provenance.json --type slsaprovenance --bundle f.att.json f"
    )]
    AttestBlob(AttestBlobArgs),
    /// Verify an attestation bundle about a blob.
    #[command(
        after_help = "Example:\n  sigstack verify-blob-attestation --bundle f.att.json --type slsaprovenance --certificate-identity you@example.com --certificate-oidc-issuer https://issuer f"
    )]
    VerifyBlobAttestation(VerifyAttestationArgs),
    /// Generate a key pair in cosign's format (<prefix>.key encrypted with COSIGN_PASSWORD, <prefix>.pub).
    GenerateKeyPair(GenerateArgs),
    /// Print the public key of a private key file.
    PublicKey(PublicKeyArgs),
    /// The transparency log: search, get, verify, info (rekor-cli's jobs).
    #[command(subcommand)]
    Log(log::LogCommand),
    /// Sign a container image (keyless or with --key) and push the signature.
    #[command(
        after_help = "Examples:\n  sigstack sign --yes registry.example.com/app@sha256:<hex>\n  sigstack sign --key cosign.key -a env=prod registry.example.com/app@sha256:<hex>\n  sigstack sign --new-bundle-format=false --yes registry.example.com/app@sha256:<hex>   # cosign's legacy .sig layout"
    )]
    Sign(images::ImageSignArgs),
    /// Verify a container image's signatures and print the verified payloads.
    #[command(
        after_help = "Example:\n  sigstack verify --certificate-identity you@example.com --certificate-oidc-issuer https://issuer registry.example.com/app@sha256:<hex>"
    )]
    Verify(images::ImageVerifyArgs),
    /// Sign an in-toto attestation about a container image and push it.
    #[command(
        after_help = "Example:\n  sigstack attest --yes --predicate sbom.spdx.json --type spdxjson registry.example.com/app@sha256:<hex>"
    )]
    Attest(images::ImageAttestArgs),
    /// Verify a container image's attestations and print the verified statements.
    VerifyAttestation(images::ImageVerifyAttestationArgs),
    /// Print where signatures/attestations of an image are stored (cosign's legacy tags).
    Triangulate(images::TriangulateArgs),
    /// Print the payload to sign for an image (to sign elsewhere and `attach`).
    Generate(images::GenerateArgs2),
    /// Attach a signature made elsewhere to an image.
    #[command(subcommand)]
    Attach(images::AttachCommand),
    /// Download an image's signatures or attestations.
    #[command(subcommand)]
    Download(images::DownloadCommand),
    /// Copy an image with its signatures and attestations to another repository.
    Copy(images::CopyArgs),
    /// Remove an image's signatures and/or attestations from the registry.
    Clean(images::CleanArgs),
    /// Show what is attached to an image.
    Tree(images::TreeArgs),
    /// The sigstore-conformance protocol's signing.
    #[command(hide = true)]
    SignBundle(ConformanceSignArgs),
    /// The sigstore-conformance protocol's verification.
    #[command(hide = true)]
    VerifyBundle(VerifyBlobArgs),
}

#[derive(Args)]
struct InitArgs {
    /// The TUF repository's URL (default: public good, or staging with --staging), or a
    /// directory holding a copy of it (`file:///media/usb/tuf`, from `sigstackd tuf
    /// export`), for networks with no route to the repository.
    #[arg(long, env = "TUF_MIRROR")]
    mirror: Option<String>,
    /// The TUF root to trust (root.json, handed over out of band). Needed for a mirror
    /// whose root is not built in.
    #[arg(long, env = "TUF_ROOT_JSON")]
    root: Option<PathBuf>,
}

#[derive(Args)]
struct GenerateArgs {
    /// The file name prefix.
    #[arg(long, default_value = "cosign")]
    output_key_prefix: String,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
    /// Create the key in a KMS or token instead (`awskms://[ENDPOINT]/alias/NAME`,
    /// `hashivault://NAME`, `pkcs11:token=T;object=NAME?module-path=…&pin-value=…`), and
    /// write only <prefix>.pub.
    #[arg(long)]
    kms: Option<String>,
}

#[derive(Args)]
struct PublicKeyArgs {
    /// The private key file.
    #[arg(long, env = "COSIGN_KEY")]
    key: PathBuf,
    /// Write here instead of stdout.
    #[arg(long)]
    outfile: Option<PathBuf>,
}

async fn trust_material(trust: &TrustArgs) -> anyhow::Result<Material> {
    trust.load(&http()?).await
}

fn http() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .user_agent(concat!("sigstack/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let out = cli.output;
    match cli.command {
        Command::Initialize(a) => initialize(&cli.trust, &a, out).await,
        Command::SignBlob(a) => sign_blob(&cli.trust, &a, out).await,
        Command::AttestBlob(a) => attest_blob(&cli.trust, &a, out).await,
        Command::VerifyBlob(a) | Command::VerifyBundle(a) => verify_blob(&cli.trust, &a, out).await,
        Command::VerifyBlobAttestation(a) => verify_attestation(&cli.trust, &a, out).await,
        Command::GenerateKeyPair(a) => match &a.kms {
            None => keys::generate_key_pair(&a.output_key_prefix, a.force),
            Some(uri) => {
                let pub_path = format!("{}.pub", a.output_key_prefix);
                if Path::new(&pub_path).exists() && !a.force {
                    bail!("{pub_path} already exists: remove it or pass --force to overwrite");
                }
                let key = sigstack::keyref::generate(uri, sigstack::keyref::KeyKind::P256)?;
                let public = key.public_key();
                std::fs::write(&pub_path, public.to_pem())
                    .with_context(|| format!("writing {pub_path}"))?;
                let shown = sigstack::keyref::KeyRef::parse(uri)?.describe();
                eprintln!("Created the key {shown}; its public key is in {pub_path}");
                Ok(())
            }
        },
        Command::PublicKey(a) => {
            let signer = keys::load_signer(&a.key)?;
            let pem = signer.public_key().to_pem();
            match &a.outfile {
                Some(p) => {
                    std::fs::write(p, pem).with_context(|| format!("writing {}", p.display()))
                }
                None => {
                    print!("{pem}");
                    Ok(())
                }
            }
        }
        Command::Log(c) => log::log(&cli.trust, c, out).await,
        Command::SignBundle(a) => conformance_sign(&cli.trust, &a).await,
        Command::Sign(a) => images::sign(&cli.trust, &a, out).await,
        Command::Verify(a) => images::verify_image(&cli.trust, &a, out).await,
        Command::Attest(a) => images::attest(&cli.trust, &a, out).await,
        Command::VerifyAttestation(a) => images::verify_attestation(&cli.trust, &a, out).await,
        Command::Triangulate(a) => images::triangulate(&a).await,
        Command::Generate(a) => images::generate(&a).await,
        Command::Attach(images::AttachCommand::Signature(a)) => images::attach_signature(&a).await,
        Command::Download(c) => images::download(&c).await,
        Command::Copy(a) => images::copy(&a).await,
        Command::Clean(a) => images::clean(&a).await,
        Command::Tree(a) => images::tree(&a, out).await,
    }
}

async fn initialize(trust: &TrustArgs, a: &InitArgs, out: Output) -> anyhow::Result<()> {
    let mirror = match &a.mirror {
        Some(m) => {
            let web = reqwest::Url::parse(m)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
            if let Some(dir) = sigstack::trust::mirror_dir(m) {
                if !dir.join("timestamp.json").exists() {
                    return Err(UsageError(format!(
                        "--mirror {m}: {} holds no TUF repository (timestamp.json); write one there with `sigstackd tuf export --out {}`",
                        dir.display(),
                        dir.display()
                    ))
                    .into());
                }
            } else if !web {
                return Err(UsageError(format!(
                    "--mirror {m:?} is neither an http(s) URL nor a file:// directory: write it as https://host[:port] or file:///path/to/copy"
                ))
                .into());
            }
            m.clone()
        }
        None if trust.staging => sigstack::trust::STAGING.into(),
        None => sigstack::trust::PUBLIC_GOOD.into(),
    };
    let root = match &a.root {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let tuf = sigstack::trust::Tuf::new(&mirror);
    let t = tuf.initialize(&http()?, root.as_deref()).await?;
    let tr: sigstack_types::trust::TrustedRoot =
        serde_json::from_slice(&t.trusted_root).context("the repository's trusted_root.json")?;
    let services = t
        .signing_config
        .as_deref()
        .and_then(|b| serde_json::from_slice(b).ok())
        .map(|c| Services::from_config(&c));
    let summary = json!({
        "mirror": tuf.mirror,
        "cache": sigstack::trust::cache_root(),
        "certificateAuthorities": tr.certificate_authorities.len(),
        "tlogs": tr.tlogs.len(),
        "ctlogs": tr.ctlogs.len(),
        "timestampAuthorities": tr.timestamp_authorities.len(),
        "ca": services.as_ref().and_then(|s| s.ca.clone()),
        "rekor": services.as_ref().and_then(|s| s.rekor.clone()),
        "oidc": services.as_ref().and_then(|s| s.oidc.clone()),
    });
    match out {
        Output::Json => print_json(&summary),
        Output::Text => {
            println!("Trusting the TUF repository {}", tuf.mirror);
            println!(
                "  {} certificate authorities, {} transparency logs, {} CT logs, {} timestamp authorities",
                tr.certificate_authorities.len(),
                tr.tlogs.len(),
                tr.ctlogs.len(),
                tr.timestamp_authorities.len()
            );
            if let Some(s) = &services {
                for (name, v) in [
                    ("CA", &s.ca),
                    ("transparency log", &s.rekor),
                    ("OIDC issuer", &s.oidc),
                ] {
                    if let Some(u) = v {
                        println!("  {name}: {u}");
                    }
                }
            }
            println!("  cached in {}", sigstack::trust::cache_root().display());
        }
    }
    Ok(())
}

/// Reads and hashes a file in chunks, showing progress on a terminal for large files.
fn hash_file(path: &Path) -> anyhow::Result<[u8; 32]> {
    let mut f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let total = f.metadata().map(|m| m.len()).unwrap_or(0);
    let show = total >= 256 << 20 && std::io::stderr().is_terminal();
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done: u64 = 0;
    let mut last_pct = u64::MAX;
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        done += n as u64;
        if show {
            let pct = done * 100 / total.max(1);
            if pct != last_pct {
                last_pct = pct;
                eprint!("\rHashing {}: {pct}%", path.display());
            }
        }
    }
    if show {
        eprintln!();
    }
    Ok(h.finalize().into())
}

fn artifact_of(arg: &str) -> anyhow::Result<Artifact> {
    if !Path::new(arg).exists()
        && let Some(h) = arg.strip_prefix("sha256:")
    {
        return Ok(Artifact::Digest(
            hex::decode(h)
                .ok()
                .and_then(|d| d.try_into().ok())
                .context("sha256: needs 64 hex digits")?,
        ));
    }
    let p = Path::new(arg);
    let len = std::fs::metadata(p)
        .with_context(|| format!("reading {arg}"))?
        .len();
    // small files whole (every key type can verify them); large ones streamed through
    // SHA-256 (the digest is all a prehashed signature needs)
    if len <= 64 << 20 {
        return Ok(Artifact::Bytes(
            std::fs::read(p).with_context(|| format!("reading {arg}"))?,
        ));
    }
    Ok(Artifact::Digest(hash_file(p)?))
}
