//! Getting an OIDC identity token for keyless signing, the ways cosign does: a token the
//! user passes; an ambient CI token (GitHub Actions' token request variables); the
//! browser flow (authorization code with PKCE S256 to a loopback redirect, the browser
//! opened for the user or the URL printed); and the device flow when there is no
//! terminal to come back to.

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde_json::Value;
use std::io::IsTerminal;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Which way to get a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Provider {
    /// An ambient CI token if there is one, else the browser (with a terminal or
    /// `BROWSER` set) or the device flow.
    Auto,
    /// GitHub Actions' `ACTIONS_ID_TOKEN_REQUEST_URL`/`_TOKEN`.
    GithubActions,
    Browser,
    Device,
}

pub struct OidcOptions<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub client_secret: Option<&'a str>,
    /// A fixed redirect URL (`http://localhost:PORT/auth/callback`); default an ephemeral port.
    pub redirect_url: Option<&'a str>,
    pub provider: Provider,
}

fn random_b64(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// The unverified claims of a compact JWS (the CA verifies the signature; we read what
/// we need to check the flow and to tell the user who they are).
pub fn claims(token: &str) -> anyhow::Result<Value> {
    let payload = token
        .split('.')
        .nth(1)
        .context("the identity token is not a JWT")?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .context("the identity token's payload is not base64url")?;
    serde_json::from_slice(&bytes).context("the identity token's payload is not JSON")
}

async fn json_of(res: reqwest::Response, what: &str) -> anyhow::Result<(u16, Value)> {
    let status = res.status().as_u16();
    let body = res
        .bytes()
        .await
        .with_context(|| format!("{what}: reading"))?;
    let v = serde_json::from_slice(&body)
        .with_context(|| format!("{what}: HTTP {status}, the answer is not JSON"))?;
    Ok((status, v))
}

/// GitHub Actions' ambient token, when the job has `id-token: write`.
pub async fn github_actions(http: &reqwest::Client) -> anyhow::Result<Option<String>> {
    let (Ok(url), Ok(bearer)) = (
        std::env::var("ACTIONS_ID_TOKEN_REQUEST_URL"),
        std::env::var("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
    ) else {
        return Ok(None);
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    let res = http
        .get(format!("{url}{sep}audience=sigstore"))
        .bearer_auth(bearer)
        .send()
        .await
        .context("requesting the GitHub Actions identity token")?;
    let (status, v) = json_of(res, "the GitHub Actions token endpoint").await?;
    if status != 200 {
        bail!("the GitHub Actions token endpoint answered HTTP {status}: {v}");
    }
    let token = v["value"]
        .as_str()
        .context("the GitHub Actions token answer has no \"value\"")?;
    Ok(Some(token.to_string()))
}

async fn discover(http: &reqwest::Client, issuer: &str) -> anyhow::Result<Value> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let res = http
        .get(&url)
        .send()
        .await
        .with_context(|| format!("reaching the identity provider at {url}"))?;
    let (status, v) = json_of(res, "OIDC discovery").await?;
    if status != 200 {
        bail!("OIDC discovery at {url}: HTTP {status}");
    }
    Ok(v)
}

fn endpoint<'a>(d: &'a Value, name: &str) -> anyhow::Result<&'a str> {
    d[name]
        .as_str()
        .with_context(|| format!("the identity provider advertises no {name}"))
}

/// A token from the issuer, by the flow `opts.provider` selects (after ambient tokens).
pub async fn identity_token(
    http: &reqwest::Client,
    opts: &OidcOptions<'_>,
) -> anyhow::Result<String> {
    if matches!(opts.provider, Provider::Auto | Provider::GithubActions) {
        if let Some(t) = github_actions(http).await? {
            return Ok(t);
        }
        if opts.provider == Provider::GithubActions {
            bail!(
                "--oidc-provider github-actions: ACTIONS_ID_TOKEN_REQUEST_URL/ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set (does the job have `id-token: write`?)"
            );
        }
    }
    let browser = match opts.provider {
        Provider::Browser => true,
        Provider::Device => false,
        _ => std::env::var_os("BROWSER").is_some() || std::io::stdin().is_terminal(),
    };
    let d = discover(http, opts.issuer).await?;
    if browser {
        browser_flow(http, &d, opts).await
    } else {
        device_flow(http, &d, opts).await
    }
}

fn open_browser(url: &str) {
    // BROWSER as Python's webbrowser reads it: a command whose `%s` is the URL (else the
    // URL is appended), run without a shell so the URL's `&`s stay in it
    let spawned = match std::env::var("BROWSER") {
        Ok(b) if !b.trim().is_empty() => {
            let mut words: Vec<String> = b.split_whitespace().map(str::to_string).collect();
            if words.iter().any(|w| w.contains("%s")) {
                for w in &mut words {
                    *w = w.replace("%s", url);
                }
            } else {
                words.push(url.to_string());
            }
            std::process::Command::new(&words[0])
                .args(&words[1..])
                .stdin(std::process::Stdio::null())
                .spawn()
        }
        _ => std::process::Command::new(if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        })
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn(),
    };
    if spawned.is_err() {
        eprintln!("Could not open a browser; open the URL above yourself.");
    }
}

/// The query of the first `GET /auth/callback?...` request a loopback connection sends.
async fn callback_query(listener: &tokio::net::TcpListener, path: &str) -> anyhow::Result<String> {
    loop {
        let (mut sock, _) = listener.accept().await?;
        let mut buf = vec![0u8; 8192];
        let mut n = 0;
        while n < buf.len() {
            let r = sock.read(&mut buf[n..]).await?;
            if r == 0 {
                break;
            }
            n += r;
            if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        let head = String::from_utf8_lossy(&buf[..n]).to_string();
        let target = head
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("GET "))
            .and_then(|l| l.split(' ').next())
            .unwrap_or("");
        let (p, q) = target.split_once('?').unwrap_or((target, ""));
        if p != path {
            let _ = sock
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            continue;
        }
        let body = "<!doctype html><title>sigstack</title><p>Sign-in complete. You can close this window and return to the terminal.</p>";
        let _ = sock
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            )
            .await;
        return Ok(q.to_string());
    }
}

fn query_param(q: &str, name: &str) -> Option<String> {
    url_form(q)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// `application/x-www-form-urlencoded` pairs.
fn url_form(q: &str) -> Vec<(String, String)> {
    fn dec(s: &str) -> String {
        let s = s.replace('+', " ");
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%'
                && i + 2 < b.len()
                && let (Some(h), Some(l)) = (
                    (b[i + 1] as char).to_digit(16),
                    (b[i + 2] as char).to_digit(16),
                )
            {
                let v = (h * 16 + l) as u8;
                out.push(v);
                i += 3;
                continue;
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).to_string()
    }
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (dec(k), dec(v))
        })
        .collect()
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn token_request(
    http: &reqwest::Client,
    token_endpoint: &str,
    opts: &OidcOptions<'_>,
    form: &[(&str, &str)],
) -> anyhow::Result<(u16, Value)> {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    form.push(("client_id", opts.client_id));
    if let Some(s) = opts.client_secret {
        form.push(("client_secret", s));
    }
    let res = http
        .post(token_endpoint)
        .form(&form)
        .send()
        .await
        .with_context(|| format!("reaching the token endpoint {token_endpoint}"))?;
    json_of(res, "the token endpoint").await
}

fn id_token_of(v: &Value, nonce: Option<&str>) -> anyhow::Result<String> {
    let t = v["id_token"]
        .as_str()
        .context("the identity provider answered no id_token")?;
    if let Some(n) = nonce
        && claims(t)?["nonce"].as_str() != Some(n)
    {
        bail!("the identity token's nonce is not the one we sent: refusing it");
    }
    Ok(t.to_string())
}

const LOGIN_TIMEOUT: Duration = Duration::from_secs(300);

async fn browser_flow(
    http: &reqwest::Client,
    d: &Value,
    opts: &OidcOptions<'_>,
) -> anyhow::Result<String> {
    let auth = endpoint(d, "authorization_endpoint")?;
    let token_endpoint = endpoint(d, "token_endpoint")?;
    let (bind, redirect, path) = match opts.redirect_url {
        Some(r) => {
            let rest = r
                .strip_prefix("http://")
                .context("--oidc-redirect-url must be an http:// loopback URL")?;
            let (hostport, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let port = hostport
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .unwrap_or(80);
            (
                port,
                r.to_string(),
                if path.is_empty() {
                    "/".to_string()
                } else {
                    path.to_string()
                },
            )
        }
        None => (0, String::new(), "/auth/callback".to_string()),
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", bind))
        .await
        .context("listening on a loopback port for the sign-in redirect")?;
    let redirect = if redirect.is_empty() {
        format!("http://localhost:{}{path}", listener.local_addr()?.port())
    } else {
        redirect
    };
    let verifier = random_b64(32);
    let challenge = URL_SAFE_NO_PAD.encode(sigstack_crypto::sha256(verifier.as_bytes()));
    let state = random_b64(16);
    let nonce = random_b64(16);
    let sep = if auth.contains('?') { '&' } else { '?' };
    let url = format!(
        "{auth}{sep}response_type=code&client_id={}&redirect_uri={}&scope={}&state={state}&nonce={nonce}&code_challenge={challenge}&code_challenge_method=S256",
        enc(opts.client_id),
        enc(&redirect),
        enc("openid email"),
    );
    eprintln!("Your browser will now be opened to:\n{url}");
    open_browser(&url);
    let q = tokio::time::timeout(LOGIN_TIMEOUT, callback_query(&listener, &path))
        .await
        .context("no sign-in within 5 minutes")??;
    if let Some(e) = query_param(&q, "error") {
        let desc = query_param(&q, "error_description").unwrap_or_default();
        bail!("the identity provider refused the sign-in: {e} {desc}");
    }
    let got_state = query_param(&q, "state").unwrap_or_default();
    let same = got_state.len() == state.len()
        && got_state
            .bytes()
            .zip(state.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        bail!("the sign-in redirect carries another state: refusing it");
    }
    let code = query_param(&q, "code").context("the sign-in redirect carries no code")?;
    let (status, v) = token_request(
        http,
        token_endpoint,
        opts,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect),
            ("code_verifier", &verifier),
        ],
    )
    .await?;
    if status != 200 {
        bail!("the token endpoint answered HTTP {status}: {v}");
    }
    id_token_of(&v, Some(&nonce))
}

async fn device_flow(
    http: &reqwest::Client,
    d: &Value,
    opts: &OidcOptions<'_>,
) -> anyhow::Result<String> {
    let device = endpoint(d, "device_authorization_endpoint")?;
    let token_endpoint = endpoint(d, "token_endpoint")?;
    let mut form = vec![("client_id", opts.client_id), ("scope", "openid email")];
    if let Some(s) = opts.client_secret {
        form.push(("client_secret", s));
    }
    let res = http
        .post(device)
        .form(&form)
        .send()
        .await
        .with_context(|| format!("reaching {device}"))?;
    let (status, v) = json_of(res, "the device authorization endpoint").await?;
    if status != 200 {
        bail!("the device authorization endpoint answered HTTP {status}: {v}");
    }
    let device_code = v["device_code"].as_str().context("no device_code")?;
    let user_code = v["user_code"].as_str().unwrap_or("");
    let uri = v["verification_uri_complete"]
        .as_str()
        .or(v["verification_uri"].as_str())
        .context("no verification_uri")?;
    eprintln!("To sign in, open {uri} and enter the code {user_code}");
    let mut interval = Duration::from_secs(v["interval"].as_u64().unwrap_or(5).max(1));
    let deadline =
        Instant::now() + Duration::from_secs(v["expires_in"].as_u64().unwrap_or(300).min(1800));
    loop {
        tokio::time::sleep(interval).await;
        if Instant::now() > deadline {
            bail!("the device code expired before the sign-in was approved");
        }
        let (status, v) = token_request(
            http,
            token_endpoint,
            opts,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", device_code),
            ],
        )
        .await?;
        if status == 200 {
            return id_token_of(&v, None);
        }
        match v["error"].as_str() {
            Some("authorization_pending") => {}
            Some("slow_down") => interval += Duration::from_secs(5),
            Some("access_denied") => bail!("the sign-in was denied"),
            Some("expired_token") => bail!("the device code expired"),
            _ => bail!("the token endpoint answered HTTP {status}: {v}"),
        }
    }
}

/// The confirmation cosign asks for before an identity goes into public records.
pub fn confirm_publication(yes: bool, public_instance: bool) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    let mut text = String::from(
        "Your signature will be published in a transparency log, together with the identity from your token (an e-mail address or other account name). Log entries are permanent: they cannot be changed or removed.\n",
    );
    if public_instance {
        text.push_str(
            "The public Sigstore service is run by Sigstore, a Series of LF Projects, LLC, under the Hosted Project Tools Terms of Use (https://lfprojects.org/policies/hosted-project-tools-terms-of-use/) and the Immutable Record notice (https://lfprojects.org/policies/hosted-project-tools-immutable-records/).\n",
        );
    }
    text.push_str(
        "By answering 'y' you confirm that you are not submitting anyone else's personal data and that you accept these terms.\n",
    );
    eprint!("{text}Are you sure you would like to continue? [y/N] ");
    if !std::io::stdin().is_terminal() {
        eprintln!();
        bail!("no terminal to confirm on: pass --yes (or set COSIGN_YES=true) to confirm");
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    if matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        bail!("not confirmed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_handles_escapes_and_plus() {
        let q = url_form("code=a%2Bb+c&state=x%3D1&empty=&bad=%zz");
        assert_eq!(q[0], ("code".into(), "a+b c".into()));
        assert_eq!(q[1], ("state".into(), "x=1".into()));
        assert_eq!(q[2], ("empty".into(), "".into()));
        assert_eq!(q[3], ("bad".into(), "%zz".into()));
        assert_eq!(enc("http://a b/"), "http%3A%2F%2Fa%20b%2F");
    }

    #[test]
    fn claims_are_read_from_the_payload() {
        let t = format!(
            "e30.{}.sig",
            URL_SAFE_NO_PAD.encode(br#"{"nonce":"n","sub":"s"}"#)
        );
        assert_eq!(claims(&t).expect("test")["nonce"], "n");
        assert!(claims("nope").is_err());
    }
}
