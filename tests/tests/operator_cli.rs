//! GIVEN the real `chat-auth` binary, WHEN an operator runs its commands against a data
//! directory, THEN the ring is created, tokens mint and verify, and rotation works.

mod common;

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn run(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(common::chat_auth_bin())
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("CHAT_AUTH_ISSUER", "contosohelp.com")
        .output()
        .unwrap()
}

fn verify_stdin(dir: &std::path::Path, token: &str) -> Output {
    let mut child = Command::new(common::chat_auth_bin())
        .arg("--data-dir")
        .arg(dir)
        .args(["verify", "-"])
        .env("CHAT_AUTH_ISSUER", "contosohelp.com")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(token.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn mint_verify_rotate_keys() {
    let dir = tempfile::tempdir().unwrap();
    let minted = run(
        dir.path(),
        &[
            "mint",
            "--sub",
            "contact-1",
            "--context",
            "msdyn_isvip=true",
        ],
    );
    assert!(
        minted.status.success(),
        "{}",
        String::from_utf8_lossy(&minted.stderr)
    );
    let token = String::from_utf8(minted.stdout).unwrap().trim().to_owned();

    let verified = verify_stdin(dir.path(), &token);
    assert!(verified.status.success());
    let report: Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(report["context"]["msdyn_isvip"], "true");

    let rotated = run(dir.path(), &["rotate"]);
    assert!(rotated.status.success());
    let ring: Value = serde_json::from_slice(&rotated.stdout).unwrap();
    assert_eq!(ring["version"], 2);
    assert!(
        verify_stdin(dir.path(), &token).status.success(),
        "rotation keeps old tokens valid"
    );

    let previous = ring["previous"].as_str().unwrap();
    let dropped = run(dir.path(), &["rotate", "--emergency", previous]);
    assert!(dropped.status.success());
    let refused = verify_stdin(dir.path(), &token);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "a dropped key's tokens are refused"
    );
    let report: Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(report["problems"][0]["code"], "unknown_kid");

    let keys: Value = serde_json::from_slice(&run(dir.path(), &["keys"]).stdout).unwrap();
    let roles: Vec<&str> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, vec!["current", "next"]);

    let mode = std::fs::metadata(dir.path().join("ring.json")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
}

#[test]
fn bad_input_and_config_fail_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let bad = run(dir.path(), &["mint", "--sub", "x", "--context", "novalue"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("NAME=VALUE"));
    let out = Command::new(common::chat_auth_bin())
        .args(["keys"])
        .env("CHAT_AUTH_TOKEN_TTL_SECONDS", "7200")
        .env("CHAT_AUTH_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("CHAT_AUTH_TOKEN_TTL_SECONDS"));
    for sub in ["serve", "mint", "verify", "rotate", "keys", "snippet"] {
        let help = Command::new(common::chat_auth_bin())
            .args([sub, "--help"])
            .output()
            .unwrap();
        assert!(help.status.success(), "{sub} --help");
    }
}

#[test]
fn snippet_prints_the_script_tag_with_integrity_and_the_admin_values() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &["snippet", "--base-url", "https://chat.contoso.com"],
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(r#"<script src="https://chat.contoso.com/provider.js" integrity="sha384-"#)
    );
    assert!(text.contains("https://chat.contoso.com/public-key"));
    assert!(text.contains("auth.getAuthenticationToken"));
}
