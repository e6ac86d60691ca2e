//! Container images, as cosign does them: `sign`, `verify`, `attest`,
//! `verify-attestation`, and signature management (`triangulate`, `generate`, `attach`,
//! `download`, `copy`, `clean`, `tree`). Signatures are written in cosign v3's layout (a
//! Sigstore bundle in an OCI 1.1 referrer, with the tag-schema fallback index) or, with
//! `--new-bundle-format=false`, cosign's legacy `sha256-<hex>.sig` image; both are read.

use super::*;
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
    /// With --key: a certificate for the key, attached to the signature.
    #[arg(long)]
    certificate: Option<PathBuf>,
    /// With --certificate: its chain (PEM, issuer first).
    #[arg(long)]
    certificate_chain: Option<PathBuf>,
    /// Sign every image of a multi-platform index too.
    #[arg(long, short = 'r')]
    recursive: bool,
    /// cosign v3's layout: a bundle in an OCI referrer (false: the legacy .sig image).
    #[arg(long, env = "COSIGN_NEW_BUNDLE_FORMAT", default_value = "true", action = clap::ArgAction::Set)]
    new_bundle_format: bool,
    /// The image (a digest reference; a tag is resolved, with a warning).
    image: String,
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
    /// A JSON file whose fields must all appear, with the same values, in the predicate.
    #[arg(long)]
    policy: Option<PathBuf>,
    image: String,
}

#[derive(Args)]
pub struct ImageRefArgs {
    #[command(flatten)]
    registry: RegistryArgs,
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

/// The registry client and the image's digest reference (a tag resolved, with cosign's
/// warning that tags are mutable).
async fn resolve(
    args: &RegistryArgs,
    image: &str,
) -> anyhow::Result<(Registry, oci_client::Reference, String)> {
    let r = registry::parse(image)?;
    let reg = Registry::new(args, &[r.resolve_registry()])?;
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
    Ok((reg, with_digest(&r, &digest), digest))
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

/// Pushes a legacy signature layer (payload blob + annotations) onto `sha256-<hex>.sig`,
/// keeping the signatures already there.
async fn push_legacy_layer(
    reg: &Registry,
    target: &oci_client::Reference,
    digest: &str,
    suffix: &str,
    media_type: &str,
    payload: &[u8],
    annotations: serde_json::Map<String, Value>,
) -> anyhow::Result<()> {
    let tag = with_tag(target, &layout::tag_for(digest, suffix));
    let mut layers: Vec<Value> = match reg.manifest(&tag).await? {
        Some((bytes, _)) => serde_json::from_slice::<Value>(&bytes)?["layers"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let mut layer = layout::descriptor(media_type, payload);
    layer["annotations"] = Value::Object(annotations);
    if layers.iter().any(|l| l == &layer) {
        return Ok(());
    }
    reg.push_blob(target, payload).await?;
    layers.push(layer);
    let diff_ids: Vec<String> = layers
        .iter()
        .filter_map(|l| l["digest"].as_str().map(str::to_string))
        .collect();
    let config = layout::signature_image_config(&diff_ids);
    reg.push_blob(target, &config).await?;
    reg.push_manifest(&tag, &layout::image_manifest(&config, &layers))
        .await?;
    Ok(())
}

/// Pushes a bundle as a referrer of `digest` and records it in the fallback index.
async fn push_bundle_referrer(
    reg: &Registry,
    target: &oci_client::Reference,
    digest: &str,
    bundle: &[u8],
    predicate_type: &str,
) -> anyhow::Result<String> {
    let (subject_json, _, _) = reg.manifest_json(&with_digest(target, digest)).await?;
    let subject_bytes = reg
        .manifest(&with_digest(target, digest))
        .await?
        .context("the image vanished")?
        .0;
    let subject = json!({
        "mediaType": subject_json["mediaType"].as_str().unwrap_or(OCI_MANIFEST),
        "digest": digest,
        "size": subject_bytes.len(),
    });
    reg.push_blob(target, EMPTY_CONFIG).await?;
    reg.push_blob(target, bundle).await?;
    let manifest = layout::bundle_referrer(&subject, bundle, predicate_type, &now_rfc3339());
    let mdigest = layout::sha256_digest(&serde_json::to_vec(&manifest)?);
    reg.push_manifest(&with_digest(target, &mdigest), &manifest)
        .await?;
    // the registry has no referrers API (or may not): keep the tag-schema index current
    let fallback = with_tag(target, &layout::tag_for(digest, ""));
    let existing = match reg.manifest(&fallback).await? {
        Some((b, _)) => Some(serde_json::from_slice::<Value>(&b)?),
        None => None,
    };
    let entry = json!({
        "mediaType": OCI_MANIFEST,
        "digest": mdigest,
        "size": serde_json::to_vec(&manifest)?.len(),
        "artifactType": BUNDLE_V03,
        "annotations": manifest["annotations"],
    });
    reg.push_manifest(
        &fallback,
        &layout::fallback_index_with(existing.as_ref(), entry),
    )
    .await?;
    Ok(mdigest)
}

pub async fn sign(trust: &TrustArgs, a: &ImageSignArgs, out: Output) -> anyhow::Result<()> {
    if !a.upload
        && a.output_signature.is_none()
        && a.output_payload.is_none()
        && a.output_certificate.is_none()
    {
        bail!(
            "--upload=false keeps nothing unless --output-signature, --output-payload or --output-certificate is given (nothing was signed)"
        );
    }
    check_outputs([
        &a.output_signature,
        &a.output_payload,
        &a.output_certificate,
    ])?;
    let (reg, r, digest) = resolve(&a.registry, &a.image).await?;
    let annotations: serde_json::Map<String, Value> = a
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    // a given payload, a certificate for a managed key, or no upload: cosign's legacy
    // signature (a simple-signing payload with annotations) is what those describe
    let legacy =
        !a.new_bundle_format || a.payload.is_some() || a.certificate.is_some() || !a.upload;
    let mut results = Vec::new();
    for d in digests_to_sign(&reg, &r, &digest, a.recursive).await? {
        if legacy {
            let payload = match &a.payload {
                Some(p) => std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
                None => layout::simple_signing_payload(&docker_reference(&r), &d, &annotations),
            };
            let hash = sigstack_crypto::sha256(&payload);
            let signed = sign_with(trust, &a.sign, SignWhat::Digest(&hash)).await?;
            let sig_b64 = STANDARD.encode(&signed.signature);
            let cert_pem = match (&signed.certificate, &a.certificate) {
                (Some(c), _) => Some(c.to_pem()),
                (None, Some(p)) => Some(
                    std::fs::read_to_string(p)
                        .with_context(|| format!("reading {}", p.display()))?,
                ),
                (None, None) => None,
            };
            let chain_pem = match (&signed.certificate, &a.certificate_chain) {
                (Some(_), _) => Some(pem_chain(&signed.chain)),
                (None, Some(p)) => Some(
                    std::fs::read_to_string(p)
                        .with_context(|| format!("reading {}", p.display()))?,
                ),
                (None, None) => None,
            };
            if let Some(p) = &a.output_signature {
                write_file(p, sig_b64.as_bytes())?;
            }
            if let Some(p) = &a.output_payload {
                write_file(p, &payload)?;
            }
            if let Some(p) = &a.output_certificate {
                write_file(p, cert_pem.clone().unwrap_or_default().as_bytes())?;
            }
            if a.upload {
                let mut ann = serde_json::Map::new();
                ann.insert(ANN_SIGNATURE.into(), json!(sig_b64));
                if let Some(c) = &cert_pem {
                    ann.insert(ANN_CERTIFICATE.into(), json!(c));
                }
                if let Some(c) = &chain_pem {
                    ann.insert(ANN_CHAIN.into(), json!(c));
                }
                if let Some(e) = signed.bundle.pointer("/verificationMaterial/tlogEntries/0") {
                    ann.insert(
                        ANN_BUNDLE.into(),
                        json!(layout::legacy_bundle_annotation(e)?),
                    );
                }
                push_legacy_layer(&reg, &r, &d, "sig", SIMPLE_SIGNING, &payload, ann).await?;
                eprintln!(
                    "Pushed signature to {}",
                    with_tag(&r, &layout::tag_for(&d, "sig"))
                );
            }
            results.push(
                json!({"digest": d, "layout": "legacy", "logIndex": log_index_of(&signed.bundle)}),
            );
        } else {
            let statement =
                layout::image_signature_statement(&docker_reference(&r), &d, &annotations);
            let signed = sign_with(
                trust,
                &a.sign,
                SignWhat::Statement(&serde_json::to_vec(&statement)?),
            )
            .await?;
            let bundle = serde_json::to_vec(&signed.bundle)?;
            let m = push_bundle_referrer(&reg, &r, &d, &bundle, COSIGN_SIGN_PREDICATE).await?;
            eprintln!("Pushed signature bundle {m} as a referrer of {d}");
            results.push(json!({"digest": d, "layout": "referrer", "manifest": m, "logIndex": log_index_of(&signed.bundle)}));
        }
    }
    if out == Output::Json {
        print_json(&json!(results));
    }
    Ok(())
}

pub async fn attest(trust: &TrustArgs, a: &ImageAttestArgs, out: Output) -> anyhow::Result<()> {
    let (reg, r, digest) = resolve(&a.registry, &a.image).await?;
    let ptype = predicate_type(&a.predicate_type)?;
    let raw = std::fs::read(&a.predicate)
        .with_context(|| format!("reading {}", a.predicate.display()))?;
    let predicate = predicate_of(&ptype, &raw, &a.predicate)?;
    let statement = layout::image_statement(&docker_reference(&r), &digest, &ptype, predicate);
    let signed = sign_with(
        trust,
        &a.sign,
        SignWhat::Statement(&serde_json::to_vec(&statement)?),
    )
    .await?;
    let m = if a.new_bundle_format {
        let m = push_bundle_referrer(
            &reg,
            &r,
            &digest,
            &serde_json::to_vec(&signed.bundle)?,
            &ptype,
        )
        .await?;
        eprintln!("Pushed attestation bundle {m} as a referrer of {digest}");
        m
    } else {
        // cosign's legacy `.att` image: the envelope as a layer, the certificate, chain
        // and log entry in its annotations
        let envelope = signed
            .bundle
            .get("dsseEnvelope")
            .context("the signed attestation has no envelope")?;
        let mut ann = serde_json::Map::new();
        ann.insert(ANN_PREDICATE_TYPE.into(), json!(ptype));
        if let Some(c) = &signed.certificate {
            ann.insert(ANN_CERTIFICATE.into(), json!(c.to_pem()));
            ann.insert(ANN_CHAIN.into(), json!(pem_chain(&signed.chain)));
        }
        if let Some(e) = signed.bundle.pointer("/verificationMaterial/tlogEntries/0") {
            ann.insert(
                ANN_BUNDLE.into(),
                json!(layout::legacy_bundle_annotation(e)?),
            );
        }
        ann.insert(ANN_SIGNATURE.into(), json!(""));
        let layer = serde_json::to_vec(envelope)?;
        push_legacy_layer(&reg, &r, &digest, "att", DSSE_LAYER, &layer, ann).await?;
        let tag = with_tag(&r, &layout::tag_for(&digest, "att"));
        eprintln!("Pushed attestation to {tag}");
        tag.to_string()
    };
    if out == Output::Json {
        print_json(
            &json!({"digest": digest, "manifest": m, "predicateType": ptype, "logIndex": log_index_of(&signed.bundle)}),
        );
    }
    Ok(())
}

/// Something attached to an image that may verify.
enum Candidate {
    /// A legacy layer: payload, annotations, and (attestations) the DSSE envelope.
    Legacy {
        payload: Vec<u8>,
        annotations: serde_json::Map<String, Value>,
        envelope: Option<Value>,
        from: String,
    },
    /// A bundle from a referrer.
    Bundle { bundle: Vec<u8>, from: String },
}

async fn legacy_layers(
    reg: &Registry,
    r: &oci_client::Reference,
    digest: &str,
    suffix: &str,
) -> anyhow::Result<Vec<Candidate>> {
    let tag = with_tag(r, &layout::tag_for(digest, suffix));
    let Some((bytes, _)) = reg.manifest(&tag).await? else {
        return Ok(Vec::new());
    };
    let m: Value = serde_json::from_slice(&bytes).with_context(|| format!("{tag}: not JSON"))?;
    let mut out = Vec::new();
    for layer in m["layers"].as_array().into_iter().flatten() {
        let Some(d) = layer["digest"].as_str() else {
            continue;
        };
        let blob = reg.blob(r, d).await?;
        let annotations = layer["annotations"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let envelope = if suffix == "att" {
            Some(
                serde_json::from_slice(&blob)
                    .context("an attestation layer is not a DSSE envelope")?,
            )
        } else {
            None
        };
        out.push(Candidate::Legacy {
            payload: blob,
            annotations,
            envelope,
            from: format!("{tag} layer {d}"),
        });
    }
    Ok(out)
}

async fn bundle_referrers(
    reg: &Registry,
    r: &oci_client::Reference,
) -> anyhow::Result<Vec<(Candidate, String)>> {
    let mut out = Vec::new();
    for m in reg.referrers(r).await? {
        // the referrers API names the bundle type; go-containerregistry's fallback tag
        // index (what cosign writes) names the empty config type instead, or nothing
        match m["artifactType"].as_str() {
            Some(BUNDLE_V03 | layout::OCI_EMPTY) | None => {}
            Some(_) => continue,
        }
        let Some(md) = m["digest"].as_str() else {
            continue;
        };
        let (manifest, _, _) = reg.manifest_json(&with_digest(r, md)).await?;
        if manifest.pointer("/subject/digest") != r.digest().map(|d| json!(d)).as_ref() {
            continue;
        }
        let holds_bundle = manifest["artifactType"].as_str() == Some(BUNDLE_V03)
            || manifest["layers"]
                .as_array()
                .is_some_and(|l| l.iter().any(|l| l["mediaType"] == BUNDLE_V03));
        if !holds_bundle {
            continue;
        }
        let ptype = manifest
            .pointer(&format!(
                "/annotations/{}",
                ANN_BUNDLE_PREDICATE.replace('/', "~1")
            ))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        for layer in manifest["layers"].as_array().into_iter().flatten() {
            if layer["mediaType"].as_str() != Some(BUNDLE_V03) {
                continue;
            }
            let Some(d) = layer["digest"].as_str() else {
                continue;
            };
            let bundle = reg.blob(r, d).await?;
            out.push((
                Candidate::Bundle {
                    bundle,
                    from: format!("referrer {md}"),
                },
                ptype.clone(),
            ));
        }
    }
    Ok(out)
}

/// The log entry for a legacy signature attached without one, looked up online.
async fn looked_up(
    trust_rekor: Option<&str>,
    m: &Material,
    payload: &[u8],
    annotations: &serde_json::Map<String, Value>,
    policy: &Policy,
) -> anyhow::Result<serde_json::Map<String, Value>> {
    let url = match trust_rekor {
        Some(u) => u.to_string(),
        None => m
            .signing_config
            .as_ref()
            .and_then(|c| Services::from_config(c).rekor)
            .context("no transparency log to look the signature up in: pass --rekor-url")?,
    };
    let sig = annotations
        .get(ANN_SIGNATURE)
        .and_then(Value::as_str)
        .context("the layer has no signature")?;
    let verifier = match (
        annotations.get(ANN_CERTIFICATE).and_then(Value::as_str),
        policy,
    ) {
        (Some(c), _) if !c.is_empty() => c.to_string(),
        (_, Policy::Key(k)) => k.to_pem(),
        _ => bail!("the layer has no certificate"),
    };
    let proposed =
        sigstack::rekor::hashedrekord(&sigstack_crypto::sha256(payload), sig, verifier.as_bytes());
    let http = http()?;
    let rekor = Rekor { http: &http, url };
    let (_, e) = rekor
        .entries_like(&proposed)
        .await?
        .into_iter()
        .next()
        .context("the signature is not in the transparency log")?;
    let entry = sigstack::rekor::bundle_entry(&e)?;
    let mut ann = annotations.clone();
    ann.insert(
        ANN_BUNDLE.into(),
        json!(layout::legacy_bundle_annotation(&entry)?),
    );
    Ok(ann)
}

/// Verifies one candidate; returns the verified payload or statement.
async fn check_candidate(
    c: &Candidate,
    m: &Material,
    policy: &Policy,
    opts: &sigstack::verify::Options,
    digest: &str,
    rekor_url: Option<&str>,
    offline: bool,
) -> anyhow::Result<Value> {
    let digest_bytes: [u8; 32] = hex::decode(
        digest
            .strip_prefix("sha256:")
            .context("only sha256 image digests are supported")?,
    )?
    .try_into()
    .map_err(|_| anyhow::anyhow!("bad digest"))?;
    match c {
        Candidate::Legacy {
            payload,
            annotations,
            envelope,
            ..
        } => {
            let annotations = if annotations.contains_key(ANN_BUNDLE) || offline {
                annotations.clone()
            } else {
                looked_up(rekor_url, m, payload, annotations, policy).await?
            };
            let bundle = layout::legacy_layer_bundle(&annotations, payload, envelope.as_ref())?;
            let artifact = match envelope {
                Some(_) => Artifact::Digest(digest_bytes),
                None => Artifact::Bytes(payload.clone()),
            };
            let v = verify_with(
                &serde_json::to_vec(&bundle)?,
                &m.trusted_root,
                &artifact,
                policy,
                now(),
                opts,
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            match v.statement_json() {
                Some(statement) => Ok(statement?),
                // a simple-signing payload, covered by the verified message signature
                None => sigstack::bundle::strict::from_slice(payload)
                    .map_err(|e| anyhow::anyhow!("the signed payload is not JSON: {e}")),
            }
        }
        Candidate::Bundle { bundle, .. } => {
            let v = verify_with(
                bundle,
                &m.trusted_root,
                &Artifact::Digest(digest_bytes),
                policy,
                now(),
                opts,
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(v.statement_json()
                .context("the bundle holds no statement")??)
        }
    }
}

fn from_of(c: &Candidate) -> &str {
    match c {
        Candidate::Legacy { from, .. } | Candidate::Bundle { from, .. } => from,
    }
}

pub async fn verify_image(
    trust: &TrustArgs,
    a: &ImageVerifyArgs,
    out: Output,
) -> anyhow::Result<()> {
    let policy = policy_of(&a.identity)?;
    let opts = a.identity.options();
    let (reg, r, digest) = resolve(&a.registry, &a.image).await?;
    let mut m = trust_material(trust).await?;
    a.identity.apply_pki(&mut m.trusted_root)?;
    let mut candidates = legacy_layers(&reg, &r, &digest, "sig").await?;
    candidates.extend(
        bundle_referrers(&reg, &r)
            .await?
            .into_iter()
            .filter(|(_, p)| p == COSIGN_SIGN_PREDICATE || p.is_empty())
            .map(|(c, _)| c),
    );
    if candidates.is_empty() {
        return Err(VerificationFailed(format!("no signatures found for {r}")).into());
    }
    let mut verified = Vec::new();
    let mut failures = Vec::new();
    for c in &candidates {
        let result = match check_candidate(
            c,
            &m,
            &policy,
            &opts,
            &digest,
            a.rekor_url.as_deref(),
            trust.offline,
        )
        .await
        {
            Ok(v) => match c {
                Candidate::Legacy {
                    envelope: None,
                    payload,
                    ..
                } => layout::check_payload(payload, &digest, &a.annotations).map(|_| v),
                _ => {
                    if v["predicateType"] != COSIGN_SIGN_PREDICATE {
                        Err(anyhow::anyhow!(
                            "the statement's predicate type is {}, not a signature",
                            v["predicateType"]
                        ))
                    } else {
                        layout::check_statement_annotations(&v, &digest, &a.annotations).map(|_| v)
                    }
                }
            },
            Err(e) => Err(e),
        };
        match result {
            Ok(v) => verified.push(v),
            Err(e) => failures.push(format!("{}: {e:#}", from_of(c))),
        }
    }
    if verified.is_empty() {
        return Err(VerificationFailed(format!(
            "no signature of {r} verifies:\n  {}",
            failures.join("\n  ")
        ))
        .into());
    }
    if let Some(r_docker) = verified.iter().find_map(|v| {
        v.pointer("/critical/identity/docker-reference")
            .and_then(Value::as_str)
    }) && r_docker != docker_reference(&r)
    {
        eprintln!(
            "Note: the signature names the repository {r_docker} (it was signed there and copied here)"
        );
    }
    eprintln!(
        "\nVerification for {r} --\nThe following checks were performed on each of these signatures:\n  - the signed claims name this image's digest{}\n  - the transparency-log entry was verified (signed entry timestamp or inclusion proof against a signed checkpoint)\n  - {}",
        if a.annotations.is_empty() {
            String::new()
        } else {
            " and carry the requested annotations".into()
        },
        match policy {
            Policy::Key(_) => "the signature was verified with the given public key",
            _ =>
                "the signing certificate chains to a trusted CA at signing time, with an SCT from a trusted CT log, and names the expected identity and issuer",
        }
    );
    match out {
        Output::Json => print_json(&json!(verified)),
        Output::Text => println!("{}", serde_json::to_string(&verified)?),
    }
    Ok(())
}

/// A predicate contains every field of `policy` with the same value (recursively).
fn contains(predicate: &Value, policy: &Value) -> bool {
    match (predicate, policy) {
        (Value::Object(p), Value::Object(want)) => want
            .iter()
            .all(|(k, v)| p.get(k).is_some_and(|pv| contains(pv, v))),
        (a, b) => a == b,
    }
}

pub async fn verify_attestation(
    trust: &TrustArgs,
    a: &ImageVerifyAttestationArgs,
    out: Output,
) -> anyhow::Result<()> {
    let policy = policy_of(&a.identity)?;
    let opts = a.identity.options();
    let (reg, r, digest) = resolve(&a.registry, &a.image).await?;
    let mut m = trust_material(trust).await?;
    a.identity.apply_pki(&mut m.trusted_root)?;
    let want_type = a
        .predicate_type
        .as_deref()
        .map(predicate_type)
        .transpose()?;
    let rule: Option<Value> = match &a.policy {
        Some(p) => Some(
            serde_json::from_slice(
                &std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
            )
            .context("the policy is not JSON")?,
        ),
        None => None,
    };
    let mut candidates = legacy_layers(&reg, &r, &digest, "att").await?;
    // every bundle referrer: the manifest's predicate-type annotation is not signed (and
    // cosign v2 labels its attestations as signatures); the signed statement decides
    candidates.extend(
        bundle_referrers(&reg, &r)
            .await?
            .into_iter()
            .map(|(c, _)| c),
    );
    if candidates.is_empty() {
        return Err(VerificationFailed(format!("no attestations found for {r}")).into());
    }
    let mut verified = Vec::new();
    let mut failures = Vec::new();
    let mut signatures = 0;
    for c in &candidates {
        let result = check_candidate(c, &m, &policy, &opts, &digest, None, trust.offline).await;
        if matches!(&result, Ok(st) if st["predicateType"] == COSIGN_SIGN_PREDICATE) {
            signatures += 1;
            continue;
        }
        let result = result.and_then(|st| {
            if let Some(t) = &want_type
                && st["predicateType"].as_str() != Some(t.as_str())
            {
                bail!("predicate type {} is not {t}", st["predicateType"]);
            }
            if let Some(rule) = &rule
                && !contains(&st["predicate"], rule)
            {
                bail!("the predicate does not satisfy the policy");
            }
            Ok(st)
        });
        match result {
            Ok(st) => verified.push(st),
            Err(e) => failures.push(format!("{}: {e:#}", from_of(c))),
        }
    }
    if verified.is_empty() {
        if failures.is_empty() {
            return Err(VerificationFailed(format!(
                "no attestations found for {r} ({signatures} signature(s), which are not attestations)"
            ))
            .into());
        }
        return Err(VerificationFailed(format!(
            "no attestation of {r} verifies:\n  {}",
            failures.join("\n  ")
        ))
        .into());
    }
    eprintln!("Verified {} attestation(s) of {r}", verified.len());
    for st in &verified {
        match out {
            Output::Json => print_json(st),
            Output::Text => println!("{}", serde_json::to_string(st)?),
        }
    }
    Ok(())
}

pub async fn triangulate(a: &TriangulateArgs) -> anyhow::Result<()> {
    let (_, r, digest) = resolve(&a.registry, &a.image).await?;
    let suffix = match a.kind.as_str() {
        "signature" => "sig",
        "attestation" => "att",
        "sbom" => "sbom",
        "digest" => {
            println!("{}", with_digest(&r, &digest));
            return Ok(());
        }
        other => bail!("--type {other:?}: use signature, attestation, sbom or digest"),
    };
    println!("{}", with_tag(&r, &layout::tag_for(&digest, suffix)));
    Ok(())
}

pub async fn generate(a: &GenerateArgs2) -> anyhow::Result<()> {
    let (_, r, digest) = resolve(&a.registry, &a.image).await?;
    let ann = a
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    std::io::stdout().write_all(&layout::simple_signing_payload(
        &docker_reference(&r),
        &digest,
        &ann,
    ))?;
    Ok(())
}

pub async fn attach_signature(a: &AttachSignatureArgs) -> anyhow::Result<()> {
    let (reg, r, digest) = resolve(&a.registry, &a.image).await?;
    let payload =
        std::fs::read(&a.payload).with_context(|| format!("reading {}", a.payload.display()))?;
    let sig = if a.signature == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        std::fs::read_to_string(&a.signature).with_context(|| format!("reading {}", a.signature))?
    };
    let sig = sig.trim().to_string();
    STANDARD
        .decode(&sig)
        .context("the signature is not base64")?;
    // the payload must be about this image: refuse before anything is pushed
    layout::check_payload(&payload, &digest, &[]).context("the payload does not fit the image")?;
    let mut ann = serde_json::Map::new();
    ann.insert(ANN_SIGNATURE.into(), json!(sig));
    if let Some(p) = &a.certificate {
        ann.insert(
            ANN_CERTIFICATE.into(),
            json!(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?),
        );
    }
    if let Some(p) = &a.certificate_chain {
        ann.insert(
            ANN_CHAIN.into(),
            json!(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?),
        );
    }
    push_legacy_layer(&reg, &r, &digest, "sig", SIMPLE_SIGNING, &payload, ann).await?;
    eprintln!(
        "Attached the signature to {}",
        with_tag(&r, &layout::tag_for(&digest, "sig"))
    );
    Ok(())
}

pub async fn download(c: &DownloadCommand) -> anyhow::Result<()> {
    let (a, att) = match c {
        DownloadCommand::Signature(a) => (a, false),
        DownloadCommand::Attestation(a) => (a, true),
    };
    let (reg, r, digest) = resolve(&a.registry, &a.image).await?;
    let mut candidates = legacy_layers(&reg, &r, &digest, if att { "att" } else { "sig" }).await?;
    candidates.extend(
        bundle_referrers(&reg, &r)
            .await?
            .into_iter()
            .filter(|(_, p)| (p == COSIGN_SIGN_PREDICATE) != att)
            .map(|(c, _)| c),
    );
    if candidates.is_empty() {
        bail!(
            "no {} found for {r}",
            if att { "attestations" } else { "signatures" }
        );
    }
    for c in candidates {
        let line = match c {
            Candidate::Legacy {
                envelope: Some(env),
                ..
            } => env,
            Candidate::Legacy {
                payload,
                annotations,
                ..
            } => {
                let get = |k: &str| annotations.get(k).cloned().unwrap_or(Value::Null);
                let bundle = annotations
                    .get(ANN_BUNDLE)
                    .and_then(Value::as_str)
                    .and_then(|s| serde_json::from_str::<Value>(s).ok())
                    .unwrap_or(Value::Null);
                json!({"Base64Signature": get(ANN_SIGNATURE), "Payload": STANDARD.encode(payload), "Cert": get(ANN_CERTIFICATE), "Chain": get(ANN_CHAIN), "Bundle": bundle})
            }
            Candidate::Bundle { bundle, .. } => {
                let b: Value = serde_json::from_slice(&bundle)?;
                if att { b["dsseEnvelope"].clone() } else { b }
            }
        };
        println!("{}", serde_json::to_string(&line)?);
    }
    Ok(())
}

/// Copies one manifest (and, for an index, its children) with its blobs.
async fn copy_manifest(
    reg: &Registry,
    from: &oci_client::Reference,
    to: &oci_client::Reference,
    digest: &str,
    tag: Option<&str>,
) -> anyhow::Result<()> {
    let (m, bytes, _) = reg.manifest_json(&with_digest(from, digest)).await?;
    for child in m["manifests"].as_array().into_iter().flatten() {
        if let Some(d) = child["digest"].as_str() {
            Box::pin(copy_manifest(reg, from, to, d, None)).await?;
        }
    }
    let blobs = m["config"]["digest"].as_str().into_iter().chain(
        m["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|l| l["digest"].as_str()),
    );
    for b in blobs {
        reg.copy_blob(from, to, b).await?;
    }
    let target = match tag {
        Some(t) => with_tag(to, t),
        None => with_digest(to, digest),
    };
    reg.push_manifest_bytes(&target, &bytes).await
}

pub async fn copy(a: &CopyArgs) -> anyhow::Result<()> {
    let src = registry::parse(&a.source)?;
    let dst = registry::parse(&a.destination)?;
    let reg = Registry::new(
        &a.registry,
        &[src.resolve_registry(), dst.resolve_registry()],
    )?;
    let digest = reg.digest(&src).await?;
    if !a.sig_only {
        copy_manifest(
            &reg,
            &src,
            &dst,
            &digest,
            dst.tag().filter(|_| dst.digest().is_none()),
        )
        .await?;
        eprintln!("Copied {src} to {dst}");
    }
    let mut copied = 0;
    for suffix in ["sig", "att", "sbom"] {
        let tag = layout::tag_for(&digest, suffix);
        if let Some((_, d)) = reg.manifest(&with_tag(&src, &tag)).await? {
            copy_manifest(&reg, &src, &dst, &d, Some(&tag)).await?;
            copied += 1;
        }
    }
    let src_digest = with_digest(&src, &digest);
    for m in reg.referrers(&src_digest).await? {
        if let Some(d) = m["digest"].as_str() {
            copy_manifest(&reg, &src, &dst, d, None).await?;
            copied += 1;
        }
    }
    let fallback = layout::tag_for(&digest, "");
    if let Some((_, d)) = reg.manifest(&with_tag(&src, &fallback)).await? {
        copy_manifest(&reg, &src, &dst, &d, Some(&fallback)).await?;
    }
    eprintln!("Copied {copied} signature/attestation manifests of {digest}");
    Ok(())
}

pub async fn clean(a: &CleanArgs) -> anyhow::Result<()> {
    let (sig, att) = match a.kind.as_str() {
        "all" => (true, true),
        "signature" => (true, false),
        "attestation" => (false, true),
        other => bail!("--type {other:?}: use signature, attestation or all"),
    };
    let (reg, r, digest) = resolve(&a.registry, &a.image).await?;
    let mut removed = 0;
    for (suffix, on) in [("sig", sig), ("att", att)] {
        if !on {
            continue;
        }
        if let Some((_, d)) = reg
            .manifest(&with_tag(&r, &layout::tag_for(&digest, suffix)))
            .await?
        {
            reg.delete_manifest(&r, &d).await?;
            removed += 1;
        }
    }
    // referrers: keep the ones of the kind not cleaned, in a rewritten fallback index
    let fallback = with_tag(&r, &layout::tag_for(&digest, ""));
    let referrers = reg.referrers(&r).await?;
    let mut kept = Vec::new();
    for m in referrers {
        let is_sig = m
            .pointer(&format!(
                "/annotations/{}",
                ANN_BUNDLE_PREDICATE.replace('/', "~1")
            ))
            .and_then(Value::as_str)
            == Some(COSIGN_SIGN_PREDICATE);
        if (is_sig && sig) || (!is_sig && att) {
            if let Some(d) = m["digest"].as_str() {
                reg.delete_manifest(&r, d).await?;
                removed += 1;
            }
        } else {
            kept.push(m);
        }
    }
    if let Some((_, d)) = reg.manifest(&fallback).await? {
        if kept.is_empty() {
            reg.delete_manifest(&r, &d).await?;
        } else {
            reg.push_manifest(
                &fallback,
                &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": kept}),
            )
            .await?;
        }
    }
    eprintln!("Removed {removed} signature/attestation manifests from {r}");
    Ok(())
}

pub async fn tree(a: &ImageRefArgs, out: Output) -> anyhow::Result<()> {
    let (reg, r, digest) = resolve(&a.registry, &a.image).await?;
    let mut report = json!({"image": r.to_string(), "signatures": [], "attestations": [], "sboms": [], "referrers": []});
    for (suffix, key) in [
        ("sig", "signatures"),
        ("att", "attestations"),
        ("sbom", "sboms"),
    ] {
        let tag = with_tag(&r, &layout::tag_for(&digest, suffix));
        if let Some((bytes, _)) = reg.manifest(&tag).await? {
            let m: Value = serde_json::from_slice(&bytes)?;
            let layers: Vec<Value> = m["layers"].as_array().cloned().unwrap_or_default().iter().map(|l| json!({"tag": tag.to_string(), "digest": l["digest"], "mediaType": l["mediaType"]})).collect();
            report[key] = json!(layers);
        }
    }
    let refs: Vec<Value> = reg.referrers(&r).await?.iter().map(|m| json!({
        "digest": m["digest"], "artifactType": m["artifactType"],
        "predicateType": m.pointer(&format!("/annotations/{}", ANN_BUNDLE_PREDICATE.replace('/', "~1"))),
    })).collect();
    report["referrers"] = json!(refs);
    match out {
        Output::Json => print_json(&report),
        Output::Text => {
            println!("Artifacts attached to {r}:");
            for (key, title) in [
                ("signatures", "Signatures (legacy .sig)"),
                ("attestations", "Attestations (legacy .att)"),
                ("sboms", "SBOMs (legacy .sbom)"),
            ] {
                if let Some(list) = report[key].as_array().filter(|l| !l.is_empty()) {
                    println!(
                        "└── {title}: {}",
                        list[0]["tag"].as_str().unwrap_or_default()
                    );
                    for l in list {
                        println!(
                            "    └── {} ({})",
                            l["digest"].as_str().unwrap_or_default(),
                            l["mediaType"].as_str().unwrap_or_default()
                        );
                    }
                }
            }
            let legacy = ["signatures", "attestations", "sboms"]
                .iter()
                .any(|k| report[*k].as_array().is_some_and(|l| !l.is_empty()));
            if !legacy && refs.is_empty() {
                println!("└── nothing: no signatures, attestations or SBOMs");
            }
            if !refs.is_empty() {
                println!("└── Referrers (Sigstore bundles):");
                for x in &refs {
                    println!(
                        "    └── {} ({})",
                        x["digest"].as_str().unwrap_or_default(),
                        x["predicateType"].as_str().unwrap_or("?")
                    );
                }
            }
        }
    }
    Ok(())
}
