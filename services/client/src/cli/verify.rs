//! Verifying blobs and attestations: cosign's policy flags (identity and issuer, a key,
//! GitHub workflow extensions, the unsafe switches), bundles of every format cosign writes,
//! detached signatures looked up in the log, and the in-toto statement an attestation
//! verifies to.

use super::*;
use sigstack_types::trust::TrustedRoot;

#[derive(Args)]
pub(super) struct Identity {
    /// The expected identity (certificate SAN).
    #[arg(long, env = "COSIGN_CERTIFICATE_IDENTITY")]
    certificate_identity: Option<String>,
    /// A regular expression the identity must match; like cosign's, it matches anywhere
    /// in the value unless anchored (write '^…$').
    #[arg(
        long,
        env = "COSIGN_CERTIFICATE_IDENTITY_REGEXP",
        conflicts_with = "certificate_identity"
    )]
    certificate_identity_regexp: Option<String>,
    /// The expected OIDC issuer.
    #[arg(long, env = "COSIGN_CERTIFICATE_OIDC_ISSUER")]
    certificate_oidc_issuer: Option<String>,
    /// A regular expression the issuer must match (unanchored unless you write '^…$').
    #[arg(
        long,
        env = "COSIGN_CERTIFICATE_OIDC_ISSUER_REGEXP",
        conflicts_with = "certificate_oidc_issuer"
    )]
    certificate_oidc_issuer_regexp: Option<String>,
    /// A public key (PEM) for artifacts signed with a managed key.
    #[arg(long, env = "COSIGN_KEY")]
    key: Option<PathBuf>,
    /// The GitHub Actions trigger the certificate must name (e.g. push).
    #[arg(long, env = "COSIGN_CERTIFICATE_GITHUB_WORKFLOW_TRIGGER")]
    certificate_github_workflow_trigger: Option<String>,
    /// The commit SHA the certificate must name.
    #[arg(long, env = "COSIGN_CERTIFICATE_GITHUB_WORKFLOW_SHA")]
    certificate_github_workflow_sha: Option<String>,
    /// The workflow name the certificate must name.
    #[arg(long, env = "COSIGN_CERTIFICATE_GITHUB_WORKFLOW_NAME")]
    certificate_github_workflow_name: Option<String>,
    /// The repository (owner/name) the certificate must name.
    #[arg(long, env = "COSIGN_CERTIFICATE_GITHUB_WORKFLOW_REPOSITORY")]
    certificate_github_workflow_repository: Option<String>,
    /// The git ref the certificate must name (e.g. refs/heads/main).
    #[arg(long, env = "COSIGN_CERTIFICATE_GITHUB_WORKFLOW_REF")]
    certificate_github_workflow_ref: Option<String>,
    /// Bring-your-own PKI: the signing certificate's chain (PEM), from its issuing CA up
    /// to a root, trusted in place of the trusted root's CAs.
    #[arg(long, env = "COSIGN_CERTIFICATE_CHAIN")]
    pub(super) certificate_chain: Option<PathBuf>,
    /// Bring-your-own PKI: root CA certificates (PEM) trusted in place of the trusted
    /// root's CAs, with --ca-intermediates.
    #[arg(long, env = "COSIGN_CA_ROOTS", conflicts_with = "certificate_chain")]
    pub(super) ca_roots: Option<PathBuf>,
    /// Intermediate CA certificates (PEM) between a leaf and --ca-roots.
    #[arg(long, env = "COSIGN_CA_INTERMEDIATES", requires = "ca_roots")]
    pub(super) ca_intermediates: Option<PathBuf>,
    /// A timestamp authority's certificate chain (PEM, its certificate first, up to the
    /// root; what `/api/v1/timestamp/certchain` serves), trusted in place of the trusted
    /// root's timestamp authorities.
    #[arg(long, env = "COSIGN_TIMESTAMP_CERTIFICATE_CHAIN")]
    pub(super) timestamp_certificate_chain: Option<PathBuf>,
    /// Do not require or check a transparency-log entry (unsafe: nothing then shows the
    /// signature was published; a certificate is checked at a signed timestamp, else now).
    #[arg(long, env = "COSIGN_INSECURE_IGNORE_TLOG")]
    insecure_ignore_tlog: bool,
    /// Do not require an SCT in the certificate (unsafe: the certificate may never have been
    /// logged in a CT log).
    #[arg(long, env = "COSIGN_INSECURE_IGNORE_SCT")]
    insecure_ignore_sct: bool,
}

impl Identity {
    /// With bring-your-own PKI flags, the CAs they name replace the trusted root's (the
    /// logs, CT logs and timestamp authorities stay): each intermediate's path up to a
    /// given root, and each root alone.
    pub(super) fn apply_pki(&self, root: &mut TrustedRoot) -> anyhow::Result<()> {
        let read = |p: &Path| -> anyhow::Result<Vec<Certificate>> {
            let text = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            let certs = sigstack_crypto::pem::decode_all(&text)
                .with_context(|| format!("{} holds no PEM certificates", p.display()))?
                .into_iter()
                .filter(|b| b.label == "CERTIFICATE")
                .map(|b| Certificate::from_der(&b.der))
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("a certificate in {} does not parse", p.display()))?;
            if certs.is_empty() {
                bail!("{} holds no PEM certificates", p.display());
            }
            Ok(certs)
        };
        if let Some(p) = &self.timestamp_certificate_chain {
            let chain = read(p)?;
            if chain[0].is_ca() {
                return Err(UsageError(format!(
                    "{}: the chain must start with the timestamp authority's own certificate (as its certchain endpoint serves it), not a CA",
                    p.display()
                ))
                .into());
            }
            root.timestamp_authorities = vec![authority_of(&chain)];
        }
        let chains: Vec<Vec<Certificate>> = match (&self.certificate_chain, &self.ca_roots) {
            (Some(chain), _) => vec![read(chain)?],
            (None, Some(roots)) => {
                let roots = read(roots)?;
                let inter = match &self.ca_intermediates {
                    Some(p) => read(p)?,
                    None => Vec::new(),
                };
                let mut chains: Vec<Vec<Certificate>> =
                    roots.iter().map(|r| vec![r.clone()]).collect();
                for i in &inter {
                    // follow issuers through the intermediates (no loops) to a root
                    let mut path = vec![i.clone()];
                    while path.len() <= inter.len() {
                        let top = path.last().cloned().expect("a path");
                        if let Some(r) = roots.iter().find(|r| top.verify_issued_by(r).is_ok()) {
                            path.push(r.clone());
                            chains.push(path);
                            break;
                        }
                        match inter.iter().find(|c| {
                            top.verify_issued_by(c).is_ok()
                                && !path.iter().any(|p| p.der() == c.der())
                        }) {
                            Some(next) => path.push(next.clone()),
                            None => break,
                        }
                    }
                }
                chains
            }
            (None, None) => return Ok(()),
        };
        root.certificate_authorities = chains.iter().map(|c| authority_of(c)).collect();
        Ok(())
    }

    /// The checks beyond the policy (and those switched off), with a warning for each
    /// switched off, as cosign prints.
    pub(super) fn options(&self) -> sigstack::verify::Options {
        use sigstack::verify::Extension;
        let mut extensions = Vec::new();
        for (oid, name, v) in [
            (
                "1.3.6.1.4.1.57264.1.2",
                "GitHub workflow trigger",
                &self.certificate_github_workflow_trigger,
            ),
            (
                "1.3.6.1.4.1.57264.1.3",
                "GitHub workflow SHA",
                &self.certificate_github_workflow_sha,
            ),
            (
                "1.3.6.1.4.1.57264.1.4",
                "GitHub workflow name",
                &self.certificate_github_workflow_name,
            ),
            (
                "1.3.6.1.4.1.57264.1.5",
                "GitHub workflow repository",
                &self.certificate_github_workflow_repository,
            ),
            (
                "1.3.6.1.4.1.57264.1.6",
                "GitHub workflow ref",
                &self.certificate_github_workflow_ref,
            ),
        ] {
            if let Some(want) = v {
                extensions.push(Extension {
                    oid,
                    name,
                    want: want.clone(),
                });
            }
        }
        if self.insecure_ignore_tlog {
            eprintln!(
                "Warning: --insecure-ignore-tlog: the transparency log is not checked; nothing shows this signature was published"
            );
        }
        if self.insecure_ignore_sct {
            eprintln!(
                "Warning: --insecure-ignore-sct: the certificate need not have been logged in a CT log"
            );
        }
        sigstack::verify::Options {
            extensions,
            ignore_tlog: self.insecure_ignore_tlog,
            ignore_sct: self.insecure_ignore_sct,
        }
    }
}

/// A trusted-root authority entry for a chain given on the command line (valid at any
/// time: the certificates' own validity still applies).
fn authority_of(chain: &[Certificate]) -> sigstack_types::trust::CertificateAuthority {
    sigstack_types::trust::CertificateAuthority {
        subject: Default::default(),
        uri: String::new(),
        cert_chain: sigstack_types::trust::CertChain {
            certificates: chain
                .iter()
                .map(|c| sigstack_types::trust::RawBytes {
                    raw_bytes: STANDARD.encode(c.der()),
                })
                .collect(),
        },
        valid_for: sigstack_types::trust::TimeRange {
            start: "1970-01-01T00:00:00Z".into(),
            end: None,
        },
    }
}

/// Adds an RFC 3161 timestamp from a file (cosign v2's `{"SignedRFC3161Timestamp": …}`
/// JSON, or the DER response itself) to a bundle's verification material.
fn with_timestamp_file(bundle: &[u8], path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let der = match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) => STANDARD
            .decode(
                v["SignedRFC3161Timestamp"]
                    .as_str()
                    .with_context(|| format!("{}: no SignedRFC3161Timestamp", path.display()))?,
            )
            .with_context(|| format!("{}: the timestamp is not base64", path.display()))?,
        Err(_) => bytes,
    };
    let mut b: Value = serde_json::from_slice(bundle).context("the bundle is not JSON")?;
    let list = b
        .pointer_mut("/verificationMaterial")
        .and_then(Value::as_object_mut)
        .context("the bundle has no verification material")?
        .entry("timestampVerificationData")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .context("the bundle's timestampVerificationData is not an object")?
        .entry("rfc3161Timestamps")
        .or_insert_with(|| json!([]));
    list.as_array_mut()
        .context("the bundle's rfc3161Timestamps is not a list")?
        .push(json!({"signedTimestamp": STANDARD.encode(der)}));
    Ok(serde_json::to_vec(&b)?)
}

#[derive(Args)]
pub(super) struct VerifyBlobArgs {
    /// The Sigstore bundle (v0.1–v0.3).
    #[arg(long, env = "COSIGN_BUNDLE")]
    bundle: Option<PathBuf>,
    /// A detached signature: a file holding it in base64, or (as cosign takes it) the
    /// base64 itself; verified with --certificate or --key, its log entry looked up in
    /// the transparency log.
    #[arg(long, conflicts_with = "bundle")]
    signature: Option<PathBuf>,
    /// The signing certificate (PEM): with --signature, the certificate to verify it with;
    /// with --bundle, it must be the certificate the bundle carries.
    #[arg(long, env = "COSIGN_CERTIFICATE")]
    certificate: Option<PathBuf>,
    /// The transparency log to look the entry up in (with --signature).
    #[arg(long, env = "COSIGN_REKOR_URL")]
    rekor_url: Option<String>,
    /// An RFC 3161 timestamp over the signature, as `sign-blob --rfc3161-timestamp` (or
    /// cosign v2) wrote it, verified with the bundle's own.
    #[arg(long, env = "COSIGN_RFC3161_TIMESTAMP")]
    rfc3161_timestamp: Option<PathBuf>,
    #[command(flatten)]
    identity: Identity,
    /// The artifact, or `sha256:<hex>` of it.
    artifact: String,
}

pub(super) fn policy_of(id: &Identity) -> anyhow::Result<Policy> {
    let matcher = |exact: &Option<String>, re: &Option<String>, what: &str| {
        anyhow::Ok(match (exact, re) {
            (Some(e), _) => Some(Matcher::Exact(e.clone())),
            (None, Some(r)) => {
                Some(Matcher::Regex(regex::Regex::new(r).with_context(|| {
                    format!("{what} is not a valid regular expression")
                })?))
            }
            (None, None) => None,
        })
    };
    let identity = matcher(
        &id.certificate_identity,
        &id.certificate_identity_regexp,
        "--certificate-identity-regexp",
    )?;
    let issuer = matcher(
        &id.certificate_oidc_issuer,
        &id.certificate_oidc_issuer_regexp,
        "--certificate-oidc-issuer-regexp",
    )?;
    Ok(match (&id.key, identity, issuer) {
        (Some(k), None, None) => Policy::Key(load_public_key(k)?),
        (None, Some(identity), Some(issuer)) => Policy::Identity { identity, issuer },
        (Some(_), _, _) => {
            return Err(UsageError(
                "--key and the certificate identity flags exclude each other".into(),
            )
            .into());
        }
        _ => {
            return Err(UsageError(
                "keyless verification needs --certificate-identity (or -regexp) and --certificate-oidc-issuer (or -regexp); for a key, give --key".into(),
            )
            .into());
        }
    })
}

/// A public key from a PEM `PUBLIC KEY` file. As cosign's key loader, a certificate is
/// refused: a certificate's key is trusted only through its chain (use --certificate).
pub(super) fn load_public_key(p: &Path) -> anyhow::Result<PublicKey> {
    let uri = p.to_string_lossy();
    if uri.starts_with("pkcs11:") || sigstack::keyref::is_kms(&uri) {
        return sigstack::keyref::public_key(&uri);
    }
    let text = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
    let blocks = sigstack_crypto::pem::decode_all(&text)
        .with_context(|| format!("{} holds no PEM public key", p.display()))?;
    if blocks.iter().any(|b| b.label == "CERTIFICATE") {
        return Err(UsageError(format!(
            "{} holds a certificate, not a public key: --key takes a public key (give a certificate with --certificate, verified against the trusted CAs)",
            p.display()
        ))
        .into());
    }
    PublicKey::from_pem(&text).with_context(|| format!("{} holds no PEM public key", p.display()))
}

pub(super) fn report_verified(v: &Verified, extra: Value, out: Output) {
    match out {
        Output::Json => {
            let mut j = json!({"verified": true, "signingTime": sigstack_types::time::rfc3339(v.signing_time), "logIndex": v.log_index});
            if let (Some(o), Some(e)) = (j.as_object_mut(), extra.as_object()) {
                o.extend(e.clone());
            }
            print_json(&j);
        }
        Output::Text => eprintln!("Verified OK"),
    }
}

pub(super) async fn verify_blob(
    trust: &TrustArgs,
    a: &VerifyBlobArgs,
    out: Output,
) -> anyhow::Result<()> {
    let policy = policy_of(&a.identity)?;
    let artifact = artifact_of(&a.artifact)?;
    let mut m = trust_material(trust).await?;
    a.identity.apply_pki(&mut m.trusted_root)?;
    let bundle = match (&a.bundle, &a.signature) {
        (Some(b), _) => {
            let bundle = read_bundle(b)?;
            if let Some(c) = &a.certificate {
                same_certificate(c, &bundle)?;
            }
            bundle
        }
        (None, Some(sig)) => {
            if trust.offline {
                bail!(
                    "--offline needs a bundle (--bundle): a detached signature's log entry must be looked up online"
                );
            }
            detached_bundle(&m, a, sig, &artifact, &policy).await?
        }
        (None, None) => bail!("give --bundle, or --signature with --certificate or --key"),
    };
    let bundle = match &a.rfc3161_timestamp {
        Some(p) => with_timestamp_file(&bundle, p)?,
        None => bundle,
    };
    let v = verify_with(
        &bundle,
        &m.trusted_root,
        &artifact,
        &policy,
        now(),
        &a.identity.options(),
    )
    .map_err(|e| VerificationFailed(e.to_string()))?;
    report_verified(&v, json!({}), out);
    Ok(())
}

/// A bundle file: a Sigstore bundle, or cosign v2's default blob bundle, converted (its
/// JSON read as strictly as a Sigstore bundle's).
pub(super) fn read_bundle(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes =
        sigstack::bundle::read_file(path).with_context(|| format!("reading {}", path.display()))?;
    if !sigstack::layout::is_cosign_v2_blob_bundle(&bytes) {
        return Ok(bytes);
    }
    let b = sigstack::layout::cosign_v2_blob_bundle(&bytes)
        .map_err(|e| VerificationFailed(format!("cosign's blob bundle: {e:#}")))?;
    Ok(serde_json::to_vec(&b)?)
}

/// `--certificate` beside a bundle: it must be the bundle's own certificate, never a
/// silently ignored second opinion.
pub(super) fn same_certificate(path: &Path, bundle: &[u8]) -> anyhow::Result<()> {
    let given = read_certificate(path)?;
    match sigstack::verify::bundle_certificate(bundle) {
        Ok(Some(der)) if der == given.der() => Ok(()),
        Ok(Some(_)) => Err(VerificationFailed(format!(
            "the certificate in {} is not the one the bundle carries",
            path.display()
        ))
        .into()),
        Ok(None) => Err(UsageError(
            "--certificate was given but the bundle is signed with a key (use --key)".into(),
        )
        .into()),
        Err(e) => Err(VerificationFailed(e.to_string()).into()),
    }
}

/// The first certificate of a PEM file.
pub(super) fn read_certificate(path: &Path) -> anyhow::Result<Certificate> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let block = sigstack_crypto::pem::decode_all(&text)?
        .into_iter()
        .find(|b| b.label == "CERTIFICATE")
        .with_context(|| format!("{} holds no PEM certificate", path.display()))?;
    Ok(Certificate::from_der(&block.der)?)
}

/// A bundle for a detached signature and certificate (or key): the log entry is found in
/// the transparency log by its content.
pub(super) async fn detached_bundle(
    m: &Material,
    a: &VerifyBlobArgs,
    sig: &Path,
    artifact: &Artifact,
    policy: &Policy,
) -> anyhow::Result<Vec<u8>> {
    let inline = sig.to_str().filter(|s| {
        !sig.exists() && s.len() >= 16 && STANDARD.decode(s).is_ok_and(|b| !b.is_empty())
    });
    let sig_b64 = match inline {
        Some(s) => s.to_string(),
        None => std::fs::read_to_string(sig)
            .with_context(|| {
                format!(
                    "reading {} (--signature takes a file or the base64 signature itself)",
                    sig.display()
                )
            })?
            .trim()
            .to_string(),
    };
    let sig_bytes = STANDARD
        .decode(&sig_b64)
        .with_context(|| format!("{} is not a base64 signature", sig.display()))?;
    let (verifier_pem, material) = match (&a.certificate, policy) {
        (Some(c), Policy::Identity { .. }) => {
            let cert = read_certificate(c)?;
            (
                cert.to_pem(),
                json!({"certificate": {"rawBytes": STANDARD.encode(cert.der())}}),
            )
        }
        (None, Policy::Key(k)) => (k.to_pem(), json!({"publicKey": {"hint": ""}})),
        (None, Policy::Identity { .. }) => bail!("--signature needs --certificate (or --key)"),
        (Some(_), Policy::Key(_)) => bail!("--certificate and --key exclude each other"),
    };
    // the signature first: the log refuses to search for an entry that does not verify
    let signer_key = match (&material.get("certificate"), policy) {
        (Some(_), _) => sigstack_crypto::KeyMaterial::from_pem(verifier_pem.as_bytes())?
            .public_key()
            .clone(),
        (None, Policy::Key(k)) => k.clone(),
        (None, Policy::Identity { .. }) => bail!("--signature needs --certificate (or --key)"),
    };
    sigstack::verify::verify_message_signature(&signer_key, artifact, &sig_bytes)
        .map_err(|e| VerificationFailed(e.to_string()))?;
    let digest = artifact.sha256();
    let proposed = sigstack::rekor::hashedrekord(&digest, &sig_b64, verifier_pem.as_bytes());
    let url = match &a.rekor_url {
        Some(u) => u.clone(),
        None => m
            .signing_config
            .as_ref()
            .and_then(|c| Services::from_config(c).rekor)
            .context("no transparency log to look the entry up in: pass --rekor-url")?,
    };
    let http = http()?;
    let rekor = Rekor { http: &http, url };
    let found = rekor.entries_like(&proposed).await?;
    let (_, e) = found
        .into_iter()
        .next()
        .ok_or_else(|| VerificationFailed("the signature is not in the transparency log".into()))?;
    let mut material = material;
    material["tlogEntries"] = json!([sigstack::rekor::bundle_entry(&e)?]);
    Ok(serde_json::to_vec(&json!({
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": material,
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": STANDARD.encode(digest)},
            "signature": STANDARD.encode(sig_bytes),
        }
    }))?)
}
