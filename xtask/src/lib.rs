//! `cargo xtask bench`: the project's benchmark, in one run and one table.
//!
//! Every figure that can be is set against the floor measured in the same run (`openssl speed
//! rsa2048` on the same core, several times through the run), because the machines this runs
//! on are shared and noisy; the goals in [`goals::GOALS`] are judged on those ratios and the
//! run fails if one is missed. The sections, in order:
//!
//! - **inproc**: the domain crate's hot paths in this process, in thread CPU time;
//! - **http**: the release `chat-auth serve` on one core under a closed-loop load from the
//!   other, then its cold start and memory;
//! - **lambda**: the function binaries under cargo-lambda's local Lambda runtime, with the file
//!   ring and with Secrets Manager on moto, and the do-nothing function (src/bin/do-nothing.rs)
//!   whose CPU per warm invocation the functions' are measured beyond.
//!
//! Under the table, [`cost`] turns mint-token's CPU per warm invocation into GB-seconds and
//! dollars per million tokens.
//!
//! scripts/bench.sh installs the tools and builds the binaries first. Every load targets
//! 127.0.0.1 and is bounded in time; progress goes to stderr, the table to stdout.
//!
//! Environment: `BENCH_SECONDS` (10) per HTTP load, `BENCH_SERVER_CORE` / `BENCH_LOAD_CORE`
//! (the first two allowed cores), `BENCH_COLD_RUNS` (10), `BENCH_ONLY` (a comma-separated
//! subset of `floor,inproc,http,lambda`), `BENCH_NO_ASSERT=1` (print, do not fail),
//! `CARGO_LAMBDA` (a cargo-lambda binary other than the one scripts/bench.sh installs, read by
//! the harness).

pub mod client;
pub mod cost;
pub mod error;
pub mod figures;
pub mod floor;
pub mod goals;
pub mod inproc;
pub mod lambda;
pub mod load;
pub mod local;
pub mod process;
pub mod settings;
pub mod sys;
pub mod table;

/// Progress, on stderr (the table is stdout's).
pub fn note(message: impl std::fmt::Display) {
    eprintln!("bench: {message}");
}
