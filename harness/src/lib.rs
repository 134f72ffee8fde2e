//! The real peers that the integration tests (tests/) and the benchmarks (xtask/) drive, written
//! once: moto's Secrets Manager, cargo-lambda's Lambda runtime with the function binaries under
//! it, `chat-auth serve` as a process, the API Gateway v2 fixtures and the decoding of a
//! function's answer.
//!
//! A failure here is a machine that lacks what scripts/test.sh or scripts/bench.sh installs, or
//! a peer that would not start, never a measured result; so the harness panics with what to do,
//! as a test would, rather than threading a result type through every test.

pub mod apigw;
pub mod lambda;
pub mod moto;
pub mod process;
pub mod pyjwt;

use std::path::PathBuf;

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the harness lives inside the workspace")
        .to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` if set.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// The `chat-auth` binary: `CHAT_AUTH_BIN` if set (a release build, an older build that a test
/// must fail on), else the debug one the test command builds first. The function binaries are
/// its siblings.
pub fn chat_auth_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("CHAT_AUTH_BIN") {
        return PathBuf::from(bin);
    }
    let bin = target_dir().join("debug").join("chat-auth");
    assert!(
        bin.exists(),
        "{} is missing: run the README test command (scripts/test.sh), which builds it first",
        bin.display()
    );
    bin
}

/// The Python that scripts/test.sh installs moto, PyJWT and AWS's SAM translator into
/// (`CHAT_AUTH_TEST_PYTHON` overrides it).
pub fn python() -> PathBuf {
    std::env::var_os("CHAT_AUTH_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("py/bin/python"))
}

/// Runs `tests/py/<script>` with [`python`]: its standard output, or a panic with its standard
/// error.
pub fn python_script<S: AsRef<std::ffi::OsStr>>(script: &str, args: &[S]) -> Vec<u8> {
    let out = std::process::Command::new(python())
        .arg(root().join("tests/py").join(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", python().display()));
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// cargo-lambda: `CARGO_LAMBDA` if set, else the one scripts/install-cargo-lambda.sh puts in
/// target/lambda-venv.
pub fn cargo_lambda() -> PathBuf {
    std::env::var_os("CARGO_LAMBDA")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("lambda-venv/bin/cargo-lambda"))
}

/// A loopback port nobody listened on a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a free loopback port")
        .port()
}

/// An HTTP client for loopback peers, which no proxy variable may redirect.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a TLS-less reqwest client builds")
}
