//! The sigstack client's library: Sigstore bundles and their verification.

pub mod bundle;
pub mod verify;
