//! Entry identifiers: the 64-hex UUID (the leaf hash) and the 80-hex entry ID that
//! prefixes it with the shard's tree ID as 16 zero-padded hex digits (Rekor sharding).

use sigstack_merkle::Hash;

pub fn uuid(leaf_hash: &Hash) -> String {
    hex(leaf_hash)
}

pub fn entry_id(tree_id: i64, leaf_hash: &Hash) -> String {
    let mut id = format!("{:016x}", tree_id as u64);
    id.push_str(&hex(leaf_hash));
    id
}

/// Lowercase hex, as `hex::encode` writes it but without a `char` at a time: a log writes
/// some twenty hashes in hex per append (the proof, the root, the entry ID).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0xf)]);
    }
    // ASCII digits only
    String::from_utf8(out).unwrap_or_default()
}

/// An entry named by a client.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EntryRef {
    /// 64 hex: a leaf hash, to be looked for in every shard.
    Uuid(Hash),
    /// 80 hex: a leaf hash in one shard.
    InTree { tree_id: i64, leaf_hash: Hash },
}

pub fn parse_entry_ref(s: &str) -> Result<EntryRef, String> {
    let bad = || format!("invalid entry ID {s:?}: expected 64 or 80 hex digits");
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let leaf = |h: &str| -> Result<Hash, String> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(h, &mut out).map_err(|_| bad())?;
        Ok(out)
    };
    match s.len() {
        64 => Ok(EntryRef::Uuid(leaf(s)?)),
        80 => {
            let tree = u64::from_str_radix(&s[..16], 16).map_err(|_| bad())? as i64;
            if tree == 0 {
                return Err(format!("invalid entry ID {s:?}: the tree ID part is zero"));
            }
            Ok(EntryRef::InTree {
                tree_id: tree,
                leaf_hash: leaf(&s[16..])?,
            })
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_hex_of_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(hex(&all), hex::encode(&all));
        assert_eq!(hex(&[]), "");
        assert_eq!(
            entry_id(0x1f, &[0xab; 32]),
            format!("{:016x}{}", 0x1f, "ab".repeat(32))
        );
    }

    #[test]
    fn round_trip() {
        let leaf = [0xabu8; 32];
        let id = entry_id(8050909264565447525, &leaf);
        assert!(id.starts_with("6fba935211532b65"));
        assert_eq!(
            parse_entry_ref(&id),
            Ok(EntryRef::InTree {
                tree_id: 8050909264565447525,
                leaf_hash: leaf
            })
        );
        assert_eq!(parse_entry_ref(&uuid(&leaf)), Ok(EntryRef::Uuid(leaf)));
        assert!(parse_entry_ref("xyz").is_err());
        assert!(parse_entry_ref(&format!("{}{}", "0".repeat(16), uuid(&leaf))).is_err());
        assert!(parse_entry_ref(&"a".repeat(70)).is_err());
    }
}
