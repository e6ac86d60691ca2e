//! The OIDC identity provider's domain, free of I/O: proof-key checks (RFC 7636), which
//! redirect URIs a public client may use (RFC 8252 loopback rules, as Dex applies them),
//! ID tokens (OpenID Connect Core §2) signed through the shared [`sigstack_crypto::Signer`],
//! and the JWKS (RFC 7517) and discovery (OpenID Connect Discovery §3) documents.

pub mod discovery;
pub mod jwt;
pub mod pkce;
pub mod redirect;
