//! A child process that dies with its owner, and the two ways to wait until it serves.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a peer may take to become ready: moto takes about 3 s, cargo-lambda longer on a
/// busy machine, a debug `chat-auth serve` under two parallel test threads a few seconds.
const READY: Duration = Duration::from_secs(60);

/// A child process, killed and reaped when dropped, on every path out of a test or a run.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Child,
}

impl Process {
    /// Starts `command` with no standard input, naming it `name` in failures.
    pub fn spawn(name: &str, command: &mut Command) -> Process {
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} ({:?}): {e}", command.get_program()));
        Process {
            name: name.to_owned(),
            child,
        }
    }

    /// The process id (the benchmarks read its CPU time and memory from /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics if the process has exited: a peer that died must fail the wait at once, not
    /// after the whole readiness bound.
    pub fn assert_alive(&mut self) {
        if let Some(status) = self.child.try_wait().expect("waiting on a child") {
            panic!("{} exited ({status})", self.name);
        }
    }

    /// Waits until `GET url` answers 2xx.
    pub async fn wait_http(&mut self, url: &str) {
        let http = crate::http_client();
        self.wait(url, async || {
            http.get(url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
    }

    /// Waits until `addr` accepts TCP connections: for a peer that would hold any request it
    /// does not know (cargo-lambda routes every path to a function and waits for one).
    pub async fn wait_listening(&mut self, addr: SocketAddr) {
        self.wait(&addr.to_string(), async || {
            tokio::net::TcpStream::connect(addr).await.is_ok()
        })
        .await;
    }

    async fn wait(&mut self, what: &str, mut ready: impl AsyncFnMut() -> bool) {
        let deadline = Instant::now() + READY;
        while !ready().await {
            self.assert_alive();
            assert!(
                Instant::now() < deadline,
                "{} did not serve {what} within {READY:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Process {
    /// Kills and reaps the process (a test that reads what it logged stops it first).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The real `chat-auth serve` on a free loopback port, killed on drop.
pub struct Serve {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The server process.
    pub process: Process,
}

impl Serve {
    /// Starts `command` (the `chat-auth` binary, or a launcher that runs it: a shell that
    /// lowers a limit first, say) as `chat-auth --data-dir DATA serve` on a free port, in
    /// development mode with `issue_key` unless `env` configures an upstream identity provider,
    /// and waits until it answers `GET /public-key`.
    pub async fn start(
        mut command: Command,
        data: &std::path::Path,
        env: &[(&str, &str)],
        issue_key: &str,
        stderr: Stdio,
    ) -> Serve {
        let port = crate::free_port();
        command.arg("--data-dir").arg(data).args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ]);
        if !env.iter().any(|(k, _)| *k == "CHAT_AUTH_UPSTREAM_ISSUER") {
            command
                .arg("--dev")
                .env("CHAT_AUTH_DEV_ISSUE_KEY", issue_key);
        }
        command.envs(env.iter().copied()).stderr(stderr);
        let mut process = Process::spawn("chat-auth serve", &mut command);
        let base = format!("http://127.0.0.1:{port}");
        process.wait_http(&format!("{base}/public-key")).await;
        Serve { base, process }
    }
}
