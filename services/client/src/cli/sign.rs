//! Signing: `sign-blob`, `attest-blob` and the conformance protocol's `sign`, with the
//! flags and the service resolution they share with image signing.

use super::*;

/// How to sign: keys, services and identity (shared by sign-blob and attest-blob).
#[derive(Args, Clone)]
pub(super) struct SignFlags {
    /// Sign with this private key: cosign's encrypted format or an unencrypted PEM, a
    /// PKCS#11 token's key (`pkcs11:…`), a KMS key (`awskms://`, `gcpkms://`,
    /// `azurekms://`, `hashivault://`), or `env://NAME`.
    #[arg(long, env = "COSIGN_KEY")]
    pub(super) key: Option<PathBuf>,
    /// With --key: the key's certificate from your own CA (bring-your-own PKI; PEM). It
    /// goes into the bundle and the log entry in the key's place, and is checked against
    /// the key before anything is signed.
    #[arg(long, requires = "key")]
    pub(super) certificate: Option<PathBuf>,
    /// With --certificate: the certificates above it up to the root (PEM, issuer first),
    /// checked against it before anything is signed.
    #[arg(long, requires = "certificate")]
    pub(super) certificate_chain: Option<PathBuf>,
    /// The CA (Fulcio API). Default: from the signing config.
    #[arg(long, env = "COSIGN_FULCIO_URL")]
    pub(super) fulcio_url: Option<String>,
    /// The transparency log (Rekor v1 API). Default: from the signing config.
    #[arg(long, env = "COSIGN_REKOR_URL")]
    pub(super) rekor_url: Option<String>,
    /// The Rekor API to log with: 1, or 2 (a tiled log; needs a timestamp authority for
    /// keyless signing). Default: the highest the signing config lists (1 with
    /// --rekor-url).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub(super) rekor_version: Option<u8>,
    /// A signing config file (signing_config.v0.2.json) naming the services.
    #[arg(long, env = "COSIGN_SIGNING_CONFIG")]
    pub(super) signing_config: Option<PathBuf>,
    /// The OIDC identity token; otherwise one is obtained (ambient CI token, browser, device flow).
    #[arg(long, env = "SIGSTORE_ID_TOKEN", hide_env_values = true)]
    pub(super) identity_token: Option<String>,
    /// The OIDC issuer to sign in with. Default: from the signing config.
    #[arg(long, env = "COSIGN_OIDC_ISSUER")]
    pub(super) oidc_issuer: Option<String>,
    /// The OIDC client ID.
    #[arg(long, env = "COSIGN_OIDC_CLIENT_ID", default_value = "sigstore")]
    pub(super) oidc_client_id: String,
    /// A file holding the OIDC client secret (confidential clients).
    #[arg(long, env = "COSIGN_OIDC_CLIENT_SECRET_FILE")]
    pub(super) oidc_client_secret_file: Option<PathBuf>,
    /// The loopback redirect URL for the browser flow (default: an ephemeral port).
    #[arg(long, env = "COSIGN_OIDC_REDIRECT_URL")]
    pub(super) oidc_redirect_url: Option<String>,
    /// How to obtain a token when none is given.
    #[arg(long, env = "COSIGN_OIDC_PROVIDER", value_enum, default_value = "auto")]
    pub(super) oidc_provider: Provider,
    /// Upload to the transparency log (cosign's --tlog-upload).
    #[arg(long, env = "COSIGN_TLOG_UPLOAD", default_value = "true", action = clap::ArgAction::Set)]
    pub(super) tlog_upload: bool,
    /// Skip the confirmation that your identity goes into a public record.
    #[arg(long, short = 'y', env = "COSIGN_YES")]
    pub(super) yes: bool,
    /// An RFC 3161 timestamp authority's endpoint (e.g. https://tsa.example/api/v1/timestamp):
    /// the signature gets a signed timestamp, kept in the bundle. Default: the signing
    /// config's timestamp authority, if it names one.
    #[arg(long, env = "COSIGN_TIMESTAMP_SERVER_URL")]
    pub(super) timestamp_server_url: Option<String>,
}

#[derive(Args)]
pub(super) struct SignBlobArgs {
    #[command(flatten)]
    pub(super) sign: SignFlags,
    /// Write the bundle (v0.3) here.
    #[arg(long, env = "COSIGN_BUNDLE")]
    pub(super) bundle: Option<PathBuf>,
    /// Write the base64 signature here.
    #[arg(long, env = "COSIGN_OUTPUT_SIGNATURE")]
    pub(super) output_signature: Option<PathBuf>,
    /// Write the PEM certificate here (keyless).
    #[arg(long, env = "COSIGN_OUTPUT_CERTIFICATE")]
    pub(super) output_certificate: Option<PathBuf>,
    /// Write the RFC 3161 timestamp here too, as cosign v2 writes it
    /// (`{"SignedRFC3161Timestamp": base64}`), for verify-blob --rfc3161-timestamp.
    #[arg(long, env = "COSIGN_RFC3161_TIMESTAMP")]
    pub(super) rfc3161_timestamp: Option<PathBuf>,
    /// The artifact to sign.
    pub(super) artifact: PathBuf,
}

#[derive(Args)]
pub(super) struct AttestBlobArgs {
    #[command(flatten)]
    pub(super) sign: SignFlags,
    /// The predicate (JSON; any content for --type custom).
    #[arg(long)]
    pub(super) predicate: PathBuf,
    /// The predicate type: slsaprovenance, slsaprovenance02, slsaprovenance1, spdx,
    /// spdxjson, cyclonedx, vuln, openvex, custom, or a URI.
    #[arg(long = "type", default_value = "custom")]
    pub(super) predicate_type: String,
    /// Write the bundle (v0.3) here.
    #[arg(long, env = "COSIGN_BUNDLE")]
    pub(super) bundle: PathBuf,
    /// The artifact the statement is about.
    pub(super) artifact: PathBuf,
}

#[derive(Args)]
pub(super) struct ConformanceSignArgs {
    #[arg(long)]
    pub(super) identity_token: String,
    #[arg(long)]
    pub(super) bundle: PathBuf,
    #[arg(long)]
    pub(super) signing_config: Option<PathBuf>,
    #[arg(long)]
    pub(super) in_toto: bool,
    pub(super) artifact: PathBuf,
}

/// The services to sign with: flags first, then the signing config (file or TUF).
pub(super) struct Resolved {
    pub(super) fulcio: Option<String>,
    pub(super) rekor: Option<String>,
    pub(super) rekor_api: RekorApi,
    pub(super) oidc: Option<String>,
    pub(super) tsa: Option<String>,
    pub(super) public_instance: bool,
}

pub(super) async fn resolve_services(trust: &TrustArgs, s: &SignFlags) -> anyhow::Result<Resolved> {
    let config = match &s.signing_config {
        Some(p) => Some(sigstack::trust::read_signing_config(p)?),
        None => {
            let all_given = (s.key.is_some() && !s.tlog_upload)
                || s.rekor_url.is_some()
                    && (s.key.is_some()
                        || (s.fulcio_url.is_some()
                            && (s.identity_token.is_some() || s.oidc_issuer.is_some())));
            if all_given {
                None
            } else {
                let m = trust.load(&http()?).await?;
                m.signing_config
            }
        }
    };
    let from = config.as_ref().map(Services::from_config);
    let pick = |flag: &Option<String>, cfg: Option<String>| flag.clone().or(cfg);
    let fulcio = pick(&s.fulcio_url, from.as_ref().and_then(|f| f.ca.clone()));
    let (rekor, rekor_api) = match (&s.rekor_url, s.rekor_version, &from) {
        (Some(u), v, _) => (
            Some(u.clone()),
            if v == Some(2) {
                RekorApi::V2
            } else {
                RekorApi::V1
            },
        ),
        (None, Some(1), f) => (f.as_ref().and_then(|f| f.rekor.clone()), RekorApi::V1),
        (None, Some(_), f) => (
            Some(f.as_ref().and_then(|f| f.rekor_v2.clone()).context(
                "--rekor-version 2: the signing config lists no Rekor v2 log (pass --rekor-url)",
            )?),
            RekorApi::V2,
        ),
        (None, None, Some(f)) => match &f.rekor_v2 {
            Some(u) => (Some(u.clone()), RekorApi::V2),
            None => (f.rekor.clone(), RekorApi::V1),
        },
        (None, None, None) => (None, RekorApi::V1),
    };
    let oidc = pick(&s.oidc_issuer, from.as_ref().and_then(|f| f.oidc.clone()));
    let tsa = pick(
        &s.timestamp_server_url,
        from.as_ref().and_then(|f| f.tsa.clone()),
    );
    let public_instance = fulcio
        .as_deref()
        .is_some_and(|u| u.contains("sigstore.dev") || u.contains("sigstage.dev"));
    Ok(Resolved {
        fulcio,
        rekor,
        rekor_api,
        oidc,
        tsa,
        public_instance,
    })
}

/// Signs with the flags' key or identity; `what` decides what is signed.
pub(super) async fn sign_with(
    trust: &TrustArgs,
    s: &SignFlags,
    digest_or_statement: SignWhat<'_>,
) -> anyhow::Result<Signed> {
    sign_with_log(trust, s, digest_or_statement, true).await
}

/// [`sign_with`], where `v2_ok` false keeps to Rekor v1: cosign's legacy image
/// signatures carry a signed entry timestamp, and a signature kept without its bundle
/// is found by searching the log, which only v1 gives.
pub(super) async fn sign_with_log(
    trust: &TrustArgs,
    s: &SignFlags,
    digest_or_statement: SignWhat<'_>,
    v2_ok: bool,
) -> anyhow::Result<Signed> {
    let http = http()?;
    let key = match &s.key {
        Some(p) => Some(keys::load_signer(p)?),
        None => None,
    };
    let byo = match (&s.certificate, key.as_deref()) {
        (Some(c), Some(k)) => Some(byo_certificate(c, s.certificate_chain.as_deref(), k)?),
        _ => None,
    };
    let mut r = resolve_services(trust, s).await?;
    if !v2_ok && r.rekor_api == RekorApi::V2 {
        if s.rekor_url.is_some() || s.rekor_version == Some(2) {
            bail!(
                "this signature needs a Rekor v1 entry (a signature without a bundle is found by searching the log; a legacy image signature carries a signed entry timestamp): use --rekor-version 1, --bundle, or --new-bundle-format"
            );
        }
        let f = resolve_services(
            trust,
            &SignFlags {
                rekor_version: Some(1),
                ..s.clone()
            },
        )
        .await?;
        r.rekor = f.rekor;
        r.rekor_api = RekorApi::V1;
    }
    let rekor = if s.tlog_upload {
        Some(r.rekor.clone().context(
            "no transparency log: pass --rekor-url or a signing config that names one (or --tlog-upload=false)",
        )?)
    } else {
        eprintln!(
            "Warning: --tlog-upload=false: the signature is not logged, and verifiers that require a log entry will reject it"
        );
        None
    };
    let token = if key.is_none() {
        if r.fulcio.is_none() {
            bail!(
                "keyless signing needs a CA: pass --fulcio-url or a signing config that names one"
            );
        }
        sigstack::oidc::confirm_publication(s.yes, r.public_instance)?;
        Some(match &s.identity_token {
            Some(t) => t.clone(),
            None => {
                let issuer = r.oidc.clone().context(
                    "no identity token and no OIDC issuer: pass --identity-token or --oidc-issuer",
                )?;
                let secret = match &s.oidc_client_secret_file {
                    Some(p) => Some(
                        std::fs::read_to_string(p)
                            .with_context(|| format!("reading {}", p.display()))?
                            .trim()
                            .to_string(),
                    ),
                    None => None,
                };
                sigstack::oidc::identity_token(
                    &http,
                    &OidcOptions {
                        issuer: &issuer,
                        client_id: &s.oidc_client_id,
                        client_secret: secret.as_deref(),
                        redirect_url: s.oidc_redirect_url.as_deref(),
                        provider: s.oidc_provider,
                    },
                )
                .await
                .context("getting an identity token")?
            }
        })
    } else {
        None
    };
    if key.is_none() && rekor.is_some() && r.rekor_api == RekorApi::V2 && r.tsa.is_none() {
        bail!(
            "a Rekor v2 log gives no signing time: keyless signing with it needs a timestamp authority (pass --timestamp-server-url, a signing config that names one, or --rekor-version 1)"
        );
    }
    let opts = SignOptions {
        fulcio_url: r.fulcio.as_deref().unwrap_or(""),
        rekor_url: rekor.as_deref(),
        rekor_api: r.rekor_api,
        identity_token: token.as_deref(),
        key: key.as_deref(),
        key_certificate: byo.as_ref().map(|(c, chain)| (c, chain.as_slice())),
        tsa_url: r.tsa.as_deref(),
    };
    match digest_or_statement {
        SignWhat::Digest(d) => sigstack::sign::sign_blob(&http, d, &opts).await,
        SignWhat::Statement(st) => sigstack::sign::attest(&http, st, &opts).await,
    }
}

/// Reads one PEM file of certificates.
fn read_certificates(p: &Path) -> anyhow::Result<Vec<Certificate>> {
    let pem = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
    match sigstack_crypto::KeyMaterial::from_pem(&pem)
        .with_context(|| format!("{} holds no PEM certificate", p.display()))?
    {
        sigstack_crypto::KeyMaterial::Certificates(c) if !c.is_empty() => Ok(c),
        _ => bail!("{} holds no certificate", p.display()),
    }
}

/// Bring-your-own PKI: the key's certificate (and its chain), checked before anything is
/// signed or logged: it must be for this key, valid now, and issued by the chain.
fn byo_certificate(
    cert: &Path,
    chain: Option<&Path>,
    key: &dyn sigstack_crypto::Signer,
) -> anyhow::Result<(Certificate, Vec<Certificate>)> {
    let leaf = read_certificates(cert)?.remove(0);
    if leaf.public_key() != key.public_key() {
        bail!(
            "{} certifies another key than --key's: give the certificate issued for this key",
            cert.display()
        );
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (from, until) = leaf.validity();
    if now < from || now > until {
        bail!(
            "{} is not valid now (valid {} to {})",
            cert.display(),
            sigstack_types::time::rfc3339(from as i64),
            sigstack_types::time::rfc3339(until as i64)
        );
    }
    let chain = match chain {
        Some(p) => read_certificates(p)?,
        None => Vec::new(),
    };
    let mut all = vec![leaf.clone()];
    all.extend(chain.iter().cloned());
    sigstack_crypto::KeyMaterial::Certificates(all)
        .verify_chain()
        .map_err(|e| anyhow::anyhow!("{} is not issued by the chain given: {e}", cert.display()))?;
    Ok((leaf, chain))
}

pub(super) enum SignWhat<'a> {
    Digest(&'a [u8; 32]),
    Statement(&'a [u8]),
}

pub(super) fn write_file(p: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(p, bytes).with_context(|| format!("writing {}", p.display()))
}

/// Checks, before anything is signed or logged, that every output can be written: a log
/// entry is permanent, so a result that cannot be saved must stop the command first.
pub(super) fn check_outputs<'a>(
    paths: impl IntoIterator<Item = &'a Option<PathBuf>>,
) -> anyhow::Result<()> {
    for p in paths.into_iter().flatten() {
        let dir = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            bail!(
                "cannot write {}: the directory {} does not exist (nothing was signed)",
                p.display(),
                dir.display()
            );
        }
        if p.is_dir() {
            bail!(
                "cannot write {}: it is a directory (nothing was signed)",
                p.display()
            );
        }
    }
    Ok(())
}

pub(super) fn log_index_of(bundle: &Value) -> Option<i64> {
    bundle
        .pointer("/verificationMaterial/tlogEntries/0/logIndex")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}

pub(super) fn report_signed(
    signed: &Signed,
    bundle: Option<&Path>,
    signature_file: bool,
    out: Output,
) {
    let index = log_index_of(&signed.bundle);
    match out {
        Output::Json => print_json(&json!({
            "bundle": bundle,
            "logIndex": index,
            "signature": STANDARD.encode(&signed.signature),
            "certificate": signed.certificate.as_ref().map(|c| c.to_pem()),
        })),
        Output::Text => {
            if let Some(i) = index {
                eprintln!("tlog entry created with index: {i}");
            }
            if let Some(b) = bundle {
                eprintln!("Wrote bundle to file {}", b.display());
            }
            if bundle.is_none() && !signature_file {
                println!("{}", STANDARD.encode(&signed.signature));
            }
        }
    }
}

pub(super) async fn sign_blob(
    trust: &TrustArgs,
    a: &SignBlobArgs,
    out: Output,
) -> anyhow::Result<()> {
    if a.bundle.is_none() && a.output_signature.is_none() && out == Output::Text {
        eprintln!(
            "Note: no --bundle: only the signature is printed; pass --bundle FILE to keep the proof"
        );
    }
    check_outputs([
        &a.bundle,
        &a.output_signature,
        &a.output_certificate,
        &a.rfc3161_timestamp,
    ])?;
    if a.rfc3161_timestamp.is_some()
        && a.sign.timestamp_server_url.is_none()
        && resolve_services(trust, &a.sign).await?.tsa.is_none()
    {
        return Err(UsageError(
            "--rfc3161-timestamp needs a timestamp authority: pass --timestamp-server-url or a signing config that names one".into(),
        )
        .into());
    }
    let digest = hash_file(&a.artifact)?;
    // without a bundle the signature is found again by searching the log, which only a
    // Rekor v1 log can do
    let signed = sign_with_log(
        trust,
        &a.sign,
        SignWhat::Digest(&digest),
        a.bundle.is_some() || !a.sign.tlog_upload,
    )
    .await?;
    if let (Some(p), Some(ts)) = (&a.rfc3161_timestamp, &signed.timestamp) {
        // cosign v2's file: its RFC3161Timestamp struct as JSON
        write_file(
            p,
            &serde_json::to_vec(&json!({"SignedRFC3161Timestamp": STANDARD.encode(ts)}))?,
        )?;
    }
    if let Some(p) = &a.bundle {
        write_file(p, &serde_json::to_vec_pretty(&signed.bundle)?)?;
    }
    if let Some(p) = &a.output_signature {
        write_file(p, STANDARD.encode(&signed.signature).as_bytes())?;
    }
    if let Some(p) = &a.output_certificate {
        match &signed.certificate {
            Some(c) => write_file(p, c.to_pem().as_bytes())?,
            None => bail!("--output-certificate: signing with a key makes no certificate"),
        }
    }
    report_signed(
        &signed,
        a.bundle.as_deref(),
        a.output_signature.is_some(),
        out,
    );
    Ok(())
}

pub(super) use sigstack::layout::{CUSTOM_PREDICATE, predicate_type};

/// A predicate as cosign makes it: for the custom type, the file's text wrapped as
/// `{"Data": text, "Timestamp": now}` whatever it holds; for every other type, its JSON.
pub(super) fn predicate_of(ptype: &str, raw: &[u8], path: &Path) -> anyhow::Result<Value> {
    if ptype == CUSTOM_PREDICATE {
        return Ok(json!({
            "Data": String::from_utf8_lossy(raw),
            "Timestamp": sigstack_types::time::rfc3339(now()),
        }));
    }
    serde_json::from_slice(raw)
        .with_context(|| format!("the predicate {} is not JSON", path.display()))
}

pub(super) async fn attest_blob(
    trust: &TrustArgs,
    a: &AttestBlobArgs,
    out: Output,
) -> anyhow::Result<()> {
    let ptype = predicate_type(&a.predicate_type)?;
    let raw = std::fs::read(&a.predicate)
        .with_context(|| format!("reading {}", a.predicate.display()))?;
    let predicate = predicate_of(&ptype, &raw, &a.predicate)?;
    check_outputs([&Some(a.bundle.clone())])?;
    let digest = hash_file(&a.artifact)?;
    let name = a
        .artifact
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": hex::encode(digest)}}],
        "predicateType": ptype,
        "predicate": predicate,
    });
    let signed = sign_with(
        trust,
        &a.sign,
        SignWhat::Statement(&serde_json::to_vec(&statement)?),
    )
    .await?;
    write_file(&a.bundle, &serde_json::to_vec_pretty(&signed.bundle)?)?;
    report_signed(&signed, Some(&a.bundle), false, out);
    Ok(())
}

pub(super) async fn conformance_sign(
    trust: &TrustArgs,
    a: &ConformanceSignArgs,
) -> anyhow::Result<()> {
    let flags = SignFlags {
        key: None,
        certificate: None,
        certificate_chain: None,
        fulcio_url: None,
        rekor_url: None,
        rekor_version: None,
        signing_config: a.signing_config.clone(),
        identity_token: Some(a.identity_token.clone()),
        oidc_issuer: None,
        oidc_client_id: "sigstore".into(),
        oidc_client_secret_file: None,
        oidc_redirect_url: None,
        oidc_provider: Provider::Auto,
        tlog_upload: true,
        yes: true,
        timestamp_server_url: None,
    };
    check_outputs([&Some(a.bundle.clone())])?;
    let signed = if a.in_toto {
        let st = std::fs::read(&a.artifact)
            .with_context(|| format!("reading {}", a.artifact.display()))?;
        sign_with(trust, &flags, SignWhat::Statement(&st)).await?
    } else {
        let digest = hash_file(&a.artifact)?;
        sign_with(trust, &flags, SignWhat::Digest(&digest)).await?
    };
    write_file(&a.bundle, &serde_json::to_vec_pretty(&signed.bundle)?)
}
