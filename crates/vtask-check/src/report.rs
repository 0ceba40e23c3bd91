//! What a check found: counts for the summary table, and each anomaly with
//! its readable evidence. Serde, so `vtask chaos -o json` prints it as is.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::history::{Call, OpOutcome, Operation, Returned};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Per-task histories searched for a linearization.
    pub histories_checked: usize,
    /// Operations by method and outcome.
    pub operations: BTreeMap<String, OutcomeCounts>,
    pub watch_streams_checked: usize,
    pub watch_events_checked: usize,
    /// Creates with an unknown outcome: no key to check them against.
    pub unattributed_creates: usize,
    /// Tasks whose search hit the configuration limit: neither proven nor
    /// refuted. A clean run has none.
    pub inconclusive: Vec<String>,
    pub anomalies: Vec<Anomaly>,
}

impl Report {
    /// No anomaly and nothing left undecided.
    pub fn is_clean(&self) -> bool {
        self.anomalies.is_empty() && self.inconclusive.is_empty()
    }

    pub(crate) fn count(&mut self, op: &Operation) {
        let counts = self
            .operations
            .entry(op.call.method().to_string())
            .or_default();
        match &op.outcome {
            OpOutcome::Ok {
                value: Returned::Task(_),
            } => counts.ok += 1,
            OpOutcome::Ok {
                value: Returned::Fault(_),
            } => counts.fault += 1,
            OpOutcome::Failed => counts.failed += 1,
            OpOutcome::Unknown => counts.unknown += 1,
        }
    }
}

/// How the calls of one method ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutcomeCounts {
    /// Answered with a task.
    pub ok: u64,
    /// Answered with a vSphere fault.
    pub fault: u64,
    pub failed: u64,
    pub unknown: u64,
}

impl OutcomeCounts {
    pub fn total(&self) -> u64 {
        self.ok + self.fault + self.failed + self.unknown
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AnomalyKind {
    /// No order of a task's calls explains the replies: a stale read, a lost
    /// or doubled write, a wrong fault.
    NotLinearizable,
    /// A CreateTask fault the model does not give for the same call.
    UnexplainedFault,
    /// A watcher missed a change (or a task in its snapshot).
    WatchGap,
    /// A watcher got the same change twice.
    WatchDuplicate,
    /// A watcher got a revision older than one it already had.
    WatchReorder,
    /// A watcher got a task state that differs from the authoritative one at
    /// that revision, or a revision that is no change of the task.
    WatchWrongValue,
    /// A watcher saw a task that has no authoritative change list.
    WatchUnknownTask,
    /// A watcher that ran to the end does not know the task's final state.
    WatchEndsBehind,
    /// A snapshot event outside a snapshot (a restart without a Resync).
    WatchProtocol,
}

impl fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AnomalyKind::NotLinearizable => "not linearizable",
            AnomalyKind::UnexplainedFault => "unexplained fault",
            AnomalyKind::WatchGap => "watch gap",
            AnomalyKind::WatchDuplicate => "watch duplicate",
            AnomalyKind::WatchReorder => "watch reorder",
            AnomalyKind::WatchWrongValue => "watch wrong value",
            AnomalyKind::WatchUnknownTask => "watch unknown task",
            AnomalyKind::WatchEndsBehind => "watch ends behind",
            AnomalyKind::WatchProtocol => "watch protocol",
        })
    }
}

/// One violation with its evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Anomaly {
    pub kind: AnomalyKind,
    /// The task key as the calls spelled it.
    pub task: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watcher: Option<u32>,
    pub summary: String,
    /// The evidence, one line each: for a linearizability violation the
    /// minimal failing sub-history and where the model got stuck.
    pub lines: Vec<String>,
    /// The minimal failing sub-history itself, so it can be checked again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_history: Vec<Operation>,
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.task)?;
        if let Some(watcher) = self.watcher {
            write!(f, " (watcher c{watcher})")?;
        }
        writeln!(f, ": {}", self.summary)?;
        for line in &self.lines {
            writeln!(f, "    {line}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<20} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "operation", "ok", "fault", "failed", "unknown", "total"
        )?;
        let mut all = OutcomeCounts::default();
        for (method, c) in &self.operations {
            writeln!(
                f,
                "{method:<20} {:>8} {:>8} {:>8} {:>8} {:>8}",
                c.ok,
                c.fault,
                c.failed,
                c.unknown,
                c.total()
            )?;
            all.ok += c.ok;
            all.fault += c.fault;
            all.failed += c.failed;
            all.unknown += c.unknown;
        }
        writeln!(
            f,
            "{:<20} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "all",
            all.ok,
            all.fault,
            all.failed,
            all.unknown,
            all.total()
        )?;
        writeln!(f, "task histories checked: {}", self.histories_checked)?;
        writeln!(
            f,
            "watch streams checked: {} ({} events)",
            self.watch_streams_checked, self.watch_events_checked
        )?;
        if !self.inconclusive.is_empty() {
            writeln!(
                f,
                "inconclusive (search limit reached): {}",
                self.inconclusive.join(", ")
            )?;
        }
        writeln!(f, "anomalies: {}", self.anomalies.len())?;
        for anomaly in &self.anomalies {
            write!(f, "{anomaly}")?;
        }
        Ok(())
    }
}

/// A task key for an anomaly about one call.
pub(crate) fn task_of(op: &Operation) -> String {
    match (&op.call, &op.outcome) {
        (
            Call::Mutation { .. },
            OpOutcome::Ok {
                value: Returned::Task(info),
            },
        ) => info.key.to_string(),
        (call, _) => call.task().unwrap_or("(new task)").to_string(),
    }
}
