//! The log explorer in Debian's Chromium (tests/interop/browser/explorer.mjs): search,
//! entry, log, TUF and alert pages, checked by axe-core and screenshotted (also at a
//! phone's width), sign-in with the stack's identity provider and a subscription whose
//! e-mail then arrives; search by file; and what the explorer refuses.

use crate::keyless::{dev_stack, workspace};
use crate::monitor_kit::*;
use crate::sigstack_cli::p;
use crate::support::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

pub async fn the_log_explorer_in_a_browser() {
    let dir = temp_dir("explorer");
    let stack_dir = dir.join("stack");
    let (_stack, stack) = dev_stack(&stack_dir, None);
    let s = |ptr: &str| stack_str(&stack, ptr);
    let mail = MailSink::start(&dir);
    // the explorer with sign-in and e-mail: the dev issuer's explorer client, whose
    // loopback redirect the issuer accepts on any port
    let listen = format!("127.0.0.1:{}", free_port());
    let cfg = monitor_config(
        &dir,
        &stack,
        &listen,
        &format!(
            "[smtp]\nserver = \"{m}\"\nfrom = \"monitor@example.org\"\n[explorer]\npublic_url = \"http://{listen}\"\ntuf_url = \"{tuf}\"\noidc_issuer = \"{oidc}\"\nclient_id = \"sigstack-explorer\"\nclient_secret_file = \"{secret}\"\n\n[[log]]\nname = \"rekor-v2\"\nkind = \"tiles\"\nurl = \"{v2}\"\n",
            m = mail.addr,
            tuf = s("/services/tuf/url"),
            oidc = s("/services/oidc/url"),
            secret = stack_dir.join("explorer-secret").display(),
            v2 = s("/services/log_v2/url"),
        ),
    );
    let (_monitor, url) = start_monitor(&dir, &cfg);
    let cli = sigstack_on(&dir, &stack);
    let artifact = dir.join("a.txt");
    std::fs::write(&artifact, b"explore me\n").expect("a");
    let me = s("/services/oidc/email");
    let dev = token(&stack_dir, &me);
    for extra in [vec![], vec!["--rekor-version", "1"]] {
        let b = dir.join(format!("b{}.json", extra.len()));
        let mut args = vec![
            "sign-blob",
            "--yes",
            "--identity-token",
            &dev,
            "--bundle",
            p(&b),
        ];
        args.extend(extra);
        args.push(p(&artifact));
        let o = cli.run(&args);
        assert!(o.ok(), "{o}");
    }
    verified(&url, "rekor-v2", 1).await;
    verified(&url, "rekor", 1).await;
    verified(&url, "ctlog", 2).await;

    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "Debian's Chromium is not at {chromium}: run ./scripts/test"
    );
    let shots = workspace().join("target/test-artifacts");
    let browser = workspace().join("tests/interop/browser");
    let out = Command::new("node")
        .arg(browser.join("explorer.mjs"))
        .arg(&url)
        .current_dir(&browser)
        .env("CHROMIUM", &chromium)
        .env("SIGSTACK_LOGIN_USER", s("/services/oidc/username"))
        .env(
            "SIGSTACK_LOGIN_PASSWORD_FILE",
            s("/services/oidc/password_file"),
        )
        .env("SIGSTACK_SEARCH", &me)
        .env("SIGSTACK_SCREENSHOTS", &shots)
        .output()
        .expect("node explorer.mjs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "explorer in Chromium: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the explorer run failed: {stdout}");
    let summary: Value = serde_json::from_str(stdout.trim()).expect("summary");
    assert!(
        summary["pages"].as_array().is_some_and(|p| p.len() >= 9),
        "{summary}"
    );
    let serious: Vec<&Value> = summary["violations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["impact"] == "serious" || v["impact"] == "critical")
        .collect();
    assert!(
        serious.is_empty(),
        "axe-core found serious violations: {serious:?}"
    );
    for page in ["home", "search", "entry", "entry-phone", "log", "tuf", "me"] {
        assert!(
            shots.join(format!("explorer-{page}.png")).exists(),
            "screenshot of {page}"
        );
    }

    // subscribed in the browser: the next entry in that name is e-mailed to its owner
    let b = dir.join("after.json");
    let o = cli.run(&[
        "sign-blob",
        "--yes",
        "--identity-token",
        &token(&stack_dir, &me),
        "--bundle",
        p(&b),
        p(&artifact),
    ]);
    assert!(o.ok(), "{o}");
    let index = bundle_index(&b);
    mail.wait(
        "to the subscriber",
        PATIENCE,
        &[
            &format!("To: <{me}>"),
            "Log: rekor-v2\n",
            &format!("Index: {index}\n"),
        ],
    );

    // a file finds the entries of its digest (the form's multipart upload)
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut form = b"--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\n".to_vec();
    form.extend(std::fs::read(&artifact).expect("a"));
    form.extend(b"\r\n--b0undary--\r\n");
    let r = c
        .post(format!("{url}/search/file"))
        .header("content-type", "multipart/form-data; boundary=b0undary")
        .body(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 303);
    let to = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let digest = hex::encode(sigstack_crypto::sha256(
        &std::fs::read(&artifact).expect("a"),
    ));
    assert_eq!(to, format!("/search?q=sha256:{digest}"));
    let page = text_of(&format!("{url}{to}")).await;
    assert!(
        page.contains("3 entries found"),
        "the three signatures of the file (v2, v1, v2): {page}"
    );
    let r = c
        .post(format!("{url}/search/file"))
        .body("x")
        .send()
        .await
        .expect("r");
    assert_eq!(r.status(), 400, "not a form");

    // the explorer refuses what it must
    let c = http();
    let r = c.get(format!("{url}/log/nope")).send().await.expect("r");
    assert_eq!(r.status(), 404);
    let r = c
        .get(format!("{url}/log/rekor-v2/entry/banana"))
        .send()
        .await
        .expect("r");
    assert_eq!(r.status(), 400);
    let r = c
        .get(format!("{url}/log/rekor-v2/entry/999999"))
        .send()
        .await
        .expect("r");
    assert_eq!(r.status(), 404);
    let r = c
        .post(format!("{url}/me/subscription"))
        .form(&[("csrf", "x"), ("action", "subscribe")])
        .send()
        .await
        .expect("r");
    assert_eq!(r.status(), 401, "no session, no subscription");
    let r = c
        .get(format!("{url}/login/callback?code=x&state=y"))
        .send()
        .await
        .expect("r");
    assert_eq!(r.status(), 400, "a callback without the sign-in's cookie");
    let r = c.get(format!("{url}/")).send().await.expect("r");
    let csp = r
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
}
