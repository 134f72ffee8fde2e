//! Load (run by `scripts/load.sh`, not by the test command): 50 concurrent clients mint and
//! validate against the real `chat-auth serve` for LOAD_SECONDS (default 60) while a rotation
//! runs. Zero errors, every minted token validates afterwards, memory flat.

use crate::common;

use chat_auth_shared::PublicKeySet;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

const CLIENTS: usize = 50;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
#[ignore = "a 60 s load run: scripts/load.sh"]
async fn fifty_clients_mint_and_validate_through_a_rotation() {
    let seconds: u64 = std::env::var("LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let dir = tempfile::tempdir().unwrap();
    let server = common::serve_process(dir.path(), &[("RUST_LOG", "warn")], Stdio::inherit()).await;
    let pid = server.process.pid();
    let base = server.base.clone();
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .unwrap();
    let id = common::sign_in_at(&base, "load-contact", json!({"region": "EU"})).await;

    let tokens = Arc::new(Mutex::new(Vec::<String>::new()));
    let errors = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (http, base, id) = (http.clone(), base.clone(), id.clone());
        let (tokens, errors, requests) = (tokens.clone(), errors.clone(), requests.clone());
        clients.push(tokio::spawn(async move {
            while Instant::now() < end {
                let minted = http
                    .get(format!("{base}/token"))
                    .bearer_auth(&id)
                    .send()
                    .await;
                requests.fetch_add(1, Ordering::Relaxed);
                let token = match minted {
                    Ok(r) if r.status() == 200 => r.text().await.unwrap_or_default(),
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                };
                let verdict = http
                    .post(format!("{base}/validate"))
                    .json(&json!({"token": token}))
                    .send()
                    .await;
                requests.fetch_add(1, Ordering::Relaxed);
                let active = match verdict {
                    Ok(r) => r
                        .json::<Value>()
                        .await
                        .map(|v| v["active"] == true)
                        .unwrap_or(false),
                    Err(_) => false,
                };
                if !active {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                tokens.lock().await.push(token);
            }
        }));
    }

    // Memory samples, and a rotation a third of the way in.
    let mut samples = Vec::new();
    let mut rotated = false;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_secs(1)).await;
        samples.push(rss_kib(pid));
        if !rotated
            && end.saturating_duration_since(Instant::now()) < Duration::from_secs(seconds * 2 / 3)
        {
            let out = Command::new(common::chat_auth_bin())
                .arg("--data-dir")
                .arg(dir.path())
                .arg("rotate")
                // Promote at once, so that the run signs with two keys.
                .env("CHAT_AUTH_KEY_MIN_PUBLISHED_SECONDS", "0")
                .output()
                .unwrap();
            assert!(out.status.success(), "rotation failed");
            rotated = true;
            eprintln!("rotated: {}", String::from_utf8_lossy(&out.stdout).trim());
        }
    }
    for c in clients {
        c.await.unwrap();
    }

    // Every minted token validates afterwards against what is published now.
    let set =
        PublicKeySet::from_json(&std::fs::read(dir.path().join("public.json")).unwrap()).unwrap();
    let keys = set.render().unwrap().keys;
    let validator = chat_auth_shared::config::validator(
        &<chat_auth_shared::TokenPolicy as chat_auth_shared::Section>::from_lookup(|_| None)
            .unwrap(),
    );
    let tokens = tokens.lock().await;
    let now = chat_auth_shared::time::now();
    let lost = tokens
        .iter()
        .filter(|t| !validator.validate(t, &keys, now).is_active())
        .count();
    let kids: std::collections::BTreeSet<String> = tokens
        .iter()
        .filter_map(|t| validator.validate(t, &keys, now).kid)
        .collect();
    drop(server);

    let warm = samples
        .get(samples.len().min(5).saturating_sub(1))
        .copied()
        .unwrap_or(0);
    let last = samples.last().copied().unwrap_or(0);
    let peak = samples.iter().copied().max().unwrap_or(0);
    eprintln!(
        "load: {seconds} s, {CLIENTS} clients, {} requests ({:.0}/s), {} tokens from {} keys, errors {}, tokens lost {lost}, RSS warm {warm} KiB, last {last} KiB, peak {peak} KiB",
        requests.load(Ordering::Relaxed),
        requests.load(Ordering::Relaxed) as f64 / seconds as f64,
        tokens.len(),
        kids.len(),
        errors.load(Ordering::Relaxed),
    );
    assert!(rotated);
    assert_eq!(errors.load(Ordering::Relaxed), 0, "errors under load");
    assert_eq!(lost, 0, "tokens lost");
    assert!(kids.len() >= 2, "the run should span the rotation");
    assert!(
        last <= warm + warm / 2 + 4096,
        "memory grew: {warm} KiB -> {last} KiB"
    );
}
