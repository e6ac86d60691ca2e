//! RFC 3161 time-stamping as Sigstore's timestamp authority serves it: a request arrives
//! as a DER `TimeStampReq` or as timestamp-authority's JSON form; the answer is a DER
//! `TimeStampResp` whose token is a CMS SignedData over a `TSTInfo`, signed by a key whose
//! certificate follows the profile upstream enforces ([`profile`]).

pub mod asn1;
pub mod profile;
pub mod request;
pub mod response;

pub use profile::check_chain;
pub use request::{HashAlg, Request, RequestError};
pub use response::Authority;

/// Sigstore's default TSA policy OID (what timestamp-authority stamps when the request
/// names none).
pub const DEFAULT_POLICY: &str = "1.3.6.1.4.1.57264.2";

#[cfg(test)]
mod tests;
