//! JSON through serde_json (spec §0.3, §2, §11 "VI/JSON API"): values round
//! trip, and the JSON uses the vSphere names: `key`, lower-case states,
//! `queueTime`, `descriptionId`, `_typeName` on faults, reasons and anyType.

mod common;

use common::*;
use serde_json::{json, Value};
use vtask_model::{
    AnyValue, ApiVersion, Caller, Command, FaultKind, FilterByEntity, FilterByTime,
    FilterByUsername, KeyAnyValue, LocalizableMessage, MethodFault, MoRef, Privilege, Privileges,
    RecursionOption, Reply, State, Task, TaskFilterSpec, TaskInfo, TaskKey, TaskReason, TimeOption,
};

#[track_caller]
fn round_trip<T>(value: &T) -> Value
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_value(value).expect("serialize");
    let text = serde_json::to_string(value).expect("serialize to text");
    let back: T = serde_json::from_str(&text).expect("deserialize");
    assert_eq!(&back, value, "round trip of {text}");
    json
}

/// A task with every optional field set.
fn full_info() -> TaskInfo {
    let mut cause = bare(FaultKind::NotSupported);
    cause.localized_message = Some("inner".into());
    TaskInfo {
        key: TaskKey(42),
        description: Some(LocalizableMessage {
            key: "com.example.phase.copy".into(),
            arg: vec![KeyAnyValue {
                key: "file".into(),
                value: AnyValue::String("a.vmdk".into()),
            }],
            message: Some("Copying a.vmdk".into()),
        }),
        name: Some("PowerOnVM_Task".into()),
        description_id: "VirtualMachine.powerOn".into(),
        entity: Some(MoRef::new("VirtualMachine", "vm-7")),
        entity_name: Some("web-01".into()),
        locked: vec![MoRef::new("Datastore", "datastore-1")],
        state: State::Error,
        cancelled: true,
        cancelable: true,
        error: Some(MethodFault {
            kind: FaultKind::RequestCanceled,
            localized_message: Some("The task was canceled by a user".into()),
            fault_cause: Some(Box::new(cause)),
            fault_message: vec![LocalizableMessage {
                key: "msg.key".into(),
                arg: vec![],
                message: None,
            }],
        }),
        result: None,
        progress: Some(55),
        progress_details: vec![KeyAnyValue {
            key: "bytes".into(),
            value: AnyValue::Long(1 << 40),
        }],
        reason: TaskReason::Schedule {
            name: "nightly".into(),
            scheduled_task: MoRef::new("ScheduledTask", "schedule-2"),
        },
        queue_time: secs(1000),
        start_time: Some(secs(1001)),
        complete_time: Some(secs(1002)),
        event_chain_id: 21691195,
        change_tag: Some("tag-1".into()),
        parent_task_key: Some("task-41".into()),
        root_task_key: Some("task-40".into()),
        activation_id: Some("act-1".into()),
    }
}

// spec §2: every field of TaskInfo survives a JSON round trip.
#[test]
fn task_info_round_trips() {
    round_trip(&full_info());
    let (table, _) = run(&[create(), start(1), succeed_with(1, AnyValue::Double(0.25))]);
    for task in table.tasks() {
        round_trip(&task.info);
        round_trip(task);
    }
}

// spec §2, §11: the JSON of a new task uses vSphere names and omits unset fields.
#[test]
fn task_info_json_uses_vsphere_names() {
    let (_, replies) = run(&[create()]);
    let info = replies[0].as_ref().unwrap().info().unwrap().clone();
    assert_eq!(
        round_trip(&info),
        json!({
            "key": "task-1",
            "descriptionId": "com.example.backup",
            "entity": {"type": "VirtualMachine", "value": "vm-1"},
            "state": "queued",
            "cancelled": false,
            "cancelable": true,
            "reason": {"_typeName": "TaskReasonUser", "userName": "alice"},
            "queueTime": 1_001_000_000,
            "eventChainId": 1
        })
    );
}

// spec §2 #9: the states are lower case.
#[test]
fn states_are_lower_case() {
    let names: Vec<Value> = State::ALL.iter().map(|s| round_trip(s)).collect();
    assert_eq!(
        names,
        [
            json!("queued"),
            json!("running"),
            json!("success"),
            json!("error")
        ]
    );
    for s in State::ALL {
        assert_eq!(State::parse(s.as_str()), Some(s));
        assert_eq!(s.to_string(), s.as_str());
    }
    assert_eq!(State::parse("Queued"), None);
}

// spec §2 (all field names): the full task's JSON names.
#[test]
fn full_task_info_json_names() {
    let json = round_trip(&full_info());
    let mut names: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "activationId",
            "cancelable",
            "cancelled",
            "changeTag",
            "completeTime",
            "description",
            "descriptionId",
            "entity",
            "entityName",
            "error",
            "eventChainId",
            "key",
            "locked",
            "name",
            "parentTaskKey",
            "progress",
            "progressDetails",
            "queueTime",
            "reason",
            "rootTaskKey",
            "startTime",
            "state"
        ]
    );
    assert_eq!(
        json["error"],
        json!({
            "_typeName": "RequestCanceled",
            "localizedMessage": "The task was canceled by a user",
            "faultCause": {"_typeName": "NotSupported", "localizedMessage": "inner"},
            "faultMessage": [{"key": "msg.key"}]
        })
    );
    assert_eq!(
        json["reason"],
        json!({
            "_typeName": "TaskReasonSchedule",
            "name": "nightly",
            "scheduledTask": {"type": "ScheduledTask", "value": "schedule-2"}
        })
    );
    assert_eq!(
        json["progressDetails"],
        json!([{"key": "bytes", "value": {"_typeName": "long", "_value": 1_099_511_627_776_i64}}])
    );
}

// spec §2.1: every TaskReason kind carries its vSphere type name.
#[test]
fn reasons_carry_type_names() {
    let reasons = [
        (
            TaskReason::User {
                user_name: "alice".into(),
            },
            json!({"_typeName": "TaskReasonUser", "userName": "alice"}),
        ),
        (TaskReason::System, json!({"_typeName": "TaskReasonSystem"})),
        (
            TaskReason::Alarm {
                alarm_name: "cpu".into(),
                alarm: MoRef::new("Alarm", "alarm-1"),
                entity_name: "web-01".into(),
                entity: MoRef::new("VirtualMachine", "vm-1"),
            },
            json!({
                "_typeName": "TaskReasonAlarm",
                "alarmName": "cpu",
                "alarm": {"type": "Alarm", "value": "alarm-1"},
                "entityName": "web-01",
                "entity": {"type": "VirtualMachine", "value": "vm-1"}
            }),
        ),
        (
            TaskReason::Schedule {
                name: "nightly".into(),
                scheduled_task: MoRef::new("ScheduledTask", "schedule-2"),
            },
            json!({
                "_typeName": "TaskReasonSchedule",
                "name": "nightly",
                "scheduledTask": {"type": "ScheduledTask", "value": "schedule-2"}
            }),
        ),
    ];
    for (reason, expect) in reasons {
        assert_eq!(round_trip(&reason), expect);
    }
}

// spec §0.3: every fault kind carries `_typeName` and its own fields.
#[test]
fn faults_carry_type_names_and_fields() {
    let task_1 = MoRef::new("Task", "task-1");
    let faults = [
        (
            FaultKind::NotSupported,
            json!({"_typeName": "NotSupported"}),
        ),
        (
            FaultKind::RequestCanceled,
            json!({"_typeName": "RequestCanceled"}),
        ),
        (
            FaultKind::ManagedObjectNotFound {
                obj: task_1.clone(),
            },
            json!({"_typeName": "ManagedObjectNotFound", "obj": {"type": "Task", "value": "task-1"}}),
        ),
        (
            FaultKind::InvalidArgument {
                invalid_property: Some("taskTypeId".into()),
            },
            json!({"_typeName": "InvalidArgument", "invalidProperty": "taskTypeId"}),
        ),
        (
            FaultKind::InvalidArgument {
                invalid_property: None,
            },
            json!({"_typeName": "InvalidArgument"}),
        ),
        (
            FaultKind::SystemError {
                reason: "disk full".into(),
            },
            json!({"_typeName": "SystemError", "reason": "disk full"}),
        ),
        (
            FaultKind::SecurityError,
            json!({"_typeName": "SecurityError"}),
        ),
        (
            FaultKind::NoPermission {
                object: Some(task_1),
                privilege_id: Some("Task.Update".into()),
            },
            json!({
                "_typeName": "NoPermission",
                "object": {"type": "Task", "value": "task-1"},
                "privilegeId": "Task.Update"
            }),
        ),
        (
            FaultKind::NotAuthenticated,
            json!({"_typeName": "NotAuthenticated"}),
        ),
        (
            FaultKind::InvalidState,
            json!({"_typeName": "InvalidState"}),
        ),
        (
            FaultKind::OutOfBounds {
                argument_name: "percentDone".into(),
            },
            json!({"_typeName": "OutOfBounds", "argumentName": "percentDone"}),
        ),
    ];
    let mut names: Vec<&str> = faults.iter().map(|(kind, _)| kind.type_name()).collect();
    names.dedup();
    assert_eq!(names, FaultKind::MODELLED_TYPE_NAMES);
    for (kind, expect) in faults {
        assert_eq!(round_trip(&bare(kind.clone())), expect);
        assert_eq!(expect["_typeName"], kind.type_name());
        // A fault the server returns has its message next to the fields.
        let mut with_message = expect.clone();
        with_message["localizedMessage"] = json!(kind.default_message());
        assert_eq!(round_trip(&MethodFault::new(kind)), with_message);
    }
}

// D3: a fault type we do not model round trips and keeps its name, written
// as vSphere writes it: the name is the `_typeName`.
#[test]
fn unmodelled_fault_json() {
    let fault = bare(FaultKind::Other {
        type_name: "FileNotFound".into(),
    });
    assert_eq!(round_trip(&fault), json!({"_typeName": "FileNotFound"}));
    assert_eq!(fault.kind.type_name(), "FileNotFound");
    assert_eq!(
        serde_json::from_value::<MethodFault>(json!({"_typeName": "FileNotFound"})).unwrap(),
        fault
    );
}

/// `name` as vSphere may spell it on input: short, and in both namespaces.
fn spellings(name: &str) -> [String; 3] {
    [
        name.to_string(),
        format!("vim.fault.{name}"),
        format!("vmodl.fault.{name}"),
    ]
}

// D3, §11 "VI/JSON API": every modelled kind reads from its vSphere JSON, in
// any spelling of its name, ignoring members it does not have; the JSON it
// writes back uses the short name.
#[test]
fn modelled_faults_read_from_vsphere_json() {
    let task_1 = json!({"type": "Task", "value": "task-1"});
    let cases = [
        (json!({}), FaultKind::NotSupported),
        (json!({}), FaultKind::RequestCanceled),
        (
            json!({"obj": task_1}),
            FaultKind::ManagedObjectNotFound {
                obj: MoRef::new("Task", "task-1"),
            },
        ),
        (
            json!({"invalidProperty": "taskTypeId"}),
            FaultKind::InvalidArgument {
                invalid_property: Some("taskTypeId".into()),
            },
        ),
        (
            json!({}),
            FaultKind::InvalidArgument {
                invalid_property: None,
            },
        ),
        (
            json!({"invalidProperty": null}),
            FaultKind::InvalidArgument {
                invalid_property: None,
            },
        ),
        (
            json!({"reason": "disk full"}),
            FaultKind::SystemError {
                reason: "disk full".into(),
            },
        ),
        (json!({}), FaultKind::SecurityError),
        (
            json!({"object": task_1, "privilegeId": "Task.Update"}),
            FaultKind::NoPermission {
                object: Some(MoRef::new("Task", "task-1")),
                privilege_id: Some("Task.Update".into()),
            },
        ),
        (
            json!({"privilegeId": "Task.Update"}),
            FaultKind::NoPermission {
                object: None,
                privilege_id: Some("Task.Update".into()),
            },
        ),
        (
            json!({}),
            FaultKind::NoPermission {
                object: None,
                privilege_id: None,
            },
        ),
        (json!({}), FaultKind::NotAuthenticated),
        (json!({}), FaultKind::InvalidState),
        (
            json!({"argumentName": "percentDone"}),
            FaultKind::OutOfBounds {
                argument_name: "percentDone".into(),
            },
        ),
    ];
    let mut seen: Vec<&str> = Vec::new();
    for (fields, kind) in &cases {
        let name = kind.type_name();
        seen.push(name);
        for spelling in spellings(name) {
            let mut input = fields.clone();
            input["_typeName"] = json!(spelling);
            // Members of other kinds and of no kind at all are ignored.
            input["file"] = json!("[ds1] vm/vm.vmx");
            input["reason"] = input.get("reason").cloned().unwrap_or(json!(7));
            let parsed: FaultKind = serde_json::from_value(input.clone())
                .unwrap_or_else(|e| panic!("{input} should parse: {e}"));
            assert_eq!(&parsed, kind, "{input}");

            let mut short = fields.clone();
            short["_typeName"] = json!(name);
            if short.get("invalidProperty") == Some(&Value::Null) {
                short.as_object_mut().unwrap().remove("invalidProperty");
            }
            assert_eq!(round_trip(&parsed), short, "{input}");
        }
    }
    seen.sort_unstable();
    seen.dedup();
    let mut modelled = FaultKind::MODELLED_TYPE_NAMES.to_vec();
    modelled.sort_unstable();
    assert_eq!(seen, modelled, "every modelled kind has a case");
}

// D3: any other `_typeName` is an unmodelled fault, kept by its short name;
// its own members are dropped.
#[test]
fn unmodelled_faults_read_from_vsphere_json() {
    let cases = [
        (json!({"_typeName": "FileNotFound"}), "FileNotFound"),
        (
            json!({"_typeName": "FileNotFound", "file": "[ds1] vm/disk.vmdk"}),
            "FileNotFound",
        ),
        (
            json!({"_typeName": "vim.fault.FileNotFound", "file": "[ds1] vm/disk.vmdk"}),
            "FileNotFound",
        ),
        (
            json!({"_typeName": "vmodl.fault.HostCommunication"}),
            "HostCommunication",
        ),
        (
            json!({"_typeName": "DuplicateName", "name": "vm-1", "object": "not a moref"}),
            "DuplicateName",
        ),
        (
            json!({"_typeName": "InvalidPowerState", "requestedState": "poweredOn", "existingState": "poweredOff", "obj": 5}),
            "InvalidPowerState",
        ),
        // Only the two vSphere namespaces are prefixes; other dotted names and
        // names that merely contain a modelled one are kept whole.
        (json!({"_typeName": "vim.InvalidState"}), "vim.InvalidState"),
        (
            json!({"_typeName": "InvalidStateFault"}),
            "InvalidStateFault",
        ),
        (json!({"_typeName": "invalidstate"}), "invalidstate"),
        (json!({"_typeName": "Other", "typeName": "X"}), "Other"),
    ];
    for (input, name) in cases {
        let kind: FaultKind = serde_json::from_value(input.clone())
            .unwrap_or_else(|e| panic!("{input} should parse: {e}"));
        assert_eq!(
            kind,
            FaultKind::Other {
                type_name: name.into()
            },
            "{input}"
        );
        assert_eq!(kind, FaultKind::from_type_name(name), "{input}");
    }
}

// The JSON of a fault that does not parse: no or a bad `_typeName`, a required
// field missing, a field of the wrong type.
#[test]
fn malformed_fault_json_is_refused() {
    let cases = [
        (json!({}), "missing field `_typeName`"),
        (
            json!({"typeName": "FileNotFound"}),
            "missing field `_typeName`",
        ),
        (json!({"_typeName": null}), "_typeName: invalid type: null"),
        (json!({"_typeName": 5}), "_typeName: invalid type: integer"),
        (
            json!({"_typeName": "ManagedObjectNotFound"}),
            "missing field `obj`",
        ),
        (
            json!({"_typeName": "vim.fault.ManagedObjectNotFound", "obj": null}),
            "obj: invalid type: null",
        ),
        (
            json!({"_typeName": "ManagedObjectNotFound", "obj": "task-1"}),
            "obj: invalid type: string",
        ),
        (
            json!({"_typeName": "SystemError"}),
            "missing field `reason`",
        ),
        (
            json!({"_typeName": "vmodl.fault.SystemError", "reason": 5}),
            "reason: invalid type: integer",
        ),
        (
            json!({"_typeName": "OutOfBounds"}),
            "missing field `argumentName`",
        ),
        (
            json!({"_typeName": "InvalidArgument", "invalidProperty": 5}),
            "invalidProperty: invalid type: integer",
        ),
        (
            json!({"_typeName": "NoPermission", "object": "task-1"}),
            "object: invalid type: string",
        ),
        (json!("InvalidState"), "invalid type: string"),
    ];
    for (input, error) in cases {
        let err = serde_json::from_value::<FaultKind>(input.clone())
            .expect_err(&format!("{input} should not parse"))
            .to_string();
        assert!(err.contains(error), "{input}: {err:?} lacks {error:?}");
        let err = serde_json::from_value::<MethodFault>(input.clone())
            .expect_err(&format!("{input} should not parse as a MethodFault"))
            .to_string();
        assert!(err.contains(error), "{input}: {err:?} lacks {error:?}");
    }
}

// D3: a name alone gives the modelled kind when it is one and the kind can do
// without fields; kinds with required fields stay `Other` (validate refuses
// them, see bad_input.rs).
#[test]
fn fault_kinds_from_type_names() {
    for name in FaultKind::MODELLED_TYPE_NAMES {
        let needs_fields = matches!(
            name,
            "ManagedObjectNotFound" | "SystemError" | "OutOfBounds"
        );
        for spelling in spellings(name) {
            let kind = FaultKind::from_type_name(&spelling);
            assert_eq!(kind.type_name(), name, "{spelling}");
            assert_eq!(
                matches!(kind, FaultKind::Other { .. }),
                needs_fields,
                "{spelling}: {kind:?}"
            );
            assert!(FaultKind::is_modelled_type_name(&spelling), "{spelling}");
        }
        assert_eq!(
            FaultKind::short_type_name(&format!("vim.fault.{name}")),
            name
        );
    }
    assert_eq!(
        FaultKind::from_type_name("InvalidArgument"),
        FaultKind::InvalidArgument {
            invalid_property: None
        }
    );
    assert_eq!(
        FaultKind::from_type_name("NoPermission"),
        FaultKind::NoPermission {
            object: None,
            privilege_id: None
        }
    );
    for (name, short) in [
        ("FileNotFound", "FileNotFound"),
        ("vim.fault.FileNotFound", "FileNotFound"),
        ("vmodl.fault.FileNotFound", "FileNotFound"),
        ("vim.fault.vmodl.fault.X", "vmodl.fault.X"),
        ("vim.FileNotFound", "vim.FileNotFound"),
        ("", ""),
    ] {
        assert_eq!(
            FaultKind::from_type_name(name),
            FaultKind::Other {
                type_name: short.into()
            },
            "{name}"
        );
        assert!(!FaultKind::is_modelled_type_name(name), "{name}");
    }
}

// spec §0.3, D3: a whole MethodFault as vSphere writes it, with an unmodelled
// kind, prefixed names, a cause and messages, reads and writes back in the
// short form.
#[test]
fn method_fault_from_vsphere_json() {
    let input = json!({
        "_typeName": "vim.fault.FileNotFound",
        "file": "[ds1] vm/disk.vmdk",
        "localizedMessage": "File [ds1] vm/disk.vmdk was not found",
        "faultCause": {
            "_typeName": "vmodl.fault.ManagedObjectNotFound",
            "obj": {"type": "Datastore", "value": "datastore-1"},
            "localizedMessage": "gone"
        },
        "faultMessage": [{"key": "msg.file.notFound", "message": "not found"}]
    });
    let fault: MethodFault = serde_json::from_value(input).unwrap();
    assert_eq!(
        fault,
        MethodFault {
            kind: FaultKind::Other {
                type_name: "FileNotFound".into()
            },
            localized_message: Some("File [ds1] vm/disk.vmdk was not found".into()),
            fault_cause: Some(Box::new(MethodFault::with_message(
                FaultKind::ManagedObjectNotFound {
                    obj: MoRef::new("Datastore", "datastore-1")
                },
                "gone"
            ))),
            fault_message: vec![LocalizableMessage {
                key: "msg.file.notFound".into(),
                arg: vec![],
                message: Some("not found".into()),
            }],
        }
    );
    assert_eq!(
        round_trip(&fault),
        json!({
            "_typeName": "FileNotFound",
            "localizedMessage": "File [ds1] vm/disk.vmdk was not found",
            "faultCause": {
                "_typeName": "ManagedObjectNotFound",
                "obj": {"type": "Datastore", "value": "datastore-1"},
                "localizedMessage": "gone"
            },
            "faultMessage": [{"key": "msg.file.notFound", "message": "not found"}]
        })
    );
    // The same fault travels in a SetTaskState log entry and in TaskInfo.error.
    let command = Command::SetTaskState {
        task: "task-1".into(),
        state: State::Error,
        result: None,
        fault: Some(fault.clone()),
    };
    assert_eq!(round_trip(&command)["fault"]["_typeName"], "FileNotFound");
    let mut info = full_info();
    info.error = Some(fault);
    assert_eq!(round_trip(&info)["error"]["_typeName"], "FileNotFound");
}

// spec §0.3: a fault a caller sends may omit localizedMessage; a nested cause
// parses too.
#[test]
fn fault_without_message_parses() {
    let fault: MethodFault = serde_json::from_value(json!({
        "_typeName": "SystemError",
        "reason": "x",
        "faultCause": {"_typeName": "RequestCanceled"}
    }))
    .unwrap();
    assert_eq!(fault.localized_message, None);
    assert_eq!(
        fault
            .localized()
            .fault_cause
            .unwrap()
            .localized_message
            .as_deref(),
        Some("The task was canceled by a user")
    );
}

// spec §2 #13, §2.2: anyType values carry `_typeName`.
#[test]
fn any_values_carry_type_names() {
    let values = [
        (
            AnyValue::String("s".into()),
            json!({"_typeName": "string", "_value": "s"}),
        ),
        (
            AnyValue::Long(-3),
            json!({"_typeName": "long", "_value": -3}),
        ),
        (
            AnyValue::Boolean(true),
            json!({"_typeName": "boolean", "_value": true}),
        ),
        (
            AnyValue::Double(2.5),
            json!({"_typeName": "double", "_value": 2.5}),
        ),
        (
            AnyValue::DateTime(secs(1)),
            json!({"_typeName": "dateTime", "_value": 1_000_000}),
        ),
        (
            AnyValue::MoRef(MoRef::new("VirtualMachine", "vm-1")),
            json!({"_typeName": "ManagedObjectReference", "_value": {"type": "VirtualMachine", "value": "vm-1"}}),
        ),
        (
            AnyValue::Json("[1]".into()),
            json!({"_typeName": "json", "_value": "[1]"}),
        ),
    ];
    for (value, expect) in values {
        assert_eq!(round_trip(&value), expect);
    }
}

// spec §1: task keys are `task-<n>` on the wire; other spellings do not parse.
#[test]
fn task_keys_on_the_wire() {
    assert_eq!(round_trip(&TaskKey(7)), json!("task-7"));
    for bad in [
        "task-07", "task-0", "task-", "Task-7", "7", "task-7a", "task--7",
    ] {
        assert!(
            serde_json::from_value::<TaskKey>(json!(bad)).is_err(),
            "{bad} should not parse"
        );
        assert_eq!(TaskKey::parse(bad), None, "{bad}");
    }
    assert_eq!(
        TaskKey::parse("task-18446744073709551615"),
        Some(TaskKey(u64::MAX))
    );
    assert_eq!(TaskKey::parse("task-18446744073709551616"), None);
}

// spec §12: every command, as a log entry carries it, round trips.
#[test]
fn commands_round_trip() {
    let commands = [
        Command::CreateTask(vtask_model::CreateTask {
            obj: MoRef::new("VirtualMachine", "vm-1"),
            entity_name: Some("web-01".into()),
            task_type_id: "com.example.backup".into(),
            initiated_by: Some("alice".into()),
            cancelable: true,
            parent_task_key: Some("task-1".into()),
            activation_id: Some("act".into()),
            change_tag: Some("tag".into()),
            lease_millis: Some(30_000),
        }),
        Command::CancelTask {
            task: "task-1".into(),
        },
        Command::UpdateProgress {
            task: "task-1".into(),
            percent_done: 150,
            progress_details: Some(vec![KeyAnyValue {
                key: "k".into(),
                value: AnyValue::Double(0.5),
            }]),
            api_version: ApiVersion::Vim25,
        },
        Command::SetTaskState {
            task: "task-1".into(),
            state: State::Error,
            result: None,
            fault: Some(disk_full()),
        },
        Command::SetTaskState {
            task: "task-1".into(),
            state: State::Success,
            result: Some(AnyValue::Json("{}".into())),
            fault: None,
        },
        Command::SetTaskDescription {
            task: "task-1".into(),
            description: message("phase"),
        },
        Command::LapseLease {
            task: "task-1".into(),
        },
        Command::ExpireTasks {
            tasks: vec![TaskKey(1), TaskKey(2)],
            completed_before: secs(5),
        },
    ];
    let ops: Vec<Value> = commands
        .iter()
        .map(|c| round_trip(c)["op"].clone())
        .collect();
    assert_eq!(
        ops,
        [
            "createTask",
            "cancelTask",
            "updateProgress",
            "setTaskState",
            "setTaskState",
            "setTaskDescription",
            "lapseLease",
            "expireTasks"
        ]
    );
}

// spec §5, D15, D28: the JSON of UpdateProgress uses the wire names, and the
// optional parts default (no details, the current API version).
#[test]
fn update_progress_json() {
    let command = Command::UpdateProgress {
        task: "task-1".into(),
        percent_done: 5,
        progress_details: None,
        api_version: ApiVersion::Current,
    };
    assert_eq!(
        round_trip(&command),
        json!({"op": "updateProgress", "task": "task-1", "percentDone": 5, "progressDetails": null, "apiVersion": "current"})
    );
    let parsed: Command =
        serde_json::from_value(json!({"op": "updateProgress", "task": "task-1", "percentDone": 5}))
            .unwrap();
    assert_eq!(parsed, command);
}

// spec §7.2: CreateTask's JSON names (taskTypeId, initiatedBy, parentTaskKey, ...).
#[test]
fn create_task_json() {
    let parsed: Command = serde_json::from_value(json!({
        "op": "createTask",
        "obj": {"type": "VirtualMachine", "value": "vm-1"},
        "taskTypeId": "com.example.backup",
        "initiatedBy": "alice",
        "cancelable": false,
        "parentTaskKey": "task-1",
        "activationId": "act"
    }))
    .unwrap();
    let Command::CreateTask(args) = parsed else {
        panic!("not a CreateTask: {parsed:?}")
    };
    assert_eq!(args.task_type_id, "com.example.backup");
    assert_eq!(args.initiated_by.as_deref(), Some("alice"));
    assert!(!args.cancelable);
    assert_eq!(args.parent_task_key.as_deref(), Some("task-1"));
    assert_eq!(args.activation_id.as_deref(), Some("act"));
    assert_eq!(
        (args.entity_name, args.change_tag, args.lease_millis),
        (None, None, None)
    );
}

// Callers, privileges and replies travel in log entries and answers too.
#[test]
fn callers_and_replies_round_trip() {
    let callers = [
        Caller::Anonymous,
        Caller::System,
        Caller::user("alice", Privileges::of(&[Privilege::TaskUpdate])),
    ];
    for caller in &callers {
        round_trip(caller);
    }
    assert_eq!(
        round_trip(&Privilege::GlobalCancelTask),
        json!("Global.CancelTask")
    );
    let (_, replies) = run(&[create(), succeed(1), expire(&[1], 9000).at(9000)]);
    for reply in replies {
        round_trip(&reply.unwrap());
    }
    assert_eq!(
        round_trip(&Reply::Expired {
            tasks: vec![TaskKey(3)]
        }),
        json!({"kind": "expired", "tasks": ["task-3"]})
    );
    round_trip(&Task {
        info: full_info(),
        lease: None,
    });
}

// spec §8.1: the filter's JSON uses the vSphere names, `self` included.
#[test]
fn filter_json_uses_vsphere_names() {
    let filter = TaskFilterSpec {
        entity: Some(FilterByEntity {
            entity: MoRef::new("VirtualMachine", "vm-1"),
            recursion: RecursionOption::Itself,
        }),
        time: Some(FilterByTime {
            time_type: TimeOption::StartedTime,
            begin_time: Some(secs(1)),
            end_time: None,
        }),
        user_name: Some(FilterByUsername {
            system_user: true,
            user_list: vec!["bob".into()],
        }),
        activation_id: vec!["a".into()],
        state: vec![State::Running],
        alarm: None,
        scheduled_task: Some(MoRef::new("ScheduledTask", "schedule-1")),
        event_chain_id: vec![3],
        tag: vec![String::new()],
        parent_task_key: vec!["task-1".into()],
        root_task_key: vec!["task-0".into()],
    };
    assert_eq!(
        round_trip(&filter),
        json!({
            "entity": {"entity": {"type": "VirtualMachine", "value": "vm-1"}, "recursion": "self"},
            "time": {"timeType": "startedTime", "beginTime": 1_000_000},
            "userName": {"systemUser": true, "userList": ["bob"]},
            "activationId": ["a"],
            "state": ["running"],
            "scheduledTask": {"type": "ScheduledTask", "value": "schedule-1"},
            "eventChainId": [3],
            "tag": [""],
            "parentTaskKey": ["task-1"],
            "rootTaskKey": ["task-0"]
        })
    );
    assert_eq!(round_trip(&TaskFilterSpec::default()), json!({}));
    assert_eq!(round_trip(&RecursionOption::Children), json!("children"));
    assert_eq!(round_trip(&RecursionOption::All), json!("all"));
    assert_eq!(round_trip(&TimeOption::QueuedTime), json!("queuedTime"));
    assert_eq!(
        round_trip(&TimeOption::CompletedTime),
        json!("completedTime")
    );
}
