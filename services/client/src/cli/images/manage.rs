//! Signature management: `triangulate`, `generate`, `download`, `copy`, `clean`, `tree`.

use super::*;
use sigstack::attached::{Candidate, legacy_layers, referrer_candidates};

pub async fn triangulate(a: &TriangulateArgs) -> anyhow::Result<()> {
    let (_, s) = resolve(&a.registry, &a.image).await?;
    let suffix = match a.kind.as_str() {
        "signature" => "sig",
        "attestation" => "att",
        "sbom" => "sbom",
        "digest" => {
            println!("{}", s.image);
            return Ok(());
        }
        other => bail!("--type {other:?}: use signature, attestation, sbom or digest"),
    };
    println!("{}", s.tag(suffix));
    Ok(())
}

pub async fn generate(a: &GenerateArgs2) -> anyhow::Result<()> {
    let (_, s) = resolve(&a.registry, &a.image).await?;
    let ann = a
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    std::io::stdout().write_all(&layout::simple_signing_payload(
        &docker_reference(&s.image),
        &s.digest,
        &ann,
    ))?;
    Ok(())
}

pub async fn download(c: &DownloadCommand) -> anyhow::Result<()> {
    let (a, att) = match c {
        DownloadCommand::Signature(a) => (a, false),
        DownloadCommand::Attestation(a) => (a, true),
    };
    let (reg, s) = resolve(&a.registry, &a.image).await?;
    let r = &s.image;
    let mut candidates = legacy_layers(&reg, &s, if att { "att" } else { "sig" }).await?;
    candidates.extend(
        referrer_candidates(&reg, &s)
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
    // signatures are read where COSIGN_REPOSITORY says and written beside the copy, as
    // cosign copies them
    let target = target_repository()?;
    let mut hosts = vec![src.resolve_registry(), dst.resolve_registry()];
    if let Some(t) = &target {
        hosts.push(t.resolve_registry());
    }
    let reg = Registry::new(&a.registry, &hosts)?;
    let digest = reg.digest(&src).await?;
    let s = Sites::new(&src, &digest, target.as_ref());
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
        if let Some((_, d)) = reg.manifest(&s.tag(suffix)).await? {
            let tag = layout::tag_for(&digest, suffix);
            copy_manifest(&reg, &s.repo, &dst, &d, Some(&tag)).await?;
            copied += 1;
        }
    }
    for m in reg.referrers(&s.repo).await? {
        if let Some(d) = m["digest"].as_str() {
            copy_manifest(&reg, &s.repo, &dst, d, None).await?;
            copied += 1;
        }
    }
    if let Some((_, d)) = reg.manifest(&s.tag("")).await? {
        let fallback = layout::tag_for(&digest, "");
        copy_manifest(&reg, &s.repo, &dst, &d, Some(&fallback)).await?;
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
    let (reg, s) = resolve(&a.registry, &a.image).await?;
    let r = &s.repo;
    let mut removed = 0;
    for (suffix, on) in [("sig", sig), ("att", att)] {
        if !on {
            continue;
        }
        if let Some((_, d)) = reg.manifest(&s.tag(suffix)).await? {
            reg.delete_manifest(r, &d).await?;
            removed += 1;
        }
    }
    // referrers: keep the ones of the kind not cleaned, in a rewritten fallback index
    let fallback = s.tag("");
    let referrers = reg.referrers(r).await?;
    let mut kept = Vec::new();
    for m in referrers {
        let is_sig = m["artifactType"] == COSIGN_SIG_ARTIFACT
            || m.pointer(&format!(
                "/annotations/{}",
                ANN_BUNDLE_PREDICATE.replace('/', "~1")
            ))
            .and_then(Value::as_str)
                == Some(COSIGN_SIGN_PREDICATE);
        if (is_sig && sig) || (!is_sig && att) {
            if let Some(d) = m["digest"].as_str() {
                reg.delete_manifest(r, d).await?;
                removed += 1;
            }
        } else {
            kept.push(m);
        }
    }
    if let Some((_, d)) = reg.manifest(&fallback).await? {
        if kept.is_empty() {
            reg.delete_manifest(r, &d).await?;
        } else {
            reg.push_manifest(
                &fallback,
                &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": kept}),
            )
            .await?;
        }
    }
    eprintln!(
        "Removed {removed} signature/attestation manifests of {} from {}",
        s.image,
        s.repo.repository()
    );
    Ok(())
}

pub async fn tree(a: &TreeArgs, out: Output) -> anyhow::Result<()> {
    let (reg, s) = resolve(&a.registry, &a.image).await?;
    let r = &s.image;
    let mut report = json!({"image": r.to_string(), "signatures": [], "attestations": [], "sboms": [], "referrers": []});
    for (suffix, key) in [
        ("sig", "signatures"),
        ("att", "attestations"),
        ("sbom", "sboms"),
    ] {
        let tag = s.tag(suffix);
        if let Some((bytes, _)) = reg.manifest(&tag).await? {
            let m: Value = serde_json::from_slice(&bytes)?;
            let layers: Vec<Value> = m["layers"].as_array().cloned().unwrap_or_default().iter().map(|l| json!({"tag": tag.to_string(), "digest": l["digest"], "mediaType": l["mediaType"]})).collect();
            report[key] = json!(layers);
        }
    }
    let refs: Vec<Value> = reg.referrers(&s.repo).await?.iter().map(|m| json!({
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
                println!("└── Referrers (Sigstore bundles, cosign signature images):");
                for x in &refs {
                    let kind = match x["artifactType"].as_str() {
                        Some(COSIGN_SIG_ARTIFACT) => "a legacy signature",
                        _ => x["predicateType"].as_str().unwrap_or("?"),
                    };
                    println!(
                        "    └── {} ({kind})",
                        x["digest"].as_str().unwrap_or_default()
                    );
                }
            }
        }
    }
    Ok(())
}
