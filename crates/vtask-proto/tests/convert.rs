//! Model ⇄ wire conversions: every converted type survives model → proto →
//! bytes → proto → model, and a wire value the model cannot hold is refused
//! with an `InvalidArgument` naming the field.

use proptest::prelude::*;
use prost::Message;
use vtask_model::{
    AnyValue, ApiVersion, Command, CreateTask, FaultKind, FilterByEntity, FilterByTime,
    FilterByUsername, KeyAnyValue, LocalizableMessage, MethodFault, MoRef, RecursionOption, State,
    TaskFilterSpec, TaskInfo, TaskKey, TaskReason, TimeOption, Timestamp,
};
use vtask_proto::convert::{
    duration_to_millis, fault_code, fault_to_status, millis_to_duration, status_to_fault,
    timestamp_from_proto, timestamp_to_proto,
};
use vtask_proto::v1;

/// model → proto → bytes → proto → model.
fn round_trip<M, P>(value: M) -> M
where
    M: Into<P> + TryFrom<P>,
    <M as TryFrom<P>>::Error: std::fmt::Debug,
    P: Message + Default,
{
    let wire = value.into().encode_to_vec();
    let decoded = P::decode(wire.as_slice()).expect("decodes");
    M::try_from(decoded).expect("converts back")
}

fn check_round_trip<M, P>(value: M)
where
    M: Into<P> + TryFrom<P> + Clone + PartialEq + std::fmt::Debug,
    <M as TryFrom<P>>::Error: std::fmt::Debug,
    P: Message + Default,
{
    assert_eq!(round_trip::<M, P>(value.clone()), value);
}

/// The `invalidProperty` of the InvalidArgument a conversion refused with.
fn refused<T: std::fmt::Debug>(result: Result<T, MethodFault>) -> String {
    let fault = result.expect_err("conversion must fail");
    match &fault.kind {
        FaultKind::InvalidArgument {
            invalid_property: Some(property),
        } => {
            let message = fault.message();
            assert!(message.contains(property.as_str()), "{message}");
            property.clone()
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

fn moref(type_: &str, value: &str) -> MoRef {
    MoRef::new(type_, value)
}

fn every_fault_kind() -> Vec<FaultKind> {
    vec![
        FaultKind::NotSupported,
        FaultKind::RequestCanceled,
        FaultKind::ManagedObjectNotFound {
            obj: moref("Task", "task-7"),
        },
        FaultKind::InvalidArgument {
            invalid_property: Some("percentDone".into()),
        },
        FaultKind::InvalidArgument {
            invalid_property: None,
        },
        FaultKind::SystemError {
            reason: "disk on fire".into(),
        },
        FaultKind::SecurityError,
        FaultKind::NoPermission {
            object: Some(moref("VirtualMachine", "vm-1")),
            privilege_id: Some("Task.Update".into()),
        },
        FaultKind::NoPermission {
            object: None,
            privilege_id: None,
        },
        FaultKind::NotAuthenticated,
        FaultKind::InvalidState,
        FaultKind::OutOfBounds {
            argument_name: "percentDone".into(),
        },
        FaultKind::Other {
            type_name: "FileNotFound".into(),
        },
    ]
}

fn every_reason() -> Vec<TaskReason> {
    vec![
        TaskReason::User {
            user_name: "vsphere.local\\admin".into(),
        },
        TaskReason::System,
        TaskReason::Alarm {
            alarm_name: "cpu".into(),
            alarm: moref("Alarm", "alarm-1"),
            entity_name: "vm one".into(),
            entity: moref("VirtualMachine", "vm-1"),
        },
        TaskReason::Schedule {
            name: "nightly".into(),
            scheduled_task: moref("ScheduledTask", "schedule-2"),
        },
    ]
}

fn every_any_value() -> Vec<AnyValue> {
    vec![
        AnyValue::String("héllo".into()),
        AnyValue::String(String::new()),
        AnyValue::Long(i64::MIN),
        AnyValue::Long(0),
        AnyValue::Boolean(true),
        AnyValue::Boolean(false),
        AnyValue::Double(-0.5),
        AnyValue::Double(f64::INFINITY),
        AnyValue::DateTime(Timestamp::from_micros(-1)),
        AnyValue::MoRef(moref("Datastore", "datastore-3")),
        AnyValue::Json(r#"{"a":[1,2]}"#.into()),
    ]
}

fn message(key: &str) -> LocalizableMessage {
    LocalizableMessage {
        key: key.into(),
        arg: every_any_value()
            .into_iter()
            .enumerate()
            .map(|(i, value)| KeyAnyValue {
                key: format!("arg{i}"),
                value,
            })
            .collect(),
        message: Some("rendered".into()),
    }
}

fn minimal_info() -> TaskInfo {
    TaskInfo {
        key: TaskKey(1),
        description: None,
        name: None,
        description_id: String::new(),
        entity: None,
        entity_name: None,
        locked: Vec::new(),
        state: State::Queued,
        cancelled: false,
        cancelable: false,
        error: None,
        result: None,
        progress: None,
        progress_details: Vec::new(),
        reason: TaskReason::System,
        queue_time: Timestamp::from_micros(0),
        start_time: None,
        complete_time: None,
        event_chain_id: 0,
        change_tag: None,
        parent_task_key: None,
        root_task_key: None,
        activation_id: None,
    }
}

fn full_info() -> TaskInfo {
    TaskInfo {
        key: TaskKey(u64::MAX),
        description: Some(message("com.example.phase")),
        name: Some("PowerOnVM_Task".into()),
        description_id: "com.example.backup".into(),
        entity: Some(moref("VirtualMachine", "vm-42")),
        entity_name: Some("db01".into()),
        locked: vec![moref("HostSystem", "host-1"), moref("Datastore", "ds-2")],
        state: State::Error,
        cancelled: true,
        cancelable: true,
        error: Some(nested_fault()),
        result: Some(AnyValue::Long(7)),
        progress: Some(-3),
        progress_details: message("x").arg,
        reason: every_reason().pop().unwrap(),
        queue_time: Timestamp::from_micros(1_700_000_000_123_456),
        start_time: Some(Timestamp::from_micros(1_700_000_001_000_000)),
        complete_time: Some(Timestamp::from_micros(i64::MAX)),
        event_chain_id: i32::MIN,
        change_tag: Some(String::new()),
        parent_task_key: Some("task-3".into()),
        root_task_key: Some("task-1".into()),
        activation_id: Some("act-9".into()),
    }
}

fn nested_fault() -> MethodFault {
    MethodFault {
        kind: FaultKind::SystemError {
            reason: "outer".into(),
        },
        localized_message: None,
        fault_cause: Some(Box::new(MethodFault {
            kind: FaultKind::ManagedObjectNotFound {
                obj: moref("Folder", "group-d1"),
            },
            localized_message: Some("inner".into()),
            fault_cause: Some(Box::new(MethodFault::new(FaultKind::InvalidState))),
            fault_message: vec![message("cause.msg")],
        })),
        fault_message: vec![message("a"), message("b")],
    }
}

fn full_filter() -> TaskFilterSpec {
    TaskFilterSpec {
        entity: Some(FilterByEntity {
            entity: moref("VirtualMachine", "vm-1"),
            recursion: RecursionOption::Itself,
        }),
        time: Some(FilterByTime {
            time_type: TimeOption::CompletedTime,
            begin_time: Some(Timestamp::from_micros(-5)),
            end_time: Some(Timestamp::from_micros(5_000_001)),
        }),
        user_name: Some(FilterByUsername {
            system_user: true,
            user_list: vec!["alice".into(), "bob".into()],
        }),
        activation_id: vec!["a1".into(), "a2".into()],
        state: State::ALL.to_vec(),
        alarm: Some(moref("Alarm", "alarm-1")),
        scheduled_task: Some(moref("ScheduledTask", "schedule-1")),
        event_chain_id: vec![0, -1, i32::MAX],
        tag: vec![String::new(), "t".into()],
        parent_task_key: vec!["task-1".into()],
        root_task_key: vec!["task-1".into(), "task-2".into()],
    }
}

// ---------------------------------------------------------------------------
// Round trips of representative and edge values

#[test]
fn every_fault_kind_round_trips_with_and_without_message() {
    for kind in every_fault_kind() {
        check_round_trip::<_, v1::MethodFault>(MethodFault::new(kind.clone()));
        check_round_trip::<_, v1::MethodFault>(MethodFault {
            kind,
            localized_message: None,
            fault_cause: None,
            fault_message: Vec::new(),
        });
    }
}

#[test]
fn nested_fault_causes_and_messages_round_trip() {
    check_round_trip::<_, v1::MethodFault>(nested_fault());
}

#[test]
fn every_reason_kind_round_trips() {
    for reason in every_reason() {
        check_round_trip::<_, v1::TaskReason>(reason);
    }
}

#[test]
fn every_any_value_variant_round_trips() {
    for value in every_any_value() {
        check_round_trip::<_, v1::AnyValue>(value);
    }
}

#[test]
fn nan_double_stays_nan() {
    let back = round_trip::<_, v1::AnyValue>(AnyValue::Double(f64::NAN));
    assert!(
        matches!(back, AnyValue::Double(d) if d.is_nan()),
        "{back:?}"
    );
}

#[test]
fn key_any_value_and_localizable_message_round_trip() {
    check_round_trip::<_, v1::KeyAnyValue>(KeyAnyValue {
        key: String::new(),
        value: AnyValue::Boolean(false),
    });
    check_round_trip::<_, v1::LocalizableMessage>(message("k"));
    check_round_trip::<_, v1::LocalizableMessage>(LocalizableMessage {
        key: "bare".into(),
        arg: Vec::new(),
        message: None,
    });
}

#[test]
fn moref_round_trips() {
    check_round_trip::<_, v1::ManagedObjectReference>(moref("Task", "task-1"));
    check_round_trip::<_, v1::ManagedObjectReference>(MoRef::default());
}

#[test]
fn every_state_round_trips() {
    for state in State::ALL {
        assert_eq!(State::try_from(v1::TaskInfoState::from(state)), Ok(state));
    }
}

#[test]
fn task_info_with_every_optional_field_round_trips() {
    check_round_trip::<_, v1::TaskInfo>(full_info());
}

#[test]
fn task_info_with_no_optional_field_round_trips() {
    check_round_trip::<_, v1::TaskInfo>(minimal_info());
}

#[test]
fn task_info_carries_the_task_moref() {
    let proto = v1::TaskInfo::from(minimal_info());
    assert_eq!(
        proto.task,
        Some(v1::ManagedObjectReference {
            r#type: "Task".into(),
            value: "task-1".into(),
        })
    );
    // Derived, so a sender may leave it out.
    let without = v1::TaskInfo {
        task: None,
        ..proto
    };
    assert_eq!(TaskInfo::try_from(without), Ok(minimal_info()));
}

#[test]
fn filters_round_trip_full_empty_and_in_every_option() {
    check_round_trip::<_, v1::TaskFilterSpec>(full_filter());
    check_round_trip::<_, v1::TaskFilterSpec>(TaskFilterSpec::default());
    for recursion in [
        RecursionOption::Itself,
        RecursionOption::Children,
        RecursionOption::All,
    ] {
        check_round_trip::<_, v1::TaskFilterSpec>(TaskFilterSpec {
            entity: Some(FilterByEntity {
                entity: moref("Folder", "group-1"),
                recursion,
            }),
            ..TaskFilterSpec::default()
        });
    }
    for time_type in [
        TimeOption::QueuedTime,
        TimeOption::StartedTime,
        TimeOption::CompletedTime,
    ] {
        check_round_trip::<_, v1::TaskFilterSpec>(TaskFilterSpec {
            time: Some(FilterByTime {
                time_type,
                begin_time: None,
                end_time: None,
            }),
            user_name: Some(FilterByUsername::default()),
            ..TaskFilterSpec::default()
        });
    }
}

#[test]
fn create_task_arguments_round_trip() {
    let args = CreateTask {
        obj: moref("VirtualMachine", "vm-1"),
        entity_name: Some("vm one".into()),
        task_type_id: "com.example.backup".into(),
        initiated_by: Some("alice".into()),
        cancelable: true,
        parent_task_key: Some("task-1".into()),
        activation_id: Some("act".into()),
        change_tag: Some("tag".into()),
        lease_millis: Some(30_001),
    };
    check_round_trip::<_, v1::CreateTaskRequest>(args.clone());
    check_round_trip::<_, v1::CreateTaskRequest>(CreateTask {
        entity_name: None,
        initiated_by: None,
        parent_task_key: None,
        activation_id: None,
        change_tag: None,
        lease_millis: None,
        ..args.clone()
    });
    check_round_trip::<_, v1::CreateTaskRequest>(CreateTask {
        lease_millis: Some(u64::MAX),
        ..args.clone()
    });
    let request = v1::CreateTaskRequest::from(args.clone());
    assert_eq!(Command::try_from(request), Ok(Command::CreateTask(args)));
}

// ---------------------------------------------------------------------------
// Timestamps and durations

#[test]
fn timestamps_split_into_seconds_and_non_negative_nanos() {
    let cases = [
        (0, 0, 0),
        (1, 0, 1000),
        (-1, -1, 999_999_000),
        (1_500_000, 1, 500_000_000),
        (-1_500_000, -2, 500_000_000),
    ];
    for (micros, seconds, nanos) in cases {
        let proto = timestamp_to_proto(Timestamp::from_micros(micros));
        assert_eq!((proto.seconds, proto.nanos), (seconds, nanos), "{micros}");
        assert_eq!(
            timestamp_from_proto(&proto, "t"),
            Ok(Timestamp::from_micros(micros))
        );
    }
    for micros in [i64::MIN, i64::MAX] {
        let proto = timestamp_to_proto(Timestamp::from_micros(micros));
        assert_eq!(
            timestamp_from_proto(&proto, "t"),
            Ok(Timestamp::from_micros(micros))
        );
    }
}

#[test]
fn sub_microsecond_digits_are_dropped() {
    let proto = prost_types::Timestamp {
        seconds: 3,
        nanos: 1_999,
    };
    assert_eq!(
        timestamp_from_proto(&proto, "t"),
        Ok(Timestamp::from_micros(3_000_001))
    );
}

#[test]
fn unreadable_timestamps_are_refused() {
    let bad_nanos = prost_types::Timestamp {
        seconds: 0,
        nanos: -1,
    };
    assert_eq!(
        refused(timestamp_from_proto(&bad_nanos, "queueTime")),
        "queueTime.nanos"
    );
    let too_late = prost_types::Timestamp {
        seconds: i64::MAX,
        nanos: 0,
    };
    assert_eq!(refused(timestamp_from_proto(&too_late, "t")), "t");
}

#[test]
fn durations_convert_to_whole_milliseconds() {
    for millis in [0, 1, 999, 1000, 30_001, u64::MAX] {
        assert_eq!(
            duration_to_millis(&millis_to_duration(millis), "lease"),
            Ok(millis)
        );
    }
    let sub_milli = prost_types::Duration {
        seconds: 1,
        nanos: 1_999_999,
    };
    assert_eq!(duration_to_millis(&sub_milli, "lease"), Ok(1001));
    let negative = prost_types::Duration {
        seconds: -1,
        nanos: 0,
    };
    assert_eq!(refused(duration_to_millis(&negative, "lease")), "lease");
    let mixed_signs = prost_types::Duration {
        seconds: 1,
        nanos: -1,
    };
    assert_eq!(
        refused(duration_to_millis(&mixed_signs, "lease")),
        "lease.nanos"
    );
    let too_long = prost_types::Duration {
        seconds: i64::MAX,
        nanos: 0,
    };
    assert_eq!(refused(duration_to_millis(&too_long, "lease")), "lease");
}

// ---------------------------------------------------------------------------
// Task method requests → Command

fn header() -> Option<v1::RequestHeader> {
    Some(v1::RequestHeader {
        client_id: "client-1".into(),
        seq: 9,
    })
}

#[test]
fn cancel_task_request_becomes_a_command() {
    let request = v1::CancelTaskRequest {
        header: header(),
        task: "task-42".into(),
    };
    assert_eq!(
        Command::from(request),
        Command::CancelTask {
            task: "task-42".into()
        }
    );
}

#[test]
fn malformed_task_keys_pass_through_for_apply_to_judge() {
    let request = v1::CancelTaskRequest {
        header: None,
        task: "task-007".into(),
    };
    assert_eq!(Command::from(request).task(), Some("task-007"));
}

#[test]
fn update_progress_tells_absent_details_from_empty_ones() {
    let request = |details: Option<Vec<v1::KeyAnyValue>>, api_version: v1::ApiVersion| {
        v1::UpdateProgressRequest {
            header: header(),
            task: "task-1".into(),
            percent_done: 150,
            progress_details: details.map(|details| v1::ProgressDetails { details }),
            api_version: api_version as i32,
        }
    };
    let expect =
        |details: Option<Vec<KeyAnyValue>>, api_version: ApiVersion| Command::UpdateProgress {
            task: "task-1".into(),
            percent_done: 150,
            progress_details: details,
            api_version,
        };
    assert_eq!(
        Command::try_from(request(None, v1::ApiVersion::Unspecified)),
        Ok(expect(None, ApiVersion::Current))
    );
    assert_eq!(
        Command::try_from(request(Some(Vec::new()), v1::ApiVersion::Current)),
        Ok(expect(Some(Vec::new()), ApiVersion::Current))
    );
    let details = message("d").arg;
    assert_eq!(
        Command::try_from(request(
            Some(details.iter().cloned().map(Into::into).collect()),
            v1::ApiVersion::Vim25
        )),
        Ok(expect(Some(details), ApiVersion::Vim25))
    );
}

#[test]
fn api_versions_map_both_ways() {
    for version in [ApiVersion::Current, ApiVersion::Vim25] {
        assert_eq!(ApiVersion::from(v1::ApiVersion::from(version)), version);
    }
}

#[test]
fn set_task_state_request_becomes_a_command() {
    for (state, result, fault) in [
        (State::Running, None, None),
        (State::Success, Some(AnyValue::Json("{}".into())), None),
        (State::Error, None, Some(nested_fault())),
        // Wrong combinations convert: refusing them is apply's job (D2).
        (
            State::Queued,
            Some(AnyValue::Long(1)),
            Some(MethodFault::new(FaultKind::RequestCanceled)),
        ),
    ] {
        let request = v1::SetTaskStateRequest {
            header: header(),
            task: "task-5".into(),
            state: v1::TaskInfoState::from(state) as i32,
            result: result.clone().map(Into::into),
            fault: fault.clone().map(Into::into),
        };
        assert_eq!(
            Command::try_from(request),
            Ok(Command::SetTaskState {
                task: "task-5".into(),
                state,
                result,
                fault,
            })
        );
    }
}

#[test]
fn set_task_description_request_becomes_a_command() {
    let request = v1::SetTaskDescriptionRequest {
        header: header(),
        task: "task-5".into(),
        description: Some(message("phase.two").into()),
    };
    assert_eq!(
        Command::try_from(request),
        Ok(Command::SetTaskDescription {
            task: "task-5".into(),
            description: message("phase.two"),
        })
    );
}

// ---------------------------------------------------------------------------
// Refusals name the field

#[test]
fn task_info_refusals_name_the_field() {
    let good = || v1::TaskInfo::from(full_info());
    let cases: Vec<(v1::TaskInfo, &str)> = vec![
        (
            v1::TaskInfo {
                key: "task-0".into(),
                ..good()
            },
            "key",
        ),
        (
            v1::TaskInfo {
                key: "42".into(),
                ..good()
            },
            "key",
        ),
        (
            v1::TaskInfo {
                task: Some(v1::ManagedObjectReference {
                    r#type: "Task".into(),
                    value: "task-2".into(),
                }),
                ..good()
            },
            "task",
        ),
        (
            v1::TaskInfo {
                state: v1::TaskInfoState::Unspecified as i32,
                ..good()
            },
            "state",
        ),
        (
            v1::TaskInfo {
                state: 99,
                ..good()
            },
            "state",
        ),
        (
            v1::TaskInfo {
                reason: None,
                ..good()
            },
            "reason",
        ),
        (
            v1::TaskInfo {
                reason: Some(v1::TaskReason { kind: None }),
                ..good()
            },
            "reason.kind",
        ),
        (
            v1::TaskInfo {
                reason: Some(v1::TaskReason {
                    kind: Some(v1::task_reason::Kind::Schedule(v1::TaskReasonSchedule {
                        name: "n".into(),
                        scheduled_task: None,
                    })),
                }),
                ..good()
            },
            "reason.schedule.scheduledTask",
        ),
        (
            v1::TaskInfo {
                queue_time: None,
                ..good()
            },
            "queueTime",
        ),
        (
            v1::TaskInfo {
                start_time: Some(prost_types::Timestamp {
                    seconds: 0,
                    nanos: 1_000_000_000,
                }),
                ..good()
            },
            "startTime.nanos",
        ),
        (
            v1::TaskInfo {
                result: Some(v1::AnyValue { value: None }),
                ..good()
            },
            "result.value",
        ),
        (
            v1::TaskInfo {
                error: Some(v1::MethodFault::default()),
                ..good()
            },
            "error.kind",
        ),
        (
            v1::TaskInfo {
                progress_details: vec![
                    v1::KeyAnyValue::from(message("x").arg[0].clone()),
                    v1::KeyAnyValue {
                        key: "k".into(),
                        value: None,
                    },
                ],
                ..good()
            },
            "progressDetails[1].value",
        ),
        (
            v1::TaskInfo {
                description: Some(v1::LocalizableMessage {
                    key: "k".into(),
                    arg: vec![v1::KeyAnyValue {
                        key: "k".into(),
                        value: Some(v1::AnyValue { value: None }),
                    }],
                    message: None,
                }),
                ..good()
            },
            "description.arg[0].value.value",
        ),
    ];
    for (proto, path) in cases {
        assert_eq!(refused(TaskInfo::try_from(proto)), path);
    }
}

#[test]
fn fault_refusals_name_the_nested_field() {
    let mut proto = v1::MethodFault::from(nested_fault());
    let cause = proto.fault_cause.as_mut().unwrap();
    cause.kind = Some(v1::method_fault::Kind::ManagedObjectNotFound(
        v1::method_fault::ManagedObjectNotFound { obj: None },
    ));
    assert_eq!(
        refused(MethodFault::try_from(proto)),
        "faultCause.managedObjectNotFound.obj"
    );

    let mut proto = v1::MethodFault::from(nested_fault());
    proto
        .fault_cause
        .as_mut()
        .unwrap()
        .fault_cause
        .as_mut()
        .unwrap()
        .kind = None;
    assert_eq!(
        refused(MethodFault::try_from(proto)),
        "faultCause.faultCause.kind"
    );

    let request = v1::SetTaskStateRequest {
        header: header(),
        task: "task-1".into(),
        state: v1::TaskInfoState::Error as i32,
        result: None,
        fault: Some(v1::MethodFault {
            fault_message: vec![v1::LocalizableMessage {
                key: "k".into(),
                arg: vec![v1::KeyAnyValue {
                    key: "when".into(),
                    value: Some(v1::AnyValue {
                        value: Some(v1::any_value::Value::DateTimeValue(
                            prost_types::Timestamp {
                                seconds: 0,
                                nanos: -5,
                            },
                        )),
                    }),
                }],
                message: None,
            }],
            ..v1::MethodFault::from(MethodFault::new(FaultKind::InvalidState))
        }),
    };
    assert_eq!(
        refused(Command::try_from(request)),
        "fault.faultMessage[0].arg[0].value.dateTimeValue.nanos"
    );
}

#[test]
fn filter_refusals_name_the_field() {
    let good = || v1::TaskFilterSpec::from(full_filter());
    let mut no_entity = good();
    no_entity.entity.as_mut().unwrap().entity = None;
    let mut no_recursion = good();
    no_recursion.entity.as_mut().unwrap().recursion = 0;
    let mut no_time_type = good();
    no_time_type.time.as_mut().unwrap().time_type = 0;
    let mut unknown_time_type = good();
    unknown_time_type.time.as_mut().unwrap().time_type = 17;
    let mut bad_end = good();
    bad_end.time.as_mut().unwrap().end_time = Some(prost_types::Timestamp {
        seconds: i64::MIN,
        nanos: 0,
    });
    let mut bad_state = good();
    bad_state.state = vec![v1::TaskInfoState::Queued as i32, 0];
    let cases = [
        (no_entity, "entity.entity"),
        (no_recursion, "entity.recursion"),
        (no_time_type, "time.timeType"),
        (unknown_time_type, "time.timeType"),
        (bad_end, "time.endTime"),
        (bad_state, "state[1]"),
    ];
    for (proto, path) in cases {
        assert_eq!(refused(TaskFilterSpec::try_from(proto)), path);
    }
}

#[test]
fn request_refusals_name_the_field() {
    let create = v1::CreateTaskRequest::from(CreateTask {
        obj: moref("VirtualMachine", "vm-1"),
        task_type_id: "t".into(),
        ..CreateTask::default()
    });
    assert_eq!(
        refused(CreateTask::try_from(v1::CreateTaskRequest {
            obj: None,
            ..create.clone()
        })),
        "obj"
    );
    assert_eq!(
        refused(Command::try_from(v1::CreateTaskRequest {
            lease: Some(prost_types::Duration {
                seconds: -3,
                nanos: 0,
            }),
            ..create
        })),
        "lease"
    );
    assert_eq!(
        refused(Command::try_from(v1::SetTaskStateRequest {
            header: header(),
            task: "task-1".into(),
            state: v1::TaskInfoState::Unspecified as i32,
            result: None,
            fault: None,
        })),
        "state"
    );
    assert_eq!(
        refused(Command::try_from(v1::SetTaskDescriptionRequest {
            header: header(),
            task: "task-1".into(),
            description: None,
        })),
        "description"
    );
    assert_eq!(
        refused(Command::try_from(v1::UpdateProgressRequest {
            header: header(),
            task: "task-1".into(),
            percent_done: 1,
            progress_details: None,
            api_version: 3,
        })),
        "apiVersion"
    );
    assert_eq!(
        refused(Command::try_from(v1::UpdateProgressRequest {
            header: header(),
            task: "task-1".into(),
            percent_done: 1,
            progress_details: Some(v1::ProgressDetails {
                details: vec![v1::KeyAnyValue {
                    key: "k".into(),
                    value: None,
                }],
            }),
            api_version: 0,
        })),
        "progressDetails.details[0].value"
    );
    assert_eq!(
        refused(AnyValue::try_from(v1::AnyValue { value: None })),
        "value"
    );
    assert_eq!(
        refused(State::try_from(v1::TaskInfoState::Unspecified)),
        "state"
    );
}

// ---------------------------------------------------------------------------
// Faults in gRPC statuses

#[test]
fn fault_codes_follow_the_table() {
    use tonic::Code;
    let expect = |kind: &FaultKind| match kind.type_name() {
        "InvalidState" => Code::FailedPrecondition,
        "ManagedObjectNotFound" => Code::NotFound,
        "InvalidArgument" => Code::InvalidArgument,
        "OutOfBounds" => Code::OutOfRange,
        "NotSupported" => Code::Unimplemented,
        "NotAuthenticated" => Code::Unauthenticated,
        "NoPermission" | "SecurityError" => Code::PermissionDenied,
        "RequestCanceled" => Code::Cancelled,
        "SystemError" => Code::Internal,
        _ => Code::Unknown,
    };
    for kind in every_fault_kind() {
        assert_eq!(fault_code(&kind), expect(&kind), "{kind:?}");
    }
}

#[test]
fn every_fault_survives_a_status() {
    let mut faults: Vec<MethodFault> = every_fault_kind()
        .into_iter()
        .map(MethodFault::new)
        .collect();
    faults.push(nested_fault());
    for fault in faults {
        let status = fault_to_status(&fault);
        assert_eq!(status.code(), fault_code(&fault.kind));
        assert_eq!(status.message(), fault.message());
        assert_eq!(status_to_fault(&status), Some(fault));
    }
}

#[test]
fn a_fault_without_message_gets_the_standard_one_in_the_status() {
    let fault = MethodFault {
        kind: FaultKind::InvalidState,
        localized_message: None,
        fault_cause: None,
        fault_message: Vec::new(),
    };
    let status = fault_to_status(&fault);
    assert_eq!(
        status.message(),
        "The operation is not allowed in the current state."
    );
    // The fault itself travels as it was.
    assert_eq!(status_to_fault(&status), Some(fault));
}

#[test]
fn the_status_survives_the_trip_through_http_headers() {
    let fault = nested_fault();
    let mut headers = tonic::codegen::http::HeaderMap::new();
    fault_to_status(&fault)
        .add_header(&mut headers)
        .expect("encodes");
    let status = tonic::Status::from_header_map(&headers).expect("a status");
    assert_eq!(status_to_fault(&status), Some(fault));
}

#[test]
fn statuses_without_a_fault_give_none() {
    assert_eq!(
        status_to_fault(&tonic::Status::unavailable("no leader")),
        None
    );
    let garbage = tonic::Status::with_details(tonic::Code::Internal, "x", vec![0xff, 0x01].into());
    assert_eq!(status_to_fault(&garbage), None);
}

// ---------------------------------------------------------------------------
// Descriptor set

#[test]
fn descriptor_set_holds_every_file_and_its_imports() {
    let fds = prost_types::FileDescriptorSet::decode(vtask_proto::FILE_DESCRIPTOR_SET).unwrap();
    let names: Vec<&str> = fds.file.iter().map(|f| f.name()).collect();
    for name in [
        "vtask/v1/types.proto",
        "vtask/v1/fault.proto",
        "vtask/v1/task_info.proto",
        "vtask/v1/filter.proto",
        "vtask/v1/task.proto",
        "vtask/v1/task_manager.proto",
        "vtask/v1/cluster.proto",
        "vtask/raft/v1/raft.proto",
        "google/protobuf/timestamp.proto",
        "google/protobuf/duration.proto",
        "google/protobuf/empty.proto",
        "google/longrunning/operations.proto",
        "google/rpc/status.proto",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let services: Vec<String> = fds
        .file
        .iter()
        .flat_map(|f| {
            f.service
                .iter()
                .map(move |s| format!("{}.{}", f.package(), s.name()))
        })
        .collect();
    assert_eq!(
        services,
        [
            "google.longrunning.Operations",
            "vtask.raft.v1.RaftService",
            "vtask.v1.Cluster",
            "vtask.v1.Task",
            "vtask.v1.TaskManager",
        ],
    );
}

// ---------------------------------------------------------------------------
// Properties

fn arb_moref() -> impl Strategy<Value = MoRef> {
    ("[A-Za-z]{0,12}", "[a-z0-9-]{0,12}").prop_map(|(t, v)| MoRef::new(t, v))
}

fn arb_timestamp() -> impl Strategy<Value = Timestamp> {
    any::<i64>().prop_map(Timestamp::from_micros)
}

fn arb_any_value() -> impl Strategy<Value = AnyValue> {
    prop_oneof![
        any::<String>().prop_map(AnyValue::String),
        any::<i64>().prop_map(AnyValue::Long),
        any::<bool>().prop_map(AnyValue::Boolean),
        any::<f64>()
            .prop_filter("NaN is not equal to itself", |d| !d.is_nan())
            .prop_map(AnyValue::Double),
        arb_timestamp().prop_map(AnyValue::DateTime),
        arb_moref().prop_map(AnyValue::MoRef),
        any::<String>().prop_map(AnyValue::Json),
    ]
}

fn arb_key_any_values() -> impl Strategy<Value = Vec<KeyAnyValue>> {
    prop::collection::vec(
        (any::<String>(), arb_any_value()).prop_map(|(key, value)| KeyAnyValue { key, value }),
        0..4,
    )
}

fn arb_message() -> impl Strategy<Value = LocalizableMessage> {
    (
        any::<String>(),
        arb_key_any_values(),
        any::<Option<String>>(),
    )
        .prop_map(|(key, arg, message)| LocalizableMessage { key, arg, message })
}

fn arb_fault_kind() -> impl Strategy<Value = FaultKind> {
    prop_oneof![
        Just(FaultKind::NotSupported),
        Just(FaultKind::RequestCanceled),
        arb_moref().prop_map(|obj| FaultKind::ManagedObjectNotFound { obj }),
        any::<Option<String>>().prop_map(|p| FaultKind::InvalidArgument {
            invalid_property: p
        }),
        any::<String>().prop_map(|reason| FaultKind::SystemError { reason }),
        Just(FaultKind::SecurityError),
        (prop::option::of(arb_moref()), any::<Option<String>>()).prop_map(
            |(object, privilege_id)| FaultKind::NoPermission {
                object,
                privilege_id
            }
        ),
        Just(FaultKind::NotAuthenticated),
        Just(FaultKind::InvalidState),
        any::<String>().prop_map(|argument_name| FaultKind::OutOfBounds { argument_name }),
        any::<String>().prop_map(|type_name| FaultKind::Other { type_name }),
    ]
}

fn arb_fault() -> impl Strategy<Value = MethodFault> {
    let leaf = (
        arb_fault_kind(),
        any::<Option<String>>(),
        prop::collection::vec(arb_message(), 0..2),
    )
        .prop_map(|(kind, localized_message, fault_message)| MethodFault {
            kind,
            localized_message,
            fault_cause: None,
            fault_message,
        });
    leaf.prop_recursive(3, 6, 1, |inner| {
        (arb_fault_kind(), any::<Option<String>>(), inner).prop_map(
            |(kind, localized_message, cause)| MethodFault {
                kind,
                localized_message,
                fault_cause: Some(Box::new(cause)),
                fault_message: Vec::new(),
            },
        )
    })
}

fn arb_reason() -> impl Strategy<Value = TaskReason> {
    prop_oneof![
        any::<String>().prop_map(|user_name| TaskReason::User { user_name }),
        Just(TaskReason::System),
        (any::<String>(), arb_moref(), any::<String>(), arb_moref()).prop_map(
            |(alarm_name, alarm, entity_name, entity)| TaskReason::Alarm {
                alarm_name,
                alarm,
                entity_name,
                entity
            }
        ),
        (any::<String>(), arb_moref()).prop_map(|(name, scheduled_task)| TaskReason::Schedule {
            name,
            scheduled_task
        }),
    ]
}

fn arb_state() -> impl Strategy<Value = State> {
    prop::sample::select(State::ALL.to_vec())
}

prop_compose! {
    fn arb_task_info()(
        key in 1..=u64::MAX,
        description in prop::option::of(arb_message()),
        name in any::<Option<String>>(),
        description_id in any::<String>(),
        entity in prop::option::of(arb_moref()),
        entity_name in any::<Option<String>>(),
        locked in prop::collection::vec(arb_moref(), 0..3),
        state in arb_state(),
        (cancelled, cancelable) in any::<(bool, bool)>(),
        error in prop::option::of(arb_fault()),
        result in prop::option::of(arb_any_value()),
        progress in any::<Option<i32>>(),
        progress_details in arb_key_any_values(),
        reason in arb_reason(),
        queue_time in arb_timestamp(),
        start_time in prop::option::of(arb_timestamp()),
        complete_time in prop::option::of(arb_timestamp()),
        event_chain_id in any::<i32>(),
        change_tag in any::<Option<String>>(),
        parent_task_key in any::<Option<String>>(),
        root_task_key in any::<Option<String>>(),
        activation_id in any::<Option<String>>(),
    ) -> TaskInfo {
        TaskInfo {
            key: TaskKey(key), description, name, description_id, entity, entity_name, locked,
            state, cancelled, cancelable, error, result, progress, progress_details, reason,
            queue_time, start_time, complete_time, event_chain_id, change_tag,
            parent_task_key, root_task_key, activation_id,
        }
    }
}

prop_compose! {
    fn arb_filter()(
        entity in prop::option::of((arb_moref(), prop::sample::select(vec![
            RecursionOption::Itself, RecursionOption::Children, RecursionOption::All,
        ])).prop_map(|(entity, recursion)| FilterByEntity { entity, recursion })),
        time in prop::option::of((
            prop::sample::select(vec![
                TimeOption::QueuedTime, TimeOption::StartedTime, TimeOption::CompletedTime,
            ]),
            prop::option::of(arb_timestamp()),
            prop::option::of(arb_timestamp()),
        ).prop_map(|(time_type, begin_time, end_time)| FilterByTime { time_type, begin_time, end_time })),
        user_name in prop::option::of((any::<bool>(), any::<Vec<String>>())
            .prop_map(|(system_user, user_list)| FilterByUsername { system_user, user_list })),
        activation_id in any::<Vec<String>>(),
        state in prop::collection::vec(arb_state(), 0..5),
        alarm in prop::option::of(arb_moref()),
        scheduled_task in prop::option::of(arb_moref()),
        event_chain_id in any::<Vec<i32>>(),
        tag in any::<Vec<String>>(),
        parent_task_key in any::<Vec<String>>(),
        root_task_key in any::<Vec<String>>(),
    ) -> TaskFilterSpec {
        TaskFilterSpec {
            entity, time, user_name, activation_id, state, alarm, scheduled_task,
            event_chain_id, tag, parent_task_key, root_task_key,
        }
    }
}

proptest! {
    #[test]
    fn any_task_info_round_trips(info in arb_task_info()) {
        prop_assert_eq!(round_trip::<_, v1::TaskInfo>(info.clone()), info);
    }

    #[test]
    fn any_fault_round_trips_alone_and_in_a_status(fault in arb_fault()) {
        prop_assert_eq!(round_trip::<_, v1::MethodFault>(fault.clone()), fault.clone());
        prop_assert_eq!(status_to_fault(&fault_to_status(&fault)), Some(fault));
    }

    #[test]
    fn any_filter_round_trips(filter in arb_filter()) {
        prop_assert_eq!(round_trip::<_, v1::TaskFilterSpec>(filter.clone()), filter);
    }

    #[test]
    fn any_timestamp_round_trips(time in arb_timestamp()) {
        let proto = timestamp_to_proto(time);
        prop_assert!((0..1_000_000_000).contains(&proto.nanos));
        prop_assert_eq!(timestamp_from_proto(&proto, "t"), Ok(time));
    }

    #[test]
    fn any_lease_round_trips(millis in any::<u64>()) {
        prop_assert_eq!(duration_to_millis(&millis_to_duration(millis), "lease"), Ok(millis));
    }
}
