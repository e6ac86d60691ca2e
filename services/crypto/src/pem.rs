//! PEM (RFC 7468) encoding with 64-column lines, as Go's `pem.EncodeToMemory` and
//! OpenSSL write it, and a lenient multi-block decoder.

use crate::CryptoError;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// One PEM block: its label (`CERTIFICATE`, `PUBLIC KEY`, ...) and DER contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub label: String,
    pub der: Vec<u8>,
}

pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Every PEM block in `text`, in order. Text between blocks is ignored, as is a header
/// section (`Key: value` lines) inside a block. At least one block is required.
pub fn decode_all(text: &[u8]) -> Result<Vec<Block>, CryptoError> {
    let text = std::str::from_utf8(text).map_err(|_| CryptoError::Pem("not UTF-8 text".into()))?;
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let label_end = after
            .find("-----")
            .ok_or_else(|| CryptoError::Pem("unterminated BEGIN line".into()))?;
        let label = &after[..label_end];
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let end = body_start
            .find(&end_marker)
            .ok_or_else(|| CryptoError::Pem(format!("missing END line for {label}")))?;
        let body: String = body_start[..end]
            .lines()
            .filter(|l| !l.contains(':'))
            .flat_map(|l| l.chars())
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = STANDARD
            .decode(body.as_bytes())
            .map_err(|e| CryptoError::Pem(format!("bad base64 in {label} block: {e}")))?;
        blocks.push(Block {
            label: label.to_string(),
            der,
        });
        rest = &body_start[end + end_marker.len()..];
    }
    if blocks.is_empty() {
        return Err(CryptoError::Pem("no PEM block found".into()));
    }
    Ok(blocks)
}
