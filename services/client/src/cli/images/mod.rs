//! Container images, as cosign does them: `sign`, `verify`, `attest`,
//! `verify-attestation`, and signature management (`triangulate`, `generate`, `attach`,
//! `download`, `copy`, `clean`, `tree`). Signatures are written in cosign v3's layout (a
//! Sigstore bundle in an OCI 1.1 referrer, with the tag-schema fallback index) or, with
//! `--new-bundle-format=false`, cosign's legacy `sha256-<hex>.sig` image (under its tag or,
//! with `--registry-referrers-mode oci-1-1`, as a referrer); all are read. They live beside
//! the image or in the repository `COSIGN_REPOSITORY` names.

mod check;
mod manage;
mod publish;

pub use check::{verify_attestation, verify_image};
pub use manage::{clean, copy, download, generate, tree, triangulate};
pub use publish::{attach_signature, attest, sign};

use super::*;
pub use sigstack::attached::Sites;
use sigstack::layout::{self, *};
use sigstack::registry::{self, Registry, RegistryArgs, with_digest, with_tag};

#[derive(Args)]
pub struct ImageSignArgs {
    #[command(flatten)]
    sign: SignFlags,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Annotations to sign into the payload (`-a key=value`, repeatable).
    #[arg(short = 'a', long = "annotations", value_parser = parse_kv)]
    annotations: Vec<(String, String)>,
    /// Push the signature (false: only write --output-signature/--output-certificate).
    #[arg(long, default_value = "true", action = clap::ArgAction::Set)]
    upload: bool,
    /// Write the signature (base64) here.
    #[arg(long)]
    output_signature: Option<PathBuf>,
    /// Write the signed payload here.
    #[arg(long)]
    output_payload: Option<PathBuf>,
    /// Write the certificate (PEM) here.
    #[arg(long)]
    output_certificate: Option<PathBuf>,
    /// Sign this simple-signing payload instead of generating one (legacy layout).
    #[arg(long)]
    payload: Option<PathBuf>,
    /// Sign every image of a multi-platform index too.
    #[arg(long, short = 'r')]
    recursive: bool,
    /// cosign v3's layout: a bundle in an OCI referrer (false: the legacy .sig image).
    #[arg(long, env = "COSIGN_NEW_BUNDLE_FORMAT", default_value = "true", action = clap::ArgAction::Set)]
    new_bundle_format: bool,
    /// Where a legacy signature goes: `legacy`, the `sha256-<hex>.sig` tag; `oci-1-1`, the
    /// same signature manifest as an OCI 1.1 referrer of the image (cosign's experimental
    /// mode). Bundles (the default layout) are always referrers.
    #[arg(long, value_enum, default_value = "legacy")]
    registry_referrers_mode: ReferrersMode,
    /// The image (a digest reference; a tag is resolved, with a warning).
    image: String,
}

/// cosign's `--registry-referrers-mode`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReferrersMode {
    /// Tags in the tag schema (`sha256-<hex>.sig`, `.att`).
    Legacy,
    /// OCI 1.1 referrers (the registry's API, else the fallback tag index).
    #[value(name = "oci-1-1")]
    Oci11,
}

#[derive(Args)]
pub struct ImageVerifyArgs {
    #[command(flatten)]
    identity: Identity,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Annotations the signed payload must carry (`-a key=value`).
    #[arg(short = 'a', long = "annotations", value_parser = parse_kv)]
    annotations: Vec<(String, String)>,
    /// The transparency log to look entries up in for signatures attached without one.
    #[arg(long, env = "COSIGN_REKOR_URL")]
    rekor_url: Option<String>,
    pub image: String,
}

#[derive(Args)]
pub struct ImageAttestArgs {
    #[command(flatten)]
    sign: SignFlags,
    #[command(flatten)]
    registry: RegistryArgs,
    /// The predicate (JSON; any content for --type custom).
    #[arg(long)]
    predicate: PathBuf,
    /// slsaprovenance, slsaprovenance1, spdx, spdxjson, cyclonedx, vuln, openvex, custom, or a URI.
    #[arg(long = "type", default_value = "custom")]
    predicate_type: String,
    /// cosign v3's layout: a bundle in an OCI referrer (false: the legacy .att image).
    #[arg(long, env = "COSIGN_NEW_BUNDLE_FORMAT", default_value = "true", action = clap::ArgAction::Set)]
    new_bundle_format: bool,
    image: String,
}

#[derive(Args)]
pub struct ImageVerifyAttestationArgs {
    #[command(flatten)]
    identity: Identity,
    #[command(flatten)]
    registry: RegistryArgs,
    /// The predicate type to look for.
    #[arg(long = "type")]
    predicate_type: Option<String>,
    /// A policy every attestation of the type must satisfy, as cosign evaluates it: Rego
    /// (`.rego`, `data.signature.allow` over the statement), CUE (`.cue`, with the `cue`
    /// tool), or JSON (`.json`: fields the predicate must hold). Repeatable.
    #[arg(long)]
    policy: Vec<PathBuf>,
    image: String,
}

#[derive(Args)]
pub struct ImageRefArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    image: String,
}

#[derive(Args)]
pub struct TreeArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    /// `legacy` or `oci-1-1`: accepted for cosign's scripts; the tree lists both the
    /// tag-schema attachments and the referrers either way, as cosign v3's does.
    #[arg(long, value_enum, default_value = "legacy")]
    registry_referrers_mode: ReferrersMode,
    image: String,
}

#[derive(Args)]
pub struct TriangulateArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    /// signature, attestation, sbom, or digest.
    #[arg(long = "type", default_value = "signature")]
    kind: String,
    image: String,
}

#[derive(Args)]
pub struct GenerateArgs2 {
    #[command(flatten)]
    registry: RegistryArgs,
    #[arg(short = 'a', long = "annotations", value_parser = parse_kv)]
    annotations: Vec<(String, String)>,
    image: String,
}

#[derive(Args)]
pub struct AttachSignatureArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    /// The signed payload.
    #[arg(long)]
    payload: PathBuf,
    /// The signature (base64), or `-` for stdin.
    #[arg(long)]
    signature: String,
    /// The signing certificate (PEM).
    #[arg(long)]
    certificate: Option<PathBuf>,
    /// Its chain (PEM).
    #[arg(long)]
    certificate_chain: Option<PathBuf>,
    image: String,
}

#[derive(Args)]
pub struct CopyArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    /// Copy only the signatures and attestations, not the image.
    #[arg(long)]
    sig_only: bool,
    source: String,
    destination: String,
}

#[derive(Args)]
pub struct CleanArgs {
    #[command(flatten)]
    registry: RegistryArgs,
    /// signature, attestation, or all.
    #[arg(long = "type", default_value = "all")]
    kind: String,
    image: String,
}

#[derive(Subcommand)]
pub enum AttachCommand {
    /// Attach a signature made elsewhere (cosign's legacy layout).
    Signature(AttachSignatureArgs),
}

#[derive(Subcommand)]
pub enum DownloadCommand {
    /// Print each signature of an image as a JSON line.
    Signature(ImageRefArgs),
    /// Print each attestation (DSSE envelope) of an image as a JSON line.
    Attestation(ImageRefArgs),
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not key=value"))
}

/// The repository `COSIGN_REPOSITORY` names, if it is set: `registry/path`, no tag or
/// digest (refused, as cosign refuses them, before anything is signed).
fn target_repository() -> anyhow::Result<Option<oci_client::Reference>> {
    let Some(v) = std::env::var("COSIGN_REPOSITORY")
        .ok()
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    let bad = |why: &str| anyhow::anyhow!("COSIGN_REPOSITORY={v:?}: {why}");
    if v.contains('@') || v.rsplit('/').next().is_some_and(|last| last.contains(':')) {
        return Err(bad(
            "name a repository (registry/path), without a tag or digest",
        ));
    }
    let r = registry::parse(&v).map_err(|e| bad(&format!("{e:#}")))?;
    Ok(Some(r))
}

/// The registry client and the sites of the image (a tag resolved, with cosign's warning
/// that tags are mutable).
async fn resolve(args: &RegistryArgs, image: &str) -> anyhow::Result<(Registry, Sites)> {
    let r = registry::parse(image)?;
    let target = target_repository()?;
    let mut hosts = vec![r.resolve_registry()];
    if let Some(t) = &target {
        hosts.push(t.resolve_registry());
    }
    let reg = Registry::new(args, &hosts)?;
    let digest = reg.digest(&r).await?;
    // a digest is not looked up by the resolution above: make sure the image exists, so
    // that nothing is signed for, or reported missing of, an image that is not there
    if r.digest().is_some() && reg.manifest(&r).await?.is_none() {
        anyhow::bail!("no such image: {image} (the registry has no manifest {digest})");
    }
    if r.digest().is_none() {
        eprintln!(
            "Warning: {image} names the image by tag, and tags are mutable: using {digest}. Name images by digest (IMAGE@{digest}) to be sure of what you sign and verify."
        );
    }
    let s = Sites::new(&r, &digest, target.as_ref());
    Ok((reg, s))
}

fn docker_reference(r: &oci_client::Reference) -> String {
    format!("{}/{}", r.registry(), r.repository())
}

fn now_rfc3339() -> String {
    sigstack_types::time::rfc3339(now())
}

/// The digests to sign: the image, and with --recursive every manifest of an index.
async fn digests_to_sign(
    reg: &Registry,
    r: &oci_client::Reference,
    digest: &str,
    recursive: bool,
) -> anyhow::Result<Vec<String>> {
    let mut out = vec![digest.to_string()];
    if recursive {
        let (m, _, _) = reg.manifest_json(r).await?;
        for child in m["manifests"].as_array().into_iter().flatten() {
            if let Some(d) = child["digest"].as_str() {
                out.push(d.to_string());
            }
        }
    }
    Ok(out)
}

fn pem_chain(certs: &[Certificate]) -> String {
    certs.iter().map(Certificate::to_pem).collect()
}
