/// Why a proposed entry was refused. Each variant maps to one HTTP status in the service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// The entry is well-formed JSON but invalid: bad signature, bad key, bad digest...
    /// (400, message prefixed like Rekor's `error processing entry:`).
    #[error("error processing entry: {0}")]
    Invalid(String),
    /// A kind or version Rekor knows that this server does not store (400, as Rekor
    /// answers for a version it lacks).
    #[error("error processing entry: {0}")]
    Unsupported(String),
    /// A kind this server does not know at all (422).
    #[error("invalid kind value: \"{0}\"")]
    UnknownKind(String),
    /// The request does not have the ProposedEntry shape (422).
    #[error("{0}")]
    Shape(String),
}

impl EntryError {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Self::Invalid(msg.into())
    }
}
