//! Bad input gets the documented fault and changes nothing (spec §3.4, §12;
//! D2, D3, D10, D12, D15). The harness also asserts, for every fault reply,
//! that the table is exactly as before; the final task line shows it too.

mod common;

use common::*;
use vtask_model::{
    validate::{self, MAX_FAULT_DEPTH, MAX_LIST_LEN, MAX_TEXT_LEN},
    AnyValue, FaultKind, LocalizableMessage, MethodFault, MoRef, State,
};

/// A running task-1 with progress 10 and a description, then `steps`.
#[track_caller]
fn check_running(steps: &[Step], expect: &str) {
    let mut all = vec![create(), start(1), progress(1, 10), describe(1, "phase.a")];
    all.extend_from_slice(steps);
    check(
        &all,
        &format!(
            "CreateTask -> task-1\nSetTaskState -> ok\nUpdateProgress -> ok\nSetTaskDescription -> ok\n{expect}\n\
             task-1 state=running queue=1001 start=1002 progress=10 cancelled=false desc=phase.a"
        ),
    );
}

// D2: a fault with state success.
#[test]
fn fault_with_state_success_changes_nothing() {
    check_running(
        &[set_state(1, State::Success, None, Some(disk_full()))],
        "SetTaskState -> InvalidState",
    );
}

// validate: a JSON result must be valid JSON.
#[test]
fn invalid_json_result_is_invalid_argument() {
    check_running(
        &[
            succeed_with(1, AnyValue::Json("{not json".into())),
            succeed_with(1, AnyValue::Json(String::new())),
            succeed_with(1, AnyValue::Json("[1,2".into())),
        ],
        "
        SetTaskState -> InvalidArgument invalidProperty=result
        SetTaskState -> InvalidArgument invalidProperty=result
        SetTaskState -> InvalidArgument invalidProperty=result
        ",
    );
}

// validate: a double result must be finite.
#[test]
fn non_finite_double_result_is_invalid_argument() {
    check_running(
        &[
            succeed_with(1, AnyValue::Double(f64::NAN)),
            succeed_with(1, AnyValue::Double(f64::INFINITY)),
            succeed_with(1, AnyValue::Double(f64::NEG_INFINITY)),
        ],
        "
        SetTaskState -> InvalidArgument invalidProperty=result
        SetTaskState -> InvalidArgument invalidProperty=result
        SetTaskState -> InvalidArgument invalidProperty=result
        ",
    );
}

// validate: string and JSON results are at most MAX_TEXT_LEN bytes.
#[test]
fn too_long_result_is_invalid_argument() {
    let long = "x".repeat(MAX_TEXT_LEN + 1);
    check_running(
        &[
            succeed_with(1, AnyValue::String(long.clone())),
            succeed_with(1, AnyValue::Json(format!("\"{}\"", long))),
        ],
        "
        SetTaskState -> InvalidArgument invalidProperty=result
        SetTaskState -> InvalidArgument invalidProperty=result
        ",
    );
}

// validate: a result of exactly MAX_TEXT_LEN bytes and every other kind pass.
#[test]
fn well_formed_results_are_accepted() {
    let results = [
        AnyValue::String("x".repeat(MAX_TEXT_LEN)),
        AnyValue::Long(i64::MIN),
        AnyValue::Boolean(false),
        AnyValue::Double(-0.5),
        AnyValue::DateTime(secs(0)),
        AnyValue::MoRef(MoRef::new("VirtualMachine", "vm-9")),
        AnyValue::Json("null".into()),
        AnyValue::Json(r#"{"disks":[{"id":1}]}"#.into()),
    ];
    for result in results {
        let (_, replies) = run(&[create(), succeed_with(1, result.clone())]);
        assert!(replies[1].is_ok(), "{result:?}: {:?}", replies[1]);
    }
}

// D12 applied to results: a moref result must be well formed.
#[test]
fn malformed_moref_result_is_invalid_argument() {
    check_running(
        &[
            succeed_with(1, AnyValue::MoRef(MoRef::new("", "vm-1"))),
            succeed_with(1, AnyValue::MoRef(MoRef::new("VirtualMachine", ""))),
        ],
        "
        SetTaskState -> InvalidArgument invalidProperty=result.type
        SetTaskState -> InvalidArgument invalidProperty=result.value
        ",
    );
}

// spec §6.1: LocalizableMessage.key is required.
#[test]
fn empty_description_key_is_invalid_argument() {
    check_running(
        &[describe(1, "")],
        "SetTaskDescription -> InvalidArgument invalidProperty=description.key",
    );
}

// validate: a description's arguments and message are checked like any value.
#[test]
fn malformed_description_is_invalid_argument() {
    let with_args = |arg| LocalizableMessage {
        key: "k".into(),
        arg,
        message: None,
    };
    check_running(
        &[
            describe_with(1, with_args(vec![kv("", AnyValue::Long(1))])),
            describe_with(
                1,
                with_args(vec![kv("n", AnyValue::Long(1)); MAX_LIST_LEN + 1]),
            ),
            describe_with(1, with_args(vec![kv("d", AnyValue::Double(f64::NAN))])),
            describe_with(
                1,
                LocalizableMessage {
                    key: "k".into(),
                    arg: vec![],
                    message: Some("m".repeat(MAX_TEXT_LEN + 1)),
                },
            ),
        ],
        "
        SetTaskDescription -> InvalidArgument invalidProperty=description.arg.key
        SetTaskDescription -> InvalidArgument invalidProperty=description.arg
        SetTaskDescription -> InvalidArgument invalidProperty=description.arg.value
        SetTaskDescription -> InvalidArgument invalidProperty=description.message
        ",
    );
}

// D15: progressDetails are stored as given, but must be well formed; a bad
// list leaves progress too unchanged.
#[test]
fn malformed_progress_details_are_invalid_argument() {
    check_running(
        &[
            progress_details(1, 50, Some(vec![kv("", AnyValue::Long(1))])),
            progress_details(
                1,
                50,
                Some(vec![kv("n", AnyValue::Long(1)); MAX_LIST_LEN + 1]),
            ),
            progress_details(1, 50, Some(vec![kv("j", AnyValue::Json("{".into()))])),
        ],
        "
        UpdateProgress -> InvalidArgument invalidProperty=progressDetails.key
        UpdateProgress -> InvalidArgument invalidProperty=progressDetails
        UpdateProgress -> InvalidArgument invalidProperty=progressDetails.value
        ",
    );
}

// D3: any fault type, but well formed: the names in it are checked.
#[test]
fn malformed_faults_are_invalid_argument() {
    let mut long_message = disk_full();
    long_message.localized_message = Some("m".repeat(MAX_TEXT_LEN + 1));
    let mut bad_fault_message = disk_full();
    bad_fault_message.fault_message = vec![LocalizableMessage {
        key: String::new(),
        arg: vec![],
        message: None,
    }];
    check_running(
        &[
            fail(
                1,
                bare(FaultKind::Other {
                    type_name: "File NotFound".into(),
                }),
            ),
            fail(
                1,
                bare(FaultKind::Other {
                    type_name: String::new(),
                }),
            ),
            fail(
                1,
                bare(FaultKind::ManagedObjectNotFound {
                    obj: MoRef::new("", ""),
                }),
            ),
            fail(
                1,
                bare(FaultKind::OutOfBounds {
                    argument_name: String::new(),
                }),
            ),
            fail(
                1,
                bare(FaultKind::InvalidArgument {
                    invalid_property: Some(String::new()),
                }),
            ),
            fail(
                1,
                bare(FaultKind::NoPermission {
                    object: Some(MoRef::new("Folder", "")),
                    privilege_id: None,
                }),
            ),
            fail(1, long_message),
            fail(1, bad_fault_message),
        ],
        "
        SetTaskState -> InvalidArgument invalidProperty=fault._typeName
        SetTaskState -> InvalidArgument invalidProperty=fault._typeName
        SetTaskState -> InvalidArgument invalidProperty=fault.obj.type
        SetTaskState -> InvalidArgument invalidProperty=fault.argumentName
        SetTaskState -> InvalidArgument invalidProperty=fault.invalidProperty
        SetTaskState -> InvalidArgument invalidProperty=fault.object.value
        SetTaskState -> InvalidArgument invalidProperty=fault.localizedMessage
        SetTaskState -> InvalidArgument invalidProperty=fault.faultMessage.key
        ",
    );
}

/// An unmodelled fault named `name`.
fn other(name: &str) -> MethodFault {
    bare(FaultKind::Other {
        type_name: name.into(),
    })
}

// D3: `Other` never stands for a modelled kind, nor carries a namespace
// prefix: such a fault would read back from JSON as a different value.
#[test]
fn other_fault_with_a_modelled_or_prefixed_name_is_invalid_argument() {
    let mut nested = disk_full();
    nested.fault_cause = Some(Box::new(other("InvalidState")));
    check_running(
        &[
            fail(1, other("InvalidState")),
            fail(1, other("NotSupported")),
            fail(1, other("ManagedObjectNotFound")),
            fail(1, other("SystemError")),
            fail(1, other("OutOfBounds")),
            fail(1, other("vim.fault.InvalidState")),
            fail(1, other("vmodl.fault.FileNotFound")),
            fail(1, other("vim.fault.FileNotFound")),
            fail(1, nested),
        ],
        "
        SetTaskState -> InvalidArgument invalidProperty=fault._typeName
        SetTaskState -> InvalidArgument invalidProperty=fault._typeName
        SetTaskState -> InvalidArgument invalidProperty=fault._typeName
        SetTaskState -> InvalidArgument invalidProperty=fault._typeName
        SetTaskState -> InvalidArgument invalidProperty=fault._typeName
        SetTaskState -> InvalidArgument invalidProperty=fault._typeName
        SetTaskState -> InvalidArgument invalidProperty=fault._typeName
        SetTaskState -> InvalidArgument invalidProperty=fault._typeName
        SetTaskState -> InvalidArgument invalidProperty=fault.faultCause._typeName
        ",
    );
    // Every modelled name is refused, and the message says what to send.
    for name in FaultKind::MODELLED_TYPE_NAMES {
        let fault = validate::fault("fault", &other(name)).unwrap_err();
        assert_eq!(
            fault.kind,
            FaultKind::InvalidArgument {
                invalid_property: Some("fault._typeName".into())
            }
        );
        let message = fault.message();
        assert!(
            message.contains(&format!("use the modelled kind {name}")),
            "{message}"
        );
    }
    let message = validate::fault("fault", &other("vim.fault.FileNotFound"))
        .unwrap_err()
        .message();
    assert!(message.contains("short name \"FileNotFound\""), "{message}");
    // The modelled kinds themselves, and other names, are fine.
    for name in FaultKind::MODELLED_TYPE_NAMES {
        let kind = FaultKind::from_type_name(name);
        if !matches!(kind, FaultKind::Other { .. }) {
            assert_eq!(validate::fault("fault", &bare(kind)), Ok(()), "{name}");
        }
    }
    for name in ["FileNotFound", "InvalidStateFault", "vim.InvalidState"] {
        assert_eq!(validate::fault("fault", &other(name)), Ok(()), "{name}");
    }
}

/// A fault with `depth` faults in its cause chain (itself included).
fn chain(depth: usize) -> MethodFault {
    let mut fault = bare(FaultKind::RequestCanceled);
    for _ in 1..depth {
        let mut outer = disk_full();
        outer.fault_cause = Some(Box::new(fault));
        fault = outer;
    }
    fault
}

// validate: fault causes may nest MAX_FAULT_DEPTH deep, not deeper.
#[test]
fn fault_cause_depth_is_limited() {
    let (_, replies) = run(&[create(), fail(1, chain(MAX_FAULT_DEPTH))]);
    assert!(replies[1].is_ok(), "{:?}", replies[1]);
    let causes = ".faultCause".repeat(MAX_FAULT_DEPTH);
    check_running(
        &[fail(1, chain(MAX_FAULT_DEPTH + 1))],
        &format!("SetTaskState -> InvalidArgument invalidProperty=fault{causes}"),
    );
}

// spec §3.4 order: the D2 checks run before the fault is validated, and the
// fault before the result.
#[test]
fn state_rules_come_before_value_checks() {
    let bad_fault = bare(FaultKind::Other {
        type_name: "bad name".into(),
    });
    check_running(
        &[
            set_state(1, State::Success, None, Some(bad_fault.clone())),
            set_state(
                1,
                State::Error,
                Some(AnyValue::Json("{".into())),
                Some(bad_fault),
            ),
        ],
        "
        SetTaskState -> InvalidState
        SetTaskState -> InvalidState
        ",
    );
}

// spec §1, D16: malformed task keys are ManagedObjectNotFound, for every method.
#[test]
fn malformed_task_keys_are_not_found() {
    check_running(
        &[
            cancel("task-01"),
            progress("Task-1", 5),
            describe("1", "x"),
            state("task-", State::Running),
            cancel(""),
        ],
        "
        CancelTask -> ManagedObjectNotFound obj=Task:task-01
        UpdateProgress -> ManagedObjectNotFound obj=Task:Task-1
        SetTaskDescription -> ManagedObjectNotFound obj=Task:1
        SetTaskState -> ManagedObjectNotFound obj=Task:task-
        CancelTask -> ManagedObjectNotFound obj=Task:
        ",
    );
}
