use super::*;
use base64::Engine;

#[test]
fn pem_round_trip_and_64_columns() {
    let der: Vec<u8> = (0..=255u8).collect();
    let text = pem::encode("PUBLIC KEY", &der);
    assert!(text.lines().all(|l| l.len() <= 64));
    assert!(text.ends_with("-----END PUBLIC KEY-----\n"));
    let blocks = pem::decode_all(text.as_bytes()).expect("decode");
    assert_eq!(
        blocks,
        vec![pem::Block {
            label: "PUBLIC KEY".into(),
            der
        }]
    );
    assert!(pem::decode_all(b"hello").is_err());
    assert!(pem::decode_all(b"-----BEGIN X-----\n!!!\n-----END X-----\n").is_err());
    assert!(pem::decode_all(b"-----BEGIN X-----\nAAAA\n").is_err());
}

#[test]
fn sign_and_verify_digest_and_message() {
    for curve in [Curve::P256, Curve::P384] {
        let k = FileSigner::generate(curve);
        let msg = b"hello sigstack";
        let sig = k.sign(msg).expect("sign");
        let pk = k.public_key();
        let alg = pk.default_hash();
        pk.verify_digest(alg, &alg.digest(msg), &sig)
            .expect("verifies");
        pk.verify_message(msg, &sig).expect("verifies as message");
        assert!(matches!(
            pk.verify_digest(alg, &alg.digest(b"other"), &sig),
            Err(CryptoError::BadSignature)
        ));
        let other = if alg == HashAlg::Sha256 {
            HashAlg::Sha384
        } else {
            HashAlg::Sha256
        };
        assert!(matches!(
            pk.verify_digest(other, &other.digest(msg), &sig),
            Err(CryptoError::Unsupported(_))
        ));
        assert!(matches!(
            pk.verify_digest(alg, &[0u8; 5], &sig),
            Err(CryptoError::MalformedSignature(_))
        ));
        assert!(matches!(
            pk.verify_digest(alg, &alg.digest(msg), b"junk"),
            Err(CryptoError::MalformedSignature(_))
        ));
        // PEM round trip of the private key keeps the same public key
        let again = FileSigner::from_pem(&k.to_pkcs8_pem().expect("pem")).expect("parse");
        assert_eq!(again.public_key(), pk);
        let parsed = KeyMaterial::from_pem(pk.to_pem().as_bytes()).expect("pubkey pem");
        assert_eq!(parsed.public_key(), pk);
        assert_eq!(parsed.canonical_pem(), pk.to_pem());
    }
}

#[test]
fn raw_r_s_signatures_are_accepted_like_der() {
    // DER -> r||s by hand, then verify both forms
    for curve in [Curve::P256, Curve::P384] {
        let k = FileSigner::generate(curve);
        let msg = b"fixed width";
        let der = k.sign(msg).expect("sign");
        let field = if curve == Curve::P256 { 32 } else { 48 };
        let mut fixed = der_to_fixed(&der, field);
        let pk = k.public_key();
        let alg = pk.default_hash();
        pk.verify_digest(alg, &alg.digest(msg), &fixed)
            .expect("r||s verifies");
        // an r||s signature whose first byte happens to be 0x30 is not mistaken for DER
        let mut n = 0;
        loop {
            let m = format!("probe {n}");
            let der = k.sign(m.as_bytes()).expect("sign");
            let raw = der_to_fixed(&der, field);
            if raw[0] == 0x30 {
                pk.verify_digest(alg, &alg.digest(m.as_bytes()), &raw)
                    .expect("0x30 r||s verifies");
                break;
            }
            n += 1;
            assert!(n < 20_000, "no r starting with 0x30 found");
        }
        fixed[5] ^= 1;
        assert!(matches!(
            pk.verify_digest(alg, &alg.digest(msg), &fixed),
            Err(CryptoError::BadSignature)
        ));
    }
}

#[test]
fn ed25519ph_over_a_received_digest() {
    use ed25519_dalek::pkcs8::EncodePublicKey;
    use sha2::Digest;
    let sk = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let msg = b"artifact";
    let mut h = sha2::Sha512::new();
    h.update(msg);
    let sig = sk.sign_prehashed(h.clone(), None).expect("sign");
    let der = sk.verifying_key().to_public_key_der().expect("der");
    let pk = PublicKey::from_spki_der(der.as_bytes()).expect("key");
    let digest = h.finalize();
    pk.verify_digest(HashAlg::Sha512, &digest, &sig.to_bytes())
        .expect("ed25519ph");
    let mut bad = digest.to_vec();
    bad[0] ^= 1;
    assert!(
        pk.verify_digest(HashAlg::Sha512, &bad, &sig.to_bytes())
            .is_err()
    );
    assert!(
        pk.verify_digest(HashAlg::Sha256, &[0u8; 32], &sig.to_bytes())
            .is_err()
    );
}

#[test]
fn rejects_unsupported_and_malformed_keys() {
    assert!(PublicKey::from_spki_der(b"\x30\x03\x02\x01\x01").is_err());
    // a P-521 key parses (Rekor allows P-521 with SHA-512)
    let p521 = "MIGbMBAGByqGSM49AgEGBSuBBAAjA4GGAAQBgc4HZz+/fBbC7lmEww0AO3NK9wVZ\
PDZ0VEnsaUFLEYpTzb90nITtJUcPUbvOsdZIZ1Q8fnbquAYgxXL5UgHMoywAib47\
6MkyyYgPk0BXZq3mq4zImTRNuaU9slj9TVJ3ScT3L1bXwVuPJDzpr5GOFpaj+WwM\
Al8G7CqwoJOsW7Kddns=";
    let der = base64::engine::general_purpose::STANDARD
        .decode(p521)
        .expect("b64");
    let k = PublicKey::from_spki_der(&der).expect("p521");
    assert_eq!(k.describe(), "ECDSA P-521");
    // a point off the curve is refused at parse time
    let mut off = der.clone();
    let n = off.len();
    off[n - 1] ^= 1;
    assert!(PublicKey::from_spki_der(&off).is_err());
}

#[test]
fn log_id_is_sha256_of_spki() {
    let k = FileSigner::generate(Curve::P256);
    assert_eq!(
        log_id(k.public_key().spki_der()),
        sha256(k.public_key().spki_der())
    );
}

fn der_to_fixed(der: &[u8], field: usize) -> Vec<u8> {
    let mut fixed = Vec::new();
    let mut i = 2 + usize::from(der[1] == 0x81);
    for _ in 0..2 {
        let len = der[i + 1] as usize;
        let v = &der[i + 2..i + 2 + len];
        let v = if v.len() > field {
            &v[v.len() - field..]
        } else {
            v
        };
        fixed.extend(std::iter::repeat_n(0u8, field - v.len()));
        fixed.extend_from_slice(v);
        i += 2 + len;
    }
    fixed
}

/// Certificates come from anyone: one over the size bound is refused before the DER
/// decoder (which sorts each SET OF in quadratic time) sees it.
#[test]
fn oversized_certificates_are_refused_before_decoding() {
    let mut der = vec![0x30, 0x83];
    let len = crate::cert::MAX_CERT_DER;
    der.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8]);
    der.resize(len + 5, 0);
    let e = crate::Certificate::from_der(&der).expect_err("too large");
    assert!(e.to_string().contains("at most"), "{e}");
}
