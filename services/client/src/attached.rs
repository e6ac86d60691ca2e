//! What is attached to a container image and whether it verifies: cosign's legacy
//! `sha256-<hex>.sig`/`.att` layers and the Sigstore bundles in OCI referrers, found in a
//! registry and checked with the bundle verifier. `sigstack verify`, `verify-attestation`
//! and `sigstackd admission` all decide through [`Check`].

use crate::layout::{self, *};
use crate::registry::{Registry, with_digest, with_tag};
use crate::rekor::Rekor;
use crate::trust::{Material, Services};
use crate::verify::{Artifact, Options, Policy, verify_with};
use anyhow::{Context, bail};
use serde_json::{Value, json};

/// Where an image's signatures and attestations live: beside the image, or in the
/// repository `COSIGN_REPOSITORY` names (cosign's override, on the same or another
/// registry). The legacy tags, the referrer manifests with their blobs and the referrers
/// fallback index all go there; the image itself stays where it is.
pub struct Sites {
    /// The image, by digest.
    pub image: oci_client::Reference,
    /// The image's digest (`sha256:<hex>`).
    pub digest: String,
    /// The signature repository, at the image's digest (for referrers).
    pub repo: oci_client::Reference,
}

impl Sites {
    /// The sites of the image `r` at `digest`, its signatures in `target` if given.
    pub fn new(
        r: &oci_client::Reference,
        digest: &str,
        target: Option<&oci_client::Reference>,
    ) -> Self {
        let image = with_digest(r, digest);
        Sites {
            repo: with_digest(target.unwrap_or(&image), digest),
            image,
            digest: digest.to_string(),
        }
    }

    /// A tag-schema tag: `sha256-<hex>.<suffix>` (no suffix: the referrers fallback index).
    pub fn tag(&self, suffix: &str) -> oci_client::Reference {
        with_tag(&self.repo, &layout::tag_for(&self.digest, suffix))
    }

    /// The sites of another manifest in the same repositories (an index's child).
    pub fn at(&self, digest: &str) -> Sites {
        Sites {
            image: with_digest(&self.image, digest),
            digest: digest.to_string(),
            repo: with_digest(&self.repo, digest),
        }
    }
}

/// Something attached to an image that may verify.
pub enum Candidate {
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
pub async fn legacy_layers(
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
pub async fn referrer_candidates(
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
        crate::rekor::hashedrekord(&sigstack_crypto::sha256(payload), sig, verifier.as_bytes());
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()?;
    let rekor = Rekor { http: &http, url };
    let (_, e) = rekor
        .entries_like(&proposed)
        .await?
        .into_iter()
        .next()
        .context("the signature is not in the transparency log")?;
    let entry = crate::rekor::bundle_entry(&e)?;
    let mut ann = annotations.clone();
    ann.insert(
        ANN_BUNDLE.into(),
        json!(layout::legacy_bundle_annotation(&entry)?),
    );
    Ok(ann)
}

pub fn from_of(c: &Candidate) -> &str {
    match c {
        Candidate::Legacy { from, .. } | Candidate::Bundle { from, .. } => from,
    }
}

/// Which of cosign's layouts count (policy-controller's `signatureFormat`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Layouts {
    /// Every layout: legacy `.sig`/`.att` images (under their tags or as referrers) and
    /// Sigstore bundles in referrers.
    #[default]
    All,
    /// cosign's legacy signature and attestation images only (`simplesigning`).
    Legacy,
    /// Sigstore bundles in OCI referrers only (`bundle`, cosign v3's layout).
    Bundles,
}

impl Layouts {
    fn admits(self, c: &Candidate) -> bool {
        match self {
            Layouts::All => true,
            Layouts::Legacy => matches!(c, Candidate::Legacy { .. }),
            Layouts::Bundles => matches!(c, Candidate::Bundle { .. }),
        }
    }
}

/// One image's attachments checked against one policy.
pub struct Check<'a> {
    pub reg: &'a Registry,
    pub sites: &'a Sites,
    pub material: &'a Material,
    pub policy: &'a Policy,
    pub opts: &'a Options,
    /// The log to look legacy signatures attached without an entry up in.
    pub rekor_url: Option<&'a str>,
    /// Never look anything up online.
    pub offline: bool,
    /// The time certificates and timestamps are checked at (Unix seconds).
    pub now: i64,
    pub layouts: Layouts,
}

/// The signatures that verified, and why each other one did not.
pub struct Signatures {
    /// How many were found.
    pub found: usize,
    /// The verified payloads (simple-signing) or statements (bundles).
    pub verified: Vec<Value>,
    /// `where: why` for each that did not verify.
    pub failures: Vec<String>,
}

/// The attestations that verified (with where each was found), and why each other one
/// did not.
pub struct Attestations {
    pub found: usize,
    pub verified: Vec<(String, Value)>,
    pub failures: Vec<String>,
    /// Verified signatures met among the referrers (not attestations).
    pub signatures: usize,
}

impl Check<'_> {
    /// Verifies one candidate; returns the verified payload or statement.
    async fn candidate(&self, c: &Candidate, rekor_url: Option<&str>) -> anyhow::Result<Value> {
        let (m, policy, opts, digest, offline, now) = (
            self.material,
            self.policy,
            self.opts,
            self.sites.digest.as_str(),
            self.offline,
            self.now,
        );
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
                    now,
                    opts,
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?;
                match v.statement_json() {
                    Some(statement) => Ok(statement?),
                    // a simple-signing payload, covered by the verified message signature
                    None => crate::bundle::strict::from_slice(payload)
                        .map_err(|e| anyhow::anyhow!("the signed payload is not JSON: {e}")),
                }
            }
            Candidate::Bundle { bundle, .. } => {
                let v = verify_with(
                    bundle,
                    &m.trusted_root,
                    &Artifact::Digest(digest_bytes),
                    policy,
                    now,
                    opts,
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?;
                Ok(v.statement_json()
                    .context("the bundle holds no statement")??)
            }
        }
    }

    /// The image's signatures (legacy `.sig` layers and signature bundles in referrers),
    /// each verified and its claims checked against the image and `annotations`.
    pub async fn signatures(&self, annotations: &[(String, String)]) -> anyhow::Result<Signatures> {
        let (reg, s) = (self.reg, self.sites);
        let mut candidates = legacy_layers(reg, s, "sig").await?;
        candidates.extend(
            referrer_candidates(reg, s)
                .await?
                .into_iter()
                .filter(|(_, p)| p == COSIGN_SIGN_PREDICATE || p.is_empty())
                .map(|(c, _)| c),
        );
        candidates.retain(|c| self.layouts.admits(c));
        let mut out = Signatures {
            found: candidates.len(),
            verified: Vec::new(),
            failures: Vec::new(),
        };
        for c in &candidates {
            let result = self
                .candidate(c, self.rekor_url)
                .await
                .and_then(|v| match c {
                    Candidate::Legacy {
                        envelope: None,
                        payload,
                        ..
                    } => check_payload(payload, &s.digest, annotations).map(|_| v),
                    _ => {
                        if v["predicateType"] != COSIGN_SIGN_PREDICATE {
                            bail!(
                                "the statement's predicate type is {}, not a signature",
                                v["predicateType"]
                            )
                        }
                        check_statement_annotations(&v, &s.digest, annotations).map(|_| v)
                    }
                });
            match result {
                Ok(v) => out.verified.push(v),
                Err(e) => out.failures.push(format!("{}: {e:#}", from_of(c))),
            }
        }
        Ok(out)
    }

    /// The image's attestations (legacy `.att` layers and every bundle referrer: the
    /// manifest's predicate-type annotation is not signed, the signed statement decides),
    /// each verified; with `want_type`, only statements of that predicate type count.
    pub async fn attestations(&self, want_type: Option<&str>) -> anyhow::Result<Attestations> {
        let (reg, s) = (self.reg, self.sites);
        let mut candidates = legacy_layers(reg, s, "att").await?;
        // a legacy signature pushed as a referrer is a simple-signing payload, never an
        // attestation
        candidates.extend(
            referrer_candidates(reg, s)
                .await?
                .into_iter()
                .filter(|(c, _)| !matches!(c, Candidate::Legacy { envelope: None, .. }))
                .map(|(c, _)| c),
        );
        candidates.retain(|c| self.layouts.admits(c));
        let mut out = Attestations {
            found: candidates.len(),
            verified: Vec::new(),
            failures: Vec::new(),
            signatures: 0,
        };
        for c in &candidates {
            let result = self.candidate(c, None).await;
            if matches!(&result, Ok(st) if st["predicateType"] == COSIGN_SIGN_PREDICATE) {
                out.signatures += 1;
                continue;
            }
            let result = result.and_then(|st| {
                if let Some(t) = want_type
                    && st["predicateType"].as_str() != Some(t)
                {
                    bail!("predicate type {} is not {t}", st["predicateType"]);
                }
                Ok(st)
            });
            match result {
                Ok(st) => out.verified.push((from_of(c).to_string(), st)),
                Err(e) => out.failures.push(format!("{}: {e:#}", from_of(c))),
            }
        }
        Ok(out)
    }
}
