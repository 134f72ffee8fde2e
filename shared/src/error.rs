use serde::Serialize;

/// Why a token, a custom context, a key document or an operation was refused.
///
/// One enum for the domain crate, one variant per cause. It knows nothing of HTTP: the host
/// crate maps each cause to a status once (`chat_auth_host::Error`). [`Error::code`] is the
/// stable, machine-readable code clients see.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration variable is missing or invalid; the process must not start.
    #[error("{var}: {reason}")]
    Config {
        /// The environment variable (or flag) at fault.
        var: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The custom context or subject breaks one of Omnichannel's rules.
    #[error("{0}")]
    Invalid(Problem),
    /// The caller's verified identity lacks the claim configured as the token's subject.
    #[error("the verified identity has no {claim:?} claim to use as the subject")]
    NoSubjectClaim {
        /// `CHAT_AUTH_SUBJECT_CLAIM`.
        claim: String,
    },
    /// The key store could not be reached or read; the service fails closed.
    #[error("key store unavailable")]
    StoreUnavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The key store holds no ring or key set yet.
    #[error("no {0} in the key store")]
    NotProvisioned(&'static str),
    /// A stored ring or key set cannot be used (corrupt JSON, bad key, thumbprint mismatch).
    #[error("stored {what} is invalid: {reason}")]
    CorruptKeys {
        /// Which document.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A stored ring, key set or key document is not the JSON it must be.
    #[error("stored {what} does not parse")]
    UnreadableKeys {
        /// Which document.
        what: &'static str,
        /// The parser's error (line, column, what was expected).
        #[source]
        source: serde_json::Error,
    },
    /// A concurrent writer changed the ring first; the caller should reload and retry.
    #[error("the key ring changed concurrently: {0}; reload and retry")]
    Conflict(String),
    /// A rotation request cannot be honoured (unknown kid, a rotation id that is not pending).
    #[error("{0}")]
    Rotation(String),
    /// A cryptographic primitive failed (key generation, signing); aws-lc says no more than
    /// that, so there is no source to keep.
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The stable, machine-readable error code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Config { .. } => "configuration_error",
            Error::Invalid(problem) => problem.code,
            Error::NoSubjectClaim { .. } => "unauthenticated",
            Error::StoreUnavailable(_) => "key_store_unavailable",
            Error::NotProvisioned(_) => "keys_not_provisioned",
            Error::CorruptKeys { .. } | Error::UnreadableKeys { .. } => "key_store_corrupt",
            Error::Conflict(_) => "conflict",
            Error::Rotation(_) => "rotation_refused",
            Error::Crypto(_) => "crypto_failure",
            Error::Io { .. } => "internal_error",
        }
    }

    /// The store or the keys are at fault, not the request: the service is unavailable
    /// rather than broken, and the details stay in the logs.
    pub fn is_key_store(&self) -> bool {
        matches!(
            self,
            Error::StoreUnavailable(_)
                | Error::NotProvisioned(_)
                | Error::CorruptKeys { .. }
                | Error::UnreadableKeys { .. }
        )
    }

    pub(crate) fn unreadable(what: &'static str) -> impl FnOnce(serde_json::Error) -> Self {
        move |source| Error::UnreadableKeys { what, source }
    }

    pub(crate) fn corrupt(what: &'static str, reason: impl Into<String>) -> Self {
        Error::CorruptKeys {
            what,
            reason: reason.into(),
        }
    }
}

/// An error and its causes on one line, each cause once (some messages already end with
/// their source's): for operators and logs, never for clients.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.ends_with(&text) {
            line = format!("{line}: {text}");
        }
        source = cause.source();
    }
    line
}

impl From<Problem> for Error {
    fn from(problem: Problem) -> Self {
        Error::Invalid(problem)
    }
}

/// One reason a token or a custom context would be refused, with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Stable, machine-readable code (e.g. `expired`, `context_value_too_long`).
    pub code: &'static str,
    /// Human-readable explanation naming the claim or context key at fault.
    pub message: String,
}

impl Problem {
    /// A problem with `code` and `message`.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Problem {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
