//! Real protocol peers for the AWS tests: moto's Secrets Manager server, and cargo-lambda's
//! local Lambda runtime driving the real function binaries.
#![allow(dead_code)]

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
        let out = super::python_script("moto_register_lambda.py", &[&self.endpoint]);
        String::from_utf8(out).unwrap().trim().to_owned()
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

/// cargo-lambda's local Lambda runtime, `cargo lambda watch --only-lambda-apis`: it serves the
/// Runtime API that function processes poll (`/.rt/<function>`) and the Invoke API
/// (`POST /2015-03-31/functions/<function>/invocations`, what `cargo lambda invoke` calls).
/// The tests start the function processes themselves, so any program can be the function (an
/// aarch64 bootstrap under qemu-aarch64, for one). Processes of one function share its queue:
/// a test that needs two independent processes of the same function starts a second runtime.
/// Clones share the one `cargo lambda watch` process, which is killed when the last goes.
#[derive(Clone)]
pub struct LambdaRuntime(Arc<RuntimeProcess>);

struct RuntimeProcess {
    port: u16,
    child: std::sync::Mutex<Child>,
}

impl Drop for RuntimeProcess {
    fn drop(&mut self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// cargo-lambda: `CARGO_LAMBDA` if set, else the one scripts/install-cargo-lambda.sh puts in
/// target/lambda-venv.
pub fn cargo_lambda() -> std::path::PathBuf {
    std::env::var_os("CARGO_LAMBDA")
        .map(Into::into)
        .unwrap_or_else(|| super::root().join("target/lambda-venv/bin/cargo-lambda"))
}

impl LambdaRuntime {
    /// Starts `cargo lambda watch --only-lambda-apis` on a free loopback port, in the workspace
    /// (it reads the workspace's binary names: only those are functions it routes to).
    pub async fn start() -> LambdaRuntime {
        let port = super::free_port();
        let child = Command::new(cargo_lambda())
            .args(["lambda", "watch", "--only-lambda-apis", "--quiet"])
            .args(["--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &port.to_string()])
            .current_dir(super::root())
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (scripts/install-cargo-lambda.sh installs it)",
                    cargo_lambda().display()
                )
            });
        let runtime = LambdaRuntime(Arc::new(RuntimeProcess {
            port,
            child: std::sync::Mutex::new(child),
        }));
        let deadline = Instant::now() + Duration::from_secs(60);
        // Any request to a path it does not know would be routed to a function and wait for
        // one; a TCP connect is the readiness probe.
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            let exited = runtime.0.child.lock().unwrap().try_wait().unwrap();
            assert!(exited.is_none(), "cargo lambda watch exited: {exited:?}");
            assert!(
                Instant::now() < deadline,
                "cargo lambda watch did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        runtime
    }

    /// Runs target/debug/`binary` as the function of that name with `env`.
    pub async fn run(&self, binary: &str, env: &[(String, String)]) -> LambdaHost {
        self.run_with_stderr(binary, env, Stdio::inherit()).await
    }

    /// As [`LambdaRuntime::run`], with the function's log output sent to `stderr`.
    pub async fn run_with_stderr(
        &self,
        binary: &str,
        env: &[(String, String)],
        stderr: Stdio,
    ) -> LambdaHost {
        let bin = super::chat_auth_bin().with_file_name(binary);
        self.run_command(&bin, &[], binary, env, stderr).await
    }

    /// Runs `program args...` as the function `name` (a binary of the workspace) with `env`,
    /// its log output sent to `stderr`.
    pub async fn run_command(
        &self,
        program: &std::path::Path,
        args: &[&std::ffi::OsStr],
        name: &str,
        env: &[(String, String)],
        stderr: Stdio,
    ) -> LambdaHost {
        let port = self.0.port;
        let child = Command::new(program)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt/{name}"),
            )
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
            runtime: self.clone(),
            name: name.to_owned(),
            child,
        }
    }
}

/// One function process under a [`LambdaRuntime`], killed on drop.
pub struct LambdaHost {
    runtime: LambdaRuntime,
    name: String,
    child: Child,
}

impl Drop for LambdaHost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LambdaHost {
    /// Invokes the function with `event`; Ok(response) or Err(error payload).
    pub async fn invoke(&self, event: Value) -> Result<Value, Value> {
        self.invoke_within(event, Duration::from_secs(60)).await
    }

    /// As [`LambdaHost::invoke`], waiting up to `limit` for the answer (emulated CPUs are slow).
    pub async fn invoke_within(&self, event: Value, limit: Duration) -> Result<Value, Value> {
        let url = format!(
            "http://127.0.0.1:{}/2015-03-31/functions/{}/invocations",
            self.runtime.0.port, self.name
        );
        let response = super::client()
            .post(url)
            .timeout(limit)
            .json(&event)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} did not answer within {limit:?}: {e}", self.name));
        let ok = response.status().is_success();
        let body = response.bytes().await.unwrap();
        let payload = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        if ok { Ok(payload) } else { Err(payload) }
    }

    /// Invokes the function with the event in tests/fixtures/`fixture` through the
    /// `cargo lambda invoke` command itself; its JSON output.
    pub async fn invoke_fixture(&self, fixture: &str) -> Value {
        let out = tokio::process::Command::new(cargo_lambda())
            .args(["lambda", "invoke", &self.name, "--output-format", "json"])
            .args(["--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &self.runtime.0.port.to_string()])
            .arg("--data-file")
            .arg(super::root().join("tests/fixtures").join(fixture))
            .output()
            .await
            .expect("cargo lambda invoke");
        assert!(
            out.status.success(),
            "cargo lambda invoke {} {fixture}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("cargo lambda invoke prints JSON")
    }
}

/// The body of an API Gateway (payload 2.0) response as text: API Gateway decodes base64
/// bodies before the client sees them (application/jwt is not a text type for lambda_http).
pub fn response_body(response: &Value) -> Result<String, String> {
    use base64::Engine;
    let body = response["body"]
        .as_str()
        .ok_or_else(|| format!("no body in {response}"))?;
    if response["isBase64Encoded"] == true {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| format!("body is not base64: {e}"))?;
        String::from_utf8(bytes).map_err(|e| format!("body is not UTF-8: {e}"))
    } else {
        Ok(body.to_owned())
    }
}

/// The API Gateway (payload 2.0) `GET path` to public-keys, without a query: `/public-key` is
/// the multi-key array, `/.well-known/jwks.json` the JWKS.
pub fn public_keys_event(path: &str) -> Value {
    let mut event: Value =
        serde_json::from_str(include_str!("../../fixtures/apigw-v2-get-public-key.json")).unwrap();
    event["rawPath"] = serde_json::json!(path);
    event["routeKey"] = serde_json::json!(format!("GET {path}"));
    event["requestContext"]["http"]["path"] = serde_json::json!(path);
    event["requestContext"]["routeKey"] = serde_json::json!(format!("GET {path}"));
    event["rawQueryString"] = serde_json::json!("");
    event
        .as_object_mut()
        .unwrap()
        .remove("queryStringParameters");
    event
}

/// The issuer the AWS tests mint with.
pub const ISSUER: &str = "contosohelp.com";

fn issuer_config() -> chat_auth_shared::TokenPolicy {
    use chat_auth_shared::Section;
    chat_auth_shared::TokenPolicy::from_lookup(|k| (k == "CHAT_AUTH_ISSUER").then(|| ISSUER.to_owned()))
        .unwrap()
}

/// A token signed now by the store's current key.
pub async fn mint_now(
    store: &chat_auth_aws::SecretsManagerStore,
) -> chat_auth_shared::claims::MintedToken {
    use chat_auth_shared::store::RingSource;
    let ring = store.load_ring().await.unwrap().expect("a ring is current");
    let claims = issuer_config()
        .claims(
            "contact-1",
            &chat_auth_shared::CustomContext::new(),
            chat_auth_shared::time::now(),
        )
        .unwrap();
    chat_auth_shared::claims::mint(&ring.load().unwrap().signer, &claims).unwrap()
}

/// Every token verifies against what is published right now.
pub async fn assert_nothing_lost(
    store: &chat_auth_aws::SecretsManagerStore,
    tokens: &[chat_auth_shared::claims::MintedToken],
    when: &str,
) {
    use chat_auth_shared::store::PublicKeySource;
    let set = store
        .load_public()
        .await
        .unwrap()
        .expect("a set is published");
    let keys = set.render().unwrap().keys;
    for t in tokens {
        let report = chat_auth_shared::config::validator(&issuer_config()).validate(
            &t.token,
            &keys,
            chat_auth_shared::time::now(),
        );
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
pub fn life() -> chat_auth_shared::Lifecycle {
    chat_auth_shared::Lifecycle::new(chat_auth_shared::RingPolicy::new(30 * 86_400, 0, 0, 0, 30))
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
