//! What the run reads of the kernel: thread CPU time, CPU affinity, and `/proc`. The three
//! `unsafe` calls of the crate are here, each a plain libc call on memory it owns.

use crate::error::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;

/// CPU time of the calling thread. The in-process figures use it rather than wall time because
/// `openssl speed`, the floor, divides by CPU time too, and because it does not count the
/// slices that other processes take on a shared core.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux supports.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Pins the calling thread to `core`. Processes it spawns afterwards inherit the pin, which is
/// how servers and `openssl` are placed without `taskset` (whose own exec would count in the
/// cold start).
pub fn pin_thread(core: usize) -> Result<()> {
    if core >= libc::CPU_SETSIZE as usize {
        return Err(Error::Config(format!("core {core} is out of range")));
    }
    // SAFETY: `set` is a zeroed cpu_set_t owned here (all zeroes is its empty value); CPU_SET
    // stays within it for a core below CPU_SETSIZE (checked above); sched_setaffinity(0, ..)
    // reads it and changes only the calling thread.
    #[allow(unsafe_code)]
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        return Err(Error::io(
            format!("sched_setaffinity to core {core}"),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Clock ticks per second, the unit of the CPU times in `/proc/<pid>/stat`.
fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a constant of the system.
    #[allow(unsafe_code)]
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

fn read(path: impl Into<PathBuf>) -> Result<String> {
    let path = path.into();
    std::fs::read_to_string(&path).map_err(|e| Error::file(&path, e))
}

/// User plus system CPU time of process `pid` (all its threads), from `/proc/<pid>/stat`.
pub fn process_cpu(pid: u32) -> Result<Duration> {
    let stat = read(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; fields 14 and 15 follow its closing paren.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => Ok(Duration::from_secs_f64(
            (user + system) as f64 / clock_ticks(),
        )),
        _ => Err(Error::Answer(format!(
            "/proc/{pid}/stat: unreadable: {stat}"
        ))),
    }
}

/// The value of `key` in `/proc/<pid>/status` (`self` for this process), without its unit.
pub fn status(pid: &str, key: &str) -> Result<String> {
    let text = read(format!("/proc/{pid}/status"))?;
    text.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|value| value.split_whitespace().next())
        .map(str::to_owned)
        .ok_or_else(|| Error::Answer(format!("/proc/{pid}/status has no {key}")))
}

/// A `kB` field of `/proc/<pid>/status` (VmHWM, VmRSS), in bytes.
pub fn status_bytes(pid: u32, key: &str) -> Result<f64> {
    let kb = status(&pid.to_string(), key)?;
    kb.parse::<f64>()
        .map(|kb| kb * 1024.0)
        .map_err(|_| Error::Answer(format!("/proc/{pid}/status: {key} is {kb:?}")))
}

/// The cores this process may run on (`Cpus_allowed_list`, such as `0-3,6`), in order.
pub fn allowed_cores() -> Result<Vec<usize>> {
    let list = status("self", "Cpus_allowed_list")?;
    let bad = || Error::Answer(format!("Cpus_allowed_list {list:?}"));
    let mut cores = Vec::new();
    for part in list.split(',') {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        let (first, last) = (
            first.parse::<usize>().map_err(|_| bad())?,
            last.parse::<usize>().map_err(|_| bad())?,
        );
        cores.extend(first..=last);
    }
    Ok(cores)
}

/// The 1, 5 and 15 minute load averages, as the kernel prints them.
pub fn load_average() -> Result<String> {
    let text = read("/proc/loadavg")?;
    Ok(text
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" "))
}

/// The CPU's model name and the number of cores the kernel has online.
pub fn machine() -> Result<(String, usize)> {
    let info = read("/proc/cpuinfo")?;
    let model = info
        .lines()
        .find_map(|line| line.strip_prefix("model name")?.split_once(':'))
        .map_or("?".to_owned(), |(_, name)| name.trim().to_owned());
    let cores = info
        .lines()
        .filter(|line| line.starts_with("processor"))
        .count();
    Ok((model, cores))
}
