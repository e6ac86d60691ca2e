//! C2SP signed notes beyond Rekor v1's form: key IDs derived from the key name and
//! signature type (Ed25519 checkpoints of a tiled log, witness cosignatures), signing
//! and verifying one line, and the `vkey` text that names a key to a witness or a client.

use crate::checkpoint::Checkpoint;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use sigstack_crypto::{CryptoError, PublicKey, Signer, ed25519_raw};

/// Signature type of an Ed25519 note signature.
pub const SIG_ED25519: u8 = 0x01;
/// Signature type of a timestamped Ed25519 witness cosignature (C2SP tlog-cosignature).
pub const SIG_COSIGNATURE_V1: u8 = 0x04;

/// SHA-256(name || "\n" || type || key): its first four bytes are the key ID on the
/// signature line; the whole hash is the log ID a trusted root gives a tiled log.
pub fn key_hash(name: &str, sig_type: u8, key: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([sig_type]);
    h.update(key);
    h.finalize().into()
}

/// The log ID of an Ed25519-signed tiled log: [`key_hash`] of its origin and key. ECDSA
/// keys keep the Rekor v1 log ID (SHA-256 of the DER key).
pub fn log_id(origin: &str, key: &PublicKey) -> [u8; 32] {
    match ed25519_raw(key.spki_der()) {
        Some(raw) => key_hash(origin, SIG_ED25519, &raw),
        None => sigstack_crypto::log_id(key.spki_der()),
    }
}

/// A name is valid in a note when it is non-empty, has no white space and no `+`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(char::is_whitespace) && !name.contains('+')
}

/// The verifier key text `<name>+<hex key ID>+<base64(type || key)>` for an Ed25519 key
/// that signs notes.
pub fn vkey(name: &str, key: &PublicKey) -> Option<String> {
    vkey_of_type(name, key, SIG_ED25519)
}

/// The vkey of an Ed25519 key for signature type `sig_type` (0x04 for a witness's
/// cosignatures).
pub fn vkey_of_type(name: &str, key: &PublicKey, sig_type: u8) -> Option<String> {
    let raw = ed25519_raw(key.spki_der())?;
    let id = &key_hash(name, sig_type, &raw)[..4];
    let mut typed = vec![sig_type];
    typed.extend_from_slice(&raw);
    Some(format!(
        "{name}+{}+{}",
        hex::encode(id),
        STANDARD.encode(typed)
    ))
}

/// Parses a vkey into its name and Ed25519 public key, checking the key ID it states.
pub fn parse_vkey(text: &str) -> Result<(String, PublicKey), String> {
    let mut parts = text.trim().splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("{text:?} is not a <name>+<id>+<key> verifier key"));
    };
    let typed = STANDARD
        .decode(key)
        .map_err(|_| "the verifier key is not base64".to_string())?;
    let raw: [u8; 32] = match typed.split_first() {
        Some((&SIG_ED25519, k)) => k.try_into().map_err(|_| "an Ed25519 key is 32 bytes")?,
        _ => return Err("only Ed25519 verifier keys (type 0x01) are supported".into()),
    };
    if hex::encode(&key_hash(name, SIG_ED25519, &raw)[..4]) != id {
        return Err("the verifier key's ID does not match its name and key".into());
    }
    let mut spki = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    spki.extend_from_slice(&raw);
    let key = PublicKey::from_spki_der(&spki).map_err(|e| e.to_string())?;
    Ok((name.to_string(), key))
}

/// One signature line: `— <name> <base64(key ID || signature)>`.
pub fn line(name: &str, key_id: &[u8], sig: &[u8]) -> String {
    let mut blob = key_id[..4].to_vec();
    blob.extend_from_slice(sig);
    format!("\u{2014} {name} {}\n", STANDARD.encode(blob))
}

/// One signature line of a note: key name, key ID, signature.
pub type SignatureLine<'a> = (&'a str, [u8; 4], Vec<u8>);

/// Splits a note into its text (ending in `\n`) and its signature lines; malformed
/// notes are refused whole.
pub fn split(note: &str) -> Result<(&str, Vec<SignatureLine<'_>>), String> {
    if !note.ends_with('\n') {
        return Err("the note does not end with a newline".into());
    }
    let at = note
        .rfind("\n\n")
        .ok_or("the note has no signature block")?;
    let (text, sigs) = (&note[..at + 1], &note[at + 2..]);
    let mut out = Vec::new();
    for l in sigs.lines() {
        let (name, b64) = l
            .strip_prefix("\u{2014} ")
            .and_then(|r| r.split_once(' '))
            .ok_or_else(|| format!("malformed signature line {l:?}"))?;
        let blob = STANDARD
            .decode(b64)
            .map_err(|_| "a signature line is not base64".to_string())?;
        if blob.len() < 5 {
            return Err("a signature line is too short".into());
        }
        out.push((
            name,
            [blob[0], blob[1], blob[2], blob[3]],
            blob[4..].to_vec(),
        ));
    }
    if out.is_empty() {
        return Err("the note has no signatures".into());
    }
    Ok((text, out))
}

impl Checkpoint {
    /// The checkpoint as a note signed with an Ed25519 key under `name` (a tiled log's
    /// origin), its key ID derived as C2SP signed-note recommends.
    pub fn sign_ed25519(&self, name: &str, signer: &dyn Signer) -> Result<String, CryptoError> {
        let raw = ed25519_raw(signer.public_key().spki_der())
            .ok_or_else(|| CryptoError::Signing("not an Ed25519 key".into()))?;
        let text = self.body();
        let sig = signer.sign(text.as_bytes())?;
        Ok(format!(
            "{text}\n{}",
            line(name, &key_hash(name, SIG_ED25519, &raw)[..4], &sig)
        ))
    }
}

/// Verifies the Ed25519 signature of `key` named `name` on a checkpoint note; other
/// signatures (witnesses) are ignored. Returns the checkpoint.
pub fn verify_ed25519(note: &str, name: &str, key: &PublicKey) -> Result<Checkpoint, String> {
    let raw = ed25519_raw(key.spki_der()).ok_or("not an Ed25519 key")?;
    let id = key_hash(name, SIG_ED25519, &raw);
    let (text, sigs) = split(note)?;
    let (_, _, sig) = sigs
        .iter()
        .find(|(n, k, _)| *n == name && k[..] == id[..4])
        .ok_or_else(|| format!("no signature by {name}"))?;
    key.verify_message(text.as_bytes(), sig)
        .map_err(|e| format!("the signature by {name} does not verify: {e}"))?;
    Checkpoint::parse_body(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sigstack_crypto::Ed25519Signer;

    #[test]
    fn ed25519_checkpoints_sign_verify_and_name_their_key() {
        let k = Ed25519Signer::generate();
        let cp = Checkpoint {
            origin: "log.example".into(),
            size: 3,
            root: [7u8; 32],
        };
        let note = cp.sign_ed25519("log.example", &k).expect("signs");
        assert!(note.starts_with("log.example\n3\n"));
        assert_eq!(
            verify_ed25519(&note, "log.example", k.public_key()),
            Ok(cp.clone())
        );
        assert!(verify_ed25519(&note, "other.example", k.public_key()).is_err());
        let other = Ed25519Signer::generate();
        assert!(verify_ed25519(&note, "log.example", other.public_key()).is_err());
        assert!(
            verify_ed25519(
                &note.replacen("\n3\n", "\n4\n", 1),
                "log.example",
                k.public_key()
            )
            .is_err()
        );
        // the key ID on the line is the first four bytes of the log ID
        let (_, sigs) = split(&note).expect("splits");
        assert_eq!(sigs[0].1[..], log_id("log.example", k.public_key())[..4]);
        // vkey round trip
        let v = vkey("log.example", k.public_key()).expect("an Ed25519 key");
        let (name, key) = parse_vkey(&v).expect("parses");
        assert_eq!(name, "log.example");
        assert_eq!(key.spki_der(), k.public_key().spki_der());
        assert!(parse_vkey(&v.replacen("log.example", "log.exampl3", 1)).is_err());
    }

    #[test]
    fn key_hash_matches_the_go_note_package() {
        // golang.org/x/mod/sumdb/note's documented example key
        // "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
        let (name, key) =
            parse_vkey("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
                .expect("the documented key parses with its ID");
        assert_eq!(name, "PeterNeumann");
        assert_eq!(
            &log_id(&name, &key)[..4],
            &hex::decode("c74f20a3").expect("hex")[..]
        );
    }
}
