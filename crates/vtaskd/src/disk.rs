//! Disk space: a periodic `statvfs` of the data directory against a reserve
//! (`--disk-reserve`, issue #15).
//!
//! While the free space is below the reserve the node is *disk low*: it
//! refuses every call that would append to the log on a client's behalf
//! (task mutations and collector calls) with RESOURCE_EXHAUSTED, naming
//! itself and its free space; a leader that is disk low refuses the writes
//! followers forward to it too, so then the whole cluster refuses writes.
//! Reads keep working, and so does Raft: a disk-low follower still appends
//! what the leader replicates (the majority decides, not this node), and the
//! leader's own housekeeping (lease lapses, retention, which frees space)
//! still proposes. The reserve is the headroom all that writes into, so the
//! store stays away from a real ENOSPC. The node takes writes again by
//! itself once the free space is back above the reserve plus a margin
//! ([`hysteresis`]), so it does not flap around the line.
//!
//! A real ENOSPC (the reserve was too small) makes a RocksDB write fail;
//! openraft then stops, and the node exits loudly (`main.rs`), never having
//! acknowledged the entry whose write or fsync failed.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Default for `disk_reserve`.
pub const DEFAULT_RESERVE: u64 = 64 << 20;
/// Default for `disk_check_interval_ms`.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The free space at which a disk-low node takes writes again: the reserve
/// plus an eighth of it (a 64 MiB reserve: writes resume at 72 MiB free).
pub fn hysteresis(reserve: u64) -> u64 {
    reserve.saturating_add(reserve / 8)
}

/// The bytes an unprivileged process may still write on the file system
/// holding `dir` (`f_bavail`: root's reserved blocks do not count).
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let path = CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `path` is a NUL-terminated string and `stat` points to a
    // `statvfs` the call fills in; it is read only after the call succeeded.
    let rc = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it wrote the whole struct.
    let stat = unsafe { stat.assume_init() };
    #[allow(clippy::unnecessary_cast)] // the field types differ between targets
    Ok((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

/// `12.3 MiB`, `64 MiB`, `512 bytes`: sizes as the messages and logs say them.
pub fn human(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if bytes >= size {
            return if bytes.is_multiple_of(size) {
                format!("{} {unit}", bytes / size)
            } else {
                format!("{:.1} {unit}", bytes as f64 / size as f64)
            };
        }
    }
    format!("{bytes} bytes")
}

/// What the last check saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskState {
    pub free: u64,
    pub reserve: u64,
    pub low: bool,
}

/// This node's disk is below its reserve: a write it would append is refused.
#[derive(Clone, Debug)]
pub struct DiskLow {
    pub node: u64,
    pub free: u64,
    pub reserve: u64,
}

impl std::fmt::Display for DiskLow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "node {}: disk full: {} free, reserve {}; writes are refused until {} are free, reads still work",
            self.node,
            human(self.free),
            human(self.reserve),
            human(hysteresis(self.reserve)),
        )
    }
}

/// The disk watch of one node.
pub struct Disk {
    node: u64,
    dir: PathBuf,
    reserve: u64,
    free: AtomicU64,
    low: AtomicBool,
    /// Whether the last check failed (logged once per failure streak).
    failing: AtomicBool,
}

impl Disk {
    /// Watches `dir` of node `node`, checked once before this returns. A
    /// `reserve` of 0 refuses nothing (the gauges still report).
    pub fn new(node: u64, dir: &Path, reserve: u64) -> Arc<Disk> {
        let disk = Arc::new(Disk {
            node,
            dir: dir.to_path_buf(),
            reserve,
            free: AtomicU64::new(u64::MAX),
            low: AtomicBool::new(false),
            failing: AtomicBool::new(false),
        });
        disk.check();
        disk
    }

    /// Checks every `interval` until the runtime stops. `statvfs` is a
    /// blocking call (a hung network file system blocks it), so it runs on
    /// the blocking pool.
    pub fn start(self: &Arc<Disk>, interval: Duration) {
        let disk = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let check = disk.clone();
                if tokio::task::spawn_blocking(move || check.check())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }

    /// One check: measures, updates the state and logs a transition.
    pub fn check(&self) {
        let free = match free_bytes(&self.dir) {
            Ok(free) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(dir = %self.dir.display(), "disk check works again");
                }
                free
            }
            Err(e) => {
                // Keep the last state: a failed measurement is no news.
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(dir = %self.dir.display(), "disk check (statvfs) failed: {e}");
                }
                return;
            }
        };
        self.observe(free);
    }

    /// Takes `free` as the current free space.
    fn observe(&self, free: u64) {
        self.free.store(free, Ordering::Relaxed);
        let was_low = self.low.load(Ordering::Relaxed);
        let low = if was_low {
            free < hysteresis(self.reserve)
        } else {
            free < self.reserve
        };
        if low == was_low {
            return;
        }
        self.low.store(low, Ordering::Relaxed);
        if low {
            tracing::warn!(
                dir = %self.dir.display(),
                free,
                reserve = self.reserve,
                "disk low: {} free, below the reserve of {}; refusing writes until {} are free (reads still work)",
                human(free),
                human(self.reserve),
                human(hysteresis(self.reserve)),
            );
        } else {
            tracing::info!(
                dir = %self.dir.display(),
                free,
                reserve = self.reserve,
                "disk has room again: {} free; taking writes",
                human(free),
            );
        }
    }

    /// Ok, or why this node must not append a client's write now.
    pub fn admit_write(&self) -> Result<(), DiskLow> {
        let state = self.state();
        if state.low {
            return Err(DiskLow {
                node: self.node,
                free: state.free,
                reserve: state.reserve,
            });
        }
        Ok(())
    }

    pub fn state(&self) -> DiskState {
        DiskState {
            free: self.free.load(Ordering::Relaxed),
            reserve: self.reserve,
            low: self.low.load(Ordering::Relaxed),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(reserve: u64) -> Disk {
        Disk {
            node: 2,
            dir: PathBuf::from("/nowhere"),
            reserve,
            free: AtomicU64::new(u64::MAX),
            low: AtomicBool::new(false),
            failing: AtomicBool::new(false),
        }
    }

    #[test]
    fn below_the_reserve_refuses_and_above_the_margin_takes_writes_again() {
        let disk = disk(64 << 20);
        disk.observe(100 << 20);
        assert!(disk.admit_write().is_ok());
        disk.observe(12 << 20 | 300 << 10);
        let refused = disk.admit_write().unwrap_err().to_string();
        assert!(
            refused.starts_with("node 2: disk full: 12.3 MiB free, reserve 64 MiB;"),
            "{refused}"
        );
        // Back above the reserve but not above the margin: still low.
        disk.observe(70 << 20);
        assert!(disk.state().low);
        disk.observe(72 << 20);
        assert_eq!(
            disk.state(),
            DiskState {
                free: 72 << 20,
                reserve: 64 << 20,
                low: false
            }
        );
        assert!(disk.admit_write().is_ok());
        // Between the reserve and the margin, coming from above: fine.
        disk.observe(65 << 20);
        assert!(disk.admit_write().is_ok());
    }

    #[test]
    fn a_zero_reserve_refuses_nothing() {
        let disk = disk(0);
        disk.observe(0);
        assert!(disk.admit_write().is_ok());
    }

    #[test]
    fn free_space_is_measured() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).unwrap() > 0);
        assert!(free_bytes(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human(512), "512 bytes");
        assert_eq!(human(64 << 20), "64 MiB");
        assert_eq!(human(3 << 29), "1.5 GiB");
    }
}
