//! Where a cold start's time goes. Each function ends its init with one `init done` line
//! (`chat_auth_host::lambda::InitClock`): the wall-clock time its `main` began and each init
//! phase. With the spawn time and the spawn-to-first-answer total, that splits a cold start
//! into the time before `main` (exec, dynamic linking, the tokio runtime), the phases, and the
//! first invocation (the Runtime API poll, the request, the answer back through the runtime).

use crate::error::{Error, Result};
use crate::figures::median;
use crate::table::duration;
use std::path::Path;
use std::time::SystemTime;

/// The parts, in the order a cold start runs them.
const PARTS: [&str; 6] = [
    "before main",
    "telemetry",
    "config",
    "store",
    "app",
    "first invocation",
];
/// The init line's phase fields, in microseconds, for `PARTS[1..5]`.
const PHASES: [&str; 4] = ["telemetry_us", "config_us", "store_us", "app_us"];

/// One cold start, in seconds per part of [`PARTS`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Breakdown([f64; 6]);

impl Breakdown {
    /// From the last `init done` line in `log` (the function's output, appended to by every
    /// start), the time it was spawned and its spawn-to-first-answer `total` in seconds. A last
    /// line from before the spawn is an earlier start's: this one logged none.
    pub fn read(log: &Path, spawned: SystemTime, total: f64) -> Result<Breakdown> {
        let text = std::fs::read_to_string(log).map_err(|e| Error::file(log, e))?;
        let line = text
            .lines()
            .rfind(|line| line.contains("init done"))
            .ok_or_else(|| Error::Answer(format!("{} has no `init done` line", log.display())))?;
        let spawned = spawned
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        Breakdown::from_line(line, spawned, total)
    }

    /// Microseconds, in integers: a Unix time in µs has more digits than an `f64` keeps.
    fn from_line(line: &str, spawned_unix_us: u64, total: f64) -> Result<Breakdown> {
        let field = |name: &str| -> Result<u64> {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
                .and_then(|value| value.parse().ok())
                .ok_or_else(|| Error::Answer(format!("`{name}` missing from `{line}`")))
        };
        let began = field("began_unix_us")?;
        if began < spawned_unix_us {
            return Err(Error::Answer(format!(
                "the last `init done` line began before this start was spawned (an earlier \
                 start's): `{line}`"
            )));
        }
        let mut parts = [0.0; 6];
        parts[0] = (began - spawned_unix_us) as f64 / 1e6;
        for (part, name) in parts[1..5].iter_mut().zip(PHASES) {
            *part = field(name)? as f64 / 1e6;
        }
        parts[5] = total - parts[..5].iter().sum::<f64>();
        Ok(Breakdown(parts))
    }

    /// Each part's median over `starts`: `before main 0.91 ms, telemetry 38.0 µs, …`.
    pub fn medians(starts: &[Breakdown]) -> String {
        let parts: Vec<String> = PARTS
            .iter()
            .enumerate()
            .map(|(i, name)| format!("{name} {}", duration(median(starts.iter().map(|b| b.0[i])))))
            .collect();
        format!("init (medians): {}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "2026-12-03T13:00:00.000100Z  INFO init done began_unix_us=1796302800000900 \
                        telemetry_us=40 config_us=10 store_us=2000 app_us=50";

    #[test]
    fn the_parts_add_up_to_the_total() {
        // Spawned at ...000.000000 s, `main` began 900 µs later, answered 5 ms after spawn.
        let b = Breakdown::from_line(LINE, 1_796_302_800_000_000, 0.005).unwrap();
        let expected = [900e-6, 40e-6, 10e-6, 2000e-6, 50e-6, 2000e-6];
        for (got, want) in b.0.iter().zip(expected) {
            assert!((got - want).abs() < 1e-9, "{:?}", b.0);
        }
        assert!((b.0.iter().sum::<f64>() - 0.005).abs() < 1e-9);
    }

    #[test]
    fn a_missing_phase_is_an_error_not_a_zero() {
        let line = LINE.replace("store_us=2000 ", "");
        let error = Breakdown::from_line(&line, 1_796_302_800_000_000, 0.005).unwrap_err();
        assert!(error.to_string().contains("store_us"), "{error}");
    }

    #[test]
    fn an_earlier_starts_line_is_not_this_starts() {
        // Spawned 1 ms after the line's `main` began: the line is a previous process's.
        let error = Breakdown::from_line(LINE, 1_796_302_800_001_900, 0.005).unwrap_err();
        assert!(error.to_string().contains("earlier"), "{error}");
    }
}
