//! The replicated core under failures: three real `vtaskd` processes, real
//! RocksDB, real sockets. Each test pins one guarantee of the architecture
//! page ("Ack means durable on a majority", "A retried request is applied
//! once", ...).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use tonic::Code;
use vtask_proto::v1::{
    CreateTaskRequest, GetTaskRequest, ManagedObjectReference, ReadConsistency, RequestHeader,
    SetTaskStateRequest, TaskInfo, TaskInfoState, UpdateProgressRequest,
};
use vtask_tests::{Cluster, ClusterConfig};

fn create_request(client: &str, seq: u64, vm: &str) -> CreateTaskRequest {
    CreateTaskRequest {
        header: Some(RequestHeader {
            client_id: client.into(),
            seq,
        }),
        obj: Some(ManagedObjectReference {
            r#type: "VirtualMachine".into(),
            value: vm.into(),
        }),
        task_type_id: "com.example.backup".into(),
        cancelable: true,
        ..Default::default()
    }
}

fn progress_request(client: &str, seq: u64, task: &str, percent: i32) -> UpdateProgressRequest {
    UpdateProgressRequest {
        header: Some(RequestHeader {
            client_id: client.into(),
            seq,
        }),
        task: task.into(),
        percent_done: percent,
        ..Default::default()
    }
}

fn start_request(client: &str, seq: u64, task: &str) -> SetTaskStateRequest {
    SetTaskStateRequest {
        header: Some(RequestHeader {
            client_id: client.into(),
            seq,
        }),
        task: task.into(),
        state: TaskInfoState::Running as i32,
        ..Default::default()
    }
}

async fn create(
    cluster: &Cluster,
    node: u64,
    client: &str,
    seq: u64,
    vm: &str,
) -> Result<TaskInfo, tonic::Status> {
    let mut manager = cluster
        .manager(node)
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let reply = manager
        .create_task(create_request(client, seq, vm))
        .await?
        .into_inner();
    reply
        .info
        .ok_or_else(|| tonic::Status::internal("CreateTask returned no TaskInfo"))
}

async fn get(cluster: &Cluster, node: u64, key: &str) -> Result<TaskInfo, tonic::Status> {
    let mut manager = cluster
        .manager(node)
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let request = GetTaskRequest {
        key: key.into(),
        consistency: ReadConsistency::Linearizable as i32,
    };
    let reply = manager.get_task(request).await?.into_inner();
    reply
        .info
        .ok_or_else(|| tonic::Status::internal("GetTask returned no TaskInfo"))
}

/// Creates a task through `node` and starts it; returns its key.
async fn running_task(cluster: &Cluster, node: u64, client: &str) -> String {
    let info = create(cluster, node, client, 1, "vm-1")
        .await
        .expect("create");
    let mut tasks = cluster.tasks(node).await.unwrap();
    tasks
        .set_task_state(start_request(client, 2, &info.key))
        .await
        .expect("start");
    info.key
}

/// Test 1: a write sent to any node succeeds, and all nodes converge to the
/// same state digest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_accepts_writes_and_replicas_converge() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let mut keys = Vec::new();
    for node in cluster.ids() {
        let info = create(
            &cluster,
            node,
            &format!("writer-{node}"),
            1,
            &format!("vm-{node}"),
        )
        .await
        .unwrap();
        assert_eq!(info.state, TaskInfoState::Queued as i32);
        keys.push(info.key);
    }
    assert_eq!(
        keys,
        ["task-1", "task-2", "task-3"],
        "keys come from one replicated counter"
    );
    // Every node serves a linearizable read of every write.
    for node in cluster.ids() {
        for key in &keys {
            assert_eq!(&get(&cluster, node, key).await.unwrap().key, key);
        }
    }
    cluster.converged(Duration::from_secs(10)).await.unwrap();
}

/// "Reads are linearizable": while one writer raises a task's progress, many
/// concurrent readers on every node (so ReadIndex rounds are shared, on the
/// leader and through forwarding) never see less than what was acknowledged
/// before their read began.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_on_every_node_see_every_acknowledged_write() {
    let cluster = Arc::new(Cluster::start(ClusterConfig::default()).await.unwrap());
    let task = running_task(&cluster, 1, "lin-writer").await;
    let acknowledged = Arc::new(std::sync::atomic::AtomicI32::new(0));
    let writer = {
        let (cluster, task, acknowledged) = (cluster.clone(), task.clone(), acknowledged.clone());
        tokio::spawn(async move {
            let mut tasks = cluster.tasks(1).await.unwrap();
            for percent in 1..=100 {
                let seq = 2 + percent as u64;
                tasks
                    .update_progress(progress_request("lin-writer", seq, &task, percent))
                    .await
                    .expect("progress");
                acknowledged.store(percent, std::sync::atomic::Ordering::SeqCst);
            }
        })
    };
    let mut readers = Vec::new();
    for reader in 0..24u64 {
        let (cluster, task, acknowledged) = (cluster.clone(), task.clone(), acknowledged.clone());
        readers.push(tokio::spawn(async move {
            let node = 1 + reader % 3;
            let mut reads = 0;
            while acknowledged.load(std::sync::atomic::Ordering::SeqCst) < 100 {
                let floor = acknowledged.load(std::sync::atomic::Ordering::SeqCst);
                let info = get(&cluster, node, &task).await.expect("read");
                let seen = info.progress.unwrap_or(0);
                assert!(
                    seen >= floor,
                    "node {node} read progress {seen} after {floor} was acknowledged"
                );
                reads += 1;
            }
            reads
        }));
    }
    writer.await.unwrap();
    let mut total = 0;
    for reader in readers {
        total += reader.await.unwrap();
    }
    assert!(total >= 24, "the readers ran ({total} reads)");
}

/// Test 2 and "ack means durable on a majority": writers run while the leader
/// is SIGKILLed; a new leader takes over, writes continue, and every
/// acknowledged progress value is there afterwards, exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_leader_kill() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let writers = 4;
    let mut keys = Vec::new();
    for w in 0..writers {
        keys.push(running_task(&cluster, 1 + w % 3, &format!("setup-{w}")).await);
    }
    let acked: Arc<Mutex<BTreeMap<String, i32>>> = Arc::default();
    let cluster = Arc::new(Mutex::new(cluster));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut handles = Vec::new();
    for (w, key) in keys.iter().enumerate() {
        let (cluster, acked, stop, key) =
            (cluster.clone(), acked.clone(), stop.clone(), key.clone());
        handles.push(tokio::spawn(async move {
            let client = format!("writer-{w}");
            let mut seq = 0;
            let mut percent = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                percent = (percent + 1) % 101;
                seq += 1;
                // Try each running node until one acknowledges; the same seq on retry.
                loop {
                    let nodes = cluster.lock().await.running();
                    let node = nodes[(seq as usize + w) % nodes.len()];
                    let tasks = cluster.lock().await.tasks(node).await;
                    let result = match tasks {
                        Ok(mut t) => {
                            t.update_progress(progress_request(&client, seq, &key, percent))
                                .await
                        }
                        Err(e) => Err(tonic::Status::unavailable(e.to_string())),
                    };
                    match result {
                        Ok(reply) => {
                            let info = reply.into_inner().info.unwrap();
                            assert_eq!(info.progress, Some(percent));
                            acked.lock().await.insert(key.clone(), percent);
                            break;
                        }
                        Err(status)
                            if matches!(
                                status.code(),
                                Code::Unavailable
                                    | Code::DeadlineExceeded
                                    | Code::Unknown
                                    | Code::Cancelled
                            ) =>
                        {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Err(status) => panic!("writer {w}: unexpected {status:?}"),
                    }
                }
            }
            seq
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let old_leader = cluster
        .lock()
        .await
        .wait_for_leader(Duration::from_secs(5))
        .await
        .unwrap();
    let killed_at = Instant::now();
    cluster.lock().await.kill(old_leader);
    let new_leader = cluster
        .lock()
        .await
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    let election = killed_at.elapsed();
    assert_ne!(new_leader, old_leader);
    eprintln!("new leader {new_leader} after {election:?}");
    let before = acked.lock().await.clone();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for handle in handles {
        total += handle.await.unwrap();
    }
    let acked = acked.lock().await.clone();
    assert_ne!(
        before, acked,
        "writes continued after the new leader took over"
    );
    let cluster = cluster.lock().await;
    for (key, percent) in &acked {
        let info = get(&cluster, new_leader, key).await.unwrap();
        assert_eq!(
            info.progress,
            Some(*percent),
            "{key}: the last acknowledged progress"
        );
    }
    eprintln!("{total} progress updates acknowledged");
    cluster.converged(Duration::from_secs(10)).await.unwrap();
}

/// Test 3: a follower that was down while the leader compacted its log
/// catches up through a snapshot and reaches the same digest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_follower_catches_up_through_a_snapshot() {
    let config = ClusterConfig {
        snapshot_entries: 40,
        keep_entries: 5,
        ..ClusterConfig::default()
    };
    let mut cluster = Cluster::start(config).await.unwrap();
    let leader = cluster
        .wait_for_leader(Duration::from_secs(5))
        .await
        .unwrap();
    let follower = cluster.ids().into_iter().find(|&id| id != leader).unwrap();
    assert!(cluster.stop(follower), "SIGTERM ends a node cleanly");
    for i in 0..200 {
        create(&cluster, leader, "bulk", i + 1, &format!("vm-{i}"))
            .await
            .unwrap();
    }
    let status = cluster.status(leader).await.unwrap();
    cluster.spawn(follower).unwrap();
    let digest = cluster.converged(Duration::from_secs(30)).await.unwrap();
    let caught_up = cluster.status(follower).await.unwrap();
    assert_eq!(caught_up.state_digest, digest);
    assert!(caught_up.applied_index >= status.applied_index);
    let log = std::fs::read_to_string(&cluster.nodes[&follower].log).unwrap();
    assert!(
        cluster.nodes[&follower]
            .data_dir
            .join("snapshots/current.snap")
            .exists(),
        "the follower installed a snapshot\n{log}"
    );
}

/// Test 4 and D27: a client retries CreateTask with the same client id and
/// seq across a leader kill; exactly one task exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_create_is_applied_once_across_a_leader_kill() {
    let mut cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let leader = cluster
        .wait_for_leader(Duration::from_secs(5))
        .await
        .unwrap();
    let first = create(&cluster, leader, "retrier", 7, "vm-7")
        .await
        .unwrap();
    cluster.kill(leader);
    let survivor = cluster.running()[0];
    let retried = loop {
        match create(&cluster, survivor, "retrier", 7, "vm-7").await {
            Ok(info) => break info,
            Err(status) if status.code() == Code::Unavailable => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(status) => panic!("retry failed: {status:?}"),
        }
    };
    assert_eq!(retried.key, first.key, "the retry got the stored reply");
    let next = create(&cluster, survivor, "retrier", 8, "vm-8")
        .await
        .unwrap();
    assert_eq!(next.key, "task-2", "exactly one task was made by seq 7");
}

/// Test 5: with two of three nodes down, writes fail with UNAVAILABLE within
/// a bounded time, and succeed again when a node returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_majority_writes_fail_fast_and_recover() {
    let mut cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let key = create(&cluster, 1, "quorum", 1, "vm-1").await.unwrap().key;
    let survivor = 3;
    assert!(cluster.stop(1), "SIGTERM ends a node cleanly");
    assert!(cluster.stop(2), "SIGTERM ends a node cleanly");
    let started = Instant::now();
    let err = create(&cluster, survivor, "quorum", 2, "vm-2")
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(
        waited < Duration::from_secs(12),
        "failed only after {waited:?}"
    );
    let err = get(&cluster, survivor, &key).await.unwrap_err();
    assert_eq!(
        err.code(),
        Code::Unavailable,
        "a linearizable read needs a quorum too: {err:?}"
    );
    cluster.spawn(2).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let info = loop {
        match create(&cluster, survivor, "quorum", 2, "vm-2").await {
            Ok(info) => break info,
            Err(status) if status.code() == Code::Unavailable && Instant::now() < deadline => {}
            Err(status) => panic!("no recovery: {status:?}\n{}", cluster.logs()),
        }
    };
    assert_eq!(info.key, "task-2");
}

/// Test 6: SIGKILL of all three nodes mid-load, then restart: nothing
/// acknowledged is lost and the digests agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_cluster_crash_loses_nothing_acknowledged() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let cluster = Arc::new(Mutex::new(cluster));
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut handles = Vec::new();
    for w in 0..4u64 {
        let (cluster, acked) = (cluster.clone(), acked.clone());
        handles.push(tokio::spawn(async move {
            for seq in 1.. {
                let vm = format!("vm-{w}-{seq}");
                let manager = {
                    let c = cluster.lock().await;
                    if c.running().len() < 3 {
                        return;
                    }
                    c.manager(1 + (w + seq) % 3).await
                };
                let result = match manager {
                    Ok(mut m) => {
                        m.create_task(create_request(&format!("crash-{w}"), seq, &vm))
                            .await
                    }
                    Err(e) => Err(tonic::Status::unavailable(e.to_string())),
                };
                match result {
                    Ok(reply) => acked
                        .lock()
                        .await
                        .push((reply.into_inner().info.unwrap().key, vm)),
                    Err(_) => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    {
        let mut c = cluster.lock().await;
        for id in c.ids() {
            c.kill(id);
        }
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let mut c = cluster.lock().await;
    for id in c.ids() {
        c.spawn(id).unwrap();
    }
    let leader = c.wait_for_leader(Duration::from_secs(20)).await.unwrap();
    let acked = acked.lock().await.clone();
    assert!(
        acked.len() > 10,
        "the load ran: {} creates acknowledged",
        acked.len()
    );
    for (key, vm) in &acked {
        let info = get(&c, leader, key).await.unwrap();
        assert_eq!(
            info.entity.as_ref().map(|e| e.value.as_str()),
            Some(vm.as_str()),
            "{key}"
        );
    }
    c.converged(Duration::from_secs(15)).await.unwrap();
}

/// WatchTasks: a watcher that reconnects to another node with its last
/// revision after the leader dies misses no change and sees none twice, and
/// the terminal change arrives as one update (state, completeTime, result).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_resumed_on_another_node_misses_nothing() {
    use vtask_proto::v1::watch_tasks_request::Selector;
    use vtask_proto::v1::{ChangeKind, WatchTasksRequest};

    let mut cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let leader = cluster
        .wait_for_leader(Duration::from_secs(5))
        .await
        .unwrap();
    let key = running_task(&cluster, leader, "owner").await;
    let watch_node = cluster.ids().into_iter().find(|&id| id != leader).unwrap();
    let other = cluster
        .ids()
        .into_iter()
        .find(|&id| id != leader && id != watch_node)
        .unwrap();

    let request = |start_revision| WatchTasksRequest {
        selector: Some(Selector::Task(key.clone())),
        start_revision,
    };
    let mut stream = cluster
        .manager(watch_node)
        .await
        .unwrap()
        .watch_tasks(request(0))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.kind, ChangeKind::Current as i32);
    assert_eq!(
        first.info.as_ref().unwrap().state,
        TaskInfoState::Running as i32
    );
    let synced = stream.message().await.unwrap().unwrap();
    assert_eq!(synced.kind, ChangeKind::Synced as i32);

    // 1..=20 before the leader dies, 21..=40 after, then success.
    for percent in 1..=20 {
        let mut tasks = cluster.tasks(other).await.unwrap();
        tasks
            .update_progress(progress_request(
                "owner",
                10 + percent as u64,
                &key,
                percent,
            ))
            .await
            .unwrap();
    }
    cluster.kill(leader);
    for percent in 21..=40 {
        loop {
            let mut tasks = cluster.tasks(other).await.unwrap();
            match tasks
                .update_progress(progress_request(
                    "owner",
                    10 + percent as u64,
                    &key,
                    percent,
                ))
                .await
            {
                Ok(_) => break,
                Err(status) if status.code() == Code::Unavailable => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(status) => panic!("{status:?}"),
            }
        }
    }
    let mut tasks = cluster.tasks(other).await.unwrap();
    let done = SetTaskStateRequest {
        header: Some(RequestHeader {
            client_id: "owner".into(),
            seq: 100,
        }),
        task: key.clone(),
        state: TaskInfoState::Success as i32,
        result: Some(vtask_proto::v1::AnyValue {
            value: Some(vtask_proto::v1::any_value::Value::StringValue(
                "42 GiB copied".into(),
            )),
        }),
        fault: None,
    };
    tasks.set_task_state(done).await.unwrap();

    // Read what the first node sent, then resume on the other survivor.
    let mut seen = Vec::new();
    let mut last_revision = synced.revision;
    while let Ok(Ok(Some(event))) =
        tokio::time::timeout(Duration::from_millis(500), stream.message()).await
    {
        assert!(event.revision > last_revision, "revisions only grow");
        last_revision = event.revision;
        seen.push(event);
        if seen.len() == 5 {
            break; // Leave the rest for the resumed stream.
        }
    }
    drop(stream);
    let mut resumed = cluster
        .manager(other)
        .await
        .unwrap()
        .watch_tasks(request(last_revision + 1))
        .await
        .unwrap()
        .into_inner();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), resumed.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(
            event.revision > last_revision,
            "no change twice, none out of order"
        );
        last_revision = event.revision;
        let terminal = event.info.as_ref().unwrap().state == TaskInfoState::Success as i32;
        seen.push(event);
        if terminal {
            break;
        }
    }
    let progress: Vec<i32> = seen
        .iter()
        .filter_map(|e| e.info.as_ref().unwrap().progress)
        .collect();
    assert_eq!(
        progress[..40],
        (1..=40).collect::<Vec<_>>()[..],
        "every change, in order"
    );
    let last = seen.last().unwrap();
    assert_eq!(last.kind, ChangeKind::Updated as i32);
    let info = last.info.as_ref().unwrap();
    assert!(
        info.complete_time.is_some() && info.result.is_some(),
        "the terminal change is one update: {info:?}"
    );
    assert_eq!(
        seen.len(),
        41,
        "40 progress updates and the terminal change"
    );
}

/// D17: RecentTasks lists queued and running tasks and the ones completed in
/// the last 10 minutes; ListTasks pages through a filter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_and_listed_tasks() {
    use vtask_proto::v1::{ListTasksRequest, RecentTasksRequest, TaskFilterSpec};

    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let queued = create(&cluster, 2, "lister", 1, "vm-1").await.unwrap().key;
    let running = running_task(&cluster, 3, "lister-2").await;
    let finished = running_task(&cluster, 1, "lister-3").await;
    let done = SetTaskStateRequest {
        header: Some(RequestHeader {
            client_id: "lister-3".into(),
            seq: 3,
        }),
        task: finished.clone(),
        state: TaskInfoState::Success as i32,
        ..Default::default()
    };
    cluster
        .tasks(1)
        .await
        .unwrap()
        .set_task_state(done)
        .await
        .unwrap();

    let mut manager = cluster.manager(2).await.unwrap();
    let recent = manager
        .recent_tasks(RecentTasksRequest::default())
        .await
        .unwrap()
        .into_inner();
    let keys: Vec<_> = recent.tasks.iter().map(|t| t.key.clone()).collect();
    assert_eq!(keys, [queued.clone(), running.clone(), finished.clone()]);

    let filter = TaskFilterSpec {
        state: vec![TaskInfoState::Running as i32],
        ..Default::default()
    };
    let running_only = ListTasksRequest {
        filter: Some(filter),
        page_size: 10,
        ..Default::default()
    };
    let listed = manager.list_tasks(running_only).await.unwrap().into_inner();
    let listed_keys: Vec<&str> = listed.tasks.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(listed_keys, [running.as_str()]);
    assert!(listed.next_page_token.is_empty());

    // Pages of one: each token is the last key of its page.
    let mut token = String::new();
    let mut paged = Vec::new();
    loop {
        let page = ListTasksRequest {
            page_size: 1,
            page_token: token.clone(),
            ..Default::default()
        };
        let page = manager.list_tasks(page).await.unwrap().into_inner();
        paged.extend(page.tasks.into_iter().map(|t| t.key));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(paged, [queued.clone(), running.clone(), finished.clone()]);
    // D23: the history of a task, oldest first, with who and which entry.
    let history = manager
        .get_task_history(vtask_proto::v1::GetTaskHistoryRequest {
            key: finished.clone(),
            consistency: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .changes;
    let methods: Vec<&str> = history.iter().map(|c| c.method.as_str()).collect();
    assert_eq!(methods, ["CreateTask", "SetTaskState", "SetTaskState"]);
    assert!(history
        .windows(2)
        .all(|w| w[0].revision < w[1].revision && w[0].index < w[1].index));
    assert!(history
        .iter()
        .all(|c| c.actor.as_deref() == Some("vtask") && c.term >= 1));
    let states: Vec<i32> = history
        .iter()
        .map(|c| c.info.as_ref().unwrap().state)
        .collect();
    assert_eq!(
        states,
        [
            TaskInfoState::Queued as i32,
            TaskInfoState::Running as i32,
            TaskInfoState::Success as i32
        ]
    );

    let everything = ListTasksRequest {
        page_size: 10,
        ..Default::default()
    };
    let all = manager.list_tasks(everything).await.unwrap().into_inner();
    assert_eq!(all.tasks.len(), 3);
}

/// D26: a task created with an owner lease fails by itself when its owner
/// stops calling Task.Update methods, also after a leader change; a task
/// whose owner keeps reporting stays running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_owner_lease_fails_its_task_once() {
    let mut cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let leader = cluster
        .wait_for_leader(Duration::from_secs(5))
        .await
        .unwrap();
    let node = cluster.ids().into_iter().find(|&id| id != leader).unwrap();
    let leased = |client: &str| {
        let mut request = create_request(client, 1, "vm-lease");
        request.lease = Some(prost_types::Duration {
            seconds: 2,
            nanos: 0,
        });
        request
    };
    let mut manager = cluster.manager(node).await.unwrap();
    let silent = manager
        .create_task(leased("silent"))
        .await
        .unwrap()
        .into_inner()
        .info
        .unwrap()
        .key;
    let chatty = manager
        .create_task(leased("chatty"))
        .await
        .unwrap()
        .into_inner()
        .info
        .unwrap()
        .key;
    let mut tasks = cluster.tasks(node).await.unwrap();
    tasks
        .set_task_state(start_request("silent", 2, &silent))
        .await
        .unwrap();
    tasks
        .set_task_state(start_request("chatty", 2, &chatty))
        .await
        .unwrap();
    cluster.kill(leader);

    let started = Instant::now();
    let mut seq = 2;
    let failed = loop {
        seq += 1;
        let tasks_result = cluster
            .tasks(node)
            .await
            .unwrap()
            .update_progress(progress_request("chatty", seq, &chatty, 50))
            .await;
        if let Err(status) = tasks_result {
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        }
        if let Ok(info) = get(&cluster, node, &silent).await {
            if info.state == TaskInfoState::Error as i32 {
                break info;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the silent task never failed\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let fault = failed.error.unwrap();
    assert!(
        fault
            .localized_message
            .as_deref()
            .unwrap_or_default()
            .contains("stopped reporting"),
        "{fault:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "not before the lease ran out"
    );
    let chatty_info = get(&cluster, node, &chatty).await.unwrap();
    assert_eq!(
        chatty_info.state,
        TaskInfoState::Running as i32,
        "renewed by every UpdateProgress"
    );

    // Exactly once: the history of the silent task has one lapse.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let again = get(&cluster, node, &silent).await.unwrap();
    assert_eq!(
        again.complete_time, failed.complete_time,
        "the failure is not applied twice"
    );
}

/// The first member loses its data directory and restarts: it must rejoin
/// the existing cluster (and get the data back), not found a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_lost_its_data_rejoins() {
    let mut cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let mut keys = Vec::new();
    for i in 0..5 {
        keys.push(
            create(&cluster, 2, "before-wipe", i + 1, "vm-w")
                .await
                .unwrap()
                .key,
        );
    }
    cluster.kill(1);
    std::fs::remove_dir_all(&cluster.nodes[&1].data_dir).unwrap();
    cluster.spawn(1).unwrap();
    let digest = cluster.converged(Duration::from_secs(20)).await.unwrap();
    assert_eq!(cluster.status(1).await.unwrap().state_digest, digest);
    for key in &keys {
        let mut manager = cluster.manager(1).await.unwrap();
        let stale = GetTaskRequest {
            key: key.clone(),
            consistency: ReadConsistency::Stale as i32,
        };
        assert_eq!(
            &manager
                .get_task(stale)
                .await
                .unwrap()
                .into_inner()
                .info
                .unwrap()
                .key,
            key
        );
    }
    let next = create(&cluster, 1, "after-wipe", 1, "vm-w").await.unwrap();
    assert_eq!(next.key, "task-6", "one cluster, one key counter");
}

/// Every node serves gRPC server reflection (so `grpcurl` works without
/// proto files; it lists google.longrunning.Operations too, issue 18) and
/// the standard health service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_and_health_are_served_by_every_node() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    for node in cluster.ids() {
        let channel = cluster.channel(node).await.unwrap();
        let mut reflection = ServerReflectionClient::new(channel.clone());
        let ask = |request| ServerReflectionRequest {
            host: String::new(),
            message_request: Some(request),
        };
        let requests = tokio_stream::iter([
            ask(MessageRequest::ListServices(String::new())),
            ask(MessageRequest::FileContainingSymbol(
                "vtask.v1.TaskInfo".into(),
            )),
        ]);
        let mut replies = reflection
            .server_reflection_info(requests)
            .await
            .unwrap()
            .into_inner();
        let Some(MessageResponse::ListServicesResponse(list)) =
            replies.message().await.unwrap().unwrap().message_response
        else {
            panic!("no service list");
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        for service in [
            "vtask.v1.Task",
            "vtask.v1.TaskManager",
            "vtask.v1.Cluster",
            "google.longrunning.Operations",
            "grpc.health.v1.Health",
        ] {
            assert!(
                names.iter().any(|n| n == service),
                "node {node} lists {names:?}"
            );
        }
        let Some(MessageResponse::FileDescriptorResponse(files)) =
            replies.message().await.unwrap().unwrap().message_response
        else {
            panic!("no descriptor for vtask.v1.TaskInfo");
        };
        assert!(!files.file_descriptor_proto.is_empty());

        let mut health = HealthClient::new(channel);
        let check = HealthCheckRequest {
            service: "vtask.v1.TaskManager".into(),
        };
        let status = health.check(check).await.unwrap().into_inner().status;
        assert_eq!(status, ServingStatus::Serving as i32);
    }
}

/// vtask-client: calls keep succeeding through a leader kill (the client
/// moves to another endpoint and re-sends with the same client id and seq),
/// and `wait` returns the finished task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_rides_through_a_leader_kill() {
    let mut cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let (endpoints, leader) = cluster.leader_first_endpoints().await.unwrap();
    let client = vtask_client::Client::new(endpoints).user("alice");
    let args = vtask_model::CreateTask {
        obj: vtask_model::MoRef::new("VirtualMachine", "vm-c"),
        task_type_id: "com.example.client".into(),
        cancelable: true,
        ..Default::default()
    };
    let task = client.create_task(args).await.unwrap();
    assert_eq!(
        task.reason,
        vtask_model::TaskReason::User {
            user_name: "alice".into()
        },
        "D11"
    );
    let key = task.key.to_string();
    client
        .set_task_state(&key, vtask_model::State::Running, None, None)
        .await
        .unwrap();
    for percent in 1..=30 {
        if percent == 10 {
            cluster.kill(leader);
        }
        let info = client.update_progress(&key, percent).await.unwrap();
        assert_eq!(info.progress, Some(percent));
    }
    let waiter = {
        let key = key.clone();
        let endpoints = client.endpoints().to_vec();
        tokio::spawn(async move {
            vtask_client::Client::new(endpoints)
                .wait(&key, Duration::from_secs(30))
                .await
        })
    };
    let result = vtask_model::AnyValue::Json("{\"copied\":true}".into());
    client
        .set_task_state(&key, vtask_model::State::Success, Some(result), None)
        .await
        .unwrap();
    let done = waiter.await.unwrap().unwrap();
    assert_eq!(done.state, vtask_model::State::Success);
    assert_eq!(done.progress, Some(30));
    let refused = client.update_progress(&key, 31).await.unwrap_err();
    assert!(
        matches!(&refused, vtask_client::Error::Fault(f) if f.kind == vtask_model::FaultKind::InvalidState),
        "{refused:?}"
    );
}

/// The count of histogram `name` in a `/metrics` body.
fn histogram_count(metrics: &str, name: &str) -> u64 {
    let prefix = format!("{name}_count ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} histogram in\n{metrics}"))
        .parse()
        .unwrap_or_else(|e| panic!("{name}_count is not a number: {e}"))
}

/// `/metrics` times each stage of the write path where it happens: the
/// leader its proposals and AppendEntries round trips, every node its log
/// fsyncs and applies, the followers the AppendEntries they served. An
/// operator reads a slow write off these without a profiler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_time_every_stage_of_the_write_path() {
    const WRITES: u64 = 20;
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let leader = cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    let key = running_task(&cluster, leader, "metrics").await;
    let mut tasks = cluster.tasks(leader).await.unwrap();
    for seq in 3..3 + WRITES {
        tasks
            .update_progress(progress_request("metrics", seq, &key, seq as i32))
            .await
            .expect("progress");
    }
    cluster.converged(Duration::from_secs(10)).await.unwrap();

    let metrics = cluster.metrics(leader).await.unwrap();
    // One proposal per write at the least (a lone writer's batches hold one
    // request each); each was fsynced and applied here, after a round trip.
    for stage in [
        "vtask_proposal_seconds",
        "vtask_log_sync_seconds",
        "vtask_apply_seconds",
        "vtask_raft_append_entries_seconds",
    ] {
        let count = histogram_count(&metrics, stage);
        assert!(count >= WRITES, "leader {stage}: {count} < {WRITES}");
    }
    for follower in cluster.ids().into_iter().filter(|&id| id != leader) {
        let metrics = cluster.metrics(follower).await.unwrap();
        for stage in [
            "vtask_raft_append_entries_served_seconds",
            "vtask_log_sync_seconds",
            "vtask_apply_seconds",
        ] {
            let count = histogram_count(&metrics, stage);
            assert!(count >= 1, "follower {follower} {stage}: {count}");
        }
        // Buckets are cumulative and the last one holds every sample.
        let inf = metrics
            .lines()
            .find_map(|l| l.strip_prefix("vtask_apply_seconds_bucket{le=\"+Inf\"} "))
            .expect("a +Inf bucket");
        assert_eq!(
            inf.parse::<u64>().unwrap(),
            histogram_count(&metrics, "vtask_apply_seconds")
        );
    }
}
