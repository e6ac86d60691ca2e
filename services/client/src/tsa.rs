//! RFC 3161 signed timestamps (a CMS SignedData over a TSTInfo) as Sigstore bundles carry
//! them: the timestamp's message imprint must be the hash of the artifact signature, the
//! signed attributes' message digest the hash of the TSTInfo, and their signature must
//! verify with a timestamp authority of the trusted root, whose chain and validity window
//! cover the timestamp's time. Certificates embedded in the token are not trusted.

use crate::verify::trust::Authority;
use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::{Decode, Encode, Reader};
use sigstack_crypto::{Certificate, HashAlg};

const ID_CT_TSTINFO: &str = "1.2.840.113549.1.9.16.1.4";
const ID_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";

fn hash_of(oid: &der::asn1::ObjectIdentifier) -> Option<HashAlg> {
    match oid.to_string().as_str() {
        "2.16.840.1.101.3.4.2.1" => Some(HashAlg::Sha256),
        "2.16.840.1.101.3.4.2.2" => Some(HashAlg::Sha384),
        "2.16.840.1.101.3.4.2.3" => Some(HashAlg::Sha512),
        _ => None,
    }
}

/// The parts of a TSTInfo the verifier needs.
struct TstInfo {
    imprint_alg: HashAlg,
    imprint: Vec<u8>,
    gen_time: i64,
    /// The nonce INTEGER's content bytes.
    nonce: Option<Vec<u8>>,
}

fn parse_tst_info(der_bytes: &[u8]) -> Result<TstInfo, String> {
    let bad = |e: der::Error| format!("the TSTInfo does not parse: {e}");
    let mut r = der::SliceReader::new(der_bytes).map_err(bad)?;
    r.sequence(|r| {
        let _version = der::asn1::Int::decode(r)?;
        let _policy = der::asn1::ObjectIdentifier::decode(r)?;
        let (alg, imprint) = r.sequence(|r| {
            let alg = spki::AlgorithmIdentifierOwned::decode(r)?;
            let hashed = der::asn1::OctetString::decode(r)?;
            Ok((alg, hashed.as_bytes().to_vec()))
        })?;
        let _serial = der::asn1::Int::decode(r)?;
        let gen_at = der::asn1::GeneralizedTime::decode(r)?;
        // accuracy (SEQUENCE), ordering (BOOLEAN), nonce (the only INTEGER), tsa,
        // extensions: only the nonce is read
        let mut nonce = None;
        while !r.is_finished() {
            let any = der::Any::decode(r)?;
            if der::Tagged::tag(&any) == der::Tag::Integer && nonce.is_none() {
                nonce = Some(any.value().to_vec());
            }
        }
        Ok((alg, imprint, gen_at, nonce))
    })
    .map_err(bad)
    .and_then(|(alg, imprint, gen_at, nonce)| {
        Ok(TstInfo {
            imprint_alg: hash_of(&alg.oid).ok_or("the message imprint uses an unknown hash")?,
            imprint,
            gen_time: gen_at.to_unix_duration().as_secs() as i64,
            nonce,
        })
    })
}

/// The token of a DER TimeStampResp (RFC 3161 §2.4.2: status, then the token), as bundles
/// carry it, or of a bare token.
fn time_stamp_token(der_bytes: &[u8]) -> Result<ContentInfo, String> {
    if let Ok(ci) = ContentInfo::from_der(der_bytes) {
        return Ok(ci);
    }
    let bad = |e: der::Error| format!("the timestamp does not parse: {e}");
    let mut r = der::SliceReader::new(der_bytes).map_err(bad)?;
    let (status, token) = r
        .sequence(|r| {
            let status = r.sequence(|r| {
                let s = der::asn1::Int::decode(r)?;
                while !r.is_finished() {
                    let _ = der::Any::decode(r)?;
                }
                Ok(s)
            })?;
            let token = Option::<ContentInfo>::decode(r)?;
            Ok((status, token))
        })
        .map_err(bad)?;
    if !r.is_finished() {
        return Err("the timestamp response has data after it".into());
    }
    if !matches!(status.as_bytes(), [0] | [1]) {
        return Err("the timestamp response does not grant a timestamp".into());
    }
    token.ok_or_else(|| "the timestamp response has no token".into())
}

/// Verifies one timestamp over `signature` (the artifact signature's bytes) and returns
/// its time.
pub fn verify(token: &[u8], signature: &[u8], tsas: &[Authority]) -> Result<i64, String> {
    let ci = time_stamp_token(token)?;
    let sd: SignedData = ci
        .content
        .decode_as()
        .map_err(|e| format!("the timestamp is not a CMS SignedData: {e}"))?;
    if sd.encap_content_info.econtent_type.to_string() != ID_CT_TSTINFO {
        return Err("the timestamp does not hold a TSTInfo".into());
    }
    let econtent = sd
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or("the timestamp has no content")?;
    let tst_der = econtent
        .decode_as::<der::asn1::OctetString>()
        .map_err(|e| format!("the timestamp content is not an OCTET STRING: {e}"))?;
    let tst = parse_tst_info(tst_der.as_bytes())?;
    if tst.imprint != tst.imprint_alg.digest(signature) {
        return Err("the timestamp is not over this signature".into());
    }
    let signer = sd
        .signer_infos
        .0
        .iter()
        .next()
        .ok_or("the timestamp has no signer")?;
    let digest_alg =
        hash_of(&signer.digest_alg.oid).ok_or("the timestamp's digest algorithm is unknown")?;
    let attrs = signer
        .signed_attrs
        .as_ref()
        .ok_or("the timestamp has no signed attributes")?;
    let message_digest = attrs
        .iter()
        .find(|a| a.oid.to_string() == ID_MESSAGE_DIGEST)
        .and_then(|a| a.values.iter().next())
        .and_then(|v| v.decode_as::<der::asn1::OctetString>().ok())
        .ok_or("the timestamp has no message-digest attribute")?;
    if message_digest.as_bytes() != digest_alg.digest(tst_der.as_bytes()) {
        return Err("the timestamp's signed digest is not its TSTInfo's".into());
    }
    let signed = attrs
        .to_der()
        .map_err(|e| format!("re-encoding the signed attributes: {e}"))?;
    let sig = signer.signature.as_bytes();
    let mut last = "the timestamp is not signed by a trusted timestamp authority".to_string();
    for tsa in tsas {
        let Ok(chain) = &tsa.chain else { continue };
        let Some(leaf) = chain.first() else { continue };
        if leaf.public_key().verify_message(&signed, sig).is_err() {
            continue;
        }
        let t = tst.gen_time;
        if !tsa.window.as_ref().is_ok_and(|w| w.contains(t)) {
            last =
                "the timestamp is outside the timestamp authority's validity in the trusted root"
                    .into();
            continue;
        }
        let valid_at = |c: &Certificate| {
            let (nb, na) = c.validity();
            (nb as i64) <= t && t <= na as i64
        };
        if !chain.iter().all(valid_at) {
            last = "the timestamp authority's certificates were not valid at the timestamp's time"
                .into();
            continue;
        }
        if !chain
            .windows(2)
            .all(|w| w[0].verify_issued_by(&w[1]).is_ok())
        {
            last = "the timestamp authority's chain does not link up".into();
            continue;
        }
        return Ok(t);
    }
    Err(last)
}

/// A DER TLV (definite length).
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A positive INTEGER's content bytes (minimal, a leading zero when the top bit is set).
fn positive_integer(v: u64) -> Vec<u8> {
    let mut b: Vec<u8> = v
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    if b.is_empty() || b[0] & 0x80 != 0 {
        b.insert(0, 0);
    }
    b
}

/// A DER `TimeStampReq` (RFC 3161 §2.4.1) for the SHA-256 `digest` of a signature, with
/// `nonce` and certReq set (the TSA's certificate in the token).
pub fn request_der(digest: &[u8; 32], nonce: u64) -> Vec<u8> {
    // AlgorithmIdentifier { id-sha256, NULL }
    let sha256_oid = [
        0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
    ];
    let alg = tlv(0x30, &[&sha256_oid[..], &[0x05, 0x00]].concat());
    let imprint = tlv(0x30, &[alg, tlv(0x04, digest)].concat());
    let body = [
        tlv(0x02, &[1]),
        imprint,
        tlv(0x02, &positive_integer(nonce)),
        tlv(0x01, &[0xff]),
    ]
    .concat();
    tlv(0x30, &body)
}

/// Checks a TSA's answer to [`request_der`]: a granted `TimeStampResp` whose TSTInfo is
/// over `digest` with SHA-256 and echoes `nonce`. Returns the timestamp's time. (Whether
/// the TSA is trusted is the verifier's question, asked of the trusted root.)
pub fn check_response(resp: &[u8], digest: &[u8; 32], nonce: u64) -> Result<i64, String> {
    if ContentInfo::from_der(resp).is_ok() {
        return Err("the TSA answered a bare token, not a TimeStampResp".into());
    }
    let ci = time_stamp_token(resp)?;
    let sd: SignedData = ci
        .content
        .decode_as()
        .map_err(|e| format!("the timestamp is not a CMS SignedData: {e}"))?;
    let econtent = sd
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or("the timestamp has no content")?;
    let tst_der = econtent
        .decode_as::<der::asn1::OctetString>()
        .map_err(|e| format!("the timestamp content is not an OCTET STRING: {e}"))?;
    let tst = parse_tst_info(tst_der.as_bytes())?;
    if tst.imprint_alg != HashAlg::Sha256 || tst.imprint != digest {
        return Err("the timestamp is not over the signature sent".into());
    }
    if tst.nonce.as_deref() != Some(&positive_integer(nonce)[..]) {
        return Err("the timestamp does not echo the request's nonce".into());
    }
    Ok(tst.gen_time)
}
