//! RFC 8785 JSON Canonicalization Scheme for the values the log produces: object keys
//! sorted by UTF-16 code units, no insignificant whitespace, minimal string escaping,
//! numbers as ECMAScript prints the IEEE 754 double they denote (§3.2.2.3): plain decimal
//! for the integers in every canonical body and SET; an integer beyond 2^53 is rounded as
//! JavaScript rounds it, as Rekor's canonicaliser does (the fuzzer found the difference
//! against `serde_jcs`).

use serde_json::Value;

pub fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write(value, &mut out);
    out
}

fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.is_finite() => {
                out.extend_from_slice(ryu_js::Buffer::new().format_finite(f).as_bytes())
            }
            _ => out.extend_from_slice(n.to_string().as_bytes()),
        },
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(v, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(k, out);
                out.push(b':');
                write(&map[k], out);
            }
            out.push(b'}');
        }
    }
}

pub(crate) fn write_str(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push(b'"');
    // runs of bytes that need no escape are copied whole: every byte of a multi-byte UTF-8
    // sequence is >= 0x80, so only ASCII bytes can need one
    let bytes = s.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            0x0c => b"\\f",
            b'\r' => b"\\r",
            0..0x20 => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[run..i]);
        run = i + 1;
        if esc.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(esc);
        }
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

/// An integer as [`write`] prints the number it denotes (beyond 2^53 rounded as
/// JavaScript rounds it).
pub(crate) fn write_i64(n: i64, out: &mut Vec<u8>) {
    out.extend_from_slice(ryu_js::Buffer::new().format_finite(n as f64).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_escape_as_ecmascript_does() {
        // serde_json escapes as JSON.stringify: `"`, `\\`, the five short forms, other
        // controls as lowercase \u00xx, nothing else
        let mut all: String = (0u8..0x80).map(char::from).collect();
        all.push_str("é€𝄞 plain run after");
        for s in [
            all.as_str(),
            "",
            "no escapes at all",
            "\"",
            "tail\n",
            "\u{7f}",
        ] {
            let mut out = Vec::new();
            write_str(s, &mut out);
            assert_eq!(
                String::from_utf8(out).expect("utf8"),
                serde_json::to_string(s).expect("json"),
                "{s:?}"
            );
        }
    }

    #[test]
    fn sorts_keys_and_escapes_minimally() {
        let v = json!({"b": 1, "a": [true, null, "x\"y\\z\n\u{1f}é/"], "\u{e9}": 0, "Z": {}});
        assert_eq!(
            String::from_utf8(to_vec(&v)).expect("utf8"),
            "{\"Z\":{},\"a\":[true,null,\"x\\\"y\\\\z\\n\\u001fé/\"],\"b\":1,\"é\":0}"
        );
    }

    #[test]
    fn numbers_as_ecmascript_prints_them() {
        // RFC 8785 appendix B, and the integer the fuzzer found
        for (input, want) in [
            ("0", "0"),
            ("-0", "0"),
            ("1e21", "1e+21"),
            ("1e20", "100000000000000000000"),
            ("0.000001", "0.000001"),
            ("1e-7", "1e-7"),
            ("333333333.33333329", "333333333.3333333"),
            ("4.50", "4.5"),
            ("2e-3", "0.002"),
            ("9007199254740992", "9007199254740992"),
            ("8888888888888888888", "8888888888888889000"),
            ("-1.5E+300", "-1.5e+300"),
        ] {
            let v: Value = serde_json::from_str(input).expect("number");
            assert_eq!(
                String::from_utf8(to_vec(&v)).expect("utf8"),
                want,
                "{input}"
            );
        }
    }

    #[test]
    fn utf16_key_order() {
        // U+1F600 (surrogates D83D..) sorts before U+FB01 in UTF-16, after it in UTF-8.
        let v = json!({"\u{fb01}": 1, "\u{1f600}": 2});
        let s = String::from_utf8(to_vec(&v)).expect("utf8");
        assert!(s.find('\u{1f600}') < s.find('\u{fb01}'), "{s}");
    }
}
