//! `sigstackd trust export`: asks the running services for their public parts, checks
//! them, and writes the trust files.

use super::*;

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Base URL of the CA (`sigstackd ca`).
    #[arg(long)]
    ca_url: String,
    /// Base URL of the transparency log (`sigstackd log`).
    #[arg(long)]
    tlog_url: String,
    /// Base URL of the tiled transparency log (`sigstackd log-v2`), if the stack runs
    /// one; needs --tlog-v2-key. The signing config lists it beside the v1 log.
    #[arg(long, requires = "tlog_v2_key")]
    tlog_v2_url: Option<String>,
    /// The v2 log's Ed25519 public key (PEM): checked against the checkpoint the log
    /// serves before it is published.
    #[arg(long, requires = "tlog_v2_url")]
    tlog_v2_key: Option<std::path::PathBuf>,
    /// Base URL of the CT log (`sigstackd ctlog`).
    #[arg(long)]
    ctlog_url: String,
    /// Base URL of the OIDC issuer clients should use (optional).
    #[arg(long)]
    oidc_url: Option<String>,
    /// A CA chain to publish beside the one the running CA serves (PEM, issuing
    /// certificate first): a new intermediate from `sigstackd ca new-intermediate`,
    /// published before the CA is pointed at it, valid from --valid-from (or now).
    #[arg(long)]
    add_ca_chain: Option<std::path::PathBuf>,
    /// Base URL of the timestamp authority (`sigstackd tsa`), if the stack runs one: its
    /// chain goes into the trusted root and its endpoint into the signing config.
    #[arg(long)]
    tsa_url: Option<String>,
    /// A timestamp authority chain to publish beside the one the running TSA serves
    /// (PEM, leaf first): a new certificate from `sigstackd tsa new-certificate`,
    /// published before the TSA is pointed at it. Needs --tsa-url.
    #[arg(long, requires = "tsa_url")]
    add_tsa_chain: Option<std::path::PathBuf>,
    /// A CT log key to publish beside the running CT log's (PEM public key, from
    /// `sigstackd ctlog new-key`): the CT log that takes over, published before the CA
    /// is pointed at it, valid from --valid-from (or now).
    #[arg(long)]
    add_ctlog_key: Option<std::path::PathBuf>,
    /// A transparency log key to publish beside the running log's (PEM public key): the
    /// key of the log's next shard, published before `sigstackd log new-shard
    /// --signing-key` starts it, valid from --valid-from (or now).
    #[arg(long)]
    add_tlog_key: Option<std::path::PathBuf>,
    /// A tiled log to publish beside the running one, as URL=KEY.pem (its Ed25519
    /// public key): the log that takes over (a new URL and key, like an upstream
    /// shard), published before the signing config names it, valid from --valid-from (or
    /// now). When it takes over, export with it as --tlog-v2-url/--tlog-v2-key and
    /// --previous: the old log stays in the trusted root, its window ended. Needs
    /// --tlog-v2-url.
    #[arg(long, requires = "tlog_v2_url", value_name = "URL=KEY.pem")]
    add_tlog_v2: Option<String>,
    /// Who runs the stack (the `operator` of every service; the CA's subject).
    #[arg(long, default_value = "sigstack")]
    operator: String,
    /// Start of the validity windows (RFC 3339); default: the CA root's notBefore.
    #[arg(long)]
    valid_from: Option<String>,
    /// Directory to write trusted_root.json, signing_config.v0.2.json, trust_config.json.
    #[arg(long, default_value = ".")]
    out: std::path::PathBuf,
    /// The trusted_root.json published so far: CAs and keys the services no longer use
    /// are kept, their validity ended now, so earlier signatures still verify.
    #[arg(long)]
    previous: Option<std::path::PathBuf>,
}

/// The TSA's chain from its `certchain` endpoint, checked against the TSA profile
/// (its leaf's key is the one that signs).
pub(crate) async fn fetch_tsa(http: &reqwest::Client, url: &str) -> anyhow::Result<TsaTrust> {
    let pem = get_bytes(http, &format!("{url}/api/v1/timestamp/certchain")).await?;
    let chain = match KeyMaterial::from_pem(&pem).context("the TSA's certificate chain")? {
        KeyMaterial::Certificates(c) => c,
        KeyMaterial::PublicKey(_) => anyhow::bail!("the TSA's chain holds no certificates"),
    };
    let leaf_key = chain
        .first()
        .context("empty TSA chain")?
        .public_key()
        .clone();
    sigstack_tsa::check_chain(&chain, &leaf_key)
        .map_err(|e| anyhow::anyhow!("the TSA at {url}: {e}"))?;
    Ok(TsaTrust {
        url: url.to_string(),
        chain,
    })
}

/// The v2 log at `url` with the key in `key_file`, once its served checkpoint verifies
/// with that key under the URL's host (the origin clients will expect).
pub(crate) async fn fetch_tlog_v2(
    http: &reqwest::Client,
    url: &str,
    key_file: &std::path::Path,
) -> anyhow::Result<TlogV2Trust> {
    let key = crate::tuf::ceremony::load_public(key_file)?;
    anyhow::ensure!(
        key.key_details() == "PKIX_ED25519",
        "{}: the v2 log signs checkpoints with an Ed25519 key",
        key_file.display()
    );
    let origin = crate::log::config::host_of(url)?;
    let note = get_text(http, &format!("{url}/checkpoint")).await?;
    sigstack_log::note::verify_ed25519(&note, &origin, &key).map_err(|e| {
        anyhow::anyhow!(
            "the checkpoint of {url} does not verify with {} as {origin:?}: {e}",
            key_file.display()
        )
    })?;
    Ok(TlogV2Trust {
        url: url.to_string(),
        key,
    })
}

/// The body of a successful GET.
pub(crate) async fn get_bytes(http: &reqwest::Client, url: &str) -> anyhow::Result<Vec<u8>> {
    let res = http
        .get(url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    anyhow::ensure!(
        res.status().is_success(),
        "GET {url}: HTTP {}",
        res.status()
    );
    Ok(res.bytes().await?.to_vec())
}

async fn get_text(http: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    String::from_utf8(get_bytes(http, url).await?).with_context(|| format!("GET {url}: not text"))
}

/// The public keys of the transparency log and the CT log, from their endpoints.
pub async fn fetch_log_keys(
    http: &reqwest::Client,
    tlog_url: &str,
    ctlog_url: &str,
) -> anyhow::Result<(PublicKey, PublicKey)> {
    let tlog_key = PublicKey::from_pem(
        get_text(http, &format!("{tlog_url}/api/v1/log/publicKey"))
            .await?
            .as_bytes(),
    )
    .context("the transparency log's key")?;
    let ctlog_key = PublicKey::from_pem(
        get_text(http, &format!("{ctlog_url}/ct/v1/public-key"))
            .await?
            .as_bytes(),
    )
    .context("the CT log's key")?;
    Ok((tlog_key, ctlog_key))
}

/// `sigstackd trust export`: asks the running services for their public parts, checks
/// them (the CA chain must verify and end in a self-signed root), writes the files.
pub async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()?;
    let trim = |u: &str| u.trim_end_matches('/').to_string();
    for (flag, u) in [
        ("--ca-url", Some(&args.ca_url)),
        ("--tlog-url", Some(&args.tlog_url)),
        ("--ctlog-url", Some(&args.ctlog_url)),
        ("--oidc-url", args.oidc_url.as_ref()),
        ("--tsa-url", args.tsa_url.as_ref()),
        ("--tlog-v2-url", args.tlog_v2_url.as_ref()),
    ] {
        if let Some(u) = u {
            crate::settings::check_flag_url(flag, u)?;
        }
    }
    let (ca_url, tlog_url, ctlog_url) = (
        trim(&args.ca_url),
        trim(&args.tlog_url),
        trim(&args.ctlog_url),
    );
    let bundle: sigstack_types::fulcio::TrustBundle =
        serde_json::from_str(&get_text(&http, &format!("{ca_url}/api/v2/trustBundle")).await?)
            .context("the CA's trust bundle")?;
    let pems = bundle
        .chains
        .first()
        .context("the CA has no chain")?
        .certificates
        .concat();
    let chain = match KeyMaterial::from_pem(pems.as_bytes()).context("the CA's chain")? {
        KeyMaterial::Certificates(c) => c,
        KeyMaterial::PublicKey(_) => anyhow::bail!("the CA's chain holds no certificates"),
    };
    KeyMaterial::Certificates(chain.clone())
        .verify_chain()
        .context("the CA's chain does not verify")?;
    let root = chain.last().context("empty CA chain")?;
    root.verify_issued_by(root)
        .context("the CA's chain does not end in a self-signed root")?;
    let (tlog_key, ctlog_key) = fetch_log_keys(&http, &tlog_url, &ctlog_url).await?;
    let new_from = args.valid_from.clone();
    let valid_from = args
        .valid_from
        .unwrap_or_else(|| crate::time::rfc3339(root.validity().0 as i64));
    let tsa = match &args.tsa_url {
        Some(u) => Some(fetch_tsa(&http, &trim(u)).await?),
        None => None,
    };
    let extra_ca_chains = match &args.add_ca_chain {
        Some(p) => {
            let pem = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            let c = match KeyMaterial::from_pem(&pem)
                .with_context(|| format!("parsing {}", p.display()))?
            {
                KeyMaterial::Certificates(c) => c,
                KeyMaterial::PublicKey(_) => anyhow::bail!("{} holds no certificates", p.display()),
            };
            KeyMaterial::Certificates(c.clone())
                .verify_chain()
                .with_context(|| format!("the chain in {} does not verify", p.display()))?;
            vec![c]
        }
        None => Vec::new(),
    };
    let extra_tsa_chains = match &args.add_tsa_chain {
        Some(p) => {
            let pem = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            let c = match KeyMaterial::from_pem(&pem)
                .with_context(|| format!("parsing {}", p.display()))?
            {
                KeyMaterial::Certificates(c) if !c.is_empty() => c,
                _ => anyhow::bail!("{} holds no certificates", p.display()),
            };
            let leaf = c[0].public_key().clone();
            sigstack_tsa::check_chain(&c, &leaf)
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            vec![c]
        }
        None => Vec::new(),
    };
    let p256 = |p: &Option<std::path::PathBuf>, what: &str| -> anyhow::Result<Vec<PublicKey>> {
        let Some(p) = p else { return Ok(Vec::new()) };
        let key = crate::tuf::ceremony::load_public(p)?;
        anyhow::ensure!(
            key.key_details() == "PKIX_ECDSA_P256_SHA_256",
            "{}: a {what} key is ECDSA P-256",
            p.display()
        );
        Ok(vec![key])
    };
    let extra_ctlog_keys = p256(&args.add_ctlog_key, "CT log")?;
    let extra_tlog_keys = p256(&args.add_tlog_key, "transparency log")?;
    let tlog_v2 = match (&args.tlog_v2_url, &args.tlog_v2_key) {
        (Some(u), Some(k)) => Some(fetch_tlog_v2(&http, &trim(u), k).await?),
        _ => None,
    };
    let extra_tlog_v2 = match &args.add_tlog_v2 {
        Some(v) => {
            let (url, key) = v
                .split_once('=')
                .context("--add-tlog-v2 takes URL=KEY.pem")?;
            crate::settings::check_flag_url("--add-tlog-v2", url)?;
            let key_file = std::path::Path::new(key);
            let key = crate::tuf::ceremony::load_public(key_file)?;
            anyhow::ensure!(
                key.key_details() == "PKIX_ED25519",
                "{}: a tiled log signs checkpoints with an Ed25519 key",
                key_file.display()
            );
            let url = trim(url);
            anyhow::ensure!(
                tlog_v2.as_ref().is_none_or(|t| t.url != url),
                "--add-tlog-v2 names the running log's URL: a successor has a URL of its own"
            );
            vec![TlogV2Trust { url, key }]
        }
        None => Vec::new(),
    };
    let trust = StackTrust {
        extra_tlog_v2,
        tlog_v2,
        tsa,
        extra_ca_chains,
        extra_tsa_chains,
        extra_ctlog_keys,
        extra_tlog_keys,
        operator: args.operator,
        valid_from,
        ca_url,
        ca_chain: chain,
        tlog_url,
        tlog_key,
        ctlog_url,
        ctlog_key,
        oidc_url: args.oidc_url.map(|u| trim(&u)),
    };
    let previous = match &args.previous {
        Some(p) => {
            Some(read_trusted_root(p)?.with_context(|| format!("{} does not exist", p.display()))?)
        }
        None => None,
    };
    trust.write(&args.out, previous.as_ref(), new_from.as_deref())?;
    println!(
        "wrote {}, {} and {} in {}",
        TRUSTED_ROOT_FILE,
        SIGNING_CONFIG_FILE,
        CLIENT_TRUST_CONFIG_FILE,
        args.out.display()
    );
    Ok(())
}
