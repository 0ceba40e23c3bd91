//! How tasks end and go away: retention (D16, ExpireTasks) and owner leases
//! (D26, LapseLease).

mod common;

use common::*;
use vtask_model::{State, MIN_RETENTION_MILLIS};

// ---------------------------------------------------------------------------
// D16: ExpireTasks

// D16: a terminal task completed before the cutoff and at least
// MIN_RETENTION_MILLIS (10 minutes) ago is removed.
#[test]
fn expire_removes_a_task_completed_ten_minutes_ago() {
    assert_eq!(MIN_RETENTION_MILLIS, 600_000);
    check(
        &[create(), succeed(1), expire(&[1], 5000).at(1602)],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        ExpireTasks -> expired [task-1]
        (no tasks)
        ",
    );
}

// D16: one second short of 10 minutes, the task stays, whatever the cutoff.
#[test]
fn expire_keeps_a_task_completed_less_than_ten_minutes_ago() {
    check(
        &[create(), succeed(1), expire(&[1], 5000).at(1601)],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        ExpireTasks -> expired []
        task-1 state=success queue=1001 complete=1002 cancelled=false
        ",
    );
}

// D16: the cutoff is inclusive; a task completed after it stays.
#[test]
fn expire_respects_the_cutoff() {
    check(
        &[
            create(),
            succeed(1),
            create(),
            succeed(2),
            expire(&[1, 2], 1002).at(9000),
        ],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        CreateTask -> task-2
        SetTaskState -> ok
        ExpireTasks -> expired [task-1]
        task-2 state=success queue=1003 complete=1004 cancelled=false
        ",
    );
}

// D16: queued and running tasks are never removed, however old.
#[test]
fn expire_keeps_unfinished_tasks() {
    check(
        &[
            create(),
            create(),
            start(2),
            expire(&[1, 2], 90_000).at(90_000),
        ],
        "
        CreateTask -> task-1
        CreateTask -> task-2
        SetTaskState -> ok
        ExpireTasks -> expired []
        task-1 state=queued queue=1001 cancelled=false
        task-2 state=running queue=1002 start=1003 cancelled=false
        ",
    );
}

// D16: error tasks (cancelled ones too) expire like success tasks; only the
// listed keys are considered; unknown and repeated keys are skipped.
#[test]
fn expire_removes_only_listed_terminal_tasks() {
    check(
        &[
            create(),
            cancel(1),
            create(),
            fail(2, disk_full()),
            create(),
            succeed(3),
            expire(&[1, 1, 3, 7], 5000).at(5000),
        ],
        r#"
        CreateTask -> task-1
        CancelTask -> ok
        CreateTask -> task-2
        SetTaskState -> ok
        CreateTask -> task-3
        SetTaskState -> ok
        ExpireTasks -> expired [task-1 task-3]
        task-2 state=error queue=1003 complete=1004 cancelled=false error=SystemError "A general system error occurred: disk full"
        "#,
    );
}

// D16: ExpireTasks is the leader's command; users get NoPermission,
// anonymous callers NotAuthenticated.
#[test]
fn expire_by_a_user_is_refused() {
    check(
        &[
            create(),
            succeed(1),
            expire(&[1], 5000).at(5000).by(alice()),
            expire(&[1], 5000).at(5000).by(anonymous()),
        ],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        ExpireTasks -> NoPermission
        ExpireTasks -> NotAuthenticated
        task-1 state=success queue=1001 complete=1002 cancelled=false
        ",
    );
}

// D16, spec §1: an expired key, a never-issued key and a malformed key give
// three different ManagedObjectNotFound messages.
#[test]
fn not_found_messages_tell_expired_from_never_existed() {
    check_messages(
        &[
            create(),
            succeed(1),
            create(),
            expire(&[1], 5000).at(5000),
            cancel(1).at(5001),
            cancel(3).at(5002),
            cancel("task-0").at(5003),
        ],
        r#"
        CreateTask -> task-1
        SetTaskState -> ok
        CreateTask -> task-2
        ExpireTasks -> expired [task-1]
        CancelTask -> ManagedObjectNotFound obj=Task:task-1 "The object 'vim.Task:task-1' has already been deleted or has not been completely created: it completed and was removed after the retention period (expired)"
        CancelTask -> ManagedObjectNotFound obj=Task:task-3 "The object 'vim.Task:task-3' has already been deleted or has not been completely created: no task with this key was ever created"
        CancelTask -> ManagedObjectNotFound obj=Task:task-0 "The object 'vim.Task:task-0' has already been deleted or has not been completely created: this is not a task key (keys look like task-42)"
        task-2 state=queued queue=1003 cancelled=false
        "#,
    );
}

// spec §1, §12: keys are never reused, also after the newest task expired.
#[test]
fn keys_are_not_reused_after_expiry() {
    check(
        &[
            create(),
            succeed(1),
            expire(&[1], 5000).at(5000),
            create().at(5001),
        ],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        ExpireTasks -> expired [task-1]
        CreateTask -> task-2
        task-2 state=queued queue=5001 cancelled=false
        ",
    );
}

// D13 after D16: a child of an expired parent takes the parent's key as root.
#[test]
fn child_of_expired_parent_roots_at_the_parent() {
    check_created(
        &[
            create(),
            succeed(1),
            expire(&[1], 5000).at(5000),
            create_with(|a| a.parent_task_key = Some("task-1".into())).at(5001),
        ],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        ExpireTasks -> expired [task-1]
        CreateTask -> task-2
        task-2 state=queued queue=5001 cancelled=false
          task-2 descriptionId=com.example.backup reason=user:alice eventChainId=2 cancelable=true entity=VirtualMachine:vm-1 parent=task-1 root=task-1
        ",
    );
}

// ---------------------------------------------------------------------------
// D26: owner leases

fn leased() -> Step {
    create_with(|a| a.lease_millis = Some(30_000))
}

// D26: the lease runs from creation; every Task.Update call by the owner
// (SetTaskState, UpdateProgress, SetTaskDescription) renews it.
#[test]
fn owner_task_update_calls_renew_the_lease() {
    check(
        &[
            leased(),
            start(1),
            progress(1, 10),
            describe(1, "phase.copy"),
        ],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        UpdateProgress -> ok
        SetTaskDescription -> ok
        task-1 state=running queue=1001 start=1002 progress=10 cancelled=false desc=phase.copy lease=alice/30000ms/until=1034
        ",
    );
}

// D26: even a no-op SetTaskState by the owner counts as reporting.
#[test]
fn owner_noop_set_state_renews_the_lease() {
    check(
        &[leased(), state(1, State::Queued).at(1020)],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        task-1 state=queued queue=1001 cancelled=false lease=alice/30000ms/until=1050
        ",
    );
}

// D26: calls by another user do not renew the owner's lease.
#[test]
fn other_users_do_not_renew_the_lease() {
    check(
        &[
            leased(),
            start(1),
            progress(1, 10).by(bob()),
            describe(1, "phase.copy").by(bob()),
            start(1).by(bob()),
        ],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        UpdateProgress -> ok
        SetTaskDescription -> ok
        SetTaskState -> ok
        task-1 state=running queue=1001 start=1002 progress=10 cancelled=false desc=phase.copy lease=alice/30000ms/until=1032
        ",
    );
}

// D26: CancelTask is not a Task.Update call, even from the owner.
#[test]
fn cancel_does_not_renew_the_lease() {
    check(
        &[leased(), start(1), cancel(1)],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        CancelTask -> ok
        task-1 state=running queue=1001 start=1002 cancelled=true lease=alice/30000ms/until=1032
        ",
    );
}

// D26: a refused call renews nothing (a fault changes nothing).
#[test]
fn refused_owner_call_does_not_renew_the_lease() {
    check(
        &[leased(), progress(1, 10), state(1, State::Error)],
        "
        CreateTask -> task-1
        UpdateProgress -> InvalidState
        SetTaskState -> InvalidState
        task-1 state=queued queue=1001 cancelled=false lease=alice/30000ms/until=1031
        ",
    );
}

// D26: LapseLease before the lease ran out is InvalidState and changes nothing.
#[test]
fn lapse_before_expiry_is_invalid_state() {
    check(
        &[leased(), start(1), lapse(1).at(1031)],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        LapseLease -> InvalidState
        task-1 state=running queue=1001 start=1002 cancelled=false lease=alice/30000ms/until=1032
        ",
    );
}

// D26: at expiry, LapseLease ends the task with error / SystemError.
#[test]
fn lapse_at_expiry_ends_the_task_with_system_error() {
    check(
        &[leased(), start(1), progress(1, 40), lapse(1).at(1033)],
        r#"
        CreateTask -> task-1
        SetTaskState -> ok
        UpdateProgress -> ok
        LapseLease -> ok
        task-1 state=error queue=1001 start=1002 complete=1033 progress=40 cancelled=false error=SystemError "A general system error occurred: the task's owner alice stopped reporting: its lease of 30000 ms lapsed" lease=alice/30000ms/until=1033
        "#,
    );
}

// D26: a queued task whose owner never reported ends too; startTime stays unset.
#[test]
fn lapse_of_a_queued_task_leaves_start_unset() {
    check(
        &[leased(), lapse(1).at(5000)],
        r#"
        CreateTask -> task-1
        LapseLease -> ok
        task-1 state=error queue=1001 complete=5000 cancelled=false error=SystemError "A general system error occurred: the task's owner alice stopped reporting: its lease of 30000 ms lapsed" lease=alice/30000ms/until=1031
        "#,
    );
}

// D26, Command::LapseLease: a renewal that won the race turns the lapse into
// a refusal, not a wrong failure.
#[test]
fn renewal_that_won_the_race_keeps_the_task() {
    check(
        &[
            leased(),
            start(1),
            progress(1, 5).at(1030),
            lapse(1).at(1035),
        ],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        UpdateProgress -> ok
        LapseLease -> InvalidState
        task-1 state=running queue=1001 start=1002 progress=5 cancelled=false lease=alice/30000ms/until=1060
        ",
    );
}

// D26: no lease, or a task already ended: nothing to lapse.
#[test]
fn lapse_without_a_live_lease_is_invalid_state() {
    check(
        &[
            create(),
            lapse(1).at(9000),
            leased(),
            succeed(2),
            lapse(2).at(9000),
        ],
        "
        CreateTask -> task-1
        LapseLease -> InvalidState
        CreateTask -> task-2
        SetTaskState -> ok
        LapseLease -> InvalidState
        task-1 state=queued queue=1001 cancelled=false
        task-2 state=success queue=1003 complete=1004 cancelled=false lease=alice/30000ms/until=1034
        ",
    );
}

// D26: LapseLease is the leader's; a user gets NoPermission, anonymous
// NotAuthenticated, and a missing task ManagedObjectNotFound.
#[test]
fn lapse_access_and_missing_task() {
    check(
        &[
            leased(),
            lapse(1).at(9000).by(alice()),
            lapse(1).at(9000).by(anonymous()),
            lapse(5).at(9000),
        ],
        "
        CreateTask -> task-1
        LapseLease -> NoPermission
        LapseLease -> NotAuthenticated
        LapseLease -> ManagedObjectNotFound obj=Task:task-5
        task-1 state=queued queue=1001 cancelled=false lease=alice/30000ms/until=1031
        ",
    );
}

// D26 with D4: a cancelled running task whose owner went away still ends.
#[test]
fn lapse_ends_a_cancelled_running_task() {
    check(
        &[leased(), start(1), cancel(1), lapse(1).at(2000)],
        r#"
        CreateTask -> task-1
        SetTaskState -> ok
        CancelTask -> ok
        LapseLease -> ok
        task-1 state=error queue=1001 start=1002 complete=2000 cancelled=true error=SystemError "A general system error occurred: the task's owner alice stopped reporting: its lease of 30000 ms lapsed" lease=alice/30000ms/until=1032
        "#,
    );
}
