//! Task history collectors (spec §8.2, D18–D24), step by step: the cursor,
//! the latest page, ownership and idle expiry.

mod common;

use common::*;
use vtask_model::{Command, State, TaskFilterSpec, DEFAULT_COLLECTOR_IDLE_MILLIS};

fn collect(filter: TaskFilterSpec) -> Step {
    Step::new(Command::CreateCollector {
        filter,
        max_per_owner: 2,
    })
}

fn all() -> Step {
    collect(TaskFilterSpec::default())
}

fn in_state(states: &[State]) -> Step {
    collect(TaskFilterSpec {
        state: states.to_vec(),
        ..TaskFilterSpec::default()
    })
}

fn next(max_count: i32) -> Step {
    Step::new(Command::ReadNextTasks {
        collector: "collector-1".into(),
        max_count,
    })
}

fn previous(max_count: i32) -> Step {
    Step::new(Command::ReadPreviousTasks {
        collector: "collector-1".into(),
        max_count,
    })
}

fn rewind() -> Step {
    Step::new(Command::RewindCollector {
        collector: "collector-1".into(),
    })
}

fn reset() -> Step {
    Step::new(Command::ResetCollector {
        collector: "collector-1".into(),
    })
}

fn page_size(max_count: i32) -> Step {
    Step::new(Command::SetCollectorPageSize {
        collector: "collector-1".into(),
        max_count,
    })
}

fn destroy(name: &str) -> Step {
    Step::new(Command::DestroyCollector {
        collector: name.into(),
    })
}

fn expire_idle(idle_millis: u64) -> Step {
    Step::new(Command::ExpireCollectors { idle_millis }).by(system())
}

/// Five created tasks, task-1..task-5.
fn five() -> Vec<Step> {
    vec![create(), create(), create(), create(), create()]
}

fn with(mut steps: Vec<Step>, more: Vec<Step>) -> Vec<Step> {
    steps.extend(more);
    steps
}

// spec §8.2: a new collector is rewound; ReadNext walks oldest → newest and
// an empty read means the end.
#[test]
fn read_next_walks_from_the_oldest_to_the_end() {
    let steps = with(five(), vec![all(), next(2), next(2), next(2), next(2)]);
    let (_, replies) = run(&steps);
    let lines: Vec<String> = steps[5..]
        .iter()
        .zip(&replies[5..])
        .map(|(s, r)| render_reply(View::default(), &s.command, r))
        .collect();
    assert_eq!(
        lines,
        [
            "CreateCollectorForTasks -> collector-1 page [task-5 task-4 task-3 task-2 task-1]",
            "ReadNextTasks -> [task-1 task-2]",
            "ReadNextTasks -> [task-3 task-4]",
            "ReadNextTasks -> [task-5]",
            "ReadNextTasks -> []",
        ]
    );
}

/// The replies of the steps after the first `skip`, one line each.
#[track_caller]
fn replies_after(skip: usize, steps: &[Step]) -> Vec<String> {
    let (_, replies) = run(steps);
    steps[skip..]
        .iter()
        .zip(&replies[skip..])
        .map(|(s, r)| render_reply(View::default(), &s.command, r))
        .collect()
}

// spec §8.2: ReadPrevious walks back newest → oldest from the cursor; an
// empty read means the head.
#[test]
fn read_previous_walks_back_to_the_head() {
    let steps = with(
        five(),
        vec![all(), next(4), previous(3), previous(3), previous(3)],
    );
    assert_eq!(
        replies_after(6, &steps),
        [
            "ReadNextTasks -> [task-1 task-2 task-3 task-4]",
            "ReadPreviousTasks -> [task-4 task-3 task-2]",
            "ReadPreviousTasks -> [task-1]",
            "ReadPreviousTasks -> []",
        ]
    );
}

// spec §8.2: the collector is live: tasks created later are read at the end.
#[test]
fn tasks_created_later_are_read_next() {
    let steps = vec![create(), all(), next(10), next(10), create(), next(10)];
    assert_eq!(
        replies_after(2, &steps),
        [
            "ReadNextTasks -> [task-1]",
            "ReadNextTasks -> []",
            "CreateTask -> task-2",
            "ReadNextTasks -> [task-2]",
        ]
    );
}

// spec §8.2: RewindCollector goes back before the oldest.
#[test]
fn rewind_starts_over() {
    let steps = with(five(), vec![all(), next(3), rewind(), next(1)]);
    assert_eq!(
        replies_after(7, &steps),
        ["RewindCollector -> ok", "ReadNextTasks -> [task-1]"]
    );
}

// D20: ResetCollector puts the cursor just before the latest page, so
// ReadNext returns the page's tasks (oldest first) and ReadPrevious what is
// older than the page.
#[test]
fn reset_goes_to_just_before_the_latest_page() {
    let steps = with(
        five(),
        vec![
            all(),
            page_size(2),
            reset(),
            next(10),
            reset(),
            previous(10),
        ],
    );
    assert_eq!(
        replies_after(5, &steps),
        [
            "CreateCollectorForTasks -> collector-1 page [task-5 task-4 task-3 task-2 task-1]",
            "SetCollectorPageSize -> [task-5 task-4]",
            "ResetCollector -> ok",
            "ReadNextTasks -> [task-4 task-5]",
            "ResetCollector -> ok",
            "ReadPreviousTasks -> [task-3 task-2 task-1]",
        ]
    );
}

// D19: 0 means the default (10); a new size rewinds the cursor.
#[test]
fn page_size_zero_means_ten_and_a_new_size_rewinds() {
    let mut steps = Vec::new();
    for _ in 0..12 {
        steps.push(create());
    }
    steps.extend([all(), next(5), page_size(0), next(1)]);
    assert_eq!(
        replies_after(12, &steps),
        [
            "CreateCollectorForTasks -> collector-1 page [task-12 task-11 task-10 task-9 task-8 task-7 task-6 task-5 task-4 task-3]",
            "ReadNextTasks -> [task-1 task-2 task-3 task-4 task-5]",
            "SetCollectorPageSize -> [task-12 task-11 task-10 task-9 task-8 task-7 task-6 task-5 task-4 task-3]",
            "ReadNextTasks -> [task-1]",
        ]
    );
}

// D19 and spec §8.2: counts out of range are InvalidArgument naming maxCount,
// and change nothing.
#[test]
fn counts_out_of_range_are_invalid_arguments() {
    let steps = vec![
        create(),
        all(),
        next(0),
        next(-1),
        previous(1001),
        page_size(-1),
        page_size(1001),
        next(1000),
    ];
    assert_eq!(
        replies_after(2, &steps),
        [
            "ReadNextTasks -> InvalidArgument invalidProperty=maxCount",
            "ReadNextTasks -> InvalidArgument invalidProperty=maxCount",
            "ReadPreviousTasks -> InvalidArgument invalidProperty=maxCount",
            "SetCollectorPageSize -> InvalidArgument invalidProperty=maxCount",
            "SetCollectorPageSize -> InvalidArgument invalidProperty=maxCount",
            "ReadNextTasks -> [task-1]",
        ]
    );
}

// D21, D22: the page is newest first, follows creations and state changes,
// and is not refreshed by progress or description updates.
#[test]
fn the_latest_page_follows_creations_and_state_changes_only() {
    let steps = vec![
        create(),
        create(),
        create(),
        in_state(&[State::Running]),
        start(1),
        start(3),
        progress(3, 40),
        describe(1, "phase.two"),
        succeed(1),
        create(),
        start(4),
    ];
    let (table, _) = run(&steps);
    let c = vtask_model::TaskTable::collectors(&table).remove(0);
    let page: Vec<String> = c
        .latest_page
        .iter()
        .map(|i| {
            format!(
                "{} {} progress={:?} description={}",
                i.key,
                i.state,
                i.progress,
                i.description.as_ref().map_or("-", |d| d.key.as_str())
            )
        })
        .collect();
    // task-3 shows the snapshot of its state change, not its 40%; task-1
    // left the page when it succeeded.
    assert_eq!(
        page,
        [
            "task-4 running progress=None description=-",
            "task-3 running progress=None description=-",
        ]
    );
}

// D21: a task leaving a full page makes room for the newest older match.
#[test]
fn a_task_leaving_a_full_page_is_replaced_by_the_next_older_match() {
    let mut steps = five();
    steps.extend([in_state(&[State::Queued]), page_size(2), start(5)]);
    let (table, _) = run(&steps);
    let c = vtask_model::TaskTable::collectors(&table).remove(0);
    assert_eq!(keys_of(&c.latest_page), "task-4 task-3");
}

// D16 with D21: a task removed by retention leaves the page.
#[test]
fn expired_tasks_leave_the_page() {
    let steps = vec![
        create(),
        create(),
        succeed(1),
        all(),
        expire(&[1], 5000).at(2000),
    ];
    let (table, _) = run(&steps);
    let c = vtask_model::TaskTable::collectors(&table).remove(0);
    assert_eq!(keys_of(&c.latest_page), "task-2");
}

// D18: a principal holds at most max_per_owner collectors; destroying one
// frees a place; others are not affected by alice's count.
#[test]
fn a_principal_holds_at_most_the_configured_number() {
    let steps = vec![
        all(),
        all(),
        all(),
        all().by(bob()),
        destroy("collector-1"),
        all(),
    ];
    let (_, replies) = run(&steps);
    let lines: Vec<String> = steps
        .iter()
        .zip(&replies)
        .map(|(s, r)| render_reply(View::default(), &s.command, r))
        .collect();
    assert_eq!(
        lines,
        [
            "CreateCollectorForTasks -> collector-1 page []",
            "CreateCollectorForTasks -> collector-2 page []",
            "CreateCollectorForTasks -> InvalidState",
            "CreateCollectorForTasks -> collector-3 page []",
            "DestroyCollector -> ok",
            "CreateCollectorForTasks -> collector-4 page []",
        ]
    );
}

// spec §8.2, §9: a destroyed collector is gone; another principal's
// collector looks as if it did not exist; anonymous callers are not
// authenticated; CreateCollector needs System.View.
#[test]
fn who_may_use_a_collector() {
    let steps = vec![
        all(),
        next(1).by(bob()),
        next(1).by(anonymous()),
        all().by(lacking(vtask_model::Privilege::SystemView)),
        all().by(anonymous()),
        destroy("collector-1"),
        next(1),
        destroy("collector-1"),
        destroy("task-1"),
    ];
    let (_, replies) = run(&steps);
    let lines: Vec<String> = steps
        .iter()
        .zip(&replies)
        .map(|(s, r)| render_reply(View::default(), &s.command, r))
        .collect();
    assert_eq!(
        lines,
        [
            "CreateCollectorForTasks -> collector-1 page []",
            "ReadNextTasks -> ManagedObjectNotFound obj=TaskHistoryCollector:collector-1",
            "ReadNextTasks -> NotAuthenticated",
            "CreateCollectorForTasks -> NoPermission privilegeId=System.View",
            "CreateCollectorForTasks -> NotAuthenticated",
            "DestroyCollector -> ok",
            "ReadNextTasks -> ManagedObjectNotFound obj=TaskHistoryCollector:collector-1",
            "DestroyCollector -> ManagedObjectNotFound obj=TaskHistoryCollector:collector-1",
            "DestroyCollector -> ManagedObjectNotFound obj=TaskHistoryCollector:task-1",
        ]
    );
}

// D12 through the collector: an unanswerable filter is refused up front.
#[test]
fn an_entity_filter_with_recursion_is_not_supported() {
    let filter = TaskFilterSpec {
        entity: Some(vtask_model::FilterByEntity {
            entity: vtask_model::MoRef::new("Folder", "group-v1"),
            recursion: vtask_model::RecursionOption::All,
        }),
        ..TaskFilterSpec::default()
    };
    assert_eq!(
        render_fault(&fault_of(&[], collect(filter))),
        "NotSupported"
    );
}

// D24: a collector idle for longer than the configured time is destroyed by
// the leader's ExpireCollectors; one used since stays.
#[test]
fn idle_collectors_expire() {
    assert_eq!(DEFAULT_COLLECTOR_IDLE_MILLIS, 30 * 60 * 1000);
    let steps = vec![
        all().at(1000),
        all().at(1000),
        Step::new(Command::ReadNextTasks {
            collector: "collector-2".into(),
            max_count: 1,
        })
        .at(2000),
        expire_idle(1_500_000).at(2600),
        next(1).at(2601),
    ];
    assert_eq!(
        replies_after(3, &steps),
        [
            "ExpireCollectors -> expired [collector-1]",
            "ReadNextTasks -> ManagedObjectNotFound obj=TaskHistoryCollector:collector-1",
        ]
    );
}

// ExpireCollectors is the service's own command.
#[test]
fn users_cannot_expire_collectors() {
    let step = Step::new(Command::ExpireCollectors { idle_millis: 0 });
    assert_eq!(render_fault(&fault_of(&[all()], step)), "NoPermission");
}
