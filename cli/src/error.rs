//! The CLI's error type.

/// What can stop the local server or an operator command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A domain error (configuration, keys, store).
    #[error(transparent)]
    Domain(#[from] chat_auth_shared::Error),
    /// A hosting error (the identity provider's keys, the demo identity provider).
    #[error(transparent)]
    Host(#[from] chat_auth_host::Error),
    /// The listener could not be bound or served.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP client could not be set up (the doctor's requests themselves fail as findings,
    /// not as errors: a deployment that does not answer is what it reports).
    #[error("{context}: {source}")]
    Http {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// An argument is invalid.
    #[error("{0}")]
    Usage(String),
}
