//! Probes an orchestrator can trust: with the database stopped, every service stays alive
//! (`/healthz` 200: a restart would not help), the services that need the database say
//! they are not ready (`/readyz` 503 with a JSON reason) and the others stay ready;
//! requests that need the database answer 503 with a JSON body, never 500; when the
//! database returns, everything is ready again without a restart.

use crate::client::p;
use crate::faults::PrivatePg;
use crate::keyless::run;
use crate::stack::{SERVICES, get_ok, start_all};
use crate::support::*;
use serde_json::Value;
use std::process::Command;

async fn get(url: &str) -> (u16, String) {
    let r = http().get(url).send().await.expect("the service answers");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

pub async fn probes_under_a_database_outage() {
    let pg = PrivatePg::start();
    let db = fresh_pg_database(&pg.admin_url()).await;
    let dir = temp_dir("probes");
    let etc = dir.join("etc");
    let urls: Vec<(&str, String)> = SERVICES
        .iter()
        .map(|s| (*s, format!("http://127.0.0.1:{}", free_port())))
        .collect();
    let url = |s: &str| urls.iter().find(|(n, _)| *n == s).expect(s).1.clone();
    let (ok, out) = run(Command::new(env!("CARGO_BIN_EXE_sigstackd"))
        .args(["init", "--dir", p(&etc), "--database-url", &db])
        .args(["--listen-host", "127.0.0.1", "--operator", "probes"])
        .args(["--log-url", &url("log"), "--ctlog-url", &url("ctlog")])
        .args(["--ca-url", &url("ca"), "--oidc-url", &url("oidc")])
        .args(["--tuf-url", &url("tuf"), "--tsa-url", &url("tsa")])
        .args(["--log-v2-url", &url("log-v2")]));
    assert!(ok, "init: {out}");
    let _procs = start_all(&etc, &dir, &urls);

    pg.stop();
    for s in SERVICES {
        let (st, body) = get(&format!("{}/healthz", url(s))).await;
        assert_eq!(st, 200, "{s} /healthz with the database down: {body}");
        let (st, body) = get(&format!("{}/readyz", url(s))).await;
        let needs_db = matches!(s, "log" | "log-v2" | "ctlog" | "tuf");
        if needs_db {
            assert_eq!(st, 503, "{s} /readyz with the database down: {body}");
            let v: Value = serde_json::from_str(&body).expect("a JSON reason");
            assert!(
                v["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("database")),
                "{s}: {v}"
            );
        } else {
            assert_eq!(st, 200, "{s} does not need the database: {body}");
        }
    }
    // requests that need the database: 503 with a JSON body, never 500
    for path in [
        format!("{}/api/v1/log", url("log")),
        format!("{}/api/v1/log/entries?logIndex=0", url("log")),
        format!("{}/ct/v1/get-sth", url("ctlog")),
    ] {
        let (st, body) = get(&path).await;
        assert_eq!(st, 503, "{path}: {body}");
        assert!(
            serde_json::from_str::<Value>(&body).is_ok(),
            "{path}: {body}"
        );
    }

    pg.start_again();
    for s in SERVICES {
        let u = format!("{}/readyz", url(s));
        let mut ready = false;
        for _ in 0..100 {
            if get_ok(&u) {
                ready = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(ready, "{s} is ready again once the database is back");
    }
    let (st, body) = get(&format!("{}/api/v1/log", url("log"))).await;
    assert_eq!(st, 200, "{body}");
}
