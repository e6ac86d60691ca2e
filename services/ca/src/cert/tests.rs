use super::*;
use crate::principal::Extension as FulcioExtension;
use sigstack_crypto::{Curve, FileSigner};
use sigstack_log::ct;

const NOW: u64 = 1_790_000_000;

struct Chain {
    root_key: FileSigner,
    inter_key: FileSigner,
    root: Certificate,
    inter: Certificate,
}

fn chain(curve: Curve) -> Chain {
    let root_key = FileSigner::generate(curve);
    let inter_key = FileSigner::generate(curve);
    let root_name = ca_name("sigstack", "sigstack root").expect("name");
    let inter_name = ca_name("sigstack", "sigstack intermediate").expect("name");
    let root = ca_certificate(
        root_name.clone(),
        &root_key,
        None,
        serial([1; 20]).expect("serial"),
        NOW - 60,
        NOW + 86400 * 3650,
        None,
        false,
    )
    .expect("root");
    let inter = ca_certificate(
        inter_name,
        &inter_key,
        Some((&root_name, &root_key)),
        serial([2; 20]).expect("serial"),
        NOW - 60,
        NOW + 86400 * 3650,
        Some(0),
        true,
    )
    .expect("intermediate");
    Chain {
        root: Certificate::from_der(&root).expect("root parses"),
        inter: Certificate::from_der(&inter).expect("intermediate parses"),
        root_key,
        inter_key,
    }
}

fn principal() -> Principal {
    Principal {
        name: "dev@example.test".into(),
        san: San::Email("dev@example.test".into()),
        extensions: vec![FulcioExtension {
            oid: der::oid::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.57264.1.1"),
            value: b"https://issuer.example.test".to_vec(),
        }],
    }
}

#[test]
fn ca_chain_verifies_and_has_the_ca_profile() {
    let c = chain(Curve::P384);
    c.root
        .verify_issued_by(&c.root)
        .expect("root is self-signed");
    c.inter
        .verify_issued_by(&c.root)
        .expect("root signed the intermediate");
    assert!(c.inter.verify_issued_by(&c.inter).is_err());
    assert_eq!(c.inter.extended_key_usages(), vec!["1.3.6.1.5.5.7.3.3"]);
    assert!(c.root.extended_key_usages().is_empty());
    let bc = c.inter.extension("2.5.29.19").expect("basic constraints");
    assert_eq!(hex::encode(bc), "30060101ff020100", "CA:TRUE, pathlen 0");
    let _ = &c.root_key;
}

#[test]
fn precert_and_final_certificate_share_their_tbs() {
    let c = chain(Curve::P256);
    let leaf_key = FileSigner::generate(Curve::P256);
    let key_id = authority_key_id(&c.inter).expect("key id");
    let ca = Authority {
        signer: &c.inter_key,
        certificate: &c.inter,
        key_id: &key_id,
    };
    let template = leaf_template(
        &ca,
        leaf_key.public_key().spki_der(),
        &principal(),
        serial([0xff; 20]).expect("serial"),
        NOW,
    )
    .expect("template");
    let pre = Certificate::from_der(&precertificate(&template, &c.inter_key).expect("precert"))
        .expect("parses");
    pre.verify_issued_by(&c.inter)
        .expect("signed by the intermediate");
    let entry = ct::precert_entry(&pre, &c.inter).expect("precert entry");
    let ct::Entry::Precert { tbs, .. } = &entry else {
        panic!("precert entry")
    };
    assert_eq!(
        tbs,
        &tbs_der(&template).expect("der"),
        "the template is the precert's TBS without the poison"
    );

    let log_key = FileSigner::generate(Curve::P256);
    let log_id = sigstack_crypto::log_id(log_key.public_key().spki_der());
    let sct = ct::Sct::sign(&log_key, log_id, NOW * 1000, &entry).expect("sct");
    let list = ct::encode_sct_list(std::slice::from_ref(&sct)).expect("list");
    let leaf = Certificate::from_der(&with_scts(&template, &list, &c.inter_key).expect("final"))
        .expect("parses");
    leaf.verify_issued_by(&c.inter)
        .expect("final signed by the intermediate");
    // what a verifier recomputes from the final certificate is what the log signed
    let recomputed = ct::embedded_entry(&leaf, &c.inter).expect("entry");
    assert_eq!(recomputed, entry);
    let embedded = ct::embedded_scts(&leaf).expect("scts");
    assert_eq!(embedded.len(), 1);
    embedded[0]
        .verify(log_key.public_key(), &recomputed)
        .expect("embedded SCT verifies");

    // profile
    let tbs = &leaf.parsed().tbs_certificate;
    assert!(tbs.subject.0.is_empty(), "empty subject");
    assert_eq!(tbs.serial_number.as_bytes().len(), 20);
    assert_eq!(tbs.serial_number.as_bytes()[0], 0x7f, "positive, 20 bytes");
    let (nb, na) = leaf.validity();
    assert_eq!((nb, na), (NOW, NOW + 600));
    let ids: Vec<(String, bool)> = tbs
        .extensions
        .as_ref()
        .expect("extensions")
        .iter()
        .map(|e| (e.extn_id.to_string(), e.critical))
        .collect();
    assert_eq!(
        ids,
        vec![
            ("2.5.29.15".to_string(), true),
            ("2.5.29.37".to_string(), false),
            ("2.5.29.14".to_string(), false),
            ("2.5.29.35".to_string(), false),
            ("2.5.29.17".to_string(), true),
            ("1.3.6.1.4.1.57264.1.1".to_string(), false),
            ("1.3.6.1.4.1.11129.2.4.2".to_string(), false),
        ]
    );
    assert_eq!(leaf.emails(), vec!["dev@example.test"]);
    assert_eq!(
        leaf.extension("1.3.6.1.4.1.57264.1.1").expect("issuer"),
        b"https://issuer.example.test"
    );
    assert_eq!(
        hex::encode(leaf.extension("2.5.29.15").expect("ku")),
        "03020780"
    );
    // AKI of the leaf is the SKI of the intermediate
    let ski = c.inter.extension("2.5.29.14").expect("ski");
    let aki = leaf.extension("2.5.29.35").expect("aki");
    assert_eq!(&aki[4..], &ski[2..]);
}

#[test]
fn username_identities_become_an_othername_san() {
    let c = chain(Curve::P256);
    let leaf_key = FileSigner::generate(Curve::P256);
    let key_id = authority_key_id(&c.inter).expect("key id");
    let ca = Authority {
        signer: &c.inter_key,
        certificate: &c.inter,
        key_id: &key_id,
    };
    let mut p = principal();
    p.san = San::Username("alice!example.test".into());
    let t = leaf_template(
        &ca,
        leaf_key.public_key().spki_der(),
        &p,
        serial([3; 20]).expect("s"),
        NOW,
    )
    .expect("template");
    let der = with_scts(&t, &[0, 0], &c.inter_key).expect("cert");
    let cert = Certificate::from_der(&der).expect("parses");
    let san = cert.extension("2.5.29.17").expect("san");
    // SEQUENCE { [0] { OID 1.3.6.1.4.1.57264.1.7, [0] { UTF8String } } }
    assert!(hex::encode(san).contains("060a2b0601040183bf300107a0"));
    assert!(san.ends_with(b"alice!example.test"));
}

#[test]
fn non_ecdsa_ca_keys_are_refused() {
    struct Ed(sigstack_crypto::PublicKey);
    impl Signer for Ed {
        fn public_key(&self) -> &sigstack_crypto::PublicKey {
            &self.0
        }
        fn sign(&self, _: &[u8]) -> Result<Vec<u8>, CryptoError> {
            Ok(vec![0; 64])
        }
    }
    let ed = Ed(sigstack_crypto::PublicKey::from_spki_der(
        &hex::decode("302a300506032b6570032100d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
            .expect("hex"),
    )
    .expect("ed25519 key"));
    let name = ca_name("o", "cn").expect("name");
    assert!(
        ca_certificate(
            name,
            &ed,
            None,
            serial([1; 20]).expect("s"),
            NOW,
            NOW + 1,
            None,
            false
        )
        .is_err()
    );
}
