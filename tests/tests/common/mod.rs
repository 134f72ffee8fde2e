//! Shared helpers for the integration tests.
#![allow(dead_code)]

pub mod aws;

use chat_auth_cli::LocalConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio::net::TcpListener;

/// A local server running in this process on a free loopback port.
pub struct Server {
    pub addr: SocketAddr,
    pub data_dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts `chat-auth serve` in-process with extra environment variables.
pub async fn start(vars: &[(&str, &str)]) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config = LocalConfig::from_lookup(
        |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
        Some(addr.to_string()),
        Some(data_dir.path().to_path_buf()),
    )
    .unwrap();
    let app = chat_auth_cli::server::app(&config).await.unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server {
        addr,
        data_dir,
        task,
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Signs in at the development identity provider and returns the id token.
pub async fn sign_in(server: &Server, sub: &str, claims: serde_json::Value) -> String {
    let r: serde_json::Value = client()
        .post(server.url("/dev/sign-in"))
        .json(&serde_json::json!({"sub": sub, "claims": claims}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["id_token"].as_str().unwrap().to_owned()
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `chat-auth` binary built by the test command (`cargo build --bins` runs first).
pub fn chat_auth_bin() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let bin = target.join("debug").join("chat-auth");
    assert!(
        bin.exists(),
        "{} is missing: run the README test command (scripts/test.sh), which builds it first",
        bin.display()
    );
    bin
}

/// The Python interpreter with PyJWT installed by the test command.
pub fn python() -> PathBuf {
    std::env::var_os("CHAT_AUTH_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/py/bin/python"))
}
