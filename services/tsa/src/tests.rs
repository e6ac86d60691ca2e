use crate::asn1::{MessageImprint, SigningCertificateV2, TimeStampReq, TimeStampResp, TstInfo};
use crate::{Authority, HashAlg, Request, RequestError};
use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::asn1::{Int, ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use sha2::Digest;
use sigstack_ca::cert;
use sigstack_crypto::{Certificate, Curve, FileSigner, Signer};
use spki::AlgorithmIdentifierOwned;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_secs()
}

/// A root, and a leaf for `leaf_key` made by `make` (the profile's cases).
fn chain_with(
    leaf_key: &FileSigner,
    make: impl Fn(&x509_cert::name::Name, &FileSigner) -> Vec<u8>,
) -> Vec<Certificate> {
    let root_key = FileSigner::generate(Curve::P384);
    let root_name = cert::ca_name("test", "tsa root").expect("name");
    let root = cert::ca_certificate(
        root_name.clone(),
        &root_key,
        None,
        cert::serial(rand::random()).expect("serial"),
        now() - 60,
        now() + 3600,
        None,
        false,
    )
    .expect("root");
    let _ = leaf_key;
    vec![
        Certificate::from_der(&make(&root_name, &root_key)).expect("leaf"),
        Certificate::from_der(&root).expect("root"),
    ]
}

fn good_chain(leaf_key: &FileSigner) -> Vec<Certificate> {
    chain_with(leaf_key, |root_name, root_key| {
        cert::tsa_certificate(
            cert::ca_name("test", "tsa").expect("name"),
            leaf_key.public_key(),
            (root_name, root_key),
            cert::serial(rand::random()).expect("serial"),
            now() - 60,
            now() + 3600,
        )
        .expect("leaf")
    })
}

fn authority() -> (Authority, Vec<Certificate>) {
    let key = FileSigner::generate(Curve::P256);
    let chain = good_chain(&key);
    let a = Authority::new(
        Arc::new(key),
        chain.clone(),
        crate::DEFAULT_POLICY,
        &["1.2.3.4".to_string()],
        Duration::from_secs(1),
    )
    .expect("authority");
    (a, chain)
}

fn der_request(hash: &[u8], nonce: Option<&[u8]>, cert_req: bool) -> Vec<u8> {
    TimeStampReq {
        version: 1,
        message_imprint: MessageImprint {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: HashAlg::Sha256.oid(),
                parameters: None,
            },
            hashed_message: OctetString::new(hash.to_vec()).expect("octets"),
        },
        req_policy: None,
        nonce: nonce.map(|n| Int::new(n).expect("int")),
        cert_req,
        extensions: None,
    }
    .to_der()
    .expect("der")
}

/// Decodes a response: the TSTInfo, and the SignedData.
fn open(resp: &[u8]) -> (TstInfo, SignedData) {
    let r = TimeStampResp::from_der(resp).expect("a TimeStampResp");
    assert_eq!(r.status.status, 0, "granted");
    let token: ContentInfo = r
        .time_stamp_token
        .expect("a token")
        .decode_as()
        .expect("ContentInfo");
    let sd: SignedData = token.content.decode_as().expect("SignedData");
    let econtent = sd.encap_content_info.econtent.clone().expect("content");
    let tst = TstInfo::from_der(econtent.value()).expect("TSTInfo");
    (tst, sd)
}

#[test]
fn a_der_request_gets_a_token_whose_signature_and_attributes_check_out() {
    let (a, chain) = authority();
    let hash = sha2::Sha256::digest(b"artifact signature").to_vec();
    let req = Request::from_der(&der_request(&hash, Some(&[0x01, 0x02, 0x03]), true)).expect("req");
    let before = now();
    let resp = a.respond(&req, SystemTime::now()).expect("response");
    let (tst, sd) = open(&resp);
    assert_eq!(tst.message_imprint.hashed_message.as_bytes(), &hash[..]);
    assert_eq!(tst.policy.to_string(), crate::DEFAULT_POLICY);
    assert_eq!(
        tst.nonce.as_ref().map(|n| n.as_bytes()),
        Some(&[1u8, 2, 3][..])
    );
    let t = tst.gen_time.to_unix_duration().as_secs();
    assert!(t + 1 >= before && t <= now() + 1, "genTime is now");
    assert_eq!(tst.accuracy.as_ref().and_then(|a| a.seconds), Some(1));
    // certReq: the leaf is in the token
    assert_eq!(sd.certificates.as_ref().map(|c| c.0.len()), Some(1));
    // the signed attributes: message digest of the TSTInfo, ESS naming the leaf
    let si = sd.signer_infos.0.get(0).expect("a signer");
    let attrs = si.signed_attrs.as_ref().expect("signed attributes");
    let econtent = sd.encap_content_info.econtent.as_ref().expect("content");
    let get = |oid: &str| {
        attrs
            .iter()
            .find(|x| x.oid.to_string() == oid)
            .and_then(|x| x.values.get(0))
            .cloned()
            .unwrap_or_else(|| panic!("attribute {oid}"))
    };
    let md: OctetString = get("1.2.840.113549.1.9.4").decode_as().expect("digest");
    assert_eq!(md.as_bytes(), &sha2::Sha256::digest(econtent.value())[..]);
    let ct: ObjectIdentifier = get("1.2.840.113549.1.9.3").decode_as().expect("type");
    assert_eq!(ct.to_string(), "1.2.840.113549.1.9.16.1.4");
    let ess: SigningCertificateV2 = get("1.2.840.113549.1.9.16.2.47").decode_as().expect("ess");
    assert_eq!(
        ess.certs[0].cert_hash.as_bytes(),
        &sha2::Sha256::digest(chain[0].der())[..]
    );
    chain[0]
        .public_key()
        .verify_default(&attrs.to_der().expect("der"), si.signature.as_bytes())
        .expect("the signature verifies with the leaf's key");
    // without certReq, no certificates; serials differ
    let req2 = Request::from_der(&der_request(&hash, None, false)).expect("req");
    let (tst2, sd2) = open(&a.respond(&req2, SystemTime::now()).expect("response"));
    assert!(sd2.certificates.is_none());
    assert!(tst2.nonce.is_none());
    assert_ne!(tst.serial_number, tst2.serial_number);
}

#[test]
fn json_requests_as_timestamp_authority_takes_them() {
    let hash = sha2::Sha384::digest(b"x");
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, hash);
    let body = format!(
        r#"{{"artifactHash":"{b64}","hashAlgorithm":"SHA384","nonce":1234567890123456789,"certificates":true,"tsaPolicyOID":"1.2.3.4"}}"#
    );
    let req = Request::from_json(body.as_bytes()).expect("json");
    assert_eq!(req.hash, HashAlg::Sha384);
    assert!(req.cert_req);
    // 1234567890123456789 = 0x112210F47DE98115
    assert_eq!(
        req.nonce.as_ref().map(|n| n.as_bytes().to_vec()),
        Some(vec![0x11, 0x22, 0x10, 0xF4, 0x7D, 0xE9, 0x81, 0x15])
    );
    let (a, _) = authority();
    let (tst, _) = open(&a.respond(&req, SystemTime::now()).expect("resp"));
    assert_eq!(tst.policy.to_string(), "1.2.3.4");
    // a nonce with the high bit set keeps a leading zero (a positive INTEGER)
    let body = format!(r#"{{"artifactHash":"{b64}","hashAlgorithm":"sha384","nonce":"255"}}"#);
    let req = Request::from_json(body.as_bytes()).expect("json");
    assert_eq!(
        req.nonce.map(|n| n.as_bytes().to_vec()),
        Some(vec![0, 0xff])
    );
}

#[test]
fn refusals_name_their_reason() {
    let short = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [0u8; 20]);
    let json = |alg: &str, extra: &str| {
        format!(r#"{{"artifactHash":"{short}","hashAlgorithm":"{alg}"{extra}}}"#)
    };
    assert_eq!(
        Request::from_json(json("sha1", "").as_bytes()),
        Err(RequestError::WeakHash)
    );
    assert_eq!(
        Request::from_json(json("sha256", "").as_bytes()),
        Err(RequestError::DigestLength {
            expected: 32,
            got: 20
        })
    );
    assert!(matches!(
        Request::from_json(json("md5", "").as_bytes()),
        Err(RequestError::Invalid(_))
    ));
    assert!(matches!(
        Request::from_json(json("sha256", r#","nonce":-1"#).as_bytes()),
        Err(RequestError::Invalid(_))
    ));
    let huge = "9".repeat(100);
    assert_eq!(
        Request::from_json(json("sha256", &format!(r#","nonce":"{huge}""#)).as_bytes()),
        Err(RequestError::NonceTooLarge)
    );
    assert_eq!(
        Request::from_der(&vec![0u8; crate::request::MAX_REQUEST_BYTES + 1]),
        Err(RequestError::TooLarge)
    );
    assert!(matches!(
        Request::from_der(b"not der"),
        Err(RequestError::Invalid(_))
    ));
    // a policy the TSA does not take
    let hash = sha2::Sha256::digest(b"x").to_vec();
    let mut req = Request::from_der(&der_request(&hash, None, false)).expect("req");
    req.policy = Some(ObjectIdentifier::new_unwrap("1.2.3.5"));
    let (a, _) = authority();
    assert!(matches!(
        a.respond(&req, SystemTime::now()),
        Err(crate::response::IssueError::Request(
            RequestError::UnacceptedPolicy(_)
        ))
    ));
}

#[test]
fn the_certificate_profile_is_enforced() {
    let key = FileSigner::generate(Curve::P256);
    assert!(crate::check_chain(&good_chain(&key), key.public_key()).is_ok());
    // a chain of one
    let chain = good_chain(&key);
    let err = crate::check_chain(&chain[..1], key.public_key()).expect_err("one certificate");
    assert!(err.contains("at least two"), "{err}");
    // another key
    let other = FileSigner::generate(Curve::P256);
    let err = crate::check_chain(&chain, other.public_key()).expect_err("other key");
    assert!(err.contains("not the key"), "{err}");
    // a CA certificate as the leaf (an intermediate made with the CA builder)
    let ca_leaf = chain_with(&key, |root_name, root_key| {
        cert::ca_certificate(
            cert::ca_name("test", "not a tsa").expect("name"),
            &key,
            Some((root_name, root_key)),
            cert::serial(rand::random()).expect("serial"),
            now() - 60,
            now() + 3600,
            Some(0),
            false,
        )
        .expect("cert")
    });
    let err = crate::check_chain(&ca_leaf, key.public_key()).expect_err("a CA leaf");
    assert!(err.contains("end-entity"), "{err}");
    // the chain reversed: the leaf is not issued by the root that follows
    let reversed: Vec<Certificate> = chain.iter().rev().cloned().collect();
    assert!(crate::check_chain(&reversed, key.public_key()).is_err());
}
