//! The Kubernetes side: `AdmissionReview` (`admission.k8s.io/v1`) requests and answers,
//! and the container images of the objects that run them — Pods, the workloads whose
//! pod template makes Pods (Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs,
//! ReplicationControllers) and CronJobs — with init and ephemeral containers.

use serde_json::{Value, json};

/// One container image of an object, with where it is written (a JSON pointer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageAt {
    pub pointer: String,
    pub image: String,
    /// `spec.containers[0]`-style, for messages.
    pub field: String,
}

/// The pod spec's pointer in an object of `kind`, if it runs containers.
fn pod_spec_pointer(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Pod" => "/spec",
        "Deployment"
        | "ReplicaSet"
        | "StatefulSet"
        | "DaemonSet"
        | "Job"
        | "ReplicationController" => "/spec/template/spec",
        "CronJob" => "/spec/jobTemplate/spec/template/spec",
        _ => return None,
    })
}

/// Every container image of `object` (of `kind`); `None` when the kind runs none.
pub fn images(kind: &str, object: &Value) -> Option<Vec<ImageAt>> {
    let spec_at = pod_spec_pointer(kind)?;
    let spec = object.pointer(spec_at)?;
    let mut out = Vec::new();
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for (i, c) in spec[list].as_array().into_iter().flatten().enumerate() {
            if let Some(image) = c["image"].as_str() {
                out.push(ImageAt {
                    pointer: format!("{spec_at}/{list}/{i}/image"),
                    image: image.to_string(),
                    field: format!(
                        "{}.{list}[{i}]",
                        spec_at.trim_start_matches('/').replace('/', ".")
                    ),
                });
            }
        }
    }
    Some(out)
}

/// What a review asks, read leniently enough to answer every well-formed one.
pub struct Request {
    pub uid: String,
    pub kind: String,
    pub operation: String,
    pub namespace: String,
    pub name: String,
    pub object: Value,
}

/// Reads an `AdmissionReview` request; the error says what is wrong with it.
pub fn request(review: &Value) -> Result<Request, String> {
    if review["apiVersion"] != "admission.k8s.io/v1" || review["kind"] != "AdmissionReview" {
        return Err(format!(
            "not an admission.k8s.io/v1 AdmissionReview (apiVersion {}, kind {})",
            review["apiVersion"], review["kind"]
        ));
    }
    let r = &review["request"];
    let uid = r["uid"]
        .as_str()
        .filter(|u| !u.is_empty())
        .ok_or("the review has no request.uid")?;
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    Ok(Request {
        uid: uid.to_string(),
        kind: s(&r["kind"]["kind"]),
        operation: s(&r["operation"]),
        namespace: s(&r["namespace"]),
        name: r["name"]
            .as_str()
            .or_else(|| r["object"]["metadata"]["name"].as_str())
            .or_else(|| r["object"]["metadata"]["generateName"].as_str())
            .unwrap_or_default()
            .to_string(),
        object: r["object"].clone(),
    })
}

/// The answer to review `uid`.
pub struct Answer {
    pub allowed: bool,
    pub message: String,
    pub warnings: Vec<String>,
    /// A JSON patch (mutation).
    pub patch: Option<Value>,
}

impl Answer {
    pub fn allow() -> Self {
        Self {
            allowed: true,
            message: String::new(),
            warnings: Vec::new(),
            patch: None,
        }
    }

    pub fn deny(message: String) -> Self {
        Self {
            allowed: false,
            message,
            warnings: Vec::new(),
            patch: None,
        }
    }

    /// The `AdmissionReview` response.
    pub fn review(self, uid: &str) -> Value {
        use base64::Engine;
        let mut response = json!({"uid": uid, "allowed": self.allowed});
        if !self.allowed {
            response["status"] = json!({
                "code": 403,
                "reason": "Forbidden",
                "message": self.message,
            });
        }
        if !self.warnings.is_empty() {
            // the API server shows each warning to the user; it takes at most 120
            // characters of ASCII each is recommended, but longer ones are kept whole
            response["warnings"] = json!(self.warnings);
        }
        if let Some(p) = self.patch {
            response["patchType"] = json!("JSONPatch");
            response["patch"] =
                json!(base64::engine::general_purpose::STANDARD.encode(p.to_string().as_bytes()));
        }
        json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": response,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_container_of_every_workload_kind_is_found() {
        let pod = json!({"spec": {
            "initContainers": [{"name": "i", "image": "reg/init:1"}],
            "containers": [{"name": "a", "image": "reg/a:1"}, {"name": "b", "image": "reg/b@sha256:00"}],
            "ephemeralContainers": [{"name": "e", "image": "reg/debug:1"}],
        }});
        let got = images("Pod", &pod).expect("pod");
        assert_eq!(
            got.iter().map(|i| i.image.as_str()).collect::<Vec<_>>(),
            ["reg/init:1", "reg/a:1", "reg/b@sha256:00", "reg/debug:1"]
        );
        assert_eq!(got[0].pointer, "/spec/initContainers/0/image");
        assert_eq!(got[2].field, "spec.containers[1]");
        let cron = json!({"spec": {"jobTemplate": {"spec": {"template": pod}}}});
        let got = images("CronJob", &cron).expect("cronjob");
        assert_eq!(
            got[1].pointer,
            "/spec/jobTemplate/spec/template/spec/containers/0/image"
        );
        let dep = json!({"spec": {"template": pod}});
        assert_eq!(images("Deployment", &dep).expect("dep").len(), 4);
        assert!(images("ConfigMap", &json!({})).is_none());
    }
}
