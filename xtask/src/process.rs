//! The processes a run starts (servers, functions, emulators, `openssl`): placed on a core,
//! their output in a log file, killed when dropped, on every path out of the run. On a signal
//! (`timeout` in scripts/bench.sh, Ctrl-C) they go with it: both signal the whole process group.

use crate::client::{Client, Request};
use crate::error::{Error, Result};
use crate::sys;
use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a server, runtime or emulator may take to become ready (moto takes about 3 s,
/// cargo-lambda longer on a busy machine).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The two cores of a run: the measured one (servers, functions, `openssl`, the in-process
/// loops) and the one that drives it (load generator, identity provider, Lambda runtime, moto).
/// The run's main thread lives on the load core.
#[derive(Debug, Clone, Copy)]
pub struct Cores {
    /// The measured core.
    pub server: usize,
    /// The driving core.
    pub load: usize,
}

impl Cores {
    /// Runs `f` on the server core, then moves the calling thread back to the load core.
    pub fn on_server<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        sys::pin_thread(self.server)?;
        let out = f();
        sys::pin_thread(self.load)?;
        Ok(out)
    }

    /// Starts `cmd` on the server core (a child inherits the spawning thread's affinity).
    pub fn start_on_server(&self, name: &str, cmd: &mut Command, log: &Path) -> Result<Running> {
        self.on_server(|| Running::start(name, cmd, log))?
    }

    /// Runs `cmd` on the server core to its end; its standard output.
    pub fn output_on_server(&self, cmd: &mut Command) -> Result<Output> {
        let what = format!("{cmd:?}");
        let child = self.on_server(|| {
            cmd.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
        })?;
        let out = child
            .and_then(Child::wait_with_output)
            .map_err(|e| Error::io(&what, e))?;
        if !out.status.success() {
            return Err(Error::Answer(format!("{what}: {}", out.status)));
        }
        Ok(out)
    }
}

/// A child process, killed and reaped when dropped. Its standard output and error are
/// appended to `log` (moto's request log is how Secrets Manager calls are counted).
#[derive(Debug)]
pub struct Running {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Running {
    /// Starts `cmd` on the calling thread's core.
    pub fn start(name: &str, cmd: &mut Command, log: &Path) -> Result<Running> {
        let file = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| Error::file(log, e))?;
        let stdout = file.try_clone().map_err(|e| Error::file(log, e))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(file)
            .spawn()
            .map_err(|e| Error::io(format!("starting {name} ({:?})", cmd.get_program()), e))?;
        Ok(Running {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error if the process has exited, naming its log.
    pub fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(self.exited(status)),
            Err(e) => Err(Error::io(format!("waiting for {}", self.name), e)),
        }
    }

    fn exited(&self, status: ExitStatus) -> Error {
        Error::Answer(format!(
            "{} exited ({status}); see {}",
            self.name,
            self.log.display()
        ))
    }

    /// The failure to report when the process did not do what was asked in time.
    pub fn failed(&self, what: &str) -> Error {
        Error::Answer(format!("{}: {what}; see {}", self.name, self.log.display()))
    }

    /// Waits until `GET path` on `addr` answers 2xx.
    pub fn wait_http(&mut self, client: &Client, addr: SocketAddr, path: &str) -> Result<()> {
        let request = Request::get(path);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            self.check_alive()?;
            if let Ok(response) = client.send(addr, &request)
                && response.status.is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(self.failed(&format!(
                    "GET {path} on {addr} did not answer 2xx within {READY_TIMEOUT:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `addr` accepts TCP connections.
    pub fn wait_listening(&mut self, addr: SocketAddr) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while TcpStream::connect(addr).is_err() {
            self.check_alive()?;
            if Instant::now() > deadline {
                return Err(self.failed(&format!(
                    "did not listen on {addr} within {READY_TIMEOUT:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::io("binding a free loopback port", e))
}

/// `127.0.0.1:port`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}
