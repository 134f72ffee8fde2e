//! `cargo xtask bench`: see the library's documentation (xtask/src/lib.rs).

use std::process::{Command, ExitCode};
use std::time::Instant;
use xtask::error::{Error, Result};
use xtask::figures::Figure;
use xtask::floor::Floors;
use xtask::goals::{GOALS, Verdict};
use xtask::settings::{Settings, Workspace};
use xtask::{client, cost, inproc, lambda, local, note, sys, table};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args != ["bench"] {
        eprintln!("usage: cargo xtask bench   (settings: BENCH_* variables, see xtask/src/lib.rs)");
        return ExitCode::from(2);
    }
    match bench() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::from(2)
        }
    }
}

/// The run; `false` when a goal was missed and goals are asserted.
fn bench() -> Result<bool> {
    if cfg!(debug_assertions) {
        return Err(Error::Setup(
            "the in-process figures need a release build: cargo xtask bench (see \
             .cargo/config.toml) or cargo run --release -p xtask -- bench"
                .into(),
        ));
    }
    let settings = Settings::from_env()?;
    sys::pin_thread(settings.cores.load)?;
    let started = Instant::now();
    let (model, cores) = sys::machine()?;
    let load_before = sys::load_average()?;

    let mut floors = Floors::new(settings.cores, settings.only.floor);
    let mut figures: Vec<Figure> = Vec::new();
    if settings.only.inproc {
        figures.extend(inproc::run(&settings.cores, &mut floors)?);
    }
    if settings.only.http || settings.only.lambda {
        let workspace = Workspace::locate()?;
        let client = client::Client::new()?;
        if settings.only.http {
            figures.extend(local::run(&settings, &workspace, &client, &mut floors)?);
        }
        if settings.only.lambda {
            figures.extend(lambda::run(&settings, &workspace, &client, &mut floors)?);
        }
    }
    // The last section's figures need a floor after them too.
    floors.take()?;

    println!(
        "machine: {model}, {cores} cores; load average {load_before} before, {} after; \
         commit {}; {:.0} s",
        sys::load_average()?,
        commit(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "server, openssl and in-process loops on core {}, load generator on core {}; {} s per \
         HTTP load (closed loop); \"per core\" = 1 / server CPU per request\n",
        settings.cores.server,
        settings.cores.load,
        settings.seconds.as_secs()
    );
    println!("{}\n", table::render(&figures, &floors));
    if let Some(cost) = cost::render(&figures) {
        println!("{cost}\n");
    }

    let verdicts: Vec<_> = GOALS
        .iter()
        .map(|goal| (goal, goal.judge(&figures, &floors)))
        .collect();
    let count = |wanted: fn(&Verdict) -> bool| verdicts.iter().filter(|(_, v)| wanted(v)).count();
    println!(
        "goals: {} met, {} missed, {} not measured",
        count(|v| matches!(v, Verdict::Met(_))),
        count(|v| matches!(v, Verdict::Missed(_))),
        count(|v| *v == Verdict::NotMeasured),
    );
    let mut all_met = true;
    for (goal, verdict) in &verdicts {
        if let Verdict::Missed(x) = verdict {
            println!(
                "- missed: {} {} (measured {})",
                goal.name,
                goal.bound_text(),
                goal.on_scale(*x, false)
            );
            all_met = false;
        }
    }
    if !all_met && !settings.assert {
        note("BENCH_NO_ASSERT=1: missed goals do not fail the run");
    }
    Ok(all_met || !settings.assert)
}

/// The commit measured, `-dirty` when the work tree has changes.
fn commit() -> String {
    Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map_or("?".into(), |out| {
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        })
}
