//! Registry access through the `oci-client` crate, the way users already have it set up:
//! Docker's `config.json` credentials and credential helpers, anonymous pulls, token auth
//! (the crate's challenge handling), plain HTTP for loopback registries and
//! `--allow-http-registry`, unverified TLS for `--allow-insecure-registry`. Errors name
//! the registry's answer (401, 404, 5xx) plainly.

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
pub use oci_client::Reference;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;

/// How to reach registries (cosign's flags).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RegistryArgs {
    /// Accept registries with invalid TLS certificates.
    #[arg(long, env = "COSIGN_ALLOW_INSECURE_REGISTRY", global = true)]
    pub allow_insecure_registry: bool,
    /// Talk plain HTTP to registries (loopback registries always are).
    #[arg(long, env = "COSIGN_ALLOW_HTTP_REGISTRY", global = true)]
    pub allow_http_registry: bool,
}

pub const MANIFEST_TYPES: &[&str] = &[
    crate::layout::OCI_MANIFEST,
    crate::layout::OCI_INDEX,
    crate::layout::DOCKER_MANIFEST,
    crate::layout::DOCKER_LIST,
];

/// A registry client with per-registry credentials resolved once.
pub struct Registry {
    client: Client,
    args: RegistryArgs,
    auths: Mutex<HashMap<String, RegistryAuth>>,
    http: reqwest::Client,
}

fn is_loopback(registry: &str) -> bool {
    let host = registry.rsplit_once(':').map_or(registry, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            registry
        }
    });
    matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1") || host.ends_with(".localhost")
}

/// Whether a registry error is "not found" (manifest, tag or repository unknown).
pub fn is_not_found(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::RegistryError { envelope, .. } => envelope.errors.iter().any(|x| {
            matches!(
                x.code,
                OciErrorCode::ManifestUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::NotFound
                    | OciErrorCode::BlobUnknown
            )
        }),
        OciDistributionError::ServerError { code, .. } => *code == 404,
        OciDistributionError::ImageManifestNotFoundError(_) => true,
        OciDistributionError::RequestError(r) => r.status().is_some_and(|s| s.as_u16() == 404),
        _ => false,
    }
}

/// A plain description of a registry failure.
fn explain(e: OciDistributionError, what: &str) -> anyhow::Error {
    let detail = match &e {
        OciDistributionError::UnauthorizedError { url } => {
            format!("401 Unauthorized at {url}: log in (docker login) or check your credentials")
        }
        OciDistributionError::ServerError { code, url, message } => {
            format!("HTTP {code} at {url}: {message}")
        }
        OciDistributionError::RegistryError { envelope, url } => format!(
            "{url}: {}",
            envelope
                .errors
                .iter()
                .map(|x| format!("{:?}: {}", x.code, x.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        _ => return anyhow::Error::new(e).context(what.to_string()),
    };
    anyhow::anyhow!("{what}: {detail}")
}

/// Credentials for `registry` from Docker's config (`DOCKER_CONFIG` or `~/.docker`):
/// `credHelpers`, then `credsStore`, then `auths`.
pub fn docker_credentials(registry: &str) -> anyhow::Result<RegistryAuth> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".docker")));
    let Some(dir) = dir else {
        return Ok(RegistryAuth::Anonymous);
    };
    let Ok(text) = std::fs::read(dir.join("config.json")) else {
        return Ok(RegistryAuth::Anonymous);
    };
    let cfg: Value = serde_json::from_slice(&text).context("~/.docker/config.json is not JSON")?;
    let key = match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "https://index.docker.io/v1/",
        r => r,
    };
    let helper = cfg["credHelpers"][key]
        .as_str()
        .or_else(|| cfg["credsStore"].as_str());
    if let Some(h) = helper {
        return helper_credentials(h, key);
    }
    if let Some(auths) = cfg["auths"].as_object() {
        for (k, v) in auths {
            let host = k
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap_or(k);
            if k == key || host == key {
                if let Some(a) = v["auth"].as_str() {
                    let decoded = String::from_utf8(
                        STANDARD.decode(a).context("a Docker auth is not base64")?,
                    )
                    .context("a Docker auth is not UTF-8")?;
                    let (u, p) = decoded
                        .split_once(':')
                        .context("a Docker auth is not user:password")?;
                    return Ok(RegistryAuth::Basic(u.to_string(), p.to_string()));
                }
                if let Some(t) = v["registrytoken"].as_str() {
                    return Ok(RegistryAuth::Bearer(t.to_string()));
                }
            }
        }
    }
    Ok(RegistryAuth::Anonymous)
}

/// `docker-credential-<helper> get` with the server on stdin.
fn helper_credentials(helper: &str, server: &str) -> anyhow::Result<RegistryAuth> {
    use std::io::Write;
    let program = format!("docker-credential-{helper}");
    let mut child = match std::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => bail!("the Docker credential helper {program} cannot run: {e}"),
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(server.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        // "credentials not found": anonymous
        return Ok(RegistryAuth::Anonymous);
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("{program} answered no JSON"))?;
    let user = v["Username"].as_str().unwrap_or_default();
    let secret = v["Secret"].as_str().unwrap_or_default().to_string();
    Ok(if user == "<token>" {
        RegistryAuth::Bearer(secret)
    } else {
        RegistryAuth::Basic(user.to_string(), secret)
    })
}

impl Registry {
    pub fn new(args: &RegistryArgs, registries: &[&str]) -> anyhow::Result<Self> {
        let http_for: Vec<String> = registries
            .iter()
            .filter(|r| args.allow_http_registry || is_loopback(r))
            .map(|r| r.to_string())
            .collect();
        let config = ClientConfig {
            protocol: if http_for.is_empty() {
                ClientProtocol::Https
            } else {
                ClientProtocol::HttpsExcept(http_for)
            },
            accept_invalid_certificates: args.allow_insecure_registry,
            use_monolithic_push: true,
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            ..Default::default()
        };
        let client = Client::try_from(config).context("setting up the registry client")?;
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(args.allow_insecure_registry)
            .timeout(std::time::Duration::from_secs(60))
            .build()?;
        Ok(Self {
            client,
            args: args.clone(),
            auths: Mutex::new(HashMap::new()),
            http,
        })
    }

    fn scheme(&self, registry: &str) -> &'static str {
        if self.args.allow_http_registry || is_loopback(registry) {
            "http"
        } else {
            "https"
        }
    }

    /// The credentials for a reference's registry, stored in the client for the calls
    /// that take none.
    async fn auth(&self, r: &Reference) -> anyhow::Result<RegistryAuth> {
        let registry = r.resolve_registry().to_string();
        let cached = self
            .auths
            .lock()
            .map_err(|_| anyhow::anyhow!("lock"))?
            .get(&registry)
            .cloned();
        let auth = match cached {
            Some(a) => a,
            None => {
                let a = docker_credentials(r.registry())?;
                self.auths
                    .lock()
                    .map_err(|_| anyhow::anyhow!("lock"))?
                    .insert(registry.clone(), a.clone());
                a
            }
        };
        self.client.store_auth_if_needed(&registry, &auth).await;
        Ok(auth)
    }

    /// Authenticates for pushing to `r`'s repository.
    async fn push_auth(&self, r: &Reference) -> anyhow::Result<Option<String>> {
        let auth = self.auth(r).await?;
        self.client
            .auth(r, &auth, RegistryOperation::Push)
            .await
            .map_err(|e| explain(e, &format!("authenticating to push to {r}")))
    }

    /// The digest a reference names (a tag is resolved).
    pub async fn digest(&self, r: &Reference) -> anyhow::Result<String> {
        if let Some(d) = r.digest() {
            return Ok(d.to_string());
        }
        let auth = self.auth(r).await?;
        self.client
            .fetch_manifest_digest(r, &auth)
            .await
            .map_err(|e| explain(e, &format!("resolving {r}")))
    }

    /// A manifest's bytes, or `None` when it does not exist.
    pub async fn manifest(&self, r: &Reference) -> anyhow::Result<Option<(Vec<u8>, String)>> {
        let auth = self.auth(r).await?;
        match self
            .client
            .pull_manifest_raw(r, &auth, MANIFEST_TYPES)
            .await
        {
            Ok(x) => Ok(Some(x)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(explain(e, &format!("fetching the manifest of {r}"))),
        }
    }

    /// A manifest that must exist, parsed.
    pub async fn manifest_json(&self, r: &Reference) -> anyhow::Result<(Value, Vec<u8>, String)> {
        let (bytes, digest) = self
            .manifest(r)
            .await?
            .with_context(|| format!("{r}: no such manifest (404)"))?;
        let v = serde_json::from_slice(&bytes)
            .with_context(|| format!("{r}: the manifest is not JSON"))?;
        Ok((v, bytes, digest))
    }

    pub async fn blob(&self, r: &Reference, digest: &str) -> anyhow::Result<Vec<u8>> {
        self.auth(r).await?;
        let mut out = Vec::new();
        self.client
            .pull_blob(r, digest, &mut out)
            .await
            .map_err(|e| explain(e, &format!("fetching blob {digest} of {}", r.repository())))?;
        if crate::layout::sha256_digest(&out) != digest && digest.starts_with("sha256:") {
            bail!("blob {digest} of {r} does not match its digest");
        }
        Ok(out)
    }

    pub async fn push_blob(&self, r: &Reference, bytes: &[u8]) -> anyhow::Result<String> {
        self.push_auth(r).await?;
        let digest = crate::layout::sha256_digest(bytes);
        self.client
            .push_blob(r, bytes, &digest)
            .await
            .map_err(|e| explain(e, &format!("pushing a blob to {}", r.repository())))?;
        Ok(digest)
    }

    /// Pushes a manifest under `r` (tag or digest); returns its digest.
    pub async fn push_manifest(&self, r: &Reference, manifest: &Value) -> anyhow::Result<String> {
        self.push_auth(r).await?;
        let bytes = serde_json::to_vec(manifest)?;
        let media = manifest["mediaType"]
            .as_str()
            .unwrap_or(crate::layout::OCI_MANIFEST)
            .to_string();
        let digest = crate::layout::sha256_digest(&bytes);
        self.client
            .push_manifest_raw(r, bytes, reqwest::header::HeaderValue::from_str(&media)?)
            .await
            .map_err(|e| explain(e, &format!("pushing the manifest {r}")))?;
        Ok(digest)
    }

    /// Pushes raw manifest bytes (copying) under `r`.
    pub async fn push_manifest_bytes(&self, r: &Reference, bytes: &[u8]) -> anyhow::Result<()> {
        self.push_auth(r).await?;
        let v: Value = serde_json::from_slice(bytes)?;
        let media = v["mediaType"]
            .as_str()
            .unwrap_or(crate::layout::OCI_MANIFEST)
            .to_string();
        self.client
            .push_manifest_raw(
                r,
                bytes.to_vec(),
                reqwest::header::HeaderValue::from_str(&media)?,
            )
            .await
            .map_err(|e| explain(e, &format!("pushing the manifest {r}")))?;
        Ok(())
    }

    /// The tags of a repository.
    pub async fn tags(&self, r: &Reference) -> anyhow::Result<Vec<String>> {
        let auth = self.auth(r).await?;
        match self.client.list_tags(r, &auth, None, None).await {
            Ok(t) => Ok(t.tags),
            Err(e) if is_not_found(&e) => Ok(Vec::new()),
            Err(e) => Err(explain(
                e,
                &format!("listing the tags of {}", r.repository()),
            )),
        }
    }

    /// The referrers of `r` (a digest reference): the registry's referrers API, else the
    /// tag-schema fallback index `sha256-<hex>`. Returns the index's manifests.
    pub async fn referrers(&self, r: &Reference) -> anyhow::Result<Vec<Value>> {
        self.auth(r).await?;
        if let Ok(index) = self.client.pull_referrers(r, None).await {
            let v = serde_json::to_value(&index)?;
            return Ok(v["manifests"].as_array().cloned().unwrap_or_default());
        }
        let digest = r.digest().context("referrers need a digest")?;
        let tag = with_tag(r, &crate::layout::tag_for(digest, ""));
        match self.manifest(&tag).await? {
            Some((bytes, _)) => {
                let v: Value = serde_json::from_slice(&bytes)?;
                Ok(v["manifests"].as_array().cloned().unwrap_or_default())
            }
            None => Ok(Vec::new()),
        }
    }

    /// Deletes a manifest by digest (the registry must allow deletes).
    pub async fn delete_manifest(&self, r: &Reference, digest: &str) -> anyhow::Result<()> {
        let token = self.push_auth(r).await?;
        let auth = self.auth(r).await?;
        let url = format!(
            "{}://{}/v2/{}/manifests/{digest}",
            self.scheme(r.resolve_registry()),
            r.resolve_registry(),
            r.repository()
        );
        let mut req = self.http.delete(&url);
        req = match (token, auth) {
            (Some(t), _) => req.bearer_auth(t),
            (None, RegistryAuth::Basic(u, p)) => req.basic_auth(u, Some(p)),
            (None, RegistryAuth::Bearer(t)) => req.bearer_auth(t),
            (None, RegistryAuth::Anonymous) => req,
        };
        let res = req.send().await.with_context(|| format!("DELETE {url}"))?;
        match res.status().as_u16() {
            200..=299 | 404 => Ok(()),
            405 => bail!("the registry does not allow deleting manifests (HTTP 405 at {url})"),
            s => bail!(
                "deleting {digest}: HTTP {s} at {url}: {}",
                res.text().await.unwrap_or_default()
            ),
        }
    }

    /// Mounts (or else copies) a blob from `from` into `to`'s repository.
    pub async fn copy_blob(
        &self,
        from: &Reference,
        to: &Reference,
        digest: &str,
    ) -> anyhow::Result<()> {
        self.push_auth(to).await?;
        if from.resolve_registry() == to.resolve_registry()
            && self.client.mount_blob(to, from, digest).await.is_ok()
        {
            return Ok(());
        }
        let bytes = self.blob(from, digest).await?;
        self.push_blob(to, &bytes).await?;
        Ok(())
    }
}

/// `r` with another tag (same registry and repository).
pub fn with_tag(r: &Reference, tag: &str) -> Reference {
    Reference::with_tag(
        r.registry().to_string(),
        r.repository().to_string(),
        tag.to_string(),
    )
}

/// `r` at a digest (same registry and repository).
pub fn with_digest(r: &Reference, digest: &str) -> Reference {
    Reference::with_digest(
        r.registry().to_string(),
        r.repository().to_string(),
        digest.to_string(),
    )
}

/// Parses an image reference.
pub fn parse(image: &str) -> anyhow::Result<Reference> {
    image
        .parse::<Reference>()
        .map_err(|e| anyhow::anyhow!("{image:?} is not an image reference: {e}"))
}
