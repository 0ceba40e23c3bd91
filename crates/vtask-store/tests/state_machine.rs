//! The state machine against a real RocksDB, fed through openraft's
//! `RaftStateMachine::apply` as a node applies committed entries: the
//! exactly-once table (D27), retention's pruning (D16), and the indexes the
//! read view walks (ListTasks by state, lapsed leases).

use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
use vtask_model::{
    Caller, Command, CreateTask, FaultKind, MoRef, Outcome, Privileges, Reply, State,
    TaskFilterSpec, TaskKey, Timestamp, MIN_RETENTION_MILLIS,
};
use vtask_store::{Batch, ClientRef, Request, StateMachine, TypeConfig, SESSION_TTL_MILLIS};

/// A state machine in a temporary directory, fed one entry per `apply`.
struct Machine {
    dir: tempfile::TempDir,
    sm: StateMachine,
    index: u64,
}

impl Machine {
    fn new() -> Machine {
        let dir = tempfile::tempdir().unwrap();
        let (_, sm) = vtask_store::open(dir.path()).unwrap();
        Machine { dir, sm, index: 0 }
    }

    /// Closes and reopens the store, as a restarted node does.
    fn reopen(self) -> Machine {
        let Machine { dir, sm, index } = self;
        drop(sm);
        let (_, sm) = vtask_store::open(dir.path()).unwrap();
        Machine { dir, sm, index }
    }

    /// Applies one entry at `index` (or the next one) stamped `millis`.
    async fn apply_at(&mut self, index: u64, millis: i64, requests: Vec<Request>) -> Vec<Outcome> {
        self.index = index;
        let entry: Entry<TypeConfig> = Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(Batch {
                time: Timestamp::from_micros(millis * 1000),
                requests: requests.into(),
            }),
        };
        let mut replies = self.sm.apply(vec![entry]).await.unwrap();
        replies.remove(0).outcomes
    }

    async fn apply(&mut self, millis: i64, requests: Vec<Request>) -> Vec<Outcome> {
        self.apply_at(self.index + 1, millis, requests).await
    }
}

fn alice() -> Caller {
    Caller::user("alice", Privileges::ALL)
}

fn from(client: &str, seq: u64, command: Command) -> Request {
    Request {
        client: Some(ClientRef {
            id: client.into(),
            seq,
        }),
        caller: alice(),
        command,
    }
}

/// Requests from one client, numbered 1, 2, ...
fn client(id: &'static str) -> impl FnMut(Command) -> Request {
    let mut seq = 0;
    move |command| {
        seq += 1;
        from(id, seq, command)
    }
}

fn create(vm: &str) -> Command {
    Command::CreateTask(CreateTask {
        obj: MoRef::new("VirtualMachine", vm),
        task_type_id: "com.example.store".into(),
        cancelable: true,
        ..Default::default()
    })
}

fn key_of(outcome: &Outcome) -> String {
    match outcome {
        Ok(Reply::Task { info }) => info.key.to_string(),
        other => panic!("not a task reply: {other:?}"),
    }
}

// D27: a retry in a later entry gets the first reply and creates nothing.
#[tokio::test]
async fn a_retry_gets_the_stored_reply_and_is_not_applied_again() {
    let mut m = Machine::new();
    let first = m.apply(1_000, vec![from("c", 1, create("vm-1"))]).await;
    let retry = m.apply(2_000, vec![from("c", 1, create("vm-1"))]).await;
    assert_eq!(retry, first);
    let next = m.apply(3_000, vec![from("c", 2, create("vm-2"))]).await;
    assert_eq!(key_of(&next[0]), "task-2", "the retry used no key");
}

// D27: the same request twice in one entry (a retry that caught up with the
// original inside one batch) is applied once.
#[tokio::test]
async fn a_retry_in_the_same_entry_is_applied_once() {
    let mut m = Machine::new();
    let replies = m
        .apply(
            1_000,
            vec![from("c", 7, create("vm-1")), from("c", 7, create("vm-1"))],
        )
        .await;
    assert_eq!(replies[0], replies[1]);
    let next = m.apply(2_000, vec![from("c", 8, create("vm-2"))]).await;
    assert_eq!(key_of(&next[0]), "task-2");
}

// D27: the stored replies survive a restart of the node.
#[tokio::test]
async fn stored_replies_survive_a_restart() {
    let mut m = Machine::new();
    let first = m.apply(1_000, vec![from("c", 1, create("vm-1"))]).await;
    let mut m = m.reopen();
    let retry = m.apply(2_000, vec![from("c", 1, create("vm-1"))]).await;
    assert_eq!(retry, first);
}

// A session keeps the replies of its last 128 requests; a sequence number
// older than all of them is refused, not applied as new.
#[tokio::test]
async fn a_sequence_number_older_than_the_window_is_refused() {
    let mut m = Machine::new();
    for seq in 1..=130 {
        m.apply(1_000 + seq as i64, vec![from("c", seq, create("vm"))])
            .await;
    }
    let stale = m.apply(5_000, vec![from("c", 1, create("vm"))]).await;
    match &stale[0] {
        Err(fault) => assert!(
            matches!(&fault.kind, FaultKind::InvalidArgument { invalid_property: Some(p) } if p == "header.seq"),
            "{fault:?}"
        ),
        other => panic!("applied a request older than the window: {other:?}"),
    }
    let kept = m.apply(6_000, vec![from("c", 130, create("vm"))]).await;
    assert_eq!(key_of(&kept[0]), "task-130");
    let kept = m.apply(7_000, vec![from("c", 3, create("vm"))]).await;
    assert_eq!(key_of(&kept[0]), "task-3", "the oldest kept reply");
}

// A session idle for longer than the TTL is forgotten at the next sweep
// (every 1024th index, by entry time, the same on every replica).
#[tokio::test]
async fn an_idle_session_is_forgotten_at_the_sweep() {
    let mut m = Machine::new();
    m.apply(1_000, vec![from("c", 1, create("vm-1"))]).await;
    let later = 1_000 + SESSION_TTL_MILLIS as i64 + 1;
    m.apply_at(1024, later, vec![]).await;
    let again = m.apply(later + 1, vec![from("c", 1, create("vm-1"))]).await;
    assert_eq!(key_of(&again[0]), "task-2", "forgotten, so applied as new");
}

/// Retention's request (D16): remove `task`, finished before `millis`.
fn expire(task: TaskKey, millis: i64) -> Request {
    Request {
        client: None,
        caller: Caller::System,
        command: Command::ExpireTasks {
            tasks: vec![task],
            completed_before: Timestamp::from_micros(millis * 1000),
        },
    }
}

// D16: retention removes a finished task with its history; a reader that
// wants the changes since before the removal is told they are gone.
#[tokio::test]
async fn retention_prunes_the_history_of_removed_tasks() {
    let mut m = Machine::new();
    let read = m.sm.read_view();
    m.apply(1_000, vec![from("c", 1, create("vm-1"))]).await;
    m.apply(
        2_000,
        vec![from(
            "c",
            2,
            Command::SetTaskState {
                task: "task-1".into(),
                state: State::Success,
                result: None,
                fault: None,
            },
        )],
    )
    .await;
    m.apply(3_000, vec![from("c", 3, create("vm-2"))]).await;
    assert_eq!(read.history(TaskKey(1)).unwrap().len(), 2);
    assert_eq!(read.changes_since(0, 100).unwrap().unwrap().len(), 3);

    let later = 2_000 + MIN_RETENTION_MILLIS as i64;
    let removed = m.apply(later, vec![expire(TaskKey(1), later)]).await;
    assert_eq!(
        removed[0],
        Ok(Reply::Expired {
            tasks: vec![TaskKey(1)]
        })
    );
    assert!(read.history(TaskKey(1)).unwrap().is_empty());
    assert!(read.changes_since(0, 100).unwrap().is_none(), "pruned");
    // From after the pruned changes on, replay works: task-2's creation
    // and task-1's REMOVED record.
    let tail = read.changes_since(2, 100).unwrap().unwrap();
    let revisions: Vec<u64> = tail.iter().map(|c| c.revision).collect();
    assert_eq!(revisions, [3, 4]);
    assert_eq!(read.history(TaskKey(2)).unwrap().len(), 1);
}

fn progress(task: &str, percent_done: i32) -> Command {
    Command::UpdateProgress {
        task: task.into(),
        percent_done,
        progress_details: None,
        api_version: Default::default(),
    }
}

fn progress_of(outcome: &Outcome) -> Option<i32> {
    match outcome {
        Ok(Reply::Task { info }) => info.progress,
        other => panic!("not a task reply: {other:?}"),
    }
}

// D27: a stored reply that returns a task refers to the change record of
// its request, not to the task as it is now: a retry after later changes
// (and after a restart) still gets the state that request left.
#[tokio::test]
async fn a_retry_after_later_changes_gets_the_state_its_request_left() {
    let mut m = Machine::new();
    m.apply(1_000, vec![from("c", 1, create("vm-1"))]).await;
    m.apply(
        1_500,
        vec![from("c", 9, set_state("task-1", State::Running))],
    )
    .await;
    let first = m
        .apply(2_000, vec![from("c", 2, progress("task-1", 10))])
        .await;
    assert_eq!(progress_of(&first[0]), Some(10));
    m.apply(3_000, vec![from("c", 3, progress("task-1", 20))])
        .await;
    let retry = m
        .apply(4_000, vec![from("c", 2, progress("task-1", 10))])
        .await;
    assert_eq!(retry, first);
    assert_eq!(progress_of(&retry[0]), Some(10));
    let mut m = m.reopen();
    let retry = m
        .apply(5_000, vec![from("c", 2, progress("task-1", 10))])
        .await;
    assert_eq!(retry, first);
    let current = m.sm.read_view().task(TaskKey(1)).unwrap().unwrap();
    assert_eq!(
        current.info.progress,
        Some(20),
        "the retries changed nothing"
    );
}

// D27 with D16: once retention removed a task with its history, a retry of
// a request that returned the task is answered as a new call about it
// would be, ManagedObjectNotFound (expired); it is not applied again.
#[tokio::test]
async fn a_retry_after_retention_removed_its_task_is_told_the_task_expired() {
    let mut m = Machine::new();
    m.apply(1_000, vec![from("c", 1, create("vm-1"))]).await;
    m.apply(
        1_500,
        vec![from("c", 9, set_state("task-1", State::Running))],
    )
    .await;
    let done = m
        .apply(
            2_000,
            vec![from("c", 2, set_state("task-1", State::Success))],
        )
        .await;
    assert!(done[0].is_ok(), "{done:?}");
    let later = 2_000 + MIN_RETENTION_MILLIS as i64;
    m.apply(later, vec![expire(TaskKey(1), later)]).await;
    let retry = m
        .apply(
            later + 1,
            vec![from("c", 2, set_state("task-1", State::Success))],
        )
        .await;
    match &retry[0] {
        Err(fault) => {
            assert!(
                matches!(&fault.kind, FaultKind::ManagedObjectNotFound { .. }),
                "{fault:?}"
            );
            assert!(
                fault.to_string().contains("expired") || format!("{fault:?}").contains("expired"),
                "{fault:?}"
            );
        }
        other => panic!("a retry of a removed task's change: {other:?}"),
    }
    let next = m.apply(later + 2, vec![from("c", 3, create("vm-2"))]).await;
    assert_eq!(key_of(&next[0]), "task-2");
}

fn set_state(task: &str, state: State) -> Command {
    let fault = (state == State::Error).then(|| {
        vtask_model::MethodFault::new(FaultKind::SystemError {
            reason: "disk full".into(),
        })
    });
    Command::SetTaskState {
        task: task.into(),
        state,
        result: None,
        fault,
    }
}

// ListTasks by state walks the state index: tasks of the selected states,
// oldest first, a page at a time, the other filter fields still applied.
#[tokio::test]
async fn listing_by_state_walks_the_index_in_key_order() {
    let mut m = Machine::new();
    let read = m.sm.read_view();
    // task-1 queued, task-2 running, task-3 error, task-4 queued,
    // task-5 success, task-6 running then error.
    let mut send = client("c");
    let steps = vec![
        send(create("vm-1")),
        send(create("vm-2")),
        send(create("vm-3")),
        send(create("vm-4")),
        send(create("vm-5")),
        send(create("vm-6")),
        send(set_state("task-2", State::Running)),
        send(set_state("task-3", State::Error)),
        send(set_state("task-5", State::Success)),
        send(set_state("task-6", State::Running)),
        send(set_state("task-6", State::Error)),
    ];
    m.apply(1_000, steps).await;
    let keys = |tasks: Vec<vtask_model::Task>| -> Vec<u64> {
        tasks.iter().map(|t| t.info.key.0).collect()
    };
    let by = |states: &[State]| TaskFilterSpec {
        state: states.to_vec(),
        ..TaskFilterSpec::default()
    };
    let queued_or_error = by(&[State::Error, State::Queued]);
    assert_eq!(keys(read.scan(0, 2, &queued_or_error).unwrap()), [1, 3]);
    assert_eq!(keys(read.scan(3, 2, &queued_or_error).unwrap()), [4, 6]);
    assert!(read.scan(6, 2, &queued_or_error).unwrap().is_empty());
    assert_eq!(keys(read.scan(0, 10, &by(&[State::Running])).unwrap()), [2]);
    let mut on_vm4 = by(&[State::Queued]);
    on_vm4.entity = Some(vtask_model::FilterByEntity {
        entity: MoRef::new("VirtualMachine", "vm-4"),
        recursion: vtask_model::RecursionOption::Itself,
    });
    assert_eq!(keys(read.scan(0, 10, &on_vm4).unwrap()), [4]);
}

// D26: the lease index yields exactly the unfinished tasks whose lease ran
// out, and follows renewals and completions.
#[tokio::test]
async fn lapsed_leases_follow_renewals_and_completions() {
    let mut m = Machine::new();
    let read = m.sm.read_view();
    let leased = |vm: &str| {
        Command::CreateTask(CreateTask {
            obj: MoRef::new("VirtualMachine", vm),
            task_type_id: "com.example.store".into(),
            lease_millis: Some(10_000),
            ..Default::default()
        })
    };
    m.apply(
        1_000,
        vec![
            from("c", 1, leased("vm-1")),
            from("c", 2, leased("vm-2")),
            from("c", 3, leased("vm-3")),
            from("c", 4, create("vm-4")),
        ],
    )
    .await;
    // At 8 s alice renews task-2 (until 18 s) and finishes task-3.
    m.apply(
        8_000,
        vec![
            from("c", 5, set_state("task-2", State::Running)),
            from("c", 6, set_state("task-3", State::Success)),
        ],
    )
    .await;
    let at = |secs: i64| Timestamp::from_micros(secs * 1_000_000);
    let lapsed = |now| -> Vec<u64> {
        read.lapsed_leases(now)
            .unwrap()
            .iter()
            .map(|(k, _)| k.0)
            .collect()
    };
    assert!(lapsed(at(10)).is_empty());
    assert_eq!(lapsed(at(11)), [1]);
    assert_eq!(lapsed(at(18)), [1, 2]);
}

// D17: recentTask is every queued and running task plus the newest of the
// tasks completed since the cutoff, in key order, read from the indexes.
#[tokio::test]
async fn recent_tasks_are_the_unfinished_and_the_newest_completed() {
    let mut m = Machine::new();
    let read = m.sm.read_view();
    let mut send = client("c");
    // task-1 queued, task-2 running; task-3..task-7 finish one per second
    // from 10 s on, task-5 and task-6 in the same entry (same time).
    let created: Vec<_> = (1..=7).map(|n| send(create(&format!("vm-{n}")))).collect();
    m.apply(1_000, created).await;
    let running = send(set_state("task-2", State::Running));
    m.apply(2_000, vec![running]).await;
    for (millis, tasks) in [
        (10_000, vec!["task-3"]),
        (11_000, vec!["task-4"]),
        (12_000, vec!["task-5", "task-6"]),
        (13_000, vec!["task-7"]),
    ] {
        let done = tasks
            .into_iter()
            .map(|task| send(set_state(task, State::Success)))
            .collect();
        m.apply(millis, done).await;
    }
    let keys = |since_millis: i64, completed: usize| -> Vec<u64> {
        let since = Timestamp::from_micros(since_millis * 1000);
        let (revision, tasks) = read.recent(since, completed).unwrap();
        assert_eq!(revision, 7 + 1 + 5, "one revision per change");
        tasks.iter().map(|info| info.key.0).collect()
    };
    assert_eq!(keys(0, 200), [1, 2, 3, 4, 5, 6, 7]);
    // The cutoff is inclusive; task-3 completed before it.
    assert_eq!(keys(11_000, 200), [1, 2, 4, 5, 6, 7]);
    // The newest two completions: task-7, then task-6 of the tie at 12 s.
    assert_eq!(keys(0, 2), [1, 2, 6, 7]);
    assert_eq!(keys(0, 0), [1, 2]);
    assert_eq!(keys(14_000, 200), [1, 2]);
}
