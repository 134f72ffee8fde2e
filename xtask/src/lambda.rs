//! The function binaries as deployed, under cargo-lambda's local Lambda runtime (`cargo lambda
//! watch --only-lambda-apis`, the one the tests use): cold starts with the file ring, then the
//! Secrets Manager store on moto, whose request log counts the calls a function makes over
//! warm invocations, and the function's CPU per warm invocation. Before them, the size of each
//! deployed function's zip; with each cold start, where its time went ([`init`]).

use crate::client::Client;
use crate::error::{Error, Result};
use crate::figures::{Figure, Function, Id, Round};
use crate::floor::Floors;
use crate::local::{CONTEXT_CLAIMS, SUB};
use crate::process::log_to;
use crate::settings::{Settings, Workspace};
use crate::sys;
use crate::table::{duration, mib, spread, thousands};
use chat_auth_harness::apigw::{fixture, response_body};
use chat_auth_harness::lambda::{self as harness, LambdaRuntime};
use chat_auth_harness::moto::Moto;
use serde_json::{Value, json};
use std::path::Path;
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
    if !chat_auth_harness::cargo_lambda().exists() {
        return Err(Error::Setup(
            "cargo-lambda is missing (scripts/install-cargo-lambda.sh)".into(),
        ));
    }
    let ring = workspace.ring()?;
    let mut functions = Vec::new();
    for function in Function::ALL {
        functions.push((function, workspace.binary(function.name())?));
    }
    let host = Host {
        settings,
        workspace,
        client,
    };

    // The file ring: what the functions read under a local runtime.
    let file_env = [
        ("CHAT_AUTH_DATA_DIR".to_owned(), ring.display().to_string()),
        (
            "CHAT_AUTH_CONTEXT_CLAIMS".to_owned(),
            CONTEXT_CLAIMS.to_owned(),
        ),
    ];
    let mut figures = vec![zips(workspace)?];
    let mut token = String::new();
    for (function, binary) in &functions {
        figures.push(host.cold_starts(*function, binary, &file_env, &mut token)?);
    }

    if !chat_auth_harness::python().exists() {
        crate::note("Lambda: moto (target/py) is missing; Secrets Manager rows skipped");
        return Ok(figures);
    }
    let moto = Moto::start(log_to(&workspace.log("moto"))?);
    let mut moto = MotoLog {
        moto: client.block_on(moto),
        log: workspace.log("moto"),
        env: Vec::new(),
    };
    for (name, file) in [
        (SIGNING_SECRET, "ring.json"),
        (PUBLIC_SECRET, "public.json"),
    ] {
        let path = ring.join(file);
        let value = std::fs::read_to_string(&path).map_err(|e| Error::file(&path, e))?;
        client.block_on(moto.moto.create_secret(name, &value));
    }
    if moto.requests()? < 2 {
        return Err(Error::Setup(format!(
            "moto's log ({}) shows none of the run's own calls: it cannot count the functions'",
            moto.log.display()
        )));
    }
    moto.env = moto.moto.env();
    moto.env.extend(
        [
            ("CHAT_AUTH_SIGNING_SECRET_ID", SIGNING_SECRET),
            ("CHAT_AUTH_PUBLIC_KEYS_SECRET_ID", PUBLIC_SECRET),
            ("CHAT_AUTH_CONTEXT_CLAIMS", CONTEXT_CLAIMS),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let do_nothing = host.do_nothing(&workspace.binary(Function::DoNothing.name())?, floors)?;
    let baseline = do_nothing.value();
    figures.push(do_nothing);
    let mut peaks = Vec::new();
    for (function, binary) in &functions {
        let floor = floors.take()?;
        let (warm, peak) = host.warm(&moto, *function, binary, &token, floor, baseline)?;
        figures.extend(warm);
        peaks.push((function.name(), peak));
    }
    figures.push(largest(Id::FunctionRss, &peaks));
    figures.push(host.kms_custody(&moto, &functions[0].1, floors, baseline)?);
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
}

impl Host<'_> {
    /// Spawn to first answer, `BENCH_COLD_RUNS` times, each with a fresh runtime. mint-token's
    /// answer becomes `token`, which validate-token then validates.
    fn cold_starts(
        &self,
        function: Function,
        binary: &Path,
        env: &[(String, String)],
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
            inits.extend(started.init);
            if function == Function::MintToken {
                *token = response_body(&started.answer).map_err(Error::Answer)?;
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
        moto: &MotoLog,
        function: Function,
        binary: &Path,
        token: &str,
        floor: Option<usize>,
        baseline: f64,
    ) -> Result<([Figure; 3], f64)> {
        crate::note(format!(
            "Lambda: {}, Secrets Manager store (moto), {} cold starts, then {WARM:?} of warm \
             invocations",
            function.name(),
            self.settings.cold_runs
        ));
        let event = event(function, token);
        let before = moto.requests()?;
        let mut started = self.cold_start(function, binary, &moto.env, &event)?;
        let mut cold_calls = moto.requests()? - before;
        let mut rounds = vec![started.round];
        let mut inits = Vec::from_iter(started.init);
        for _ in 1..self.settings.cold_runs {
            // The previous start's runtime and process stop before the next start.
            drop(started);
            let before = moto.requests()?;
            started = self.cold_start(function, binary, &moto.env, &event)?;
            cold_calls = moto.requests()? - before;
            rounds.push(started.round);
            inits.extend(started.init);
        }
        let pid = started.function.process.pid();
        let before = moto.requests()?;
        let (cpu, warm) = self.warm_cpu(&started, function, &event)?;
        let peak = sys::status_bytes(pid, "VmHWM")?;
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
                    "{} over {invocations} warm invocations, {} beyond the do-nothing \
                     function's; peak RSS {}",
                    duration(cpu),
                    duration(cpu - baseline),
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

    /// mint-token in KMS custody, its ring's keys made in moto's KMS by the domain's own
    /// custody code: one cold start, then [`WARM`] of warm invocations; CPU and wall time per
    /// invocation (the wall time is moto's signing in Python, nothing like AWS KMS's).
    fn kms_custody(
        &self,
        moto: &MotoLog,
        binary: &Path,
        floors: &mut Floors,
        baseline: f64,
    ) -> Result<Figure> {
        crate::note(format!(
            "Lambda: mint-token, KMS custody (moto), one cold start, then {WARM:?} of warm \
             invocations"
        ));
        let (signing, public) = ("bench/kms-signing", "bench/kms-public");
        let store = chat_auth_aws::SecretsManagerStore::new(
            moto.moto.client(),
            Some(signing.into()),
            public.into(),
        );
        let roles = chat_auth_aws::kms::KeyRoles {
            signer: "arn:aws:iam::123456789012:role/bench-mint-token".into(),
            rotator: "arn:aws:iam::123456789012:role/bench-rotate-keys".into(),
        };
        let custody =
            chat_auth_aws::kms::KmsCustody::new(moto.moto.kms_client(), "bench".into(), roles)?;
        let life = chat_auth_shared::Lifecycle::in_custody(
            chat_auth_shared::RingPolicy::new(30 * 86_400, 0, 300, 60, 30),
            std::sync::Arc::new(custody),
        );
        self.client.block_on(async {
            for name in [signing, public] {
                moto.moto.create_secret(name, "{}").await;
            }
            chat_auth_shared::store::ensure_ring(&store, &life, chat_auth_shared::time::now()).await
        })?;
        let mut env = moto.env.clone();
        for (k, v) in [
            ("CHAT_AUTH_SIGNING_SECRET_ID", signing),
            ("CHAT_AUTH_PUBLIC_KEYS_SECRET_ID", public),
            ("CHAT_AUTH_KEY_CUSTODY", "kms"),
        ] {
            env.retain(|(name, _)| name != k);
            env.push((k.to_owned(), v.to_owned()));
        }
        let floor = floors.take()?;
        let event = event(Function::MintToken, "");
        let started = self.cold_start(Function::MintToken, binary, &env, &event)?;
        let began = Instant::now();
        let (cpu, warm) = self.warm_cpu(&started, Function::MintToken, &event)?;
        let wall = began.elapsed().as_secs_f64() / warm as f64;
        Ok(Figure::single(
            Id::WarmCpuKms,
            cpu,
            floor,
            format!(
                "{} over {} warm invocations, {} beyond the do-nothing function's; wall {} per \
                 invocation (moto's)",
                duration(cpu),
                thousands(warm as f64),
                duration(cpu - baseline),
                duration(wall)
            ),
        ))
    }

    /// The do-nothing function: one cold start, then [`WARM`] of warm invocations; its CPU per
    /// invocation, with a floor of its own.
    fn do_nothing(&self, binary: &Path, floors: &mut Floors) -> Result<Figure> {
        crate::note(format!(
            "Lambda: do-nothing, one cold start, then {WARM:?} of warm invocations"
        ));
        let floor = floors.take()?;
        let event = event(Function::DoNothing, "");
        let started = self.cold_start(Function::DoNothing, binary, &[], &event)?;
        let (cpu, warm) = self.warm_cpu(&started, Function::DoNothing, &event)?;
        Ok(Figure::single(
            Id::WarmCpu(Function::DoNothing),
            cpu,
            floor,
            format!(
                "{} over {} warm invocations",
                duration(cpu),
                thousands(warm as f64)
            ),
        ))
    }

    /// Invokes `started` with `event` for [`WARM`]: the function process's CPU per invocation,
    /// and how many there were.
    fn warm_cpu(
        &self,
        started: &ColdStart,
        function: Function,
        event: &Value,
    ) -> Result<(f64, usize)> {
        let pid = started.function.process.pid();
        let cpu = sys::process_cpu(pid)?;
        let end = Instant::now() + WARM;
        let mut warm = 0;
        while Instant::now() < end {
            self.invoke(&started.function, function, event)?;
            warm += 1;
        }
        let cpu = (sys::process_cpu(pid)? - cpu).as_secs_f64() / warm as f64;
        Ok((cpu, warm))
    }

    /// One cold start: a fresh runtime, `function` started under it on the server core, and
    /// `event` invoked; its spawn-to-first-answer time and where it went, the answer (checked)
    /// and the two processes, which stop when it is dropped.
    fn cold_start(
        &self,
        function: Function,
        binary: &Path,
        env: &[(String, String)],
        event: &Value,
    ) -> Result<ColdStart> {
        // One runtime per function process (on the load core), so that no invocation waits in
        // a queue a killed process was polling.
        let runtime = self.client.block_on(LambdaRuntime::start(log_to(
            &self.workspace.log("cargo-lambda"),
        )?));
        let name = function.name();
        let log = self.workspace.log(name);
        let (spawned, start) = (SystemTime::now(), Instant::now());
        let started = self.settings.cores.on_server(|| {
            Ok::<_, Error>(runtime.run_command(Command::new(binary), name, env, log_to(&log)?))
        })??;
        let answer = self.invoke(&started, function, event)?;
        let round = Round {
            value: start.elapsed().as_secs_f64(),
            floor: None,
        };
        check(function, &answer)?;
        // The do-nothing function logs no start of its own to break down.
        let init = match function {
            Function::DoNothing => None,
            _ => Some(Breakdown::read(&log, spawned, round.value)?),
        };
        Ok(ColdStart {
            function: started,
            _runtime: runtime,
            round,
            init,
            answer,
        })
    }

    /// Invokes `function` through the Invoke API (what `cargo lambda invoke` calls); its
    /// answer, which must have the function's status.
    fn invoke(
        &self,
        process: &harness::Function,
        function: Function,
        event: &Value,
    ) -> Result<Value> {
        let answer = self
            .client
            .block_on(process.invoke(event))
            .map_err(|e| Error::Answer(format!("{} failed: {e}", function.name())))?;
        if answer["statusCode"] != function.status() {
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

/// A function just started cold. The function is dropped (stopped) before its runtime, as a
/// function stops before the runtime it polls.
struct ColdStart {
    function: harness::Function,
    _runtime: LambdaRuntime,
    round: Round,
    init: Option<Breakdown>,
    answer: Value,
}

/// Checks that a first answer is the real thing: a token, an active validation, keys.
fn check(function: Function, answer: &Value) -> Result<()> {
    if function == Function::DoNothing {
        return Ok(());
    }
    let body = response_body(answer).map_err(Error::Answer)?;
    let ok = match function {
        Function::MintToken => body.split('.').count() == 3,
        Function::ValidateToken => {
            serde_json::from_str::<Value>(&body).is_ok_and(|report| report["active"] == true)
        }
        Function::PublicKeys => {
            chat_auth_shared::publish::parse_public_key_document(body.as_bytes())
                .is_ok_and(|keys| !keys.is_empty())
        }
        Function::DoNothing => true,
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

/// The event of `function`'s route, from tests/fixtures: `GET /token` with the bench's caller as
/// the claims the gateway's JWT authorizer verified, `POST /validate` of `token`,
/// `GET /public-key`.
fn event(function: Function, token: &str) -> Value {
    match function {
        Function::MintToken => {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            let mut event = fixture("apigw-v2-get-token.json");
            event["requestContext"]["authorizer"]["jwt"]["claims"] = json!({
                "sub": SUB, "cart_value": "10000", "vip": "true", "region": "emea",
                "iat": now.to_string(), "exp": (now + 3600).to_string(),
            });
            event
        }
        Function::ValidateToken => {
            let mut event = fixture("apigw-v2-post-validate.json");
            event["body"] = json!(json!({ "token": token }).to_string());
            event
        }
        Function::PublicKeys | Function::DoNothing => fixture("apigw-v2-get-public-key.json"),
    }
}

/// moto, with the log whose request lines count the Secrets Manager calls a function makes,
/// and the environment that points a function at its two secrets there.
struct MotoLog {
    moto: Moto,
    log: std::path::PathBuf,
    env: Vec<(String, String)>,
}

impl MotoLog {
    /// Requests moto has answered so far: one line of its log each.
    fn requests(&self) -> Result<usize> {
        let log = std::fs::read(&self.log).map_err(|e| Error::file(&self.log, e))?;
        let line = b"\"POST / HTTP/1.1\"";
        Ok(log.windows(line.len()).filter(|w| w == line).count())
    }
}
