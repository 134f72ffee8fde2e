//! Shared helpers for the integration tests.

pub mod aws;
pub mod interleaved;

pub use chat_auth_harness::process::Serve;
pub use chat_auth_harness::{
    chat_auth_bin, free_port, http_client as client, python, python_script, root,
};

use chat_auth_cli::LocalConfig;
use std::net::SocketAddr;
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

/// Development mode's `/issue` key in the tests (`CHAT_AUTH_DEV_ISSUE_KEY`).
pub const ISSUE_KEY: &str = "test-issue-key-0123456789abcdef";

/// Starts `chat-auth serve` in-process with extra environment variables: in development mode
/// (with [`ISSUE_KEY`]) unless they configure an upstream identity provider.
pub async fn start(vars: &[(&str, &str)]) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let mut vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let dev = !vars.iter().any(|(k, _)| k == "CHAT_AUTH_UPSTREAM_ISSUER");
    if dev && !vars.iter().any(|(k, _)| k == "CHAT_AUTH_DEV_ISSUE_KEY") {
        vars.push(("CHAT_AUTH_DEV_ISSUE_KEY".into(), ISSUE_KEY.into()));
    }
    let config = LocalConfig::from_lookup(
        |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
        Some(addr.to_string()),
        Some(data_dir.path().to_path_buf()),
        dev,
    )
    .unwrap();
    let app = chat_auth_cli::server::app(&config).await.unwrap();
    let task = tokio::spawn(async move {
        chat_auth_host::socket::serve(listener, app, &config.limits).await;
    });
    Server {
        addr,
        data_dir,
        task,
    }
}

/// A token signed with `server`'s own current key (read from its data directory) that expires
/// at `exp`, for checks at a chosen distance from expiry.
pub async fn token_expiring_at(server: &Server, sub: &str, exp: i64) -> String {
    use chat_auth_shared::store::RingSource;
    let store = chat_auth_host::FileStore::open(server.data_dir.path()).unwrap();
    let ring = store
        .load_ring()
        .await
        .unwrap()
        .expect("the server made its ring");
    let policy = chat_auth_shared::claims::TokenPolicy {
        issuer: "chat-auth".into(),
        ttl: 900,
        skew: 30,
    };
    let claims = policy
        .claims(
            sub,
            &chat_auth_shared::CustomContext::new(),
            exp - policy.ttl,
        )
        .unwrap();
    chat_auth_shared::claims::mint(&ring.load().unwrap().signer, &claims)
        .unwrap()
        .token
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `GET url` with the test client.
pub async fn get(url: &str) -> reqwest::Response {
    client().get(url).send().await.unwrap()
}

/// Signs in at the development identity provider and returns the id token.
pub async fn sign_in(server: &Server, sub: &str, claims: serde_json::Value) -> String {
    sign_in_at(&server.url(""), sub, claims).await
}

/// `GET /token` with a bearer identity token.
pub async fn get_token(server: &Server, bearer: &str) -> reqwest::Response {
    get_token_at(&server.url(""), bearer).await
}

/// `GET /token` at `base` with a bearer identity token.
pub async fn get_token_at(base: &str, bearer: &str) -> reqwest::Response {
    client()
        .get(format!("{base}/token"))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
}

/// Signs in at the development identity provider at `base` and returns the id token.
pub async fn sign_in_at(base: &str, sub: &str, claims: serde_json::Value) -> String {
    let r: serde_json::Value = client()
        .post(format!("{base}/dev/sign-in"))
        .json(&serde_json::json!({"sub": sub, "claims": claims}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["id_token"].as_str().unwrap().to_owned()
}

/// `POST /validate` at `server`; the verdict.
pub async fn validate(server: &Server, token: &str) -> serde_json::Value {
    validate_at(&server.url(""), token).await
}

/// `POST /validate` at `base`; the verdict.
pub async fn validate_at(base: &str, token: &str) -> serde_json::Value {
    client()
        .post(format!("{base}/validate"))
        .json(&serde_json::json!({ "token": token }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// `ring` after one scheduled rotation at `now`, as if its keys had been published since its
/// current key's activation (so `next` is promoted and long-retired keys are pruned).
pub fn rotated(ring: &chat_auth_shared::RingState, now: i64) -> chat_auth_shared::RingState {
    let life = chat_auth_shared::Lifecycle::new(chat_auth_shared::RingPolicy::new(
        ring.rotation_period,
        0,
        300,
        60,
        30,
    ));
    let published = ring.public_set().unwrap();
    let rotated = ring.rotate(Some(&published), &life, now).unwrap();
    assert!(rotated.deferred.is_none(), "{:?}", rotated.deferred);
    rotated.ring
}

/// `set` publishes exactly `ring`'s keys, with its signing key current.
pub fn assert_publishes(set: &chat_auth_shared::PublicKeySet, ring: &chat_auth_shared::RingState) {
    let mut published: Vec<&str> = set.keys.iter().map(|k| k.kid.as_str()).collect();
    let mut held: Vec<&str> = ring.kids().collect();
    published.sort_unstable();
    held.sort_unstable();
    assert_eq!(published, held, "the published set is the ring's");
    assert_eq!(set.current_kid, ring.current.kid);
}

/// The real `chat-auth serve` with `env`, in development mode with [`ISSUE_KEY`] unless `env`
/// configures an upstream identity provider.
pub async fn serve_process(
    data: &std::path::Path,
    env: &[(&str, &str)],
    stderr: std::process::Stdio,
) -> Serve {
    serve_process_via(
        std::process::Command::new(chat_auth_bin()),
        data,
        env,
        stderr,
    )
    .await
}

/// [`serve_process`] through `command`: the binary itself, or a launcher that runs it with its
/// arguments (a shell that lowers a limit first, say).
pub async fn serve_process_via(
    command: std::process::Command,
    data: &std::path::Path,
    env: &[(&str, &str)],
    stderr: std::process::Stdio,
) -> Serve {
    Serve::start(command, data, env, ISSUE_KEY, stderr).await
}
