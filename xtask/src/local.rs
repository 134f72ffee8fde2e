//! The local server, `chat-auth serve` as released: HTTP load on one core, cold start, memory.
//!
//! It runs as deployed behind an identity provider: every `/token` verifies the caller's RS256
//! bearer token against the provider's JWKS and maps three of its claims into `lwicontexts`.
//! A development-mode `chat-auth` plays the provider, on the load core (it answers the sign-in
//! and one JWKS fetch per server start). The server gets one tokio worker on the server core.
//! The Node.js peer ([`peer`]) is loaded right after the server's `/token` at 16 connections.

mod peer;

use crate::client::{Client, Request, Response};
use crate::error::{Error, Result};
use crate::figures::{Figure, Id, Round};
use crate::floor::Floors;
use crate::load::{Load, closed_loop};
use crate::process::start_logged;
use crate::settings::{Settings, Workspace};
use crate::sys;
use crate::table::{duration, mib, spread, thousands};
use chat_auth_harness::free_port;
use chat_auth_harness::process::Process;
use hyper::header::AUTHORIZATION;
use serde_json::json;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The contact every token is for.
pub const SUB: &str = "87b4d06c-7c6e-4e8e-9c3f-0b2f1f6f7a11";
/// Context variable ← identity claim: the three context values the in-process mint builds
/// (xtask/src/inproc.rs), here mapped from the caller's verified identity token.
pub const CONTEXT_CLAIMS: &str = "msdyn_cartvalue=cart_value,msdyn_isvip=vip,region=region";
/// Each load is preceded by one this long on the same path (connections, caches, the JWKS).
const WARM_UP: Duration = Duration::from_secs(2);
/// The three loads: what, route, connections.
const LOADS: [(Id, Route, usize); 3] = [
    (Id::TokenC1, Route::Token, 1),
    (Id::TokenC16, Route::Token, 16),
    (Id::ValidateC16, Route::Validate, 16),
];
/// The load the Node.js peer's follows, so that the two are side by side in the table and in
/// time (the same core, the floor between them).
const PEER_AFTER: Id = Id::TokenC16;

/// The two routes under load.
#[derive(Debug, Clone, Copy)]
enum Route {
    Token,
    Validate,
}

/// Loads, memory and cold start of the local server.
pub fn run(
    settings: &Settings,
    workspace: &Workspace,
    client: &Client,
    floors: &mut Floors,
) -> Result<Vec<Figure>> {
    let binary = workspace.binary("chat-auth")?;
    let ring = workspace.ring()?;

    let idp_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut idp = start_logged(
        "the identity provider (chat-auth serve, dev mode)",
        Command::new(&binary)
            .arg("serve")
            .env("CHAT_AUTH_LISTEN", idp_addr.to_string())
            .env("CHAT_AUTH_DATA_DIR", workspace.data_dir("idp"))
            .env("CHAT_AUTH_DEV", "1"),
        &workspace.log("idp"),
    )?;
    client.block_on(idp.wait_http(&format!("http://{idp_addr}/dev/jwks.json")));
    let sign_in = Request::post_json(
        "/dev/sign-in",
        &json!({"sub": SUB, "claims": {"cart_value": "10000", "vip": true, "region": "emea"}}),
    );
    let signed_in = client.send(idp_addr, &sign_in)?.success(&sign_in)?.json()?;
    let id_token = signed_in["id_token"]
        .as_str()
        .ok_or_else(|| Error::Answer(format!("sign-in answered {signed_in}")))?;

    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let env = [
        ("CHAT_AUTH_LISTEN", addr.to_string()),
        ("CHAT_AUTH_DATA_DIR", ring.display().to_string()),
        ("CHAT_AUTH_UPSTREAM_ISSUER", "chat-auth-dev".into()),
        ("CHAT_AUTH_UPSTREAM_AUDIENCE", "chat-auth-dev".into()),
        (
            "CHAT_AUTH_UPSTREAM_JWKS_URL",
            format!("http://{idp_addr}/dev/jwks.json"),
        ),
        ("CHAT_AUTH_CONTEXT_CLAIMS", CONTEXT_CLAIMS.into()),
        ("TOKIO_WORKER_THREADS", "1".into()),
        (
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        ),
    ];
    crate::note(format!(
        "HTTP: server on core {} (1 tokio worker), load on core {}, {:?} per load",
        settings.cores.server, settings.cores.load, settings.seconds
    ));
    let log = workspace.log("server");
    let mut server = start_server(settings, &binary, &env, &log)?;
    client.block_on(server.wait_http(&format!("http://{addr}/public-key")));
    let token_request = Request::get("/token").header(AUTHORIZATION, &format!("Bearer {id_token}"));
    let token = client
        .send(addr, &token_request)?
        .success(&token_request)?
        .text();
    let validate_request = Request::post_json("/validate", &json!({ "token": token }));
    let report = client
        .send(addr, &validate_request)?
        .success(&validate_request)?
        .json()?;
    if report["active"] != true || report["context"]["region"] != "emea" {
        return Err(Error::Answer(format!(
            "the minted token does not validate as expected: {report}"
        )));
    }
    let request = |route: Route| match route {
        Route::Token => &token_request,
        Route::Validate => &validate_request,
    };

    for route in [Route::Token, Route::Validate] {
        client.block_on(closed_loop(addr, request(route), 16, WARM_UP))?;
    }
    let mut figures = Vec::new();
    for (id, route, connections) in LOADS {
        let floor = floors.take()?;
        let before = sys::process_cpu(server.pid())?;
        let load = client.block_on(closed_loop(
            addr,
            request(route),
            connections,
            settings.seconds,
        ))?;
        let cpu = sys::process_cpu(server.pid())? - before;
        figures.push(load_figure(id, &load, cpu, floor)?);
        if id == PEER_AFTER {
            figures.extend(peer::run(settings, workspace, client, floors, &token)?);
        }
    }
    figures.push(memory(server.pid())?);
    drop(server);

    figures.push(cold_start(
        settings,
        client,
        &binary,
        &env,
        addr,
        &token_request,
        &log,
    )?);
    Ok(figures)
}

fn start_server(
    settings: &Settings,
    binary: &Path,
    env: &[(&str, String)],
    log: &Path,
) -> Result<Process> {
    let mut command = Command::new(binary);
    command.arg("serve").envs(env.iter().map(|(k, v)| (k, v)));
    settings
        .cores
        .start_on_server("the server (chat-auth serve)", &mut command, log)
}

/// A load as a figure: its value is requests per second of server CPU ("per core": what one
/// core delivers when nothing else runs on it), because on a shared machine the server rarely
/// gets its whole core; wall-clock requests per second and the share it got are shown beside.
fn load_figure(id: Id, load: &Load, cpu: Duration, floor: Option<usize>) -> Result<Figure> {
    if cpu.is_zero() || load.requests == 0 {
        return Err(Error::Answer(format!(
            "{}: {} requests in {cpu:?} of server CPU",
            id.label(),
            load.requests
        )));
    }
    let cpu_per_request = cpu.as_secs_f64() / load.requests as f64;
    let per_core = 1.0 / cpu_per_request;
    Ok(Figure::single(
        id,
        per_core,
        floor,
        format!(
            "{} req/s per core (server CPU {}/req); wall clock {} req/s, server busy {:.0}% of \
             its core; p50 {}, p99 {}",
            thousands(per_core),
            duration(cpu_per_request),
            thousands(load.rate()),
            100.0 * cpu.as_secs_f64() / load.elapsed.as_secs_f64(),
            duration(load.p50.as_secs_f64()),
            duration(load.p99.as_secs_f64()),
        ),
    ))
}

/// Peak resident memory after the loads.
fn memory(pid: u32) -> Result<Figure> {
    let peak = sys::status_bytes(pid, "VmHWM")?;
    let now = sys::status_bytes(pid, "VmRSS")?;
    let threads = sys::status(&pid.to_string(), "Threads")?;
    Ok(Figure::single(
        Id::PeakRss,
        peak,
        None,
        format!("{} (now {}, {threads} threads)", mib(peak), mib(now)),
    ))
}

/// Process spawn to the first 200 from `/token`, the ring already created, median of
/// `BENCH_COLD_RUNS` starts.
fn cold_start(
    settings: &Settings,
    client: &Client,
    binary: &Path,
    env: &[(&str, String)],
    addr: SocketAddr,
    request: &Request,
    log: &Path,
) -> Result<Figure> {
    crate::note(format!("cold start: {} starts", settings.cold_runs));
    let mut rounds = Vec::new();
    for _ in 0..settings.cold_runs {
        let start = Instant::now();
        let mut server = start_server(settings, binary, env, log)?;
        let answer = first_answer(client, &mut server, addr, request, log)?;
        let elapsed = start.elapsed();
        answer.success(request)?;
        rounds.push(Round {
            value: elapsed.as_secs_f64(),
            floor: None,
        });
    }
    Ok(Figure {
        id: Id::ColdStartLocal,
        detail: spread(&rounds),
        rounds,
    })
}

/// Connects as soon as the port accepts (trying every 200 µs: a runtime timer's millisecond
/// would be a tenth of the goal), then sends `request`.
fn first_answer(
    client: &Client,
    server: &mut Process,
    addr: SocketAddr,
    request: &Request,
    log: &Path,
) -> Result<Response> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(addr) {
            Ok(stream) => return client.send_over(stream, request),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                server.assert_alive();
                if Instant::now() > deadline {
                    return Err(Error::Answer(format!(
                        "the server did not listen within 10 s; see {}",
                        log.display()
                    )));
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(e) => return Err(Error::io(format!("connecting to {addr}"), e)),
        }
    }
}
