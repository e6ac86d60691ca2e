//! Signing in to the explorer with the stack's identity provider: the authorization code
//! flow with PKCE (S256), `state` and `nonce` kept in a short-lived signed cookie; the ID
//! token verified against the issuer's published keys (audience: this client); then a
//! session cookie (HMAC-SHA256, HttpOnly, SameSite=Lax, 8 hours) naming the verified
//! e-mail address. Forms carry a CSRF token derived from the session.

use super::super::Monitor;
use super::super::config::ExplorerConfig;
use crate::ca::fetch::HttpFetcher;
use anyhow::{Context, bail};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sigstack_ca::token::{CachePolicy, KeyCache};
use std::sync::Arc;

const SESSION: &str = "sigstack-explorer";
const LOGIN: &str = "sigstack-explorer-login";
const SESSION_SECS: i64 = 8 * 3600;
const LOGIN_SECS: i64 = 600;

pub struct Explorer {
    key: Vec<u8>,
    pub tuf_url: Option<String>,
    /// The TUF page as last rendered, and when: rendered at most once a minute, however
    /// many ask.
    pub tuf_page: tokio::sync::Mutex<Option<(std::time::Instant, String)>>,
    /// Entry pages being proven against their log at once; more are told to retry.
    pub inspections: tokio::sync::Semaphore,
    /// Uploaded files being searched for at once; more are told to retry.
    pub uploads: tokio::sync::Semaphore,
    oidc: Option<Oidc>,
    secure: bool,
}

struct Oidc {
    issuer: String,
    client_id: String,
    client_secret: Option<String>,
    redirect_uri: String,
    keys: KeyCache<HttpFetcher>,
    http: reqwest::Client,
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    aws_lc_rs::hmac::sign(&k, data).as_ref().to_vec()
}

fn cookie_of<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl Explorer {
    pub async fn new(cfg: &ExplorerConfig) -> anyhow::Result<Self> {
        let key = match &cfg.session_key_file {
            // kept, so sessions survive a restart
            Some(p) => crate::bootstrap::secret(p)?.into_bytes(),
            // sessions then last as long as the process
            None => rand::random::<[u8; 32]>().to_vec(),
        };
        let public = cfg.public_url.clone().unwrap_or_default();
        let oidc = match (&cfg.oidc_issuer, &cfg.client_id) {
            (Some(issuer), Some(client_id)) => {
                let client_secret = match &cfg.client_secret_file {
                    Some(p) => Some(
                        std::fs::read_to_string(p)
                            .with_context(|| format!("reading {}", p.display()))?
                            .trim()
                            .to_string(),
                    ),
                    None => None,
                };
                let fetcher = HttpFetcher::new(&Default::default())?;
                let http = fetcher.client().clone();
                Some(Oidc {
                    issuer: issuer.trim_end_matches('/').to_string(),
                    client_id: client_id.clone(),
                    client_secret,
                    redirect_uri: format!("{}/login/callback", public.trim_end_matches('/')),
                    keys: KeyCache::new(fetcher, CachePolicy::default()),
                    http,
                })
            }
            _ => None,
        };
        Ok(Self {
            key,
            tuf_url: cfg.tuf_url.clone(),
            tuf_page: tokio::sync::Mutex::new(None),
            inspections: tokio::sync::Semaphore::new(16),
            uploads: tokio::sync::Semaphore::new(2),
            oidc,
            secure: public.starts_with("https://"),
        })
    }

    pub fn sign_in_enabled(&self) -> bool {
        self.oidc.is_some()
    }

    fn seal(&self, payload: &str) -> String {
        let p = URL_SAFE_NO_PAD.encode(payload);
        let t = URL_SAFE_NO_PAD.encode(mac(&self.key, p.as_bytes()));
        format!("{p}.{t}")
    }

    fn open(&self, value: &str, kind: &str) -> Option<Vec<String>> {
        let (p, t) = value.split_once('.')?;
        let t = URL_SAFE_NO_PAD.decode(t).ok()?;
        if !sigstack_oidc::pkce::constant_time_eq(&t, &mac(&self.key, p.as_bytes())) {
            return None;
        }
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(p).ok()?).ok()?;
        let parts: Vec<String> = text.split('\n').map(str::to_string).collect();
        let exp: i64 = parts.last()?.parse().ok()?;
        (parts.first()? == kind && super::super::now() < exp).then_some(parts)
    }

    fn cookie(&self, name: &str, value: &str, max_age: i64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
        ))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The signed-in e-mail address, if the session cookie is valid.
    pub fn session(&self, headers: &HeaderMap) -> Option<String> {
        let parts = self.open(cookie_of(headers, SESSION)?, "session")?;
        parts.get(1).cloned()
    }

    /// The CSRF token for the session's forms.
    pub fn csrf(&self, headers: &HeaderMap) -> Option<String> {
        let c = cookie_of(headers, SESSION)?;
        self.session(headers)?;
        Some(hex::encode(mac(&self.key, format!("csrf\n{c}").as_bytes())))
    }

    pub fn csrf_ok(&self, headers: &HeaderMap, token: &str) -> bool {
        self.csrf(headers)
            .is_some_and(|t| sigstack_oidc::pkce::constant_time_eq(t.as_bytes(), token.as_bytes()))
    }
}

async fn discovery(o: &Oidc) -> anyhow::Result<serde_json::Value> {
    let url = format!("{}/.well-known/openid-configuration", o.issuer);
    let v: serde_json::Value = o
        .http
        .get(&url)
        .send()
        .await
        .with_context(|| format!("reaching {url}"))?
        .error_for_status()?
        .json()
        .await?;
    Ok(v)
}

fn fail(status: StatusCode, msg: String) -> Response {
    super::html::html_response(
        status,
        super::html::page(
            "Sign-in failed",
            &super::html::Viewer {
                email: None,
                sign_in: true,
            },
            &format!(
                "<p class=\"bad\" role=\"alert\">{}</p><p><a href=\"/login\">Try again</a></p>",
                super::html::esc(&msg)
            ),
        ),
    )
}

pub async fn start(State(m): State<Arc<Monitor>>) -> Response {
    let ex = &m.explorer;
    let Some(o) = &ex.oidc else {
        return fail(
            StatusCode::NOT_FOUND,
            "sign-in is not configured for this explorer".into(),
        );
    };
    let d = match discovery(o).await {
        Ok(d) => d,
        Err(e) => {
            return fail(
                StatusCode::BAD_GATEWAY,
                format!("the identity provider: {e:#}"),
            );
        }
    };
    let Some(auth) = d["authorization_endpoint"].as_str() else {
        return fail(
            StatusCode::BAD_GATEWAY,
            "the identity provider names no authorization endpoint".into(),
        );
    };
    let state = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>());
    let nonce = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>());
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = sigstack_oidc::pkce::challenge_of(&verifier);
    let exp = super::super::now() + LOGIN_SECS;
    let sealed = ex.seal(&format!("login\n{state}\n{nonce}\n{verifier}\n{exp}"));
    let url = match reqwest::Url::parse_with_params(
        auth,
        &[
            ("response_type", "code"),
            ("client_id", o.client_id.as_str()),
            ("redirect_uri", o.redirect_uri.as_str()),
            ("scope", "openid email"),
            ("state", state.as_str()),
            ("nonce", nonce.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    ) {
        Ok(u) => u,
        Err(e) => {
            return fail(
                StatusCode::BAD_GATEWAY,
                format!("authorization endpoint: {e}"),
            );
        }
    };
    let mut r = Redirect::to(url.as_str()).into_response();
    r.headers_mut()
        .append(header::SET_COOKIE, ex.cookie(LOGIN, &sealed, LOGIN_SECS));
    r
}

#[derive(serde::Deserialize)]
pub struct Callback {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

pub async fn callback(
    State(m): State<Arc<Monitor>>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    let ex = &m.explorer;
    let Some(o) = &ex.oidc else {
        return fail(StatusCode::NOT_FOUND, "sign-in is not configured".into());
    };
    if let Some(e) = q.error {
        return fail(
            StatusCode::UNAUTHORIZED,
            format!("the identity provider said: {e}"),
        );
    }
    let Some(parts) = cookie_of(&headers, LOGIN).and_then(|c| ex.open(c, "login")) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "the sign-in took too long or was not started here".into(),
        );
    };
    let (state, nonce, verifier) = (&parts[1], &parts[2], &parts[3]);
    if !q
        .state
        .as_deref()
        .is_some_and(|s| sigstack_oidc::pkce::constant_time_eq(s.as_bytes(), state.as_bytes()))
    {
        return fail(
            StatusCode::BAD_REQUEST,
            "the sign-in's state does not match".into(),
        );
    }
    let Some(code) = q.code else {
        return fail(StatusCode::BAD_REQUEST, "no authorization code".into());
    };
    let email = match redeem(o, &code, verifier, nonce).await {
        Ok(e) => e,
        Err(e) => return fail(StatusCode::UNAUTHORIZED, format!("{e:#}")),
    };
    let exp = super::super::now() + SESSION_SECS;
    let session = ex.seal(&format!("session\n{email}\n{exp}"));
    let mut r = Redirect::to("/me").into_response();
    let h = r.headers_mut();
    h.append(
        header::SET_COOKIE,
        ex.cookie(SESSION, &session, SESSION_SECS),
    );
    h.append(header::SET_COOKIE, ex.cookie(LOGIN, "", 0));
    r
}

/// Exchanges the code and verifies the ID token; returns its verified e-mail address.
async fn redeem(o: &Oidc, code: &str, verifier: &str, nonce: &str) -> anyhow::Result<String> {
    let d = discovery(o).await?;
    let token_url = d["token_endpoint"]
        .as_str()
        .context("the identity provider names no token endpoint")?;
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", o.redirect_uri.as_str()),
        ("code_verifier", verifier),
        ("client_id", o.client_id.as_str()),
    ];
    if let Some(s) = &o.client_secret {
        form.push(("client_secret", s.as_str()));
    }
    let res = o
        .http
        .post(token_url)
        .form(&form)
        .send()
        .await
        .with_context(|| format!("reaching {token_url}"))?;
    let status = res.status();
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    if !status.is_success() {
        bail!(
            "the token endpoint refused the code ({status}): {}",
            body["error_description"]
                .as_str()
                .or(body["error"].as_str())
                .unwrap_or("")
        );
    }
    let id_token = body["id_token"]
        .as_str()
        .context("no ID token in the answer")?;
    let claims = o
        .keys
        .verify(&o.issuer, id_token, &o.client_id, 60, super::super::now())
        .await
        .map_err(|e| anyhow::anyhow!("the ID token does not verify: {e}"))?;
    let got_nonce = claims.get("nonce").and_then(|v| v.as_str()).unwrap_or("");
    if !sigstack_oidc::pkce::constant_time_eq(got_nonce.as_bytes(), nonce.as_bytes()) {
        bail!("the ID token was not issued for this sign-in (nonce)");
    }
    let email = claims
        .email()
        .context("the ID token has no e-mail address")?;
    if !claims.email_verified() {
        bail!("the identity provider has not verified {email}");
    }
    Ok(email.to_string())
}

pub async fn logout(
    State(m): State<Arc<Monitor>>,
    headers: HeaderMap,
    axum::Form(f): axum::Form<LogoutForm>,
) -> Response {
    let ex = &m.explorer;
    if !ex.csrf_ok(&headers, &f.csrf) {
        return fail(
            StatusCode::FORBIDDEN,
            "the form has expired: reload the page".into(),
        );
    }
    let mut r = Redirect::to("/").into_response();
    r.headers_mut()
        .append(header::SET_COOKIE, ex.cookie(SESSION, "", 0));
    r
}

#[derive(serde::Deserialize)]
pub struct LogoutForm {
    csrf: String,
}
