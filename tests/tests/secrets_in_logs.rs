//! GIVEN every log line of a full run (the local server, the operator commands, and the
//! rotate-keys and mint-token binaries on Secrets Manager), with `RUST_LOG=trace` (where
//! lambda_runtime logs raw events and the AWS SDK would log response bodies), THEN no token,
//! private key or upstream credential appears in them.

use crate::common;

use crate::common::aws::{LambdaRuntime, Moto, create_secrets, response_body};
use serde_json::{Value, json};
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};

const AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETLOGCANARY";
const AWS_SESSION: &str = "IQoJb3JpZ2luX2VjSESSIONTOKENLOGCANARY0123456789";
/// The identity token API Gateway's authorizer verified, as the event carries it.
const BEARER: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJCRUFSRVJDQU5BUlkifQ.c2lnbmF0dXJlY2FuYXJ5";

fn log_file(dir: &Path, name: &str) -> Stdio {
    Stdio::from(File::create(dir.join(name)).unwrap())
}

fn chat_auth_shared(
    data: &Path,
    logs: &Path,
    log_name: &str,
    args: &[&str],
) -> std::process::Output {
    Command::new(common::chat_auth_bin())
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("RUST_LOG", "trace")
        .stderr(log_file(logs, log_name))
        .output()
        .unwrap()
}

/// The private key material of a stored ring document.
fn private_keys(ring_json: &str) -> Vec<String> {
    let ring: Value = serde_json::from_str(ring_json).unwrap();
    let mut keys = Vec::new();
    // Verify-only keys keep no private half; these two are all there is.
    for role in ["current", "next"] {
        if let Some(pkcs8) = ring[role]["pkcs8"].as_str() {
            keys.push(pkcs8.to_owned());
            keys.push(pkcs8[100..164].to_owned()); // any fragment of it, too
        }
    }
    keys
}

fn token_parts(token: &str) -> Vec<String> {
    let mut parts = vec![token.to_owned()];
    parts.extend(token.split('.').skip(1).map(str::to_owned));
    parts
}

#[tokio::test]
async fn a_full_run_logs_no_token_key_or_credential() {
    let dir = tempfile::tempdir().unwrap();
    let (data, logs) = (dir.path().join("data"), dir.path().join("logs"));
    std::fs::create_dir_all(&logs).unwrap();
    let mut secrets: Vec<String> = vec![AWS_SECRET.to_owned(), AWS_SESSION.to_owned()];
    secrets.extend(token_parts(BEARER));

    // The local server at debug level, through the whole flow and its failures.
    let serve = common::serve_process(
        &data,
        &[("RUST_LOG", "trace"), ("AWS_SECRET_ACCESS_KEY", AWS_SECRET)],
        log_file(&logs, "serve.log"),
    )
    .await;
    let base = serve.base.clone();
    let http = common::client();
    let id = common::sign_in_at(&base, "contact-1", json!({"cart_value": "10"})).await;
    secrets.extend(token_parts(&id));
    let token = http
        .get(format!("{base}/token"))
        .bearer_auth(&id)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    secrets.extend(token_parts(&token));
    let mut tampered = token.clone();
    tampered.push('x');
    for t in [&token, &tampered, &id] {
        http.post(format!("{base}/validate"))
            .json(&json!({"token": t}))
            .send()
            .await
            .unwrap();
    }
    http.get(format!("{base}/token"))
        .bearer_auth(format!("{id}x"))
        .send()
        .await
        .unwrap();
    http.get(format!("{base}/token"))
        .header("origin", "https://evil.example")
        .bearer_auth(&id)
        .send()
        .await
        .unwrap();
    http.post(format!("{base}/token"))
        .bearer_auth(&id)
        .json(&json!({"context": {"secret": token}}))
        .send()
        .await
        .unwrap();
    let ring_before = std::fs::read_to_string(data.join("ring.json")).unwrap();
    secrets.extend(private_keys(&ring_before));

    // Operator commands.
    let minted = chat_auth_shared(&data, &logs, "mint.log", &["mint", "--sub", "contact-2"]);
    let cli_token = String::from_utf8(minted.stdout).unwrap().trim().to_owned();
    secrets.extend(token_parts(&cli_token));
    chat_auth_shared(&data, &logs, "verify.log", &["verify", &cli_token]);
    let rotated: Value =
        serde_json::from_slice(&chat_auth_shared(&data, &logs, "rotate.log", &["rotate"]).stdout)
            .unwrap();
    chat_auth_shared(
        &data,
        &logs,
        "emergency.log",
        &[
            "rotate",
            "--emergency",
            rotated["ring"]["keys"][1]["kid"].as_str().unwrap(),
        ],
    );
    secrets.extend(private_keys(
        &std::fs::read_to_string(data.join("ring.json")).unwrap(),
    ));
    let after = http
        .get(format!("{base}/token"))
        .bearer_auth(&id)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    secrets.extend(token_parts(&after));

    // The AWS functions on moto, with a distinctive secret access key.
    let moto = Moto::start(std::process::Stdio::null()).await;
    create_secrets(&moto, "signing", "public").await;
    let arn = moto.register_rotation_lambda();
    let mut env = moto.env();
    env.extend(
        [
            ("AWS_SECRET_ACCESS_KEY", AWS_SECRET),
            ("AWS_SESSION_TOKEN", AWS_SESSION),
            ("LOG_SENSITIVE_BODIES", "true"),
            ("CHAT_AUTH_SIGNING_SECRET_ID", "signing"),
            ("CHAT_AUTH_PUBLIC_KEYS_SECRET_ID", "public"),
            ("CHAT_AUTH_SUBJECT_CLAIM", "contact_id"),
            ("RUST_LOG", "trace"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    {
        let lambda = LambdaRuntime::start(std::process::Stdio::inherit()).await;
        let rotate = lambda.run("rotate-keys", &env, log_file(&logs, "rotate-keys.log"));
        let version = moto.rotate_secret("signing", &arn).await.unwrap();
        for step in [
            "createSecret",
            "setSecret",
            "testSecret",
            "finishSecret",
            "bogusStep",
        ] {
            let _ = rotate
                .invoke(
                    &json!({"Step": step, "SecretId": "signing", "ClientRequestToken": version}),
                )
                .await;
        }
        let _ = rotate.invoke(&json!({"emergencyKid": "no-such-kid"})).await;
        let mint_fn = lambda.run("mint-token", &env, log_file(&logs, "mint-token.log"));
        let mut event: Value =
            serde_json::from_str(include_str!("../fixtures/apigw-v2-get-token.json")).unwrap();
        event["headers"]["authorization"] = json!(format!("Bearer {BEARER}"));
        let response = mint_fn.invoke(&event).await.unwrap();
        let lambda_token = response_body(&response).unwrap();
        secrets.extend(token_parts(&lambda_token));
    }
    let stored = moto
        .client()
        .get_secret_value()
        .secret_id("signing")
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap();
    secrets.extend(private_keys(stored.secret_string().unwrap()));

    // Read every log and look for every secret.
    let mut all = String::new();
    for entry in std::fs::read_dir(&logs).unwrap() {
        all.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    for marker in [
        "token minted",
        "token refused",
        "rotation step succeeded",
        "rotation step failed",
        "key ring ready",
    ] {
        assert!(
            all.contains(marker),
            "the capture missed {marker:?}: the test would prove nothing"
        );
    }
    for secret in &secrets {
        assert!(
            !all.contains(secret.as_str()),
            "a secret appears in the logs: {}...",
            &secret[..12]
        );
    }
    eprintln!(
        "{} log bytes checked against {} secrets: none found",
        all.len(),
        secrets.len()
    );
}
