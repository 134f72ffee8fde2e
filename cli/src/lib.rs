//! The `chat-auth` binary's library: the local server (every route on one port, a file-backed
//! key ring, the authorizer's part played locally), the operator commands, and the doctor that
//! checks a deployment from the outside.

pub mod dev;
pub mod doctor;
pub mod error;
pub mod fetch;
pub mod local;
pub mod openapi;
pub mod server;
pub mod snippet;
pub mod upstream;

pub use error::CliError;
pub use local::LocalConfig;
