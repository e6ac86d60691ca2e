//! The transparency log's domain, free of I/O: what an entry of each kind must satisfy
//! and how it is canonicalised (Rekor v1 semantics), signed checkpoints (C2SP signed
//! note, Rekor v1 origin), signed entry timestamps, entry IDs, RFC 6962 certificate-transparency structures, planning a batch of
//! appends, and the [`store::LogStore`] trait a storage backend implements.

pub mod batch;
pub mod checkpoint;
pub mod ct;
mod error;
pub mod ids;
pub mod jcs;
pub mod kinds;
pub mod note;
pub mod set;
pub mod store;
#[cfg(test)]
mod testdata;
pub mod tiles;
pub mod v2;
pub mod witness;

pub use error::EntryError;
pub use kinds::{Canonical, Check, canonicalize, canonicalize_for_lookup};
