//! The webhook's HTTP API (`/validate`, `/mutate`, probes) and its OpenAPI document
//! (committed as `openapi/admission.json`).

use super::decide::OnFailure;
use super::{App, review};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sigstack admission webhook",
        description = "Kubernetes admission webhook served by `sigstackd admission` (over TLS): \
                       the API server sends AdmissionReview v1 requests for Pods and the \
                       workloads that make them; images are admitted only if they satisfy the \
                       ClusterImagePolicy documents (sigstore policy-controller's format).",
        license(name = "Apache-2.0")
    ),
    paths(validate, mutate, healthz, readyz)
)]
pub struct AdmissionApi;

pub fn document() -> String {
    AdmissionApi::openapi().to_pretty_json().unwrap_or_default() + "\n"
}

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/validate", post(validate))
        .route("/validations", post(validate))
        .route("/mutate", post(mutate))
        .route("/mutations", post(mutate))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The largest AdmissionReview read (the API server's objects are at most ~1.5 MiB).
const MAX_REVIEW: usize = 4 << 20;

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "probes",
    responses((status = 200, content_type = "text/plain", body = String, description = "ok")))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the policies and the trust root are loaded (the webhook serves only then).
#[utoipa::path(get, path = "/readyz", tag = "probes",
    responses((status = 200, content_type = "text/plain", body = String, description = "ok")))]
pub async fn readyz() -> &'static str {
    "ok\n"
}

async fn read_review(body: axum::body::Body) -> Result<(Value, review::Request), Response> {
    let bytes = sigstack_http::serve::read_body(body, MAX_REVIEW)
        .await
        .map_err(|e| sigstack_http::ApiError::from(e).into_response())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON: {e}\n"),
        )
            .into_response()
    })?;
    let r = review::request(&v)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response())?;
    Ok((v, r))
}

/// Validates the images of a Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job,
/// ReplicationController or CronJob (init, regular and ephemeral containers) against the
/// ClusterImagePolicy documents whose globs match them. The answer allows, denies with a
/// 403 status naming each failing container and why, or allows with warnings (`warn`
/// mode, no-match-policy warn, or registry failures admitted with
/// `--registry-failure open`). Other kinds, and operations other than CREATE and
/// UPDATE, are allowed.
#[utoipa::path(post, path = "/validate", tag = "admission",
    request_body(content = Object, content_type = "application/json", description = "AdmissionReview (admission.k8s.io/v1) with a request"),
    responses(
        (status = 200, content_type = "application/json", body = Object, description = "AdmissionReview with the response: uid, allowed, status (when denied), warnings"),
        (status = 400, description = "The body is not JSON or not an admission.k8s.io/v1 AdmissionReview request with a uid"),
        (status = 408, description = "The body did not arrive in time"),
        (status = 413, description = "The body is larger than 4 MiB")))]
pub async fn validate(State(app): State<Arc<App>>, body: axum::body::Body) -> Response {
    let (_, req) = match read_review(body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let answer = match tokio::time::timeout(app.timeout, decide_review(&app, &req)).await {
        Ok(a) => a,
        Err(_) => {
            let why = format!(
                "the images of {} {}/{} could not be checked within {} s",
                req.kind,
                req.namespace,
                req.name,
                app.timeout.as_secs()
            );
            match app.engine.on_failure {
                OnFailure::Closed => review::Answer::deny(format!("{why} (failing closed)")),
                OnFailure::Open => review::Answer {
                    warnings: vec![format!("{why}: admitted unchecked")],
                    ..review::Answer::allow()
                },
            }
        }
    };
    tracing::info!(
        uid = %req.uid, kind = %req.kind, namespace = %req.namespace, name = %req.name,
        allowed = answer.allowed, warnings = answer.warnings.len(), "admission review"
    );
    Json(answer.review(&req.uid)).into_response()
}

async fn decide_review(app: &App, req: &review::Request) -> review::Answer {
    if !matches!(req.operation.as_str(), "CREATE" | "UPDATE") {
        return review::Answer::allow();
    }
    let Some(images) = review::images(&req.kind, &req.object) else {
        return review::Answer::allow();
    };
    let verdicts =
        futures::future::join_all(images.iter().map(|i| app.engine.check(&i.image))).await;
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for (at, v) in images.iter().zip(&verdicts) {
        // an image named by tag: say which digest was checked
        let at_digest = v
            .digest
            .as_deref()
            .filter(|_| !at.image.contains('@'))
            .map(|d| format!(" (checked at {d})"))
            .unwrap_or_default();
        errors.extend(
            v.errors
                .iter()
                .map(|e| format!("{}: {e}{at_digest}", at.field)),
        );
        warnings.extend(v.warnings.iter().map(|w| format!("{}: {w}", at.field)));
    }
    warnings.dedup();
    if errors.is_empty() {
        return review::Answer {
            warnings,
            ..review::Answer::allow()
        };
    }
    review::Answer {
        warnings,
        ..review::Answer::deny(format!(
            "{} {}/{} is denied by image policy:\n{}",
            req.kind,
            req.namespace,
            req.name,
            errors
                .iter()
                .map(|e| format!("- {e}"))
                .collect::<Vec<_>>()
                .join("\n")
        ))
    }
}

/// Pins every container image named by tag to the digest the tag names now (a JSON
/// patch), as policy-controller's mutating webhook does; always allows (images that
/// cannot be resolved get a warning and are left to `/validate`).
#[utoipa::path(post, path = "/mutate", tag = "admission",
    request_body(content = Object, content_type = "application/json", description = "AdmissionReview (admission.k8s.io/v1) with a request"),
    responses(
        (status = 200, content_type = "application/json", body = Object, description = "AdmissionReview with the response: uid, allowed, patchType JSONPatch and patch (base64) when a tag was pinned"),
        (status = 400, description = "The body is not JSON or not an admission.k8s.io/v1 AdmissionReview request with a uid"),
        (status = 408, description = "The body did not arrive in time"),
        (status = 413, description = "The body is larger than 4 MiB")))]
pub async fn mutate(State(app): State<Arc<App>>, body: axum::body::Body) -> Response {
    let (_, req) = match read_review(body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut answer = review::Answer::allow();
    if matches!(req.operation.as_str(), "CREATE" | "UPDATE")
        && let Some(images) = review::images(&req.kind, &req.object)
    {
        let mut patch = Vec::new();
        for at in images.iter().filter(|i| !i.image.contains('@')) {
            match tokio::time::timeout(app.timeout, app.engine.resolve(&at.image)).await {
                Ok(Ok((_, digest))) => {
                    let name = untagged(&at.image);
                    patch.push(json!({"op": "replace", "path": at.pointer, "value": format!("{name}@{digest}")}));
                }
                Ok(Err(e)) => answer.warnings.push(format!("{}: {e}", at.field)),
                Err(_) => answer
                    .warnings
                    .push(format!("{}: resolving {} timed out", at.field, at.image)),
            }
        }
        if !patch.is_empty() {
            answer.patch = Some(Value::Array(patch));
        }
    }
    Json(answer.review(&req.uid)).into_response()
}

/// `registry/repo:tag` without its tag (a port's colon is not a tag's).
fn untagged(image: &str) -> &str {
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(c) => &image[..last_slash + c],
        None => image,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tags_come_off_but_ports_stay() {
        assert_eq!(
            super::untagged("127.0.0.1:5000/app:v1"),
            "127.0.0.1:5000/app"
        );
        assert_eq!(super::untagged("127.0.0.1:5000/app"), "127.0.0.1:5000/app");
        assert_eq!(super::untagged("nginx:1.27"), "nginx");
    }
}
