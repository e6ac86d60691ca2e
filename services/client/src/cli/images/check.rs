//! Finding and verifying what is attached to an image: `verify`, `verify-attestation`.

use super::*;

/// Something attached to an image that may verify.
pub(super) enum Candidate {
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

/// The layers of a legacy signature image (`sig`) or attestation image (`att`)
/// manifest, each a candidate.
async fn layers_of(
    reg: &Registry,
    s: &Sites,
    manifest: &Value,
    attestation: bool,
    from: &str,
) -> anyhow::Result<Vec<Candidate>> {
    let mut out = Vec::new();
    for layer in manifest["layers"].as_array().into_iter().flatten() {
        let Some(d) = layer["digest"].as_str() else {
            continue;
        };
        let blob = reg.blob(&s.repo, d).await?;
        let annotations = layer["annotations"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let envelope = if attestation {
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
            from: format!("{from} layer {d}"),
        });
    }
    Ok(out)
}

/// The layers under the legacy tag `sha256-<hex>.<suffix>` (`sig` or `att`).
pub(super) async fn legacy_layers(
    reg: &Registry,
    s: &Sites,
    suffix: &str,
) -> anyhow::Result<Vec<Candidate>> {
    let tag = s.tag(suffix);
    let Some((bytes, _)) = reg.manifest(&tag).await? else {
        return Ok(Vec::new());
    };
    let m: Value = serde_json::from_slice(&bytes).with_context(|| format!("{tag}: not JSON"))?;
    layers_of(reg, s, &m, suffix == "att", &tag.to_string()).await
}

/// The referrers of the image that hold signatures: Sigstore bundles (with the predicate
/// type the manifest claims, unsigned) and cosign's legacy signature images pushed as
/// referrers (claimed as signatures).
pub(super) async fn referrer_candidates(
    reg: &Registry,
    s: &Sites,
) -> anyhow::Result<Vec<(Candidate, String)>> {
    let mut out = Vec::new();
    for m in reg.referrers(&s.repo).await? {
        // the referrers API names the bundle type; go-containerregistry's fallback tag
        // index (what cosign writes) names the empty config type instead, or nothing
        match m["artifactType"].as_str() {
            Some(BUNDLE_V03 | layout::OCI_EMPTY | COSIGN_SIG_ARTIFACT) | None => {}
            Some(_) => continue,
        }
        let Some(md) = m["digest"].as_str() else {
            continue;
        };
        let (manifest, _, _) = reg.manifest_json(&with_digest(&s.repo, md)).await?;
        if manifest.pointer("/subject/digest") != Some(&json!(s.digest)) {
            continue;
        }
        let is_legacy_sig = manifest["artifactType"].as_str() == Some(COSIGN_SIG_ARTIFACT)
            || manifest.pointer("/config/mediaType") == Some(&json!(COSIGN_SIG_ARTIFACT));
        if is_legacy_sig {
            for c in layers_of(reg, s, &manifest, false, &format!("referrer {md}")).await? {
                out.push((c, COSIGN_SIGN_PREDICATE.to_string()));
            }
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
            let bundle = reg.blob(&s.repo, d).await?;
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

/// What verifying an image's attachments starts from: the policy and options of the
/// identity flags, the registry and the image's sites, and the trust material (with any
/// bring-your-own PKI applied).
struct Checking {
    policy: Policy,
    opts: sigstack::verify::Options,
    reg: Registry,
    s: Sites,
    m: Material,
}

async fn checking(
    trust: &TrustArgs,
    identity: &Identity,
    registry: &RegistryArgs,
    image: &str,
) -> anyhow::Result<Checking> {
    let policy = policy_of(identity)?;
    let opts = identity.options();
    let (reg, s) = resolve(registry, image).await?;
    let mut m = trust_material(trust).await?;
    identity.apply_pki(&mut m.trusted_root)?;
    Ok(Checking {
        policy,
        opts,
        reg,
        s,
        m,
    })
}

pub async fn verify_image(
    trust: &TrustArgs,
    a: &ImageVerifyArgs,
    out: Output,
) -> anyhow::Result<()> {
    let Checking {
        policy,
        opts,
        reg,
        s,
        m,
    } = checking(trust, &a.identity, &a.registry, &a.image).await?;
    let (r, digest) = (s.image.clone(), s.digest.clone());
    let mut candidates = legacy_layers(&reg, &s, "sig").await?;
    candidates.extend(
        referrer_candidates(&reg, &s)
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

pub async fn verify_attestation(
    trust: &TrustArgs,
    a: &ImageVerifyAttestationArgs,
    out: Output,
) -> anyhow::Result<()> {
    let Checking {
        policy,
        opts,
        reg,
        s,
        m,
    } = checking(trust, &a.identity, &a.registry, &a.image).await?;
    let (r, digest) = (s.image.clone(), s.digest.clone());
    let want_type = a
        .predicate_type
        .as_deref()
        .map(predicate_type)
        .transpose()?;
    let policies = sigstack::policy::load_all(&a.policy)?;
    let mut candidates = legacy_layers(&reg, &s, "att").await?;
    // every bundle referrer: the manifest's predicate-type annotation is not signed (and
    // cosign v2 labels its attestations as signatures); the signed statement decides
    // (a legacy signature pushed as a referrer is a simple-signing payload, never an
    // attestation)
    candidates.extend(
        referrer_candidates(&reg, &s)
            .await?
            .into_iter()
            .filter(|(c, _)| !matches!(c, Candidate::Legacy { envelope: None, .. }))
            .map(|(c, _)| c),
    );
    if candidates.is_empty() {
        return Err(VerificationFailed(format!("no attestations found for {r}")).into());
    }
    let mut verified = Vec::new();
    let mut failures = Vec::new();
    let mut denied = Vec::new();
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
            Ok(st)
        });
        match result {
            Ok(st) => {
                // as cosign: every verified attestation must satisfy every policy
                denied.extend(
                    sigstack::policy::denials(&policies, &st)
                        .into_iter()
                        .map(|d| format!("{}: {d}", from_of(c))),
                );
                verified.push(st)
            }
            Err(e) => failures.push(format!("{}: {e:#}", from_of(c))),
        }
    }
    if !denied.is_empty() {
        return Err(VerificationFailed(format!(
            "{} policy violation(s) in the attestations of {r}:\n  {}",
            denied.len(),
            denied.join("\n  ")
        ))
        .into());
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
