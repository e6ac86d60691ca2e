//! What an entry says about who signed what: the kinds the logs hold (Rekor v1
//! hashedrekord, intoto and dsse; Rekor v2 hashedrekord and dsse; CT certificates and
//! precertificates) reduced to the facts the watch list and the explorer look at.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use der::Decode;
use serde_json::Value;
use x509_cert::TbsCertificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

/// The facts of one entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// `hashedrekord`, `dsse`, `intoto`, `x509`, `precert`, or the body's own kind.
    pub kind: String,
    /// `sha256:<hex>` of the artifact (or DSSE payload), when the entry names one.
    pub digest: Option<String>,
    pub certs: Vec<CertFacts>,
    /// Hex SHA-256 of each plain public key's DER (SPKI), as rekor-monitor fingerprints.
    pub key_fingerprints: Vec<String>,
}

/// A certificate (or a precertificate's TBS) as the watch list sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertFacts {
    /// Subject alternative names: e-mail addresses, URIs, DNS names, IP addresses.
    pub sans: Vec<String>,
    /// The OIDC issuer (Fulcio extension 1.8, else 1.1).
    pub issuer: Option<String>,
    /// Hex SHA-256 of the certificate's DER (of the TBS for a precertificate).
    pub fingerprint: String,
    /// Hex serial number: what ties a log entry's certificate to its CT entry.
    pub serial: String,
    /// Every extension as (dotted OID, value): Fulcio's UTF8String values decoded, the
    /// raw v1 ones (1.1–1.6) as text, others as hex.
    pub extensions: Vec<(String, String)>,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    pub subject_dn: String,
    pub issuer_dn: String,
}

/// Certificates and subject alternative names of one entry the monitor looks at: an
/// entry made to flood matches (a certificate with thousands of names) is cut short.
pub const MAX_CERTS: usize = 16;
pub const MAX_SANS: usize = 64;

/// The Fulcio extensions by name (rekor-monitor's `fulcioExtensions` keys).
pub const FULCIO_EXTENSIONS: &[(&str, &str)] = &[
    ("issuer", "1.3.6.1.4.1.57264.1.1"),
    ("github-workflow-trigger", "1.3.6.1.4.1.57264.1.2"),
    ("github-workflow-sha", "1.3.6.1.4.1.57264.1.3"),
    ("github-workflow-name", "1.3.6.1.4.1.57264.1.4"),
    ("github-workflow-repository", "1.3.6.1.4.1.57264.1.5"),
    ("github-workflow-ref", "1.3.6.1.4.1.57264.1.6"),
    ("issuer-v2", "1.3.6.1.4.1.57264.1.8"),
    ("build-signer-uri", "1.3.6.1.4.1.57264.1.9"),
    ("build-signer-digest", "1.3.6.1.4.1.57264.1.10"),
    ("runner-environment", "1.3.6.1.4.1.57264.1.11"),
    ("source-repository-uri", "1.3.6.1.4.1.57264.1.12"),
    ("source-repository-digest", "1.3.6.1.4.1.57264.1.13"),
    ("source-repository-ref", "1.3.6.1.4.1.57264.1.14"),
    ("source-repository-identifier", "1.3.6.1.4.1.57264.1.15"),
    ("source-repository-owner-uri", "1.3.6.1.4.1.57264.1.16"),
    (
        "source-repository-owner-identifier",
        "1.3.6.1.4.1.57264.1.17",
    ),
    ("build-config-uri", "1.3.6.1.4.1.57264.1.18"),
    ("build-config-digest", "1.3.6.1.4.1.57264.1.19"),
    ("build-trigger", "1.3.6.1.4.1.57264.1.20"),
    ("run-invocation-uri", "1.3.6.1.4.1.57264.1.21"),
    (
        "source-repository-visibility-at-signing",
        "1.3.6.1.4.1.57264.1.22",
    ),
    ("deployment-environment", "1.3.6.1.4.1.57264.1.23"),
];

/// A readable name for an extension OID (Fulcio's, and the common X.509 ones).
pub fn extension_name(oid: &str) -> Option<&'static str> {
    FULCIO_EXTENSIONS
        .iter()
        .find(|(_, o)| *o == oid)
        .map(|(n, _)| *n)
        .or(match oid {
            // not a rekor-monitor `fulcioExtensions` key, but Fulcio's all the same
            "1.3.6.1.4.1.57264.1.24" => Some("token subject"),
            "2.5.29.14" => Some("subject key identifier"),
            "2.5.29.15" => Some("key usage"),
            "2.5.29.17" => Some("subject alternative name"),
            "2.5.29.19" => Some("basic constraints"),
            "2.5.29.35" => Some("authority key identifier"),
            "2.5.29.37" => Some("extended key usage"),
            "1.3.6.1.4.1.11129.2.4.2" => Some("embedded SCTs"),
            "1.3.6.1.4.1.11129.2.4.3" => Some("precertificate poison"),
            _ => None,
        })
}

fn b64(v: &Value) -> Option<Vec<u8>> {
    STANDARD.decode(v.as_str()?).ok()
}

/// Facts of a Rekor (v1 or v2) entry body: its canonical JSON.
pub fn rekor_body(body: &[u8]) -> Facts {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Facts {
            kind: "unreadable".into(),
            ..Facts::default()
        };
    };
    let kind = v["kind"].as_str().unwrap_or("unknown").to_string();
    let spec = &v["spec"];
    let mut f = Facts {
        kind: kind.clone(),
        ..Facts::default()
    };
    let mut verifiers: Vec<Vec<u8>> = Vec::new();
    if let Some(h) = spec.get("hashedRekordV002") {
        // Rekor v2: {data: {algorithm, digest(b64)}, signature: {content, verifier}}
        f.digest = digest_v2(&h["data"]);
        verifiers.extend(verifier_v2(&h["signature"]["verifier"]));
    } else if let Some(d) = spec.get("dsseV002") {
        f.digest = digest_v2(&d["payloadHash"]);
        for s in d["signatures"].as_array().into_iter().flatten() {
            verifiers.extend(verifier_v2(&s["verifier"]));
        }
    } else {
        match kind.as_str() {
            "hashedrekord" => {
                f.digest = hex_digest(&spec["data"]["hash"]);
                verifiers.extend(b64(&spec["signature"]["publicKey"]["content"]));
            }
            "dsse" => {
                f.digest = hex_digest(&spec["payloadHash"]);
                for s in spec["signatures"].as_array().into_iter().flatten() {
                    verifiers.extend(b64(&s["verifier"]));
                }
            }
            "intoto" => {
                f.digest = hex_digest(&spec["content"]["payloadHash"])
                    .or_else(|| hex_digest(&spec["content"]["hash"]));
                for s in spec["content"]["envelope"]["signatures"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    verifiers.extend(b64(&s["publicKey"]));
                }
                verifiers.extend(b64(&spec["publicKey"]));
            }
            _ => {
                verifiers.extend(b64(&spec["signature"]["publicKey"]["content"]));
                verifiers.extend(b64(&spec["publicKey"]["content"]));
            }
        }
    }
    for v in verifiers.iter().take(MAX_CERTS) {
        f.add_verifier(v);
    }
    f.certs.truncate(MAX_CERTS);
    f.key_fingerprints.truncate(MAX_CERTS);
    f
}

fn digest_v2(d: &Value) -> Option<String> {
    let raw = b64(&d["digest"])?;
    let alg = match d["algorithm"].as_str()? {
        "SHA2_256" => "sha256",
        "SHA2_384" => "sha384",
        "SHA2_512" => "sha512",
        other => other,
    };
    Some(format!("{alg}:{}", hex::encode(raw)))
}

fn hex_digest(h: &Value) -> Option<String> {
    let value = h["value"].as_str()?;
    Some(format!(
        "{}:{}",
        h["algorithm"].as_str().unwrap_or("sha256"),
        value.to_ascii_lowercase()
    ))
}

/// A v2 verifier: `{x509Certificate: {rawBytes}}` or `{publicKey: {rawBytes}}` (DER).
fn verifier_v2(v: &Value) -> Option<Vec<u8>> {
    let raw =
        b64(&v["x509Certificate"]["rawBytes"]).or_else(|| b64(&v["publicKey"]["rawBytes"]))?;
    Some(raw)
}

impl Facts {
    /// A verifier as a log holds it: PEM (a certificate or a public key) or DER.
    fn add_verifier(&mut self, data: &[u8]) {
        let ders: Vec<(String, Vec<u8>)> = if data.starts_with(b"-----BEGIN") {
            pem_blocks(data)
        } else {
            vec![(String::new(), data.to_vec())]
        };
        for (label, der) in ders {
            if (label == "CERTIFICATE" || label.is_empty())
                && let Ok(c) = x509_cert::Certificate::from_der(&der)
            {
                let mut cf = tbs_facts(&c.tbs_certificate);
                cf.fingerprint = hex::encode(sigstack_crypto::sha256(&der));
                self.certs.push(cf);
                continue;
            }
            if label.contains("PUBLIC KEY") || label.is_empty() {
                self.key_fingerprints
                    .push(hex::encode(sigstack_crypto::sha256(&der)));
            }
        }
    }
}

fn pem_blocks(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let text = String::from_utf8_lossy(data);
    let mut out = Vec::new();
    let mut label: Option<String> = None;
    let mut body = String::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(l) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|r| r.strip_suffix("-----"))
        {
            label = Some(l.to_string());
            body.clear();
        } else if line.starts_with("-----END ") {
            if let (Some(l), Ok(der)) = (label.take(), STANDARD.decode(body.as_bytes())) {
                out.push((l, der));
            }
        } else if label.is_some() {
            body.push_str(line);
        }
    }
    out
}

/// Facts of a certificate's TBS part.
pub fn tbs_facts(tbs: &TbsCertificate) -> CertFacts {
    let mut f = CertFacts {
        serial: hex::encode(tbs.serial_number.as_bytes()),
        not_before: tbs.validity.not_before.to_unix_duration().as_secs() as i64,
        not_after: tbs.validity.not_after.to_unix_duration().as_secs() as i64,
        subject_dn: tbs.subject.to_string(),
        issuer_dn: tbs.issuer.to_string(),
        ..CertFacts::default()
    };
    let mut issuer_v1 = None;
    for e in tbs.extensions.iter().flatten() {
        let oid = e.extn_id.to_string();
        let raw = e.extn_value.as_bytes();
        if oid == "2.5.29.17"
            && let Ok(san) = SubjectAltName::from_der(raw)
        {
            f.sans
                .extend(san.0.iter().take(MAX_SANS).filter_map(general_name));
        }
        let value = extension_text(&oid, raw);
        if oid == "1.3.6.1.4.1.57264.1.8" {
            f.issuer = Some(value.clone());
        } else if oid == "1.3.6.1.4.1.57264.1.1" {
            issuer_v1 = Some(value.clone());
        }
        f.extensions.push((oid, value));
    }
    if f.issuer.is_none() {
        f.issuer = issuer_v1;
    }
    f
}

fn general_name(n: &GeneralName) -> Option<String> {
    match n {
        GeneralName::Rfc822Name(s) => Some(s.to_string()),
        GeneralName::UniformResourceIdentifier(s) => Some(s.to_string()),
        GeneralName::DnsName(s) => Some(s.to_string()),
        GeneralName::OtherName(o) => o
            .value
            .decode_as::<der::asn1::Utf8StringRef<'_>>()
            .ok()
            .map(|s| s.as_str().to_string()),
        _ => None,
    }
}

/// An extension's value as text: Fulcio's 1.1–1.6 are raw strings, the later ones DER
/// UTF8Strings; anything else is shown in hex.
pub fn extension_text(oid: &str, raw: &[u8]) -> String {
    if let Some(n) = oid.strip_prefix("1.3.6.1.4.1.57264.1.")
        && let Ok(n) = n.parse::<u32>()
    {
        if n <= 6 {
            return String::from_utf8_lossy(raw).into_owned();
        }
        if let Ok(s) = der::asn1::Utf8StringRef::from_der(raw) {
            return s.as_str().to_string();
        }
    }
    hex::encode(raw)
}

/// A CT log leaf (`MerkleTreeLeaf`): its timestamp (ms) and the facts of the
/// certificate or precertificate it logs.
pub fn ct_leaf(leaf: &[u8]) -> Option<(u64, Facts)> {
    // version(1) leaf_type(1) timestamp(8) entry_type(2) ...
    if leaf.len() < 12 || leaf[0] != 0 || leaf[1] != 0 {
        return None;
    }
    let ts = u64::from_be_bytes(leaf[2..10].try_into().ok()?);
    let entry_type = u16::from_be_bytes([leaf[10], leaf[11]]);
    let rest = &leaf[12..];
    let u24 = |b: &[u8]| -> Option<usize> {
        Some(((*b.first()? as usize) << 16) | ((*b.get(1)? as usize) << 8) | *b.get(2)? as usize)
    };
    let mut facts = Facts::default();
    match entry_type {
        0 => {
            let n = u24(rest)?;
            let der = rest.get(3..3 + n)?;
            let c = x509_cert::Certificate::from_der(der).ok()?;
            let mut cf = tbs_facts(&c.tbs_certificate);
            cf.fingerprint = hex::encode(sigstack_crypto::sha256(der));
            facts.kind = "x509".into();
            facts.certs.push(cf);
        }
        1 => {
            // issuer_key_hash(32) then the TBS with a 24-bit length
            let rest = rest.get(32..)?;
            let n = u24(rest)?;
            let der = rest.get(3..3 + n)?;
            let tbs = TbsCertificate::from_der(der).ok()?;
            let mut cf = tbs_facts(&tbs);
            cf.fingerprint = hex::encode(sigstack_crypto::sha256(der));
            facts.kind = "precert".into();
            facts.certs.push(cf);
        }
        _ => return None,
    }
    Some((ts, facts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v2_hashedrekord_with_a_public_key() {
        let body = serde_json::json!({
            "apiVersion": "0.0.2", "kind": "hashedrekord",
            "spec": {"hashedRekordV002": {
                "data": {"algorithm": "SHA2_256", "digest": STANDARD.encode([7u8; 32])},
                "signature": {"content": "AA==", "verifier": {"publicKey": {"rawBytes": STANDARD.encode(b"spki")}, "keyDetails": "PKIX_ECDSA_P256_SHA_256"}}
            }}
        });
        let f = rekor_body(body.to_string().as_bytes());
        assert_eq!(f.kind, "hashedrekord");
        assert_eq!(
            f.digest.as_deref(),
            Some(&*format!("sha256:{}", hex::encode([7u8; 32])))
        );
        assert_eq!(
            f.key_fingerprints,
            vec![hex::encode(sigstack_crypto::sha256(b"spki"))]
        );
        assert!(f.certs.is_empty());
    }

    #[test]
    fn fulcio_extension_values_decode_by_version() {
        assert_eq!(
            extension_text("1.3.6.1.4.1.57264.1.1", b"https://x"),
            "https://x"
        );
        let utf8 = [0x0c, 3, b'a', b'b', b'c'];
        assert_eq!(extension_text("1.3.6.1.4.1.57264.1.8", &utf8), "abc");
        assert_eq!(extension_text("2.5.29.19", &[0x30, 0]), "3000");
        assert_eq!(
            extension_name("1.3.6.1.4.1.57264.1.9"),
            Some("build-signer-uri")
        );
    }

    #[test]
    fn garbage_is_not_a_ct_leaf_nor_a_panic() {
        assert!(ct_leaf(b"").is_none());
        assert!(ct_leaf(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff]).is_none());
        assert_eq!(rekor_body(b"{not json").kind, "unreadable");
    }
}
