//! OpenID Connect identity-token validation, as Fulcio does it with go-oidc.
//!
//! * [`UnverifiedToken::parse`]: the JWS compact serialization (RFC 7515 §7.1, §5.2) of a
//!   JWT (RFC 7519 §7.2), at most [`MAX_TOKEN_LEN`] bytes, strict unpadded base64url.
//! * [`Jwks`] / [`Jwk`]: the issuer's public keys (RFC 7517 §4–5; RFC 7518 §6.2–6.3;
//!   RFC 8037 §2).
//! * [`verify`]: algorithm policy (RFC 7518 §3.1; never `none` or `HS*`, only what the
//!   issuer advertises), key selection by `kid` (RFC 7515 §4.1.4), signature, then the
//!   claims (RFC 7519 §4.1: `iss`, `aud`, `exp`, `nbf`, `iat`, plus `sub`) into [`Claims`].
//! * [`KeyCache`] / [`IssuerKeys`]: OpenID Connect Discovery 1.0 §4 and a JWKS cache with
//!   refresh on unknown `kid`, rate limited; all I/O goes through the daemon's
//!   [`KeyFetcher`], and the time is always a parameter.
//!
//! Differences from go-oidc: the leeway applies to `exp` as well as `nbf` (go-oidc: none
//! on `exp`, a fixed 5 minutes on `nbf`); `iat` in the future beyond the leeway is refused
//! (as sigstore-python does) and `sub` is required; Google's scheme-less issuer
//! `accounts.google.com` is not special-cased.

mod cache;
mod claims;
mod error;
mod jwk;
mod jws;
#[cfg(test)]
mod testkeys;
mod verify;

pub use cache::{CachePolicy, IssuerKeys, KeyCache, KeyFetcher};
pub use claims::Claims;
pub use error::{FetchError, TokenError};
pub use jwk::{Algorithm, Jwk, Jwks};
pub use jws::{JwsHeader, MAX_TOKEN_LEN, UnverifiedToken};
pub use verify::{DEFAULT_ALG, Expectations, check_algorithm, verify};
