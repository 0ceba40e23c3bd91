//! Who may call what (spec §9, §3.4 steps 1–3, D5): ManagedObjectNotFound,
//! then NotAuthenticated, then NoPermission with the privilege id, for every
//! Task method; and that the Task.Update methods have no owner check.

mod common;

use common::*;
use vtask_model::{Caller, Privilege, Privileges, State};

/// A running task-1 created by alice.
fn running() -> Vec<Step> {
    vec![create(), start(1)]
}

#[track_caller]
fn check_on_running(steps: &[Step], expect: &str) {
    let mut all = running();
    all.extend_from_slice(steps);
    check(
        &all,
        &format!("CreateTask -> task-1\nSetTaskState -> ok\n{expect}"),
    );
}

// spec §9, §3.4 step 3: Task.Update on the task for SetTaskState,
// UpdateProgress and SetTaskDescription.
#[test]
fn task_update_methods_need_task_update() {
    let m = lacking(Privilege::TaskUpdate);
    check_on_running(
        &[
            succeed(1).by(m.clone()),
            progress(1, 5).by(m.clone()),
            describe(1, "x").by(m),
        ],
        "
        SetTaskState -> NoPermission object=Task:task-1 privilegeId=Task.Update
        UpdateProgress -> NoPermission object=Task:task-1 privilegeId=Task.Update
        SetTaskDescription -> NoPermission object=Task:task-1 privilegeId=Task.Update
        task-1 state=running queue=1001 start=1002 cancelled=false
        ",
    );
}

// spec §9: every method needs an authenticated session.
#[test]
fn anonymous_is_not_authenticated_everywhere() {
    check_on_running(
        &[
            create().by(anonymous()),
            succeed(1).by(anonymous()),
            progress(1, 5).by(anonymous()),
            describe(1, "x").by(anonymous()),
            cancel(1).by(anonymous()),
            lapse(1).by(anonymous()),
            expire(&[1], 0).by(anonymous()),
        ],
        "
        CreateTask -> NotAuthenticated
        SetTaskState -> NotAuthenticated
        UpdateProgress -> NotAuthenticated
        SetTaskDescription -> NotAuthenticated
        CancelTask -> NotAuthenticated
        LapseLease -> NotAuthenticated
        ExpireTasks -> NotAuthenticated
        task-1 state=running queue=1001 start=1002 cancelled=false
        ",
    );
}

// D5, spec §3.4 step 1: a missing task is reported before authentication.
#[test]
fn missing_task_is_reported_before_authentication() {
    check(
        &[
            succeed(7).by(anonymous()),
            progress(7, 5).by(anonymous()),
            describe(7, "x").by(anonymous()),
            cancel(7).by(anonymous()),
        ],
        "
        SetTaskState -> ManagedObjectNotFound obj=Task:task-7
        UpdateProgress -> ManagedObjectNotFound obj=Task:task-7
        SetTaskDescription -> ManagedObjectNotFound obj=Task:task-7
        CancelTask -> ManagedObjectNotFound obj=Task:task-7
        (no tasks)
        ",
    );
}

// spec §3.4: the privilege check comes before the state checks (a terminal
// task answers NoPermission, not InvalidState, to a caller without Task.Update).
#[test]
fn privilege_check_comes_before_state_checks() {
    let m = lacking(Privilege::TaskUpdate);
    check(
        &[
            create(),
            succeed(1),
            start(1).by(m.clone()),
            progress(1, 1).by(m.clone()),
            describe(1, "x").by(m),
        ],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        SetTaskState -> NoPermission object=Task:task-1 privilegeId=Task.Update
        UpdateProgress -> NoPermission object=Task:task-1 privilegeId=Task.Update
        SetTaskDescription -> NoPermission object=Task:task-1 privilegeId=Task.Update
        task-1 state=success queue=1001 complete=1002 cancelled=false
        ",
    );
}

// spec §9: a user holding only Task.Update may drive a task it did not create;
// there is no owner check.
#[test]
fn task_update_alone_suffices_for_any_task() {
    let updater = Caller::user("updater", Privileges::of(&[Privilege::TaskUpdate]));
    check(
        &[
            create(),
            start(1).by(updater.clone()),
            progress(1, 50).by(updater.clone()),
            describe(1, "phase.x").by(updater.clone()),
            succeed(1).by(updater.clone()),
            create().by(updater),
        ],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        UpdateProgress -> ok
        SetTaskDescription -> ok
        SetTaskState -> ok
        CreateTask -> NoPermission privilegeId=Task.Create
        task-1 state=success queue=1001 start=1002 complete=1005 progress=50 cancelled=false desc=phase.x
        ",
    );
}

// spec §9: a user without any privilege gets NoPermission naming the privilege
// each method needs.
#[test]
fn no_privileges_names_each_missing_privilege() {
    let nobody = Caller::user("nobody", Privileges::NONE);
    check_on_running(
        &[
            create().by(nobody.clone()),
            state(1, State::Running).by(nobody.clone()),
            cancel(1).by(nobody),
        ],
        "
        CreateTask -> NoPermission privilegeId=Task.Create
        SetTaskState -> NoPermission object=Task:task-1 privilegeId=Task.Update
        CancelTask -> NoPermission object=VirtualMachine:vm-1 privilegeId=Global.CancelTask
        task-1 state=running queue=1001 start=1002 cancelled=false
        ",
    );
}

// D26, D16: LapseLease and ExpireTasks are the service's own commands; a user,
// even with every privilege, gets NoPermission.
#[test]
fn service_commands_refuse_users() {
    check_on_running(
        &[lapse(1).by(alice()), expire(&[1], 0).by(alice())],
        "
        LapseLease -> NoPermission
        ExpireTasks -> NoPermission
        task-1 state=running queue=1001 start=1002 cancelled=false
        ",
    );
}

// spec §9: the service itself (Caller::System) holds every privilege.
#[test]
fn system_caller_may_do_everything() {
    check(
        &[
            create().by(system()),
            start(1).by(system()),
            progress(1, 10).by(system()),
            describe(1, "phase.sys").by(system()),
            cancel(1).by(system()),
            succeed(1).by(system()),
        ],
        "
        CreateTask -> task-1
        SetTaskState -> ok
        UpdateProgress -> ok
        SetTaskDescription -> ok
        CancelTask -> ok
        SetTaskState -> ok
        task-1 state=success queue=1001 start=1002 complete=1006 progress=10 cancelled=true desc=phase.sys
        ",
    );
}

// spec §9: the privilege ids as vSphere spells them.
#[test]
fn privilege_ids() {
    let ids: Vec<&str> = Privilege::ALL.iter().map(|p| p.id()).collect();
    assert_eq!(
        ids,
        [
            "Task.Create",
            "Task.Update",
            "Global.CancelTask",
            "System.View",
            "Cluster.Admin"
        ]
    );
    for p in Privilege::ALL {
        assert_eq!(Privilege::parse(p.id()), Some(p));
        assert!(Privileges::ALL.contains(p));
        assert!(!Privileges::NONE.contains(p));
        assert!(Privileges::of(&[p]).contains(p));
    }
    assert_eq!(Privilege::parse("Task.Delete"), None);
}

// spec §9: the NoPermission message names the user and the privilege.
#[test]
fn no_permission_message_names_user_and_privilege() {
    let fault = fault_of(
        &running(),
        progress(1, 5).by(lacking(Privilege::TaskUpdate)),
    );
    assert_eq!(
        fault.localized_message.as_deref(),
        Some("Permission to perform this operation was denied: mallory lacks Task.Update")
    );
}
