//! The integration tests, one module per suite, in one binary: API Gateway v2 events through the
//! real routers and the real function binaries under cargo-lambda's runtime, the local server
//! over HTTP, the operator binary, moto's Secrets Manager, AWS's SAM translator, headless
//! Chromium under Microsoft's widget code, and outside verifiers. Run one suite with
//! `cargo test -p chat-auth-tests --test integration SUITE::`.

mod common;

mod arm64;
mod browser;
mod doctor;
mod faults;
mod hostile_requests;
mod hostile_tokens;
mod kms_custody;
mod lambda_events;
mod load;
mod local_server;
mod openapi;
mod operator_cli;
mod ring_model;
mod ring_sequences;
mod secrets_in_logs;
mod secrets_manager;
mod template;
mod upstream_identity;
