//! Watch stream checks. A [`Log`] applies calls like the state machine does,
//! giving every change the next revision and keeping the authoritative
//! change list; each test then writes the stream a watcher read and the
//! anomalies expected, one per line.

mod common;

use std::collections::BTreeMap;

use common::*;
use vtask_check::watch::check_watch;
use vtask_check::{ChangeKind, RecordedChange, Selector, WatchEvent, WatchStream};
use vtask_model::{Command, EntryContext, MemTable, Reply, State, TaskInfo, TaskKey, Timestamp};

#[derive(Default)]
struct Log {
    table: MemTable,
    revision: u64,
    changes: BTreeMap<TaskKey, Vec<RecordedChange>>,
}

impl Log {
    fn apply(&mut self, command: Command) {
        let ctx = EntryContext {
            time: Timestamp::from_millis(5_000 + self.revision as i64),
            term: 2,
            index: 10 + self.revision,
        };
        let creates = matches!(command, Command::CreateTask(_));
        if let Ok(Reply::Task { info }) = self.table.apply(&alice(), &command, &ctx) {
            self.revision += 1;
            let change = if creates {
                ChangeKind::Created
            } else {
                ChangeKind::Updated
            };
            self.changes
                .entry(info.key)
                .or_default()
                .push(RecordedChange {
                    revision: self.revision,
                    change,
                    info,
                });
        }
    }

    /// Task 1: created (1), running (2), 10% (3), 20% (4), 30% (5), success (6).
    fn one_task() -> Log {
        let mut log = Log::default();
        log.apply(create());
        log.apply(set_state("task-1", State::Running));
        for p in [10, 20, 30] {
            log.apply(progress("task-1", p));
        }
        log.apply(set_state("task-1", State::Success));
        log
    }

    fn recorded(&self, revision: u64) -> &RecordedChange {
        self.changes
            .values()
            .flatten()
            .find(|c| c.revision == revision)
            .expect("a revision of the log")
    }

    /// The change event at `revision`, as the server sends it.
    fn change(&self, revision: u64) -> WatchEvent {
        let c = self.recorded(revision);
        WatchEvent::Change {
            revision,
            change: c.change,
            info: c.info.clone(),
        }
    }

    /// The task's state at `revision`, as part of a snapshot taken then.
    fn current(&self, task: u64, revision: u64) -> WatchEvent {
        let info = self.changes[&TaskKey(task)]
            .iter()
            .rev()
            .find(|c| c.revision <= revision)
            .expect("the task existed then")
            .info
            .clone();
        WatchEvent::Current { revision, info }
    }

    fn info(&self, revision: u64) -> TaskInfo {
        self.recorded(revision).info.clone()
    }

    /// Checks a stream by watcher c7 that ran to the end; returns one line
    /// per anomaly: `kind task: summary`.
    fn check(
        &self,
        selector: Selector,
        start_revision: u64,
        events: Vec<WatchEvent>,
    ) -> Vec<String> {
        let stream = WatchStream {
            watcher: 7,
            selector,
            start_revision,
            events,
            ran_to_end: true,
        };
        check_watch(&stream, &self.changes)
            .iter()
            .map(|a| format!("{} {}: {}", a.kind, a.task, a.summary))
            .collect()
    }
}

fn synced(revision: u64) -> WatchEvent {
    WatchEvent::Synced { revision }
}

const NONE: [&str; 0] = [];

#[test]
fn a_complete_stream_from_the_start_is_clean() {
    let log = Log::one_task();
    let events = (1..=6).map(|r| log.change(r)).collect();
    assert_eq!(log.check(Selector::All, 1, events), NONE);
}

#[test]
fn a_snapshot_then_live_changes_is_clean() {
    let log = Log::one_task();
    let events = vec![
        log.current(1, 3),
        synced(3),
        log.change(4),
        log.change(5),
        log.change(6),
    ];
    assert_eq!(log.check(Selector::All, 0, events), NONE);
}

#[test]
fn a_skipped_change_is_a_gap() {
    let log = Log::one_task();
    let events = vec![
        log.change(1),
        log.change(2),
        log.change(4),
        log.change(5),
        log.change(6),
    ];
    assert_eq!(
        log.check(Selector::All, 1, events),
        ["watch gap task-1: 1 change(s) before revision 4 skipped"]
    );
}

#[test]
fn a_change_delivered_twice_is_a_duplicate() {
    let log = Log::one_task();
    let events = vec![
        log.change(1),
        log.change(2),
        log.change(3),
        log.change(3),
        log.change(4),
        log.change(5),
        log.change(6),
    ];
    assert_eq!(
        log.check(Selector::All, 1, events),
        ["watch duplicate task-1: revision 3 delivered twice"]
    );
}

#[test]
fn changes_out_of_order_are_a_reorder() {
    let log = Log::one_task();
    let events = vec![
        log.change(1),
        log.change(2),
        log.change(4),
        log.change(3),
        log.change(5),
        log.change(6),
    ];
    assert_eq!(
        log.check(Selector::All, 1, events),
        [
            "watch gap task-1: 1 change(s) before revision 4 skipped",
            "watch reorder task-1: revision 3 arrived after revision 4",
        ]
    );
}

#[test]
fn a_state_that_differs_from_the_authoritative_one_is_a_wrong_value() {
    let log = Log::one_task();
    let mut wrong = log.info(4);
    wrong.progress = Some(25);
    let mut events: Vec<WatchEvent> = (1..=6).map(|r| log.change(r)).collect();
    events[3] = WatchEvent::Change {
        revision: 4,
        change: ChangeKind::Updated,
        info: wrong,
    };
    assert_eq!(
        log.check(Selector::All, 1, events),
        ["watch wrong value task-1: revision 4 differs from the authoritative state"]
    );
}

#[test]
fn a_time_that_differs_is_a_wrong_value_too() {
    // Watch and history read the same change record: even leader-chosen
    // times must agree.
    let log = Log::one_task();
    let mut shifted = log.info(6);
    shifted.complete_time = Some(Timestamp::from_millis(1));
    let mut events: Vec<WatchEvent> = (1..=5).map(|r| log.change(r)).collect();
    events.push(WatchEvent::Change {
        revision: 6,
        change: ChangeKind::Updated,
        info: shifted.clone(),
    });
    let stream = WatchStream {
        watcher: 7,
        selector: Selector::All,
        start_revision: 1,
        events,
        ran_to_end: true,
    };
    let anomalies = check_watch(&stream, &log.changes);
    assert_eq!(anomalies.len(), 1);
    assert_eq!(
        anomalies[0].lines.last().map(String::as_str),
        Some("(they differ in times or the event chain id)")
    );
}

#[test]
fn a_resync_skips_history_without_a_gap() {
    let log = Log::one_task();
    let events = vec![
        log.change(1),
        log.change(2),
        WatchEvent::Resync,
        log.current(1, 5),
        synced(5),
        log.change(6),
    ];
    assert_eq!(log.check(Selector::All, 1, events), NONE);
}

#[test]
fn a_resync_may_not_go_back_in_time() {
    let log = Log::one_task();
    let events = vec![
        log.change(1),
        log.change(2),
        log.change(3),
        WatchEvent::Resync,
        log.current(1, 2),
        synced(2),
        log.change(3),
        log.change(4),
        log.change(5),
        log.change(6),
    ];
    assert_eq!(
        log.check(Selector::All, 1, events),
        [
            "watch reorder task-1: snapshot at revision 2 after revision 3 (back in time)",
            "watch reorder (stream): synced at revision 2 after revision 3",
            "watch duplicate task-1: revision 3 delivered twice",
        ]
    );
}

#[test]
fn a_watcher_that_stops_early_ends_behind() {
    let log = Log::one_task();
    let events = (1..=5).map(|r| log.change(r)).collect();
    assert_eq!(
        log.check(Selector::All, 1, events),
        ["watch ends behind task-1: ended at revision 5, the final state is revision 6"]
    );
}

#[test]
fn a_task_missing_from_the_snapshot_is_a_gap() {
    let mut log = Log::one_task();
    log.apply(create()); // task-2 at revision 7
    let events = vec![log.current(1, 7), synced(7)];
    assert_eq!(
        log.check(Selector::All, 0, events),
        ["watch gap task-2: task-2 existed at revision 7 but is missing from the snapshot"]
    );
}

#[test]
fn a_task_watch_needs_only_that_task() {
    let mut log = Log::one_task();
    log.apply(create()); // task-2: created (7)
    log.apply(set_state("task-2", State::Running)); // 8
    log.apply(progress("task-2", 50)); // 9
    let events = vec![log.change(7), log.change(8), log.change(9)];
    assert_eq!(log.check(Selector::Task(TaskKey(2)), 7, events), NONE);
    let events = vec![log.change(7), log.change(9)];
    assert_eq!(
        log.check(Selector::Task(TaskKey(2)), 7, events),
        ["watch gap task-2: 1 change(s) before revision 9 skipped"]
    );
}

#[test]
fn a_task_without_a_change_list_is_reported() {
    let log = Log::one_task();
    let mut stranger = log.info(1);
    stranger.key = TaskKey(99);
    let mut events: Vec<WatchEvent> = (1..=6).map(|r| log.change(r)).collect();
    events.push(WatchEvent::Change {
        revision: 7,
        change: ChangeKind::Created,
        info: stranger,
    });
    assert_eq!(
        log.check(Selector::All, 1, events),
        ["watch unknown task task-99: task-99 has no authoritative change list"]
    );
}

#[test]
fn a_current_event_outside_a_snapshot_breaks_the_protocol() {
    let log = Log::one_task();
    let mut events: Vec<WatchEvent> = (1..=4).map(|r| log.change(r)).collect();
    events.push(log.current(1, 4));
    events.extend((5..=6).map(|r| log.change(r)));
    assert_eq!(
        log.check(Selector::All, 1, events),
        ["watch protocol task-1: current state at revision 4 outside a snapshot (a restart must record a Resync)"]
    );
}
