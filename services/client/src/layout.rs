//! How cosign lays signatures and attestations out in a registry, as data: the
//! simple-signing payload, the legacy `sha256-<hex>.sig` / `.att` signature images and
//! their layer annotations, and the OCI 1.1 referrer manifests holding Sigstore bundles
//! (with the tag-schema fallback index for registries without a referrers API). Also the
//! conversion of a legacy signature layer into a bundle our verifier checks completely.

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const DSSE_LAYER: &str = "application/vnd.dsse.envelope.v1+json";
pub const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The empty config's media type, which go-containerregistry's referrers fallback index
/// gives as a referrer's artifact type.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

pub const ANN_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
pub const ANN_CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
pub const ANN_CHAIN: &str = "dev.sigstore.cosign/chain";
pub const ANN_BUNDLE: &str = "dev.sigstore.cosign/bundle";
pub const ANN_PREDICATE_TYPE: &str = "predicateType";
pub const ANN_CONTENT: &str = "dev.sigstore.bundle.content";
pub const ANN_BUNDLE_PREDICATE: &str = "dev.sigstore.bundle.predicateType";
pub const ANN_CREATED: &str = "org.opencontainers.image.created";

pub const SIGNATURE_TYPE: &str = "cosign container image signature";
/// The artifact type of cosign's legacy signature image pushed as an OCI 1.1 referrer
/// (`--registry-referrers-mode oci-1-1`).
pub const COSIGN_SIG_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// The predicate type cosign v3 signs images with (an in-toto statement, empty predicate).
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";

pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sigstack_crypto::sha256(bytes)))
}

/// The legacy tag for `digest` (`sha256:<hex>`) and suffix (`sig`, `att`, `sbom`), or
/// the referrers fallback tag when `suffix` is empty.
pub fn tag_for(digest: &str, suffix: &str) -> String {
    let base = digest.replacen(':', "-", 1);
    if suffix.is_empty() {
        base
    } else {
        format!("{base}.{suffix}")
    }
}

/// The simple-signing payload for an image (`docker_reference` is registry/repository).
pub fn simple_signing_payload(
    docker_reference: &str,
    digest: &str,
    annotations: &serde_json::Map<String, Value>,
) -> Vec<u8> {
    let optional = if annotations.is_empty() {
        Value::Null
    } else {
        Value::Object(annotations.clone())
    };
    serde_json::to_vec(&json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": optional,
    }))
    .unwrap_or_default()
}

/// What a verified simple-signing payload claims, checked against the image.
pub fn check_payload(
    payload: &[u8],
    digest: &str,
    want_annotations: &[(String, String)],
) -> anyhow::Result<Value> {
    let v: Value = serde_json::from_slice(payload).context("the signed payload is not JSON")?;
    if v.pointer("/critical/type").and_then(Value::as_str) != Some(SIGNATURE_TYPE) {
        bail!(
            "the signed payload's type is {}, not {SIGNATURE_TYPE:?}",
            v.pointer("/critical/type").unwrap_or(&Value::Null)
        );
    }
    let signed = v
        .pointer("/critical/image/docker-manifest-digest")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if signed != digest {
        bail!("the signature is for another image: it names {signed}, the image is {digest}");
    }
    check_annotations(v.get("optional"), want_annotations)?;
    Ok(v)
}

/// `-a key=value` checks against a payload's `optional` map.
pub fn check_annotations(
    optional: Option<&Value>,
    want: &[(String, String)],
) -> anyhow::Result<()> {
    for (k, val) in want {
        let got = optional.and_then(|o| o.get(k)).and_then(Value::as_str);
        match got {
            Some(g) if g == val => {}
            Some(g) => bail!("annotation {k}={val} is not in the signed payload (it has {k}={g})"),
            None => bail!("annotation {k}={val} is not in the signed payload (it has no {k})"),
        }
    }
    Ok(())
}

/// cosign's `dev.sigstore.cosign/bundle` annotation for a bundle's first log entry.
pub fn legacy_bundle_annotation(tlog_entry: &Value) -> anyhow::Result<String> {
    let set = tlog_entry
        .pointer("/inclusionPromise/signedEntryTimestamp")
        .and_then(Value::as_str)
        .context("the log entry has no signed entry timestamp")?;
    let num = |p: &str| -> anyhow::Result<i64> {
        tlog_entry
            .pointer(p)
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("the log entry has no {p}"))
    };
    let log_id = STANDARD.decode(
        tlog_entry
            .pointer("/logId/keyId")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    )?;
    Ok(json!({
        "SignedEntryTimestamp": set,
        "Payload": {
            "body": tlog_entry["canonicalizedBody"],
            "integratedTime": num("/integratedTime")?,
            "logIndex": num("/logIndex")?,
            "logID": hex::encode(log_id),
        }
    })
    .to_string())
}

/// The `-a` annotations of a signature statement: cosign v3 keeps them in the image's
/// `subject[].annotations`; sigstack before it kept them in `predicate.annotations`.
/// Both are signed; either may hold them.
pub fn check_statement_annotations(
    statement: &Value,
    digest: &str,
    want: &[(String, String)],
) -> anyhow::Result<()> {
    let hexd = digest.strip_prefix("sha256:").unwrap_or(digest);
    let subject = statement["subject"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s.pointer("/digest/sha256").and_then(Value::as_str) == Some(hexd));
    let in_subject = subject.and_then(|s| s.get("annotations"));
    match (in_subject, statement.pointer("/predicate/annotations")) {
        (Some(a), _) => check_annotations(Some(a), want),
        (None, p) => check_annotations(p, want),
    }
}

/// The statement cosign v3 signs an image with: `-a` annotations on the subject, and
/// (for sigstack verifiers before they read the subject's) in the predicate too.
pub fn image_signature_statement(
    name: &str,
    digest: &str,
    annotations: &serde_json::Map<String, Value>,
) -> Value {
    let predicate = if annotations.is_empty() {
        json!({})
    } else {
        json!({"annotations": annotations})
    };
    let mut st = image_statement(name, digest, COSIGN_SIGN_PREDICATE, predicate);
    if !annotations.is_empty() {
        st["subject"][0]["annotations"] = Value::Object(annotations.clone());
    }
    st
}

/// The PEM certificates of an annotation, as DER.
fn pem_certs(pem: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    Ok(sigstack_crypto::pem::decode_all(pem.as_bytes())?
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE")
        .map(|b| b.der)
        .collect())
}

/// The largest log entry body read (as the verifier's bound).
const MAX_BODY_BYTES: usize = 256 << 10;

/// cosign's legacy log bundle (`{"SignedEntryTimestamp", "Payload": {"body",
/// "integratedTime", "logIndex", "logID"}}`) as a bundle's `tlogEntries` item.
fn legacy_tlog_entry(b: &Value) -> anyhow::Result<Value> {
    let body_b64 = b
        .pointer("/Payload/body")
        .and_then(Value::as_str)
        .context("the log bundle has no body")?;
    let body_bytes = STANDARD.decode(body_b64)?;
    if body_bytes.len() > MAX_BODY_BYTES {
        bail!("the logged body is larger than a log entry body may be");
    }
    // the kind and version only (the verifier reads the body itself, strictly)
    #[derive(serde::Deserialize)]
    struct Kind {
        kind: String,
        #[serde(rename = "apiVersion")]
        api_version: String,
    }
    let kind: Kind = crate::bundle::strict::from_slice(&body_bytes)
        .map_err(|e| anyhow::anyhow!("the logged body is not JSON: {e}"))?;
    let body = json!({"kind": kind.kind, "apiVersion": kind.api_version});
    let num = |p: &str| b.pointer(p).and_then(Value::as_i64).unwrap_or(-1);
    Ok(json!({
        "logIndex": num("/Payload/logIndex").to_string(),
        "logId": {"keyId": STANDARD.encode(hex::decode(b.pointer("/Payload/logID").and_then(Value::as_str).unwrap_or_default())?)},
        "kindVersion": {"kind": body["kind"], "version": body["apiVersion"]},
        "integratedTime": num("/Payload/integratedTime").to_string(),
        "inclusionPromise": {"signedEntryTimestamp": b["SignedEntryTimestamp"]},
        "canonicalizedBody": body_b64,
    }))
}

/// cosign v2's default blob bundle (`sign-blob --bundle` without `--new-bundle-format`):
/// the signature, the base64 PEM of the certificate (or of the public key when a key
/// signed, or nothing), and the log bundle. Read into these types only, so junk costs no
/// more memory than its size.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct CosignV2Bundle {
    base64_signature: String,
    #[serde(default)]
    cert: Option<String>,
    #[serde(default)]
    rekor_bundle: Option<LogBundle>,
}

/// cosign's log bundle, typed (its JSON is rebuilt for `legacy_tlog_entry`).
#[derive(serde::Deserialize, serde::Serialize)]
struct LogBundle {
    #[serde(rename = "SignedEntryTimestamp")]
    signed_entry_timestamp: String,
    #[serde(rename = "Payload")]
    payload: LogPayload,
}

#[derive(serde::Deserialize, serde::Serialize)]
struct LogPayload {
    body: String,
    #[serde(rename = "integratedTime")]
    integrated_time: i64,
    #[serde(rename = "logIndex")]
    log_index: i64,
    #[serde(rename = "logID")]
    log_id: String,
}

/// Tells a cosign v2 blob bundle from a Sigstore bundle without reading either whole.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shape {
    #[serde(default)]
    base64_signature: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    media_type: Option<serde::de::IgnoredAny>,
}

/// Whether `bytes` hold cosign v2's default blob bundle.
pub fn is_cosign_v2_blob_bundle(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Shape>(bytes)
        .is_ok_and(|s| s.base64_signature.is_some() && s.media_type.is_none())
}

/// cosign v2's blob bundle as a v0.1 Sigstore bundle, verified like any other.
pub fn cosign_v2_blob_bundle(bytes: &[u8]) -> anyhow::Result<Value> {
    let v: CosignV2Bundle = crate::bundle::strict::from_slice(bytes)
        .map_err(|e| anyhow::anyhow!("malformed cosign bundle: {e}"))?;
    let sig = v.base64_signature.as_str();
    let pem = match v.cert.as_deref() {
        Some(c) if !c.is_empty() => STANDARD.decode(c).context("cert is not base64")?,
        _ => Vec::new(),
    };
    let pem = String::from_utf8(pem).context("cert is not PEM text")?;
    let certs = if pem.is_empty() {
        Vec::new()
    } else {
        pem_certs(&pem)?
    };
    let mut material = match certs.into_iter().next() {
        Some(der) => {
            json!({"x509CertificateChain": {"certificates": [{"rawBytes": STANDARD.encode(der)}]}})
        }
        None => json!({"publicKey": {"hint": ""}}),
    };
    let rekor = v
        .rekor_bundle
        .context("the bundle has no rekorBundle: the signature was not logged")?;
    material["tlogEntries"] = json!([legacy_tlog_entry(&serde_json::to_value(&rekor)?)?]);
    let mut bundle = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": material,
    });
    // an attestation's "signature" is the base64 of its whole DSSE envelope, read into the
    // envelope's own fields (a signature's bytes never parse as one)
    let envelope = STANDARD
        .decode(sig)
        .ok()
        .filter(|b| b.first() == Some(&b'{'))
        .and_then(|b| crate::bundle::strict::from_slice::<crate::bundle::DsseEnvelope>(&b).ok());
    match envelope {
        Some(env) => {
            bundle["dsseEnvelope"] = json!({
                "payload": env.payload,
                "payloadType": env.payload_type,
                "signatures": env.signatures.iter().map(|s| json!({"sig": s.sig, "keyid": s.keyid.clone().unwrap_or_default()})).collect::<Vec<_>>(),
            })
        }
        None => bundle["messageSignature"] = json!({"signature": sig}),
    }
    Ok(bundle)
}

/// A legacy signature layer (or attestation layer, with `envelope`) as a v0.1 bundle, so
/// the verifier checks it like any other: signature, log entry body, SET, certificate.
pub fn legacy_layer_bundle(
    annotations: &serde_json::Map<String, Value>,
    payload: &[u8],
    envelope: Option<&Value>,
) -> anyhow::Result<Value> {
    let get = |k: &str| annotations.get(k).and_then(Value::as_str);
    let mut material = match get(ANN_CERTIFICATE) {
        Some(pem) if !pem.is_empty() => {
            let mut chain = pem_certs(pem)?;
            if chain.is_empty() {
                bail!("the certificate annotation holds no PEM certificate");
            }
            chain.truncate(1);
            // the chain annotation's intermediates (not the root: verification anchors it)
            if let Some(c) = get(ANN_CHAIN) {
                for der in pem_certs(c)? {
                    let cert = sigstack_crypto::Certificate::from_der(&der)?;
                    if cert.verify_issued_by(&cert).is_err() {
                        chain.push(der);
                    }
                }
            }
            json!({"x509CertificateChain": {"certificates": chain.iter().map(|d| json!({"rawBytes": STANDARD.encode(d)})).collect::<Vec<_>>()}})
        }
        _ => json!({"publicKey": {"hint": ""}}),
    };
    let bundle_ann = get(ANN_BUNDLE)
        .context("the signature has no transparency-log bundle annotation (it was not logged)")?;
    let b: Value = serde_json::from_str(bundle_ann).context("the bundle annotation is not JSON")?;
    material["tlogEntries"] = json!([legacy_tlog_entry(&b)?]);
    let mut bundle = json!({
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "verificationMaterial": material,
    });
    match envelope {
        Some(env) => bundle["dsseEnvelope"] = env.clone(),
        None => {
            let sig = get(ANN_SIGNATURE).context("the layer has no signature annotation")?;
            bundle["messageSignature"] = json!({
                "messageDigest": {"algorithm": "SHA2_256", "digest": STANDARD.encode(sigstack_crypto::sha256(payload))},
                "signature": sig,
            });
        }
    }
    Ok(bundle)
}

/// A layer descriptor.
pub fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256_digest(bytes), "size": bytes.len()})
}

/// The config blob of a legacy signature image (what cosign writes: an OCI image config
/// whose rootfs lists the layers).
pub fn signature_image_config(layer_digests: &[String]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": layer_digests},
        "config": {},
    }))
    .unwrap_or_default()
}

/// Docker's schema 2 config media type, for registries that refuse OCI's.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// cosign's `COSIGN_DOCKER_MEDIA_TYPES`: signature images with Docker's media types
/// (true, 1, t… as Go's strconv.ParseBool reads them).
pub fn docker_media_types() -> bool {
    std::env::var("COSIGN_DOCKER_MEDIA_TYPES")
        .is_ok_and(|v| matches!(v.as_str(), "1" | "t" | "T" | "TRUE" | "true" | "True"))
}

/// A signature image's manifest for `layers` with `config` bytes: OCI media types, or
/// Docker's with `COSIGN_DOCKER_MEDIA_TYPES`.
pub fn image_manifest(config: &[u8], layers: &[Value]) -> Value {
    let (manifest, config_type) = if docker_media_types() {
        (DOCKER_MANIFEST, DOCKER_CONFIG)
    } else {
        (OCI_MANIFEST, OCI_CONFIG)
    };
    json!({
        "schemaVersion": 2,
        "mediaType": manifest,
        "config": descriptor(config_type, config),
        "layers": layers,
    })
}

/// The empty config blob of OCI artifacts.
pub const EMPTY_CONFIG: &[u8] = b"{}";

/// A referrer manifest carrying a Sigstore bundle about `subject`.
pub fn bundle_referrer(
    subject: &Value,
    bundle: &[u8],
    predicate_type: &str,
    created: &str,
) -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE_V03,
        // cosign writes the empty config as an image config
        "config": {"mediaType": OCI_CONFIG, "digest": sha256_digest(EMPTY_CONFIG), "size": EMPTY_CONFIG.len()},
        "layers": [descriptor(BUNDLE_V03, bundle)],
        "subject": subject,
        "annotations": {
            ANN_CREATED: created,
            ANN_CONTENT: "dsse-envelope",
            ANN_BUNDLE_PREDICATE: predicate_type,
        }
    })
}

/// The referrers fallback index (`sha256-<hex>` tag) with `entry` added (once).
pub fn fallback_index_with(existing: Option<&Value>, entry: Value) -> Value {
    let mut manifests: Vec<Value> = existing
        .and_then(|i| i.get("manifests"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !manifests.iter().any(|m| m["digest"] == entry["digest"]) {
        manifests.push(entry);
    }
    json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
}

/// An in-toto statement about an image digest.
pub fn image_statement(name: &str, digest: &str, predicate_type: &str, predicate: Value) -> Value {
    let hexd = digest.strip_prefix("sha256:").unwrap_or(digest);
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": hexd}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    })
}

/// cosign's predicate type names.
pub fn predicate_type(name: &str) -> anyhow::Result<String> {
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
pub const CUSTOM_PREDICATE: &str = "https://cosign.sigstore.dev/attestation/v1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_payloads_follow_cosign() {
        let d = "sha256:abcd";
        assert_eq!(tag_for(d, "sig"), "sha256-abcd.sig");
        assert_eq!(tag_for(d, ""), "sha256-abcd");
        let p = simple_signing_payload("reg/repo", d, &Default::default());
        let v: Value = serde_json::from_slice(&p).expect("json");
        assert_eq!(v["critical"]["type"], SIGNATURE_TYPE);
        assert_eq!(v["optional"], Value::Null);
        assert!(check_payload(&p, d, &[]).is_ok());
        let e = check_payload(&p, "sha256:other", &[]).expect_err("another image");
        assert!(e.to_string().contains("another image"));
        let e = check_payload(&p, d, &[("k".into(), "v".into())]).expect_err("annotation");
        assert!(e.to_string().contains("k=v"));
        let mut ann = serde_json::Map::new();
        ann.insert("k".into(), json!("v"));
        let p = simple_signing_payload("reg/repo", d, &ann);
        assert!(check_payload(&p, d, &[("k".into(), "v".into())]).is_ok());
    }

    #[test]
    fn fallback_index_adds_each_referrer_once() {
        let a = json!({"digest": "sha256:1"});
        let i = fallback_index_with(None, a.clone());
        let i = fallback_index_with(Some(&i), a);
        let i = fallback_index_with(Some(&i), json!({"digest": "sha256:2"}));
        assert_eq!(i["manifests"].as_array().map(Vec::len), Some(2));
    }
}
