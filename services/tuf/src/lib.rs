//! TUF 1.0 without I/O, for the repository service (`sigstackd tuf`) and for clients:
//! OLPC canonical JSON ([`cjson`]), the metadata model with signing and threshold checks
//! ([`metadata`]), building a repository's roles ([`repo`]) and the client update
//! workflow that refuses what a TUF client must ([`client`]).

pub mod cjson;
pub mod client;
pub mod metadata;
pub mod repo;

pub use metadata::{Envelope, TufError};
