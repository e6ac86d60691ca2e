//! `sigstackd oidc` over real HTTP: the authorization code flow with PKCE through the
//! login page (CSRF cookie, loopback redirect, state), the device flow, the OAuth errors
//! each misuse gets, login throttling, and tokens our CA turns into certificates.

use crate::castack::{CaStack, Proc, csr};
use crate::support::*;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sigstack_crypto::{Curve, FileSigner, Signer};
use sigstack_oidc::pkce;
use std::time::Duration;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CB: &str = "http://localhost:38111/auth/callback";

struct Idp {
    proc: Proc,
    http: reqwest::Client,
    /// The issuer's stderr (its log).
    log: std::path::PathBuf,
}

async fn start_idp() -> Idp {
    start_idp_with(&temp_dir("oidc"), "", free_port()).await
}

/// Writes a 32-character secret to `dir/name`; returns (path, secret).
fn secret_file(dir: &std::path::Path, name: &str) -> (String, String) {
    let secret = sigstack_oidc::grants::handle(rand::random())[..32].to_string();
    let p = dir.join(name);
    crate::support::write_private(&p, format!("{secret}\n"));
    (p.display().to_string(), secret)
}

/// Our issuer on `port` with user alice and `extra` configuration (TOML tables).
async fn start_idp_with(dir: &std::path::Path, extra: &str, port: u16) -> Idp {
    let key = FileSigner::generate(Curve::P256);
    let key_path = dir.join("oidc.pem");
    crate::support::write_private(&key_path, key.to_pkcs8_pem().expect("pem"));
    // the hash an operator would make with `sigstackd oidc hash-password`
    let hash = {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sigstackd"))
            .args(["oidc", "hash-password"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sigstackd oidc hash-password");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"correct horse\n")
            .expect("write");
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .expect("utf8")
            .trim()
            .to_string()
    };
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let cfg = dir.join("oidc.toml");
    std::fs::write(
        &cfg,
        format!(
            "signing_key = {:?}\n[[users]]\nusername = \"alice\"\nemail = \"alice@example.test\"\npassword_hash = {hash:?}\n{extra}",
            key_path.display().to_string()
        ),
    )
    .expect("config");
    let proc = Proc::spawn_on(port, "oidc", "SIGSTACK_OIDC_", &[], dir, Some(&cfg)).await;
    install_tls();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    Idp {
        proc,
        http,
        log: dir.join("oidc.log"),
    }
}

pub fn hidden(html: &str, name: &str) -> String {
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
        // a page that asks for a password may not be framed or run anything
        let header = |n: &str| {
            r.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        if status == 200 {
            assert_eq!(header("x-frame-options"), "DENY");
            let csp = header("content-security-policy");
            assert!(
                csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
                "{csp}"
            );
        }
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
        code_from(&loc)
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
    // control characters in a loopback redirect: a 400, never a 500 or a header injection
    for bad in [
        "http://localhost:4000/cb\r\nSet-Cookie: x=y",
        "http://localhost:4000/cb\u{1}",
    ] {
        let (st, _, _, html) = idp.login_page(&idp.auth_query(bad)).await;
        assert_eq!(st, 400, "{bad:?}: {html}");
    }
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
    // an operator finds them in the log at WARN, with the user and address, never the
    // password
    let log = std::fs::read_to_string(&idp.log).expect("the issuer's log");
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("failed sign-in"))
        .collect();
    assert!(failed.len() >= 5, "{log}");
    assert!(
        failed
            .iter()
            .all(|l| l.contains("WARN") && l.contains("alice") && l.contains("127.0.0.1")),
        "{failed:?}"
    );
    assert!(
        !log.contains("correct horse") && !log.contains("wrong\""),
        "no password in the log"
    );
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
    // one address cannot fill the table of pending authorizations and lock everyone out:
    // past its share it is told to slow down (others are counted apart; unit-tested)
    let mut statuses = Vec::new();
    for _ in 0..sigstack_oidc::grants::MAX_PENDING_PER_OWNER + 1 {
        let r = idp
            .http
            .post(idp.url("/device/code"))
            .form(&[("client_id", "sigstore"), ("scope", "openid email")])
            .send()
            .await
            .expect("post");
        statuses.push(r.status().as_u16());
    }
    assert!(
        statuses[..sigstack_oidc::grants::MAX_PENDING_PER_OWNER - 1]
            .iter()
            .all(|s| *s == 200)
    );
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
}

/// The payload of a compact JWS, unverified.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("b64"),
    )
    .expect("json")
}

/// The leaf certificate of a signingCert answer, and its OIDC issuer extension (Fulcio's
/// 1.3.6.1.4.1.57264.1.8, a DER UTF8String).
fn leaf_and_issuer(res: &Value) -> (sigstack_crypto::Certificate, String) {
    let pem = res["signedCertificateEmbeddedSct"]["chain"]["certificates"][0]
        .as_str()
        .expect("leaf");
    let der = sigstack_crypto::pem::decode_all(pem.as_bytes())
        .expect("pem")
        .remove(0)
        .der;
    let cert = sigstack_crypto::Certificate::from_der(&der).expect("cert");
    let ext = cert
        .extension("1.3.6.1.4.1.57264.1.8")
        .expect("issuer extension")
        .to_vec();
    assert_eq!(ext[0], 0x0c, "UTF8String");
    (cert, String::from_utf8(ext[2..].to_vec()).expect("utf8"))
}

/// A query parameter of a URL, as sent (still percent-encoded).
fn query_param(url: &str, name: &str) -> String {
    url.split_once('?')
        .expect("a query")
        .1
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {name} in {url}"))
        .to_string()
}

fn code_from(location: &str) -> String {
    query_param(location, "code")
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string()
}

pub async fn workload_and_confidential_clients() {
    let dir = temp_dir("oidc-ci");
    let (ci_secret_path, ci_secret) = secret_file(&dir, "ci.secret");
    let (web_secret_path, web_secret) = secret_file(&dir, "web.secret");
    // Fulcio's rule for `uri` issuers: the subjects live on the issuer's host
    let port = free_port();
    let job = format!("http://127.0.0.1:{port}/jobs/org/app/build");
    let extra = format!(
        "[[clients]]\nid = \"ci-build\"\nsecret_file = {ci_secret_path:?}\n\
         [clients.workload]\nsubject = {job:?}\naudiences = [\"sigstore\", \"other\"]\n\
         claims = {{ repository = \"org/app\" }}\n\
         [[clients]]\nid = \"web\"\nsecret_file = {web_secret_path:?}\nconsent = true\nredirect_uris = [\"https://app.example.test/cb\"]\n"
    );
    let idp = start_idp_with(&dir, &extra, port).await;
    let workload_iss = idp.url("/workload");
    let ca = CaStack::start_with_issuers(
        Backend::Sqlite,
        &format!(
            "  {workload_iss:?}:\n    issuer-url: {workload_iss:?}\n    client-id: sigstore\n    type: uri\n    subject-domain: {:?}\n",
            idp.proc.url
        ),
    )
    .await;

    // the workload issuer has its own discovery document, with our keys
    let (st, d) = get_json(
        &idp.http,
        &idp.url("/workload/.well-known/openid-configuration"),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(d["issuer"], workload_iss.as_str());
    assert_eq!(d["jwks_uri"], idp.url("/keys").as_str());

    // client credentials, HTTP Basic: a workload token naming the job, no e-mail
    let cc = |id: &str, secret: &str, form: Vec<(&'static str, String)>| {
        idp.http
            .post(idp.url("/token"))
            .basic_auth(id, Some(secret))
            .form(&form)
            .send()
    };
    let grant = || vec![("grant_type", "client_credentials".to_string())];
    let r = cc("ci-build", &ci_secret, grant()).await.expect("post");
    assert_eq!(r.status(), 200);
    let tok: Value = r.json().await.expect("json");
    let token = tok["id_token"].as_str().expect("id_token");
    let c = claims_of(token);
    assert_eq!(c["iss"], workload_iss.as_str());
    assert_eq!(c["sub"], job.as_str());
    // the relying party, and the client itself (OIDC clients such as cosign's
    // client-credentials flow require their own id among the audiences)
    assert_eq!(c["aud"], serde_json::json!(["sigstore", "ci-build"]));
    assert_eq!(c["repository"], "org/app");
    assert!(
        c.get("email").is_none(),
        "no e-mail in a workload token: {c}"
    );
    assert_eq!(c["federated_claims"]["connector_id"], workload_iss.as_str());
    // the CA certifies the job as a URI identity, issuer = the workload issuer
    let res = certificate_for(&ca, token).await;
    let (leaf, issuer) = leaf_and_issuer(&res);
    assert_eq!(issuer, workload_iss);
    assert_eq!(leaf.subjects(), vec![job.clone()]);
    // client_secret_post works too; a second allowed audience may be asked for
    let mut form = grant();
    form.extend([
        ("client_id", "ci-build".to_string()),
        ("client_secret", ci_secret.clone()),
        ("audience", "other".into()),
    ]);
    let (st, tok) = idp
        .token(
            &form
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
        )
        .await;
    assert_eq!(st, 200, "{tok}");
    assert_eq!(
        claims_of(tok["id_token"].as_str().expect("t"))["aud"],
        serde_json::json!(["other", "ci-build"])
    );
    // refusals
    let r = cc("ci-build", "wrong-secret-wrong-secret", grant())
        .await
        .expect("post");
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    assert_eq!(
        r.json::<Value>().await.expect("j")["error"],
        "invalid_client"
    );
    let (st, e) = idp
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "ci-build"),
        ])
        .await;
    assert_eq!(
        (st, e["error"].as_str()),
        (401, Some("invalid_client")),
        "a confidential client must authenticate"
    );
    let mut form = grant();
    form.push(("audience", "elsewhere".into()));
    let r = cc("ci-build", &ci_secret, form).await.expect("post");
    assert_eq!(
        r.json::<Value>().await.expect("j")["error"],
        "invalid_target"
    );
    let mut form = grant();
    form.push(("client_secret", ci_secret.clone()));
    let r = cc("ci-build", &ci_secret, form).await.expect("post");
    assert_eq!(
        (
            r.status().as_u16(),
            r.json::<Value>().await.expect("j")["error"].clone()
        ),
        (400, json!("invalid_request")),
        "two authentication methods at once"
    );
    let (st, e) = idp
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "sigstore"),
        ])
        .await;
    assert_eq!(
        (st, e["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
    let r = cc("web", &web_secret, grant()).await.expect("post");
    assert_eq!(
        r.json::<Value>().await.expect("j")["error"],
        "unauthorized_client",
        "a person's client mints no workload tokens"
    );

    // consent: the confidential web client asks the person first
    const WEB_CB: &str = "https://app.example.test/cb";
    let mut q = idp.auth_query(WEB_CB);
    q[0].1 = "web".into();
    let consent_page = || async {
        let r = idp.login(&q, "alice", "correct horse", None).await;
        assert_eq!(r.status(), 200, "a consent page, not a redirect");
        let cookie = r.headers()["set-cookie"]
            .to_str()
            .expect("c")
            .split(';')
            .next()
            .expect("c")
            .to_string();
        let html = r.text().await.expect("html");
        assert!(html.contains("Allow access"), "{html}");
        (cookie, hidden(&html, "consent_id"), hidden(&html, "csrf"))
    };
    let answer = |cookie: String, id: String, csrf: String, action: &'static str| {
        idp.http
            .post(idp.url("/auth/consent"))
            .header("cookie", cookie)
            .form(&[
                ("consent_id", id),
                ("csrf", csrf),
                ("action", action.to_string()),
            ])
            .send()
    };
    let (cookie, id, csrf) = consent_page().await;
    let r = answer(cookie, id, csrf, "deny").await.expect("post");
    assert_eq!(r.status(), 303);
    let loc = location(&r);
    assert!(
        loc.starts_with(WEB_CB) && loc.contains("error=access_denied") && loc.contains("state="),
        "{loc}"
    );
    let (_, id, csrf) = consent_page().await;
    let r = answer(
        "sigstack_csrf=forged".into(),
        id.clone(),
        csrf.clone(),
        "approve",
    )
    .await
    .expect("post");
    assert_eq!(r.status(), 403, "consent is CSRF-protected too");
    let (cookie, id, csrf) = consent_page().await;
    let r = answer(cookie.clone(), id.clone(), csrf.clone(), "approve")
        .await
        .expect("post");
    assert_eq!(r.status(), 303);
    let code = code_from(&location(&r));
    let r = answer(cookie, id, csrf, "approve").await.expect("post");
    assert_eq!(r.status(), 400, "a consent is answered once");
    // the web client redeems its code with its secret (HTTP Basic, no client_id in form)
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", WEB_CB),
        ("code_verifier", VERIFIER),
    ];
    let r = idp
        .http
        .post(idp.url("/token"))
        .basic_auth("web", Some("not-the-secret-at-all"))
        .form(&redeem)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 401);
    let r = idp
        .http
        .post(idp.url("/token"))
        .basic_auth("web", Some(&web_secret))
        .form(&redeem)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    let tok: Value = r.json().await.expect("json");
    let c = claims_of(tok["id_token"].as_str().expect("t"));
    assert_eq!(
        (c["aud"].as_str(), c["email"].as_str()),
        (Some("web"), Some("alice@example.test"))
    );

    // the public client as sigstore-python calls it: HTTP Basic `sigstore:` (empty secret)
    let code = idp.code().await;
    let r = idp
        .http
        .post(idp.url("/token"))
        .basic_auth("sigstore", Some(""))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
}

pub async fn upstream_connector_passes_the_upstream_identity_on() {
    // two instances of our issuer: "upstream" (a corporate IdP) and "downstream", which
    // offers it as a connector; each must know the other's URL before it starts
    let (up_port, down_port) = (free_port(), free_port());
    let (up_url, down_url) = (
        format!("http://127.0.0.1:{up_port}"),
        format!("http://127.0.0.1:{down_port}"),
    );
    let up_dir = temp_dir("oidc-up");
    let (secret_path, _) = secret_file(&up_dir, "downstream.secret");
    let upstream = start_idp_with(
        &up_dir,
        &format!(
            "[[clients]]\nid = \"downstream\"\nsecret_file = {secret_path:?}\nredirect_uris = [\"{down_url}/callback\"]\n"
        ),
        up_port,
    )
    .await;
    let down_dir = temp_dir("oidc-down");
    let wrong = secret_file(&down_dir, "wrong.secret").0;
    let idp = start_idp_with(
        &down_dir,
        &format!(
            "[[connectors]]\nid = \"corp\"\nname = \"Corp SSO\"\nissuer = {up_url:?}\nclient_id = \"downstream\"\nclient_secret_file = {secret_path:?}\n\
             [[connectors]]\nid = \"misconfigured\"\nname = \"Wrong secret\"\nissuer = {up_url:?}\nclient_id = \"downstream\"\nclient_secret_file = {wrong:?}\n\
             [[connectors]]\nid = \"down\"\nname = \"Unreachable\"\nissuer = \"http://127.0.0.1:1\"\nclient_id = \"x\"\n"
        ),
        down_port,
    )
    .await;
    assert_eq!(idp.proc.url, down_url);
    // the CA names the upstream as the certificate's issuer, as for Dex
    let ca = CaStack::start_with_issuers(
        Backend::Sqlite,
        &format!(
            "  {down_url:?}:\n    issuer-url: {down_url:?}\n    client-id: sigstore\n    type: email\n    issuer-claim: $.federated_claims.connector_id\n"
        ),
    )
    .await;

    // the login page offers the connector
    let q = idp.auth_query(CB);
    let (st, _, _, html) = idp.login_page(&q).await;
    assert_eq!(st, 200);
    assert!(html.contains("Continue with Corp SSO"), "{html}");
    // choosing it sends the browser to the upstream's authorization endpoint
    let start = |id: &'static str| {
        idp.http
            .get(idp.url(&format!("/auth/connector/{id}")))
            .query(&q)
            .send()
    };
    let r = start("corp").await.expect("get");
    assert_eq!(r.status(), 303);
    let up_auth = location(&r);
    assert!(up_auth.starts_with(&format!("{up_url}/auth?")), "{up_auth}");
    assert!(up_auth.contains("code_challenge_method=S256") && up_auth.contains("nonce="));
    // the person signs in at the upstream, which sends them back to our callback
    let r = upstream.http.get(&up_auth).send().await.expect("get");
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("c")
        .split(';')
        .next()
        .expect("c")
        .to_string();
    let html = r.text().await.expect("html");
    let mut form: Vec<(&str, String)> = [
        "client_id",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        "csrf",
    ]
    .iter()
    .map(|k| (*k, hidden(&html, k)))
    .collect();
    form.push(("username", "alice".into()));
    form.push(("password", "correct horse".into()));
    let r = upstream
        .http
        .post(upstream.url("/auth"))
        .header("cookie", cookie)
        .form(&form)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 303);
    let callback = location(&r);
    assert!(
        callback.starts_with(&format!("{down_url}/callback?")),
        "{callback}"
    );
    // our callback redeems the upstream code and hands the client its own code
    let r = idp.http.get(&callback).send().await.expect("get");
    assert_eq!(r.status(), 303);
    let back = location(&r);
    assert!(
        back.starts_with(CB) && back.contains("state=st%26te%3D1"),
        "{back}"
    );
    let r = idp.http.get(&callback).send().await.expect("get");
    assert_eq!(r.status(), 400, "a callback is used once");
    let (st, tok) = idp
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", code_from(&back).as_str()),
            ("client_id", "sigstore"),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(st, 200, "{tok}");
    let token = tok["id_token"].as_str().expect("token");
    let c = claims_of(token);
    assert_eq!(c["iss"], down_url.as_str(), "the token is ours");
    assert_eq!(c["email"], "alice@example.test");
    assert_eq!(
        c["nonce"], "n0nce",
        "the client's nonce, not the upstream's"
    );
    assert_eq!(
        c["federated_claims"]["connector_id"],
        up_url.as_str(),
        "federated_claims names the upstream"
    );
    assert_eq!(c["federated_claims"]["user_id"], "alice");
    let res = certificate_for(&ca, token).await;
    let (leaf, issuer) = leaf_and_issuer(&res);
    assert_eq!(issuer, up_url, "the certificate's issuer is the upstream");
    assert_eq!(leaf.subjects(), vec!["alice@example.test"]);

    // the upstream refuses us (wrong client secret): the client gets access_denied
    let r = start("misconfigured").await.expect("get");
    let state = query_param(&location(&r), "state");
    let r = idp
        .http
        .get(idp.url("/callback"))
        .query(&[("code", "whatever"), ("state", state.as_str())])
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 303);
    let loc = location(&r);
    assert!(
        loc.starts_with(CB) && loc.contains("error=access_denied"),
        "{loc}"
    );
    // the person cancels at the upstream
    let r = start("corp").await.expect("get");
    let state = query_param(&location(&r), "state");
    let r = idp
        .http
        .get(idp.url("/callback"))
        .query(&[("error", "access_denied"), ("state", state.as_str())])
        .send()
        .await
        .expect("get");
    assert!(location(&r).contains("error=access_denied"));
    // a forged state, an unknown connector, an unreachable upstream
    let r = idp
        .http
        .get(idp.url("/callback"))
        .query(&[("code", "x"), ("state", "forged")])
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 400);
    assert_eq!(start("nope").await.expect("get").status(), 404);
    let r = start("down").await.expect("get");
    assert!(
        location(&r).contains("error=temporarily_unavailable"),
        "{}",
        location(&r)
    );
}

impl Idp {
    /// A token for alice through the code flow.
    async fn code_flow_token(&self) -> String {
        let code = self.code().await;
        let (st, tok) = self
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("client_id", "sigstore"),
                ("redirect_uri", CB),
                ("code_verifier", VERIFIER),
            ])
            .await;
        assert_eq!(st, 200, "{tok}");
        tok["id_token"].as_str().expect("id_token").to_string()
    }

    async fn userinfo_status(&self, token: &str) -> u16 {
        self.http
            .get(self.url("/userinfo"))
            .bearer_auth(token)
            .send()
            .await
            .expect("get")
            .status()
            .as_u16()
    }
}

pub async fn signing_key_rotation_keeps_issued_tokens_valid() {
    let dir = temp_dir("oidc-rotate");
    let port = free_port();
    let idp = start_idp_with(&dir, "", port).await;
    let ca = CaStack::start_trusting(Backend::Sqlite, &[&idp.proc.url]).await;
    let old = idp.code_flow_token().await;
    certificate_for(&ca, &old).await;

    // rotate to an RSA key (RS256), still publishing the old ECDSA key
    let old_key = FileSigner::load(&dir.join("oidc.pem")).expect("old key");
    std::fs::write(dir.join("old.pub.pem"), old_key.public_key().to_pem()).expect("pub");
    crate::support::write_private(
        &dir.join("rsa.pem"),
        sigstack_crypto::RsaFileSigner::generate_pem().expect("rsa"),
    );
    let cfg = std::fs::read_to_string(dir.join("oidc.toml")).expect("cfg");
    let rotated = cfg.replacen(
        "signing_key = ",
        &format!(
            "previous_keys = [{:?}]\nsigning_key = {:?}\n# was: ",
            dir.join("old.pub.pem").display().to_string(),
            dir.join("rsa.pem").display().to_string()
        ),
        1,
    );
    assert_ne!(rotated, cfg);
    std::fs::write(dir.join("oidc.toml"), &rotated).expect("cfg");
    let Idp { proc, http, log } = idp;
    drop(proc);
    let proc = Proc::spawn_on(
        port,
        "oidc",
        "SIGSTACK_OIDC_",
        &[],
        &dir,
        Some(&dir.join("oidc.toml")),
    )
    .await;
    let idp = Idp { proc, http, log };
    let (_, jwks) = get_json(&idp.http, &idp.url("/keys")).await;
    let kinds: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kty"].as_str().expect("kty"))
        .collect();
    assert_eq!(
        kinds,
        vec!["RSA", "EC"],
        "new key first, old key still published"
    );
    let (_, d) = get_json(&idp.http, &idp.url("/.well-known/openid-configuration")).await;
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        json!(["RS256", "ES256"])
    );
    let new = idp.code_flow_token().await;
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(new.split('.').next().expect("header"))
            .expect("b64"),
    )
    .expect("json");
    assert_eq!(header["alg"], "RS256");
    // the CA learns the new key and algorithm (unknown kid → rediscovery and refetch,
    // at most once per 10 s per issuer) and still takes the old token
    tokio::time::sleep(Duration::from_secs(10)).await;
    certificate_for(&ca, &new).await;
    certificate_for(&ca, &old).await;
    assert_eq!(idp.userinfo_status(&old).await, 200);
    assert_eq!(idp.userinfo_status(&new).await, 200);

    // the old key retired: its tokens are refused
    std::fs::write(
        dir.join("oidc.toml"),
        rotated.replacen("previous_keys = [", "previous_keys = [] # [", 1),
    )
    .expect("cfg");
    let Idp { proc, http, log } = idp;
    drop(proc);
    let proc = Proc::spawn_on(
        port,
        "oidc",
        "SIGSTACK_OIDC_",
        &[],
        &dir,
        Some(&dir.join("oidc.toml")),
    )
    .await;
    let idp = Idp { proc, http, log };
    assert_eq!(idp.userinfo_status(&old).await, 401);
    assert_eq!(idp.userinfo_status(&new).await, 200);
}
