//! Writing signatures and attestations: `sign`, `attest`, `attach signature`.

use super::*;

/// Pushes a legacy signature layer (payload blob + annotations) onto the `.sig`/`.att`
/// tag of the signature repository, keeping the signatures already there.
async fn push_legacy_layer(
    reg: &Registry,
    s: &Sites,
    suffix: &str,
    media_type: &str,
    payload: &[u8],
    annotations: serde_json::Map<String, Value>,
) -> anyhow::Result<()> {
    let tag = s.tag(suffix);
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
    reg.push_blob(&s.repo, payload).await?;
    layers.push(layer);
    let diff_ids: Vec<String> = layers
        .iter()
        .filter_map(|l| l["digest"].as_str().map(str::to_string))
        .collect();
    let config = layout::signature_image_config(&diff_ids);
    reg.push_blob(&s.repo, &config).await?;
    reg.push_manifest(&tag, &layout::image_manifest(&config, &layers))
        .await?;
    Ok(())
}

/// The subject descriptor of a referrer: the image's manifest, read where the image is.
async fn subject_of(reg: &Registry, s: &Sites) -> anyhow::Result<Value> {
    let (subject_json, bytes, _) = reg.manifest_json(&s.image).await?;
    Ok(json!({
        "mediaType": subject_json["mediaType"].as_str().unwrap_or(OCI_MANIFEST),
        "digest": s.digest,
        "size": bytes.len(),
    }))
}

/// Pushes a referrer manifest (its blobs already pushed) into the signature repository
/// and records it in the referrers fallback index (`sha256-<hex>`), which is what a
/// registry without the referrers API (Debian's docker-registry) is read through.
async fn push_referrer(
    reg: &Registry,
    s: &Sites,
    manifest: &Value,
    artifact_type: &str,
) -> anyhow::Result<String> {
    let bytes = serde_json::to_vec(manifest)?;
    let mdigest = layout::sha256_digest(&bytes);
    reg.push_manifest(&with_digest(&s.repo, &mdigest), manifest)
        .await?;
    let fallback = s.tag("");
    let existing = match reg.manifest(&fallback).await? {
        Some((b, _)) => Some(serde_json::from_slice::<Value>(&b)?),
        None => None,
    };
    let mut entry = json!({
        "mediaType": manifest["mediaType"],
        "digest": mdigest,
        "size": bytes.len(),
        "artifactType": artifact_type,
    });
    if let Some(a) = manifest.get("annotations") {
        entry["annotations"] = a.clone();
    }
    reg.push_manifest(
        &fallback,
        &layout::fallback_index_with(existing.as_ref(), entry),
    )
    .await?;
    Ok(mdigest)
}

/// Pushes a bundle as a referrer of the image.
async fn push_bundle_referrer(
    reg: &Registry,
    s: &Sites,
    bundle: &[u8],
    predicate_type: &str,
) -> anyhow::Result<String> {
    let subject = subject_of(reg, s).await?;
    reg.push_blob(&s.repo, EMPTY_CONFIG).await?;
    reg.push_blob(&s.repo, bundle).await?;
    let manifest = layout::bundle_referrer(&subject, bundle, predicate_type, &now_rfc3339());
    push_referrer(reg, s, &manifest, BUNDLE_V03).await
}

/// Pushes a legacy signature layer as an OCI 1.1 referrer of the image, as cosign's
/// `--registry-referrers-mode oci-1-1` does: the signature image's manifest with the
/// image as its subject and cosign's signature artifact type as its config media type.
async fn push_legacy_referrer(
    reg: &Registry,
    s: &Sites,
    payload: &[u8],
    annotations: serde_json::Map<String, Value>,
) -> anyhow::Result<String> {
    let subject = subject_of(reg, s).await?;
    let mut layer = layout::descriptor(SIMPLE_SIGNING, payload);
    layer["annotations"] = Value::Object(annotations);
    let diff_ids = [layout::sha256_digest(payload)];
    let config = layout::signature_image_config(&diff_ids);
    reg.push_blob(&s.repo, payload).await?;
    reg.push_blob(&s.repo, &config).await?;
    let mut manifest = layout::image_manifest(&config, &[layer]);
    manifest["config"]["mediaType"] = json!(COSIGN_SIG_ARTIFACT);
    manifest["artifactType"] = json!(COSIGN_SIG_ARTIFACT);
    manifest["subject"] = subject;
    push_referrer(reg, s, &manifest, COSIGN_SIG_ARTIFACT).await
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
    let (reg, top) = resolve(&a.registry, &a.image).await?;
    let annotations: serde_json::Map<String, Value> = a
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    // a given payload, a certificate for a managed key, or no upload: cosign's legacy
    // signature (a simple-signing payload with annotations) is what those describe
    let legacy =
        !a.new_bundle_format || a.payload.is_some() || a.sign.certificate.is_some() || !a.upload;
    let mut results = Vec::new();
    for d in digests_to_sign(&reg, &top.image, &top.digest, a.recursive).await? {
        let s = top.at(&d);
        let r = &s.image;
        if legacy {
            let payload = match &a.payload {
                Some(p) => std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
                None => layout::simple_signing_payload(&docker_reference(r), &d, &annotations),
            };
            let hash = sigstack_crypto::sha256(&payload);
            let signed = sign_with_log(trust, &a.sign, SignWhat::Digest(&hash), false).await?;
            let sig_b64 = STANDARD.encode(&signed.signature);
            // the CA's certificate, or the organisation's (--certificate), with its chain
            let cert_pem = signed.certificate.as_ref().map(|c| c.to_pem());
            let chain_pem = (!signed.chain.is_empty()).then(|| pem_chain(&signed.chain));
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
                if a.registry_referrers_mode == ReferrersMode::Oci11 {
                    let m = push_legacy_referrer(&reg, &s, &payload, ann).await?;
                    eprintln!("Pushed signature {m} as a referrer of {d} in {}", s.repo);
                } else {
                    push_legacy_layer(&reg, &s, "sig", SIMPLE_SIGNING, &payload, ann).await?;
                    eprintln!("Pushed signature to {}", s.tag("sig"));
                }
            }
            results.push(
                json!({"digest": d, "layout": "legacy", "logIndex": log_index_of(&signed.bundle)}),
            );
        } else {
            let statement =
                layout::image_signature_statement(&docker_reference(r), &d, &annotations);
            let signed = sign_with(
                trust,
                &a.sign,
                SignWhat::Statement(&serde_json::to_vec(&statement)?),
            )
            .await?;
            let bundle = serde_json::to_vec(&signed.bundle)?;
            let m = push_bundle_referrer(&reg, &s, &bundle, COSIGN_SIGN_PREDICATE).await?;
            eprintln!(
                "Pushed signature bundle {m} as a referrer of {d} in {}",
                s.repo
            );
            results.push(json!({"digest": d, "layout": "referrer", "manifest": m, "logIndex": log_index_of(&signed.bundle)}));
        }
    }
    if out == Output::Json {
        print_json(&json!(results));
    }
    Ok(())
}

pub async fn attest(trust: &TrustArgs, a: &ImageAttestArgs, out: Output) -> anyhow::Result<()> {
    let (reg, s) = resolve(&a.registry, &a.image).await?;
    let digest = &s.digest;
    let ptype = predicate_type(&a.predicate_type)?;
    let raw = std::fs::read(&a.predicate)
        .with_context(|| format!("reading {}", a.predicate.display()))?;
    let predicate = predicate_of(&ptype, &raw, &a.predicate)?;
    let statement = layout::image_statement(&docker_reference(&s.image), digest, &ptype, predicate);
    // cosign's legacy `.att` carries a signed entry timestamp: a Rekor v1 entry
    let signed = sign_with_log(
        trust,
        &a.sign,
        SignWhat::Statement(&serde_json::to_vec(&statement)?),
        a.new_bundle_format,
    )
    .await?;
    let m = if a.new_bundle_format {
        let m =
            push_bundle_referrer(&reg, &s, &serde_json::to_vec(&signed.bundle)?, &ptype).await?;
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
        push_legacy_layer(&reg, &s, "att", DSSE_LAYER, &layer, ann).await?;
        let tag = s.tag("att");
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

pub async fn attach_signature(a: &AttachSignatureArgs) -> anyhow::Result<()> {
    let (reg, s) = resolve(&a.registry, &a.image).await?;
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
    layout::check_payload(&payload, &s.digest, &[])
        .context("the payload does not fit the image")?;
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
    push_legacy_layer(&reg, &s, "sig", SIMPLE_SIGNING, &payload, ann).await?;
    eprintln!("Attached the signature to {}", s.tag("sig"));
    Ok(())
}
