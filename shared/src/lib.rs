//! The domain of omnichannel-chat-auth: everything that is not I/O glue.
//!
//! Omnichannel's authenticated chat verifies an RS256 JWT that the embedding site signs for its
//! signed-in customer, against keys the site publishes at its Public key URL. This crate holds the
//! rules of that contract (claims, the `lwicontexts` custom context and its limits, the key ring
//! and its rotation, the public key formats, the provider script) so that every host (Lambda,
//! the local server, the operator commands) applies them identically.
#![deny(missing_docs)]

pub mod cache;
pub mod claims;
pub mod config;
pub mod context;
pub mod crypto;
mod error;
mod file_store;
mod fsutil;
pub mod host;
pub mod http;
pub mod identity;
pub mod json;
pub mod jwt;
pub mod keys;
pub mod provider;
pub mod publish;
pub mod ring;
pub mod store;
pub mod telemetry;
pub mod time;

pub use claims::{Claims, TokenPolicy};
pub use config::Config;
pub use context::CustomContext;
pub use error::{Error, Problem};
pub use publish::PublicKeySet;
pub use ring::{Lifecycle, LoadedRing, RingPolicy, RingState};

/// Convenience alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
