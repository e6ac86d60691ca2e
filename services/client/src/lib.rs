//! The sigstack client's library: Sigstore bundles and their verification (Rekor v1 and
//! v2 entries, RFC 3161 timestamps), signing, trust from TUF, identity tokens, cosign's
//! key files and the transparency log's client side.

pub mod attached;
pub mod bundle;
pub mod keys;
pub mod layout;
pub mod note;
pub mod oidc;
pub mod policy;
pub mod registry;
pub mod rekor;
pub mod rekor_v2;
pub mod sign;
pub mod tiles;
pub mod trust;
pub mod tsa;
pub mod verify;

/// Key references (`pkcs11:`, `awskms://`, `env://`, files) shared with the servers.
pub use sigstack_keys as keyref;
