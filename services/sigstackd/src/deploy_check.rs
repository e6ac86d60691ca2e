//! The deployment files cannot rot: with no Docker engine or cluster here, every
//! command, flag, environment variable, port and probe in `docker-compose.yml`,
//! `deploy/k8s/sigstack.yaml` (and `admission.yaml`) and `deploy/Dockerfile` is checked against this binary —
//! its argument parser, its configuration keys, and the configuration `sigstackd init`
//! really writes from the compose file's own settings.

mod admission;
mod metrics;
mod monitor;

use crate::Cli;
use clap::CommandFactory;
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn yaml(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repo().join(path)).expect(path);
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).expect("YAML document"))
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .map(|x| match x {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    other => panic!("not a string: {other:?}"),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Parses `args` as the container would run them, with `env` in the environment.
fn parses(args: &[String], place: &str) {
    parses_with(args, &BTreeMap::new(), place)
}

fn parses_with(args: &[String], env: &BTreeMap<String, String>, place: &str) {
    let mut argv = vec!["sigstackd".to_string()];
    argv.extend(args.iter().cloned());
    let flags = arg_env(&args[0]);
    for (k, v) in env {
        if let Some(long) = flags.get(k) {
            argv.push(format!("--{long}"));
            argv.push(v.clone());
        }
    }
    if let Err(e) = <Cli as clap::Parser>::try_parse_from(&argv) {
        panic!(
            "{place}: `sigstackd {}` does not parse: {e}",
            args.join(" ")
        );
    }
}

/// The configuration keys of a service subcommand, as environment variables.
fn config_env(service: &str) -> Vec<String> {
    let (prefix, keys): (&str, &[&str]) = match service {
        "log" => ("SIGSTACK_LOG_", crate::log::config::KEYS),
        "log-v2" => ("SIGSTACK_LOG_V2_", crate::log_v2::config::KEYS),
        "ctlog" => ("SIGSTACK_CTLOG_", crate::ctlog::config::KEYS),
        "ca" => ("SIGSTACK_CA_", crate::ca::config::KEYS),
        "oidc" => ("SIGSTACK_OIDC_", crate::oidc::config::KEYS),
        "tuf" => ("SIGSTACK_TUF_", crate::tuf::config::KEYS),
        "tsa" => ("SIGSTACK_TSA_", crate::tsa::config::KEYS),
        _ => return Vec::new(),
    };
    keys.iter()
        .map(|k| format!("{prefix}{}", k.to_uppercase()))
        .collect()
}

/// Environment variables the subcommand's arguments read, with each one's long flag.
fn arg_env(sub: &str) -> BTreeMap<String, String> {
    let cmd = Cli::command();
    let sub = cmd
        .find_subcommand(sub)
        .unwrap_or_else(|| panic!("no subcommand {sub}"));
    sub.get_arguments()
        .filter_map(|a| {
            Some((
                a.get_env()?.to_string_lossy().into_owned(),
                a.get_long()?.to_string(),
            ))
        })
        .collect()
}

/// Every variable is one the subcommand reads (or the logging switches).
fn env_known(sub: &str, vars: &[String], place: &str) {
    let args = arg_env(sub);
    let keys = config_env(sub);
    for v in vars {
        // POD_IP: the downward API's pod address, substituted into the log's advertise_url
        let known = ["SIGSTACK_LOG", "SIGSTACK_LOG_FORMAT"].contains(&v.as_str())
            || (sub == "log" && v == "POD_IP")
            || args.contains_key(v)
            || keys.contains(v);
        assert!(known, "{place}: sigstackd {sub} reads no variable {v}");
    }
}

/// A compose service's volume mounts: (volume, path in the container, read-only).
fn mounts(s: &Value) -> Vec<(String, String, bool)> {
    strings(&s["volumes"])
        .iter()
        .map(|m| {
            let parts: Vec<&str> = m.split(':').collect();
            (
                parts[0].to_string(),
                parts[1].to_string(),
                parts.get(2) == Some(&"ro"),
            )
        })
        .collect()
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Every path a configuration file names (strings that are paths in `dir`, at any depth).
fn named_paths(v: &toml::Value, dir: &Path, out: &mut Vec<PathBuf>) {
    match v {
        toml::Value::String(s) if Path::new(s).starts_with(dir) => out.push(PathBuf::from(s)),
        toml::Value::Array(a) => a.iter().for_each(|x| named_paths(x, dir, out)),
        toml::Value::Table(t) => t.values().for_each(|x| named_paths(x, dir, out)),
        _ => {}
    }
}

/// Least privilege: a service sees, read-only, what its configuration names and public
/// material; no other service's key or secret, and nothing of the offline directory.
/// `at`: where init wrote here, and where the container sees it.
fn check_mounts(
    s: &Value,
    init_mounts: &[(String, String, bool)],
    (host, container): (&Path, &str),
    config: &str,
    place: &str,
) {
    let own = mounts(s);
    assert!(own.iter().all(|m| m.2), "{place}: every mount read-only");
    // only init's named volumes: no bind mounts of their host directories, no volumes_from
    assert!(
        s.get("volumes_from").is_none(),
        "{place}: volumes_from gives it every volume"
    );
    for m in &own {
        assert!(
            init_mounts.iter().any(|i| i.0 == m.0),
            "{place}: mounts {}, which is not one of init's volumes",
            m.0
        );
    }
    let in_container = |p: &Path| Path::new(container).join(p.strip_prefix(host).expect("inside"));
    // the volume a file is in: the deepest of init's mounts above it
    let volume = |p: &Path| {
        let c = in_container(p);
        init_mounts
            .iter()
            .filter(|m| c.starts_with(&m.1))
            .max_by_key(|m| m.1.len())
            .map(|m| (m.0.clone(), m.1.clone()))
            .unwrap_or_else(|| panic!("{} is in no volume of init's", c.display()))
    };
    // a volume mounted anywhere shows all its files; a file named in the configuration
    // resolves only where init wrote it
    let sees = |p: &Path| {
        let (v, _) = volume(p);
        own.iter().any(|m| m.0 == v)
    };
    let resolves = |p: &Path| {
        let (v, at) = volume(p);
        own.iter().any(|m| m.0 == v && m.1 == at)
    };
    let table: toml::Value = std::fs::read_to_string(host.join(config))
        .expect("config")
        .parse()
        .expect("toml");
    let mut named = Vec::new();
    named_paths(&table, host, &mut named);
    assert!(!named.is_empty(), "{place}: {config} names its files");
    for p in &named {
        assert!(
            resolves(p),
            "{place}: {} is named in {config} but not mounted",
            in_container(p).display()
        );
    }
    let mut all = Vec::new();
    files_under(host, &mut all);
    for p in all {
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let secret =
            text.contains("PRIVATE KEY") || ["ci-secret", "admin-password"].contains(&name);
        let (v, _) = volume(&p);
        if sees(&p) {
            assert!(
                v != "offline" && (!secret || named.contains(&p)),
                "{place} sees {}, which is not its own",
                in_container(&p).display()
            );
        }
        assert!(
            v != "config" || !secret,
            "{} is a secret in the volume every service mounts",
            in_container(&p).display()
        );
    }
}

fn port(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn compose_file_matches_the_binary() {
    let mut doc = yaml("docker-compose.yml").remove(0);
    doc.apply_merge().expect("merge keys");
    let services = doc["services"].as_mapping().expect("services").clone();
    let svc = |n: &str| {
        services
            .get(n)
            .unwrap_or_else(|| panic!("no service {n}"))
            .clone()
    };

    // init: its command and environment parse, and it really prepares a stack from them
    let init = svc("init");
    let mut args = strings(&init["command"]);
    assert_eq!(args[0], "init");
    let env: BTreeMap<String, String> =
        serde_yaml::from_value(init["environment"].clone()).expect("init environment");
    env_known(
        "init",
        &env.keys().cloned().collect::<Vec<_>>(),
        "compose init",
    );
    parses_with(&args, &env, "compose init");
    let dir_at = args.iter().position(|a| a == "--dir").expect("init --dir");
    let mount = args[dir_at + 1].clone();
    let init_mounts = mounts(&init);
    assert!(
        init_mounts.contains(&("config".into(), mount.clone(), false)),
        "init writes {mount}, which must be the config volume"
    );
    // a new named volume takes its ownership from the image: each mount point is made
    // there, for the user the containers run as
    let docker = std::fs::read_to_string(repo().join("deploy/Dockerfile")).expect("Dockerfile");
    let made = docker
        .split("install -d -o sigstack -g sigstack -m 0700")
        .nth(1)
        .expect("the Dockerfile makes the mount points")
        .split("\nCOPY")
        .next()
        .unwrap_or_default();
    for (volume, at, _) in &init_mounts {
        assert!(
            made.split_whitespace().any(|w| w == at),
            "volume {volume} is mounted at {at}, which the image does not make for its user"
        );
    }
    let env_flags = arg_env("init");
    for (k, v) in &env {
        args.push(format!("--{}", env_flags[k]));
        args.push(v.clone());
    }
    let tmp = std::env::temp_dir().join(format!("sigstack-compose-{:x}", rand::random::<u64>()));
    args[dir_at + 1] = tmp.display().to_string();
    // the same flags, on an embedded database (no PostgreSQL container here)
    let db = args
        .iter()
        .position(|a| a == "--database-url")
        .expect("database");
    args[db + 1] = format!("sqlite://{}", tmp.with_extension("db").display());
    // every other path under the config volume (an --offline-dir) moves with it; one
    // outside would be written on this machine, outside every volume: refused
    if let Some(o) = args.iter().position(|a| a == "--offline-dir") {
        let rel = Path::new(&args[o + 1])
            .strip_prefix(&mount)
            .unwrap_or_else(|_| panic!("compose init: --offline-dir outside {mount}"))
            .to_path_buf();
        args[o + 1] = tmp.join(rel).display().to_string();
    }
    let mut argv = vec!["sigstackd".to_string()];
    argv.extend(args);
    let cli = <Cli as clap::Parser>::try_parse_from(&argv).expect("init parses");
    let crate::Command::Init(init_args) = cli.command else {
        panic!("not init")
    };
    let urls = [
        ("log", init_args.log_url.clone()),
        ("log-v2", init_args.log_v2_url.clone()),
        ("ca", init_args.ca_url.clone()),
        ("ctlog", init_args.ctlog_url.clone()),
        ("oidc", init_args.oidc_url.clone()),
        ("tuf", init_args.tuf_url.clone()),
        ("tsa", init_args.tsa_url.clone()),
    ];
    crate::init::run(init_args)
        .await
        .expect("init from the compose settings");

    for (name, url) in urls {
        let s = svc(name);
        let place = format!("compose service {name}");
        let command = strings(&s["command"]);
        assert_eq!(command[0], name, "{place}: runs sigstackd {name}");
        parses(&command, &place);
        let config = &command[command
            .iter()
            .position(|a| a == "--config")
            .expect("--config")
            + 1];
        let file = Path::new(config)
            .file_name()
            .expect("file")
            .to_string_lossy()
            .into_owned();
        assert_eq!(
            Path::new(config).parent(),
            Some(Path::new(&mount)),
            "{place}: --config must be in the directory init writes"
        );
        assert!(
            mounts(&s).contains(&("config".into(), mount.clone(), true)),
            "{place}: mounts the config volume read-only at {mount}"
        );
        check_mounts(&s, &init_mounts, (&tmp, &mount), &file, &place);
        assert_eq!(
            s["depends_on"]["init"]["condition"].as_str(),
            Some("service_completed_successfully"),
            "{place}: waits for init"
        );
        let vars: Vec<String> = s["environment"]
            .as_mapping()
            .map(|m| {
                m.keys()
                    .filter_map(|k| k.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        env_known(name, &vars, &place);
        // the port the service really listens on (from the file init wrote) is published
        // at the port its URL names
        let written: toml::Table = std::fs::read_to_string(tmp.join(&file))
            .expect("config written by init")
            .parse()
            .expect("toml");
        let listen: std::net::SocketAddr = written["listen"]
            .as_str()
            .expect("listen")
            .parse()
            .expect("addr");
        assert_eq!(
            listen.ip().to_string(),
            "0.0.0.0",
            "{place}: listens beyond loopback"
        );
        let ports = strings(&s["ports"]);
        assert_eq!(
            ports,
            vec![format!("127.0.0.1:{}:{}", port(&url), listen.port())],
            "{place}: publish the listening port at the URL's port, on loopback only"
        );
        // the health check is our own probe of our readiness endpoint
        let hc = strings(&s["healthcheck"]["test"]);
        assert_eq!(
            hc[..2],
            ["CMD".to_string(), "sigstackd".to_string()],
            "{place}"
        );
        parses(&hc[2..], &format!("{place} healthcheck"));
        assert_eq!(
            hc[2..],
            [
                "probe".to_string(),
                format!("http://127.0.0.1:{}/readyz", listen.port())
            ],
            "{place}: health check"
        );
    }
    // the CA reaches the CT log and the issuer inside the network
    let ca: toml::Table = std::fs::read_to_string(tmp.join("ca.toml"))
        .expect("ca.toml")
        .parse()
        .expect("toml");
    assert_eq!(ca["ctlog_url"].as_str(), Some("http://ctlog:6962"));
    assert_eq!(
        ca["issuer_routes"]["http://localhost:5556"].as_str(),
        Some("http://oidc:5556")
    );
    assert!(services.contains_key("postgres"));
    let _ = std::fs::remove_dir_all(&tmp);
    let _ = std::fs::remove_file(tmp.with_extension("db"));
}

#[test]
fn kubernetes_manifests_match_the_binary() {
    let docs = yaml("deploy/k8s/sigstack.yaml");
    let mut seen = Vec::new();
    for d in &docs {
        let kind = d["kind"].as_str().unwrap_or_default();
        if kind != "Deployment" && kind != "Job" {
            continue;
        }
        let spec = &d["spec"]["template"]["spec"];
        for c in spec["containers"].as_sequence().expect("containers") {
            let args = strings(&c["args"]);
            let place = format!("{kind} {}", d["metadata"]["name"].as_str().unwrap_or("?"));
            let sub = args[0].clone();
            let vars: Vec<String> = c["env"]
                .as_sequence()
                .map(|e| {
                    e.iter()
                        .filter_map(|v| v["name"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            // values from Secrets are not known here: any value stands in
            let env = vars
                .iter()
                .map(|v| (v.clone(), "from-a-secret".to_string()))
                .collect();
            parses_with(&args, &env, &place);
            env_known(&sub, &vars, &place);
            if kind == "Job" {
                continue;
            }
            let standard = crate::init::STANDARD_PORTS
                .iter()
                .find(|(n, _)| *n == sub)
                .map(|p| p.1)
                .expect("a service");
            assert_eq!(
                c["ports"][0]["containerPort"].as_u64(),
                Some(standard.into()),
                "{place}"
            );
            assert_eq!(
                c["readinessProbe"]["httpGet"]["path"].as_str(),
                Some("/readyz"),
                "{place}"
            );
            assert_eq!(
                c["readinessProbe"]["httpGet"]["port"].as_u64(),
                Some(standard.into()),
                "{place}"
            );
            assert_eq!(
                c["livenessProbe"]["httpGet"]["path"].as_str(),
                Some("/healthz"),
                "{place}"
            );
            assert_eq!(
                args[1..],
                ["--config".to_string(), format!("/etc/sigstack/{sub}.toml")],
                "{place}"
            );
            // least privilege: each service mounts only its own keys
            let secrets: Vec<&str> = spec["volumes"]
                .as_sequence()
                .expect("volumes")
                .iter()
                .filter_map(|v| v["secret"]["secretName"].as_str())
                .filter(|n| n.starts_with("sigstack-keys"))
                .collect();
            assert_eq!(secrets, [format!("sigstack-keys-{sub}")], "{place}");
            // at the path init's configuration names: keys/<service>/
            let keys_at: Vec<&str> = c["volumeMounts"]
                .as_sequence()
                .expect("volumeMounts")
                .iter()
                .filter(|m| m["name"].as_str() == Some("keys"))
                .filter_map(|m| m["mountPath"].as_str())
                .collect();
            assert_eq!(keys_at, [format!("/etc/sigstack/keys/{sub}")], "{place}");
            let replicas = d["spec"]["replicas"].as_u64().expect("replicas");
            match sub.as_str() {
                // replicas elect one sequencer: each must advertise its own address
                "log" => {
                    assert!(replicas >= 2, "{place}: replicated");
                    let env = c["env"].as_sequence().expect("env");
                    let advertised = env
                        .iter()
                        .find(|e| e["name"].as_str() == Some("SIGSTACK_LOG_ADVERTISE_URL"))
                        .and_then(|e| e["value"].as_str())
                        .expect("each log replica advertises itself");
                    assert_eq!(
                        advertised,
                        format!("http://$(POD_IP):{standard}"),
                        "{place}"
                    );
                    let pod_ip = env
                        .iter()
                        .position(|e| e["name"].as_str() == Some("POD_IP"));
                    let adv = env
                        .iter()
                        .position(|e| e["name"].as_str() == Some("SIGSTACK_LOG_ADVERTISE_URL"));
                    assert!(
                        pod_ip.is_some() && pod_ip < adv,
                        "{place}: POD_IP is defined before it is substituted"
                    );
                }
                // one sequencer; pending sign-ins are in memory
                "log-v2" | "ctlog" | "oidc" => {
                    assert_eq!(replicas, 1, "{place}");
                    assert_eq!(
                        d["spec"]["strategy"]["type"].as_str(),
                        Some("Recreate"),
                        "{place}"
                    );
                }
                _ => assert!(replicas >= 2, "{place}: stateless, replicated"),
            }
            seen.push(sub);
        }
    }
    seen.sort();
    assert_eq!(seen, ["ca", "ctlog", "log", "log-v2", "oidc", "tsa", "tuf"]);
}

#[test]
fn dockerfile_builds_both_binaries_with_the_pinned_toolchain() {
    let docker = std::fs::read_to_string(repo().join("deploy/Dockerfile")).expect("Dockerfile");
    let toolchain = std::fs::read_to_string(repo().join("rust-toolchain.toml")).expect("toolchain");
    let channel = toolchain
        .lines()
        .find_map(|l| l.strip_prefix("channel = \""))
        .and_then(|l| l.split('"').next())
        .expect("channel");
    let minor: String = channel.split('.').take(2).collect::<Vec<_>>().join(".");
    assert!(
        docker.contains(&format!("FROM rust:{minor}")),
        "the build stage uses Rust {minor}"
    );
    assert!(docker.contains("-p sigstackd -p sigstack"));
    assert!(docker.contains("ENTRYPOINT [\"sigstackd\"]"));
    assert!(docker.contains("USER 10001"), "runs unprivileged");
}
