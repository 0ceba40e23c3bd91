//! CancelTask: the check order of D5 (spec §4.1) one step at a time, which
//! check wins when several apply, and the effects of D4 and D6 (spec §4.2).

mod common;

use common::*;
use vtask_model::{FaultKind, Privilege, State};

// ---------------------------------------------------------------------------
// D5, one step at a time

// D5 step 1: a task that does not exist.
#[test]
fn cancel_missing_task_is_not_found() {
    check(
        &[create(), cancel(9)],
        "
        CreateTask -> task-1
        CancelTask -> ManagedObjectNotFound obj=Task:task-9
        task-1 state=queued queue=1001 cancelled=false
        ",
    );
}

// D5 step 2: an unauthenticated caller.
#[test]
fn cancel_by_anonymous_is_not_authenticated() {
    check(
        &[create(), cancel(1).by(anonymous())],
        "
        CreateTask -> task-1
        CancelTask -> NotAuthenticated
        task-1 state=queued queue=1001 cancelled=false
        ",
    );
}

// D5 step 3, spec §9: Global.CancelTask is checked on the task's entity.
#[test]
fn cancel_without_global_cancel_task_is_no_permission() {
    check(
        &[create(), cancel(1).by(lacking(Privilege::GlobalCancelTask))],
        "
        CreateTask -> task-1
        CancelTask -> NoPermission object=VirtualMachine:vm-1 privilegeId=Global.CancelTask
        task-1 state=queued queue=1001 cancelled=false
        ",
    );
}

// D5, spec §9: Task.Update is not what CancelTask needs.
#[test]
fn cancel_needs_no_task_update() {
    check(
        &[create(), cancel(1).by(lacking(Privilege::TaskUpdate))],
        r#"
        CreateTask -> task-1
        CancelTask -> ok
        task-1 state=error queue=1001 complete=1002 cancelled=true error=RequestCanceled "The task was canceled by a user"
        "#,
    );
}

// D5 step 4: a terminal task.
#[test]
fn cancel_terminal_task_is_invalid_state() {
    check(
        &[create(), succeed(1), cancel(1)],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        CancelTask -> InvalidState
        task-1 state=success queue=1001 complete=1002 cancelled=false
        ",
    );
}

// D5 step 5: cancellation already requested.
#[test]
fn cancel_twice_is_invalid_state() {
    check(
        &[create(), start(1), cancel(1), cancel(1)],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        CancelTask -> ok
        CancelTask -> InvalidState
        task-1 state=running queue=1001 start=1002 cancelled=true
        ",
    );
}

// D5 step 6: a task created with cancelable=false.
#[test]
fn cancel_not_cancelable_task_is_not_supported() {
    check(
        &[create_with(|a| a.cancelable = false), start(1), cancel(1)],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        CancelTask -> NotSupported
        task-1 state=running queue=1001 start=1002 cancelled=false
        ",
    );
}

// ---------------------------------------------------------------------------
// D5, the earlier check wins

// D5: not found before not authenticated (the anonymous caller learns only
// that the key does not exist).
#[test]
fn not_found_wins_over_not_authenticated() {
    check(
        &[cancel(9).by(anonymous())],
        "
        CancelTask -> ManagedObjectNotFound obj=Task:task-9
        (no tasks)
        ",
    );
}

// D5: not authenticated before the state checks (terminal, not cancelable).
#[test]
fn not_authenticated_wins_over_state_checks() {
    check(
        &[
            create_with(|a| a.cancelable = false),
            succeed(1),
            cancel(1).by(anonymous()),
        ],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        CancelTask -> NotAuthenticated
        task-1 state=success queue=1001 complete=1002 cancelled=false
        ",
    );
}

// D5: no permission before the state checks.
#[test]
fn no_permission_wins_over_state_checks() {
    check(
        &[
            create_with(|a| a.cancelable = false),
            succeed(1),
            cancel(1).by(lacking(Privilege::GlobalCancelTask)),
        ],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        CancelTask -> NoPermission object=VirtualMachine:vm-1 privilegeId=Global.CancelTask
        task-1 state=success queue=1001 complete=1002 cancelled=false
        ",
    );
}

// D5: terminal before already cancelled (a cancelled queued task is terminal).
#[test]
fn terminal_wins_over_already_cancelled() {
    check_messages(
        &[create(), cancel(1), cancel(1)],
        r#"
        CreateTask -> task-1
        CancelTask -> ok
        CancelTask -> InvalidState "The operation is not allowed in the current state: task-1 is already error and cannot be canceled (already completed or canceled)"
        task-1 state=error queue=1001 complete=1002 cancelled=true error=RequestCanceled "The task was canceled by a user"
        "#,
    );
}

// D5: terminal before not cancelable: InvalidState, not NotSupported.
#[test]
fn terminal_wins_over_not_cancelable() {
    check(
        &[
            create_with(|a| a.cancelable = false),
            fail(1, disk_full()),
            cancel(1),
        ],
        r#"
        CreateTask -> task-1
        SetTaskState -> ok
        CancelTask -> InvalidState
        task-1 state=error queue=1001 complete=1002 cancelled=false error=SystemError "A general system error occurred: disk full"
        "#,
    );
}

// D5: already cancelled before not cancelable. No command makes such a task
// (a task that is not cancelable cannot be cancelled), so it is stored directly.
#[test]
fn already_cancelled_wins_over_not_cancelable() {
    let (table, _) = run(&[create(), start(1)]);
    let mut task = table.tasks().next().unwrap().clone();
    task.info.cancelled = true;
    task.info.cancelable = false;
    check_seeded(
        vec![task],
        &[cancel(1)],
        "
        CancelTask -> InvalidState
        task-1 state=running queue=1001 start=1002 cancelled=true
        ",
    );
}

// D5 step 5 message: the second refusal says the request was already made.
#[test]
fn second_cancel_says_it_was_already_requested() {
    check_messages(
        &[create(), start(1), cancel(1), cancel(1)],
        r#"
        CreateTask -> task-1
        SetTaskState -> ok
        CancelTask -> ok
        CancelTask -> InvalidState "The operation is not allowed in the current state: cancellation of task-1 was already requested"
        task-1 state=running queue=1001 start=1002 cancelled=true
        "#,
    );
}

// ---------------------------------------------------------------------------
// D4 and D6: effects

// D4, D6: a queued task ends at once, startTime unset, progress untouched.
#[test]
fn cancel_queued_task_ends_it_with_request_canceled() {
    check(
        &[create(), describe(1, "phase.wait"), cancel(1)],
        r#"
        CreateTask -> task-1
        SetTaskDescription -> ok
        CancelTask -> ok
        task-1 state=error queue=1001 complete=1003 cancelled=true error=RequestCanceled "The task was canceled by a user" desc=phase.wait
        "#,
    );
}

// D4, D6: a running task only gets the flag; state and times stay.
#[test]
fn cancel_running_task_sets_only_cancelled() {
    check(
        &[create(), start(1), progress(1, 40), cancel(1)],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        UpdateProgress -> ok
        CancelTask -> ok
        task-1 state=running queue=1001 start=1002 progress=40 cancelled=true
        ",
    );
}

// D4: the owner then ends the cancelled task with error / RequestCanceled.
#[test]
fn owner_ends_cancelled_task_with_request_canceled() {
    check(
        &[
            create(),
            start(1),
            cancel(1).by(bob()),
            fail(1, bare(FaultKind::RequestCanceled)),
        ],
        r#"
        CreateTask -> task-1
        SetTaskState -> ok
        CancelTask -> ok
        SetTaskState -> ok
        task-1 state=error queue=1001 start=1002 complete=1004 cancelled=true error=RequestCanceled "The task was canceled by a user"
        "#,
    );
}

// D4, spec §2 #10: a cancelled task may still finish with success.
#[test]
fn owner_may_finish_cancelled_task_with_success() {
    check(
        &[create(), start(1), cancel(1), succeed(1)],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        CancelTask -> ok
        SetTaskState -> ok
        task-1 state=success queue=1001 start=1002 complete=1004 cancelled=true
        ",
    );
}

// D4, spec §2 #10: cancelled never returns to false, whatever follows.
#[test]
fn cancelled_never_goes_back() {
    check(
        &[
            create(),
            start(1),
            cancel(1),
            start(1),
            progress(1, 99),
            describe(1, "phase.rollback"),
            cancel(1),
            succeed(1),
        ],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        CancelTask -> ok
        SetTaskState -> ok
        UpdateProgress -> ok
        SetTaskDescription -> ok
        CancelTask -> InvalidState
        SetTaskState -> ok
        task-1 state=success queue=1001 start=1002 complete=1008 progress=99 cancelled=true desc=phase.rollback
        ",
    );
}

// D4: cancelling a queued task reads no clock: completeTime is the entry's
// time, but never before queueTime.
#[test]
fn cancel_completion_time_is_not_before_queue_time() {
    check(
        &[create().at(2000), cancel(1).at(1990)],
        r#"
        CreateTask -> task-1
        CancelTask -> ok
        task-1 state=error queue=2000 complete=2000 cancelled=true error=RequestCanceled "The task was canceled by a user"
        "#,
    );
}

// D4: only the addressed task changes.
#[test]
fn cancel_touches_only_its_task() {
    check(
        &[create(), create(), start(2), cancel(1), cancel(2)],
        r#"
        CreateTask -> task-1
        CreateTask -> task-2
        SetTaskState -> ok
        CancelTask -> ok
        CancelTask -> ok
        task-1 state=error queue=1001 complete=1004 cancelled=true error=RequestCanceled "The task was canceled by a user"
        task-2 state=running queue=1002 start=1003 cancelled=true
        "#,
    );
}

// D5 applies to SetTaskState on the same task too: a cancelled task that the
// owner ended cannot be cancelled or changed again.
#[test]
fn ended_cancelled_task_is_final() {
    check(
        &[
            create(),
            start(1),
            cancel(1),
            fail(1, bare(FaultKind::RequestCanceled)),
            state(1, State::Running),
            cancel(1),
        ],
        r#"
        CreateTask -> task-1
        SetTaskState -> ok
        CancelTask -> ok
        SetTaskState -> ok
        SetTaskState -> InvalidState
        CancelTask -> InvalidState
        task-1 state=error queue=1001 start=1002 complete=1004 cancelled=true error=RequestCanceled "The task was canceled by a user"
        "#,
    );
}
