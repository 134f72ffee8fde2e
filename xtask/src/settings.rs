//! What a run is told: the `BENCH_*` environment, and where the workspace keeps the release
//! binaries, the tools scripts/bench.sh installs and the run's own files.

use crate::error::{Error, Result};
use crate::process::Cores;
use crate::sys;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The sections of a run (`BENCH_ONLY`).
#[derive(Debug, Clone, Copy)]
pub struct Sections {
    /// `openssl speed` through the run; without it no figure has a ratio.
    pub floor: bool,
    /// The domain crate's hot paths in this process.
    pub inproc: bool,
    /// The local server: loads, cold start, memory.
    pub http: bool,
    /// The function binaries under cargo-lambda's local runtime.
    pub lambda: bool,
}

/// The run's settings.
#[derive(Debug)]
pub struct Settings {
    /// `BENCH_SECONDS` (10): the length of each HTTP load.
    pub seconds: Duration,
    /// `BENCH_COLD_RUNS` (10): starts per cold start figure.
    pub cold_runs: usize,
    /// `BENCH_SERVER_CORE` / `BENCH_LOAD_CORE`: the first two cores this process may use.
    pub cores: Cores,
    /// `BENCH_ONLY`: a comma-separated subset of `floor,inproc,http,lambda` (all).
    pub only: Sections,
    /// Unless `BENCH_NO_ASSERT=1`: a missed goal fails the run.
    pub assert: bool,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn number<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| Error::Config(format!("{name}={v:?} is not a number"))),
    }
}

impl Settings {
    /// Reads the environment.
    pub fn from_env() -> Result<Self> {
        let allowed = sys::allowed_cores()?;
        let first = *allowed
            .first()
            .ok_or_else(|| Error::Setup("this process may run on no core".into()))?;
        let cores = Cores {
            server: number("BENCH_SERVER_CORE", first)?,
            load: number("BENCH_LOAD_CORE", allowed.get(1).copied().unwrap_or(first))?,
        };
        let only = var("BENCH_ONLY").unwrap_or_else(|| "floor,inproc,http,lambda".into());
        let mut sections = Sections {
            floor: false,
            inproc: false,
            http: false,
            lambda: false,
        };
        for name in only.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let section = match name {
                "floor" => &mut sections.floor,
                "inproc" => &mut sections.inproc,
                "http" => &mut sections.http,
                "lambda" => &mut sections.lambda,
                other => {
                    return Err(Error::Config(format!(
                        "BENCH_ONLY: {other:?} is none of floor, inproc, http, lambda"
                    )));
                }
            };
            *section = true;
        }
        let assert = match var("BENCH_NO_ASSERT").as_deref() {
            None | Some("0") => true,
            Some("1") => false,
            Some(other) => {
                return Err(Error::Config(format!(
                    "BENCH_NO_ASSERT={other:?} is not 0 or 1"
                )));
            }
        };
        Ok(Settings {
            seconds: Duration::from_secs(number("BENCH_SECONDS", 10)?),
            cold_runs: number("BENCH_COLD_RUNS", 10)?.max(1),
            cores,
            only: sections,
            assert,
        })
    }
}

/// Where things are.
#[derive(Debug)]
pub struct Workspace {
    /// The workspace root.
    pub root: PathBuf,
    /// The release binaries: the directory of this (release) binary.
    release: PathBuf,
    /// The run's data directories and logs (`<target>/bench`, emptied at the start), kept
    /// after the run for a look at what a server logged.
    work: PathBuf,
}

impl Workspace {
    /// Finds the workspace and empties the work directory.
    pub fn locate() -> Result<Self> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask/ is inside the workspace")
            .to_owned();
        let exe = std::env::current_exe().map_err(|e| Error::io("this executable", e))?;
        let release = exe
            .parent()
            .ok_or_else(|| Error::Setup(format!("{} has no directory", exe.display())))?
            .to_owned();
        let work = release.with_file_name("bench");
        if work.exists() {
            std::fs::remove_dir_all(&work).map_err(|e| Error::file(&work, e))?;
        }
        std::fs::create_dir_all(&work).map_err(|e| Error::file(&work, e))?;
        Ok(Workspace {
            root,
            release,
            work,
        })
    }

    /// A release binary of the workspace.
    pub fn binary(&self, name: &str) -> Result<PathBuf> {
        let path = self.release.join(name);
        if !path.is_file() {
            return Err(Error::Setup(format!(
                "{} is missing; run scripts/bench.sh (it builds first)",
                path.display()
            )));
        }
        Ok(path)
    }

    /// A tool scripts/bench.sh installs under `target/`, or `None` if it is not there.
    pub fn tool(&self, relative: &str) -> Option<PathBuf> {
        Some(self.root.join("target").join(relative)).filter(|p| p.is_file())
    }

    /// The log file for `name`.
    pub fn log(&self, name: &str) -> PathBuf {
        self.work.join(format!("{name}.log"))
    }

    /// A data directory with a key ring (`chat-auth keys` creates one), shared by the local
    /// server and the functions.
    pub fn ring(&self) -> Result<PathBuf> {
        let dir = self.work.join("ring");
        if dir.join("ring.json").is_file() {
            return Ok(dir);
        }
        let out = Command::new(self.binary("chat-auth")?)
            .arg("keys")
            .env("CHAT_AUTH_DATA_DIR", &dir)
            .output()
            .map_err(|e| Error::io("chat-auth keys", e))?;
        if !out.status.success() || !dir.join("ring.json").is_file() {
            return Err(Error::Answer(format!(
                "chat-auth keys did not create a ring in {}: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(dir)
    }

    /// A fresh data directory `name` under the work directory.
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.work.join(name)
    }
}
