//! CreateTask (spec §7.2): keys, the fields a new task gets (D11, D13, D14,
//! D23, D25), which taskTypeId and obj are accepted (D10, D12), leases (D26),
//! and that a refused CreateTask allocates nothing.

mod common;

use common::*;
use vtask_model::{
    validate, Caller, Command, MoRef, Privilege, Privileges, MAX_LEASE_MILLIS, MIN_LEASE_MILLIS,
};

// spec §1, §12: keys are task-1, task-2, ... in creation order.
#[test]
fn keys_count_up_from_task_1() {
    check(
        &[create(), create(), create()],
        "
        CreateTask -> task-1
        CreateTask -> task-2
        CreateTask -> task-3
        task-1 state=queued queue=1001 cancelled=false
        task-2 state=queued queue=1002 cancelled=false
        task-3 state=queued queue=1003 cancelled=false
        ",
    );
}

// spec §7.2: the new TaskInfo. D25: no `name`. D23: eventChainId from the
// counter. D11: reason is the caller. Everything else unset.
#[test]
fn created_task_has_the_documented_fields() {
    check_created(
        &[create()],
        "
        CreateTask -> task-1
        task-1 state=queued queue=1001 cancelled=false
          task-1 descriptionId=com.example.backup reason=user:alice eventChainId=1 cancelable=true entity=VirtualMachine:vm-1
        ",
    );
}

// D25: name stays unset whatever the task type.
#[test]
fn created_task_has_no_name() {
    let (table, _) = run(&[
        create(),
        create_with(|a| a.task_type_id = "PowerOnVM_Task".into()),
    ]);
    let names: Vec<_> = table.tasks().map(|t| t.info.name.clone()).collect();
    assert_eq!(names, vec![None, None]);
}

// spec §1: `task` is the moref Task:<key>, and key equals the moref value.
#[test]
fn task_moref_is_task_colon_key() {
    let (table, _) = run(&[create(), create()]);
    let morefs: Vec<String> = table.tasks().map(|t| t.info.task().to_string()).collect();
    assert_eq!(morefs, vec!["Task:task-1", "Task:task-2"]);
}

// D23: every created task gets the next event chain id.
#[test]
fn event_chain_id_increments() {
    check_created(
        &[create(), create().by(bob()), create()],
        "
        CreateTask -> task-1
        CreateTask -> task-2
        CreateTask -> task-3
        task-1 state=queued queue=1001 cancelled=false
          task-1 descriptionId=com.example.backup reason=user:alice eventChainId=1 cancelable=true entity=VirtualMachine:vm-1
        task-2 state=queued queue=1002 cancelled=false
          task-2 descriptionId=com.example.backup reason=user:bob eventChainId=2 cancelable=true entity=VirtualMachine:vm-1
        task-3 state=queued queue=1003 cancelled=false
          task-3 descriptionId=com.example.backup reason=user:alice eventChainId=3 cancelable=true entity=VirtualMachine:vm-1
        ",
    );
}

// spec §12, D23: a refused CreateTask uses up neither a key nor a chain id.
#[test]
fn refused_create_allocates_nothing() {
    check_created(
        &[
            create_with(|a| a.task_type_id = String::new()),
            create().by(anonymous()),
            create(),
        ],
        "
        CreateTask -> InvalidArgument invalidProperty=taskTypeId
        CreateTask -> NotAuthenticated
        CreateTask -> task-1
        task-1 state=queued queue=1003 cancelled=false
          task-1 descriptionId=com.example.backup reason=user:alice eventChainId=1 cancelable=true entity=VirtualMachine:vm-1
        ",
    );
}

// D11: initiatedBy, when given, becomes the reason's userName.
#[test]
fn reason_is_initiated_by_when_given() {
    check_created(
        &[create_with(|a| {
            a.initiated_by = Some(r"vmware\sa-vdp3".into())
        })],
        r"
        CreateTask -> task-1
        task-1 state=queued queue=1001 cancelled=false
          task-1 descriptionId=com.example.backup reason=user:vmware\sa-vdp3 eventChainId=1 cancelable=true entity=VirtualMachine:vm-1
        ",
    );
}

// D11: otherwise the authenticated caller; the service itself is TaskReasonSystem.
#[test]
fn reason_is_the_caller_otherwise() {
    check_created(
        &[create().by(bob()), create().by(system())],
        "
        CreateTask -> task-1
        CreateTask -> task-2
        task-1 state=queued queue=1001 cancelled=false
          task-1 descriptionId=com.example.backup reason=user:bob eventChainId=1 cancelable=true entity=VirtualMachine:vm-1
        task-2 state=queued queue=1002 cancelled=false
          task-2 descriptionId=com.example.backup reason=system eventChainId=2 cancelable=true entity=VirtualMachine:vm-1
        ",
    );
}

// spec §7.2: cancelable, entityName and activationId come from the arguments.
#[test]
fn arguments_are_stored() {
    check_created(
        &[create_with(|a| {
            a.cancelable = false;
            a.entity_name = Some("web-01".into());
            a.activation_id = Some("act-7f3a".into());
        })],
        "
        CreateTask -> task-1
        task-1 state=queued queue=1001 cancelled=false
          task-1 descriptionId=com.example.backup reason=user:alice eventChainId=1 cancelable=false entity=VirtualMachine:vm-1 entityName=web-01 activationId=act-7f3a
        ",
    );
}

// ---------------------------------------------------------------------------
// D10: taskTypeId

/// The reply to a CreateTask with `id` as taskTypeId: "ok" or the fault.
fn type_id_outcome(id: &str) -> String {
    let (_, replies) = run(&[create_with(|a| a.task_type_id = id.into())]);
    match &replies[0] {
        Ok(_) => "ok".into(),
        Err(fault) => render_fault(fault),
    }
}

// D10: 1..256 characters of [A-Za-z0-9._:-] are accepted.
#[test]
fn valid_task_type_ids_are_accepted() {
    let ids = [
        "a".to_string(),
        "com.vmware.vdp2.integritycheck".to_string(),
        "Ext_1:type-2.x".to_string(),
        "0123456789".to_string(),
        "a".repeat(256),
    ];
    for id in ids {
        assert_eq!(type_id_outcome(&id), "ok", "taskTypeId {id:?}");
    }
}

// D10: anything else is InvalidArgument{invalidProperty="taskTypeId"}.
#[test]
fn invalid_task_type_ids_are_invalid_argument() {
    let ids = [
        String::new(),
        "a".repeat(257),
        "has space".to_string(),
        "slash/type".to_string(),
        "star*".to_string(),
        "ümlaut".to_string(),
        "tab\there".to_string(),
        "comma,sep".to_string(),
    ];
    for id in ids {
        assert_eq!(
            type_id_outcome(&id),
            "InvalidArgument invalidProperty=taskTypeId",
            "taskTypeId {id:?}"
        );
    }
}

// spec §2 #5: descriptionId equals taskTypeId.
#[test]
fn description_id_is_task_type_id() {
    check_created(
        &[create_with(|a| a.task_type_id = "com.vmware.vdp2.integritycheck".into())],
        "
        CreateTask -> task-1
        task-1 state=queued queue=1001 cancelled=false
          task-1 descriptionId=com.vmware.vdp2.integritycheck reason=user:alice eventChainId=1 cancelable=true entity=VirtualMachine:vm-1
        ",
    );
}

// ---------------------------------------------------------------------------
// D12: obj

/// The reply to a CreateTask on `obj`: "ok" or the fault.
fn obj_outcome(type_: &str, value: &str) -> String {
    let (_, replies) = run(&[create_with(|a| a.obj = MoRef::new(type_, value))]);
    match &replies[0] {
        Ok(_) => "ok".into(),
        Err(fault) => render_fault(fault),
    }
}

// D12: type and value non-empty, at most 256 characters; any type is taken
// (there is no inventory to check it against).
#[test]
fn obj_moref_is_checked() {
    let long = "v".repeat(257);
    let max = "v".repeat(256);
    let cases = [
        ("VirtualMachine", "vm-1", "ok"),
        ("HostSystem", "host-12", "ok"),
        ("Folder", max.as_str(), "ok"),
        ("", "vm-1", "InvalidArgument invalidProperty=obj.type"),
        (
            "VirtualMachine",
            "",
            "InvalidArgument invalidProperty=obj.value",
        ),
        ("", "", "InvalidArgument invalidProperty=obj.type"),
        (
            "VirtualMachine",
            long.as_str(),
            "InvalidArgument invalidProperty=obj.value",
        ),
        (
            long.as_str(),
            "vm-1",
            "InvalidArgument invalidProperty=obj.type",
        ),
        (
            "VirtualMachine",
            "vm\n1",
            "InvalidArgument invalidProperty=obj.value",
        ),
    ];
    for (type_, value, expect) in cases {
        assert_eq!(obj_outcome(type_, value), expect, "obj {type_:?}:{value:?}");
    }
}

// D12: the entity is the moref as given, entityName the given display name.
#[test]
fn entity_is_obj() {
    check_created(
        &[create_with(|a| {
            a.obj = MoRef::new("Datastore", "datastore-42");
            a.entity_name = Some("nfs-a".into());
        })],
        "
        CreateTask -> task-1
        task-1 state=queued queue=1001 cancelled=false
          task-1 descriptionId=com.example.backup reason=user:alice eventChainId=1 cancelable=true entity=Datastore:datastore-42 entityName=nfs-a
        ",
    );
}

// ---------------------------------------------------------------------------
// D13: parent and root keys

// D13: no parent, no root.
#[test]
fn no_parent_leaves_root_unset() {
    let (table, _) = run(&[create()]);
    let info = &table.tasks().next().unwrap().info;
    assert_eq!((&info.parent_task_key, &info.root_task_key), (&None, &None));
}

// D13: the parent need not exist; then the root is the parent's key.
#[test]
fn missing_parent_is_the_root() {
    check_created(
        &[
            create_with(|a| a.parent_task_key = Some("task-99".into())),
            create_with(|a| a.parent_task_key = Some("op-7".into())),
        ],
        "
        CreateTask -> task-1
        CreateTask -> task-2
        task-1 state=queued queue=1001 cancelled=false
          task-1 descriptionId=com.example.backup reason=user:alice eventChainId=1 cancelable=true entity=VirtualMachine:vm-1 parent=task-99 root=task-99
        task-2 state=queued queue=1002 cancelled=false
          task-2 descriptionId=com.example.backup reason=user:alice eventChainId=2 cancelable=true entity=VirtualMachine:vm-1 parent=op-7 root=op-7
        ",
    );
}

// D13: a parent without a root is the root; a parent with a root passes it
// on (four levels, so that the root differs from the grandparent).
#[test]
fn root_comes_from_the_parent_chain() {
    check_created(
        &[
            create(),
            create_with(|a| a.parent_task_key = Some("task-1".into())),
            create_with(|a| a.parent_task_key = Some("task-2".into())),
            create_with(|a| a.parent_task_key = Some("task-3".into())),
        ],
        "
        CreateTask -> task-1
        CreateTask -> task-2
        CreateTask -> task-3
        CreateTask -> task-4
        task-1 state=queued queue=1001 cancelled=false
          task-1 descriptionId=com.example.backup reason=user:alice eventChainId=1 cancelable=true entity=VirtualMachine:vm-1
        task-2 state=queued queue=1002 cancelled=false
          task-2 descriptionId=com.example.backup reason=user:alice eventChainId=2 cancelable=true entity=VirtualMachine:vm-1 parent=task-1 root=task-1
        task-3 state=queued queue=1003 cancelled=false
          task-3 descriptionId=com.example.backup reason=user:alice eventChainId=3 cancelable=true entity=VirtualMachine:vm-1 parent=task-2 root=task-1
        task-4 state=queued queue=1004 cancelled=false
          task-4 descriptionId=com.example.backup reason=user:alice eventChainId=4 cancelable=true entity=VirtualMachine:vm-1 parent=task-3 root=task-1
        ",
    );
}

// D13: the parent's own parent key does not matter, only its root; a parent
// whose parent was missing passes on that missing key as root.
#[test]
fn root_of_a_parent_with_a_missing_parent() {
    check_created(
        &[
            create_with(|a| a.parent_task_key = Some("task-50".into())),
            create_with(|a| a.parent_task_key = Some("task-1".into())),
        ],
        "
        CreateTask -> task-1
        CreateTask -> task-2
        task-1 state=queued queue=1001 cancelled=false
          task-1 descriptionId=com.example.backup reason=user:alice eventChainId=1 cancelable=true entity=VirtualMachine:vm-1 parent=task-50 root=task-50
        task-2 state=queued queue=1002 cancelled=false
          task-2 descriptionId=com.example.backup reason=user:alice eventChainId=2 cancelable=true entity=VirtualMachine:vm-1 parent=task-1 root=task-50
        ",
    );
}

// D13 taken literally: a parent key that was never allocated is accepted,
// even the key the new task itself receives (keys are monotonic, so such a
// parent can never be real; D13 does not forbid it).
#[test]
fn parent_key_not_yet_allocated_is_accepted() {
    check_created(
        &[create_with(|a| a.parent_task_key = Some("task-1".into()))],
        "
        CreateTask -> task-1
        task-1 state=queued queue=1001 cancelled=false
          task-1 descriptionId=com.example.backup reason=user:alice eventChainId=1 cancelable=true entity=VirtualMachine:vm-1 parent=task-1 root=task-1
        ",
    );
}

// ---------------------------------------------------------------------------
// D14: changeTag

// D14: a change tag may be set at creation.
#[test]
fn change_tag_is_stored() {
    check_created(
        &[create_with(|a| a.change_tag = Some("upgrade-2024".into()))],
        "
        CreateTask -> task-1
        task-1 state=queued queue=1001 cancelled=false
          task-1 descriptionId=com.example.backup reason=user:alice eventChainId=1 cancelable=true entity=VirtualMachine:vm-1 changeTag=upgrade-2024
        ",
    );
}

// D14, spec §8.1: an empty tag means "untagged" in filters, so it cannot be set.
#[test]
fn empty_change_tag_is_invalid_argument() {
    check(
        &[
            create_with(|a| a.change_tag = Some(String::new())),
            create_with(|a| a.change_tag = Some("t".repeat(257))),
        ],
        "
        CreateTask -> InvalidArgument invalidProperty=changeTag
        CreateTask -> InvalidArgument invalidProperty=changeTag
        (no tasks)
        ",
    );
}

// ---------------------------------------------------------------------------
// Privileges and too-long strings

// spec §9: CreateTask needs an authenticated caller with Task.Create.
#[test]
fn create_needs_task_create() {
    check(
        &[
            create().by(anonymous()),
            create().by(lacking(Privilege::TaskCreate)),
            create().by(Caller::user(
                "ext",
                Privileges::of(&[Privilege::TaskCreate]),
            )),
        ],
        "
        CreateTask -> NotAuthenticated
        CreateTask -> NoPermission privilegeId=Task.Create
        CreateTask -> task-1
        task-1 state=queued queue=1003 cancelled=false
        ",
    );
}

// spec §12: authentication and privilege come before argument checks.
#[test]
fn access_checks_come_before_argument_checks() {
    let bad = |a: &mut vtask_model::CreateTask| a.task_type_id = String::new();
    check(
        &[
            create_with(bad).by(anonymous()),
            create_with(bad).by(lacking(Privilege::TaskCreate)),
        ],
        "
        CreateTask -> NotAuthenticated
        CreateTask -> NoPermission privilegeId=Task.Create
        (no tasks)
        ",
    );
}

// D12 and validate: optional names must be 1..256 characters without
// control characters, and refusing one creates nothing.
#[test]
fn too_long_or_empty_optional_names_are_invalid_argument() {
    let long = "x".repeat(257);
    check(
        &[
            create_with(|a| a.initiated_by = Some(long.clone())),
            create_with(|a| a.entity_name = Some(long.clone())),
            create_with(|a| a.parent_task_key = Some(long.clone())),
            create_with(|a| a.activation_id = Some(long.clone())),
            create_with(|a| a.activation_id = Some(String::new())),
            create_with(|a| a.initiated_by = Some(String::new())),
            create_with(|a| a.entity_name = Some("bell\u{7}".into())),
        ],
        "
        CreateTask -> InvalidArgument invalidProperty=initiatedBy
        CreateTask -> InvalidArgument invalidProperty=entityName
        CreateTask -> InvalidArgument invalidProperty=parentTaskKey
        CreateTask -> InvalidArgument invalidProperty=activationId
        CreateTask -> InvalidArgument invalidProperty=activationId
        CreateTask -> InvalidArgument invalidProperty=initiatedBy
        CreateTask -> InvalidArgument invalidProperty=entityName
        (no tasks)
        ",
    );
}

// validate: names count characters, not bytes (256 two-byte characters pass).
#[test]
fn name_length_counts_characters() {
    assert!(validate::name("entityName", &"é".repeat(256)).is_ok());
    assert!(validate::name("entityName", &"é".repeat(257)).is_err());
}

// D26: a lease TTL must lie in MIN_LEASE_MILLIS..=MAX_LEASE_MILLIS.
#[test]
fn lease_ttl_range_is_checked() {
    check(
        &[
            create_with(|a| a.lease_millis = Some(MIN_LEASE_MILLIS - 1)),
            create_with(|a| a.lease_millis = Some(MAX_LEASE_MILLIS + 1)),
            create_with(|a| a.lease_millis = Some(0)),
            create_with(|a| a.lease_millis = Some(MIN_LEASE_MILLIS)),
            create_with(|a| a.lease_millis = Some(MAX_LEASE_MILLIS)),
        ],
        "
        CreateTask -> InvalidArgument invalidProperty=lease
        CreateTask -> InvalidArgument invalidProperty=lease
        CreateTask -> InvalidArgument invalidProperty=lease
        CreateTask -> task-1
        CreateTask -> task-2
        task-1 state=queued queue=1004 cancelled=false lease=alice/1000ms/until=1005
        task-2 state=queued queue=1005 cancelled=false lease=alice/86400000ms/until=87405
        ",
    );
}

// D26: the lease belongs to the caller that created the task.
#[test]
fn lease_owner_is_the_creator() {
    check(
        &[create_with(|a| {
            a.lease_millis = Some(30_000);
            a.initiated_by = Some("someone-else".into());
        })
        .by(bob())],
        "
        CreateTask -> task-1
        task-1 state=queued queue=1001 cancelled=false lease=bob/30000ms/until=1031
        ",
    );
}

// spec §12: CreateTask carries every argument in the log entry; the command
// names itself for logs.
#[test]
fn command_method_names() {
    let steps = [
        create(),
        cancel(1),
        progress(1, 1),
        start(1),
        describe(1, "k"),
        lapse(1),
        expire(&[1], 0),
    ];
    let names: Vec<&str> = steps.iter().map(|s| s.command.method()).collect();
    assert_eq!(
        names,
        [
            "CreateTask",
            "CancelTask",
            "UpdateProgress",
            "SetTaskState",
            "SetTaskDescription",
            "LapseLease",
            "ExpireTasks"
        ]
    );
    let tasks: Vec<Option<&str>> = steps.iter().map(|s| s.command.task()).collect();
    assert_eq!(
        tasks,
        [
            None,
            Some("task-1"),
            Some("task-1"),
            Some("task-1"),
            Some("task-1"),
            Some("task-1"),
            None
        ]
    );
    assert!(matches!(steps[0].command, Command::CreateTask(_)));
}
