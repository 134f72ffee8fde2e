//! The one error type of the crate, by cause.

use std::path::Path;

/// Why a run stopped before it could print its table.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `BENCH_*` setting or the command line is wrong.
    #[error("{0}")]
    Config(String),
    /// Something the run needs is missing: a binary, a tool, a release build.
    #[error("{0}")]
    Setup(String),
    /// A system call, a file or a child process failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An HTTP exchange failed below the status line (refused, reset, malformed).
    #[error("{what}: {source}")]
    Http {
        /// The request.
        what: String,
        /// The cause.
        source: hyper::Error,
    },
    /// A server, function or tool answered something other than what the run relies on, or not
    /// in time.
    #[error("{0}")]
    Answer(String),
    /// The domain crate refused a fixture.
    #[error(transparent)]
    Domain(#[from] chat_auth_shared::Error),
    /// JSON that should have parsed did not.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O failure while doing `what`.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    /// An I/O failure on `path`.
    pub fn file(path: &Path, source: std::io::Error) -> Self {
        Error::io(path.display().to_string(), source)
    }
}
