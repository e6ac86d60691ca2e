//! Fulcio-compatible routes, served at the host root (sigstore-python drops any path in
//! the CA URL), and the CA's OpenAPI document (committed as `openapi/ca.json`).

use super::{CaService, KeyProof};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sigstack_ca::config::Configuration;
use sigstack_crypto::Certificate;
use sigstack_http::{ApiError, ApiJson};
use sigstack_types::fulcio::{
    CertificateChain, CreateSigningCertificateRequest, LegacySigningCertRequest,
    SignedCertificateEmbeddedSct, SigningCertificate, TrustBundle,
};
use std::sync::Arc;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sigstack certificate authority",
        description = "Fulcio-compatible CA (API v2, and the legacy v1) served by `sigstackd ca`. \
                       Certificates carry one embedded SCT from the stack's CT log.",
        license(name = "Apache-2.0")
    ),
    paths(
        create_signing_certificate,
        trust_bundle,
        configuration,
        legacy_signing_cert,
        legacy_root_cert,
        healthz,
        readyz,
        metrics
    ),
    components(schemas(
        CreateSigningCertificateRequest,
        SigningCertificate,
        TrustBundle,
        LegacySigningCertRequest,
        sigstack_types::fulcio::RpcStatus
    ))
)]
pub struct CaApi;

pub fn routes() -> Router<Arc<CaService>> {
    Router::new()
        .route("/api/v2/signingCert", post(create_signing_certificate))
        .route("/api/v2/trustBundle", get(trust_bundle))
        .route("/api/v2/configuration", get(configuration))
        .route("/api/v1/signingCert", post(legacy_signing_cert))
        .route("/api/v1/rootCert", get(legacy_root_cert))
        .route("/api/v1/trust/{file}", get(trust_file))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

pub fn document() -> String {
    CaApi::openapi().to_pretty_json().unwrap_or_default() + "\n"
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
        .filter(|t| !t.is_empty())
}

fn b64(field: &str, value: &str) -> Result<Vec<u8>, ApiError> {
    STANDARD
        .decode(value.trim())
        .map_err(|_| ApiError::bad_request(format!("{field} is not valid base64")))
}

/// Issues a code-signing certificate with an embedded SCT. The identity token comes in
/// `credentials.oidcIdentityToken` or `Authorization: Bearer`; the key with a CSR or a
/// public key and a proof of possession over the token's e-mail (or subject).
#[utoipa::path(post, path = "/api/v2/signingCert", tag = "ca",
    request_body = CreateSigningCertificateRequest,
    responses(
        (status = 415, description = "Not application/json"),
        (status = 200, description = "Chain, leaf first; always JSON, whatever Accept says", body = SigningCertificate),
        (status = 400, description = "Malformed request, key, CSR or proof of possession", body = sigstack_types::fulcio::RpcStatus),
        (status = 401, description = "Identity token missing, untrusted, invalid or expired", body = sigstack_types::fulcio::RpcStatus),
        (status = 413, description = "Body too large"),
        (status = 503, description = "Identity provider or CT log unreachable, or the CA key's token or KMS unavailable; retry"),
    ))]
pub async fn create_signing_certificate(
    State(svc): State<Arc<CaService>>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateSigningCertificateRequest>,
) -> Result<axum::Json<SigningCertificate>, ApiError> {
    let token = req
        .credentials
        .as_ref()
        .map(|c| c.oidc_identity_token.trim().to_string())
        .filter(|t| !t.is_empty())
        .or_else(|| bearer(&headers))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "no identity token: send credentials.oidcIdentityToken or Authorization: Bearer",
            )
        })?;
    let proof = match (&req.public_key_request, &req.certificate_signing_request) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "send either publicKeyRequest or certificateSigningRequest, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "publicKeyRequest or certificateSigningRequest is required",
            ));
        }
        (Some(pk), None) => KeyProof::Signature {
            key: pk.public_key.content.as_bytes().to_vec(),
            signature: b64(
                "publicKeyRequest.proofOfPossession",
                &pk.proof_of_possession,
            )?,
        },
        (None, Some(csr)) => KeyProof::Csr(b64("certificateSigningRequest", csr)?),
    };
    let certificates = svc.issue(&token, proof).await?;
    Ok(axum::Json(SigningCertificate {
        signed_certificate_embedded_sct: SignedCertificateEmbeddedSct {
            chain: CertificateChain { certificates },
        },
    }))
}

/// The CA chains (issuing certificate first, root last), without leaves.
#[utoipa::path(get, path = "/api/v2/trustBundle", tag = "ca", responses((status = 200, body = TrustBundle)))]
pub async fn trust_bundle(State(svc): State<Arc<CaService>>) -> axum::Json<TrustBundle> {
    axum::Json(TrustBundle {
        chains: vec![CertificateChain {
            certificates: svc.chain().iter().map(Certificate::to_pem).collect(),
        }],
    })
}

/// The OIDC issuers this CA accepts tokens from.
#[utoipa::path(get, path = "/api/v2/configuration", tag = "ca", responses((status = 200, body = Object)))]
pub async fn configuration(State(svc): State<Arc<CaService>>) -> axum::Json<Configuration> {
    axum::Json(svc.issuers.configuration())
}

/// Legacy issuance: token in `Authorization: Bearer` only; answers 201 with the PEM
/// chain (`application/pem-certificate-chain`), leaf first.
#[utoipa::path(post, path = "/api/v1/signingCert", tag = "ca-legacy",
    request_body = LegacySigningCertRequest,
    responses(
        (status = 415, description = "Not application/json"),
        (status = 201, description = "PEM chain, leaf first", content_type = "application/pem-certificate-chain", body = String),
        (status = 400, description = "Malformed request, key, CSR or proof of possession"),
        (status = 401, description = "Identity token missing or invalid"),
    ))]
pub async fn legacy_signing_cert(
    State(svc): State<Arc<CaService>>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LegacySigningCertRequest>,
) -> Result<Response, ApiError> {
    let token = bearer(&headers).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "no identity token: send Authorization: Bearer",
        )
    })?;
    let proof = match (&req.public_key, &req.certificate_signing_request) {
        (_, Some(csr)) => KeyProof::Csr(b64("certificateSigningRequest", csr)?),
        (Some(pk), None) => KeyProof::Signature {
            key: b64("publicKey.content", &pk.content)?,
            signature: b64(
                "signedEmailAddress",
                req.signed_email_address.as_deref().ok_or_else(|| {
                    ApiError::bad_request("signedEmailAddress is required with publicKey")
                })?,
            )?,
        },
        (None, None) => {
            return Err(ApiError::bad_request(
                "publicKey or certificateSigningRequest is required",
            ));
        }
    };
    let pems = svc.issue(&token, proof).await?;
    Ok((
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/pem-certificate-chain")],
        pems.concat(),
    )
        .into_response())
}

/// Every CA certificate, concatenated PEM.
#[utoipa::path(get, path = "/api/v1/rootCert", tag = "ca-legacy",
    responses((status = 200, content_type = "application/pem-certificate-chain", body = String)))]
pub async fn legacy_root_cert(State(svc): State<Arc<CaService>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/pem-certificate-chain")],
        svc.chain()
            .iter()
            .map(Certificate::to_pem)
            .collect::<String>(),
    )
        .into_response()
}

/// The stack's trust files for clients: `trusted_root.json`, `signing_config.v0.2.json`
/// and `trust_config.json` (a ClientTrustConfig, for sigstore-python `--trust-config`).
/// Served when the CA is configured with `tlog_url`; the TUF service publishes the same.
#[utoipa::path(get, path = "/api/v1/trust/{file}", tag = "trust",
    params(("file" = String, Path, description = "trusted_root.json, signing_config.v0.2.json or trust_config.json")),
    responses((status = 200, body = Object), (status = 404, description = "Unknown file, or trust export not configured"),
              (status = 503, description = "A log's key could not be fetched")))]
pub async fn trust_file(
    State(svc): State<Arc<CaService>>,
    axum::extract::Path(file): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let trust = svc.stack_trust().await.ok_or_else(|| {
        ApiError::not_found("trust export is not configured on this CA (set tlog_url)")
    })??;
    let body = match file.as_str() {
        crate::trust::TRUSTED_ROOT_FILE => serde_json::to_value(trust.trusted_root()),
        crate::trust::SIGNING_CONFIG_FILE => serde_json::to_value(trust.signing_config()),
        crate::trust::CLIENT_TRUST_CONFIG_FILE => serde_json::to_value(trust.client_trust_config()),
        other => return Err(ApiError::not_found(format!("no trust file {other:?}"))),
    }
    .map_err(ApiError::internal)?;
    Ok(axum::Json(body).into_response())
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "ca", responses((status = 200)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the issuing chain outlives a new certificate (10 minutes).
#[utoipa::path(get, path = "/readyz", tag = "ca", responses((status = 200), (status = 503)))]
pub async fn readyz(State(svc): State<Arc<CaService>>) -> Result<&'static str, ApiError> {
    if svc.chain_horizon() < 600 {
        return Err(ApiError::not_ready(if svc.chain_horizon() <= 0 {
            "the CA's certificate has expired: renew it with `sigstackd ca new-intermediate`"
        } else {
            "the CA's certificate expires within 10 minutes: renew it with `sigstackd ca new-intermediate`"
        }));
    }
    Ok("ok")
}

/// Prometheus metrics: HTTP requests by route and status with latencies, certificates
/// issued, and the issuing chain's expiry horizon.
#[utoipa::path(get, path = "/metrics", tag = "ca",
    responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(State(svc): State<Arc<CaService>>) -> Response {
    use sigstack_http::metrics::gauge;
    let mut out = String::new();
    svc.http.render(&mut out);
    gauge(
        &mut out,
        "sigstack_ca_certificates_issued_total",
        "counter",
        "Certificates issued since this process started.",
        &[("", svc.issued() as f64)],
    );
    gauge(
        &mut out,
        "sigstack_ca_chain_expires_in_seconds",
        "gauge",
        "Seconds until the issuing certificate expires.",
        &[("", svc.chain_horizon() as f64)],
    );
    sigstack_http::metrics::response(out)
}
