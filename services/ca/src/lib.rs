//! The certificate authority's domain, without I/O: which OIDC issuers are trusted and
//! how (a Fulcio-shaped issuer configuration), how an identity token is checked
//! (JWS signature against the issuer's JWKS, issuer, audience, times), how its claims
//! become a principal (SAN, challenge name and Fulcio extensions), and how the
//! code-signing certificate and its CT precertificate are built.

pub mod cert;
pub mod config;
pub mod principal;
pub mod token;
