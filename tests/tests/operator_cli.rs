//! GIVEN the real `chat-auth` binary, WHEN an operator runs its commands against a data
//! directory, THEN the ring is created, tokens mint and verify, rotations lose no live token
//! and wait for caches, and a revoked key never comes back.

use crate::common;

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn run(dir: &std::path::Path, args: &[&str]) -> Output {
    run_with(dir, args, &[])
}

fn run_with(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(common::chat_auth_bin())
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("CHAT_AUTH_ISSUER", "contosohelp.com")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
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

fn mint(dir: &std::path::Path) -> String {
    let minted = run(
        dir,
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
    String::from_utf8(minted.stdout).unwrap().trim().to_owned()
}

fn states(keys: &Value) -> Vec<&str> {
    keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap())
        .collect()
}

#[test]
fn keys_creates_the_ring_and_rapid_rotations_wait_for_caches_and_lose_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let keys = json_of(&run(dir.path(), &["keys"]));
    assert_eq!(states(&keys), vec!["signing", "next"], "{keys}");
    let mut tokens = vec![mint(dir.path())];
    for _ in 0..3 {
        // With the default wait (max-age 300 + cache TTL), `next` was published seconds ago:
        // the rotation is deferred and says so, and the current key keeps signing.
        let rotated = json_of(&run(dir.path(), &["rotate"]));
        assert_eq!(rotated["promoted"], false, "{rotated}");
        assert!(
            rotated["deferred"]
                .as_str()
                .unwrap()
                .contains("of the 302 s caches need"),
            "{rotated}"
        );
        tokens.push(mint(dir.path()));
    }
    for token in &tokens {
        let report: Value =
            serde_json::from_slice(&verify_stdin(dir.path(), token).stdout).unwrap();
        assert_eq!(report["active"], true, "{report}");
    }
}

/// A kid is base64url, so one in 64 starts with `-` (a full test run once drew one and clap
/// refused `--emergency -u…` as an unknown flag): such a kid reaches the ring's own check.
#[test]
fn an_emergency_kid_that_starts_with_a_hyphen_is_taken_as_the_kid() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["rotate", "--emergency", "-uNoSuchKid"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no key \"-uNoSuchKid\" in the ring"),
        "{stderr}"
    );
}

#[test]
fn rotations_keep_every_live_token_and_a_revoked_key_stays_out() {
    let dir = tempfile::tempdir().unwrap();
    let now = [("CHAT_AUTH_KEY_MIN_PUBLISHED_SECONDS", "0")];
    let mut tokens = vec![mint(dir.path())];
    for round in 0..3 {
        let rotated = json_of(&run_with(dir.path(), &["rotate"], &now));
        assert_eq!(rotated["promoted"], true, "round {round}: {rotated}");
        tokens.push(mint(dir.path()));
        for (i, token) in tokens.iter().enumerate() {
            assert!(
                verify_stdin(dir.path(), token).status.success(),
                "round {round}: token {i} of {} lost",
                tokens.len()
            );
        }
    }
    let keys = json_of(&run(dir.path(), &["keys"]));
    assert_eq!(
        states(&keys),
        vec![
            "signing",
            "next",
            "verify-only",
            "verify-only",
            "verify-only"
        ],
        "{keys}"
    );
    assert!(keys["keys"][2]["verify_until"].as_i64().unwrap() > 0);

    // Revoke the oldest verify-only key: its token is refused as revoked, the others live.
    let oldest = keys["keys"][2]["kid"].as_str().unwrap().to_owned();
    json_of(&run(dir.path(), &["rotate", "--emergency", &oldest]));
    let refused = verify_stdin(dir.path(), &tokens[0]);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "a revoked key's tokens are refused"
    );
    let report: Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(report["problems"][0]["code"], "revoked_kid");
    for token in &tokens[1..] {
        assert!(verify_stdin(dir.path(), token).status.success());
    }
    // More rotations never bring it back.
    for _ in 0..2 {
        json_of(&run_with(dir.path(), &["rotate"], &now));
    }
    let keys = json_of(&run(dir.path(), &["keys"]));
    assert!(
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["kid"] != oldest.as_str())
    );
    assert_eq!(keys["revoked"][0]["kid"], oldest.as_str());
    let published = std::fs::read_to_string(dir.path().join("public.json")).unwrap();
    assert_eq!(
        published.matches(oldest.as_str()).count(),
        1,
        "only in the revoked list"
    );

    let mode = std::fs::metadata(dir.path().join("ring.json")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
}

#[test]
fn a_data_directory_others_can_write_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let out = run(dir.path(), &["keys"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 700"));
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
    for sub in [
        "serve", "mint", "verify", "rotate", "keys", "snippet", "doctor",
    ] {
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

#[tokio::test]
async fn snippet_hashes_the_script_the_server_actually_serves() {
    use base64::Engine;
    let data = tempfile::tempdir().unwrap();
    // The server's configuration differs from the operator's shell: its script differs too.
    let server = common::serve_process(
        data.path(),
        &[("CHAT_AUTH_CLIENT_FUNCTION", "contoso.chat.getToken")],
        Stdio::null(),
    )
    .await;
    let served = common::get(&format!("{}/provider.js", server.base))
        .await
        .bytes()
        .await
        .unwrap();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA384, &served);
    let expected = format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    );
    let here = tempfile::tempdir().unwrap();
    let snippet = |base: &str| {
        let out = run(here.path(), &["snippet", "--base-url", base]);
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (stdout, stderr) = snippet(&server.base);
    assert!(
        stdout.contains(&format!("integrity=\"{expected}\"")),
        "{stdout}"
    );
    assert!(stderr.contains("differs"), "{stderr}");

    // Unreachable: this machine's script, with a warning.
    let local = chat_auth_shared::provider::ProviderScript::render(
        &<chat_auth_shared::config::BrowserConfig as chat_auth_shared::Section>::from_lookup(
            |_| None,
        )
        .unwrap(),
    )
    .integrity;
    let gone = format!("http://127.0.0.1:{}", common::free_port());
    let (stdout, stderr) = snippet(&gone);
    assert!(
        stdout.contains(&format!("integrity=\"{local}\"")),
        "{stdout}"
    );
    assert!(stderr.contains("warning: could not fetch"), "{stderr}");
    assert_ne!(local, expected);
}
