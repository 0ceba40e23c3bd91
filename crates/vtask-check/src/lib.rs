//! `vtask-check`: does a recorded history of a vtask cluster keep vtask's
//! guarantees?
//!
//! A runner (the `vtask chaos` verb) records every client call with its
//! invocation and completion times and outcome, every watch stream, and at
//! the end each task's authoritative change list, as a [`History`]. [`check`]
//! then decides, per task, whether the calls are linearizable with
//! `vtask_model::apply` as the sequential specification
//! ([`linearizability`]), and whether the watch streams are ordered,
//! gap-free, duplicate-free and end in the final state ([`watch`]). Each
//! violation comes back in the [`Report`] with a minimal failing
//! sub-history, one readable line per call.
//!
//! A final linearizable `GetTask` of every task, invoked after every other
//! call completed, makes "no acknowledged mutation is missing from the final
//! state" part of the same search: the read must come last, so it must show
//! every acknowledged write.
//!
//! How a runner records a history:
//! - one [`Operation`] per client call: client id, [`Call`] (a mutation with
//!   its `Caller`, or `GetTask`), monotonic invoke and completion times in
//!   nanoseconds, and [`OpOutcome`]: `Ok` with the returned `TaskInfo` or
//!   `MethodFault`, `Failed` when the call surely never reached the log, or
//!   `Unknown` on a timeout or lost connection;
//! - after all calls completed, one linearizable `GetTask` per task (the
//!   final reads);
//! - one [`WatchStream`] per watcher, with a [`WatchEvent::Resync`] wherever
//!   it started over from the current state;
//! - the change list of every task any call or watcher saw, from
//!   `GetTaskHistory`, in [`History::changes`].
//!
//! Then `check(&history, &CheckConfig::default())`; [`Report`] prints as a
//! table (`Display`) and serializes as JSON; `report.is_clean()` decides the
//! exit code.
//!
//! The runner that records such histories lives here too ([`runner`], with
//! [`workload`], [`nemesis`], [`cluster`] and [`proxy`]): `vtask chaos`
//! drives it, against a cluster it starts itself (with faults) or against
//! any cluster's endpoints (without).
//!
//! **Architecture invariant:** the checker (`history`, `linearizability`,
//! `projection`, `watch`, `report` and [`check`]) is pure. No tokio, tonic
//! or RocksDB, no clock and no I/O: it reads values and returns values, so
//! a saved history can be checked again anywhere, and it never imports the
//! runner modules. The runner talks to nodes over gRPC only and never links
//! `vtask-store`.

pub mod cluster;
mod error;
pub mod history;
pub mod linearizability;
pub mod nemesis;
pub mod projection;
pub mod proxy;
pub mod report;
pub mod runner;
pub mod watch;
pub mod workload;

pub use error::HistoryError;
pub use history::{
    Call, ChangeKind, History, OpOutcome, Operation, OperationLine, RecordedChange, Returned,
    Selector, WatchEvent, WatchStream,
};
pub use linearizability::{CheckConfig, TaskHistory, Verdict};
pub use projection::{Observed, TaskView};
pub use report::{Anomaly, AnomalyKind, OutcomeCounts, Report};

use linearizability::{check_task, partition, shrink, unexplained_create_fault, StuckText};

/// Checks a whole history: every task's calls, every watch stream.
pub fn check(history: &History, config: &CheckConfig) -> Result<Report, HistoryError> {
    history.validate()?;
    let origin = history.origin();
    let mut report = Report::default();
    for op in &history.operations {
        report.count(op);
    }
    let parts = partition(&history.operations);
    report.unattributed_creates = parts.unattributed_creates;
    for task in &parts.tasks {
        report.histories_checked += 1;
        match check_task(task, config) {
            Verdict::Linearizable => {}
            Verdict::Inconclusive { .. } => report.inconclusive.push(task.task.clone()),
            Verdict::NotLinearizable(_) => {
                report
                    .anomalies
                    .push(not_linearizable(task, config, origin));
            }
        }
    }
    for op in &parts.create_faults {
        if let Some(predicted) = unexplained_create_fault(op) {
            report.anomalies.push(Anomaly {
                kind: AnomalyKind::UnexplainedFault,
                task: report::task_of(op),
                watcher: None,
                summary: format!("the model answers {predicted} to the same call"),
                lines: vec![OperationLine { op, origin }.to_string()],
                sub_history: vec![op.clone()],
            });
        }
    }
    for stream in &history.watches {
        report.watch_streams_checked += 1;
        report.watch_events_checked += stream.events.len();
        report
            .anomalies
            .extend(watch::check_watch(stream, &history.changes));
    }
    Ok(report)
}

/// The anomaly for a task whose calls have no linearization: the shrunk
/// sub-history and where the model got stuck on it.
fn not_linearizable(task: &TaskHistory, config: &CheckConfig, origin: u64) -> Anomaly {
    let small = shrink(task, config);
    let mut lines: Vec<String> = small
        .operations
        .iter()
        .map(|op| OperationLine { op, origin }.to_string())
        .collect();
    if let Verdict::NotLinearizable(stuck) = check_task(&small, config) {
        let text = StuckText {
            history: &small,
            stuck: &stuck,
            origin,
        }
        .to_string();
        lines.extend(text.lines().map(str::to_string));
    }
    Anomaly {
        kind: AnomalyKind::NotLinearizable,
        task: task.task.clone(),
        watcher: None,
        summary: format!(
            "no order of its {} calls explains the replies; {} of them still fail",
            task.operations.len(),
            small.operations.len()
        ),
        lines,
        sub_history: small.operations,
    }
}

impl History {
    /// Refuses what cannot be checked: a completion before its invocation,
    /// and calls other than the five task mutations and GetTask (the
    /// leader's own LapseLease and ExpireTasks, collector calls).
    pub fn validate(&self) -> Result<(), HistoryError> {
        for (index, op) in self.operations.iter().enumerate() {
            if op.complete < op.invoke {
                return Err(HistoryError::CompletesBeforeInvocation {
                    index,
                    client: op.client,
                    invoke: op.invoke,
                    complete: op.complete,
                });
            }
            if let Call::Mutation { command, .. } = &op.call {
                use vtask_model::Command as C;
                let task_call = matches!(
                    command,
                    C::CreateTask(_)
                        | C::CancelTask { .. }
                        | C::UpdateProgress { .. }
                        | C::SetTaskState { .. }
                        | C::SetTaskDescription { .. }
                );
                if !task_call {
                    return Err(HistoryError::UnsupportedCall {
                        index,
                        client: op.client,
                        method: command.method(),
                    });
                }
            }
        }
        Ok(())
    }
}
