//! The command line: cosign's subcommands and flags (every flag also read from
//! `COSIGN_<FLAG>`), rekor-cli's under `log`, and the conformance protocol's.

mod images;
mod log;
mod verify;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};
use sha2::Digest;
use sigstack::keys;
use sigstack::oidc::{OidcOptions, Provider};
use sigstack::rekor::{Consistency, Rekor};
use sigstack::sign::{SignOptions, Signed};
use sigstack::trust::{Material, Services, TrustArgs};
use sigstack::verify::{Artifact, Matcher, Policy, Verified, verify_with};
use sigstack_crypto::{Certificate, PublicKey, Signer};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use verify::*;

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
    /// The TUF repository's URL (default: public good, or staging with --staging).
    #[arg(long, env = "TUF_MIRROR")]
    mirror: Option<String>,
    /// The TUF root to trust (root.json, handed over out of band). Needed for a mirror
    /// whose root is not built in.
    #[arg(long, env = "TUF_ROOT_JSON")]
    root: Option<PathBuf>,
}

/// How to sign: keys, services and identity (shared by sign-blob and attest-blob).
#[derive(Args)]
struct SignFlags {
    /// Sign with this private key (cosign's encrypted format, or unencrypted PKCS#8 PEM).
    #[arg(long, env = "COSIGN_KEY")]
    key: Option<PathBuf>,
    /// The CA (Fulcio API). Default: from the signing config.
    #[arg(long, env = "COSIGN_FULCIO_URL")]
    fulcio_url: Option<String>,
    /// The transparency log (Rekor v1 API). Default: from the signing config.
    #[arg(long, env = "COSIGN_REKOR_URL")]
    rekor_url: Option<String>,
    /// A signing config file (signing_config.v0.2.json) naming the services.
    #[arg(long, env = "COSIGN_SIGNING_CONFIG")]
    signing_config: Option<PathBuf>,
    /// The OIDC identity token; otherwise one is obtained (ambient CI token, browser, device flow).
    #[arg(long, env = "SIGSTORE_ID_TOKEN", hide_env_values = true)]
    identity_token: Option<String>,
    /// The OIDC issuer to sign in with. Default: from the signing config.
    #[arg(long, env = "COSIGN_OIDC_ISSUER")]
    oidc_issuer: Option<String>,
    /// The OIDC client ID.
    #[arg(long, env = "COSIGN_OIDC_CLIENT_ID", default_value = "sigstore")]
    oidc_client_id: String,
    /// A file holding the OIDC client secret (confidential clients).
    #[arg(long, env = "COSIGN_OIDC_CLIENT_SECRET_FILE")]
    oidc_client_secret_file: Option<PathBuf>,
    /// The loopback redirect URL for the browser flow (default: an ephemeral port).
    #[arg(long, env = "COSIGN_OIDC_REDIRECT_URL")]
    oidc_redirect_url: Option<String>,
    /// How to obtain a token when none is given.
    #[arg(long, env = "COSIGN_OIDC_PROVIDER", value_enum, default_value = "auto")]
    oidc_provider: Provider,
    /// Upload to the transparency log (cosign's --tlog-upload).
    #[arg(long, env = "COSIGN_TLOG_UPLOAD", default_value = "true", action = clap::ArgAction::Set)]
    tlog_upload: bool,
    /// Skip the confirmation that your identity goes into a public record.
    #[arg(long, short = 'y', env = "COSIGN_YES")]
    yes: bool,
    /// An RFC 3161 timestamp authority's endpoint (e.g. https://tsa.example/api/v1/timestamp):
    /// the signature gets a signed timestamp, kept in the bundle. Default: the signing
    /// config's timestamp authority, if it names one.
    #[arg(long, env = "COSIGN_TIMESTAMP_SERVER_URL")]
    timestamp_server_url: Option<String>,
}

#[derive(Args)]
struct SignBlobArgs {
    #[command(flatten)]
    sign: SignFlags,
    /// Write the bundle (v0.3) here.
    #[arg(long, env = "COSIGN_BUNDLE")]
    bundle: Option<PathBuf>,
    /// Write the base64 signature here.
    #[arg(long, env = "COSIGN_OUTPUT_SIGNATURE")]
    output_signature: Option<PathBuf>,
    /// Write the PEM certificate here (keyless).
    #[arg(long, env = "COSIGN_OUTPUT_CERTIFICATE")]
    output_certificate: Option<PathBuf>,
    /// Write the RFC 3161 timestamp here too, as cosign v2 writes it
    /// (`{"SignedRFC3161Timestamp": base64}`), for verify-blob --rfc3161-timestamp.
    #[arg(long, env = "COSIGN_RFC3161_TIMESTAMP")]
    rfc3161_timestamp: Option<PathBuf>,
    /// The artifact to sign.
    artifact: PathBuf,
}

#[derive(Args)]
struct AttestBlobArgs {
    #[command(flatten)]
    sign: SignFlags,
    /// The predicate (JSON; any content for --type custom).
    #[arg(long)]
    predicate: PathBuf,
    /// The predicate type: slsaprovenance, slsaprovenance02, slsaprovenance1, spdx,
    /// spdxjson, cyclonedx, vuln, openvex, custom, or a URI.
    #[arg(long = "type", default_value = "custom")]
    predicate_type: String,
    /// Write the bundle (v0.3) here.
    #[arg(long, env = "COSIGN_BUNDLE")]
    bundle: PathBuf,
    /// The artifact the statement is about.
    artifact: PathBuf,
}

#[derive(Args)]
struct GenerateArgs {
    /// The file name prefix.
    #[arg(long, default_value = "cosign")]
    output_key_prefix: String,
    /// Overwrite existing files.
    #[arg(long)]
    force: bool,
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

#[derive(Args)]
struct ConformanceSignArgs {
    #[arg(long)]
    identity_token: String,
    #[arg(long)]
    bundle: PathBuf,
    #[arg(long)]
    signing_config: Option<PathBuf>,
    #[arg(long)]
    in_toto: bool,
    artifact: PathBuf,
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
        Command::GenerateKeyPair(a) => keys::generate_key_pair(&a.output_key_prefix, a.force),
        Command::PublicKey(a) => {
            let signer = keys::load_private_key(&a.key)?;
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
            if !reqwest::Url::parse(m)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            {
                return Err(UsageError(format!(
                    "--mirror {m:?} is not an http(s) URL: write it as https://host[:port]"
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

/// The services to sign with: flags first, then the signing config (file or TUF).
struct Resolved {
    fulcio: Option<String>,
    rekor: Option<String>,
    oidc: Option<String>,
    tsa: Option<String>,
    public_instance: bool,
}

async fn resolve_services(trust: &TrustArgs, s: &SignFlags) -> anyhow::Result<Resolved> {
    let config = match &s.signing_config {
        Some(p) => Some(sigstack::trust::read_signing_config(p)?),
        None => {
            let all_given = (s.key.is_some() && !s.tlog_upload)
                || s.rekor_url.is_some()
                    && (s.key.is_some()
                        || (s.fulcio_url.is_some()
                            && (s.identity_token.is_some() || s.oidc_issuer.is_some())));
            if all_given {
                None
            } else {
                let m = trust.load(&http()?).await?;
                m.signing_config
            }
        }
    };
    let from = config.as_ref().map(Services::from_config);
    let pick = |flag: &Option<String>, cfg: Option<String>| flag.clone().or(cfg);
    let fulcio = pick(&s.fulcio_url, from.as_ref().and_then(|f| f.ca.clone()));
    let rekor = pick(&s.rekor_url, from.as_ref().and_then(|f| f.rekor.clone()));
    let oidc = pick(&s.oidc_issuer, from.as_ref().and_then(|f| f.oidc.clone()));
    let tsa = pick(
        &s.timestamp_server_url,
        from.as_ref().and_then(|f| f.tsa.clone()),
    );
    let public_instance = fulcio
        .as_deref()
        .is_some_and(|u| u.contains("sigstore.dev") || u.contains("sigstage.dev"));
    Ok(Resolved {
        fulcio,
        rekor,
        oidc,
        tsa,
        public_instance,
    })
}

/// Signs with the flags' key or identity; `what` decides what is signed.
async fn sign_with(
    trust: &TrustArgs,
    s: &SignFlags,
    digest_or_statement: SignWhat<'_>,
) -> anyhow::Result<Signed> {
    let http = http()?;
    let key = match &s.key {
        Some(p) => Some(keys::load_private_key(p)?),
        None => None,
    };
    let r = resolve_services(trust, s).await?;
    let rekor = if s.tlog_upload {
        Some(r.rekor.clone().context(
            "no transparency log: pass --rekor-url or a signing config that names one (or --tlog-upload=false)",
        )?)
    } else {
        eprintln!(
            "Warning: --tlog-upload=false: the signature is not logged, and verifiers that require a log entry will reject it"
        );
        None
    };
    let token = if key.is_none() {
        if r.fulcio.is_none() {
            bail!(
                "keyless signing needs a CA: pass --fulcio-url or a signing config that names one"
            );
        }
        sigstack::oidc::confirm_publication(s.yes, r.public_instance)?;
        Some(match &s.identity_token {
            Some(t) => t.clone(),
            None => {
                let issuer = r.oidc.clone().context(
                    "no identity token and no OIDC issuer: pass --identity-token or --oidc-issuer",
                )?;
                let secret = match &s.oidc_client_secret_file {
                    Some(p) => Some(
                        std::fs::read_to_string(p)
                            .with_context(|| format!("reading {}", p.display()))?
                            .trim()
                            .to_string(),
                    ),
                    None => None,
                };
                sigstack::oidc::identity_token(
                    &http,
                    &OidcOptions {
                        issuer: &issuer,
                        client_id: &s.oidc_client_id,
                        client_secret: secret.as_deref(),
                        redirect_url: s.oidc_redirect_url.as_deref(),
                        provider: s.oidc_provider,
                    },
                )
                .await
                .context("getting an identity token")?
            }
        })
    } else {
        None
    };
    let opts = SignOptions {
        fulcio_url: r.fulcio.as_deref().unwrap_or(""),
        rekor_url: rekor.as_deref(),
        identity_token: token.as_deref(),
        key: key.as_ref(),
        tsa_url: r.tsa.as_deref(),
    };
    match digest_or_statement {
        SignWhat::Digest(d) => sigstack::sign::sign_blob(&http, d, &opts).await,
        SignWhat::Statement(st) => sigstack::sign::attest(&http, st, &opts).await,
    }
}

enum SignWhat<'a> {
    Digest(&'a [u8; 32]),
    Statement(&'a [u8]),
}

fn write_file(p: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(p, bytes).with_context(|| format!("writing {}", p.display()))
}

/// Checks, before anything is signed or logged, that every output can be written: a log
/// entry is permanent, so a result that cannot be saved must stop the command first.
fn check_outputs<'a>(paths: impl IntoIterator<Item = &'a Option<PathBuf>>) -> anyhow::Result<()> {
    for p in paths.into_iter().flatten() {
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            bail!(
                "cannot write {}: the directory {} does not exist (nothing was signed)",
                p.display(),
                dir.display()
            );
        }
        if p.is_dir() {
            bail!(
                "cannot write {}: it is a directory (nothing was signed)",
                p.display()
            );
        }
    }
    Ok(())
}

fn log_index_of(bundle: &Value) -> Option<i64> {
    bundle
        .pointer("/verificationMaterial/tlogEntries/0/logIndex")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}

fn report_signed(signed: &Signed, bundle: Option<&Path>, signature_file: bool, out: Output) {
    let index = log_index_of(&signed.bundle);
    match out {
        Output::Json => print_json(&json!({
            "bundle": bundle,
            "logIndex": index,
            "signature": STANDARD.encode(&signed.signature),
            "certificate": signed.certificate.as_ref().map(|c| c.to_pem()),
        })),
        Output::Text => {
            if let Some(i) = index {
                eprintln!("tlog entry created with index: {i}");
            }
            if let Some(b) = bundle {
                eprintln!("Wrote bundle to file {}", b.display());
            }
            if bundle.is_none() && !signature_file {
                println!("{}", STANDARD.encode(&signed.signature));
            }
        }
    }
}

async fn sign_blob(trust: &TrustArgs, a: &SignBlobArgs, out: Output) -> anyhow::Result<()> {
    if a.bundle.is_none() && a.output_signature.is_none() && out == Output::Text {
        eprintln!(
            "Note: no --bundle: only the signature is printed; pass --bundle FILE to keep the proof"
        );
    }
    check_outputs([
        &a.bundle,
        &a.output_signature,
        &a.output_certificate,
        &a.rfc3161_timestamp,
    ])?;
    if a.rfc3161_timestamp.is_some()
        && a.sign.timestamp_server_url.is_none()
        && resolve_services(trust, &a.sign).await?.tsa.is_none()
    {
        return Err(UsageError(
            "--rfc3161-timestamp needs a timestamp authority: pass --timestamp-server-url or a signing config that names one".into(),
        )
        .into());
    }
    let digest = hash_file(&a.artifact)?;
    let signed = sign_with(trust, &a.sign, SignWhat::Digest(&digest)).await?;
    if let (Some(p), Some(ts)) = (&a.rfc3161_timestamp, &signed.timestamp) {
        // cosign v2's file: its RFC3161Timestamp struct as JSON
        write_file(
            p,
            &serde_json::to_vec(&json!({"SignedRFC3161Timestamp": STANDARD.encode(ts)}))?,
        )?;
    }
    if let Some(p) = &a.bundle {
        write_file(p, &serde_json::to_vec_pretty(&signed.bundle)?)?;
    }
    if let Some(p) = &a.output_signature {
        write_file(p, STANDARD.encode(&signed.signature).as_bytes())?;
    }
    if let Some(p) = &a.output_certificate {
        match &signed.certificate {
            Some(c) => write_file(p, c.to_pem().as_bytes())?,
            None => bail!("--output-certificate: signing with a key makes no certificate"),
        }
    }
    report_signed(
        &signed,
        a.bundle.as_deref(),
        a.output_signature.is_some(),
        out,
    );
    Ok(())
}

/// cosign's predicate type names.
fn predicate_type(name: &str) -> anyhow::Result<String> {
    Ok(match name {
        "slsaprovenance" | "slsaprovenance02" => "https://slsa.dev/provenance/v0.2",
        "slsaprovenance1" => "https://slsa.dev/provenance/v1",
        "spdx" | "spdxjson" => "https://spdx.dev/Document",
        "cyclonedx" => "https://cyclonedx.org/bom",
        "vuln" => "https://cosign.sigstore.dev/attestation/vuln/v1",
        "openvex" => "https://openvex.dev/ns",
        "custom" => CUSTOM_PREDICATE,
        uri if uri.contains("://") => uri,
        other => bail!("unknown predicate type {other:?}: use one of slsaprovenance, slsaprovenance1, spdx, spdxjson, cyclonedx, vuln, openvex, custom, or a URI"),
    }
    .to_string())
}

/// The custom predicate type, whose predicate cosign always wraps.
const CUSTOM_PREDICATE: &str = "https://cosign.sigstore.dev/attestation/v1";

/// A predicate as cosign makes it: for the custom type, the file's text wrapped as
/// `{"Data": text, "Timestamp": now}` whatever it holds; for every other type, its JSON.
fn predicate_of(ptype: &str, raw: &[u8], path: &Path) -> anyhow::Result<Value> {
    if ptype == CUSTOM_PREDICATE {
        return Ok(json!({
            "Data": String::from_utf8_lossy(raw),
            "Timestamp": sigstack_types::time::rfc3339(now()),
        }));
    }
    serde_json::from_slice(raw)
        .with_context(|| format!("the predicate {} is not JSON", path.display()))
}

async fn attest_blob(trust: &TrustArgs, a: &AttestBlobArgs, out: Output) -> anyhow::Result<()> {
    let ptype = predicate_type(&a.predicate_type)?;
    let raw = std::fs::read(&a.predicate)
        .with_context(|| format!("reading {}", a.predicate.display()))?;
    let predicate = predicate_of(&ptype, &raw, &a.predicate)?;
    check_outputs([&Some(a.bundle.clone())])?;
    let digest = hash_file(&a.artifact)?;
    let name = a
        .artifact
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": hex::encode(digest)}}],
        "predicateType": ptype,
        "predicate": predicate,
    });
    let signed = sign_with(
        trust,
        &a.sign,
        SignWhat::Statement(&serde_json::to_vec(&statement)?),
    )
    .await?;
    write_file(&a.bundle, &serde_json::to_vec_pretty(&signed.bundle)?)?;
    report_signed(&signed, Some(&a.bundle), false, out);
    Ok(())
}

async fn conformance_sign(trust: &TrustArgs, a: &ConformanceSignArgs) -> anyhow::Result<()> {
    let flags = SignFlags {
        key: None,
        fulcio_url: None,
        rekor_url: None,
        signing_config: a.signing_config.clone(),
        identity_token: Some(a.identity_token.clone()),
        oidc_issuer: None,
        oidc_client_id: "sigstore".into(),
        oidc_client_secret_file: None,
        oidc_redirect_url: None,
        oidc_provider: Provider::Auto,
        tlog_upload: true,
        yes: true,
        timestamp_server_url: None,
    };
    check_outputs([&Some(a.bundle.clone())])?;
    let signed = if a.in_toto {
        let st = std::fs::read(&a.artifact)
            .with_context(|| format!("reading {}", a.artifact.display()))?;
        sign_with(trust, &flags, SignWhat::Statement(&st)).await?
    } else {
        let digest = hash_file(&a.artifact)?;
        sign_with(trust, &flags, SignWhat::Digest(&digest)).await?
    };
    write_file(&a.bundle, &serde_json::to_vec_pretty(&signed.bundle)?)
}
