//! C2SP signed notes and checkpoints as Rekor v2 writes them: the log's signature line is
//! found by key name (the host of the log's base URL) and key ID (the first four bytes of
//! the log ID); other lines (witness cosignatures) are ignored.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sigstack_crypto::PublicKey;
use sigstack_log::checkpoint::Checkpoint;

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => host.split(':').next().unwrap_or(host),
    }
}

/// Verifies `note` as a checkpoint signed by the log at `base_url` with `log_id`/`key`.
pub fn verify_checkpoint(
    note: &str,
    base_url: &str,
    log_id: &[u8],
    key: &PublicKey,
) -> Result<Checkpoint, String> {
    if !note.ends_with('\n') {
        return Err("the note does not end with a newline".into());
    }
    let split = note
        .rfind("\n\n")
        .ok_or("the note has no signature block")?;
    let (body, sigs) = (&note[..split + 1], &note[split + 2..]);
    let name = host_of(base_url);
    let hint = log_id.get(..4).ok_or("the log ID is too short")?;
    // every signature line is well formed before any is trusted
    let lines = sigs
        .lines()
        .map(|line| {
            line.strip_prefix("\u{2014} ")
                .and_then(|l| l.split_once(' '))
                .ok_or_else(|| format!("malformed signature line {line:?}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (line_name, b64) in lines {
        if line_name != name {
            continue;
        }
        let blob = STANDARD
            .decode(b64)
            .map_err(|_| "a signature line is not base64")?;
        if blob.len() <= 4 || &blob[..4] != hint {
            continue;
        }
        key.verify_message(body.as_bytes(), &blob[4..])
            .map_err(|e| format!("the log's signature does not verify: {e}"))?;
        let cp = Checkpoint::parse_body(body)?;
        if cp.origin != name {
            return Err(format!(
                "the checkpoint's origin {:?} is not the log's {name:?}",
                cp.origin
            ));
        }
        return Ok(cp);
    }
    Err(format!("no signature by the log ({name})"))
}
