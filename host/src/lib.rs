//! Hosting glue over the domain crate (`chat_auth_shared`): what a function needs to answer HTTP on
//! Lambda or on a socket. The JSON error shape and the one mapping of causes to statuses, body
//! limits and extraction, CORS from an allow-list, the caller's identity, the warm-function
//! cache of the key store, the file store, and structured logs and metrics.
#![deny(missing_docs)]

pub mod cache;
pub mod caller;
pub mod cors;
mod error;
pub mod file_store;
mod fsutil;
pub mod http;
pub mod lambda;
pub mod socket;
pub mod telemetry;

pub use caller::Caller;
pub use cors::Cors;
pub use error::{Error, Refusal, TokenRefusal};
pub use file_store::FileStore;

/// Handler results: a response, or a refusal with its status.
pub type Result<T, E = Error> = std::result::Result<T, E>;
