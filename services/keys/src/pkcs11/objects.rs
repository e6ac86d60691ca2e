//! What a token holds: finding a key's objects by the URI's label and ID, and reading a
//! public key object as a SubjectPublicKeyInfo (EC points, Edwards points, RSA moduli).

use super::{Uri, explain};
use crate::der;
use anyhow::{Context, bail};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

fn key_template(uri: &Uri, class: ObjectClass) -> Vec<Attribute> {
    let mut t = vec![Attribute::Class(class)];
    if let Some(o) = &uri.object {
        t.push(Attribute::Label(o.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        t.push(Attribute::Id(id.clone()));
    }
    t
}

pub(super) fn find_one(
    session: &Session,
    uri: &Uri,
    class: ObjectClass,
) -> anyhow::Result<Option<ObjectHandle>> {
    let what = if class == ObjectClass::PRIVATE_KEY {
        "private key"
    } else {
        "public key"
    };
    let found = session
        .find_objects(&key_template(uri, class))
        .map_err(|e| explain(e, &format!("{}: finding the {what}", uri.describe())))?;
    match found.len() {
        0 => Ok(None),
        1 => Ok(Some(found[0])),
        n => bail!(
            "{}: {n} {what}s match; name one by id= as well as object=",
            uri.describe()
        ),
    }
}

pub(super) const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
pub(super) const OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
pub(super) const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const NAME_ED25519: &[u8] = b"\x13\x0cedwards25519";

/// A point as the token stores it: wrapped in a DER OCTET STRING (as the standard says)
/// or, by some modules, bare.
fn unwrap_point(raw: &[u8], len: usize) -> Option<Vec<u8>> {
    if raw.len() == len {
        return Some(raw.to_vec());
    }
    let (inner, rest) = der::read_octet_string(raw)?;
    (rest.is_empty() && inner.len() == len).then(|| inner.to_vec())
}

/// The SubjectPublicKeyInfo of the public key object.
pub(super) fn public_spki(
    session: &Session,
    handle: ObjectHandle,
    what: &str,
) -> anyhow::Result<Vec<u8>> {
    let attrs = session
        .get_attributes(handle, &[AttributeType::KeyType])
        .map_err(|e| explain(e, what))?;
    let kind = attrs.iter().find_map(|a| match a {
        Attribute::KeyType(k) => Some(*k),
        _ => None,
    });
    match kind {
        Some(k) if k == KeyType::EC || k == KeyType::EC_EDWARDS => {
            let attrs = session
                .get_attributes(handle, &[AttributeType::EcParams, AttributeType::EcPoint])
                .map_err(|e| explain(e, what))?;
            let mut params = None;
            let mut point = None;
            for a in attrs {
                match a {
                    Attribute::EcParams(p) => params = Some(p),
                    Attribute::EcPoint(p) => point = Some(p),
                    _ => {}
                }
            }
            let params = params.with_context(|| format!("{what}: no CKA_EC_PARAMS"))?;
            let point = point.with_context(|| format!("{what}: no CKA_EC_POINT"))?;
            let (curve, len) = match params.as_slice() {
                OID_P256 => (Some(OID_P256), 65),
                OID_P384 => (Some(OID_P384), 97),
                OID_P521 => (Some(OID_P521), 133),
                OID_ED25519 | NAME_ED25519 => (None, 32),
                other => bail!(
                    "{what}: the curve {} is not supported (P-256, P-384, P-521, Ed25519 are)",
                    hex::encode(other)
                ),
            };
            let point = unwrap_point(&point, len)
                .with_context(|| format!("{what}: CKA_EC_POINT is not a point of its curve"))?;
            Ok(match curve {
                Some(oid) => der::ec_spki(oid, &point),
                None => der::ed25519_spki(&point),
            })
        }
        Some(k) if k == KeyType::RSA => {
            let attrs = session
                .get_attributes(
                    handle,
                    &[AttributeType::Modulus, AttributeType::PublicExponent],
                )
                .map_err(|e| explain(e, what))?;
            let mut n = None;
            let mut e = None;
            for a in attrs {
                match a {
                    Attribute::Modulus(v) => n = Some(v),
                    Attribute::PublicExponent(v) => e = Some(v),
                    _ => {}
                }
            }
            Ok(der::rsa_spki(
                &n.with_context(|| format!("{what}: no CKA_MODULUS"))?,
                &e.with_context(|| format!("{what}: no CKA_PUBLIC_EXPONENT"))?,
            ))
        }
        other => {
            bail!("{what}: a key of type {other:?} cannot sign (EC, EC Edwards and RSA keys can)")
        }
    }
}
