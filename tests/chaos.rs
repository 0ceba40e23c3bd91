//! `vtask chaos` end to end, against clusters it starts itself: a correct
//! build comes out clean under every fault, and the checker finds each bug
//! planted in debug builds (`VTASKD_PLANTED_BUG`) with the fault that
//! exposes it. Without the second half, a clean report would prove nothing.

use std::process::Command;

use serde_json::Value;
use vtask_tests::{vtask_bin, vtaskd_bin};

struct Run {
    exit: Option<i32>,
    report: Value,
    stderr: String,
}

impl Run {
    /// The anomaly kinds of the history check, then `cluster` once per
    /// whole-cluster anomaly.
    fn anomalies(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self.report["check"]["anomalies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["kind"].as_str().map(str::to_string))
            .collect();
        let cluster = self.report["clusterAnomalies"]
            .as_array()
            .map_or(0, Vec::len);
        kinds.extend(std::iter::repeat_n("cluster".to_string(), cluster));
        kinds
    }

    fn operations(&self) -> u64 {
        self.report["operations"].as_u64().unwrap_or(0)
    }

    fn summary(&self) -> String {
        let report = serde_json::to_string_pretty(&self.report).unwrap_or_default();
        let head: String = report.chars().take(6000).collect();
        format!(
            "exit {:?}\n--- report (head) ---\n{head}\n--- stderr ---\n{}",
            self.exit, self.stderr
        )
    }
}

fn chaos(bug: Option<&str>, args: &[&str]) -> Run {
    let dir = tempfile::Builder::new()
        .prefix("vtask-chaos-test-")
        .tempdir()
        .expect("a temp dir");
    let mut command = Command::new(vtask_bin());
    command
        .args(["-o", "json", "chaos", "--vtaskd"])
        .arg(vtaskd_bin())
        .arg("--dir")
        .arg(dir.path().join("cluster"))
        .args(args);
    match bug {
        Some(bug) => command.env("VTASKD_PLANTED_BUG", bug),
        None => command.env_remove("VTASKD_PLANTED_BUG"),
    };
    let output = command.output().expect("run vtask chaos");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "vtask chaos printed no JSON report ({e}), exit {:?}\n{stderr}",
            output.status.code()
        )
    });
    Run {
        exit: output.status.code(),
        report,
        stderr,
    }
}

#[test]
fn chaos_correct_build_is_clean_under_every_fault() {
    let run = chaos(
        None,
        &[
            "--duration",
            "20s",
            "--faults",
            "kill,restart,stop,partition,slow,crash",
            "--interval",
            "3s",
            "--resend",
            "0.1",
            "--seed",
            "1",
        ],
    );
    assert_eq!(run.exit, Some(0), "{}", run.summary());
    assert!(run.anomalies().is_empty(), "{}", run.summary());
    assert!(run.operations() >= 500, "{}", run.summary());
    let faults = run.report["faults"].as_array().map_or(0, Vec::len);
    assert!(faults >= 4, "only {faults} faults: {}", run.summary());
    assert!(
        run.report["check"]["historiesChecked"].as_u64() > Some(20),
        "{}",
        run.summary()
    );
}

/// A follower that answers linearizable reads without the ReadIndex
/// barrier returns states that acknowledged writes already replaced; a
/// follower cut off by a partition does so for seconds.
#[cfg(debug_assertions)]
#[test]
fn chaos_finds_stale_follower_reads() {
    let run = chaos(
        Some("stale-follower-reads"),
        &[
            "--duration",
            "15s",
            "--faults",
            "partition",
            "--interval",
            "3s",
            "--seed",
            "2",
        ],
    );
    assert_eq!(run.exit, Some(1), "{}", run.summary());
    assert!(
        run.anomalies().iter().any(|k| k == "notLinearizable"),
        "{}",
        run.summary()
    );
}

/// Without the session table a re-sent request is applied twice: the
/// second reply is a fault (the task already moved on) or a second effect,
/// which no order of the calls explains.
#[cfg(debug_assertions)]
#[test]
fn chaos_finds_requests_applied_twice_without_dedup() {
    let run = chaos(
        Some("no-dedup"),
        &[
            "--duration",
            "10s",
            "--faults",
            "none",
            "--resend",
            "0.3",
            "--seed",
            "3",
        ],
    );
    assert_eq!(run.exit, Some(1), "{}", run.summary());
    assert!(
        run.anomalies().iter().any(|k| k == "notLinearizable"),
        "{}",
        run.summary()
    );
}

/// Log entries acknowledged before any fsync, and written without the WAL,
/// are gone after every node is killed at once: nodes come back with a
/// state machine ahead of their log, which openraft refuses, or with
/// acknowledged writes missing.
#[cfg(debug_assertions)]
#[test]
fn chaos_finds_acknowledgements_before_fsync() {
    let run = chaos(
        Some("ack-before-fsync"),
        &[
            "--duration",
            "15s",
            "--faults",
            "crash",
            "--interval",
            "4s",
            "--recovery-timeout",
            "20s",
            "--seed",
            "4",
        ],
    );
    assert_eq!(run.exit, Some(1), "{}", run.summary());
    assert!(!run.anomalies().is_empty(), "{}", run.summary());
}
