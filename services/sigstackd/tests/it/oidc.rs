//! `sigstackd oidc` over real HTTP: the authorization code flow with PKCE through the
//! login page (CSRF cookie, loopback redirect, state), the device flow, the OAuth errors
//! each misuse gets, login throttling, and tokens our CA turns into certificates.

use crate::castack::{CaStack, Proc, csr};
use crate::support::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sigstack_crypto::{Curve, FileSigner};
use sigstack_oidc::pkce;
use std::time::Duration;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CB: &str = "http://localhost:38111/auth/callback";

struct Idp {
    proc: Proc,
    http: reqwest::Client,
}

async fn start_idp() -> Idp {
    let dir = temp_dir("oidc");
    let key = FileSigner::generate(Curve::P256);
    let key_path = dir.join("oidc.pem");
    std::fs::write(&key_path, key.to_pkcs8_pem().expect("pem")).expect("key");
    let hash = sigstack_oidc::login::hash_password("correct horse", rand::random()).expect("hash");
    let cfg = dir.join("oidc.toml");
    std::fs::write(
        &cfg,
        format!(
            "signing_key = {:?}\n[[users]]\nusername = \"alice\"\nemail = \"alice@example.test\"\npassword_hash = {hash:?}\n",
            key_path.display().to_string()
        ),
    )
    .expect("config");
    let proc = Proc::spawn("oidc", "SIGSTACK_OIDC_", &[], &dir, Some(&cfg)).await;
    install_tls();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    Idp { proc, http }
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in page"))
        + marker.len();
    html[start..]
        .split('"')
        .next()
        .expect("value")
        .replace("&amp;", "&")
}

impl Idp {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.proc.url)
    }

    fn auth_query(&self, redirect: &str) -> Vec<(&'static str, String)> {
        vec![
            ("client_id", "sigstore".into()),
            ("redirect_uri", redirect.into()),
            ("response_type", "code".into()),
            ("scope", "openid email".into()),
            ("state", "st&te=1".into()),
            ("nonce", "n0nce".into()),
            ("code_challenge", pkce::challenge_of(VERIFIER)),
            ("code_challenge_method", "S256".into()),
        ]
    }

    /// GET the login page; returns (status, cookie, csrf, html).
    async fn login_page(&self, q: &[(&str, String)]) -> (u16, String, String, String) {
        let r = self
            .http
            .get(self.url("/auth"))
            .query(q)
            .send()
            .await
            .expect("get");
        let status = r.status().as_u16();
        let cookie = r
            .headers()
            .get("set-cookie")
            .map(|v| {
                v.to_str()
                    .expect("ascii")
                    .split(';')
                    .next()
                    .expect("pair")
                    .to_string()
            })
            .unwrap_or_default();
        let html = r.text().await.expect("html");
        let csrf = if status == 200 {
            hidden(&html, "csrf")
        } else {
            String::new()
        };
        (status, cookie, csrf, html)
    }

    /// Logs in through the page; returns the POST response.
    async fn login(
        &self,
        q: &[(&str, String)],
        user: &str,
        password: &str,
        cookie: Option<&str>,
    ) -> reqwest::Response {
        let (_, c, csrf, _) = self.login_page(q).await;
        let mut form: Vec<(&str, String)> = q.to_vec();
        form.push(("username", user.into()));
        form.push(("password", password.into()));
        form.push(("csrf", csrf));
        self.http
            .post(self.url("/auth"))
            .header("cookie", cookie.unwrap_or(&c))
            .form(&form)
            .send()
            .await
            .expect("post")
    }

    async fn code(&self) -> String {
        let r = self
            .login(&self.auth_query(CB), "alice", "correct horse", None)
            .await;
        assert_eq!(r.status(), 303);
        let loc = r.headers()["location"]
            .to_str()
            .expect("location")
            .to_string();
        assert!(loc.starts_with(CB), "{loc}");
        assert!(
            loc.contains("state=st%26te%3D1"),
            "state is returned: {loc}"
        );
        let code = loc
            .split("code=")
            .nth(1)
            .expect("code")
            .split('&')
            .next()
            .expect("code");
        code.to_string()
    }

    async fn token(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .http
            .post(self.url("/token"))
            .form(form)
            .send()
            .await
            .expect("post");
        let st = r.status().as_u16();
        (st, r.json().await.unwrap_or(Value::Null))
    }
}

async fn certificate_for(ca: &CaStack, token: &str) -> Value {
    let key = FileSigner::generate(Curve::P256);
    let body = json!({"certificateSigningRequest": STANDARD.encode(csr(&key, &key))});
    let (st, res) = ca.sign_cert(&body, Some(token)).await;
    assert_eq!(st, 200, "our CA accepts our issuer's token: {res}");
    res
}

pub async fn code_and_device_flows_yield_tokens_the_ca_accepts() {
    let idp = start_idp().await;
    let ca = CaStack::start_trusting(Backend::Sqlite, &[&idp.proc.url]).await;

    // discovery says what cosign needs
    let (st, d) = get_json(&idp.http, &idp.url("/.well-known/openid-configuration")).await;
    assert_eq!(st, 200);
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(d["issuer"], idp.proc.url.as_str());

    // the code flow
    let code = idp.code().await;
    let redeem = |code: String, verifier: &'static str, redirect: &'static str| {
        vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code),
            ("client_id", "sigstore".into()),
            ("redirect_uri", redirect.into()),
            ("code_verifier", verifier.into()),
        ]
    };
    let form = redeem(code.clone(), VERIFIER, CB);
    let refs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (st, tok) = idp.token(&refs).await;
    assert_eq!(st, 200, "{tok}");
    let id_token = tok["id_token"].as_str().expect("id_token").to_string();
    let r = idp
        .http
        .get(idp.url("/userinfo"))
        .bearer_auth(&id_token)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    let info: Value = r.json().await.expect("json");
    assert_eq!(
        (info["sub"].as_str(), info["email"].as_str()),
        (Some("alice"), Some("alice@example.test"))
    );
    let r = idp
        .http
        .get(idp.url("/userinfo"))
        .bearer_auth(format!("{id_token}x"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 401, "a tampered token is refused");
    let res = certificate_for(&ca, &id_token).await;
    let leaf = res["signedCertificateEmbeddedSct"]["chain"]["certificates"][0]
        .as_str()
        .expect("leaf");
    let leaf = sigstack_crypto::KeyMaterial::from_pem(leaf.as_bytes()).expect("pem");
    assert_eq!(leaf.subjects(), vec!["alice@example.test"]);
    // the code works once
    let (st, err) = idp.token(&refs).await;
    assert_eq!((st, err["error"].as_str()), (400, Some("invalid_grant")));
    // a wrong verifier burns a fresh code
    let form = redeem(idp.code().await, "x".repeat(43).leak(), CB);
    let refs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(idp.token(&refs).await.1["error"], "invalid_grant");
    // another redirect URI than the request's
    let form = redeem(
        idp.code().await,
        VERIFIER,
        "http://localhost:1/auth/callback",
    );
    let refs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(idp.token(&refs).await.1["error"], "invalid_grant");
    // unknown client and grant type
    let (st, e) = idp
        .token(&[("grant_type", "authorization_code"), ("client_id", "nope")])
        .await;
    assert_eq!((st, e["error"].as_str()), (401, Some("invalid_client")));
    let (_, e) = idp
        .token(&[("grant_type", "password"), ("client_id", "sigstore")])
        .await;
    assert_eq!(e["error"], "unsupported_grant_type");

    // requests that must not reach the login page, or must come back as errors
    let (st, _, _, html) = idp
        .login_page(&idp.auth_query("https://evil.example/cb"))
        .await;
    assert_eq!(st, 400, "no redirect to an unregistered URI: {html}");
    let mut q = idp.auth_query(CB);
    q.retain(|(k, _)| *k != "code_challenge");
    let r = idp
        .http
        .get(idp.url("/auth"))
        .query(&q)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 303);
    assert!(
        r.headers()["location"]
            .to_str()
            .expect("l")
            .contains("error=invalid_request")
    );
    // CSRF: a form without the page's cookie is refused
    let r = idp
        .login(
            &idp.auth_query(CB),
            "alice",
            "correct horse",
            Some("sigstack_csrf=forged"),
        )
        .await;
    assert_eq!(r.status(), 403);
    // wrong password: the page again, then throttled even with the right one
    for _ in 0..5 {
        let r = idp.login(&idp.auth_query(CB), "alice", "wrong", None).await;
        assert_eq!(r.status(), 401);
        assert!(
            r.text()
                .await
                .expect("html")
                .contains("invalid username or password")
        );
    }
    let r = idp
        .login(&idp.auth_query(CB), "alice", "correct horse", None)
        .await;
    assert_eq!(r.status(), 401);
    assert!(
        r.text()
            .await
            .expect("html")
            .contains("too many failed attempts")
    );
}

pub async fn device_flow_yields_a_token_the_ca_accepts() {
    let idp = start_idp().await;
    let ca = CaStack::start_trusting(Backend::Sqlite, &[&idp.proc.url]).await;
    let r = idp
        .http
        .post(idp.url("/device/code"))
        .form(&[("client_id", "sigstore"), ("scope", "openid email")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    let d: Value = r.json().await.expect("json");
    let device_code = d["device_code"].as_str().expect("device_code").to_string();
    let user_code = d["user_code"].as_str().expect("user_code").to_string();
    let poll_form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("client_id", "sigstore"),
        ("device_code", device_code.as_str()),
    ];
    let poll = || idp.token(&poll_form);
    assert_eq!(poll().await.1["error"], "authorization_pending");
    assert_eq!(poll().await.1["error"], "slow_down");
    // the user approves on the verification page
    let r = idp
        .http
        .get(d["verification_uri_complete"].as_str().expect("uri"))
        .send()
        .await
        .expect("get");
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("c")
        .split(';')
        .next()
        .expect("c")
        .to_string();
    let html = r.text().await.expect("html");
    let form = [
        ("user_code", hidden(&html, "user_code")),
        ("csrf", hidden(&html, "csrf")),
        ("username", "alice".into()),
        ("password", "correct horse".into()),
        ("action", "approve".into()),
    ];
    let r = idp
        .http
        .post(idp.url("/device"))
        .header("cookie", cookie)
        .form(&form)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    assert_eq!(hidden(&html, "user_code"), user_code);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (st, tok) = poll().await;
    assert_eq!(st, 200, "{tok}");
    certificate_for(&ca, tok["id_token"].as_str().expect("id_token")).await;
    assert_eq!(
        poll().await.1["error"],
        "invalid_grant",
        "a device code yields one token"
    );
}
