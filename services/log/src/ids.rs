//! Entry identifiers: the 64-hex UUID (the leaf hash) and the 80-hex entry ID that
//! prefixes it with the shard's tree ID as 16 zero-padded hex digits (Rekor sharding).

use sigstack_merkle::Hash;

pub fn uuid(leaf_hash: &Hash) -> String {
    hex::encode(leaf_hash)
}

pub fn entry_id(tree_id: i64, leaf_hash: &Hash) -> String {
    format!("{:016x}{}", tree_id as u64, hex::encode(leaf_hash))
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
