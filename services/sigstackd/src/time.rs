//! RFC 3339 UTC timestamps for trust files (shared with the TUF metadata).

pub use sigstack_types::time::rfc3339;
