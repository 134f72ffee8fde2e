//! The domain of omnichannel-chat-auth: everything that is not I/O glue.
//!
//! Omnichannel's authenticated chat verifies an RS256 JWT that the embedding site signs for its
//! signed-in customer, against keys the site publishes at its Public key URL. This crate holds the
//! rules of that contract (claims, the `lwicontexts` custom context and its limits, the key ring
//! and its rotation, the public key formats, the provider script) so that every host (Lambda,
//! the local server, the operator commands) applies them identically. It knows nothing of HTTP,
//! Lambda or an async runtime: those are the host crate's (`chat_auth_host`).
#![deny(missing_docs)]

pub mod claims;
pub mod config;
pub mod context;
pub mod crypto;
mod error;
pub mod json;
pub mod jwt;
pub mod keys;
pub mod mapping;
pub mod provider;
pub mod publish;
pub mod ring;
pub mod store;
pub mod time;

pub use claims::{Claims, TokenPolicy};
pub use config::{Config, Section};
pub use context::CustomContext;
#[cfg(any(test, feature = "test-util"))]
pub use error::documents;
pub use error::{Error, Problem, ProblemCode, Warning, WarningCode, chain};
pub use publish::PublicKeySet;
pub use ring::{Lifecycle, LoadedRing, RingPolicy, RingState};

/// Convenience alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
