//! The few DER structures a token's raw key material needs to become what the rest of the
//! stack reads: SubjectPublicKeyInfo from EC points and RSA moduli, and ECDSA-Sig-Value
//! from the r‖s a token returns.

fn length(n: usize) -> Vec<u8> {
    if n < 0x80 {
        return vec![n as u8];
    }
    let bytes: Vec<u8> = n
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    let mut out = vec![0x80 | bytes.len() as u8];
    out.extend(bytes);
    out
}

pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(length(content.len()));
    out.extend_from_slice(content);
    out
}

/// A non-negative INTEGER from big-endian bytes.
fn integer(bytes: &[u8]) -> Vec<u8> {
    let trimmed: &[u8] = match bytes.iter().position(|b| *b != 0) {
        Some(i) => &bytes[i..],
        None => &[0],
    };
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed[0] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    tlv(0x02, &content)
}

/// An OCTET STRING at the start of `raw`: its content and what follows it.
pub fn read_octet_string(raw: &[u8]) -> Option<(&[u8], &[u8])> {
    if raw.first() != Some(&0x04) {
        return None;
    }
    let first = *raw.get(1)? as usize;
    let (len, start) = if first < 0x80 {
        (first, 2)
    } else {
        let n = first & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let len = raw
            .get(2..2 + n)?
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, 2 + n)
    };
    let end = start.checked_add(len)?;
    Some((raw.get(start..end)?, &raw[end..]))
}

fn bit_string(content: &[u8]) -> Vec<u8> {
    let mut c = vec![0u8];
    c.extend_from_slice(content);
    tlv(0x03, &c)
}

const OID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_RSA: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];

/// SubjectPublicKeyInfo of an EC point on the curve whose DER OID is `curve`.
pub fn ec_spki(curve: &[u8], point: &[u8]) -> Vec<u8> {
    let alg = tlv(0x30, &[OID_EC_PUBLIC_KEY, curve].concat());
    tlv(0x30, &[alg, bit_string(point)].concat())
}

pub fn ed25519_spki(point: &[u8]) -> Vec<u8> {
    let alg = tlv(0x30, &[0x06, 0x03, 0x2b, 0x65, 0x70]);
    tlv(0x30, &[alg, bit_string(point)].concat())
}

pub fn rsa_spki(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
    let alg = tlv(0x30, &[OID_RSA, &[0x05, 0x00]].concat());
    let key = tlv(0x30, &[integer(modulus), integer(exponent)].concat());
    tlv(0x30, &[alg, bit_string(&key)].concat())
}

/// The DER ECDSA-Sig-Value of a raw r‖s signature (PKCS#11's `CKM_ECDSA` output).
pub fn ecdsa_signature(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return None;
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    Some(tlv(0x30, &[integer(r), integer(s)].concat()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_keep_their_sign_and_lose_leading_zeros() {
        assert_eq!(integer(&[0, 0, 0x7f]), vec![2, 1, 0x7f]);
        assert_eq!(integer(&[0x80]), vec![2, 2, 0, 0x80]);
        assert_eq!(integer(&[0, 0]), vec![2, 1, 0]);
    }

    #[test]
    fn octet_strings_read_back_with_long_lengths() {
        let long = vec![7u8; 300];
        let wrapped = tlv(0x04, &long);
        assert_eq!(&wrapped[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let (inner, rest) = read_octet_string(&wrapped).expect("ok");
        assert_eq!(inner, &long[..]);
        assert!(rest.is_empty());
        assert!(read_octet_string(&wrapped[..10]).is_none());
    }

    #[test]
    fn built_keys_and_signatures_are_what_the_verifier_reads() {
        // a real key: its point, rebuilt into an SPKI, is the same key
        let key = sigstack_crypto::FileSigner::generate(sigstack_crypto::Curve::P256);
        use sigstack_crypto::Signer;
        let spki = key.public_key().spki_der();
        let point = &spki[spki.len() - 65..];
        let curve = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        assert_eq!(ec_spki(curve, point), spki);
        // a DER signature taken apart into r‖s and put back verifies
        let sig = key.sign(b"message").expect("ok");
        let (r, s) = der_pair(&sig);
        let mut raw = vec![0u8; 64];
        raw[32 - r.len()..32].copy_from_slice(r);
        raw[64 - s.len()..].copy_from_slice(s);
        let rebuilt = ecdsa_signature(&raw).expect("ok");
        key.public_key()
            .verify_default(b"message", &rebuilt)
            .expect("ok");
        assert!(ecdsa_signature(&raw[..63]).is_none());
    }

    /// r and s of a DER signature, without their sign bytes.
    fn der_pair(sig: &[u8]) -> (&[u8], &[u8]) {
        let body = &sig[2..];
        let rl = body[1] as usize;
        let r = &body[2..2 + rl];
        let s = &body[2 + rl + 2..];
        (
            r.strip_prefix(&[0]).unwrap_or(r),
            s.strip_prefix(&[0]).unwrap_or(s),
        )
    }
}
