//! TaskFilterSpec (spec §8.1, D12, D21): every field, AND across fields, OR
//! within a list, and validate(). Tasks are built directly as TaskInfo values
//! so that every reason kind and timestamp combination can appear.

mod common;

use common::render_fault;
use vtask_model::{
    FilterByEntity, FilterByTime, FilterByUsername, MoRef, RecursionOption, State, TaskFilterSpec,
    TaskInfo, TaskKey, TaskReason, TimeOption,
};

/// A queued task `task-<n>` on vm-<n>, queued at `100 * n` seconds, created by alice.
fn task(n: u64) -> TaskInfo {
    TaskInfo {
        key: TaskKey(n),
        description: None,
        name: None,
        description_id: "com.example.backup".into(),
        entity: Some(MoRef::new("VirtualMachine", format!("vm-{n}"))),
        entity_name: None,
        locked: vec![],
        state: State::Queued,
        cancelled: false,
        cancelable: true,
        error: None,
        result: None,
        progress: None,
        progress_details: vec![],
        reason: TaskReason::User {
            user_name: "alice".into(),
        },
        queue_time: common::secs(100 * n as i64),
        start_time: None,
        complete_time: None,
        event_chain_id: n as i32,
        change_tag: None,
        parent_task_key: None,
        root_task_key: None,
        activation_id: None,
    }
}

fn with(n: u64, edit: impl FnOnce(&mut TaskInfo)) -> TaskInfo {
    let mut info = task(n);
    edit(&mut info);
    info
}

/// The keys of the tasks `filter` selects, or "(none)".
fn selected(filter: &TaskFilterSpec, tasks: &[TaskInfo]) -> String {
    let keys: Vec<String> = tasks
        .iter()
        .filter(|t| filter.matches(t))
        .map(|t| t.key.to_string())
        .collect();
    if keys.is_empty() {
        "(none)".into()
    } else {
        keys.join(" ")
    }
}

fn alarm_reason(alarm: &str) -> TaskReason {
    TaskReason::Alarm {
        alarm_name: format!("{alarm} name"),
        alarm: MoRef::new("Alarm", alarm),
        entity_name: "web-01".into(),
        entity: MoRef::new("VirtualMachine", "vm-1"),
    }
}

fn schedule_reason(scheduled: &str) -> TaskReason {
    TaskReason::Schedule {
        name: format!("{scheduled} name"),
        scheduled_task: MoRef::new("ScheduledTask", scheduled),
    }
}

fn user_reason(name: &str) -> TaskReason {
    TaskReason::User {
        user_name: name.into(),
    }
}

/// One task of every reason kind: 1 alice, 2 bob, 3 system, 4 alarm-1, 5 schedule-2.
fn by_reason() -> Vec<TaskInfo> {
    vec![
        with(1, |t| t.reason = user_reason("alice")),
        with(2, |t| t.reason = user_reason("bob")),
        with(3, |t| t.reason = TaskReason::System),
        with(4, |t| t.reason = alarm_reason("alarm-1")),
        with(5, |t| t.reason = schedule_reason("schedule-2")),
    ]
}

/// Tasks at every stage, for the time filter:
/// 1 queued@100; 2 running@200 start 250; 3 success@300 start 350 done 390;
/// 4 error@400 never started, done 420.
fn by_stage() -> Vec<TaskInfo> {
    vec![
        task(1),
        with(2, |t| {
            t.state = State::Running;
            t.start_time = Some(common::secs(250));
        }),
        with(3, |t| {
            t.state = State::Success;
            t.start_time = Some(common::secs(350));
            t.complete_time = Some(common::secs(390));
        }),
        with(4, |t| {
            t.state = State::Error;
            t.complete_time = Some(common::secs(420));
        }),
    ]
}

fn by_time(time_type: TimeOption, begin: Option<i64>, end: Option<i64>) -> TaskFilterSpec {
    TaskFilterSpec {
        time: Some(FilterByTime {
            time_type,
            begin_time: begin.map(common::secs),
            end_time: end.map(common::secs),
        }),
        ..TaskFilterSpec::default()
    }
}

fn by_user(system_user: bool, users: &[&str]) -> TaskFilterSpec {
    TaskFilterSpec {
        user_name: Some(FilterByUsername {
            system_user,
            user_list: users.iter().map(|u| u.to_string()).collect(),
        }),
        ..TaskFilterSpec::default()
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------

// spec §8.1: an empty filter selects every task.
#[test]
fn empty_filter_matches_all() {
    let filter = TaskFilterSpec::default();
    assert_eq!(
        selected(&filter, &by_reason()),
        "task-1 task-2 task-3 task-4 task-5"
    );
    assert_eq!(
        selected(&filter, &by_stage()),
        "task-1 task-2 task-3 task-4"
    );
    assert_eq!(filter.validate(), Ok(()));
}

// spec §8.1 entity, D12 recursion self: the entity, type and value, exactly.
#[test]
fn entity_self_matches_that_entity_only() {
    let tasks = vec![
        task(1),
        task(2),
        with(3, |t| t.entity = Some(MoRef::new("HostSystem", "vm-1"))),
        with(4, |t| t.entity = None),
        with(5, |t| t.entity = Some(MoRef::new("VirtualMachine", "vm-1"))),
    ];
    let filter = TaskFilterSpec {
        entity: Some(FilterByEntity {
            entity: MoRef::new("VirtualMachine", "vm-1"),
            recursion: RecursionOption::Itself,
        }),
        ..TaskFilterSpec::default()
    };
    assert_eq!(filter.validate(), Ok(()));
    assert_eq!(selected(&filter, &tasks), "task-1 task-5");
}

// D12: recursion children and all need an inventory: NotSupported.
#[test]
fn entity_recursion_beyond_self_is_not_supported() {
    for recursion in [RecursionOption::Children, RecursionOption::All] {
        let filter = TaskFilterSpec {
            entity: Some(FilterByEntity {
                entity: MoRef::new("Folder", "group-d1"),
                recursion,
            }),
            ..TaskFilterSpec::default()
        };
        let fault = filter.validate().unwrap_err();
        assert_eq!(render_fault(&fault), "NotSupported", "{recursion:?}");
        assert!(
            fault.message().contains("inventory"),
            "the message says why: {}",
            fault.message()
        );
    }
}

// D12: a malformed moref in the filter is InvalidArgument naming the field.
#[test]
fn malformed_filter_morefs_are_invalid_argument() {
    let cases = [
        (
            TaskFilterSpec {
                entity: Some(FilterByEntity {
                    entity: MoRef::new("", "vm-1"),
                    recursion: RecursionOption::Itself,
                }),
                ..TaskFilterSpec::default()
            },
            "InvalidArgument invalidProperty=filter.entity.entity.type",
        ),
        (
            TaskFilterSpec {
                entity: Some(FilterByEntity {
                    entity: MoRef::new("Folder", ""),
                    recursion: RecursionOption::Children,
                }),
                ..TaskFilterSpec::default()
            },
            "InvalidArgument invalidProperty=filter.entity.entity.value",
        ),
        (
            TaskFilterSpec {
                alarm: Some(MoRef::new("Alarm", "")),
                ..TaskFilterSpec::default()
            },
            "InvalidArgument invalidProperty=filter.alarm.value",
        ),
        (
            TaskFilterSpec {
                scheduled_task: Some(MoRef::new("", "schedule-1")),
                ..TaskFilterSpec::default()
            },
            "InvalidArgument invalidProperty=filter.scheduledTask.type",
        ),
    ];
    for (filter, expect) in cases {
        assert_eq!(render_fault(&filter.validate().unwrap_err()), expect);
    }
}

// spec §8.1 time, D21: queuedTime, bounds inclusive.
#[test]
fn time_queued_bounds_are_inclusive() {
    let tasks = by_stage();
    let cases = [
        (Some(200), Some(300), "task-2 task-3"),
        (Some(201), Some(299), "(none)"),
        (Some(100), Some(100), "task-1"),
        (Some(400), Some(100), "(none)"),
    ];
    for (begin, end, expect) in cases {
        let filter = by_time(TimeOption::QueuedTime, begin, end);
        assert_eq!(selected(&filter, &tasks), expect, "[{begin:?}, {end:?}]");
    }
}

// spec §8.1 time, D21: a missing bound is open.
#[test]
fn time_open_bounds() {
    let tasks = by_stage();
    let cases = [
        (Some(300), None, "task-3 task-4"),
        (None, Some(200), "task-1 task-2"),
        (None, None, "task-1 task-2 task-3 task-4"),
    ];
    for (begin, end, expect) in cases {
        let filter = by_time(TimeOption::QueuedTime, begin, end);
        assert_eq!(selected(&filter, &tasks), expect, "[{begin:?}, {end:?}]");
    }
}

// spec §8.1 time, D21: startedTime compares startTime (not queueTime, unlike
// vcsim); tasks that never started do not match while a bound is set.
#[test]
fn time_started_skips_tasks_that_never_started() {
    let tasks = by_stage();
    let cases = [
        (Some(0), None, "task-2 task-3"),
        (Some(250), Some(350), "task-2 task-3"),
        (Some(251), None, "task-3"),
        (None, Some(250), "task-2"),
        (None, None, "task-1 task-2 task-3 task-4"),
    ];
    for (begin, end, expect) in cases {
        let filter = by_time(TimeOption::StartedTime, begin, end);
        assert_eq!(selected(&filter, &tasks), expect, "[{begin:?}, {end:?}]");
    }
}

// spec §8.1 time, D21: completedTime compares completeTime; unfinished tasks
// do not match while a bound is set.
#[test]
fn time_completed_skips_unfinished_tasks() {
    let tasks = by_stage();
    let cases = [
        (Some(0), None, "task-3 task-4"),
        (Some(390), Some(390), "task-3"),
        (Some(391), Some(420), "task-4"),
        (None, Some(389), "(none)"),
        (None, None, "task-1 task-2 task-3 task-4"),
    ];
    for (begin, end, expect) in cases {
        let filter = by_time(TimeOption::CompletedTime, begin, end);
        assert_eq!(selected(&filter, &tasks), expect, "[{begin:?}, {end:?}]");
    }
}

// spec §8.1 userName "our reading", D21:
// (systemUser && System) || (User && (userList empty || name ∈ userList));
// alarm and schedule tasks never match a userName filter.
#[test]
fn user_name_filter() {
    let tasks = by_reason();
    let cases = [
        (true, &[][..], "task-1 task-2 task-3"),
        (false, &[][..], "task-1 task-2"),
        (true, &["bob"][..], "task-2 task-3"),
        (false, &["bob"][..], "task-2"),
        (false, &["bob", "alice"][..], "task-1 task-2"),
        (false, &["carol"][..], "(none)"),
        (true, &["carol"][..], "task-3"),
    ];
    for (system_user, users, expect) in cases {
        let filter = by_user(system_user, users);
        assert_eq!(
            selected(&filter, &tasks),
            expect,
            "systemUser={system_user} userList={users:?}"
        );
    }
}

// spec §8.1 activationId: OR within the list; a task without one never matches.
#[test]
fn activation_id_filter() {
    let tasks = vec![
        with(1, |t| t.activation_id = Some("a1".into())),
        with(2, |t| t.activation_id = Some("a2".into())),
        task(3),
    ];
    let cases = [
        (&["a1"][..], "task-1"),
        (&["a1", "a2"][..], "task-1 task-2"),
        (&["a3"][..], "(none)"),
        (&[""][..], "(none)"),
        (&[][..], "task-1 task-2 task-3"),
    ];
    for (ids, expect) in cases {
        let filter = TaskFilterSpec {
            activation_id: strings(ids),
            ..TaskFilterSpec::default()
        };
        assert_eq!(selected(&filter, &tasks), expect, "{ids:?}");
    }
}

// spec §8.1 state: OR within the list.
#[test]
fn state_filter() {
    let tasks = by_stage();
    let cases = [
        (vec![State::Queued], "task-1"),
        (vec![State::Running, State::Error], "task-2 task-4"),
        (vec![State::Success, State::Error], "task-3 task-4"),
        (State::ALL.to_vec(), "task-1 task-2 task-3 task-4"),
        (vec![], "task-1 task-2 task-3 task-4"),
    ];
    for (states, expect) in cases {
        let filter = TaskFilterSpec {
            state: states.clone(),
            ..TaskFilterSpec::default()
        };
        assert_eq!(selected(&filter, &tasks), expect, "{states:?}");
    }
}

// spec §8.1 alarm: TaskReasonAlarm with that alarm.
#[test]
fn alarm_filter() {
    let mut tasks = by_reason();
    tasks.push(with(6, |t| t.reason = alarm_reason("alarm-2")));
    let cases = [
        ("alarm-1", "task-4"),
        ("alarm-2", "task-6"),
        ("alarm-9", "(none)"),
    ];
    for (alarm, expect) in cases {
        let filter = TaskFilterSpec {
            alarm: Some(MoRef::new("Alarm", alarm)),
            ..TaskFilterSpec::default()
        };
        assert_eq!(filter.validate(), Ok(()));
        assert_eq!(selected(&filter, &tasks), expect, "{alarm}");
    }
}

// spec §8.1 scheduledTask: TaskReasonSchedule with that scheduled task.
#[test]
fn scheduled_task_filter() {
    let mut tasks = by_reason();
    tasks.push(with(6, |t| t.reason = schedule_reason("schedule-3")));
    let cases = [
        ("schedule-2", "task-5"),
        ("schedule-3", "task-6"),
        ("schedule-9", "(none)"),
    ];
    for (scheduled, expect) in cases {
        let filter = TaskFilterSpec {
            scheduled_task: Some(MoRef::new("ScheduledTask", scheduled)),
            ..TaskFilterSpec::default()
        };
        assert_eq!(filter.validate(), Ok(()));
        assert_eq!(selected(&filter, &tasks), expect, "{scheduled}");
    }
}

// spec §8.1 eventChainId: OR within the list.
#[test]
fn event_chain_id_filter() {
    let tasks = by_stage();
    let cases = [
        (vec![2], "task-2"),
        (vec![1, 4], "task-1 task-4"),
        (vec![9], "(none)"),
    ];
    for (ids, expect) in cases {
        let filter = TaskFilterSpec {
            event_chain_id: ids.clone(),
            ..TaskFilterSpec::default()
        };
        assert_eq!(selected(&filter, &tasks), expect, "{ids:?}");
    }
}

// spec §8.1 tag, D14: changeTag ∈ list; "" also selects untagged tasks.
#[test]
fn tag_filter() {
    let tasks = vec![
        with(1, |t| t.change_tag = Some("x".into())),
        with(2, |t| t.change_tag = Some("y".into())),
        task(3),
    ];
    let cases = [
        (&["x"][..], "task-1"),
        (&[""][..], "task-3"),
        (&["x", ""][..], "task-1 task-3"),
        (&["x", "y"][..], "task-1 task-2"),
        (&["z"][..], "(none)"),
    ];
    for (tags, expect) in cases {
        let filter = TaskFilterSpec {
            tag: strings(tags),
            ..TaskFilterSpec::default()
        };
        assert_eq!(selected(&filter, &tasks), expect, "{tags:?}");
    }
}

// spec §8.1 parentTaskKey and rootTaskKey: ∈ list; unset never matches.
#[test]
fn parent_and_root_key_filters() {
    let tasks = vec![
        task(1),
        with(2, |t| {
            t.parent_task_key = Some("task-1".into());
            t.root_task_key = Some("task-1".into());
        }),
        with(3, |t| {
            t.parent_task_key = Some("task-2".into());
            t.root_task_key = Some("task-1".into());
        }),
    ];
    let parent = |keys: &[&str]| TaskFilterSpec {
        parent_task_key: strings(keys),
        ..TaskFilterSpec::default()
    };
    let root = |keys: &[&str]| TaskFilterSpec {
        root_task_key: strings(keys),
        ..TaskFilterSpec::default()
    };
    assert_eq!(selected(&parent(&["task-1"]), &tasks), "task-2");
    assert_eq!(
        selected(&parent(&["task-2", "task-1"]), &tasks),
        "task-2 task-3"
    );
    assert_eq!(selected(&parent(&["task-3"]), &tasks), "(none)");
    assert_eq!(selected(&root(&["task-1"]), &tasks), "task-2 task-3");
    assert_eq!(selected(&root(&["task-2"]), &tasks), "(none)");
}

// spec §8.1: fields combine with AND.
#[test]
fn fields_combine_with_and() {
    let tasks = vec![
        with(1, |t| {
            t.state = State::Running;
            t.change_tag = Some("x".into());
        }),
        with(2, |t| {
            t.state = State::Running;
            t.change_tag = Some("y".into());
        }),
        with(3, |t| {
            t.state = State::Queued;
            t.change_tag = Some("x".into());
        }),
        with(4, |t| {
            t.state = State::Running;
            t.change_tag = Some("x".into());
            t.reason = user_reason("bob");
        }),
    ];
    let filter = TaskFilterSpec {
        state: vec![State::Running],
        tag: strings(&["x"]),
        user_name: Some(FilterByUsername {
            system_user: false,
            user_list: strings(&["alice"]),
        }),
        time: Some(FilterByTime {
            time_type: TimeOption::QueuedTime,
            begin_time: None,
            end_time: Some(common::secs(400)),
        }),
        ..TaskFilterSpec::default()
    };
    assert_eq!(selected(&filter, &tasks), "task-1");
}

/// A change to one field of a task.
type Edit = Box<dyn Fn(&mut TaskInfo)>;

// spec §8.1: every field set at once, each satisfied by exactly one task.
#[test]
fn every_field_at_once() {
    let target = with(7, |t| {
        t.entity = Some(MoRef::new("VirtualMachine", "vm-7"));
        t.reason = alarm_reason("alarm-7");
        t.activation_id = Some("act".into());
        t.state = State::Running;
        t.start_time = Some(common::secs(750));
        t.change_tag = Some("x".into());
        t.parent_task_key = Some("task-5".into());
        t.root_task_key = Some("task-4".into());
    });
    let filter = TaskFilterSpec {
        entity: Some(FilterByEntity {
            entity: MoRef::new("VirtualMachine", "vm-7"),
            recursion: RecursionOption::Itself,
        }),
        time: Some(FilterByTime {
            time_type: TimeOption::StartedTime,
            begin_time: Some(common::secs(750)),
            end_time: Some(common::secs(750)),
        }),
        user_name: None,
        activation_id: strings(&["act"]),
        state: vec![State::Running],
        alarm: Some(MoRef::new("Alarm", "alarm-7")),
        scheduled_task: None,
        event_chain_id: vec![7],
        tag: strings(&["x"]),
        parent_task_key: strings(&["task-5"]),
        root_task_key: strings(&["task-4"]),
    };
    assert_eq!(filter.validate(), Ok(()));
    let mut tasks = vec![target.clone()];
    // One task per field that differs from the target in that field only.
    let edits: Vec<Edit> = vec![
        Box::new(|t| t.entity = Some(MoRef::new("VirtualMachine", "vm-8"))),
        Box::new(|t| t.start_time = Some(common::secs(751))),
        Box::new(|t| t.activation_id = None),
        Box::new(|t| t.state = State::Queued),
        Box::new(|t| t.reason = alarm_reason("alarm-8")),
        Box::new(|t| t.event_chain_id = 8),
        Box::new(|t| t.change_tag = None),
        Box::new(|t| t.parent_task_key = None),
        Box::new(|t| t.root_task_key = Some("task-5".into())),
    ];
    for (i, edit) in edits.iter().enumerate() {
        let mut other = target.clone();
        other.key = TaskKey(10 + i as u64);
        edit(&mut other);
        tasks.push(other);
    }
    assert_eq!(selected(&filter, &tasks), "task-7");
}
