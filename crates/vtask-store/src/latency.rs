//! Latency histograms of the write path's stages, for `/metrics`.
//!
//! A node is one process, so each stage has one process-wide histogram: the
//! layers that time a stage (the log syncer here, the network in
//! `vtask-raft`, the proposer in `vtaskd`) need no handle passed down to
//! them, and recording is a few relaxed atomic adds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in microseconds: 50 µs (well under one
/// fsync) to 5 s (the proposal timeout).
const BOUNDS_MICROS: [u64; 16] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000,
];

/// A Prometheus histogram with fixed buckets.
pub struct Histogram {
    name: &'static str,
    help: &'static str,
    /// Counts per bucket (not cumulative); the last one is `+Inf`.
    buckets: [AtomicU64; BOUNDS_MICROS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    pub const fn new(name: &'static str, help: &'static str) -> Histogram {
        Histogram {
            name,
            help,
            buckets: [const { AtomicU64::new(0) }; BOUNDS_MICROS.len() + 1],
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn record(&self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_MICROS.partition_point(|&bound| bound < micros);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Appends the histogram in the Prometheus text format, in seconds.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let name = self.name;
        let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} histogram", self.help);
        let mut cumulative = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = BOUNDS_MICROS
                .get(i)
                .map_or("+Inf".to_string(), |&micros| seconds(micros));
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let sum = seconds(self.sum_micros.load(Ordering::Relaxed));
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}

fn seconds(micros: u64) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// One `fsync` of the write-ahead log, serving every append that was
/// waiting for it.
pub static LOG_SYNC: Histogram = Histogram::new(
    "vtask_log_sync_seconds",
    "Time of one fsync of the write-ahead log (it serves every Raft log append waiting for it).",
);

/// One call of the state machine's apply: a run of committed entries.
pub static APPLY: Histogram = Histogram::new(
    "vtask_apply_seconds",
    "Time to apply one run of committed Raft entries to the state machine.",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_bounded_by_their_upper_edge() {
        let histogram = Histogram::new("t_seconds", "test");
        for micros in [10, 50, 51, 999, 1_000, 7_000_000] {
            histogram.record(Duration::from_micros(micros));
        }
        let mut out = String::new();
        histogram.render(&mut out);
        let line = |le: &str| {
            out.lines()
                .find(|l| l.starts_with(&format!("t_seconds_bucket{{le=\"{le}\"}}")))
                .unwrap_or_else(|| panic!("no bucket {le} in\n{out}"))
                .rsplit(' ')
                .next()
                .unwrap()
                .to_string()
        };
        // A bound is inclusive (`le`): 50 µs is in the first bucket.
        assert_eq!(line("0.000050"), "2");
        assert_eq!(line("0.000100"), "3");
        assert_eq!(line("0.001000"), "5");
        assert_eq!(line("5.000000"), "5");
        assert_eq!(line("+Inf"), "6");
        assert!(out.contains("t_seconds_count 6\n"), "{out}");
        assert!(out.contains("t_seconds_sum 7.002110\n"), "{out}");
    }
}
