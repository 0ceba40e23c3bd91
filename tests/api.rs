//! The task API over a live three-node cluster, through `vtask-client`:
//! history collectors across a leader kill (D24), retention (D16), and a
//! wait and a watch that survive the loss of the node they read from.

use std::time::Duration;

use vtask_client::{Client, Error, WatchKind, WatchSelector};
use vtask_model::{CreateTask, FaultKind, MoRef, State, TaskFilterSpec, TaskInfo};
use vtask_tests::{Cluster, ClusterConfig};

/// A client whose first endpoint is the leader, so that killing the leader
/// takes away the node the client talks to.
async fn leader_first_client(cluster: &Cluster, user: &str) -> (Client, u64) {
    let (endpoints, leader) = cluster.leader_first_endpoints().await.unwrap();
    (Client::new(endpoints).user(user), leader)
}

fn args(vm: &str) -> CreateTask {
    CreateTask {
        obj: MoRef::new("VirtualMachine", vm),
        task_type_id: "com.example.api".into(),
        cancelable: true,
        ..Default::default()
    }
}

fn keys(tasks: &[TaskInfo]) -> Vec<String> {
    tasks.iter().map(|t| t.key.to_string()).collect()
}

fn fault_kind(error: &Error) -> Option<&FaultKind> {
    match error {
        Error::Fault(fault) => Some(&fault.kind),
        _ => None,
    }
}

/// D24: a collector is replicated state. Its cursor moves on from where it
/// was after the leader that served the earlier reads is killed; it belongs
/// to its owner only; a destroyed collector is gone on every node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_reads_on_where_it_was_after_a_leader_kill() {
    let mut cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let (alice, leader) = leader_first_client(&cluster, "alice").await;
    let mut created = Vec::new();
    for vm in ["vm-1", "vm-2", "vm-3", "vm-4", "vm-5"] {
        created.push(alice.create_task(args(vm)).await.unwrap().key.to_string());
    }
    let (collector, page) = alice
        .create_collector(TaskFilterSpec::default())
        .await
        .unwrap();
    assert_eq!(
        keys(&page),
        ["task-5", "task-4", "task-3", "task-2", "task-1"]
    );
    let first = alice.read_next_tasks(&collector, 2).await.unwrap();
    assert_eq!(keys(&first), ["task-1", "task-2"]);

    cluster.kill(leader);
    let second = alice.read_next_tasks(&collector, 2).await.unwrap();
    assert_eq!(keys(&second), ["task-3", "task-4"], "the cursor survived");
    // The collector is live: a task created now is read at the end.
    alice.create_task(args("vm-6")).await.unwrap();
    let third = alice.read_next_tasks(&collector, 10).await.unwrap();
    assert_eq!(keys(&third), ["task-5", "task-6"]);
    assert!(alice
        .read_next_tasks(&collector, 10)
        .await
        .unwrap()
        .is_empty());
    let back = alice.read_previous_tasks(&collector, 3).await.unwrap();
    assert_eq!(keys(&back), ["task-6", "task-5", "task-4"]);

    // D21: the latest page follows creations and state changes.
    alice
        .set_task_state("task-6", State::Running, None, None)
        .await
        .unwrap();
    let page = alice.set_collector_page_size(&collector, 2).await.unwrap();
    assert_eq!(keys(&page), ["task-6", "task-5"]);
    assert_eq!(page[0].state, State::Running);
    assert_eq!(
        keys(&alice.latest_page(&collector).await.unwrap()),
        ["task-6", "task-5"]
    );

    // Private to its owner: bob sees no such collector.
    let bob = Client::new(alice.endpoints().to_vec()).user("bob");
    let refused = bob.read_next_tasks(&collector, 1).await.unwrap_err();
    assert!(
        matches!(
            fault_kind(&refused),
            Some(FaultKind::ManagedObjectNotFound { .. })
        ),
        "{refused:?}"
    );
    // D19: out-of-range counts are InvalidArgument naming maxCount.
    let bad = alice.read_next_tasks(&collector, 0).await.unwrap_err();
    assert!(
        matches!(fault_kind(&bad), Some(FaultKind::InvalidArgument { invalid_property: Some(p) }) if p == "maxCount"),
        "{bad:?}"
    );

    cluster.spawn(leader).unwrap();
    alice.destroy_collector(&collector).await.unwrap();
    cluster.converged(Duration::from_secs(20)).await.unwrap();
    for node in cluster.ids() {
        let one = Client::new(vec![cluster.nodes[&node].grpc.clone()]).user("alice");
        let gone = one.latest_page(&collector).await.unwrap_err();
        assert!(
            matches!(
                fault_kind(&gone),
                Some(FaultKind::ManagedObjectNotFound { .. })
            ),
            "node {node}: {gone:?}"
        );
    }
}

/// D16: once the retention period has passed, the leader removes finished
/// tasks with their history; a removed key says it expired, a key never
/// issued says so; a running task stays; a watcher resuming from before the
/// removal gets RESYNC and the current state. The period is passed by restarting the cluster with
/// its clocks moved 11 minutes ahead (the retention minimum is 10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_finished_tasks_and_says_they_expired() {
    let config = ClusterConfig {
        extra_args: vec!["--retention-minutes".into(), "10".into()],
        ..ClusterConfig::default()
    };
    let mut cluster = Cluster::start(config).await.unwrap();
    let client = Client::new(cluster.endpoints().split(',').map(String::from).collect());
    let done = client
        .create_task(args("vm-done"))
        .await
        .unwrap()
        .key
        .to_string();
    client
        .set_task_state(&done, State::Success, None, None)
        .await
        .unwrap();
    let running = client
        .create_task(args("vm-run"))
        .await
        .unwrap()
        .key
        .to_string();
    client
        .set_task_state(&running, State::Running, None, None)
        .await
        .unwrap();
    let mut watch = client.watch(WatchSelector::All, 0);
    let mut synced = 0;
    while synced == 0 {
        let event = watch.next().await.unwrap();
        if event.kind == WatchKind::Synced {
            synced = event.revision;
        }
    }
    // Nothing is due yet: the leader scans every few seconds.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        client.get_task(&done, false).await.unwrap().state,
        State::Success
    );

    for id in cluster.ids() {
        cluster.kill(id);
    }
    cluster
        .config_mut()
        .extra_args
        .extend(["--clock-offset-ms".into(), (11 * 60 * 1000).to_string()]);
    for id in cluster.ids() {
        cluster.spawn(id).unwrap();
    }
    cluster.wait_ready(Duration::from_secs(20)).await.unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let expired = loop {
        match client.get_task(&done, false).await {
            Err(Error::Fault(fault)) => break fault,
            Ok(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => panic!("{done} was not removed: {other:?}\n{}", cluster.logs()),
        }
    };
    assert!(matches!(
        expired.kind,
        FaultKind::ManagedObjectNotFound { .. }
    ));
    assert!(
        expired
            .localized_message
            .as_deref()
            .unwrap_or("")
            .contains("expired"),
        "{expired:?}"
    );
    let never = client.get_task("task-99", false).await.unwrap_err();
    assert!(
        matches!(&never, Error::Fault(f) if f.localized_message.as_deref().unwrap_or("").contains("was ever created")),
        "{never:?}"
    );
    assert_eq!(
        client.get_task(&running, false).await.unwrap().state,
        State::Running
    );

    // A watcher that resumes after the removal sees it as a REMOVED change.
    let mut resumed = client.watch(WatchSelector::All, synced + 1);
    let removed = resumed.next().await.unwrap();
    assert_eq!(removed.kind, WatchKind::Removed, "{removed:?}");
    assert_eq!(removed.info.map(|i| i.key.to_string()), Some(done.clone()));
    // The removed task's history went with it; a watcher resuming from
    // before it cannot replay it, so it is told to resync and gets the
    // current state instead of an error.
    let mut stale = client.watch(WatchSelector::All, 1);
    let first = stale.next().await.unwrap();
    assert_eq!(first.kind, WatchKind::Resync, "{first:?}");
    let mut current = Vec::new();
    loop {
        let event = stale.next().await.unwrap();
        match event.kind {
            WatchKind::Current => current.push(event.info.unwrap().key.to_string()),
            WatchKind::Synced => break,
            other => panic!("unexpected {other:?} in a resync snapshot"),
        }
    }
    assert_eq!(current.as_slice(), std::slice::from_ref(&running));
    assert!(!client.task_history(&running).await.unwrap().is_empty());
    cluster.converged(Duration::from_secs(20)).await.unwrap();
}

/// A wait and a watch that read from the leader carry on when it is killed:
/// the wait returns the finished task, and the watch delivers every change
/// of the task exactly once, in order, as GetTaskHistory records them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_and_a_watch_survive_a_leader_kill() {
    let mut cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let (client, leader) = leader_first_client(&cluster, "alice").await;
    let key = client
        .create_task(args("vm-w"))
        .await
        .unwrap()
        .key
        .to_string();
    client
        .set_task_state(&key, State::Running, None, None)
        .await
        .unwrap();

    let endpoints = client.endpoints().to_vec();
    let waiter = {
        let (endpoints, key) = (endpoints.clone(), key.clone());
        tokio::spawn(async move {
            Client::new(endpoints)
                .wait(&key, Duration::from_secs(60))
                .await
        })
    };
    let watcher = {
        let (endpoints, key) = (endpoints.clone(), key.clone());
        tokio::spawn(async move {
            let client = Client::new(endpoints);
            let mut watch = client.watch(WatchSelector::Task(key), 0);
            let mut events = Vec::new();
            loop {
                let event = watch.next().await?;
                let done = event.info.as_ref().is_some_and(|i| i.state.is_terminal());
                events.push(event);
                if done {
                    return Ok::<_, Error>(events);
                }
            }
        })
    };
    for percent in 1..=20 {
        if percent == 8 {
            cluster.kill(leader);
        }
        client.update_progress(&key, percent * 5).await.unwrap();
    }
    client
        .set_task_state(&key, State::Success, None, None)
        .await
        .unwrap();

    let finished = waiter.await.unwrap().unwrap();
    assert_eq!(finished.state, State::Success);
    assert_eq!(finished.progress, Some(100));

    let events = watcher.await.unwrap().unwrap();
    // After the snapshot (CURRENT ... SYNCED), the live changes must be
    // exactly the task's recorded changes after the snapshot's revision.
    let synced = events
        .iter()
        .rposition(|e| e.kind == WatchKind::Synced)
        .expect("a SYNCED event");
    let snapshot_revision = events[synced].revision;
    let live: Vec<(u64, Option<TaskInfo>)> = events[synced + 1..]
        .iter()
        .map(|e| (e.revision, e.info.clone()))
        .collect();
    let history = client.task_history(&key).await.unwrap();
    let recorded: Vec<(u64, Option<TaskInfo>)> = history
        .into_iter()
        .filter(|c| c.revision > snapshot_revision)
        .map(|c| (c.revision, c.info.map(|i| TaskInfo::try_from(i).unwrap())))
        .collect();
    assert_eq!(live.len(), recorded.len(), "every change once");
    assert_eq!(live, recorded);
    assert!(live.windows(2).all(|w| w[0].0 < w[1].0), "in order");
}

/// A wait lasts as long as it was asked to, beyond the client's per-call
/// bound: its calls are given the wait's time (the CLI's `wait --timeout
/// 40s` once failed after the 30 s bound).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_may_outlast_the_per_call_timeout() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let endpoints: Vec<String> = cluster.endpoints().split(',').map(String::from).collect();
    let waiter = Client::new(endpoints.clone())
        .user("alice")
        .call_timeout(Duration::from_millis(500));
    let owner = Client::new(endpoints).user("alice");
    let key = owner
        .create_task(args("vm-w"))
        .await
        .unwrap()
        .key
        .to_string();
    owner
        .set_task_state(&key, State::Running, None, None)
        .await
        .unwrap();
    let finish = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        owner
            .set_task_state(&key, State::Success, None, None)
            .await
            .unwrap()
    });
    let started = std::time::Instant::now();
    let done = waiter
        .wait("task-1", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(done.state, State::Success);
    assert!(started.elapsed() >= Duration::from_millis(1500));
    finish.await.unwrap();
}
