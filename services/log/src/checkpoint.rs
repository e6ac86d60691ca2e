//! Signed checkpoints: a C2SP `tlog-checkpoint` body in a C2SP `signed-note`, with Rekor
//! v1's conventions: origin `<hostname> - <treeID>`, key name `<hostname>`, key hint =
//! the first four bytes of the log ID (SHA-256 of the DER public key), ECDSA signature
//! over the note text.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sigstack_crypto::{CryptoError, PublicKey, Signer, log_id};
use sigstack_merkle::Hash;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

/// Rekor v1's origin line for a tree.
pub fn rekor_origin(hostname: &str, tree_id: i64) -> String {
    format!("{hostname} - {tree_id}")
}

impl Checkpoint {
    /// The note text: origin, size, base64 root, each ending in a newline.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    /// The whole signed note, one signature line by `key_name`.
    pub fn sign(&self, key_name: &str, signer: &dyn Signer) -> Result<String, CryptoError> {
        let body = self.body();
        let sig = signer.sign(body.as_bytes())?;
        let mut blob = log_id(signer.public_key().spki_der())[..4].to_vec();
        blob.extend_from_slice(&sig);
        Ok(format!(
            "{body}\n\u{2014} {key_name} {}\n",
            STANDARD.encode(blob)
        ))
    }

    pub fn parse_body(body: &str) -> Result<Self, String> {
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or("checkpoint has no origin")?;
        let size = lines
            .next()
            .and_then(|l| l.parse::<u64>().ok())
            .ok_or("checkpoint size is not a decimal number")?;
        let root = lines
            .next()
            .and_then(|l| STANDARD.decode(l).ok())
            .and_then(|r| <Hash>::try_from(r.as_slice()).ok())
            .ok_or("checkpoint root is not a base64 SHA-256 hash")?;
        Ok(Self {
            origin: origin.to_string(),
            size,
            root,
        })
    }
}

/// Checks that `key` signed the note under whatever key name, and returns its checkpoint.
pub fn verify_any_name(note: &str, key: &PublicKey) -> Result<Checkpoint, String> {
    let split = note.rfind("\n\n").ok_or("note has no signature block")?;
    // the key's own line, wherever it stands among the signatures (witness cosignatures
    // may come first): the first line whose key hash is this key's names it
    let hint = &log_id(key.spki_der())[..4];
    let name = note[split + 2..]
        .lines()
        .filter_map(|l| l.strip_prefix("\u{2014} ")?.split_once(' '))
        .find(|(_, b64)| {
            STANDARD
                .decode(b64)
                .is_ok_and(|blob| blob.len() > 4 && blob[..4] == *hint)
        })
        .map(|(name, _)| name)
        .ok_or("note has no signature by this key")?;
    verify(note, name, key)
}

/// Checks a signed note made by [`Checkpoint::sign`] with `key` and returns its checkpoint.
pub fn verify(note: &str, key_name: &str, key: &PublicKey) -> Result<Checkpoint, String> {
    if !note.ends_with('\n') {
        return Err("note does not end with a newline".into());
    }
    let split = note.rfind("\n\n").ok_or("note has no signature block")?;
    let (body, sigs) = (&note[..split + 1], &note[split + 2..]);
    let hint = &log_id(key.spki_der())[..4];
    // every signature line is well formed before any is trusted
    let mut lines = Vec::new();
    for line in sigs.lines() {
        let Some((name, b64)) = line
            .strip_prefix("\u{2014} ")
            .and_then(|rest| rest.split_once(' '))
        else {
            return Err(format!("malformed signature line {line:?}"));
        };
        let Ok(blob) = STANDARD.decode(b64) else {
            return Err("signature line is not base64".into());
        };
        lines.push((name, blob));
    }
    for (name, blob) in lines {
        if name == key_name && blob.len() > 4 && blob[..4] == *hint {
            let alg = key.default_hash();
            key.verify_digest(alg, &alg.digest(body.as_bytes()), &blob[4..])
                .map_err(|e| format!("checkpoint signature: {e}"))?;
            return Checkpoint::parse_body(body);
        }
    }
    Err("no signature by the log's key".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sigstack_crypto::{Curve, FileSigner};

    #[test]
    fn signs_and_verifies_in_rekor_v1_form() {
        let k = FileSigner::generate(Curve::P256);
        let cp = Checkpoint {
            origin: rekor_origin("log.example", 42),
            size: 7,
            root: [9u8; 32],
        };
        let note = cp.sign("log.example", &k).expect("sign");
        let lines: Vec<&str> = note.split('\n').collect();
        assert_eq!(lines[0], "log.example - 42");
        assert_eq!(lines[1], "7");
        assert_eq!(lines[3], "");
        assert!(lines[4].starts_with("\u{2014} log.example "));
        assert_eq!(note.matches("\n\n").count(), 1);
        assert_eq!(verify(&note, "log.example", k.public_key()), Ok(cp.clone()));
        assert_eq!(verify_any_name(&note, k.public_key()), Ok(cp.clone()));
        let other = FileSigner::generate(Curve::P256);
        assert!(verify(&note, "log.example", other.public_key()).is_err());
        assert!(verify_any_name(&note, other.public_key()).is_err());
        let tampered = note.replacen("\n7\n", "\n8\n", 1);
        assert!(verify(&tampered, "log.example", k.public_key()).is_err());
        // a witness cosignature before the log's own line
        let (body, sigs) = note.split_at(note.rfind("\n\n").expect("block") + 2);
        let witness = FileSigner::generate(Curve::P256);
        let w = cp.sign("witness.example", &witness).expect("sign");
        let w_line = w.lines().last().expect("a line");
        let cosigned = format!("{body}{w_line}\n{sigs}");
        assert_eq!(verify_any_name(&cosigned, k.public_key()), Ok(cp.clone()));
        // anything after the signature block, or a malformed line past the log's own
        // signature, makes the note malformed rather than ignored
        for junk in ["x", "junk line\n", "\u{2014} other AAAA\nx"] {
            assert!(
                verify(&format!("{note}{junk}"), "log.example", k.public_key()).is_err(),
                "{junk:?}"
            );
        }
    }

    #[test]
    fn verifies_a_real_rekor_checkpoint() {
        let entry = crate::testdata::tlog_entry("managed-key-happy-path");
        let note = entry["inclusionProof"]["checkpoint"]["envelope"]
            .as_str()
            .expect("note");
        let cp = crate::testdata::public_good_tlog_keys()
            .iter()
            .find_map(|k| verify(note, "rekor.sigstore.dev", k).ok())
            .expect("one key verifies");
        assert_eq!(cp.size, 649584076);
        assert_eq!(cp.origin, "rekor.sigstore.dev - 1193050959916656506");
    }
}
