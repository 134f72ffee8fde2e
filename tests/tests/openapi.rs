//! GIVEN the real `chat-auth serve` binary in development mode, WHEN schemathesis (installed
//! under target/py by scripts/test.sh) generates requests for every operation of
//! `openapi.json`, valid and invalid, THEN no answer is a 5xx and every status, content type and
//! body is the one the document declares; the document served at `GET /openapi.json` is the
//! repository's file; and a deliberately broken copy of the document fails the same run (so the
//! check can fail).

use crate::common;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What schemathesis checks on every response.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";
/// Fixed, so that a failure reproduces.
const SEED: &str = "20260101";
/// Test cases per operation and phase: keeps the whole run well under a minute on 2 cores.
const MAX_EXAMPLES: &str = "200";
/// A run that has not finished by then is killed and fails the test.
const RUN_DEADLINE: Duration = Duration::from_secs(240);

/// `/issue`'s key in development mode (`X-Chat-Auth-Issue-Key`), fixed for this run.
const ISSUE_KEY: &str = "openapi-contract-issue-key-0123456789";

/// Per-operation headers on top of the signed-in bearer token: `GET /token` asks for the JSON
/// form (so its schema is checked; `POST /token` and `/issue` keep the raw `application/jwt`),
/// `/issue` gets its key (so its bodies reach the handler), and `OPTIONS /token` carries a
/// bearer token the identity layer refuses (its 401).
fn config() -> String {
    format!(
        r#"
[[operations]]
include-name = "GET /token"
headers = {{ Accept = "application/json" }}

[[operations]]
include-name = "POST /issue"
headers = {{ X-Chat-Auth-Issue-Key = "{ISSUE_KEY}" }}

[[operations]]
include-name = "OPTIONS /token"
headers = {{ Authorization = "Bearer not-a-token" }}
"#
    )
}

/// One finished schemathesis run.
struct Run {
    success: bool,
    output: String,
    operations: u64,
    requests: u64,
    /// Per operation label: response status → count.
    statuses: BTreeMap<String, BTreeMap<u16, u64>>,
}

/// `st run SCHEMA --url BASE ...` with the checks above, its report parsed from NDJSON.
fn schemathesis(schema: &str, base: &str, id_token: &str, work: &Path, extra: &[&str]) -> Run {
    let st = common::root().join("target/py/bin/st");
    assert!(
        st.exists(),
        "{} is missing: scripts/test.sh installs schemathesis into target/py",
        st.display()
    );
    let config_path = work.join("schemathesis.toml");
    std::fs::write(&config_path, config()).unwrap();
    let report = work.join("report.ndjson");
    let _ = std::fs::remove_file(&report);
    let log = work.join("st.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let authorization = format!("Authorization: Bearer {id_token}");
    let mut command = Command::new(&st);
    command
        .arg("--config-file")
        .arg(&config_path)
        .args(["run", schema, "--url", base, "-w", "1", "--checks", CHECKS])
        .args(["--seed", SEED, "--max-examples", MAX_EXAMPLES])
        .args(["--request-timeout", "10", "--generation-database", "none"])
        .args(["--no-color", "--report", "ndjson", "--report-ndjson-path"])
        .arg(&report)
        .args(["-H", &authorization])
        .args(extra)
        // schemathesis keeps .hypothesis/ and .schemathesis/ in its working directory.
        .current_dir(work)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "120")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file);
    let mut child = command.spawn().expect("schemathesis starts");
    let deadline = Instant::now() + RUN_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "schemathesis ran over {RUN_DEADLINE:?}:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = std::fs::read_to_string(&log).unwrap();
    let (operations, requests, statuses) = parse_report(&report, &output);
    Run {
        success: status.success(),
        output,
        operations,
        requests,
        statuses,
    }
}

/// The number of selected operations, of requests sent (the interactions of every scenario,
/// schemathesis's own capability probes aside), and the statuses seen per operation.
fn parse_report(report: &Path, output: &str) -> (u64, u64, BTreeMap<String, BTreeMap<u16, u64>>) {
    let text = std::fs::read_to_string(report)
        .unwrap_or_else(|e| panic!("no report at {} ({e}):\n{output}", report.display()));
    let mut operations = 0;
    let mut requests = 0;
    let mut statuses: BTreeMap<String, BTreeMap<u16, u64>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let event: Value = serde_json::from_str(line).unwrap();
        if let Some(loaded) = event.get("LoadingFinished") {
            operations = loaded["statistic"]["operations"]["selected"]
                .as_u64()
                .unwrap();
        }
        let Some(scenario) = event.get("ScenarioFinished") else {
            continue;
        };
        let recorder = &scenario["recorder"];
        let label = recorder["label"].as_str().unwrap_or("?").to_owned();
        for interaction in recorder["interactions"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
        {
            requests += 1;
            if let Some(status) = interaction["response"]["status_code"].as_u64() {
                *statuses
                    .entry(label.clone())
                    .or_default()
                    .entry(status as u16)
                    .or_default() += 1;
            }
        }
    }
    (operations, requests, statuses)
}

/// The operations (path and method) the document declares.
fn operations_in(document: &Value) -> u64 {
    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    document["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().keys())
        .filter(|key| METHODS.contains(&key.as_str()))
        .count() as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_answers_as_its_openapi_document_says() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let server = common::serve_process(
        data.path(),
        &[
            ("CHAT_AUTH_DEV", "1"),
            ("CHAT_AUTH_DEV_ISSUE_KEY", ISSUE_KEY),
        ],
        Stdio::null(),
    )
    .await;

    // The served document is the repository's file, byte for byte.
    let path = common::root().join("openapi.json");
    let file = std::fs::read_to_string(&path).unwrap();
    let served = common::client()
        .get(format!("{}/openapi.json", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "application/json");
    assert!(
        served.text().await.unwrap() == file,
        "GET /openapi.json is not {}: rebuild the binary (cargo build --bins)",
        path.display()
    );
    let document: Value = serde_json::from_str(&file).unwrap();
    assert_eq!(document["openapi"], "3.1.0");

    let id_token =
        common::sign_in_at(&server.base, "openapi-contract", serde_json::json!({})).await;
    let schema = format!("{}/openapi.json", server.base);
    let (base, token, dir) = (
        server.base.clone(),
        id_token.clone(),
        work.path().to_owned(),
    );
    let started = Instant::now();
    let run = tokio::task::spawn_blocking(move || schemathesis(&schema, &base, &token, &dir, &[]))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    println!(
        "schemathesis: {} requests generated over {} operations in {:.1} s (seed {SEED}, --max-examples {MAX_EXAMPLES})",
        run.requests,
        run.operations,
        elapsed.as_secs_f64()
    );
    for (operation, seen) in &run.statuses {
        println!("  {operation}: {seen:?}");
    }
    assert!(
        run.success,
        "schemathesis found responses that break openapi.json:\n{}",
        run.output
    );
    // Every operation but `GET /openapi.json`: schemathesis never tests the URL it loaded the
    // schema from (that answer is checked above, against the file).
    assert_eq!(
        run.operations,
        operations_in(&document) - 1,
        "schemathesis tests every other operation"
    );
    assert!(
        run.requests >= 10 * run.operations,
        "too few requests:\n{}",
        run.output
    );

    // The check can fail: a copy that forgets a status the server answers (GET /public-key's
    // 400 for an unknown format) and declares a wrong body (the multi-key document's `expiry`
    // as a string, where the server sends Unix seconds) fails the same run on that operation.
    let mut broken = document.clone();
    broken["paths"]["/public-key"]["get"]["responses"]
        .as_object_mut()
        .unwrap()
        .remove("400")
        .expect("GET /public-key documents 400");
    let entry = &mut broken["components"]["schemas"]["MultiKeyDocument"]["items"];
    let expiry = &mut entry["properties"]["expiry"]["type"];
    assert_eq!(*expiry, "integer", "the multi-key entries document expiry");
    *expiry = "string".into();
    let broken_path: PathBuf = work.path().join("broken-openapi.json");
    std::fs::write(&broken_path, serde_json::to_string(&broken).unwrap()).unwrap();
    let (base, token, dir) = (server.base.clone(), id_token, work.path().to_owned());
    let schema = broken_path.to_str().unwrap().to_owned();
    let run = tokio::task::spawn_blocking(move || {
        schemathesis(
            &schema,
            &base,
            &token,
            &dir,
            &["--include-name", "GET /public-key", "--continue-on-failure"],
        )
    })
    .await
    .unwrap();
    assert!(
        !run.success
            && run.output.contains("Undocumented status code")
            && run.output.contains("Response violates schema"),
        "schemathesis accepted a document without GET /public-key's 400 and with a wrong body schema:\n{}",
        run.output
    );
}
