//! Unix-seconds clock. Every function that depends on the time takes `now` as an argument so
//! that tests and rotation steps are deterministic; only hosts call [`now`].

use std::time::{SystemTime, UNIX_EPOCH};

/// The current time in unix seconds (JWT NumericDate).
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
