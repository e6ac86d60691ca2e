//! The discovery document (OpenID Connect Discovery 1.0 §3) with Dex's endpoint layout
//! under the issuer URL, and what cosign and sigstore-python require of it: `S256` in
//! `code_challenge_methods_supported` and a `device_authorization_endpoint` (RFC 8628).

use serde_json::{Value, json};

/// Endpoint paths, relative to the issuer URL.
pub const AUTHORIZE: &str = "/auth";
pub const TOKEN: &str = "/token";
pub const KEYS: &str = "/keys";
pub const USERINFO: &str = "/userinfo";
pub const DEVICE_CODE: &str = "/device/code";
pub const DEVICE_VERIFY: &str = "/device";

/// `algs`: the JWS algorithms of the published keys, the current key's first.
pub fn document(issuer: &str, algs: &[&str]) -> Value {
    let iss = issuer.trim_end_matches('/');
    json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}{AUTHORIZE}"),
        "token_endpoint": format!("{iss}{TOKEN}"),
        "jwks_uri": format!("{iss}{KEYS}"),
        "userinfo_endpoint": format!("{iss}{USERINFO}"),
        "device_authorization_endpoint": format!("{iss}{DEVICE_CODE}"),
        "grant_types_supported": [
            "authorization_code",
            "urn:ietf:params:oauth:grant-type:device_code"
        ],
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "email", "profile", "federated:id"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "email", "email_verified", "name", "federated_claims"]
    })
}

/// The path, under our issuer URL, of the workload issuer: machine identities obtained
/// with the `client_credentials` grant carry `iss = <issuer>/workload`, so that the CA
/// can give them their own issuer type (`uri`, `username`, `ci-provider`), apart from
/// people's e-mail identities.
pub const WORKLOAD: &str = "/workload";

/// The workload issuer's discovery document: our keys and token endpoint, the
/// `client_credentials` grant only.
pub fn workload_document(issuer: &str, algs: &[&str]) -> Value {
    let iss = issuer.trim_end_matches('/');
    json!({
        "issuer": format!("{iss}{WORKLOAD}"),
        "token_endpoint": format!("{iss}{TOKEN}"),
        "jwks_uri": format!("{iss}{KEYS}"),
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "federated_claims"]
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn dex_layout_and_what_clients_need() {
        let d = super::document("http://127.0.0.1:5556/", &["ES256"]);
        assert_eq!(d["issuer"], "http://127.0.0.1:5556");
        assert_eq!(d["authorization_endpoint"], "http://127.0.0.1:5556/auth");
        assert_eq!(d["token_endpoint"], "http://127.0.0.1:5556/token");
        assert_eq!(d["jwks_uri"], "http://127.0.0.1:5556/keys");
        assert_eq!(
            d["device_authorization_endpoint"],
            "http://127.0.0.1:5556/device/code"
        );
        assert_eq!(
            d["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
    }
}
