//! The command line: cosign's subcommands and flags (every flag also read from
//! `COSIGN_<FLAG>`), rekor-cli's under `log`, and the conformance protocol's.

mod images;

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
    Log(LogCommand),
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
    Tree(images::ImageRefArgs),
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
struct Identity {
    /// The expected identity (certificate SAN).
    #[arg(long, env = "COSIGN_CERTIFICATE_IDENTITY")]
    certificate_identity: Option<String>,
    /// A regular expression the identity must match; like cosign's, it matches anywhere
    /// in the value unless anchored (write '^…$').
    #[arg(
        long,
        env = "COSIGN_CERTIFICATE_IDENTITY_REGEXP",
        conflicts_with = "certificate_identity"
    )]
    certificate_identity_regexp: Option<String>,
    /// The expected OIDC issuer.
    #[arg(long, env = "COSIGN_CERTIFICATE_OIDC_ISSUER")]
    certificate_oidc_issuer: Option<String>,
    /// A regular expression the issuer must match (unanchored unless you write '^…$').
    #[arg(
        long,
        env = "COSIGN_CERTIFICATE_OIDC_ISSUER_REGEXP",
        conflicts_with = "certificate_oidc_issuer"
    )]
    certificate_oidc_issuer_regexp: Option<String>,
    /// A public key (PEM) for artifacts signed with a managed key.
    #[arg(long, env = "COSIGN_KEY")]
    key: Option<PathBuf>,
    /// The GitHub Actions trigger the certificate must name (e.g. push).
    #[arg(long, env = "COSIGN_CERTIFICATE_GITHUB_WORKFLOW_TRIGGER")]
    certificate_github_workflow_trigger: Option<String>,
    /// The commit SHA the certificate must name.
    #[arg(long, env = "COSIGN_CERTIFICATE_GITHUB_WORKFLOW_SHA")]
    certificate_github_workflow_sha: Option<String>,
    /// The workflow name the certificate must name.
    #[arg(long, env = "COSIGN_CERTIFICATE_GITHUB_WORKFLOW_NAME")]
    certificate_github_workflow_name: Option<String>,
    /// The repository (owner/name) the certificate must name.
    #[arg(long, env = "COSIGN_CERTIFICATE_GITHUB_WORKFLOW_REPOSITORY")]
    certificate_github_workflow_repository: Option<String>,
    /// The git ref the certificate must name (e.g. refs/heads/main).
    #[arg(long, env = "COSIGN_CERTIFICATE_GITHUB_WORKFLOW_REF")]
    certificate_github_workflow_ref: Option<String>,
    /// Do not require or check a transparency-log entry (unsafe: nothing then shows the
    /// signature was published; a certificate is checked at a signed timestamp, else now).
    #[arg(long, env = "COSIGN_INSECURE_IGNORE_TLOG")]
    insecure_ignore_tlog: bool,
    /// Do not require an SCT in the certificate (unsafe: the certificate may never have been
    /// logged in a CT log).
    #[arg(long, env = "COSIGN_INSECURE_IGNORE_SCT")]
    insecure_ignore_sct: bool,
}

impl Identity {
    /// The checks beyond the policy (and those switched off), with a warning for each
    /// switched off, as cosign prints.
    fn options(&self) -> sigstack::verify::Options {
        use sigstack::verify::Extension;
        let mut extensions = Vec::new();
        for (oid, name, v) in [
            (
                "1.3.6.1.4.1.57264.1.2",
                "GitHub workflow trigger",
                &self.certificate_github_workflow_trigger,
            ),
            (
                "1.3.6.1.4.1.57264.1.3",
                "GitHub workflow SHA",
                &self.certificate_github_workflow_sha,
            ),
            (
                "1.3.6.1.4.1.57264.1.4",
                "GitHub workflow name",
                &self.certificate_github_workflow_name,
            ),
            (
                "1.3.6.1.4.1.57264.1.5",
                "GitHub workflow repository",
                &self.certificate_github_workflow_repository,
            ),
            (
                "1.3.6.1.4.1.57264.1.6",
                "GitHub workflow ref",
                &self.certificate_github_workflow_ref,
            ),
        ] {
            if let Some(want) = v {
                extensions.push(Extension {
                    oid,
                    name,
                    want: want.clone(),
                });
            }
        }
        if self.insecure_ignore_tlog {
            eprintln!(
                "Warning: --insecure-ignore-tlog: the transparency log is not checked; nothing shows this signature was published"
            );
        }
        if self.insecure_ignore_sct {
            eprintln!(
                "Warning: --insecure-ignore-sct: the certificate need not have been logged in a CT log"
            );
        }
        sigstack::verify::Options {
            extensions,
            ignore_tlog: self.insecure_ignore_tlog,
            ignore_sct: self.insecure_ignore_sct,
        }
    }
}

#[derive(Args)]
struct VerifyBlobArgs {
    /// The Sigstore bundle (v0.1–v0.3).
    #[arg(long, env = "COSIGN_BUNDLE")]
    bundle: Option<PathBuf>,
    /// A detached signature: a file holding it in base64, or (as cosign takes it) the
    /// base64 itself; verified with --certificate or --key, its log entry looked up in
    /// the transparency log.
    #[arg(long, conflicts_with = "bundle")]
    signature: Option<PathBuf>,
    /// The signing certificate (PEM): with --signature, the certificate to verify it with;
    /// with --bundle, it must be the certificate the bundle carries.
    #[arg(long, env = "COSIGN_CERTIFICATE")]
    certificate: Option<PathBuf>,
    /// The transparency log to look the entry up in (with --signature).
    #[arg(long, env = "COSIGN_REKOR_URL")]
    rekor_url: Option<String>,
    #[command(flatten)]
    identity: Identity,
    /// The artifact, or `sha256:<hex>` of it.
    artifact: String,
}

#[derive(Args)]
struct VerifyAttestationArgs {
    /// The attestation bundle.
    #[arg(long, env = "COSIGN_BUNDLE")]
    bundle: PathBuf,
    /// The predicate type the statement must have (same names as attest-blob).
    #[arg(long = "type")]
    predicate_type: Option<String>,
    #[command(flatten)]
    identity: Identity,
    /// Check that the statement names the artifact among its subjects (cosign's default).
    /// `--check-claims=false` verifies the envelope alone, without an artifact.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", env = "COSIGN_CHECK_CLAIMS")]
    check_claims: bool,
    /// The artifact, or `sha256:<hex>` of it (needed unless --check-claims=false).
    artifact: Option<String>,
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

#[derive(Args)]
struct LogServer {
    /// The transparency log (Rekor v1 API). Default: from the signing config.
    #[arg(
        long,
        env = "COSIGN_REKOR_URL",
        alias = "rekor-server",
        alias = "rekor_server"
    )]
    rekor_url: Option<String>,
}

#[derive(Subcommand)]
enum LogCommand {
    /// Entry UUIDs by e-mail, artifact digest, artifact or public key.
    #[command(
        after_help = "Examples:\n  sigstack log search --email you@example.com\n  sigstack log search --artifact file\n  sigstack log search --sha sha256:<hex>"
    )]
    Search {
        #[command(flatten)]
        server: LogServer,
        #[arg(long)]
        email: Option<String>,
        /// A digest: `sha256:<hex>` or bare hex.
        #[arg(long)]
        sha: Option<String>,
        /// A file whose SHA-256 to search for.
        #[arg(long)]
        artifact: Option<PathBuf>,
        /// A PEM public key or certificate.
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// Match all criteria (default: any).
        #[arg(long, value_parser = ["and", "or"], default_value = "or")]
        operator: String,
    },
    /// An entry by UUID or log index, verified before it is shown.
    Get {
        #[command(flatten)]
        server: LogServer,
        #[arg(long, conflicts_with = "log_index")]
        uuid: Option<String>,
        #[arg(long)]
        log_index: Option<u64>,
    },
    /// Proves an entry's inclusion against the log's signed checkpoint.
    Verify {
        #[command(flatten)]
        server: LogServer,
        #[arg(long)]
        uuid: Option<String>,
        #[arg(long)]
        log_index: Option<u64>,
        /// With --signature and --public-key: the hashedrekord entry for this artifact.
        #[arg(long)]
        artifact: Option<PathBuf>,
        #[arg(long, requires = "artifact")]
        signature: Option<PathBuf>,
        /// PEM public key or certificate that made --signature.
        #[arg(long, requires = "artifact")]
        public_key: Option<PathBuf>,
    },
    /// The log's size and root, its checkpoint verified and proven consistent with the
    /// last one seen.
    Info {
        #[command(flatten)]
        server: LogServer,
    },
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
        Command::Log(c) => log(&cli.trust, c, out).await,
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
        Some(m) => m.clone(),
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
    let public_instance = fulcio
        .as_deref()
        .is_some_and(|u| u.contains("sigstore.dev") || u.contains("sigstage.dev"));
    Ok(Resolved {
        fulcio,
        rekor,
        oidc,
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
    check_outputs([&a.bundle, &a.output_signature, &a.output_certificate])?;
    let digest = hash_file(&a.artifact)?;
    let signed = sign_with(trust, &a.sign, SignWhat::Digest(&digest)).await?;
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

fn policy_of(id: &Identity) -> anyhow::Result<Policy> {
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
        &id.certificate_identity,
        &id.certificate_identity_regexp,
        "--certificate-identity-regexp",
    )?;
    let issuer = matcher(
        &id.certificate_oidc_issuer,
        &id.certificate_oidc_issuer_regexp,
        "--certificate-oidc-issuer-regexp",
    )?;
    Ok(match (&id.key, identity, issuer) {
        (Some(k), None, None) => Policy::Key(load_public_key(k)?),
        (None, Some(identity), Some(issuer)) => Policy::Identity { identity, issuer },
        (Some(_), _, _) => {
            return Err(UsageError(
                "--key and the certificate identity flags exclude each other".into(),
            )
            .into());
        }
        _ => {
            return Err(UsageError(
                "keyless verification needs --certificate-identity (or -regexp) and --certificate-oidc-issuer (or -regexp); for a key, give --key".into(),
            )
            .into());
        }
    })
}

/// A public key from a PEM `PUBLIC KEY` file. As cosign's key loader, a certificate is
/// refused: a certificate's key is trusted only through its chain (use --certificate).
fn load_public_key(p: &Path) -> anyhow::Result<PublicKey> {
    let text = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
    let blocks = sigstack_crypto::pem::decode_all(&text)
        .with_context(|| format!("{} holds no PEM public key", p.display()))?;
    if blocks.iter().any(|b| b.label == "CERTIFICATE") {
        return Err(UsageError(format!(
            "{} holds a certificate, not a public key: --key takes a public key (give a certificate with --certificate, verified against the trusted CAs)",
            p.display()
        ))
        .into());
    }
    PublicKey::from_pem(&text).with_context(|| format!("{} holds no PEM public key", p.display()))
}

fn report_verified(v: &Verified, extra: Value, out: Output) {
    match out {
        Output::Json => {
            let mut j = json!({"verified": true, "signingTime": sigstack_types::time::rfc3339(v.signing_time), "logIndex": v.log_index});
            if let (Some(o), Some(e)) = (j.as_object_mut(), extra.as_object()) {
                o.extend(e.clone());
            }
            print_json(&j);
        }
        Output::Text => eprintln!("Verified OK"),
    }
}

async fn trust_material(trust: &TrustArgs) -> anyhow::Result<Material> {
    trust.load(&http()?).await
}

async fn verify_blob(trust: &TrustArgs, a: &VerifyBlobArgs, out: Output) -> anyhow::Result<()> {
    let policy = policy_of(&a.identity)?;
    let artifact = artifact_of(&a.artifact)?;
    let m = trust_material(trust).await?;
    let bundle = match (&a.bundle, &a.signature) {
        (Some(b), _) => {
            let bundle = read_bundle(b)?;
            if let Some(c) = &a.certificate {
                same_certificate(c, &bundle)?;
            }
            bundle
        }
        (None, Some(sig)) => {
            if trust.offline {
                bail!(
                    "--offline needs a bundle (--bundle): a detached signature's log entry must be looked up online"
                );
            }
            detached_bundle(&m, a, sig, &artifact, &policy).await?
        }
        (None, None) => bail!("give --bundle, or --signature with --certificate or --key"),
    };
    let v = verify_with(
        &bundle,
        &m.trusted_root,
        &artifact,
        &policy,
        now(),
        &a.identity.options(),
    )
    .map_err(|e| VerificationFailed(e.to_string()))?;
    report_verified(&v, json!({}), out);
    Ok(())
}

/// A bundle file: a Sigstore bundle, or cosign v2's default blob bundle, converted (its
/// JSON read as strictly as a Sigstore bundle's).
fn read_bundle(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes =
        sigstack::bundle::read_file(path).with_context(|| format!("reading {}", path.display()))?;
    if !sigstack::layout::is_cosign_v2_blob_bundle(&bytes) {
        return Ok(bytes);
    }
    let b = sigstack::layout::cosign_v2_blob_bundle(&bytes)
        .map_err(|e| VerificationFailed(format!("cosign's blob bundle: {e:#}")))?;
    Ok(serde_json::to_vec(&b)?)
}

/// `--certificate` beside a bundle: it must be the bundle's own certificate, never a
/// silently ignored second opinion.
fn same_certificate(path: &Path, bundle: &[u8]) -> anyhow::Result<()> {
    let given = read_certificate(path)?;
    match sigstack::verify::bundle_certificate(bundle) {
        Ok(Some(der)) if der == given.der() => Ok(()),
        Ok(Some(_)) => Err(VerificationFailed(format!(
            "the certificate in {} is not the one the bundle carries",
            path.display()
        ))
        .into()),
        Ok(None) => Err(UsageError(
            "--certificate was given but the bundle is signed with a key (use --key)".into(),
        )
        .into()),
        Err(e) => Err(VerificationFailed(e.to_string()).into()),
    }
}

/// The first certificate of a PEM file.
fn read_certificate(path: &Path) -> anyhow::Result<Certificate> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let block = sigstack_crypto::pem::decode_all(&text)?
        .into_iter()
        .find(|b| b.label == "CERTIFICATE")
        .with_context(|| format!("{} holds no PEM certificate", path.display()))?;
    Ok(Certificate::from_der(&block.der)?)
}

/// A bundle for a detached signature and certificate (or key): the log entry is found in
/// the transparency log by its content.
async fn detached_bundle(
    m: &Material,
    a: &VerifyBlobArgs,
    sig: &Path,
    artifact: &Artifact,
    policy: &Policy,
) -> anyhow::Result<Vec<u8>> {
    let inline = sig.to_str().filter(|s| {
        !sig.exists() && s.len() >= 16 && STANDARD.decode(s).is_ok_and(|b| !b.is_empty())
    });
    let sig_b64 = match inline {
        Some(s) => s.to_string(),
        None => std::fs::read_to_string(sig)
            .with_context(|| {
                format!(
                    "reading {} (--signature takes a file or the base64 signature itself)",
                    sig.display()
                )
            })?
            .trim()
            .to_string(),
    };
    let sig_bytes = STANDARD
        .decode(&sig_b64)
        .with_context(|| format!("{} is not a base64 signature", sig.display()))?;
    let (verifier_pem, material) = match (&a.certificate, policy) {
        (Some(c), Policy::Identity { .. }) => {
            let cert = read_certificate(c)?;
            (
                cert.to_pem(),
                json!({"certificate": {"rawBytes": STANDARD.encode(cert.der())}}),
            )
        }
        (None, Policy::Key(k)) => (k.to_pem(), json!({"publicKey": {"hint": ""}})),
        (None, Policy::Identity { .. }) => bail!("--signature needs --certificate (or --key)"),
        (Some(_), Policy::Key(_)) => bail!("--certificate and --key exclude each other"),
    };
    // the signature first: the log refuses to search for an entry that does not verify
    let signer_key = match (&material.get("certificate"), policy) {
        (Some(_), _) => sigstack_crypto::KeyMaterial::from_pem(verifier_pem.as_bytes())?
            .public_key()
            .clone(),
        (None, Policy::Key(k)) => k.clone(),
        (None, Policy::Identity { .. }) => bail!("--signature needs --certificate (or --key)"),
    };
    sigstack::verify::verify_message_signature(&signer_key, artifact, &sig_bytes)
        .map_err(|e| VerificationFailed(e.to_string()))?;
    let digest = artifact.sha256();
    let proposed = sigstack::rekor::hashedrekord(&digest, &sig_b64, verifier_pem.as_bytes());
    let url = match &a.rekor_url {
        Some(u) => u.clone(),
        None => m
            .signing_config
            .as_ref()
            .and_then(|c| Services::from_config(c).rekor)
            .context("no transparency log to look the entry up in: pass --rekor-url")?,
    };
    let http = http()?;
    let rekor = Rekor { http: &http, url };
    let found = rekor.entries_like(&proposed).await?;
    let (_, e) = found
        .into_iter()
        .next()
        .ok_or_else(|| VerificationFailed("the signature is not in the transparency log".into()))?;
    let mut material = material;
    material["tlogEntries"] = json!([sigstack::rekor::bundle_entry(&e)?]);
    Ok(serde_json::to_vec(&json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": material,
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": STANDARD.encode(digest)},
            "signature": STANDARD.encode(sig_bytes),
        }
    }))?)
}

async fn verify_attestation(
    trust: &TrustArgs,
    a: &VerifyAttestationArgs,
    out: Output,
) -> anyhow::Result<()> {
    let policy = policy_of(&a.identity)?;
    let artifact = match (&a.artifact, a.check_claims) {
        (Some(x), true) => artifact_of(x)?,
        (None, true) => {
            return Err(UsageError(
                "give the artifact (or sha256:<hex>) whose claims to check, or --check-claims=false to verify the envelope alone".into(),
            )
            .into());
        }
        (Some(_), false) => {
            return Err(UsageError(
                "an artifact was given with --check-claims=false: its subjects would not be checked".into(),
            )
            .into());
        }
        (None, false) => {
            eprintln!(
                "Warning: --check-claims=false: the statement's subjects are not checked against any artifact"
            );
            Artifact::Unchecked
        }
    };
    let m = trust_material(trust).await?;
    let bundle = read_bundle(&a.bundle)?;
    let v = verify_with(
        &bundle,
        &m.trusted_root,
        &artifact,
        &policy,
        now(),
        &a.identity.options(),
    )
    .map_err(|e| VerificationFailed(e.to_string()))?;
    // the statement is exactly what was signed (verify refuses any other DSSE payload)
    let (Some(statement), Some(got)) = (v.statement_json(), v.predicate_type.clone()) else {
        return Err(
            VerificationFailed("the bundle holds no attestation (DSSE envelope)".into()).into(),
        );
    };
    let statement = statement.map_err(|e| VerificationFailed(e.to_string()))?;
    if let Some(t) = &a.predicate_type {
        let want = predicate_type(t)?;
        if got != want {
            return Err(VerificationFailed(format!(
                "the attestation's predicate type {got:?} is not {want:?}"
            ))
            .into());
        }
    }
    if out == Output::Text {
        println!("{}", serde_json::to_string(&statement).unwrap_or_default());
    }
    report_verified(
        &v,
        json!({"predicateType": got, "statement": statement}),
        out,
    );
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

async fn rekor_url(trust: &TrustArgs, s: &LogServer) -> anyhow::Result<(String, Material)> {
    let m = trust_material(trust).await?;
    let url = match &s.rekor_url {
        Some(u) => u.clone(),
        None => m
            .signing_config
            .as_ref()
            .and_then(|c| Services::from_config(c).rekor)
            .context("no transparency log: pass --rekor-url")?,
    };
    Ok((url, m))
}

fn describe_consistency(c: &Consistency) -> String {
    match c {
        Consistency::First => "first checkpoint seen of this log; kept".into(),
        Consistency::From(n) => format!("consistent with the checkpoint of size {n} seen before"),
    }
}

async fn log(trust: &TrustArgs, c: LogCommand, out: Output) -> anyhow::Result<()> {
    let http = http()?;
    match c {
        LogCommand::Search {
            server,
            email,
            sha,
            artifact,
            public_key,
            operator,
        } => {
            let (url, _) = rekor_url(trust, &server).await?;
            let rekor = Rekor { http: &http, url };
            let mut q = json!({});
            if let Some(e) = email {
                q["email"] = json!(e);
            }
            let hash = match (sha, artifact) {
                (Some(s), _) => Some(if s.contains(':') {
                    s
                } else {
                    format!("sha256:{s}")
                }),
                (None, Some(p)) => Some(format!("sha256:{}", hex::encode(hash_file(&p)?))),
                (None, None) => None,
            };
            if let Some(h) = hash {
                q["hash"] = json!(h);
            }
            if let Some(p) = public_key {
                let text = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
                q["publicKey"] = json!({"format": "x509", "content": STANDARD.encode(text)});
            }
            if q.as_object().is_some_and(|o| o.is_empty()) {
                bail!("give at least one of --email, --sha, --artifact, --public-key");
            }
            q["operator"] = json!(operator);
            let uuids = rekor.search(&q).await?;
            match out {
                Output::Json => print_json(&json!(uuids)),
                Output::Text => {
                    if uuids.is_empty() {
                        eprintln!("No matching entries were found");
                    }
                    for u in uuids {
                        println!("{u}");
                    }
                }
            }
            Ok(())
        }
        LogCommand::Get {
            server,
            uuid,
            log_index,
        } => {
            let (url, m) = rekor_url(trust, &server).await?;
            let rekor = Rekor { http: &http, url };
            let (id, e) = match (uuid, log_index) {
                (Some(u), _) => rekor.entry_by_uuid(&u).await?,
                (None, Some(i)) => rekor.entry_by_index(i).await?,
                (None, None) => bail!("give --uuid or --log-index"),
            };
            let cp = sigstack::rekor::verify_entry(&e, &m.trusted_root, now())
                .map_err(|err| VerificationFailed(format!("{err:#}")))?;
            let note = e
                .verification
                .as_ref()
                .and_then(|v| v.inclusion_proof.as_ref())
                .map(|p| p.checkpoint.clone())
                .unwrap_or_default();
            let consistency = sigstack::rekor::observe(&rekor, &note, &cp, &m.trusted_root).await?;
            let body: Value = serde_json::from_slice(&STANDARD.decode(&e.body)?)?;
            match out {
                Output::Json => print_json(&json!({
                    "uuid": id, "logIndex": e.log_index, "integratedTime": e.integrated_time,
                    "logID": e.log_id, "body": body, "verified": true,
                    "consistency": describe_consistency(&consistency),
                })),
                Output::Text => {
                    println!("LogID: {}", e.log_id);
                    println!("Index: {}", e.log_index);
                    println!(
                        "IntegratedTime: {}",
                        sigstack_types::time::rfc3339(e.integrated_time)
                    );
                    println!("UUID: {id}");
                    println!("Body: {}", serde_json::to_string_pretty(&body)?);
                    eprintln!(
                        "Inclusion verified against the signed checkpoint of size {} ({})",
                        cp.size,
                        describe_consistency(&consistency)
                    );
                }
            }
            Ok(())
        }
        LogCommand::Verify {
            server,
            uuid,
            log_index,
            artifact,
            signature,
            public_key,
        } => {
            let (url, m) = rekor_url(trust, &server).await?;
            let rekor = Rekor { http: &http, url };
            let (id, e) = match (uuid, log_index, artifact) {
                (Some(u), _, _) => rekor.entry_by_uuid(&u).await?,
                (None, Some(i), _) => rekor.entry_by_index(i).await?,
                (None, None, Some(p)) => {
                    let (Some(sig), Some(key)) = (signature, public_key) else {
                        bail!("--artifact needs --signature and --public-key");
                    };
                    let sig_b64 = std::fs::read_to_string(&sig)
                        .with_context(|| format!("reading {}", sig.display()))?
                        .trim()
                        .to_string();
                    let key_pem = std::fs::read(&key)
                        .with_context(|| format!("reading {}", key.display()))?;
                    let proposed =
                        sigstack::rekor::hashedrekord(&hash_file(&p)?, &sig_b64, &key_pem);
                    rekor
                        .entries_like(&proposed)
                        .await?
                        .into_iter()
                        .next()
                        .ok_or_else(|| {
                            VerificationFailed("no such entry in the transparency log".into())
                        })?
                }
                _ => bail!(
                    "give --uuid, --log-index, or --artifact with --signature and --public-key"
                ),
            };
            let cp = sigstack::rekor::verify_entry(&e, &m.trusted_root, now())
                .map_err(|err| VerificationFailed(format!("{err:#}")))?;
            let note = e
                .verification
                .as_ref()
                .and_then(|v| v.inclusion_proof.as_ref())
                .map(|p| p.checkpoint.clone())
                .unwrap_or_default();
            let consistency = sigstack::rekor::observe(&rekor, &note, &cp, &m.trusted_root).await?;
            let proof = e
                .verification
                .as_ref()
                .and_then(|v| v.inclusion_proof.as_ref());
            match out {
                Output::Json => print_json(&json!({
                    "uuid": id, "logIndex": e.log_index, "verified": true, "treeSize": cp.size,
                    "rootHash": hex::encode(cp.root), "hashes": proof.map(|p| p.hashes.clone()),
                    "consistency": describe_consistency(&consistency),
                })),
                Output::Text => {
                    println!("Current Root Hash: {}", hex::encode(cp.root));
                    println!("Entry Hash: {id}");
                    println!("Entry Index: {}", e.log_index);
                    println!("Current Tree Size: {}", cp.size);
                    println!("Checkpoint:\n{note}");
                    if let Some(p) = proof {
                        println!("Inclusion Proof:");
                        for h in &p.hashes {
                            println!("  {h}");
                        }
                    }
                    eprintln!(
                        "Entry inclusion verified OK ({})",
                        describe_consistency(&consistency)
                    );
                }
            }
            Ok(())
        }
        LogCommand::Info { server } => {
            let (url, m) = rekor_url(trust, &server).await?;
            let rekor = Rekor { http: &http, url };
            let info = rekor.info().await?;
            let cp = sigstack::rekor::verify_tree_head(&info.signed_tree_head, &m.trusted_root)
                .map_err(|err| VerificationFailed(format!("{err:#}")))?;
            if cp.size != info.tree_size as u64
                || hex::encode(cp.root) != info.root_hash.to_ascii_lowercase()
            {
                return Err(VerificationFailed(
                    "the log's stated size or root differs from its signed checkpoint".into(),
                )
                .into());
            }
            let consistency =
                sigstack::rekor::observe(&rekor, &info.signed_tree_head, &cp, &m.trusted_root)
                    .await
                    .map_err(|err| VerificationFailed(format!("{err:#}")))?;
            match out {
                Output::Json => print_json(&json!({
                    "treeSize": info.tree_size, "rootHash": info.root_hash, "treeID": info.tree_id,
                    "signedTreeHead": info.signed_tree_head, "verified": true,
                    "consistency": describe_consistency(&consistency),
                })),
                Output::Text => {
                    println!("Verification Successful!");
                    println!("Active Tree Size: {}", info.tree_size);
                    println!("Total Tree Size: {}", info.tree_size);
                    println!("Root Hash: {}", info.root_hash);
                    println!("TreeID: {}", info.tree_id);
                    println!("Consistency: {}", describe_consistency(&consistency));
                }
            }
            let _ = std::io::stdout().flush();
            Ok(())
        }
    }
}
