//! The linearizability check on small hand-written histories, linearizable
//! and not. Times are milliseconds; a failing test prints the anomaly's
//! minimal sub-history, one call per line.

mod common;

use common::*;
use vtask_check::{check, AnomalyKind, CheckConfig, History, HistoryError, OpOutcome, Returned};
use vtask_model::{Command, FaultKind, MethodFault, State};

// ---------------------------------------------------------------------------
// Linearizable

#[test]
fn sequential_calls_are_linearizable() {
    let mut s = Server::new();
    assert_linearizable(vec![
        s.ok(1, 0, 10, create()),
        s.ok(2, 20, 30, set_state("task-1", State::Running)),
        s.ok(1, 40, 50, progress("task-1", 40)),
        s.ok(3, 60, 70, describe("task-1", "phase.copy")),
        s.get(2, 80, 90, "task-1"),
        s.ok(1, 100, 110, set_state("task-1", State::Success)),
        s.get(3, 120, 130, "task-1"),
    ]);
}

#[test]
fn concurrent_writes_may_take_effect_in_either_order() {
    // The two updates overlap, so a read after both may show either one.
    for (first, second) in [(40, 60), (60, 40)] {
        let mut s = Server::new();
        let created = s.ok(1, 0, 10, create());
        let running = s.ok(1, 20, 30, set_state("task-1", State::Running));
        let a = s.ok(1, 40, 70, progress("task-1", first));
        let b = s.ok(2, 45, 60, progress("task-1", second));
        let read = s.get(3, 80, 90, "task-1");
        assert_linearizable(vec![created, running, a, b, read]);
    }
}

#[test]
fn a_concurrent_cancel_and_success_fit_only_in_the_order_the_replies_tell() {
    // Cancel first: the task stays running with cancelled set, then succeeds.
    let mut s = Server::new();
    let created = s.ok(1, 0, 10, create());
    let running = s.ok(2, 20, 30, set_state("task-1", State::Running));
    let cancelled = s.ok(1, 40, 70, cancel("task-1"));
    let success = s.ok(2, 45, 60, set_state("task-1", State::Success));
    let read = s.get(3, 80, 90, "task-1");
    assert_linearizable(vec![created, running, cancelled, success, read]);

    // Success first: the cancel is refused with InvalidState.
    let mut s = Server::new();
    let created = s.ok(1, 0, 10, create());
    let running = s.ok(2, 20, 30, set_state("task-1", State::Running));
    let success = s.ok(2, 45, 60, set_state("task-1", State::Success));
    let refused = s.ok(1, 40, 70, cancel("task-1"));
    let read = s.get(3, 80, 90, "task-1");
    assert_linearizable(vec![created, running, refused, success, read]);
}

#[test]
fn an_unknown_write_that_took_effect_is_linearizable() {
    let mut s = Server::new();
    assert_linearizable(vec![
        s.ok(1, 0, 10, create()),
        s.ok(1, 20, 30, set_state("task-1", State::Running)),
        s.applied_unknown(2, 40, 50, progress("task-1", 70)),
        s.get(3, 60, 70, "task-1"),
    ]);
}

#[test]
fn an_unknown_write_that_did_not_take_effect_is_linearizable() {
    let mut s = Server::new();
    assert_linearizable(vec![
        s.ok(1, 0, 10, create()),
        s.ok(1, 20, 30, set_state("task-1", State::Running)),
        s.ok(1, 32, 38, progress("task-1", 40)),
        unapplied(2, 40, 50, progress("task-1", 70), OpOutcome::Unknown),
        s.get(3, 60, 70, "task-1"),
    ]);
}

#[test]
fn an_unknown_write_may_take_effect_long_after_the_client_gave_up() {
    // Progress 70 times out at 20 ms; 80 is acknowledged at 40 ms; the last
    // read shows 70: the timed-out call was applied after the acknowledged one.
    let mut s = Server::new();
    let created = s.ok(1, 0, 5, create());
    let running = s.ok(1, 6, 8, set_state("task-1", State::Running));
    let eighty = s.ok(2, 30, 40, progress("task-1", 80));
    let seventy = s.applied_unknown(3, 10, 20, progress("task-1", 70));
    let read = s.get(1, 50, 60, "task-1");
    assert_linearizable(vec![created, running, seventy, eighty, read]);
}

#[test]
fn failed_calls_are_dropped() {
    // A call known not to be applied constrains nothing, whatever it was.
    let mut s = Server::new();
    assert_linearizable(vec![
        s.ok(1, 0, 10, create()),
        unapplied(2, 20, 30, cancel("task-1"), OpOutcome::Failed),
        s.get(3, 40, 50, "task-1"),
    ]);
}

#[test]
fn cancel_of_a_terminal_task_answers_invalid_state() {
    let mut s = Server::new();
    assert_linearizable(vec![
        s.ok(1, 0, 10, create()),
        s.ok(1, 20, 30, set_state("task-1", State::Running)),
        s.ok(1, 40, 50, set_state("task-1", State::Success)),
        s.ok(2, 60, 70, cancel("task-1")),
    ]);
}

// ---------------------------------------------------------------------------
// Not linearizable

#[test]
fn a_stale_read_is_a_violation() {
    let mut s = Server::new();
    let created = s.ok(1, 0, 10, create());
    let before_running = s.snapshot();
    let running = s.ok(2, 20, 30, set_state("task-1", State::Running));
    let other = s.get(3, 22, 28, "task-1");
    let stale = s.get_from(&before_running, 3, 40, 50, "task-1");
    assert_not_linearizable(
        vec![created, running, other, stale],
        "task-1",
        "
        c1  0.000s→0.010s  CreateTask(VirtualMachine:vm-1, cancelable) → ok task-1 {queued}
        c2  0.020s→0.030s  SetTaskState(task-1, running) → ok {running}
        c3  0.040s→0.050s  GetTask(task-1) → ok {queued}
        ",
    );
}

#[test]
fn a_lost_acknowledged_write_is_missing_from_the_final_read() {
    let mut s = Server::new();
    assert_not_linearizable(
        vec![
            s.ok(1, 0, 10, create()),
            s.ok(2, 20, 30, set_state("task-1", State::Running)),
            s.ok(3, 32, 34, describe("task-1", "phase.copy")),
            s.lost(1, 40, 50, progress("task-1", 40)),
            s.get(2, 60, 70, "task-1"),
        ],
        "task-1",
        "
        c1  0.000s→0.010s  CreateTask(VirtualMachine:vm-1, cancelable) → ok task-1 {queued}
        c2  0.020s→0.030s  SetTaskState(task-1, running) → ok {running}
        c3  0.032s→0.034s  SetTaskDescription(task-1, phase.copy) → ok {running desc=phase.copy}
        c1  0.040s→0.050s  UpdateProgress(task-1, 40) → ok {running 40% desc=phase.copy}
        c2  0.060s→0.070s  GetTask(task-1) → ok {running desc=phase.copy}
        ",
    );
}

#[test]
fn progress_that_goes_back_to_an_older_acknowledged_value_is_a_violation() {
    // A retried UpdateProgress(40) applied again after 60 was acknowledged.
    let mut s = Server::new();
    let mut ops = vec![
        s.ok(1, 0, 10, create()),
        s.ok(1, 20, 30, set_state("task-1", State::Running)),
        s.ok(1, 40, 50, progress("task-1", 40)),
        s.ok(1, 60, 70, progress("task-1", 60)),
    ];
    s.replay(progress("task-1", 40));
    ops.push(s.get(2, 80, 90, "task-1"));
    assert_not_linearizable(
        ops,
        "task-1",
        "
        c1  0.000s→0.010s  CreateTask(VirtualMachine:vm-1, cancelable) → ok task-1 {queued}
        c1  0.020s→0.030s  SetTaskState(task-1, running) → ok {running}
        c1  0.040s→0.050s  UpdateProgress(task-1, 40) → ok {running 40%}
        c1  0.060s→0.070s  UpdateProgress(task-1, 60) → ok {running 60%}
        c2  0.080s→0.090s  GetTask(task-1) → ok {running 40%}
        ",
    );
}

#[test]
fn a_cancel_applied_twice_shows_its_effect_twice() {
    // Dedup missed the retry: the client's one CancelTask was applied twice
    // and it got the second answer, InvalidState "already requested".
    let mut s = Server::new();
    assert_not_linearizable(
        vec![
            s.ok(1, 0, 10, create()),
            s.ok(1, 20, 30, set_state("task-1", State::Running)),
            s.twice(2, 40, 50, cancel("task-1")),
            s.get(3, 60, 70, "task-1"),
        ],
        "task-1",
        "
        c1  0.000s→0.010s  CreateTask(VirtualMachine:vm-1, cancelable) → ok task-1 {queued}
        c1  0.020s→0.030s  SetTaskState(task-1, running) → ok {running}
        c2  0.040s→0.050s  CancelTask(task-1) → InvalidState
        ",
    );
}

#[test]
fn a_wrong_fault_is_a_violation() {
    // Cancel of a finished task must be InvalidState (D5), not NotSupported.
    let mut s = Server::new();
    assert_not_linearizable(
        vec![
            s.ok(1, 0, 10, create()),
            s.ok(1, 20, 30, set_state("task-1", State::Running)),
            s.ok(1, 40, 50, set_state("task-1", State::Success)),
            faulted(
                2,
                60,
                70,
                cancel("task-1"),
                MethodFault::not_supported("not cancelable"),
            ),
        ],
        "task-1",
        "
        c1  0.000s→0.010s  CreateTask(VirtualMachine:vm-1, cancelable) → ok task-1 {queued}
        c1  0.020s→0.030s  SetTaskState(task-1, running) → ok {running}
        c1  0.040s→0.050s  SetTaskState(task-1, success) → ok {success}
        c2  0.060s→0.070s  CancelTask(task-1) → NotSupported
        ",
    );
}

#[test]
fn a_fault_where_the_model_succeeds_is_a_violation() {
    let mut s = Server::new();
    assert_not_linearizable(
        vec![
            s.ok(1, 0, 10, create()),
            s.ok(1, 20, 30, set_state("task-1", State::Running)),
            faulted(
                2,
                40,
                50,
                progress("task-1", 10),
                MethodFault::invalid_state("not running"),
            ),
        ],
        "task-1",
        "
        c1  0.000s→0.010s  CreateTask(VirtualMachine:vm-1, cancelable) → ok task-1 {queued}
        c1  0.020s→0.030s  SetTaskState(task-1, running) → ok {running}
        c2  0.040s→0.050s  UpdateProgress(task-1, 10) → InvalidState
        ",
    );
}

#[test]
fn two_creates_that_return_the_same_key_are_a_violation() {
    let mut s = Server::new();
    let first = s.ok(1, 0, 10, create());
    let mut again = Server::new();
    let second = again.ok(2, 20, 30, create());
    assert_not_linearizable(
        vec![first, second],
        "task-1",
        "
        c1  0.000s→0.010s  CreateTask(VirtualMachine:vm-1, cancelable) → ok task-1 {queued}
        c2  0.020s→0.030s  CreateTask(VirtualMachine:vm-1, cancelable) → ok task-1 {queued}
        ",
    );
}

#[test]
fn a_read_of_an_acknowledged_task_that_is_not_found_is_a_violation() {
    let mut s = Server::new();
    let empty = s.snapshot();
    let created = s.ok(1, 0, 10, create());
    let read = s.get_from(&empty, 2, 20, 30, "task-1");
    assert_not_linearizable(
        vec![created, read],
        "task-1",
        "
        c1  0.000s→0.010s  CreateTask(VirtualMachine:vm-1, cancelable) → ok task-1 {queued}
        c2  0.020s→0.030s  GetTask(task-1) → ManagedObjectNotFound
        ",
    );
}

#[test]
fn the_root_key_comes_from_the_create_and_never_changes() {
    // task-1 names a parent whose own root only the server knew (D13); the
    // model takes the root from the create's reply and holds reads to it.
    let mut child = create_args();
    child.parent_task_key = Some("task-9".into());
    let mut s = Server::new();
    let mut created = s.ok(1, 0, 10, Command::CreateTask(child));
    let mut read = s.get(2, 20, 30, "task-1");
    for op in [&mut created, &mut read] {
        if let OpOutcome::Ok {
            value: Returned::Task(info),
        } = &mut op.outcome
        {
            info.root_task_key = Some("task-3".into());
        }
    }
    assert_linearizable(vec![created.clone(), read.clone()]);

    if let OpOutcome::Ok {
        value: Returned::Task(info),
    } = &mut read.outcome
    {
        info.root_task_key = Some("task-9".into());
    }
    assert_not_linearizable(
        vec![created.clone(), read.clone()],
        "task-1",
        "
        c1  0.000s→0.010s  CreateTask(VirtualMachine:vm-1, cancelable) → ok task-1 {queued}
        c2  0.020s→0.030s  GetTask(task-1) → ok {queued}
        ",
    );
    let report = report(vec![created, read]);
    let text = report.anomalies[0].to_string();
    assert!(
        text.contains(r#"rootTaskKey: "task-9" ≠ "task-3""#),
        "{text}"
    );
}

// ---------------------------------------------------------------------------
// Shrinking and the report

#[test]
fn shrinking_keeps_only_what_the_violation_needs() {
    // Forty unrelated reads and updates around one stale read.
    let mut s = Server::new();
    let mut ops = vec![
        s.ok(1, 0, 10, create()),
        s.ok(1, 10, 20, set_state("task-1", State::Running)),
    ];
    let mut stale = None;
    for i in 0..20u64 {
        let t = 30 + i * 10;
        if i == 10 {
            stale = Some(s.snapshot());
        }
        ops.push(s.ok(2, t, t + 5, progress("task-1", i as i32)));
        ops.push(s.get(3, t + 6, t + 9, "task-1"));
    }
    let stale = stale.expect("taken in the loop");
    ops.push(s.get_from(&stale, 4, 300, 310, "task-1"));
    let report = report(ops);
    let [anomaly] = report.anomalies.as_slice() else {
        panic!("expected one anomaly:\n{report}");
    };
    assert_sub_history(
        anomaly,
        "
        c1  0.000s→0.010s  CreateTask(VirtualMachine:vm-1, cancelable) → ok task-1 {queued}
        c1  0.010s→0.020s  SetTaskState(task-1, running) → ok {running}
        c2  0.120s→0.125s  UpdateProgress(task-1, 9) → ok {running 9%}
        c2  0.130s→0.135s  UpdateProgress(task-1, 10) → ok {running 10%}
        c4  0.300s→0.310s  GetTask(task-1) → ok {running 9%}
        ",
    );
    let text = anomaly.to_string();
    assert!(
        text.starts_with("not linearizable: task-1: no order of its 43 calls explains the replies; 5 of them still fail"),
        "{text}"
    );
    assert!(text.contains("← due first"), "{text}");
}

#[test]
fn each_task_is_checked_on_its_own() {
    // task-2's stale read is found; task-1's concurrent history is fine.
    let mut s = Server::new();
    let c1 = s.ok(1, 0, 10, create());
    let c2 = s.ok(2, 0, 10, create());
    let old = s.snapshot();
    let r2 = s.ok(2, 20, 30, set_state("task-2", State::Running));
    let r1 = s.ok(1, 20, 30, set_state("task-1", State::Running));
    let stale = s.get_from(&old, 3, 40, 50, "task-2");
    let fresh = s.get(3, 40, 50, "task-1");
    let report = report(vec![c1, c2, r1, r2, stale, fresh]);
    assert_eq!(report.histories_checked, 2);
    let tasks: Vec<&str> = report.anomalies.iter().map(|a| a.task.as_str()).collect();
    assert_eq!(tasks, ["task-2"]);
}

#[test]
fn a_create_fault_the_model_does_not_give_is_reported() {
    let op = faulted(
        1,
        0,
        10,
        create(),
        MethodFault::new(FaultKind::NotAuthenticated),
    );
    let report = report(vec![op]);
    let [anomaly] = report.anomalies.as_slice() else {
        panic!("expected one anomaly:\n{report}");
    };
    assert_eq!(anomaly.kind, AnomalyKind::UnexplainedFault);
    assert!(
        anomaly.summary.contains("ok {queued}"),
        "{}",
        anomaly.summary
    );
}

#[test]
fn the_report_counts_calls_by_method_and_outcome() {
    let mut s = Server::new();
    let report = report(vec![
        s.ok(1, 0, 10, create()),
        s.ok(1, 20, 30, progress("task-1", 5)),
        unapplied(1, 40, 50, progress("task-1", 6), OpOutcome::Failed),
        unapplied(1, 60, 70, progress("task-1", 7), OpOutcome::Unknown),
        unapplied(2, 60, 70, create(), OpOutcome::Unknown),
    ]);
    let progress = report.operations["UpdateProgress"];
    assert_eq!(
        (
            progress.ok,
            progress.fault,
            progress.failed,
            progress.unknown
        ),
        (0, 1, 1, 1)
    );
    assert_eq!(report.operations["CreateTask"].total(), 2);
    assert_eq!(report.unattributed_creates, 1);
    let table = report.to_string();
    assert!(
        table.contains("UpdateProgress              0        1        1        1        3"),
        "{table}"
    );
    assert!(report.is_clean(), "{table}");
}

#[test]
fn a_completion_before_its_invocation_is_refused() {
    let mut s = Server::new();
    let mut op = s.ok(7, 0, 10, create());
    op.complete = 1;
    op.invoke = 2;
    let history = History {
        operations: vec![op],
        ..History::default()
    };
    assert_eq!(
        check(&history, &CheckConfig::default()),
        Err(HistoryError::CompletesBeforeInvocation {
            index: 0,
            client: 7,
            invoke: 2,
            complete: 1
        })
    );
}

#[test]
fn a_search_over_its_limit_is_inconclusive_not_clean() {
    let mut s = Server::new();
    let history = History {
        operations: vec![
            s.ok(1, 0, 10, create()),
            s.ok(1, 20, 30, set_state("task-1", State::Running)),
            s.get(2, 40, 50, "task-1"),
        ],
        ..History::default()
    };
    let config = CheckConfig {
        max_configurations: 1,
        ..CheckConfig::default()
    };
    let report = check(&history, &config).expect("valid");
    assert_eq!(report.inconclusive, ["task-1"]);
    assert!(!report.is_clean());
}
