//! Checks of recorded watch streams against the authoritative change list of
//! every task (`GetTaskHistory`, fetched after the run).
//!
//! Per watcher and per task: revisions strictly increase (no duplicate, no
//! reorder); no change the watcher's selector selects is skipped (no gap);
//! every observed state equals the authoritative one at its revision; and a
//! watcher that ran to the end knows every task's final state.
//!
//! Observed states are compared in full, times included, unlike the
//! linearizability check: a watch event and a history entry are two reads of
//! the same replicated change record, so even the times the leader chose
//! must agree.
//!
//! A snapshot (start revision 0, or after a [`WatchEvent::Resync`]) is a run
//! of `Current` events closed by `Synced`. Across a resync no gap is
//! reported (the server says history no longer reaches back), but revisions
//! still may not go back, and the snapshot must hold every selected task that
//! exists at its revision.

use std::collections::{BTreeMap, BTreeSet};

use vtask_model::{TaskInfo, TaskKey};

use crate::history::{ChangeKind, RecordedChange, WatchEvent, WatchStream};
use crate::projection::TaskView;
use crate::report::{Anomaly, AnomalyKind};

/// Every anomaly of one stream.
pub fn check_watch(
    stream: &WatchStream,
    changes: &BTreeMap<TaskKey, Vec<RecordedChange>>,
) -> Vec<Anomaly> {
    let mut checker = Checker {
        stream,
        changes,
        in_snapshot: stream.start_revision == 0,
        in_snapshot_seen: BTreeSet::new(),
        position: BTreeMap::new(),
        default_position: stream.start_revision.checked_sub(1),
        last_seen: BTreeMap::new(),
        floor: stream.start_revision.saturating_sub(1),
        unknown_reported: BTreeSet::new(),
        anomalies: Vec::new(),
    };
    for event in &stream.events {
        checker.event(event);
    }
    if stream.ran_to_end {
        checker.end();
    }
    checker.anomalies
}

struct Checker<'a> {
    stream: &'a WatchStream,
    changes: &'a BTreeMap<TaskKey, Vec<RecordedChange>>,
    /// Between the start (revision 0) or a resync and `Synced`.
    in_snapshot: bool,
    in_snapshot_seen: BTreeSet<TaskKey>,
    /// Per task, the revision up to which the watcher has every change; a
    /// task not listed is at `default_position`. `None`: not known yet
    /// (inside a snapshot), so no gap can be judged.
    position: BTreeMap<TaskKey, u64>,
    default_position: Option<u64>,
    /// Per task, the newest revision delivered, kept across resyncs.
    last_seen: BTreeMap<TaskKey, u64>,
    /// The newest revision the stream delivered for any task.
    floor: u64,
    unknown_reported: BTreeSet<TaskKey>,
    anomalies: Vec<Anomaly>,
}

impl<'a> Checker<'a> {
    fn event(&mut self, event: &WatchEvent) {
        match event {
            WatchEvent::Change {
                revision,
                change,
                info,
            } => self.change(*revision, *change, info),
            WatchEvent::Current { revision, info } => self.current(*revision, info),
            WatchEvent::Synced { revision } => self.synced(*revision),
            WatchEvent::Resync => {
                self.in_snapshot = true;
                self.in_snapshot_seen.clear();
                self.position.clear();
                self.default_position = None;
            }
        }
    }

    fn change(&mut self, revision: u64, change: ChangeKind, info: &TaskInfo) {
        let task = info.key;
        let Some(list) = self.authoritative(task) else {
            return;
        };
        let last = self.last_seen.get(&task).copied();
        if last == Some(revision) {
            self.report(
                AnomalyKind::WatchDuplicate,
                task,
                format!("revision {revision} delivered twice"),
                vec![event_line(revision, change_name(change), info)],
            );
            return;
        }
        if last.is_some_and(|last| revision < last) || revision <= self.floor {
            let newest = last.unwrap_or(self.floor).max(self.floor);
            self.report(
                AnomalyKind::WatchReorder,
                task,
                format!("revision {revision} arrived after revision {newest}"),
                vec![event_line(revision, change_name(change), info)],
            );
            return;
        }
        match list.iter().find(|c| c.revision == revision) {
            None => self.report(
                AnomalyKind::WatchWrongValue,
                task,
                format!("revision {revision} is no change of {task}"),
                vec![event_line(revision, change_name(change), info)],
            ),
            Some(c) if c.change != change || c.info != *info => {
                self.wrong_value(task, revision, change_name(change), info, c)
            }
            Some(_) => {}
        }
        if !self.in_snapshot {
            if let Some(from) = self.from(task) {
                let missed = self.selected_between(list, from, revision);
                if !missed.is_empty() {
                    let mut lines =
                        vec![format!("had revision {from}, then got {revision}; missed:")];
                    lines.extend(missed.iter().map(|c| change_line(c)));
                    self.report(
                        AnomalyKind::WatchGap,
                        task,
                        format!(
                            "{} change(s) before revision {revision} skipped",
                            missed.len()
                        ),
                        lines,
                    );
                }
            }
        }
        self.position.insert(task, revision);
        self.last_seen.insert(task, revision);
        self.floor = revision;
    }

    fn current(&mut self, revision: u64, info: &TaskInfo) {
        let task = info.key;
        if !self.in_snapshot {
            self.report(
                AnomalyKind::WatchProtocol,
                task,
                format!("current state at revision {revision} outside a snapshot (a restart must record a Resync)"),
                vec![event_line(revision, "current", info)],
            );
        }
        let Some(list) = self.authoritative(task) else {
            return;
        };
        if !self.in_snapshot_seen.insert(task) {
            self.report(
                AnomalyKind::WatchDuplicate,
                task,
                format!("{task} twice in one snapshot"),
                vec![event_line(revision, "current", info)],
            );
            return;
        }
        if revision < self.floor {
            self.report(
                AnomalyKind::WatchReorder,
                task,
                format!(
                    "snapshot at revision {revision} after revision {} (back in time)",
                    self.floor
                ),
                vec![event_line(revision, "current", info)],
            );
            return;
        }
        match state_at(list, revision) {
            None => self.report(
                AnomalyKind::WatchWrongValue,
                task,
                format!("{task} did not exist at revision {revision}"),
                vec![event_line(revision, "current", info)],
            ),
            Some(c) if c.info != *info => self.wrong_value(task, revision, "current", info, c),
            Some(_) => {}
        }
        self.position.insert(task, revision);
        self.last_seen.insert(task, revision);
        self.floor = revision;
    }

    fn synced(&mut self, revision: u64) {
        if revision < self.floor {
            self.report_stream(
                AnomalyKind::WatchReorder,
                format!(
                    "synced at revision {revision} after revision {}",
                    self.floor
                ),
            );
        }
        let missing: Vec<(TaskKey, &RecordedChange)> = self
            .changes
            .iter()
            .filter(|(task, _)| !self.in_snapshot_seen.contains(task))
            .filter_map(|(task, list)| Some((*task, state_at(list, revision)?)))
            .filter(|(_, c)| self.stream.selector.selects(&c.info))
            .collect();
        for (task, c) in missing {
            self.report(
                AnomalyKind::WatchGap,
                task,
                format!("{task} existed at revision {revision} but is missing from the snapshot"),
                vec![change_line(c)],
            );
        }
        self.in_snapshot = false;
        self.in_snapshot_seen.clear();
        self.default_position = Some(revision);
        self.floor = self.floor.max(revision);
    }

    fn end(&mut self) {
        if self.in_snapshot {
            self.report_stream(
                AnomalyKind::WatchEndsBehind,
                "the stream ended inside a snapshot, before Synced".to_string(),
            );
            return;
        }
        for (task, list) in self.changes {
            let Some(from) = self.from(*task) else {
                continue;
            };
            let missed = self.selected_between(list, from, u64::MAX);
            if let Some(last) = missed.last() {
                let mut lines = vec![format!("had revision {from}; never got:")];
                lines.extend(missed.iter().map(|c| change_line(c)));
                self.report(
                    AnomalyKind::WatchEndsBehind,
                    *task,
                    format!(
                        "ended at revision {from}, the final state is revision {}",
                        last.revision
                    ),
                    lines,
                );
            }
        }
    }

    /// The task's change list; a task without one is reported once.
    fn authoritative(&mut self, task: TaskKey) -> Option<&'a [RecordedChange]> {
        let changes: &'a BTreeMap<TaskKey, Vec<RecordedChange>> = self.changes;
        if let Some(list) = changes.get(&task) {
            return Some(list);
        }
        if self.unknown_reported.insert(task) {
            self.report(
                AnomalyKind::WatchUnknownTask,
                task,
                format!("{task} has no authoritative change list"),
                Vec::new(),
            );
        }
        None
    }

    /// The revision after which the watcher must get every change of `task`.
    /// Past what it was last given, never before: a change it skipped
    /// earlier was reported then, not again after a duplicate or reorder.
    fn from(&self, task: TaskKey) -> Option<u64> {
        let known = self
            .position
            .get(&task)
            .copied()
            .or(self.default_position)?;
        Some(known.max(self.last_seen.get(&task).copied().unwrap_or(0)))
    }

    /// Changes of `list` strictly between two revisions that the selector selects.
    fn selected_between<'c>(
        &self,
        list: &'c [RecordedChange],
        after: u64,
        before: u64,
    ) -> Vec<&'c RecordedChange> {
        list.iter()
            .filter(|c| after < c.revision && c.revision < before)
            .filter(|c| self.stream.selector.selects(&c.info))
            .collect()
    }

    fn wrong_value(
        &mut self,
        task: TaskKey,
        revision: u64,
        kind: &str,
        info: &TaskInfo,
        authoritative: &RecordedChange,
    ) {
        let mut lines = vec![
            format!("observed:      {}", event_line(revision, kind, info)),
            format!("authoritative: {}", change_line(authoritative)),
        ];
        if TaskView::from(info) == TaskView::from(&authoritative.info) {
            lines.push("(they differ in times or the event chain id)".to_string());
        }
        self.report(
            AnomalyKind::WatchWrongValue,
            task,
            format!("revision {revision} differs from the authoritative state"),
            lines,
        );
    }

    fn report(&mut self, kind: AnomalyKind, task: TaskKey, summary: String, lines: Vec<String>) {
        self.anomalies.push(Anomaly {
            kind,
            task: task.to_string(),
            watcher: Some(self.stream.watcher),
            summary,
            lines,
            sub_history: Vec::new(),
        });
    }

    fn report_stream(&mut self, kind: AnomalyKind, summary: String) {
        self.anomalies.push(Anomaly {
            kind,
            task: "(stream)".to_string(),
            watcher: Some(self.stream.watcher),
            summary,
            lines: Vec::new(),
            sub_history: Vec::new(),
        });
    }
}

/// The newest change at or before `revision`, unless the task did not exist
/// then (not yet created, or removed).
fn state_at(list: &[RecordedChange], revision: u64) -> Option<&RecordedChange> {
    list.iter()
        .rev()
        .find(|c| c.revision <= revision)
        .filter(|c| c.change != ChangeKind::Removed)
}

fn change_name(change: ChangeKind) -> &'static str {
    match change {
        ChangeKind::Created => "created",
        ChangeKind::Updated => "updated",
        ChangeKind::Removed => "removed",
    }
}

fn event_line(revision: u64, kind: &str, info: &TaskInfo) -> String {
    format!(
        "rev {revision} {kind} {} {}",
        info.key,
        TaskView::from(info)
    )
}

fn change_line(change: &RecordedChange) -> String {
    event_line(change.revision, change_name(change.change), &change.info)
}
