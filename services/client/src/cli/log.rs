//! rekor-cli's jobs under `sigstack log`: search, get, verify, info, each entry and tree
//! head verified against the trusted logs, with the last checkpoint of each log kept.

use super::*;

#[derive(Args)]
pub(super) struct LogServer {
    /// The transparency log (Rekor v1 API). Default: from the signing config.
    #[arg(
        long,
        env = "COSIGN_REKOR_URL",
        alias = "rekor-server",
        alias = "rekor_server"
    )]
    rekor_url: Option<String>,
    /// The log's API: 1 (Rekor v1), or 2 (a tiled log: C2SP tlog-tiles reads). Default:
    /// 2 when the trusted root names --rekor-url as a tiled log, else 1 (and the signing
    /// config's log of that version without --rekor-url).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
    rekor_version: Option<u8>,
}

#[derive(Subcommand)]
pub(super) enum LogCommand {
    /// Entry UUIDs by e-mail, artifact digest, artifact or public key.
    #[command(
        after_help = "Examples:\n  sigstack log search --email you@example.com\n  sigstack log search --artifact file\n  sigstack log search --sha sha256:<hex>"
    )]
    Search {
        #[command(flatten)]
        server: LogServer,
        #[arg(long)]
        email: Option<String>,
        /// A digest: `sha256:<hex>` or bare hex.
        #[arg(long)]
        sha: Option<String>,
        /// A file whose SHA-256 to search for.
        #[arg(long)]
        artifact: Option<PathBuf>,
        /// A PEM public key or certificate.
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// Match all criteria (default: any).
        #[arg(long, value_parser = ["and", "or"], default_value = "or")]
        operator: String,
    },
    /// An entry by UUID or log index, verified before it is shown.
    Get {
        #[command(flatten)]
        server: LogServer,
        #[arg(long, conflicts_with = "log_index")]
        uuid: Option<String>,
        #[arg(long)]
        log_index: Option<u64>,
    },
    /// Proves an entry's inclusion against the log's signed checkpoint.
    Verify {
        #[command(flatten)]
        server: LogServer,
        #[arg(long)]
        uuid: Option<String>,
        #[arg(long)]
        log_index: Option<u64>,
        /// With --signature and --public-key: the hashedrekord entry for this artifact.
        #[arg(long)]
        artifact: Option<PathBuf>,
        #[arg(long, requires = "artifact")]
        signature: Option<PathBuf>,
        /// PEM public key or certificate that made --signature.
        #[arg(long, requires = "artifact")]
        public_key: Option<PathBuf>,
    },
    /// The log's size and root, its checkpoint verified and proven consistent with the
    /// last one seen.
    Info {
        #[command(flatten)]
        server: LogServer,
    },
}

pub(super) async fn rekor_url(
    trust: &TrustArgs,
    s: &LogServer,
) -> anyhow::Result<(String, Material)> {
    let m = trust_material(trust).await?;
    let url = match &s.rekor_url {
        Some(u) => u.clone(),
        None => m
            .signing_config
            .as_ref()
            .and_then(|c| {
                let services = Services::from_config(c);
                if s.rekor_version == Some(2) {
                    services.rekor_v2
                } else {
                    services.rekor
                }
            })
            .context("no transparency log: pass --rekor-url")?,
    };
    Ok((url, m))
}

/// Whether the log at `url` is a tiled (Rekor v2) log.
fn is_tiled(s: &LogServer, url: &str, m: &Material) -> bool {
    match s.rekor_version {
        Some(v) => v == 2,
        None => !sigstack::tiles::trusted_keys(&m.trusted_root, url).is_empty(),
    }
}

/// How long `get` and `verify` wait for a tiled log's published checkpoint to cover the
/// index asked for (witnesses cosign new checkpoints about every half second).
const COVERING_CHECKPOINT_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// `get`, `verify` and `info` against a tiled log: the checkpoint verified, the entry
/// read from its bundle and proven from the tiles, the checkpoint proven consistent
/// with the one kept from before.
async fn tiled(
    http: &reqwest::Client,
    url: &str,
    m: &Material,
    index: Option<u64>,
    with_proof: bool,
    out: Output,
) -> anyhow::Result<()> {
    let log = sigstack::tiles::TiledLog::new(http, url);
    let fetch = || async {
        log.checkpoint(&m.trusted_root)
            .await
            .map_err(|err| VerificationFailed(format!("{err:#}")))
    };
    let (mut note, mut cp) = fetch().await?;
    // A log with witnesses publishes a checkpoint once they have cosigned it, a moment
    // after the entries it covers are answered: an entry just logged may be ahead of it.
    let wait_until = std::time::Instant::now() + COVERING_CHECKPOINT_WAIT;
    while index.is_some_and(|i| i >= cp.size) && std::time::Instant::now() < wait_until {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        (note, cp) = fetch().await?;
    }
    let consistency = sigstack::tiles::observe(&log, &note, &cp, &m.trusted_root)
        .await
        .map_err(|err| VerificationFailed(format!("{err:#}")))?;
    let Some(index) = index else {
        match out {
            Output::Json => print_json(&json!({
                "treeSize": cp.size, "rootHash": hex::encode(cp.root), "origin": cp.origin,
                "checkpoint": note, "verified": true,
                "consistency": describe_consistency(&consistency),
            })),
            Output::Text => {
                println!("Verification Successful!");
                println!("Tree Size: {}", cp.size);
                println!("Root Hash: {}", hex::encode(cp.root));
                println!("Origin: {}", cp.origin);
                println!("Consistency: {}", describe_consistency(&consistency));
            }
        }
        return Ok(());
    };
    let (body, proof) = log
        .entry(index, &cp)
        .await
        .map_err(|err| VerificationFailed(format!("{err:#}")))?;
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let hashes: Vec<String> = proof.iter().map(hex::encode).collect();
    match out {
        Output::Json => print_json(&json!({
            "logIndex": index, "body": parsed, "verified": true, "treeSize": cp.size,
            "rootHash": hex::encode(cp.root), "hashes": hashes,
            "consistency": describe_consistency(&consistency),
        })),
        Output::Text => {
            println!("Index: {index}");
            println!("Body: {}", serde_json::to_string_pretty(&parsed)?);
            if with_proof {
                println!("Current Root Hash: {}", hex::encode(cp.root));
                println!("Current Tree Size: {}", cp.size);
                println!("Checkpoint:\n{note}");
                println!("Inclusion Proof:");
                for h in &hashes {
                    println!("  {h}");
                }
            }
            eprintln!(
                "Inclusion verified against the signed checkpoint of size {} ({})",
                cp.size,
                describe_consistency(&consistency)
            );
        }
    }
    Ok(())
}

fn no_uuids() -> anyhow::Error {
    anyhow::anyhow!(
        "a tiled (Rekor v2) log has no entry UUIDs or search: give --log-index (a bundle's tlogEntries[].logIndex)"
    )
}

pub(super) fn describe_consistency(c: &Consistency) -> String {
    match c {
        Consistency::First => "first checkpoint seen of this log; kept".into(),
        Consistency::From(n) => format!("consistent with the checkpoint of size {n} seen before"),
    }
}

pub(super) async fn log(trust: &TrustArgs, c: LogCommand, out: Output) -> anyhow::Result<()> {
    let http = http()?;
    match c {
        LogCommand::Search {
            server,
            email,
            sha,
            artifact,
            public_key,
            operator,
        } => {
            if server.rekor_version == Some(2) {
                return Err(no_uuids());
            }
            // a search answers IDs only, nothing to verify: no trust needed with --rekor-url
            let url = match &server.rekor_url {
                Some(u) => u.clone(),
                None => rekor_url(trust, &server).await?.0,
            };
            let rekor = Rekor { http: &http, url };
            let mut q = json!({});
            if let Some(e) = email {
                q["email"] = json!(e);
            }
            let hash = match (sha, artifact) {
                (Some(s), _) => Some(if s.contains(':') {
                    s
                } else {
                    format!("sha256:{s}")
                }),
                (None, Some(p)) => Some(format!("sha256:{}", hex::encode(hash_file(&p)?))),
                (None, None) => None,
            };
            if let Some(h) = hash {
                q["hash"] = json!(h);
            }
            if let Some(p) = public_key {
                let text = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
                q["publicKey"] = json!({"format": "x509", "content": STANDARD.encode(text)});
            }
            if q.as_object().is_some_and(|o| o.is_empty()) {
                bail!("give at least one of --email, --sha, --artifact, --public-key");
            }
            q["operator"] = json!(operator);
            let uuids = rekor.search(&q).await?;
            match out {
                Output::Json => print_json(&json!(uuids)),
                Output::Text => {
                    if uuids.is_empty() {
                        eprintln!("No matching entries were found");
                    }
                    for u in uuids {
                        println!("{u}");
                    }
                }
            }
            Ok(())
        }
        LogCommand::Get {
            server,
            uuid,
            log_index,
        } => {
            let (url, m) = rekor_url(trust, &server).await?;
            if is_tiled(&server, &url, &m) {
                if uuid.is_some() || log_index.is_none() {
                    return Err(no_uuids());
                }
                return tiled(&http, &url, &m, log_index, false, out).await;
            }
            let rekor = Rekor { http: &http, url };
            let (id, e) = match (uuid, log_index) {
                (Some(u), _) => rekor.entry_by_uuid(&u).await?,
                (None, Some(i)) => rekor.entry_by_index(i).await?,
                (None, None) => bail!("give --uuid or --log-index"),
            };
            let cp = sigstack::rekor::verify_entry(&e, &m.trusted_root, now())
                .map_err(|err| VerificationFailed(format!("{err:#}")))?;
            let note = e
                .verification
                .as_ref()
                .and_then(|v| v.inclusion_proof.as_ref())
                .map(|p| p.checkpoint.clone())
                .unwrap_or_default();
            let consistency = sigstack::rekor::observe(&rekor, &note, &cp, &m.trusted_root).await?;
            let body: Value = serde_json::from_slice(&STANDARD.decode(&e.body)?)?;
            match out {
                Output::Json => print_json(&json!({
                    "uuid": id, "logIndex": e.log_index, "integratedTime": e.integrated_time,
                    "logID": e.log_id, "body": body, "verified": true,
                    "consistency": describe_consistency(&consistency),
                })),
                Output::Text => {
                    println!("LogID: {}", e.log_id);
                    println!("Index: {}", e.log_index);
                    println!(
                        "IntegratedTime: {}",
                        sigstack_types::time::rfc3339(e.integrated_time)
                    );
                    println!("UUID: {id}");
                    println!("Body: {}", serde_json::to_string_pretty(&body)?);
                    eprintln!(
                        "Inclusion verified against the signed checkpoint of size {} ({})",
                        cp.size,
                        describe_consistency(&consistency)
                    );
                }
            }
            Ok(())
        }
        LogCommand::Verify {
            server,
            uuid,
            log_index,
            artifact,
            signature,
            public_key,
        } => {
            let (url, m) = rekor_url(trust, &server).await?;
            if is_tiled(&server, &url, &m) {
                if uuid.is_some() || artifact.is_some() || log_index.is_none() {
                    return Err(no_uuids());
                }
                return tiled(&http, &url, &m, log_index, true, out).await;
            }
            let rekor = Rekor { http: &http, url };
            let (id, e) = match (uuid, log_index, artifact) {
                (Some(u), _, _) => rekor.entry_by_uuid(&u).await?,
                (None, Some(i), _) => rekor.entry_by_index(i).await?,
                (None, None, Some(p)) => {
                    let (Some(sig), Some(key)) = (signature, public_key) else {
                        bail!("--artifact needs --signature and --public-key");
                    };
                    let sig_b64 = std::fs::read_to_string(&sig)
                        .with_context(|| format!("reading {}", sig.display()))?
                        .trim()
                        .to_string();
                    let key_pem = std::fs::read(&key)
                        .with_context(|| format!("reading {}", key.display()))?;
                    let proposed =
                        sigstack::rekor::hashedrekord(&hash_file(&p)?, &sig_b64, &key_pem);
                    rekor
                        .entries_like(&proposed)
                        .await?
                        .into_iter()
                        .next()
                        .ok_or_else(|| {
                            VerificationFailed("no such entry in the transparency log".into())
                        })?
                }
                _ => bail!(
                    "give --uuid, --log-index, or --artifact with --signature and --public-key"
                ),
            };
            let cp = sigstack::rekor::verify_entry(&e, &m.trusted_root, now())
                .map_err(|err| VerificationFailed(format!("{err:#}")))?;
            let note = e
                .verification
                .as_ref()
                .and_then(|v| v.inclusion_proof.as_ref())
                .map(|p| p.checkpoint.clone())
                .unwrap_or_default();
            let consistency = sigstack::rekor::observe(&rekor, &note, &cp, &m.trusted_root).await?;
            let proof = e
                .verification
                .as_ref()
                .and_then(|v| v.inclusion_proof.as_ref());
            match out {
                Output::Json => print_json(&json!({
                    "uuid": id, "logIndex": e.log_index, "verified": true, "treeSize": cp.size,
                    "rootHash": hex::encode(cp.root), "hashes": proof.map(|p| p.hashes.clone()),
                    "consistency": describe_consistency(&consistency),
                })),
                Output::Text => {
                    println!("Current Root Hash: {}", hex::encode(cp.root));
                    println!("Entry Hash: {id}");
                    println!("Entry Index: {}", e.log_index);
                    println!("Current Tree Size: {}", cp.size);
                    println!("Checkpoint:\n{note}");
                    if let Some(p) = proof {
                        println!("Inclusion Proof:");
                        for h in &p.hashes {
                            println!("  {h}");
                        }
                    }
                    eprintln!(
                        "Entry inclusion verified OK ({})",
                        describe_consistency(&consistency)
                    );
                }
            }
            Ok(())
        }
        LogCommand::Info { server } => {
            let (url, m) = rekor_url(trust, &server).await?;
            if is_tiled(&server, &url, &m) {
                return tiled(&http, &url, &m, None, false, out).await;
            }
            let rekor = Rekor { http: &http, url };
            let info = rekor.info().await?;
            let cp = sigstack::rekor::verify_tree_head(&info.signed_tree_head, &m.trusted_root)
                .map_err(|err| VerificationFailed(format!("{err:#}")))?;
            if cp.size != info.tree_size as u64
                || hex::encode(cp.root) != info.root_hash.to_ascii_lowercase()
            {
                return Err(VerificationFailed(
                    "the log's stated size or root differs from its signed checkpoint".into(),
                )
                .into());
            }
            let consistency =
                sigstack::rekor::observe(&rekor, &info.signed_tree_head, &cp, &m.trusted_root)
                    .await
                    .map_err(|err| VerificationFailed(format!("{err:#}")))?;
            match out {
                Output::Json => print_json(&json!({
                    "treeSize": info.tree_size, "rootHash": info.root_hash, "treeID": info.tree_id,
                    "signedTreeHead": info.signed_tree_head, "verified": true,
                    "consistency": describe_consistency(&consistency),
                })),
                Output::Text => {
                    println!("Verification Successful!");
                    println!("Active Tree Size: {}", info.tree_size);
                    // rekor-cli's: every shard's entries, the frozen ones included
                    let frozen: i64 = info
                        .inactive_shards
                        .iter()
                        .flatten()
                        .map(|s| s.tree_size)
                        .sum();
                    println!("Total Tree Size: {}", info.tree_size + frozen);
                    println!("Root Hash: {}", info.root_hash);
                    println!("TreeID: {}", info.tree_id);
                    println!("Consistency: {}", describe_consistency(&consistency));
                }
            }
            let _ = std::io::stdout().flush();
            Ok(())
        }
    }
}
