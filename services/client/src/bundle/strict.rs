//! Decoding Sigstore JSON as the protobuf-specs JSON mapping (protojson) does, and as
//! strictly: an object with a repeated key is refused (two verifiers could read two
//! different values), `int64` fields are a decimal string or a JSON integer, `bytes` fields
//! are base64 in the standard or URL-safe alphabet with or without padding, an absent
//! scalar is its zero value (protojson omits zeros: log index 0 has no `logIndex`), repeated
//! fields are bounded while they are read (an attacker cannot make us allocate for a
//! million log entries before we count them), and `null` is the field's default.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor,
};
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;

/// Parses `bytes` as JSON into `T` after checking that no object repeats a key.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    no_duplicate_keys(bytes)?;
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// The most members one object may have: far more than any Sigstore message or in-toto
/// statement carries, and a bound on what the repeated-key check keeps (nested objects
/// keep theirs at once, 128 levels deep at most).
pub const MAX_OBJECT_MEMBERS: usize = 4096;

/// Refuses JSON in which any object names a key twice (or has more than
/// `MAX_OBJECT_MEMBERS` members). Streams the document: memory is the keys of the objects
/// being read, not a copy of the document.
pub fn no_duplicate_keys(bytes: &[u8]) -> Result<(), String> {
    let mut d = serde_json::Deserializer::from_slice(bytes);
    Checked.deserialize(&mut d).map_err(|e| e.to_string())?;
    d.end().map_err(|e| e.to_string())
}

#[derive(Clone, Copy)]
struct Checked;

impl<'de> DeserializeSeed<'de> for Checked {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Checked)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // most objects have a handful of keys: a short list, borrowed from the input
        // where the key has no escapes; a set once an object grows
        let mut few: Vec<Cow<'de, str>> = Vec::new();
        let mut many: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(key) = map.next_key_seed(Key)? {
            map.next_value_seed(Checked)?;
            if few.len() + many.len() >= MAX_OBJECT_MEMBERS {
                return Err(de::Error::custom(format!(
                    "an object has more than {MAX_OBJECT_MEMBERS} members"
                )));
            }
            let repeated = if many.is_empty() && few.len() < 16 {
                let r = few.contains(&key);
                few.push(key);
                r
            } else {
                many.extend(few.drain(..));
                !many.insert(key)
            };
            if repeated {
                return Err(de::Error::custom("an object repeats a key"));
            }
        }
        Ok(())
    }
}

/// An object key, borrowed from the input when it can be.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
}

/// A repeated field of at most `max` elements, counted as they are read.
fn bounded<'de, D, T>(d: D, max: usize, what: &'static str) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    struct V<T> {
        max: usize,
        what: &'static str,
        t: PhantomData<T>,
    }
    impl<'de, T: serde::Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "a list of {}", self.what)
        }
        fn visit_unit<E>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut v = Vec::new();
            while let Some(x) = seq.next_element()? {
                if v.len() == self.max {
                    return Err(de::Error::custom(format!(
                        "more than {} {} (the most a bundle may carry)",
                        self.max, self.what
                    )));
                }
                v.push(x);
            }
            Ok(v)
        }
    }
    d.deserialize_any(V {
        max,
        what,
        t: PhantomData,
    })
}

/// The most transparency-log entries a bundle may carry (as sigstore-go).
pub const MAX_TLOG_ENTRIES: usize = 32;
/// The most RFC 3161 timestamps a bundle may carry (as sigstore-go).
pub const MAX_TIMESTAMPS: usize = 32;
/// The most certificates in a bundle's chain.
pub const MAX_CERTIFICATES: usize = 32;
/// The most hashes in an inclusion proof: a tree of 2^64 leaves needs 64.
pub const MAX_PROOF_HASHES: usize = 64;
/// The most signatures in a DSSE envelope read (one is verified).
pub const MAX_DSSE_SIGNATURES: usize = 32;

pub fn tlog_entries<'de, D: Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    bounded(d, MAX_TLOG_ENTRIES, "transparency-log entries")
}
pub fn timestamps<'de, D: Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    bounded(d, MAX_TIMESTAMPS, "RFC 3161 timestamps")
}
pub fn certificates<'de, D: Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    bounded(d, MAX_CERTIFICATES, "certificates")
}
pub fn proof_hashes<'de, D: Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    bounded(d, MAX_PROOF_HASHES, "inclusion-proof hashes")
}
pub fn dsse_signatures<'de, D: Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    bounded(d, MAX_DSSE_SIGNATURES, "DSSE signatures")
}

/// A protobuf `int64`: a decimal string ("123", "-4") or a JSON integer.
pub fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an int64 (a decimal string or an integer)")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom("an int64 out of range"))
        }
        fn visit_unit<E: de::Error>(self) -> Result<i64, E> {
            Ok(0)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<i64, E> {
            let digits = s.strip_prefix('-').unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(E::custom(format!("{s:?} is not an int64")));
            }
            s.parse()
                .map_err(|_| E::custom(format!("{s:?} is not an int64")))
        }
    }
    d.deserialize_any(V)
}

/// A protobuf enum of the hash algorithms a bundle names, by name or by number.
pub fn hash_algorithm<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a HashAlgorithm")
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
            Ok(s.to_string())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            Ok(match v {
                0 => "HASH_ALGORITHM_UNSPECIFIED",
                1 => "SHA2_256",
                2 => "SHA2_384",
                3 => "SHA2_512",
                4 => "SHA3_256",
                5 => "SHA3_384",
                _ => return Err(E::custom(format!("hash algorithm {v} is unknown"))),
            }
            .to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            u64::try_from(v)
                .map_err(|_| E::custom("a negative hash algorithm"))
                .and_then(|v| self.visit_u64(v))
        }
    }
    d.deserialize_any(V)
}

const PADDING_OPTIONAL: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, PADDING_OPTIONAL);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, PADDING_OPTIONAL);

/// A protobuf `bytes` value: base64, standard or URL-safe alphabet, padded or not.
pub fn bytes(v: &str) -> Option<Vec<u8>> {
    if v.contains(['-', '_']) {
        URL_SAFE.decode(v).ok()
    } else {
        STANDARD.decode(v).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_refused_at_any_depth() {
        assert!(no_duplicate_keys(br#"{"a":1,"b":[{"c":1}],"d":{"e":{"f":2}}}"#).is_ok());
        for bad in [
            &br#"{"a":1,"a":1}"#[..],
            br#"{"a":[{"c":1,"c":2}]}"#,
            br#"{"d":{"e":{"f":2,"f":2}}}"#,
        ] {
            let e = no_duplicate_keys(bad).expect_err("repeated key");
            assert!(e.contains("repeats a key"), "{e}");
        }
        assert!(no_duplicate_keys(b"{} x").is_err(), "trailing data");
        let wide: String = (0..=MAX_OBJECT_MEMBERS)
            .map(|i| format!("\"k{i}\":0"))
            .collect::<Vec<_>>()
            .join(",");
        let e = no_duplicate_keys(format!("{{{wide}}}").as_bytes()).expect_err("too wide");
        assert!(e.contains("members"), "{e}");
    }

    #[derive(serde::Deserialize, Debug)]
    struct T {
        #[serde(deserialize_with = "int64")]
        n: i64,
        #[serde(default, deserialize_with = "tlog_entries")]
        v: Vec<u8>,
        #[serde(default, deserialize_with = "hash_algorithm")]
        h: String,
    }

    #[test]
    fn protojson_scalars_and_bounded_lists() {
        let t: T = from_slice(br#"{"n":"42","v":[1,2],"h":1}"#).expect("ok");
        assert_eq!((t.n, t.v.len(), t.h.as_str()), (42, 2, "SHA2_256"));
        let t: T = from_slice(br#"{"n":-7,"v":null}"#).expect("ok");
        assert_eq!((t.n, t.v.len()), (-7, 0));
        for bad in [
            r#"{"n":"4 2"}"#,
            r#"{"n":"+1"}"#,
            r#"{"n":""}"#,
            r#"{"n":1.5}"#,
        ] {
            assert!(from_slice::<T>(bad.as_bytes()).is_err(), "{bad}");
        }
        let many = format!(r#"{{"n":1,"v":[{}]}}"#, vec!["0"; 33].join(","));
        let e = from_slice::<T>(many.as_bytes()).expect_err("too many");
        assert!(e.contains("more than 32"), "{e}");
    }

    #[test]
    fn bytes_in_both_alphabets_with_or_without_padding() {
        assert_eq!(bytes("+/8=").as_deref(), Some(&[0xfb, 0xff][..]));
        assert_eq!(bytes("-_8").as_deref(), Some(&[0xfb, 0xff][..]));
        assert_eq!(bytes("aGk").as_deref(), Some(&b"hi"[..]));
        assert!(bytes("aGk=\n").is_none());
        assert!(bytes("a Gk=").is_none());
    }
}
