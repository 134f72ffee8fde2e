//! The function binaries as deployed, under cargo-lambda's local Lambda runtime (`cargo lambda
//! watch --only-lambda-apis`, the one the tests use): cold starts with the file ring, then the
//! Secrets Manager store on moto, whose request log counts the calls a function makes over
//! warm invocations, and the function's CPU per warm invocation. Before them, the size of each
//! deployed function's zip; with each cold start, where its time went ([`init`]).

use crate::client::{Client, Request};
use crate::error::{Error, Result};
use crate::figures::{Figure, Function, Id, Round};
use crate::floor::Floors;
use crate::local::{CONTEXT_CLAIMS, SUB};
use crate::process::{Running, free_port, loopback};
use crate::settings::{Settings, Workspace};
use crate::sys;
use crate::table::{duration, mib, spread, thousands};
use base64::Engine;
use hyper::header::HeaderName;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

mod init;
use init::Breakdown;

/// Warm invocations run this long per function.
const WARM: Duration = Duration::from_secs(5);
/// Every function template.yaml deploys, by binary name.
const DEPLOYED: [&str; 5] = [
    "mint-token",
    "validate-token",
    "public-keys",
    "provider-script",
    "rotate-keys",
];
/// The secrets the ring and the public keys are stored in.
const SIGNING_SECRET: &str = "bench/signing";
const PUBLIC_SECRET: &str = "bench/public";

/// Cold starts with the file ring; with moto installed, the Secrets Manager rows.
pub fn run(
    settings: &Settings,
    workspace: &Workspace,
    client: &Client,
    floors: &mut Floors,
) -> Result<Vec<Figure>> {
    let cargo_lambda = settings
        .cargo_lambda
        .clone()
        .or_else(|| workspace.tool("lambda-venv/bin/cargo-lambda"))
        .ok_or_else(|| {
            Error::Setup("cargo-lambda is missing (scripts/install-cargo-lambda.sh)".into())
        })?;
    let ring = workspace.ring()?;
    let mut functions = Vec::new();
    for function in Function::ALL {
        functions.push((function, workspace.binary(function.name())?));
    }
    let host = Host {
        settings,
        workspace,
        client,
        cargo_lambda,
    };

    // The file ring: what the functions read under a local runtime.
    let file_env = [
        ("CHAT_AUTH_DATA_DIR", ring.display().to_string()),
        ("CHAT_AUTH_CONTEXT_CLAIMS", CONTEXT_CLAIMS.to_owned()),
    ];
    let mut figures = vec![zips(workspace)?];
    let mut token = String::new();
    for (function, binary) in &functions {
        figures.push(host.cold_starts(*function, binary, &file_env, &mut token)?);
    }

    let Some(moto) = workspace.tool("py/bin/moto_server") else {
        crate::note("Lambda: target/py/bin/moto_server is missing; Secrets Manager rows skipped");
        return Ok(figures);
    };
    let moto = Moto::start(&moto, workspace, client)?;
    moto.create_secret(SIGNING_SECRET, &ring.join("ring.json"))?;
    moto.create_secret(PUBLIC_SECRET, &ring.join("public.json"))?;
    if moto.requests()? < 2 {
        return Err(Error::Setup(format!(
            "moto's log ({}) shows none of the run's own calls: it cannot count the functions'",
            moto.log.display()
        )));
    }
    let store_env = [
        ("AWS_ENDPOINT_URL", format!("http://{}", moto.addr)),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("CHAT_AUTH_SIGNING_SECRET_ID", SIGNING_SECRET.into()),
        ("CHAT_AUTH_PUBLIC_KEYS_SECRET_ID", PUBLIC_SECRET.into()),
        ("CHAT_AUTH_CONTEXT_CLAIMS", CONTEXT_CLAIMS.into()),
    ];
    let mut peaks = Vec::new();
    for (function, binary) in &functions {
        let floor = floors.take()?;
        let (warm, peak) = host.warm(&moto, *function, binary, &store_env, &token, floor)?;
        figures.extend(warm);
        peaks.push((function.name(), peak));
    }
    figures.push(largest(Id::FunctionRss, &peaks));
    Ok(figures)
}

/// Each deployed function zipped as a deploy zips it (the stripped release binary as
/// `bootstrap`, deflated, mode 755), in memory; the largest is the figure.
fn zips(workspace: &Workspace) -> Result<Figure> {
    let mut sizes = Vec::new();
    for name in DEPLOYED {
        let binary = workspace.binary(name)?;
        let mut file = std::fs::File::open(&binary).map_err(|e| Error::file(&binary, e))?;
        let zip_error = |e: zip::result::ZipError| Error::io(format!("zipping {name}"), e.into());
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(0o755);
        zip.start_file("bootstrap", options).map_err(zip_error)?;
        std::io::copy(&mut file, &mut zip).map_err(|e| Error::file(&binary, e))?;
        let zipped = zip.finish().map_err(zip_error)?.into_inner().len();
        sizes.push((name, zipped as f64));
    }
    Ok(largest(Id::LambdaZip, &sizes))
}

/// A figure of the largest of `sizes` (bytes by function), listing them all.
fn largest(id: Id, sizes: &[(&str, f64)]) -> Figure {
    let value = sizes.iter().map(|(_, b)| *b).fold(0.0, f64::max);
    let all: Vec<String> = sizes
        .iter()
        .map(|(name, bytes)| format!("{name} {}", mib(*bytes)))
        .collect();
    Figure::single(id, value, None, all.join(", "))
}

/// What starting runtimes and functions needs.
struct Host<'a> {
    settings: &'a Settings,
    workspace: &'a Workspace,
    client: &'a Client,
    cargo_lambda: PathBuf,
}

impl Host<'_> {
    /// Spawn to first answer, `BENCH_COLD_RUNS` times, each with a fresh runtime. mint-token's
    /// answer becomes `token`, which validate-token then validates.
    fn cold_starts(
        &self,
        function: Function,
        binary: &Path,
        env: &[(&str, String)],
        token: &mut String,
    ) -> Result<Figure> {
        crate::note(format!(
            "Lambda: {}, file ring, {} cold starts",
            function.name(),
            self.settings.cold_runs
        ));
        let (mut rounds, mut inits) = (Vec::new(), Vec::new());
        for _ in 0..self.settings.cold_runs {
            let started = self.cold_start(function, binary, env, &event(function, token))?;
            rounds.push(started.round);
            inits.push(started.init);
            if function == Function::MintToken {
                *token = body(&started.answer);
            }
        }
        Ok(Figure {
            id: Id::LambdaColdFile(function),
            detail: format!("{}; {}", spread(&rounds), Breakdown::medians(&inits)),
            rounds,
        })
    }

    /// With the Secrets Manager store: `BENCH_COLD_RUNS` cold starts (one alone varies from 15
    /// to 36 ms), the last of which then serves [`WARM`] of warm invocations: the function's CPU
    /// per invocation and the Secrets Manager calls moto saw; and its peak RSS in bytes.
    fn warm(
        &self,
        moto: &Moto<'_>,
        function: Function,
        binary: &Path,
        env: &[(&str, String)],
        token: &str,
        floor: Option<usize>,
    ) -> Result<([Figure; 3], f64)> {
        crate::note(format!(
            "Lambda: {}, Secrets Manager store (moto), {} cold starts, then {WARM:?} of warm \
             invocations",
            function.name(),
            self.settings.cold_runs
        ));
        let event = event(function, token);
        let before = moto.requests()?;
        let mut started = self.cold_start(function, binary, env, &event)?;
        let mut cold_calls = moto.requests()? - before;
        let mut rounds = vec![started.round];
        let mut inits = vec![started.init];
        for _ in 1..self.settings.cold_runs {
            // The previous start's runtime and process stop before the next start.
            drop(started);
            let before = moto.requests()?;
            started = self.cold_start(function, binary, env, &event)?;
            cold_calls = moto.requests()? - before;
            rounds.push(started.round);
            inits.push(started.init);
        }
        let ColdStart {
            process, runtime, ..
        } = started;
        let before = moto.requests()?;

        let cpu = sys::process_cpu(process.pid())?;
        let end = Instant::now() + WARM;
        let mut warm = 0;
        while Instant::now() < end {
            runtime.invoke(function, &event)?;
            warm += 1;
        }
        let cpu = (sys::process_cpu(process.pid())? - cpu).as_secs_f64() / warm as f64;
        let peak = sys::status_bytes(process.pid(), "VmHWM")?;
        let warm_calls = moto.requests()? - before;
        let invocations = thousands(warm as f64);
        let figures = [
            Figure {
                id: Id::LambdaColdSecrets(function),
                detail: format!(
                    "{}; Secrets Manager calls at start: {cold_calls}; {}",
                    spread(&rounds),
                    Breakdown::medians(&inits)
                ),
                rounds,
            },
            Figure::single(
                Id::WarmCpu(function),
                cpu,
                floor,
                format!(
                    "{} over {invocations} warm invocations; peak RSS {}",
                    duration(cpu),
                    mib(peak)
                ),
            ),
            Figure::single(
                Id::SecretsCalls(function),
                warm_calls as f64 / warm as f64,
                None,
                format!("{warm_calls} calls over {invocations} warm invocations"),
            ),
        ];
        Ok((figures, peak))
    }

    /// One cold start: a fresh runtime, `function` started under it, and `event` invoked; its
    /// spawn-to-first-answer time and where it went, the answer (checked) and the two
    /// processes, which stop when it is dropped.
    fn cold_start(
        &self,
        function: Function,
        binary: &Path,
        env: &[(&str, String)],
        event: &Value,
    ) -> Result<ColdStart<'_>> {
        let runtime = self.runtime()?;
        let (spawned, start) = (SystemTime::now(), Instant::now());
        let process = runtime.start(function, binary, env)?;
        let answer = runtime.invoke(function, event)?;
        let round = Round {
            value: start.elapsed().as_secs_f64(),
            floor: None,
        };
        check(function, &answer)?;
        let log = self.workspace.log(function.name());
        let init = Breakdown::read(&log, spawned, round.value)?;
        Ok(ColdStart {
            process,
            runtime,
            round,
            init,
            answer,
        })
    }

    /// A fresh runtime, on the load core: one per function process, so that no invocation
    /// waits in a queue a killed process was polling.
    fn runtime(&self) -> Result<Runtime<'_>> {
        let addr = loopback(free_port()?);
        let mut process = Running::start(
            "cargo lambda watch",
            Command::new(&self.cargo_lambda)
                .args(["lambda", "watch", "--only-lambda-apis", "--quiet"])
                .args(["--invoke-address", "127.0.0.1"])
                .args(["--invoke-port", &addr.port().to_string()])
                // It routes to the workspace's binaries by name.
                .current_dir(&self.workspace.root)
                .env("RUST_LOG", "error"),
            &self.workspace.log("cargo-lambda"),
        )?;
        // Any request would be routed to a function and wait for one: connecting is the probe.
        process.wait_listening(addr)?;
        Ok(Runtime {
            host: self,
            addr,
            _process: process,
        })
    }
}

/// A function just started cold. The process is dropped (stopped) before its runtime, as a
/// function stops before the runtime it polls.
struct ColdStart<'a> {
    process: Running,
    runtime: Runtime<'a>,
    round: Round,
    init: Breakdown,
    answer: Value,
}

/// One `cargo lambda watch`.
struct Runtime<'a> {
    host: &'a Host<'a>,
    addr: SocketAddr,
    _process: Running,
}

impl Runtime<'_> {
    /// Starts `binary` as `function` on the server core, with the environment Lambda gives a
    /// function and `env`, and nothing else.
    fn start(&self, function: Function, binary: &Path, env: &[(&str, String)]) -> Result<Running> {
        let name = function.name();
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://{}/.rt/{name}", self.addr),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (k, v)));
        self.host
            .settings
            .cores
            .start_on_server(name, &mut command, &self.host.workspace.log(name))
    }

    /// Invokes `function` through the Invoke API (what `cargo lambda invoke` calls); the
    /// function's answer, which must be a 200.
    fn invoke(&self, function: Function, event: &Value) -> Result<Value> {
        let path = format!("/2015-03-31/functions/{}/invocations", function.name());
        let request = Request::post_json(&path, event);
        let answer = self
            .host
            .client
            .send(self.addr, &request)?
            .success(&request)?
            .json()?;
        if answer["statusCode"] != 200 {
            let mut text = answer.to_string();
            text.truncate(300);
            return Err(Error::Answer(format!(
                "{} answered {text}",
                function.name()
            )));
        }
        Ok(answer)
    }
}

/// Checks that a first answer is the real thing: a token, an active validation, keys.
fn check(function: Function, answer: &Value) -> Result<()> {
    let body = body(answer);
    let ok = match function {
        Function::MintToken => body.split('.').count() == 3,
        Function::ValidateToken => {
            serde_json::from_str::<Value>(&body).is_ok_and(|report| report["active"] == true)
        }
        Function::PublicKeys => chat_auth_shared::publish::parse_public_key_document(body.as_bytes())
            .is_ok_and(|keys| !keys.is_empty()),
    };
    if ok {
        Ok(())
    } else {
        let mut text = body;
        text.truncate(300);
        Err(Error::Answer(format!(
            "{} answered {text}",
            function.name()
        )))
    }
}

/// The body of a function's HTTP API answer (base64 for media types lambda_http deems binary,
/// such as `application/jwt`).
fn body(answer: &Value) -> String {
    let body = answer["body"].as_str().unwrap_or_default();
    if answer["isBase64Encoded"] == true {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap_or_default();
        return String::from_utf8_lossy(&bytes).into_owned();
    }
    body.to_owned()
}

/// An HTTP API (payload 2.0) event for `function`'s route: `GET /token` with the claims the
/// gateway's JWT authorizer verified, `POST /validate` of `token`, `GET /public-key`.
fn event(function: Function, token: &str) -> Value {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let (method, path) = match function {
        Function::MintToken => ("GET", "/token"),
        Function::ValidateToken => ("POST", "/validate"),
        Function::PublicKeys => ("GET", "/public-key"),
    };
    let host = "abc123.execute-api.eu-west-1.amazonaws.com";
    let mut event = json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"accept": "*/*", "host": host},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": host,
            "domainPrefix": "abc123",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "203.0.113.7", "userAgent": "bench"},
            "requestId": "bench",
            "routeKey": format!("{method} {path}"),
            "stage": "$default",
            "time": "21/Nov/2026:00:00:00 +0000",
            "timeEpoch": now * 1000,
        },
        "isBase64Encoded": false,
    });
    match function {
        Function::MintToken => {
            event["requestContext"]["authorizer"] = json!({"jwt": {"claims": {
                "sub": SUB, "cart_value": "10000", "vip": "true", "region": "emea",
                "iat": now.to_string(), "exp": (now + 3600).to_string(),
            }, "scopes": null}});
        }
        Function::ValidateToken => {
            event["headers"]["content-type"] = json!("application/json");
            event["body"] = json!(json!({ "token": token }).to_string());
        }
        Function::PublicKeys => {}
    }
    event
}

/// moto's Secrets Manager, on the load core. It does not check signatures, so a fixed
/// `Authorization` header does for the run's own calls.
struct Moto<'a> {
    addr: SocketAddr,
    client: &'a Client,
    log: PathBuf,
    _process: Running,
}

impl<'a> Moto<'a> {
    fn start(binary: &Path, workspace: &Workspace, client: &'a Client) -> Result<Self> {
        let addr = loopback(free_port()?);
        let log = workspace.log("moto");
        let mut process = Running::start(
            "moto_server",
            Command::new(binary).args(["-H", "127.0.0.1", "-p", &addr.port().to_string()]),
            &log,
        )?;
        process.wait_http(client, addr, "/moto-api/")?;
        Ok(Moto {
            addr,
            client,
            log,
            _process: process,
        })
    }

    /// `CreateSecret` `name` holding the contents of `file`.
    fn create_secret(&self, name: &str, file: &Path) -> Result<()> {
        let value = std::fs::read_to_string(file).map_err(|e| Error::file(file, e))?;
        let target = HeaderName::from_static("x-amz-target");
        let request = Request::post_json("/", &json!({"Name": name, "SecretString": value}))
            .header(hyper::header::CONTENT_TYPE, "application/x-amz-json-1.1")
            .header(target, "secretsmanager.CreateSecret")
            .header(
                hyper::header::AUTHORIZATION,
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/secretsmanager/aws4_request, \
                 SignedHeaders=host, Signature=0",
            );
        self.client.send(self.addr, &request)?.success(&request)?;
        Ok(())
    }

    /// Requests moto has answered so far: one line of its log each.
    fn requests(&self) -> Result<usize> {
        let log = std::fs::read(&self.log).map_err(|e| Error::file(&self.log, e))?;
        let line = b"\"POST / HTTP/1.1\"";
        Ok(log.windows(line.len()).filter(|w| w == line).count())
    }
}
