//! Wire types (JSON DTOs) of the protocols sigstack speaks, with the field names and
//! shapes real clients send and expect. No behaviour lives here.

pub mod ct;
pub mod fulcio;
pub mod rekor;
pub mod time;
pub mod trust;
