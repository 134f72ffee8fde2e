//! Integration tests live in `tests/` of this crate: API Gateway v2 events through the real
//! routers, the local server over HTTP, the operator binary, and outside verifiers.
