//! The transition matrix of spec §3.2, one test per cell, with the field
//! effects of §3.3 and the edge rulings D1, D2, D3, D7 and D9.
//!
//! Rows: a task that is queued, running, success or error. Columns:
//! SetTaskState(queued / running / success / error), UpdateProgress,
//! SetTaskDescription, CancelTask.

mod common;

use common::*;
use vtask_model::{AnyValue, FaultKind, MoRef, State};

// ---------------------------------------------------------------------------
// Row: queued

// spec §3.2 queued × S(queued); D1: a no-op that succeeds.
#[test]
fn queued_set_queued_is_a_noop() {
    check(
        &[create(), state(1, State::Queued)],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        task-1 state=queued queue=1001 cancelled=false
        ",
    );
}

// spec §3.2 queued × S(running); §3.3: startTime = now, nothing else.
#[test]
fn queued_set_running_sets_start_time() {
    check(
        &[create(), start(1)],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        task-1 state=running queue=1001 start=1002 cancelled=false
        ",
    );
}

// spec §3.2 queued × S(success); §3.3, D1: completeTime set, startTime stays unset.
#[test]
fn queued_set_success_completes_without_start_time() {
    check(
        &[create(), succeed_with(1, AnyValue::Long(7))],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        task-1 state=success queue=1001 complete=1002 cancelled=false result=long:7
        ",
    );
}

// spec §3.2 queued × S(error); §3.3, D1: completeTime set, startTime stays unset.
#[test]
fn queued_set_error_completes_without_start_time() {
    check(
        &[create(), fail(1, disk_full())],
        r#"
        CreateTask -> task-1
        SetTaskState -> ok
        task-1 state=error queue=1001 complete=1002 cancelled=false error=SystemError "A general system error occurred: disk full"
        "#,
    );
}

// spec §3.2 queued × UpdateProgress: InvalidState, progress stays unset.
#[test]
fn queued_update_progress_is_invalid_state() {
    check(
        &[create(), progress(1, 50)],
        "
        CreateTask -> task-1
        UpdateProgress -> InvalidState
        task-1 state=queued queue=1001 cancelled=false
        ",
    );
}

// spec §3.2 queued × SetTaskDescription: ok.
#[test]
fn queued_set_description_is_ok() {
    check(
        &[create(), describe(1, "phase.copy")],
        "
        CreateTask -> task-1
        SetTaskDescription -> ok
        task-1 state=queued queue=1001 cancelled=false desc=phase.copy
        ",
    );
}

// spec §3.2 queued × CancelTask, §4.2; D4: the same entry ends the task
// (error, RequestCanceled, completeTime set, startTime unset).
#[test]
fn queued_cancel_ends_the_task_at_once() {
    check(
        &[create(), cancel(1)],
        r#"
        CreateTask -> task-1
        CancelTask -> ok
        task-1 state=error queue=1001 complete=1002 cancelled=true error=RequestCanceled "The task was canceled by a user"
        "#,
    );
}

// ---------------------------------------------------------------------------
// Row: running

// spec §3.2 running × S(queued); D1: InvalidState.
#[test]
fn running_set_queued_is_invalid_state() {
    check(
        &[create(), start(1), state(1, State::Queued)],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        SetTaskState -> InvalidState
        task-1 state=running queue=1001 start=1002 cancelled=false
        ",
    );
}

// spec §3.2 running × S(running); D1: a no-op that keeps the first startTime.
#[test]
fn running_set_running_keeps_first_start_time() {
    check(
        &[create(), start(1), start(1)],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        SetTaskState -> ok
        task-1 state=running queue=1001 start=1002 cancelled=false
        ",
    );
}

// spec §3.2 running × S(success); §3.3: completeTime set, result stored,
// startTime unchanged; D7: progress stays at its last value.
#[test]
fn running_set_success_stores_result_and_keeps_progress() {
    check(
        &[
            create(),
            start(1),
            progress(1, 60),
            succeed_with(1, AnyValue::Long(7)),
        ],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        UpdateProgress -> ok
        SetTaskState -> ok
        task-1 state=success queue=1001 start=1002 complete=1004 progress=60 cancelled=false result=long:7
        ",
    );
}

// spec §3.2 running × S(success) without a result: the result is optional.
#[test]
fn running_set_success_without_result_leaves_result_unset() {
    check(
        &[create(), start(1), succeed(1)],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        SetTaskState -> ok
        task-1 state=success queue=1001 start=1002 complete=1003 cancelled=false
        ",
    );
}

// spec §3.2 running × S(error); §3.3: completeTime set, error stored, no
// result; D7: progress stays at its last value.
#[test]
fn running_set_error_stores_fault_and_keeps_progress() {
    check(
        &[create(), start(1), progress(1, 60), fail(1, disk_full())],
        r#"
        CreateTask -> task-1
        SetTaskState -> ok
        UpdateProgress -> ok
        SetTaskState -> ok
        task-1 state=error queue=1001 start=1002 complete=1004 progress=60 cancelled=false error=SystemError "A general system error occurred: disk full"
        "#,
    );
}

// spec §3.2 running × UpdateProgress: ok.
#[test]
fn running_update_progress_is_ok() {
    check(
        &[create(), start(1), progress(1, 60)],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        UpdateProgress -> ok
        task-1 state=running queue=1001 start=1002 progress=60 cancelled=false
        ",
    );
}

// spec §3.2 running × SetTaskDescription: ok, and a later one replaces it.
#[test]
fn running_set_description_is_ok() {
    check(
        &[
            create(),
            start(1),
            describe(1, "phase.copy"),
            describe(1, "phase.verify"),
        ],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        SetTaskDescription -> ok
        SetTaskDescription -> ok
        task-1 state=running queue=1001 start=1002 cancelled=false desc=phase.verify
        ",
    );
}

// spec §3.2 running × CancelTask, §4.2; D4: only the flag is set.
#[test]
fn running_cancel_sets_only_the_flag() {
    check(
        &[create(), start(1), progress(1, 30), cancel(1)],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        UpdateProgress -> ok
        CancelTask -> ok
        task-1 state=running queue=1001 start=1002 progress=30 cancelled=true
        ",
    );
}

// ---------------------------------------------------------------------------
// Row: success (terminal)

fn succeeded() -> Vec<Step> {
    vec![create(), start(1), succeed_with(1, AnyValue::Long(7))]
}

const SUCCEEDED: &str =
    "task-1 state=success queue=1001 start=1002 complete=1003 cancelled=false result=long:7";

#[track_caller]
fn check_after_success(step: Step, reply: &str) {
    let mut steps = succeeded();
    steps.push(step);
    check(
        &steps,
        &format!(
            "CreateTask -> task-1\nSetTaskState -> ok\nSetTaskState -> ok\n{reply}\n{SUCCEEDED}"
        ),
    );
}

// spec §3.2 success × S(queued): InvalidState.
#[test]
fn success_set_queued_is_invalid_state() {
    check_after_success(state(1, State::Queued), "SetTaskState -> InvalidState");
}

// spec §3.2 success × S(running): InvalidState.
#[test]
fn success_set_running_is_invalid_state() {
    check_after_success(start(1), "SetTaskState -> InvalidState");
}

// spec §3.2 success × S(success, result): InvalidState; the first result stays.
#[test]
fn success_set_success_is_invalid_state() {
    check_after_success(
        succeed_with(1, AnyValue::Long(8)),
        "SetTaskState -> InvalidState",
    );
}

// spec §3.2 success × S(error, fault): InvalidState.
#[test]
fn success_set_error_is_invalid_state() {
    check_after_success(fail(1, disk_full()), "SetTaskState -> InvalidState");
}

// spec §3.2 success × UpdateProgress: InvalidState.
#[test]
fn success_update_progress_is_invalid_state() {
    check_after_success(progress(1, 100), "UpdateProgress -> InvalidState");
}

// spec §3.2 success × SetTaskDescription; D9: InvalidState.
#[test]
fn success_set_description_is_invalid_state() {
    check_after_success(
        describe(1, "phase.late"),
        "SetTaskDescription -> InvalidState",
    );
}

// spec §3.2 success × CancelTask, §4.1 step 2: InvalidState.
#[test]
fn success_cancel_is_invalid_state() {
    check_after_success(cancel(1), "CancelTask -> InvalidState");
}

// ---------------------------------------------------------------------------
// Row: error (terminal)

fn failed() -> Vec<Step> {
    vec![create(), start(1), fail(1, disk_full())]
}

const FAILED: &str = r#"task-1 state=error queue=1001 start=1002 complete=1003 cancelled=false error=SystemError "A general system error occurred: disk full""#;

#[track_caller]
fn check_after_error(step: Step, reply: &str) {
    let mut steps = failed();
    steps.push(step);
    check(
        &steps,
        &format!("CreateTask -> task-1\nSetTaskState -> ok\nSetTaskState -> ok\n{reply}\n{FAILED}"),
    );
}

// spec §3.2 error × S(queued): InvalidState.
#[test]
fn error_set_queued_is_invalid_state() {
    check_after_error(state(1, State::Queued), "SetTaskState -> InvalidState");
}

// spec §3.2 error × S(running): InvalidState.
#[test]
fn error_set_running_is_invalid_state() {
    check_after_error(start(1), "SetTaskState -> InvalidState");
}

// spec §3.2 error × S(success, result): InvalidState.
#[test]
fn error_set_success_is_invalid_state() {
    check_after_error(
        succeed_with(1, AnyValue::Long(8)),
        "SetTaskState -> InvalidState",
    );
}

// spec §3.2 error × S(error, fault): InvalidState; the first fault stays.
#[test]
fn error_set_error_is_invalid_state() {
    check_after_error(
        fail(1, bare(FaultKind::RequestCanceled)),
        "SetTaskState -> InvalidState",
    );
}

// spec §3.2 error × UpdateProgress: InvalidState.
#[test]
fn error_update_progress_is_invalid_state() {
    check_after_error(progress(1, 10), "UpdateProgress -> InvalidState");
}

// spec §3.2 error × SetTaskDescription; D9: InvalidState.
#[test]
fn error_set_description_is_invalid_state() {
    check_after_error(
        describe(1, "phase.late"),
        "SetTaskDescription -> InvalidState",
    );
}

// spec §3.2 error × CancelTask, §4.1 step 2: InvalidState.
#[test]
fn error_cancel_is_invalid_state() {
    check_after_error(cancel(1), "CancelTask -> InvalidState");
}

// ---------------------------------------------------------------------------
// §3.2 note, §3.3 and the messages of the refusals

// spec §3.2 note: cancelled=true blocks none of the owner's calls.
#[test]
fn cancelled_running_task_still_takes_updates() {
    check(
        &[
            create(),
            start(1),
            cancel(1),
            progress(1, 90),
            describe(1, "phase.stopping"),
            start(1),
        ],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        CancelTask -> ok
        UpdateProgress -> ok
        SetTaskDescription -> ok
        SetTaskState -> ok
        task-1 state=running queue=1001 start=1002 progress=90 cancelled=true desc=phase.stopping
        ",
    );
}

// spec §3.3: the terminal transition clears `locked` (we never set it, so
// this starts from a stored task that has it).
#[test]
fn completion_clears_locked() {
    let (table, _) = run(&[create(), start(1)]);
    let mut task = table.tasks().next().unwrap().clone();
    task.info.locked = vec![MoRef::new("VirtualMachine", "vm-1")];
    let (table, replies) = run_on(seeded(vec![task]), &[succeed(1)]);
    assert!(replies[0].is_ok());
    assert_eq!(table.tasks().next().unwrap().info.locked, vec![]);
}

// spec §12 and §2 #17-19: the leader's clock may go back, yet a task's times
// never do: queueTime ≤ startTime ≤ completeTime.
#[test]
fn times_never_go_backwards_within_a_task() {
    check(
        &[
            create().at(2000),
            start(1).at(1500),
            succeed(1).at(1400),
            create().at(3000),
            succeed(2).at(2500),
        ],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        SetTaskState -> ok
        CreateTask -> task-2
        SetTaskState -> ok
        task-1 state=success queue=2000 start=2000 complete=2000 cancelled=false
        task-2 state=success queue=3000 complete=3000 cancelled=false
        ",
    );
}

// spec §3.4 step 4, §11: the refusal says why, with vCenter's standard words first.
#[test]
fn terminal_refusals_explain_themselves() {
    let mut steps = succeeded();
    steps.extend([start(1), progress(1, 5), describe(1, "x")]);
    check_messages(
        &steps,
        r#"
        CreateTask -> task-1
        SetTaskState -> ok
        SetTaskState -> ok
        SetTaskState -> InvalidState "The operation is not allowed in the current state: task-1 is already success and cannot change state"
        UpdateProgress -> InvalidState "The operation is not allowed in the current state: task-1 is success, and progress is reported only while running"
        SetTaskDescription -> InvalidState "The operation is not allowed in the current state: task-1 is already success and cannot change its description"
        task-1 state=success queue=1001 start=1002 complete=1003 cancelled=false result=long:7
        "#,
    );
}

// ---------------------------------------------------------------------------
// D2: result and fault set incorrectly

// D2, spec §3.4 step 5: a result with state running.
#[test]
fn result_with_state_running_is_invalid_state() {
    check(
        &[
            create(),
            set_state(1, State::Running, Some(AnyValue::Long(1)), None),
        ],
        "
        CreateTask -> task-1
        SetTaskState -> InvalidState
        task-1 state=queued queue=1001 cancelled=false
        ",
    );
}

// D2, spec §3.4 step 5: a result with state queued or error.
#[test]
fn result_with_state_queued_or_error_is_invalid_state() {
    check(
        &[
            create(),
            start(1),
            set_state(1, State::Queued, Some(AnyValue::Long(1)), None),
            set_state(1, State::Error, Some(AnyValue::Long(1)), Some(disk_full())),
        ],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        SetTaskState -> InvalidState
        SetTaskState -> InvalidState
        task-1 state=running queue=1001 start=1002 cancelled=false
        ",
    );
}

// D2, spec §3.4 step 6: a fault with state success, running or queued.
#[test]
fn fault_with_state_other_than_error_is_invalid_state() {
    check(
        &[
            create(),
            set_state(1, State::Queued, None, Some(disk_full())),
            set_state(1, State::Running, None, Some(disk_full())),
            set_state(1, State::Success, None, Some(disk_full())),
        ],
        "
        CreateTask -> task-1
        SetTaskState -> InvalidState
        SetTaskState -> InvalidState
        SetTaskState -> InvalidState
        task-1 state=queued queue=1001 cancelled=false
        ",
    );
}

// D2, spec §3.4 step 7: state error without a fault.
#[test]
fn error_without_fault_is_invalid_state() {
    check(
        &[create(), start(1), state(1, State::Error)],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        SetTaskState -> InvalidState
        task-1 state=running queue=1001 start=1002 cancelled=false
        ",
    );
}

// D2 and spec §3.4 order: the result check (step 5) comes before the
// transition check (step 9), and the terminal check (step 4) before both.
#[test]
fn set_state_checks_run_in_spec_order() {
    check_messages(
        &[
            create(),
            start(1),
            set_state(1, State::Queued, Some(AnyValue::Long(1)), None),
            set_state(
                1,
                State::Success,
                Some(AnyValue::Long(1)),
                Some(disk_full()),
            ),
            state(1, State::Error),
            succeed(1),
            set_state(1, State::Running, Some(AnyValue::Long(1)), None),
        ],
        r#"
        CreateTask -> task-1
        SetTaskState -> ok
        SetTaskState -> InvalidState "The operation is not allowed in the current state: a result may be set only with state success, not queued"
        SetTaskState -> InvalidState "The operation is not allowed in the current state: a fault may be set only with state error, not success"
        SetTaskState -> InvalidState "The operation is not allowed in the current state: state error needs a fault"
        SetTaskState -> ok
        SetTaskState -> InvalidState "The operation is not allowed in the current state: task-1 is already success and cannot change state"
        task-1 state=success queue=1001 start=1002 complete=1006 cancelled=false
        "#,
    );
}

// D1, spec §3.4 step 9: running → queued says so.
#[test]
fn running_to_queued_refusal_names_the_transition() {
    check_messages(
        &[create(), start(1), state(1, State::Queued)],
        r#"
        CreateTask -> task-1
        SetTaskState -> ok
        SetTaskState -> InvalidState "The operation is not allowed in the current state: task-1 is running and cannot go back to queued"
        task-1 state=running queue=1001 start=1002 cancelled=false
        "#,
    );
}

// ---------------------------------------------------------------------------
// D3: any MethodFault is accepted, and the stored one always has a message

// D3: RequestCanceled (a RuntimeFault) is accepted and gets the standard message.
#[test]
fn request_canceled_fault_is_accepted() {
    check(
        &[
            create(),
            start(1),
            fail(1, bare(FaultKind::RequestCanceled)),
        ],
        r#"
        CreateTask -> task-1
        SetTaskState -> ok
        SetTaskState -> ok
        task-1 state=error queue=1001 start=1002 complete=1003 cancelled=false error=RequestCanceled "The task was canceled by a user"
        "#,
    );
}

// D3: SystemError (what govc's task.set -e sends) is accepted.
#[test]
fn system_error_fault_is_accepted() {
    check(
        &[
            create(),
            fail(
                1,
                bare(FaultKind::SystemError {
                    reason: "agent crashed".into(),
                }),
            ),
        ],
        r#"
        CreateTask -> task-1
        SetTaskState -> ok
        task-1 state=error queue=1001 complete=1002 cancelled=false error=SystemError "A general system error occurred: agent crashed"
        "#,
    );
}

// D3: a fault type we do not model is kept by name.
#[test]
fn unmodelled_fault_type_is_accepted() {
    check(
        &[
            create(),
            start(1),
            fail(
                1,
                bare(FaultKind::Other {
                    type_name: "FileNotFound".into(),
                }),
            ),
        ],
        r#"
        CreateTask -> task-1
        SetTaskState -> ok
        SetTaskState -> ok
        task-1 state=error queue=1001 start=1002 complete=1003 cancelled=false error=FileNotFound "The task failed with FileNotFound."
        "#,
    );
}

// D3: a VimFault such as InvalidState or OutOfBounds is accepted too.
#[test]
fn vim_faults_are_accepted() {
    check(
        &[
            create(),
            fail(1, bare(FaultKind::InvalidState)),
            create(),
            fail(
                2,
                bare(FaultKind::OutOfBounds {
                    argument_name: "size".into(),
                }),
            ),
        ],
        r#"
        CreateTask -> task-1
        SetTaskState -> ok
        CreateTask -> task-2
        SetTaskState -> ok
        task-1 state=error queue=1001 complete=1002 cancelled=false error=InvalidState "The operation is not allowed in the current state."
        task-2 state=error queue=1003 complete=1004 cancelled=false error=OutOfBounds "Property size is out of bounds."
        "#,
    );
}

// D3: the caller's localizedMessage is kept as sent.
#[test]
fn callers_fault_message_is_kept() {
    let mut fault = disk_full();
    fault.localized_message = Some("Datastore ds-7 ran out of space".into());
    check(
        &[create(), start(1), fail(1, fault)],
        r#"
        CreateTask -> task-1
        SetTaskState -> ok
        SetTaskState -> ok
        task-1 state=error queue=1001 start=1002 complete=1003 cancelled=false error=SystemError "Datastore ds-7 ran out of space"
        "#,
    );
}

// D3, spec §0.3: the causes of a stored fault get messages too.
#[test]
fn fault_causes_get_messages() {
    let mut fault = bare(FaultKind::Other {
        type_name: "FileNotFound".into(),
    });
    let mut cause = bare(FaultKind::RequestCanceled);
    cause.fault_cause = Some(Box::new(bare(FaultKind::NotSupported)));
    fault.fault_cause = Some(Box::new(cause));
    let (table, replies) = run(&[create(), fail(1, fault)]);
    assert!(replies[1].is_ok());
    let stored = table.tasks().next().unwrap().info.error.clone().unwrap();
    let cause = stored.fault_cause.unwrap();
    let inner = cause.fault_cause.unwrap();
    assert_eq!(
        [
            stored.localized_message.as_deref(),
            cause.localized_message.as_deref(),
            inner.localized_message.as_deref()
        ],
        [
            Some("The task failed with FileNotFound."),
            Some("The task was canceled by a user"),
            Some("The operation is not supported on the object.")
        ]
    );
}

// spec §3.2: an empty table refuses every task method with ManagedObjectNotFound.
#[test]
fn set_state_on_a_missing_task_is_not_found() {
    check(
        &[state(1, State::Running)],
        "
        SetTaskState -> ManagedObjectNotFound obj=Task:task-1
        (no tasks)
        ",
    );
}
