//! C2SP tlog-tiles addressing: which tile a path names, which tiles a tree of a given
//! size has, and the entry-bundle encoding. Pure functions; the service reads the hashes.

/// Hashes in a full tile (and entries in a full entry bundle).
pub const WIDTH: u64 = 256;

/// A tile or entry bundle as a path names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileRef {
    /// `None` for an entry bundle (`tile/entries/…`), else the tile level (0–63).
    pub level: Option<u8>,
    pub index: u64,
    /// `Some(w)` (1–255) for a partial tile `.p/<w>`, `None` for a full one.
    pub partial: Option<u8>,
}

impl TileRef {
    /// The number of hashes (or entries) the tile holds: 256, or its partial width.
    pub fn width(&self) -> u64 {
        self.partial.map_or(WIDTH, u64::from)
    }

    /// The level of RFC 6962 complete nodes this tile's hashes are (8 × tile level; 0 for
    /// entry bundles, whose entries hash to the level-0 tile).
    pub fn node_level(&self) -> u8 {
        // levels above 7 hold no tile of a tree under 2^64 leaves (`exists_in` is false)
        self.level.unwrap_or(0).min(7) * 8
    }

    /// Whether a tree of `size` leaves holds every hash of this tile. A tree that does
    /// holds it for good: the first `w` hashes of a level never change.
    pub fn exists_in(&self, size: u64) -> bool {
        let level = u32::from(self.level.unwrap_or(0));
        // hashes at this level in the tree: floor(size / 256^level)
        let available = if level * 8 >= 64 {
            0
        } else {
            size >> (level * 8)
        };
        self.index
            .checked_mul(WIDTH)
            .and_then(|start| start.checked_add(self.width()))
            .is_some_and(|end| end <= available)
    }

    /// The path under the log's prefix, as C2SP spells it.
    pub fn path(&self) -> String {
        let head = match self.level {
            Some(l) => format!("tile/{l}/"),
            None => "tile/entries/".into(),
        };
        let mut s = head + &encode_index(self.index);
        if let Some(w) = self.partial {
            s.push_str(&format!(".p/{w}"));
        }
        s
    }

    /// Parses the part of a path after `tile/`: `<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`.
    /// Refuses every spelling the specification does not allow (leading zeros, levels
    /// over 63, widths 0 or over 255, malformed index groups).
    pub fn parse(rest: &str) -> Option<Self> {
        let (level, rest) = rest.split_once('/')?;
        let level = if level == "entries" {
            None
        } else {
            Some(u8::try_from(decimal(level)?).ok().filter(|l| *l <= 63)?)
        };
        let (index_part, partial) = match rest.split_once(".p/") {
            Some((i, w)) => {
                let w = decimal(w)?;
                (i, Some(u8::try_from(w).ok().filter(|w| *w >= 1)?))
            }
            None => (rest, None),
        };
        Some(Self {
            level,
            index: decode_index(index_part)?,
            partial,
        })
    }
}

/// A decimal without leading zeros (a lone `0` is fine).
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

/// 1234067 → `x001/x234/067`.
pub fn encode_index(mut n: u64) -> String {
    let mut groups = vec![format!("{:03}", n % 1000)];
    n /= 1000;
    while n > 0 {
        groups.push(format!("x{:03}", n % 1000));
        n /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

fn decode_index(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split('/').collect();
    let (last, init) = parts.split_last()?;
    // the canonical spelling only: no leading `x000` group
    if init.first().is_some_and(|g| *g == "x000") {
        return None;
    }
    let mut n: u64 = 0;
    for (k, g) in parts.iter().enumerate() {
        let digits = if k < init.len() {
            g.strip_prefix('x')?
        } else {
            last
        };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n = n
            .checked_mul(1000)?
            .checked_add(digits.parse::<u64>().ok()?)?;
    }
    Some(n)
}

/// An entry bundle: each entry as a big-endian u16 length and its bytes. Entries over
/// 65,535 bytes cannot be written (the log refuses them at submission).
pub fn entry_bundle<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for e in entries {
        let len = u16::try_from(e.len()).ok()?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(e);
    }
    Some(out)
}

/// The entries of an entry bundle, in order; `None` if it is truncated.
pub fn bundle_entries(bundle: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < bundle.len() {
        let len = u16::from_be_bytes(bundle.get(at..at + 2)?.try_into().ok()?) as usize;
        out.push(bundle.get(at + 2..at + 2 + len)?);
        at += 2 + len;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_reads_back_and_a_cut_one_does_not() {
        let b = entry_bundle([&b"one"[..], b"", b"three"]).expect("bundle");
        assert_eq!(bundle_entries(&b), Some(vec![&b"one"[..], b"", b"three"]));
        assert_eq!(bundle_entries(&b[..b.len() - 1]), None);
        assert_eq!(bundle_entries(&[0]), None);
    }

    #[test]
    fn index_encoding_follows_the_spec() {
        assert_eq!(encode_index(0), "000");
        assert_eq!(encode_index(7), "007");
        assert_eq!(encode_index(1000), "x001/000");
        assert_eq!(encode_index(1234067), "x001/x234/067");
        for n in [0, 5, 999, 1000, 1234067, u64::MAX] {
            assert_eq!(decode_index(&encode_index(n)), Some(n));
        }
        for bad in [
            "1", "0001", "x001", "001/x234", "x000/001", "x1/002", "abc", "",
        ] {
            assert_eq!(decode_index(bad), None, "{bad}");
        }
    }

    #[test]
    fn paths_parse_and_print() {
        let t = TileRef::parse("1/x001/x234/067.p/17").expect("parses");
        assert_eq!((t.level, t.index, t.partial), (Some(1), 1234067, Some(17)));
        assert_eq!(t.path(), "tile/1/x001/x234/067.p/17");
        let e = TileRef::parse("entries/042").expect("parses");
        assert_eq!((e.level, e.index, e.partial), (None, 42, None));
        assert_eq!(e.path(), "tile/entries/042");
        for bad in [
            "64/000",
            "01/000",
            "0/000.p/0",
            "0/000.p/256",
            "0/000.p/07",
            "0/00",
            "x/000",
            "0",
        ] {
            assert_eq!(TileRef::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn which_tiles_a_tree_has() {
        // the spec's example: a tree of 70,000 leaves
        let size = 70_000;
        let t = |l, n, w| TileRef {
            level: Some(l),
            index: n,
            partial: w,
        };
        assert!(t(0, 272, None).exists_in(size));
        assert!(!t(0, 273, None).exists_in(size));
        assert!(t(0, 273, Some(112)).exists_in(size));
        assert!(!t(0, 273, Some(113)).exists_in(size));
        assert!(
            t(0, 273, Some(50)).exists_in(size),
            "narrower partial tiles stay valid"
        );
        assert!(t(1, 0, None).exists_in(size));
        assert!(t(1, 1, Some(17)).exists_in(size));
        assert!(!t(1, 1, Some(18)).exists_in(size));
        assert!(t(2, 0, Some(1)).exists_in(size));
        assert!(!t(3, 0, Some(1)).exists_in(size));
        assert!(!t(63, u64::MAX, Some(1)).exists_in(u64::MAX));
    }

    #[test]
    fn bundles_are_length_prefixed() {
        let b = entry_bundle([b"ab".as_slice(), b"".as_slice()]).expect("fits");
        assert_eq!(b, vec![0, 2, b'a', b'b', 0, 0]);
        assert!(entry_bundle([vec![0u8; 65_536].as_slice()]).is_none());
    }
}
