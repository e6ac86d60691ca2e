//! The sigstack client's library: Sigstore bundles and their verification (Rekor v1 and
//! v2 entries, RFC 3161 timestamps).

pub mod bundle;
pub mod note;
pub mod sign;
pub mod tsa;
pub mod verify;
