use super::*;
use crate::testdata;
use sigstack_crypto::{Curve, FileSigner};

#[test]
fn verifies_a_real_embedded_sct_of_the_public_good_instance() {
    let leaf = testdata::leaf_certificate("happy-path-v0.3");
    let issuer = testdata::public_good_intermediates()
        .into_iter()
        .find(|i| leaf.verify_issued_by(i).is_ok())
        .expect("a public-good intermediate issued the leaf");
    let scts = embedded_scts(&leaf).expect("SCT list parses");
    assert_eq!(scts.len(), 1, "Fulcio embeds exactly one SCT");
    let sct = &scts[0];
    let entry = embedded_entry(&leaf, &issuer).expect("entry");
    let keys = testdata::public_good_ctlog_keys();
    assert!(
        keys.iter().any(|k| sct.verify(k, &entry).is_ok()),
        "our precert signature input reproduces what the public CT log signed"
    );
    // any change to the TBS breaks it
    let Entry::Precert {
        issuer_key_hash,
        mut tbs,
    } = entry
    else {
        panic!("precert entry")
    };
    let last = tbs.len() - 1;
    tbs[last] ^= 1;
    let tampered = Entry::Precert {
        issuer_key_hash,
        tbs,
    };
    assert!(keys.iter().all(|k| sct.verify(k, &tampered).is_err()));
    // and re-encoding the list gives back the certificate's bytes
    let ext = leaf.extension(SCT_LIST_OID).expect("extension");
    assert_eq!(
        der_octet_string_of(&encode_sct_list(&scts).expect("encode")),
        ext
    );
}

#[test]
fn our_scts_round_trip_and_verify() {
    let key = FileSigner::generate(Curve::P256);
    let id = sigstack_crypto::log_id(key.public_key().spki_der());
    let entry = Entry::Precert {
        issuer_key_hash: [7; 32],
        tbs: vec![0x30, 0x03, 0x02, 0x01, 0x01],
    };
    let sct = Sct::sign(&key, id, 1_700_000_000_000, &entry).expect("sign");
    let bytes = sct.encode().expect("encode");
    assert_eq!(
        bytes.len(),
        1 + 32 + 8 + 2 + 4 + sct.signature.signature.len()
    );
    let back = Sct::decode(&bytes).expect("decode");
    assert_eq!(back, sct);
    back.verify(key.public_key(), &entry).expect("verifies");
    let other = Entry::X509(vec![1, 2, 3]);
    assert!(back.verify(key.public_key(), &other).is_err());
    let wrong_key = FileSigner::generate(Curve::P256);
    assert!(back.verify(wrong_key.public_key(), &entry).is_err());
    assert!(Sct::decode(&bytes[..bytes.len() - 1]).is_err());
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(Sct::decode(&trailing).is_err());
}

#[test]
fn p384_keys_cannot_sign_scts() {
    let key = FileSigner::generate(Curve::P384);
    let entry = Entry::X509(vec![1]);
    assert!(Sct::sign(&key, [0; 32], 1, &entry).is_err());
}

#[test]
fn leaf_layout_follows_rfc6962() {
    let entry = Entry::X509(vec![0xaa, 0xbb]);
    let leaf = merkle_tree_leaf(0x0102030405060708, &entry, &[]).expect("leaf");
    assert_eq!(hex::encode(&leaf), "000001020304050607080000000002aabb0000");
    let pre = Entry::Precert {
        issuer_key_hash: [0x11; 32],
        tbs: vec![0xcc],
    };
    let leaf = merkle_tree_leaf(1, &pre, &[]).expect("leaf");
    assert_eq!(&leaf[10..12], &[0, 1]);
    assert_eq!(&leaf[12..44], &[0x11; 32]);
    assert_eq!(&leaf[44..], &[0, 0, 1, 0xcc, 0, 0]);
    // the signature input differs only in its second byte's meaning and lacks nothing
    let input = sct_signature_input(1, &pre, &[]).expect("input");
    assert_eq!(input[..2], [0, 0]);
    assert_eq!(input[2..], leaf[2..]);
}

#[test]
fn extra_data_nests_lengths() {
    let d = extra_data(Some(&[1, 2]), &[vec![3], vec![4, 5]]).expect("extra");
    assert_eq!(hex::encode(d), "0000020102000009000001030000020405");
}
