//! Real protocol peers for the AWS tests: moto's Secrets Manager server and a Lambda Runtime
//! API emulator that drives the real function binaries.
#![allow(dead_code)]

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::Value;
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, mpsc, oneshot};

/// A moto server on a free loopback port, killed on drop.
pub struct Moto {
    pub endpoint: String,
    child: Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts moto's server through tests/py/moto_server.py (moto with AWS's staging-label
    /// behaviour; see that file).
    pub async fn start() -> Moto {
        let port = super::free_port();
        let child = Command::new(super::python())
            .arg(super::root().join("tests/py/moto_server.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("python with moto (installed by scripts/test.sh): {e}"));
        let endpoint = format!("http://127.0.0.1:{port}");
        let moto = Moto { endpoint, child };
        let http = super::client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http
                .get(format!("{}/moto-api/", moto.endpoint))
                .send()
                .await
                && r.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "moto did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        moto.configure().await;
        moto
    }

    /// Lambda functions registered in moto run without Docker.
    async fn configure(&self) {
        super::client()
            .post(format!("{}/moto-api/config", self.endpoint))
            .json(&serde_json::json!({"lambda": {"use_docker": false}}))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("moto config");
    }

    /// Empties moto (much faster than a new server).
    pub async fn reset(&self) {
        super::client()
            .post(format!("{}/moto-api/reset", self.endpoint))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("moto reset");
        self.configure().await;
    }

    pub fn client(&self) -> Client {
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .build();
        Client::from_conf(config)
    }

    /// Creates the two secrets as the template does (placeholder `{}` values).
    pub async fn create_secrets(&self, signing: &str, public: &str) {
        let client = self.client();
        for name in [signing, public] {
            client
                .create_secret()
                .name(name)
                .secret_string("{}")
                .send()
                .await
                .unwrap();
        }
    }

    /// Registers a rotation function so `rotate_secret` behaves as on AWS.
    pub fn register_rotation_lambda(&self) -> String {
        let out = Command::new(super::python())
            .arg(super::root().join("tests/py/moto_register_lambda.py"))
            .arg(&self.endpoint)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Starts a rotation the way Secrets Manager does; returns the new version's token.
    pub async fn rotate_secret(&self, secret: &str, lambda_arn: &str) -> String {
        self.try_rotate_secret(secret, lambda_arn).await.unwrap()
    }

    /// As [`Moto::rotate_secret`], reporting a refusal instead of panicking.
    pub async fn try_rotate_secret(
        &self,
        secret: &str,
        lambda_arn: &str,
    ) -> Result<String, String> {
        let out = self
            .client()
            .rotate_secret()
            .secret_id(secret)
            .rotation_lambda_arn(lambda_arn)
            .rotation_rules(
                aws_sdk_secretsmanager::types::RotationRulesType::builder()
                    .automatically_after_days(30)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                format!(
                    "rotate_secret: {}",
                    aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
                )
            })?;
        Ok(out.version_id().unwrap_or_default().to_owned())
    }

    /// Both secrets (placeholders, as the template creates them) and a registered rotation
    /// function; returns the function's ARN.
    pub async fn provision(&self) -> String {
        self.create_secrets(SIGNING, PUBLIC).await;
        self.register_rotation_lambda()
    }

    /// Environment for a function binary talking to this moto.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

type Reply = oneshot::Sender<Result<Value, Value>>;

struct Runtime {
    queue: Mutex<mpsc::Receiver<(String, Value)>>,
    waiting: Mutex<HashMap<String, Reply>>,
}

/// A Lambda Runtime API emulator running one real function binary.
pub struct LambdaHost {
    sender: mpsc::Sender<(String, Value)>,
    runtime: Arc<Runtime>,
    child: Child,
    server: tokio::task::JoinHandle<()>,
    counter: std::sync::atomic::AtomicUsize,
}

impl Drop for LambdaHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.server.abort();
    }
}

async fn next(State(rt): State<Arc<Runtime>>) -> axum::response::Response {
    let Some((id, event)) = rt.queue.lock().await.recv().await else {
        // The host is gone; the function process is being killed.
        return axum::http::StatusCode::GONE.into_response();
    };
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 30_000;
    let mut headers = HeaderMap::new();
    headers.insert("lambda-runtime-aws-request-id", id.parse().unwrap());
    headers.insert(
        "lambda-runtime-deadline-ms",
        deadline.to_string().parse().unwrap(),
    );
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:test"
            .parse()
            .unwrap(),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000".parse().unwrap(),
    );
    (headers, axum::Json(event)).into_response()
}

async fn respond(State(rt): State<Arc<Runtime>>, Path(id): Path<String>, body: axum::body::Bytes) {
    if let Some(reply) = rt.waiting.lock().await.remove(&id) {
        let _ = reply.send(Ok(serde_json::from_slice(&body).unwrap_or(Value::Null)));
    }
}

async fn fail(State(rt): State<Arc<Runtime>>, Path(id): Path<String>, body: axum::body::Bytes) {
    if let Some(reply) = rt.waiting.lock().await.remove(&id) {
        let _ = reply.send(Err(serde_json::from_slice(&body).unwrap_or(Value::Null)));
    }
}

impl LambdaHost {
    /// Runs target/debug/`binary` against the emulator with `env`.
    pub async fn start(binary: &str, env: &[(String, String)]) -> LambdaHost {
        Self::start_with_stderr(binary, env, Stdio::inherit()).await
    }

    /// As [`LambdaHost::start`], with the function's log output sent to `stderr`.
    pub async fn start_with_stderr(
        binary: &str,
        env: &[(String, String)],
        stderr: Stdio,
    ) -> LambdaHost {
        let bin = super::chat_auth_bin().with_file_name(binary);
        Self::start_command(&bin, &[], binary, env, stderr).await
    }

    /// Runs `program args...` as the function `name` against the emulator with `env` (for
    /// example an aarch64 bootstrap under `qemu-aarch64`), its log output sent to `stderr`.
    pub async fn start_command(
        program: &std::path::Path,
        args: &[&std::ffi::OsStr],
        name: &str,
        env: &[(String, String)],
        stderr: Stdio,
    ) -> LambdaHost {
        let (sender, receiver) = mpsc::channel(16);
        let runtime = Arc::new(Runtime {
            queue: Mutex::new(receiver),
            waiting: Mutex::new(HashMap::new()),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(fail))
            .with_state(runtime.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        let child = Command::new(program)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "test")
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
        LambdaHost {
            sender,
            runtime,
            child,
            server,
            counter: Default::default(),
        }
    }

    /// Invokes the function with `event`; Ok(response) or Err(error payload).
    pub async fn invoke(&self, event: Value) -> Result<Value, Value> {
        self.invoke_within(event, Duration::from_secs(60)).await
    }

    /// As [`LambdaHost::invoke`], waiting up to `limit` for the answer (emulated CPUs are slow).
    pub async fn invoke_within(&self, event: Value, limit: Duration) -> Result<Value, Value> {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let id = format!("req-{n}");
        let (tx, rx) = oneshot::channel();
        self.runtime.waiting.lock().await.insert(id.clone(), tx);
        self.sender.send((id, event)).await.unwrap();
        tokio::time::timeout(limit, rx)
            .await
            .unwrap_or_else(|_| panic!("the function did not answer within {limit:?}"))
            .unwrap()
    }
}

/// The issuer the AWS tests mint with.
pub const ISSUER: &str = "contosohelp.com";

fn issuer_config() -> chat_auth::Config {
    chat_auth::Config::from_lookup(|k| (k == "CHAT_AUTH_ISSUER").then(|| ISSUER.to_owned()))
        .unwrap()
}

/// A token signed now by the store's current key.
pub async fn mint_now(
    store: &chat_auth_aws::SecretsManagerStore,
) -> chat_auth::claims::MintedToken {
    use chat_auth::store::RingSource;
    let ring = store.load_ring().await.unwrap().expect("a ring is current");
    let claims = issuer_config()
        .policy
        .claims(
            "contact-1",
            &chat_auth::CustomContext::new(),
            chat_auth::time::now(),
        )
        .unwrap();
    chat_auth::claims::mint(&ring.load().unwrap().signer, &claims).unwrap()
}

/// Every token verifies against what is published right now.
pub async fn assert_nothing_lost(
    store: &chat_auth_aws::SecretsManagerStore,
    tokens: &[chat_auth::claims::MintedToken],
    when: &str,
) {
    use chat_auth::store::PublicKeySource;
    let set = store
        .load_public()
        .await
        .unwrap()
        .expect("a set is published");
    let keys = set.render().unwrap().keys;
    for t in tokens {
        let report = issuer_config()
            .validator()
            .validate(&t.token, &keys, chat_auth::time::now());
        assert!(
            report.is_active(),
            "{when}: token of {} lost: {:?}",
            t.kid,
            report.problems
        );
    }
}

/// The signing and public secrets the AWS tests create.
pub const SIGNING: &str = "chat-auth/signing";
/// See [`SIGNING`].
pub const PUBLIC: &str = "chat-auth/public";

/// moto with both secrets (placeholders, as the template creates them), a registered rotation
/// function, and a store over them; returns the function's ARN too.
pub async fn provisioned() -> (Moto, chat_auth_aws::SecretsManagerStore, String) {
    let moto = Moto::start().await;
    let arn = moto.provision().await;
    let store =
        chat_auth_aws::SecretsManagerStore::new(moto.client(), Some(SIGNING.into()), PUBLIC.into());
    (moto, store, arn)
}

/// The ring rules of the AWS tests: 30-day period, and `next` may sign at once (these tests
/// rotate seconds apart; the waiting rule has its own tests).
pub fn life() -> chat_auth::Lifecycle {
    chat_auth::Lifecycle::new(chat_auth::RingPolicy::new(30 * 86_400, 0, 0, 0, 30))
}

/// The function environment the AWS tests give the real binaries: `moto`'s endpoint and
/// credentials, both secrets, the issuer, the contact-id subject and the region context claim.
/// Rotations in these tests are seconds apart, so keys may sign as soon as they are published.
pub fn lambda_env(moto: &Moto) -> Vec<(String, String)> {
    let mut env = moto.env();
    env.extend(
        [
            ("CHAT_AUTH_SIGNING_SECRET_ID", SIGNING),
            ("CHAT_AUTH_PUBLIC_KEYS_SECRET_ID", PUBLIC),
            ("CHAT_AUTH_ISSUER", ISSUER),
            ("CHAT_AUTH_SUBJECT_CLAIM", "contact_id"),
            ("CHAT_AUTH_CONTEXT_CLAIMS", "msdyn_region=region"),
            ("CHAT_AUTH_KEY_MIN_PUBLISHED_SECONDS", "0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    env
}
