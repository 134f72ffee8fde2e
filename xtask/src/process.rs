//! Where the processes a run starts (servers, functions, emulators, `openssl`) run and log. They
//! are the harness's [`Process`]es, killed when dropped, on every path out of the run. On a
//! signal (`timeout` in scripts/bench.sh, Ctrl-C) they go with it: both signal the whole
//! process group.

use crate::error::{Error, Result};
use crate::sys;
use chat_auth_harness::process::Process;
use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

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
    pub fn start_on_server(&self, name: &str, cmd: &mut Command, log: &Path) -> Result<Process> {
        self.on_server(|| start_logged(name, cmd, log))?
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

/// Appends a process's output to `log` (moto's request log is how Secrets Manager calls are
/// counted, a function's is where its cold start went).
pub fn log_to(log: &Path) -> Result<Stdio> {
    File::options()
        .create(true)
        .append(true)
        .open(log)
        .map(Stdio::from)
        .map_err(|e| Error::file(log, e))
}

/// Starts `cmd` on the calling thread's core, its standard output and error appended to `log`.
pub fn start_logged(name: &str, cmd: &mut Command, log: &Path) -> Result<Process> {
    cmd.stdout(log_to(log)?).stderr(log_to(log)?);
    Ok(Process::spawn(name, cmd))
}
