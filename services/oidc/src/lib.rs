//! The OIDC identity provider's domain, free of I/O: proof-key checks (RFC 7636), which
//! redirect URIs a public client may use (RFC 8252 loopback rules, as Dex applies them),
//! ID tokens (OpenID Connect Core §2) signed through the shared [`sigstack_crypto::Signer`],
//! the JWKS (RFC 7517) and discovery (OpenID Connect Discovery §3) documents, pending
//! authorization and device grants (RFC 6749, RFC 8628), and local users with argon2id
//! passwords and a failed-login limiter.

pub mod discovery;
pub mod grants;
pub mod jwt;
pub mod login;
pub mod pkce;
pub mod redirect;
