//! The monitor in `docker-compose.yml` against the binary and the stack beside it: its
//! command parses, its configuration (deploy/compose/monitor.toml, mounted from the
//! repository) loads, each log it follows is a compose service on the port that service
//! publishes, named in the trusted root under the URL `init` is given for it; the trusted
//! root is in the config volume, the database in a volume of its own that the image makes
//! for its user, and the health check is its own probe.

use super::{mounts, parses, repo, strings, yaml};
use crate::monitor::config::{LogKind, MonitorConfig};
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::path::Path;

#[test]
fn compose_monitor_follows_the_stack() {
    let mut doc = yaml("docker-compose.yml").remove(0);
    doc.apply_merge().expect("merge keys");
    let services = doc["services"].as_mapping().expect("services").clone();
    let svc = |n: &str| {
        services
            .get(n)
            .unwrap_or_else(|| panic!("no service {n}"))
            .clone()
    };
    let monitor = svc("monitor");
    let command = strings(&monitor["command"]);
    assert_eq!(command[0], "monitor");
    parses(&command, "compose monitor");
    let config = &command[command
        .iter()
        .position(|a| a == "--config")
        .expect("--config")
        + 1];
    let mounted = mounts(&monitor);
    let (source, _, ro) = mounted
        .iter()
        .find(|(_, at, _)| at == config)
        .unwrap_or_else(|| panic!("compose monitor: nothing mounted at {config}"));
    assert!(*ro, "the monitor's configuration is mounted read-only");
    let file = repo().join(source.trim_start_matches("./"));
    let cfg = MonitorConfig::load(Some(&file)).expect("the compose monitor configuration loads");

    let init = svc("init");
    let env: BTreeMap<String, String> =
        serde_yaml::from_value(init["environment"].clone()).expect("init environment");
    let init_url = |service: &str| -> String {
        let var = format!(
            "SIGSTACK_INIT_{}_URL",
            service.to_uppercase().replace('-', "_")
        );
        env.get(&var)
            .cloned()
            .unwrap_or_else(|| panic!("init sets no {var}"))
    };
    let kinds = [("rekor-v1", "log"), ("tiles", "log-v2"), ("ct", "ctlog")];
    assert_eq!(
        cfg.logs.len(),
        kinds.len(),
        "the monitor follows the stack's three logs"
    );
    for l in &cfg.logs {
        let kind = match l.kind {
            LogKind::RekorV1 => "rekor-v1",
            LogKind::Tiles => "tiles",
            LogKind::Ct => "ct",
        };
        let service = kinds.iter().find(|(k, _)| *k == kind).expect("kind").1;
        let s = svc(service);
        let published = strings(&s["ports"]);
        let inner_port = published[0].rsplit(':').next().expect("port").to_string();
        assert_eq!(
            l.url,
            format!("http://{service}:{inner_port}"),
            "monitor log {}: the {service} service inside the network",
            l.name
        );
        assert_eq!(
            l.trusted_url.as_deref(),
            Some(init_url(service).as_str()),
            "monitor log {}: the URL init puts in the trusted root",
            l.name
        );
    }
    // the trusted root is in the config volume init writes
    let init_args = strings(&init["command"]);
    let dir = &init_args[init_args.iter().position(|a| a == "--dir").expect("--dir") + 1];
    assert_eq!(
        cfg.trusted_root,
        Path::new(dir).join(crate::trust::TRUSTED_ROOT_FILE)
    );
    assert!(mounted.contains(&("config".into(), dir.clone(), true)));
    // its database lives in a volume of its own, which the image makes for its user
    let data = cfg
        .database
        .parent()
        .expect("database dir")
        .display()
        .to_string();
    let (volume, _, ro) = mounted
        .iter()
        .find(|(_, at, _)| *at == data)
        .unwrap_or_else(|| panic!("compose monitor: no volume at {data}"));
    assert!(!ro, "the monitor writes its database");
    assert!(
        doc["volumes"]
            .as_mapping()
            .is_some_and(|v| v.contains_key(Value::from(volume.as_str())))
    );
    let docker = std::fs::read_to_string(repo().join("deploy/Dockerfile")).expect("Dockerfile");
    assert!(
        docker.split_whitespace().any(|w| w == data),
        "the image makes {data} for its user"
    );
    // published at its listening port, on loopback; checked by its own probe
    let port = cfg.listen.port();
    assert_eq!(
        strings(&monitor["ports"]),
        vec![format!("127.0.0.1:{port}:{port}")]
    );
    let hc = strings(&monitor["healthcheck"]["test"]);
    assert_eq!(hc[..2], ["CMD".to_string(), "sigstackd".to_string()]);
    parses(&hc[2..], "compose monitor healthcheck");
    assert_eq!(hc[3], format!("http://127.0.0.1:{port}/healthz"));
}
