//! CPU time of processes from `/proc/<pid>/stat`, to report what each
//! operation costs the servers, not only how fast it returns.

use std::fs;
use std::io;
use std::time::Duration;

/// The pids of every local process whose `/proc/<pid>/comm` is `name`.
pub fn pids_named(name: &str) -> io::Result<Vec<u32>> {
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        // A process may exit between read_dir and this read; it is not ours then.
        if let Ok(comm) = fs::read_to_string(entry.path().join("comm")) {
            if comm.trim_end() == name {
                pids.push(pid);
            }
        }
    }
    pids.sort_unstable();
    Ok(pids)
}

/// User plus system CPU time a process has used so far.
pub fn cpu_time(pid: u32) -> io::Result<Duration> {
    cpu_time_of(&format!("/proc/{pid}/stat"))
}

/// [`cpu_time`] of this process (the load generator itself).
pub fn own_cpu_time() -> io::Result<Duration> {
    cpu_time_of("/proc/self/stat")
}

fn cpu_time_of(path: &str) -> io::Result<Duration> {
    let stat = fs::read_to_string(path)?;
    let ticks = parse_stat_ticks(&stat)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{path}: unreadable")))?;
    Ok(Duration::from_secs_f64(ticks as f64 / ticks_per_second()))
}

/// utime + stime (fields 14 and 15) in clock ticks. The command name (field
/// 2) is in parentheses and may itself hold spaces and parentheses, so the
/// fields are counted from the last `)`.
fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After the name come state (3), ppid (4), ... utime is the 12th of these.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        // USER_HZ, the unit of /proc on every Linux architecture vtask runs on.
        100.0
    }
}

/// CPU time of a set of processes at one moment.
pub struct Sample {
    per_pid: Vec<(u32, Option<Duration>)>,
}

impl Sample {
    pub fn take(pids: &[u32]) -> Sample {
        Sample {
            per_pid: pids.iter().map(|&pid| (pid, cpu_time(pid).ok())).collect(),
        }
    }

    /// CPU used between `self` and `later`, summed over the processes seen
    /// both times, and the pids that were not (exited or never there).
    pub fn used_until(&self, later: &Sample) -> (Duration, Vec<u32>) {
        let mut used = Duration::ZERO;
        let mut missing = Vec::new();
        for ((pid, before), (_, after)) in self.per_pid.iter().zip(&later.per_pid) {
            match (before, after) {
                (Some(before), Some(after)) => used += after.saturating_sub(*before),
                _ => missing.push(*pid),
            }
        }
        (used, missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_cpu_fields_are_counted_from_the_last_parenthesis() {
        let stat = "4242 (vt ask) (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    37 5 0 0 20 0 9 0 12345 1000 200";
        assert_eq!(parse_stat_ticks(stat), Some(42));
    }

    #[test]
    fn bench_cpu_reads_this_process() {
        assert!(own_cpu_time().is_ok());
        let me = std::process::id();
        let name = fs::read_to_string(format!("/proc/{me}/comm")).unwrap();
        assert!(pids_named(name.trim_end()).unwrap().contains(&me));
    }
}
