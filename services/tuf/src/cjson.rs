//! OLPC canonical JSON, the byte form TUF signatures cover (python-tuf and go-tuf encode
//! `signed` this way): object keys sorted, no insignificant whitespace, strings with only
//! `"` and `\` escaped, integers only.

use serde_json::Value;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("canonical JSON has no floating-point numbers: {0}")]
pub struct FloatError(pub String);

/// The canonical encoding of `v`.
pub fn encode(v: &Value) -> Result<Vec<u8>, FloatError> {
    let mut out = Vec::with_capacity(512);
    write(v, &mut out)?;
    Ok(out)
}

fn write_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for b in s.bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

fn write(v: &Value, out: &mut Vec<u8>) -> Result<(), FloatError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if n.is_f64() {
                return Err(FloatError(n.to_string()));
            }
            out.extend_from_slice(n.to_string().as_bytes());
        }
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(k, out);
                out.push(b':');
                write(&map[k.as_str()], out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_key_sorts_before_the_keys_it_prefixes() {
        // as python-tuf (`sorted`) and go-tuf order them; olpc-cjson puts "b!" first
        let v = json!({"b!": 1, "b": 2, "a": 3});
        assert_eq!(
            String::from_utf8(encode(&v).expect("encode")).expect("utf8"),
            "{\"a\":3,\"b\":2,\"b!\":1}"
        );
    }

    #[test]
    fn sorted_compact_minimal_escaping() {
        let v = json!({"b": [1, -2, true, null], "a": "q\"uo\\te\nnl é", "A": {}});
        assert_eq!(
            String::from_utf8(encode(&v).expect("encode")).expect("utf8"),
            "{\"A\":{},\"a\":\"q\\\"uo\\\\te\nnl é\",\"b\":[1,-2,true,null]}"
        );
        assert!(encode(&json!({"x": 1.5})).is_err());
    }
}
