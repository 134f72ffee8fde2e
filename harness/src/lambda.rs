//! cargo-lambda's local Lambda runtime, `cargo lambda watch --only-lambda-apis`, and function
//! processes under it. It serves the Runtime API that a function polls (`/.rt/<function>`) and
//! the Invoke API (`POST /2015-03-31/functions/<function>/invocations`, what `cargo lambda
//! invoke` calls). The harness starts the function processes itself, so that any program can
//! be the function (an aarch64 bootstrap under qemu-aarch64, a release binary pinned to a core),
//! with the environment Lambda gives a function and nothing else.

use crate::process::Process;
use serde_json::Value;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// One `cargo lambda watch`. Processes of one function share its queue: a caller that needs
/// two independent processes of the same function starts a second runtime. Clones share the
/// one process, which is killed when the last goes.
#[derive(Clone)]
pub struct LambdaRuntime(Arc<Runtime>);

struct Runtime {
    addr: SocketAddr,
    /// One client, so that invocations reuse their connection (a new one per invocation left
    /// thousands of sockets in TIME_WAIT over a benchmark's warm loop).
    http: reqwest::Client,
    _process: Process,
}

impl LambdaRuntime {
    /// Starts the runtime on a free loopback port, in the workspace (it reads the workspace's
    /// binary names: only those are functions it routes to), its own log to `log`.
    pub async fn start(log: Stdio) -> LambdaRuntime {
        let addr = SocketAddr::from(([127, 0, 0, 1], crate::free_port()));
        let mut process = Process::spawn(
            "cargo lambda watch (scripts/install-cargo-lambda.sh installs it)",
            Command::new(crate::cargo_lambda())
                .args(["lambda", "watch", "--only-lambda-apis", "--quiet"])
                .args(["--invoke-address", "127.0.0.1"])
                .args(["--invoke-port", &addr.port().to_string()])
                .current_dir(crate::root())
                .env("RUST_LOG", "error")
                .stdout(Stdio::null())
                .stderr(log),
        );
        // Any path it does not know would be routed to a function and wait for one.
        process.wait_listening(addr).await;
        LambdaRuntime(Arc::new(Runtime {
            addr,
            http: crate::http_client(),
            _process: process,
        }))
    }

    /// Runs the debug build's `binary` (beside [`crate::chat_auth_bin`]) as the function of
    /// that name with `env`, its log to `stderr`.
    pub fn run(&self, binary: &str, env: &[(String, String)], stderr: Stdio) -> Function {
        let bin = crate::chat_auth_bin().with_file_name(binary);
        self.run_command(Command::new(bin), binary, env, stderr)
    }

    /// Runs `command` as the function `name` (a binary name of the workspace) with `env`, its
    /// log to `stderr`.
    pub fn run_command(
        &self,
        mut command: Command,
        name: &str,
        env: &[(String, String)],
        stderr: Stdio,
    ) -> Function {
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://{}/.rt/{name}", self.0.addr),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "harness")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "harness")
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(stderr);
        Function {
            runtime: self.clone(),
            name: name.to_owned(),
            process: Process::spawn(name, &mut command),
        }
    }
}

/// One function process under a [`LambdaRuntime`], killed on drop (before its runtime, as a
/// function stops before the runtime it polls).
pub struct Function {
    /// The function process.
    pub process: Process,
    runtime: LambdaRuntime,
    name: String,
}

impl Function {
    /// Invokes the function with `event`: Ok(its answer), or Err(the runtime's error payload).
    pub async fn invoke(&self, event: &Value) -> Result<Value, Value> {
        self.invoke_within(event, Duration::from_secs(60)).await
    }

    /// As [`Function::invoke`], waiting up to `limit` for the answer (emulated CPUs are slow).
    pub async fn invoke_within(&self, event: &Value, limit: Duration) -> Result<Value, Value> {
        let url = format!(
            "http://{}/2015-03-31/functions/{}/invocations",
            self.runtime.0.addr, self.name
        );
        let response = self
            .runtime
            .0
            .http
            .post(url)
            .timeout(limit)
            .json(event)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{} did not answer within {limit:?}: {e}", self.name));
        let ok = response.status().is_success();
        let body = response
            .bytes()
            .await
            .expect("reading the invocation's answer");
        let payload = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        if ok { Ok(payload) } else { Err(payload) }
    }

    /// Invokes the function with tests/fixtures/`fixture` through the `cargo lambda invoke`
    /// command itself: its JSON output.
    pub async fn invoke_fixture(&self, fixture: &str) -> Value {
        let out = tokio::process::Command::new(crate::cargo_lambda())
            .args(["lambda", "invoke", &self.name, "--output-format", "json"])
            .args(["--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &self.runtime.0.addr.port().to_string()])
            .arg("--data-file")
            .arg(crate::apigw::fixture_path(fixture))
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
