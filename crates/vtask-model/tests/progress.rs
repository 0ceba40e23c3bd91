//! UpdateProgress (spec §5): clamping (D28 current), OutOfBounds for callers
//! that speak VI API 2.5 (D28), progressDetails (D15), and the state rule.

mod common;

use common::*;
use vtask_model::AnyValue;

fn running() -> Vec<Step> {
    vec![create(), start(1)]
}

#[track_caller]
fn check_running(steps: &[Step], expect: &str) {
    let mut all = running();
    all.extend_from_slice(steps);
    check(
        &all,
        &format!("CreateTask -> task-1\nSetTaskState -> ok\n{expect}"),
    );
}

// spec §5 step 3, D28: below 0 becomes 0, never OutOfBounds.
#[test]
fn progress_below_zero_is_clamped_to_zero() {
    check_running(
        &[progress(1, -5)],
        "
        UpdateProgress -> ok
        task-1 state=running queue=1001 start=1002 progress=0 cancelled=false
        ",
    );
}

// spec §5 step 3, D28: above 100 becomes 100.
#[test]
fn progress_above_hundred_is_clamped_to_hundred() {
    check_running(
        &[progress(1, 150)],
        "
        UpdateProgress -> ok
        task-1 state=running queue=1001 start=1002 progress=100 cancelled=false
        ",
    );
}

// spec §5 step 3, D28: the extremes of i32 clamp too.
#[test]
fn progress_extremes_are_clamped() {
    check_running(
        &[progress(1, i32::MAX), progress(1, i32::MIN)],
        "
        UpdateProgress -> ok
        UpdateProgress -> ok
        task-1 state=running queue=1001 start=1002 progress=0 cancelled=false
        ",
    );
}

// spec §5 step 3: 0 and 100 are in range and kept.
#[test]
fn progress_bounds_are_kept() {
    check_running(
        &[progress(1, 100), progress(1, 0)],
        "
        UpdateProgress -> ok
        UpdateProgress -> ok
        task-1 state=running queue=1001 start=1002 progress=0 cancelled=false
        ",
    );
}

// D28: a VI API 2.5 caller gets OutOfBounds above 100, and nothing changes.
#[test]
fn vim25_progress_above_hundred_is_out_of_bounds() {
    check_running(
        &[progress(1, 20), progress_vim25(1, 101)],
        "
        UpdateProgress -> ok
        UpdateProgress -> OutOfBounds argumentName=percentDone
        task-1 state=running queue=1001 start=1002 progress=20 cancelled=false
        ",
    );
}

// D28: a VI API 2.5 caller gets OutOfBounds below 0.
#[test]
fn vim25_progress_below_zero_is_out_of_bounds() {
    check_running(
        &[progress_vim25(1, -1)],
        "
        UpdateProgress -> OutOfBounds argumentName=percentDone
        task-1 state=running queue=1001 start=1002 cancelled=false
        ",
    );
}

// D28: a VI API 2.5 caller with values in 0..100 is served as usual.
#[test]
fn vim25_progress_in_range_is_ok() {
    check_running(
        &[
            progress_vim25(1, 0),
            progress_vim25(1, 100),
            progress_vim25(1, 42),
        ],
        "
        UpdateProgress -> ok
        UpdateProgress -> ok
        UpdateProgress -> ok
        task-1 state=running queue=1001 start=1002 progress=42 cancelled=false
        ",
    );
}

// spec §5 step 2 before step 3: a queued task answers InvalidState even to an
// out-of-range VI API 2.5 value.
#[test]
fn state_check_comes_before_out_of_bounds() {
    check(
        &[create(), progress_vim25(1, 500)],
        "
        CreateTask -> task-1
        UpdateProgress -> InvalidState
        task-1 state=queued queue=1001 cancelled=false
        ",
    );
}

// spec §5 step 4: values may go down.
#[test]
fn progress_may_go_down() {
    check_running(
        &[progress(1, 80), progress(1, 30)],
        "
        UpdateProgress -> ok
        UpdateProgress -> ok
        task-1 state=running queue=1001 start=1002 progress=30 cancelled=false
        ",
    );
}

// D15: progressDetails are stored exactly as given.
#[test]
fn progress_details_are_stored_as_given() {
    check_running(
        &[progress_details(
            1,
            10,
            Some(vec![
                kv("phase", AnyValue::String("copy".into())),
                kv("bytes", AnyValue::Long(42)),
                kv("raw", AnyValue::Json(r#"{"a":[1,2]}"#.into())),
            ]),
        )],
        r#"
        UpdateProgress -> ok
        task-1 state=running queue=1001 start=1002 progress=10 cancelled=false details=[phase=string:"copy" bytes=long:42 raw=json:{"a":[1,2]}]
        "#,
    );
}

// D15: an UpdateProgress without details keeps the stored ones.
#[test]
fn progress_details_are_kept_when_none() {
    check_running(
        &[
            progress_details(
                1,
                10,
                Some(vec![kv("phase", AnyValue::String("copy".into()))]),
            ),
            progress(1, 20),
        ],
        r#"
        UpdateProgress -> ok
        UpdateProgress -> ok
        task-1 state=running queue=1001 start=1002 progress=20 cancelled=false details=[phase=string:"copy"]
        "#,
    );
}

// D15: new details replace the old ones; an empty list clears them.
#[test]
fn progress_details_are_replaced_when_given() {
    check_running(
        &[
            progress_details(
                1,
                10,
                Some(vec![kv("phase", AnyValue::String("copy".into()))]),
            ),
            progress_details(
                1,
                20,
                Some(vec![kv("phase", AnyValue::String("verify".into()))]),
            ),
        ],
        r#"
        UpdateProgress -> ok
        UpdateProgress -> ok
        task-1 state=running queue=1001 start=1002 progress=20 cancelled=false details=[phase=string:"verify"]
        "#,
    );
    check_running(
        &[
            progress_details(
                1,
                10,
                Some(vec![kv("phase", AnyValue::String("copy".into()))]),
            ),
            progress_details(1, 20, Some(vec![])),
        ],
        "
        UpdateProgress -> ok
        UpdateProgress -> ok
        task-1 state=running queue=1001 start=1002 progress=20 cancelled=false
        ",
    );
}

// D7: completion keeps progress and details.
#[test]
fn completion_keeps_progress_and_details() {
    check_running(
        &[
            progress_details(1, 70, Some(vec![kv("files", AnyValue::Long(3))])),
            succeed(1),
        ],
        "
        UpdateProgress -> ok
        SetTaskState -> ok
        task-1 state=success queue=1001 start=1002 complete=1004 progress=70 cancelled=false details=[files=long:3]
        ",
    );
}

// spec §3.2: UpdateProgress on a terminal task is InvalidState (both kinds).
#[test]
fn progress_on_terminal_task_is_invalid_state() {
    check(
        &[
            create(),
            start(1),
            succeed(1),
            progress(1, 50),
            create(),
            fail(2, disk_full()),
            progress(2, 50),
        ],
        r#"
        CreateTask -> task-1
        SetTaskState -> ok
        SetTaskState -> ok
        UpdateProgress -> InvalidState
        CreateTask -> task-2
        SetTaskState -> ok
        UpdateProgress -> InvalidState
        task-1 state=success queue=1001 start=1002 complete=1003 cancelled=false
        task-2 state=error queue=1005 complete=1006 cancelled=false error=SystemError "A general system error occurred: disk full"
        "#,
    );
}
