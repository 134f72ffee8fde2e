use serde::Serialize;
use std::borrow::Cow;

/// Why a request, a token or an operation was refused.
///
/// One enum for the whole crate, grouped by cause. [`Error::code`] and [`Error::status`] are the
/// only place where causes are mapped to the stable error codes and HTTP statuses that clients see.
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
    /// The request itself is malformed (bad JSON, wrong content type, ...).
    #[error("{message}")]
    BadRequest {
        /// Stable error code.
        code: &'static str,
        /// Human-readable explanation; never contains secrets.
        message: String,
    },
    /// The request body is larger than the route accepts.
    #[error("request body exceeds {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The custom context or subject breaks one of Omnichannel's rules.
    #[error("{0}")]
    Invalid(Problem),
    /// The caller has no verified identity.
    #[error("{0}")]
    Unauthenticated(Cow<'static, str>),
    /// The caller's browser origin is not on the allow-list.
    #[error("origin not allowed")]
    OriginNotAllowed,
    /// An IAM-authenticated backend that is not on the `/issue` allow-list.
    #[error("this IAM identity may not use /issue (it is not in CHAT_AUTH_ISSUE_CALLERS)")]
    CallerNotAllowed,
    /// Development mode, and `/issue` without the right per-run issue key.
    #[error("wrong X-Chat-Auth-Issue-Key: use the one `chat-auth serve --dev` printed at start")]
    IssueKeyRefused,
    /// Development mode answers only requests addressed to a loopback host: a foreign `Host`
    /// is a DNS-rebinding page or a proxy exposing the demo sign-in.
    #[error(
        "development mode answers only requests for localhost or a loopback address (Host header)"
    )]
    HostNotAllowed,
    /// The request's headers are larger, or more numerous, than the server accepts.
    #[error("request headers exceed {bytes} bytes or {fields} fields")]
    HeadersTooLarge {
        /// The limit in bytes (names and values).
        bytes: usize,
        /// The limit in header fields.
        fields: usize,
    },
    /// The request took longer than the server allows.
    #[error("the request took longer than {seconds} s")]
    RequestTimeout {
        /// The limit in seconds.
        seconds: u64,
    },
    /// The server is at its concurrency limit; the client should retry.
    #[error("the server is busy; retry shortly")]
    Overloaded,
    /// The upstream identity provider's keys cannot be fetched and no usable cached copy is
    /// left; identity tokens cannot be verified, so the server fails closed.
    #[error("identity provider keys unavailable: {0}")]
    UpstreamUnavailable(String),
    /// No route matches the path.
    #[error("no such route")]
    NotFound,
    /// The route exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
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
    /// A concurrent writer changed the ring first; the caller should reload and retry.
    #[error("the key ring changed concurrently: {0}; reload and retry")]
    Conflict(String),
    /// A rotation request cannot be honoured (unknown kid, ...).
    #[error("{0}")]
    Rotation(String),
    /// A cryptographic primitive failed (key generation, signing).
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
            Error::BadRequest { code, .. } => code,
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::Invalid(problem) => problem.code,
            Error::Unauthenticated(_) => "unauthenticated",
            Error::OriginNotAllowed => "origin_not_allowed",
            Error::CallerNotAllowed | Error::IssueKeyRefused => "caller_not_allowed",
            Error::HostNotAllowed => "host_not_allowed",
            Error::HeadersTooLarge { .. } => "headers_too_large",
            Error::RequestTimeout { .. } => "request_timeout",
            Error::Overloaded => "overloaded",
            Error::UpstreamUnavailable(_) => "identity_provider_unavailable",
            Error::NotFound => "not_found",
            Error::MethodNotAllowed => "method_not_allowed",
            Error::StoreUnavailable(_) => "key_store_unavailable",
            Error::NotProvisioned(_) => "keys_not_provisioned",
            Error::CorruptKeys { .. } => "key_store_corrupt",
            Error::Conflict(_) => "conflict",
            Error::Rotation(_) => "rotation_refused",
            Error::Crypto(_) => "crypto_failure",
            Error::Io { .. } => "internal_error",
        }
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest { code, .. } if *code == "unsupported_media_type" => 415,
            Error::BadRequest { .. } | Error::Invalid(_) | Error::Rotation(_) => 400,
            Error::PayloadTooLarge { .. } => 413,
            Error::Unauthenticated(_) => 401,
            Error::OriginNotAllowed
            | Error::CallerNotAllowed
            | Error::IssueKeyRefused
            | Error::HostNotAllowed => 403,
            Error::RequestTimeout { .. } => 408,
            Error::HeadersTooLarge { .. } => 431,
            Error::NotFound => 404,
            Error::MethodNotAllowed => 405,
            Error::Conflict(_) => 409,
            Error::StoreUnavailable(_)
            | Error::NotProvisioned(_)
            | Error::CorruptKeys { .. }
            | Error::Overloaded
            | Error::UpstreamUnavailable(_) => 503,
            Error::Config { .. } | Error::Crypto(_) | Error::Io { .. } => 500,
        }
    }

    /// The message shown to clients: server-side causes are summarised, never detailed, so
    /// that paths, upstream errors and key material stay in the (redacted) logs.
    pub fn public_message(&self) -> String {
        match (self, self.status()) {
            (_, 500) => "internal error".to_owned(),
            (Error::Overloaded, _) => self.to_string(),
            (Error::UpstreamUnavailable(_), _) => {
                "the identity provider's keys are temporarily unavailable".to_owned()
            }
            (_, 503) => "the signing keys are temporarily unavailable".to_owned(),
            _ => self.to_string(),
        }
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Error::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn corrupt(what: &'static str, reason: impl Into<String>) -> Self {
        Error::CorruptKeys {
            what,
            reason: reason.into(),
        }
    }
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
