//! Counters for `/metrics` (Prometheus text format). Plain atomics: the
//! write path only adds to them.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Default)]
pub struct Metrics {
    batches: AtomicU64,
    batched_requests: AtomicU64,
    /// (method, outcome) → count. Outcome is `ok`, a fault type name, or a gRPC code.
    requests: Mutex<BTreeMap<(&'static str, String), u64>>,
    forwarded: AtomicU64,
    expired: AtomicU64,
}

impl Metrics {
    pub fn batch(&self, size: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.batched_requests
            .fetch_add(size as u64, Ordering::Relaxed);
    }

    pub fn request(&self, method: &'static str, outcome: &str) {
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *requests.entry((method, outcome.to_string())).or_default() += 1;
    }

    pub fn forwarded(&self) {
        self.forwarded.fetch_add(1, Ordering::Relaxed);
    }

    /// Tasks this node, as leader, removed after the retention period (D16).
    pub fn expired(&self, count: u64) {
        self.expired.fetch_add(count, Ordering::Relaxed);
    }

    /// Renders every metric, plus the Raft and disk gauges passed in.
    pub fn render(&self, raft: &RaftGauges, disk: &crate::disk::DiskState) -> String {
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        gauge("vtask_raft_term", "Current Raft term.", raft.term);
        gauge(
            "vtask_raft_is_leader",
            "1 when this node is the leader.",
            u64::from(raft.is_leader),
        );
        gauge(
            "vtask_raft_last_log_index",
            "Index of the last log entry.",
            raft.last_log_index,
        );
        gauge(
            "vtask_raft_applied_index",
            "Index of the last applied entry.",
            raft.applied_index,
        );
        gauge(
            "vtask_raft_snapshot_index",
            "Index covered by the last snapshot.",
            raft.snapshot_index,
        );
        // u64::MAX: not measured yet (statvfs has failed since the start).
        gauge(
            "vtask_disk_free_bytes",
            "Bytes free for vtaskd on the data directory's file system, at the last check.",
            disk.free,
        );
        gauge(
            "vtask_disk_reserve_bytes",
            "Free bytes below which this node refuses writes (--disk-reserve).",
            disk.reserve,
        );
        gauge(
            "vtask_disk_low",
            "1 while the free space is below the reserve and this node refuses writes.",
            u64::from(disk.low),
        );
        let _ = writeln!(out, "# HELP vtask_proposer_batches_total Raft entries proposed by the group-commit proposer.\n# TYPE vtask_proposer_batches_total counter\nvtask_proposer_batches_total {}", self.batches.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP vtask_proposer_requests_total Requests carried in those entries.\n# TYPE vtask_proposer_requests_total counter\nvtask_proposer_requests_total {}", self.batched_requests.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP vtask_forwarded_total Requests this node forwarded to the leader.\n# TYPE vtask_forwarded_total counter\nvtask_forwarded_total {}", self.forwarded.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP vtask_tasks_expired_total Finished tasks this node removed as leader after the retention period.\n# TYPE vtask_tasks_expired_total counter\nvtask_tasks_expired_total {}", self.expired.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP vtask_requests_total API requests by method and outcome.\n# TYPE vtask_requests_total counter");
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        for ((method, outcome), count) in requests.iter() {
            let _ = writeln!(
                out,
                "vtask_requests_total{{method=\"{method}\",outcome=\"{outcome}\"}} {count}"
            );
        }
        drop(requests);
        for histogram in [
            &crate::proposer::COMMIT,
            &vtask_raft::APPEND_ENTRIES,
            &crate::raft_service::APPEND_ENTRIES_SERVED,
            &vtask_store::latency::LOG_SYNC,
            &vtask_store::latency::APPLY,
        ] {
            histogram.render(&mut out);
        }
        out
    }
}

/// The Raft state shown in metrics, read from openraft's metrics.
#[derive(Default)]
pub struct RaftGauges {
    pub term: u64,
    pub is_leader: bool,
    pub last_log_index: u64,
    pub applied_index: u64,
    pub snapshot_index: u64,
}
