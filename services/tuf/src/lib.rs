//! TUF 1.0, for the repository service (`sigstackd tuf`) and for clients: OLPC canonical
//! JSON ([`cjson`]), the metadata model with signing and threshold checks ([`metadata`]),
//! building a repository's roles ([`repo`]) and the client update workflow that refuses
//! what a TUF client must ([`client`]). Without I/O, except the repository fetcher behind
//! the `http` feature ([`http`]).

pub mod cjson;
pub mod client;
#[cfg(feature = "http")]
pub mod http;
pub mod metadata;
pub mod repo;

pub use metadata::{Envelope, TufError};
