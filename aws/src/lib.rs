//! AWS adapters for omnichannel-chat-auth.
//!
//! [`SecretsManagerStore`] keeps the private ring in the signing secret (one ring state per
//! secret version) and the published set in a second secret; [`rotation`] implements Secrets
//! Manager's four-step rotation protocol over them. [`AnyStore`] lets a function binary pick
//! Secrets Manager or the file store from its configuration.
#![deny(missing_docs)]

mod any;
mod error;
pub mod rotation;
mod secrets;

pub use any::AnyStore;
pub use error::RotationError;
pub use secrets::SecretsManagerStore;
