//! `deploy/k8s/admission.yaml` against the binary: the webhook's command and environment
//! parse, its probes and ports are the ones it serves, both webhook configurations call
//! paths of its API on its Service, namespaces opt in with policy-controller's label, every
//! kind the webhook reads a pod template from is sent to it, the CRD is policy-controller's,
//! and the policy copier writes into the directory the webhook reads, with the RBAC to list
//! the policies.

use super::{env_known, parses_with, strings, yaml};
use serde_yaml::Value;
use std::collections::BTreeMap;

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect()
}

#[test]
fn admission_manifests_match_the_binary() {
    let docs = yaml("deploy/k8s/admission.yaml");
    let deployment = of_kind(&docs, "Deployment")[0];
    let spec = &deployment["spec"]["template"]["spec"];
    let containers = spec["containers"].as_sequence().expect("containers");
    let hook = &containers[0];
    let args = strings(&hook["args"]);
    assert_eq!(args[0], "admission");
    let vars: Vec<String> = hook["env"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str().map(String::from))
        .collect();
    let env: BTreeMap<String, String> = hook["env"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|v| {
            Some((
                v["name"].as_str()?.to_string(),
                v["value"].as_str()?.to_string(),
            ))
        })
        .collect();
    parses_with(&args, &env, "the admission Deployment");
    env_known(
        "admission",
        &vars
            .into_iter()
            .filter(|v| v != "TUF_ROOT")
            .collect::<Vec<_>>(),
        "the admission Deployment",
    );
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {args:?}"))
    };
    let port: u64 = flag("--listen")
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    assert_eq!(hook["ports"][0]["containerPort"].as_u64(), Some(port));
    let api = crate::admission::document();
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        let p = &hook[probe]["httpGet"];
        assert_eq!(p["path"].as_str(), Some(path), "{probe}");
        assert_eq!(p["port"].as_u64(), Some(port), "{probe}");
        assert_eq!(
            p["scheme"].as_str(),
            Some("HTTPS"),
            "{probe}: the webhook serves TLS only"
        );
        assert!(api.contains(&format!("\"{path}\"")), "{path} is served");
    }
    // each path a volume is mounted at, by volume name
    let mounted = |c: &Value, name: &str| -> String {
        c["volumeMounts"]
            .as_sequence()
            .into_iter()
            .flatten()
            .find(|m| m["name"].as_str() == Some(name))
            .and_then(|m| m["mountPath"].as_str())
            .unwrap_or_else(|| panic!("{name} is not mounted"))
            .to_string()
    };
    assert!(flag("--tls-cert").starts_with(&mounted(hook, "tls")));
    assert!(flag("--tls-key").starts_with(&mounted(hook, "tls")));
    assert!(flag("--tuf-root").starts_with(&mounted(hook, "tuf-root")));
    // the copier writes ClusterImagePolicy objects where the webhook reads its policies,
    // under a name the webhook reads (.yaml) after writing a name it skips
    assert_eq!(flag("--policies"), mounted(hook, "policies"));
    let copier = &containers[1];
    let script = strings(&copier["command"]).join(" ");
    let dir = mounted(copier, "policies");
    assert!(script.contains("kubectl get clusterimagepolicies.policy.sigstore.dev -o yaml"));
    assert!(
        script.contains(&format!("mv {dir}/.cluster.yaml.new {dir}/cluster.yaml")),
        "{script}"
    );
    let rules = &of_kind(&docs, "ClusterRole")[0]["rules"][0];
    assert_eq!(strings(&rules["resources"]), ["clusterimagepolicies"]);
    assert!(strings(&rules["verbs"]).contains(&"list".to_string()));
    let sa = spec["serviceAccountName"]
        .as_str()
        .expect("service account");
    let binding = of_kind(&docs, "ClusterRoleBinding")[0];
    assert_eq!(binding["subjects"][0]["name"].as_str(), Some(sa));
    // the Service in front, and the configurations calling it
    let service = of_kind(&docs, "Service")[0];
    let ns = service["metadata"]["namespace"]
        .as_str()
        .expect("namespace");
    let svc_port = service["spec"]["ports"][0]["port"].as_u64().expect("port");
    assert_eq!(
        service["spec"]["ports"][0]["targetPort"].as_u64(),
        Some(port)
    );
    for (kind, path) in [
        ("ValidatingWebhookConfiguration", "/validate"),
        ("MutatingWebhookConfiguration", "/mutate"),
    ] {
        let w = &of_kind(&docs, kind)[0]["webhooks"][0];
        let s = &w["clientConfig"]["service"];
        assert_eq!(
            s["name"].as_str(),
            service["metadata"]["name"].as_str(),
            "{kind}"
        );
        assert_eq!(s["namespace"].as_str(), Some(ns), "{kind}");
        assert_eq!(s["port"].as_u64(), Some(svc_port), "{kind}");
        assert_eq!(s["path"].as_str(), Some(path), "{kind}");
        assert!(api.contains(&format!("\"{path}\"")), "{path} is served");
        assert_eq!(strings(&w["admissionReviewVersions"]), ["v1"], "{kind}");
        let sel = &w["namespaceSelector"]["matchExpressions"][0];
        assert_eq!(
            sel["key"].as_str(),
            Some("policy.sigstore.dev/include"),
            "{kind}"
        );
        assert_eq!(strings(&sel["values"]), ["true"], "{kind}");
        let resources: Vec<String> = w["rules"]
            .as_sequence()
            .into_iter()
            .flatten()
            .flat_map(|r| strings(&r["resources"]))
            .collect();
        for r in [
            "pods",
            "deployments",
            "replicasets",
            "statefulsets",
            "daemonsets",
            "jobs",
            "cronjobs",
            "replicationcontrollers",
        ] {
            assert!(resources.contains(&r.to_string()), "{kind} sends {r}");
        }
        // the API server waits longer than the webhook takes to answer a failure
        let timeout = w["timeoutSeconds"].as_u64().expect("timeoutSeconds");
        assert!(
            timeout > 20,
            "{kind}: above the webhook's --timeout-seconds default"
        );
    }
    let crd = of_kind(&docs, "CustomResourceDefinition")[0];
    assert_eq!(crd["spec"]["group"].as_str(), Some("policy.sigstore.dev"));
    assert_eq!(
        crd["spec"]["names"]["kind"].as_str(),
        Some("ClusterImagePolicy")
    );
    assert_eq!(crd["spec"]["scope"].as_str(), Some("Cluster"));
    let versions: Vec<&str> = crd["spec"]["versions"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(versions, ["v1beta1", "v1alpha1"]);
    // the certificate names the Service as the API server calls it
    let cert = of_kind(&docs, "Certificate")
        .into_iter()
        .find(|c| c["spec"]["secretName"].as_str() == Some("sigstack-admission-tls"))
        .expect("the webhook's certificate");
    let svc_name = service["metadata"]["name"].as_str().unwrap_or_default();
    assert!(strings(&cert["spec"]["dnsNames"]).contains(&format!("{svc_name}.{ns}.svc")));
    let tls_secret = spec["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|v| v["name"].as_str() == Some("tls"))
        .and_then(|v| v["secret"]["secretName"].as_str());
    assert_eq!(tls_secret, Some("sigstack-admission-tls"));
}
