//! GIVEN the deployable arm64 artifacts (target/lambda/<function>/bootstrap.zip from
//! scripts/build-lambda.sh), WHEN the rotate-keys, mint-token and public-keys bootstraps run
//! under `qemu-aarch64` against the Lambda Runtime API emulator and moto's Secrets Manager,
//! THEN one four-step rotation leaves a ring, mint-token signs a token with it, and PyJWT
//! verifies that token with what public-keys publishes (multi-key document, PEM, JWKS).
//!
//! Ignored by default: it needs the artifacts and qemu-user. scripts/arm64.sh installs qemu,
//! builds the artifacts and runs it with `-- --ignored`.

use crate::common;

use crate::common::aws::{
    Function, LambdaRuntime, SIGNING, lambda_env, provisioned, public_keys_event, response_body,
};
use serde_json::{Value, json};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Emulated aarch64 is one to two orders of magnitude slower than native; key generation and
/// the SDK's first TLS-less call still finish in seconds, but leave room for a loaded CI host.
const LIMIT: Duration = Duration::from_secs(300);
/// The glibc sysroot of Debian's libc6-arm64-cross (the bootstraps link glibc dynamically).
const SYSROOT: &str = "/usr/aarch64-linux-gnu";
/// ELF `e_machine` of AArch64.
const EM_AARCH64: u16 = 183;

/// The function's bootstrap, extracted from its zip into `dir` (or the one cargo lambda left
/// next to the zip); fails unless it is a 64-bit little-endian AArch64 ELF file.
fn bootstrap(function: &str, dir: &Path) -> PathBuf {
    let lambda = common::root().join("target/lambda").join(function);
    let zip = lambda.join("bootstrap.zip");
    let bin = if zip.exists() {
        let out_dir = dir.join(function);
        let out = Command::new(common::python())
            .args([OsStr::new("-m"), OsStr::new("zipfile"), OsStr::new("-e")])
            .arg(&zip)
            .arg(&out_dir)
            .output()
            .expect("python (target/py, installed by scripts/arm64.sh)");
        assert!(
            out.status.success(),
            "unzip {}: {}",
            zip.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = out_dir.join("bootstrap");
        // zipfile does not restore the mode bits.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        bin
    } else {
        lambda.join("bootstrap")
    };
    assert!(
        bin.exists(),
        "{} is missing: run scripts/arm64.sh (it runs scripts/build-lambda.sh first)",
        zip.display()
    );
    let header = std::fs::read(&bin).unwrap();
    assert!(
        header.len() > 20 && header.starts_with(b"\x7fELF"),
        "{} is not an ELF file",
        bin.display()
    );
    assert_eq!(header[4], 2, "{}: not a 64-bit ELF file", bin.display());
    assert_eq!(header[5], 1, "{}: not little-endian", bin.display());
    let machine = u16::from_le_bytes([header[18], header[19]]);
    assert_eq!(
        machine,
        EM_AARCH64,
        "{}: e_machine is {machine}, not AArch64 ({EM_AARCH64})",
        bin.display()
    );
    bin
}

/// Starts `function`'s aarch64 bootstrap under qemu-aarch64 against a Runtime API emulator.
async fn start_arm64(
    lambda: &LambdaRuntime,
    function: &str,
    dir: &Path,
    env: &[(String, String)],
) -> Function {
    let bin = bootstrap(function, dir);
    let qemu = which("qemu-aarch64");
    let args = [OsStr::new("-L"), OsStr::new(SYSROOT), bin.as_os_str()];
    lambda.run_command(
        {
            let mut qemu = Command::new(qemu);
            qemu.args(args);
            qemu
        },
        function,
        env,
        Stdio::inherit(),
    )
}

fn which(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{program} is missing: scripts/arm64.sh installs qemu-user with apt-get")
        })
}

fn assert_claims(claims: &Value, how: &str) {
    assert_eq!(
        claims["sub"], "87b4d06c-abc2-e811-a9b0-000d3a10e09e",
        "{how}: {claims}"
    );
    assert_eq!(claims["iss"], common::aws::ISSUER, "{how}: {claims}");
    let context: Value = serde_json::from_str(claims["lwicontexts"].as_str().unwrap()).unwrap();
    assert_eq!(context["msdyn_region"], "EU", "{how}: {claims}");
}

#[tokio::test]
#[ignore = "needs the arm64 artifacts and qemu-user: run scripts/arm64.sh"]
async fn the_arm64_artifacts_rotate_mint_and_publish_under_qemu() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    // Every bootstrap is checked before anything runs.
    for function in ["rotate-keys", "mint-token", "public-keys"] {
        bootstrap(function, dir.path());
    }
    let (moto, store, arn) = provisioned().await;
    let env = lambda_env(&moto);
    let lambda = LambdaRuntime::start(std::process::Stdio::inherit()).await;

    // One rotation, as Secrets Manager drives it.
    let rotate = start_arm64(&lambda, "rotate-keys", dir.path(), &env).await;
    let token = moto.rotate_secret(SIGNING, &arn).await.unwrap();
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        let out = rotate
            .invoke_within(
                &json!({"Step": step, "SecretId": SIGNING, "ClientRequestToken": token}),
                LIMIT,
            )
            .await;
        assert!(out.is_ok(), "{step}: {out:?}");
        eprintln!("arm64: {step} done after {:?}", started.elapsed());
    }
    let ring = {
        use chat_auth_shared::store::{PublicKeySource, RingSource};
        let ring = store.load_ring().await.unwrap().expect("a ring is current");
        let set = store
            .load_public()
            .await
            .unwrap()
            .expect("a set is published");
        common::assert_publishes(&set, &ring);
        ring
    };
    let (_, versions) = store.describe(SIGNING).await.unwrap();
    assert!(!versions.values().flatten().any(|s| s == "AWSPENDING"));

    // A token from the arm64 mint-token.
    let mint = start_arm64(&lambda, "mint-token", dir.path(), &env).await;
    let event: Value =
        serde_json::from_str(include_str!("../fixtures/apigw-v2-get-token.json")).unwrap();
    let response = mint.invoke_within(&event, LIMIT).await.unwrap();
    assert_eq!(response["statusCode"], 200, "{response}");
    let jwt = response_body(&response).unwrap();
    eprintln!("arm64: mint-token answered after {:?}", started.elapsed());

    // What the arm64 public-keys publishes, in each format.
    let keys = start_arm64(&lambda, "public-keys", dir.path(), &env).await;
    let pem_event: Value =
        serde_json::from_str(include_str!("../fixtures/apigw-v2-get-public-key.json")).unwrap();
    let mut documents = Vec::new();
    for (what, event) in [
        ("multi-key document", public_keys_event("/public-key")),
        ("PEM (?format=pem)", pem_event),
        ("JWKS", public_keys_event("/.well-known/jwks.json")),
    ] {
        let response = keys.invoke_within(&event, LIMIT).await.unwrap();
        assert_eq!(response["statusCode"], 200, "{what}: {response}");
        documents.push((what, response_body(&response).unwrap()));
    }
    eprintln!("arm64: public-keys answered after {:?}", started.elapsed());

    // The multi-key document and the JWKS name exactly the ring's keys.
    let multi: Value = serde_json::from_str(&documents[0].1).unwrap();
    let jwks: Value = serde_json::from_str(&documents[2].1).unwrap();
    let mut held: Vec<&str> = ring.kids().collect();
    held.sort_unstable();
    for (what, kids) in [
        ("multi-key document", multi.as_array().unwrap()),
        ("JWKS", jwks["keys"].as_array().unwrap()),
    ] {
        let mut kids: Vec<&str> = kids.iter().map(|k| k["kid"].as_str().unwrap()).collect();
        kids.sort_unstable();
        assert_eq!(kids, held, "{what}");
    }

    // PyJWT verifies the arm64-minted token with each published document.
    for (what, document) in &documents {
        let claims =
            chat_auth_harness::pyjwt::verify(&jwt, document.as_bytes(), common::aws::ISSUER)
                .unwrap_or_else(|e| panic!("PyJWT refused the token ({what}): {e}"));
        assert_claims(&claims, what);
    }
    eprintln!("arm64: verified; whole test {:?}", started.elapsed());
}
