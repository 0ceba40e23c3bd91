//! Disk full (issue #15): real nodes whose data directories are small
//! tmpfs file systems made for the test, filled with a ballast file.
//!
//! Below its reserve (`--disk-reserve`) a node refuses writes with
//! RESOURCE_EXHAUSTED naming itself and its free space, keeps serving reads,
//! says so on `/health` and `/metrics`, and takes writes again by itself
//! once the ballast is gone. A node whose disk fills up completely (past the
//! reserve: Raft replicates to it regardless) stops with a clear error and
//! exit status 1, and the cluster loses nothing it acknowledged.
//!
//! Mounting needs root; without it (or without tmpfs) the tests say so and
//! pass without checking anything.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tonic::Code;
use vtask_proto::v1::{
    AnyValue, CreateTaskRequest, GetTaskRequest, KeyAnyValue, LocalizableMessage,
    ManagedObjectReference, ReadConsistency, RequestHeader, SetTaskDescriptionRequest, TaskInfo,
    UpdateProgressRequest,
};
use vtask_tests::{Cluster, ClusterConfig};

/// The reserve the nodes run with, and how often they check.
const RESERVE: u64 = 16 << 20;
const CHECK_INTERVAL_MS: u64 = 100;

/// A tmpfs mounted on a directory for the test; unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, mib: u64) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs on {}: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs {
            dir: dir.to_path_buf(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let umount = |lazy: bool| {
            Command::new("umount")
                .args(lazy.then_some("-l"))
                .arg(&self.dir)
                .status()
                .is_ok_and(|s| s.success())
        };
        // A node that has not exited yet keeps it busy: detach it then.
        if !umount(false) && !umount(true) {
            eprintln!("could not unmount {}", self.dir.display());
        }
    }
}

/// A cluster whose nodes' data directories are tmpfs mounts. The fields
/// drop in order: the nodes are killed before their file systems go.
struct Rig {
    cluster: Cluster,
    _mounts: Vec<Tmpfs>,
}

impl Rig {
    /// Three nodes, each on a tmpfs of `mib` MiB; `None` (said on stderr)
    /// where the test cannot mount one.
    async fn start(mib: u64) -> Option<Rig> {
        // SAFETY: geteuid(2) has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED: mounting a tmpfs for the data directories needs root");
            return None;
        }
        let config = ClusterConfig {
            extra_args: vec![
                "--disk-reserve".into(),
                RESERVE.to_string(),
                "--disk-check-interval-ms".into(),
                CHECK_INTERVAL_MS.to_string(),
            ],
            ..ClusterConfig::default()
        };
        let mut cluster = Cluster::prepare(config).unwrap();
        let mut mounts = Vec::new();
        for node in cluster.nodes.values() {
            match Tmpfs::mount(&node.data_dir, mib) {
                Ok(mount) => mounts.push(mount),
                Err(e) => {
                    eprintln!("SKIPPED: {e}");
                    return None;
                }
            }
        }
        for id in cluster.ids() {
            cluster.spawn(id).unwrap();
        }
        let rig = Rig {
            cluster,
            _mounts: mounts,
        };
        rig.cluster
            .wait_ready(Duration::from_secs(20))
            .await
            .unwrap();
        Some(rig)
    }
}

/// The bytes an unprivileged writer may still use on `dir`'s file system.
fn free_bytes(dir: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: a NUL-terminated path and a statvfs for the call to fill in.
    assert_eq!(
        unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) },
        0
    );
    // SAFETY: statvfs succeeded, so it wrote the struct.
    let stat = unsafe { stat.assume_init() };
    stat.f_bavail * stat.f_frsize
}

/// Writes a ballast file into `dir` until at most `leave` bytes are free
/// there (or the file system refuses more); returns its path.
fn fill(dir: &Path, leave: u64) -> PathBuf {
    let path = dir.join("ballast");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    let chunk = vec![0xA5u8; 1 << 20];
    loop {
        let free = free_bytes(dir);
        if free <= leave {
            break;
        }
        let n = (free - leave).min(chunk.len() as u64) as usize;
        match file.write_all(&chunk[..n]) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("writing {}: {e}", path.display()),
        }
    }
    path
}

fn header(seq: u64) -> Option<RequestHeader> {
    Some(RequestHeader {
        client_id: "disk-test".into(),
        seq,
    })
}

/// The requests' sequence numbers: one client, one number per call.
struct Seq(u64);

impl Seq {
    fn next(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }
}

async fn create(cluster: &Cluster, node: u64, seq: u64) -> Result<TaskInfo, tonic::Status> {
    let mut manager = cluster.manager(node).await.unwrap();
    let request = CreateTaskRequest {
        header: header(seq),
        obj: Some(ManagedObjectReference {
            r#type: "VirtualMachine".into(),
            value: format!("vm-{seq}"),
        }),
        task_type_id: "com.example.backup".into(),
        ..Default::default()
    };
    let reply = manager.create_task(request).await?.into_inner();
    Ok(reply.info.expect("CreateTask returns the task"))
}

async fn get(cluster: &Cluster, node: u64, key: &str) -> Result<TaskInfo, tonic::Status> {
    let mut manager = cluster.manager(node).await.unwrap();
    let request = GetTaskRequest {
        key: key.into(),
        consistency: ReadConsistency::Linearizable as i32,
    };
    let reply = manager.get_task(request).await?.into_inner();
    Ok(reply.info.expect("GetTask returns the task"))
}

/// The value of an unlabelled gauge in a `/metrics` body.
fn gauge(metrics: &str, name: &str) -> Option<u64> {
    metrics.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok())?
    })
}

async fn disk_low(cluster: &Cluster, node: u64) -> Option<bool> {
    let metrics = cluster.metrics(node).await.ok()?;
    gauge(&metrics, "vtask_disk_low").map(|v| v == 1)
}

/// Waits until node `node`'s `vtask_disk_low` is `low`.
async fn wait_disk_low(cluster: &Cluster, node: u64, low: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while disk_low(cluster, node).await != Some(low) {
        assert!(
            Instant::now() < deadline,
            "node {node} never reported disk low = {low}\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A refusal for a low disk: RESOURCE_EXHAUSTED naming `node`.
fn assert_disk_full(result: Result<TaskInfo, tonic::Status>, node: u64, through: u64) {
    let status = match result {
        Ok(info) => panic!(
            "a write through node {through} was taken ({}) though node {node}'s disk is low",
            info.key
        ),
        Err(status) => status,
    };
    assert_eq!(
        status.code(),
        Code::ResourceExhausted,
        "through node {through}: {status:?}"
    );
    let message = status.message();
    assert!(
        message.starts_with(&format!("node {node}: disk full: "))
            && message.contains(" free, reserve 16 MiB"),
        "through node {through}: {message}"
    );
}

/// Creates a task through `node`, retrying while the node still refuses
/// (it checks its disk every CHECK_INTERVAL_MS): the key once taken.
async fn create_when_taken(cluster: &Cluster, node: u64, seq: &mut Seq) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match create(cluster, node, seq.next()).await {
            Ok(info) => return info.key,
            Err(status) if status.code() == Code::ResourceExhausted => {
                assert!(
                    Instant::now() < deadline,
                    "node {node} still refuses writes: {status:?}\n{}",
                    cluster.logs()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("a write through node {node}: {status:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_below_its_disk_reserve_refuses_writes_serves_reads_and_recovers() {
    let Some(rig) = Rig::start(160).await else {
        return;
    };
    let cluster = &rig.cluster;
    let ids = cluster.ids();
    let mut seq = Seq(0);
    let mut acked = Vec::new();
    for &node in &ids {
        acked.push(create(cluster, node, seq.next()).await.unwrap().key);
    }
    for &node in &ids {
        let (status, body) = cluster.http_get(node, "/health").await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(!body.contains("disk low"), "{body}");
        let metrics = cluster.metrics(node).await.unwrap();
        assert_eq!(gauge(&metrics, "vtask_disk_low"), Some(0));
        assert_eq!(gauge(&metrics, "vtask_disk_reserve_bytes"), Some(RESERVE));
        assert!(gauge(&metrics, "vtask_disk_free_bytes").unwrap() > RESERVE);
    }

    // A follower's disk fills: writes through it are refused, naming it...
    let leader = cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    let follower = *ids.iter().find(|&&id| id != leader).unwrap();
    let other = *ids
        .iter()
        .find(|&&id| id != leader && id != follower)
        .unwrap();
    let data = cluster.nodes[&follower].data_dir.clone();
    let ballast = fill(&data, RESERVE / 2);
    wait_disk_low(cluster, follower, true).await;
    assert_disk_full(
        create(cluster, follower, seq.next()).await,
        follower,
        follower,
    );
    let mut tasks = cluster.tasks(follower).await.unwrap();
    let progress = tasks
        .update_progress(UpdateProgressRequest {
            header: header(seq.next()),
            task: acked[0].clone(),
            percent_done: 10,
            ..Default::default()
        })
        .await;
    match progress {
        Ok(_) => panic!("UpdateProgress was taken through a node whose disk is low"),
        Err(status) => assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}"),
    }
    // ... while the other nodes take writes, which still reach it ...
    acked.push(create(cluster, leader, seq.next()).await.unwrap().key);
    acked.push(create(cluster, other, seq.next()).await.unwrap().key);
    // ... and it serves linearizable reads of all of them.
    for key in &acked {
        assert_eq!(&get(cluster, follower, key).await.unwrap().key, key);
    }
    let (status, body) = cluster.http_get(follower, "/health").await.unwrap();
    assert_eq!(status, 200, "reads work, so it stays ready: {body}");
    assert!(
        body.starts_with(&format!("ok: leader is node {leader}; disk low: "))
            && body.contains("reserve 16 MiB, writes refused"),
        "{body}"
    );
    let metrics = cluster.metrics(follower).await.unwrap();
    assert_eq!(gauge(&metrics, "vtask_disk_low"), Some(1), "{metrics}");
    assert!(gauge(&metrics, "vtask_disk_free_bytes").unwrap() < RESERVE);
    assert!(
        metrics.contains("vtask_requests_total{method=\"CreateTask\",outcome=\"disk_low\"} 1"),
        "{metrics}"
    );
    let (_, status) = cluster.http_get(follower, "/status").await.unwrap();
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["disk"]["low"], true, "{status}");
    assert_eq!(status["disk"]["reserveBytes"], RESERVE, "{status}");
    let metrics = cluster.metrics(leader).await.unwrap();
    assert_eq!(gauge(&metrics, "vtask_disk_low"), Some(0));

    // The ballast goes: the follower takes writes again, without a restart.
    std::fs::remove_file(&ballast).unwrap();
    acked.push(create_when_taken(cluster, follower, &mut seq).await);
    wait_disk_low(cluster, follower, false).await;
    let (status, body) = cluster.http_get(follower, "/health").await.unwrap();
    assert_eq!(status, 200);
    assert!(!body.contains("disk low"), "{body}");

    // The leader's disk fills: every node refuses writes, naming the leader
    // (a follower forwards them to it), and every node serves reads.
    let leader = cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    let ballast = fill(&cluster.nodes[&leader].data_dir, RESERVE / 2);
    wait_disk_low(cluster, leader, true).await;
    for &node in &ids {
        assert_disk_full(create(cluster, node, seq.next()).await, leader, node);
    }
    for &node in &ids {
        for key in &acked {
            assert_eq!(&get(cluster, node, key).await.unwrap().key, key);
        }
    }
    assert_eq!(
        cluster
            .wait_for_leader(Duration::from_secs(1))
            .await
            .unwrap(),
        leader,
        "a low disk is no reason to change leaders"
    );
    std::fs::remove_file(&ballast).unwrap();
    for &node in &ids {
        acked.push(create_when_taken(cluster, node, &mut seq).await);
    }

    // Nothing acknowledged is missing anywhere, and the replicas agree.
    cluster.converged(Duration::from_secs(10)).await.unwrap();
    for &node in &ids {
        for key in &acked {
            assert_eq!(&get(cluster, node, key).await.unwrap().key, key);
        }
    }
}

/// A description of about 768 KiB: a large log entry, so a few calls
/// write tens of MiB.
fn large_description(round: usize) -> LocalizableMessage {
    let text = "x".repeat(64 * 1024);
    LocalizableMessage {
        key: format!("com.example.round.{round}"),
        arg: (0..12)
            .map(|i| KeyAnyValue {
                key: format!("part{i}"),
                value: Some(AnyValue {
                    value: Some(vtask_proto::v1::any_value::Value::StringValue(text.clone())),
                }),
            })
            .collect(),
        message: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_disk_fills_up_stops_loudly_and_the_cluster_loses_nothing() {
    let Some(mut rig) = Rig::start(512).await else {
        return;
    };
    let ids = rig.cluster.ids();
    let mut seq = Seq(0);
    let leader = rig
        .cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    let full = *ids.iter().find(|&&id| id != leader).unwrap();
    let task = create(&rig.cluster, leader, seq.next()).await.unwrap().key;

    // Nothing is left on the follower's disk; the leader and the other
    // follower, a majority, go on taking large writes, which the full one
    // must append too, until it cannot.
    let ballast = fill(&rig.cluster.nodes[&full].data_dir, 0);
    wait_disk_low(&rig.cluster, full, true).await;
    let mut acked_round = None;
    let mut status = None;
    for round in 0..150 {
        let mut tasks = rig.cluster.tasks(leader).await.unwrap();
        tasks
            .set_task_description(SetTaskDescriptionRequest {
                header: header(seq.next()),
                task: task.clone(),
                description: Some(large_description(round)),
            })
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e:?}\n{}", rig.cluster.logs()));
        acked_round = Some(round);
        status = rig.cluster.wait_exit(full, Duration::from_millis(20)).await;
        if status.is_some() {
            break;
        }
    }
    let status = status.unwrap_or_else(|| {
        panic!(
            "node {full} never ran out of space after 150 large writes\n{}",
            rig.cluster.logs()
        )
    });
    eprintln!(
        "node {full} ran out of space after {} large writes",
        acked_round.map_or(0, |r| r + 1)
    );
    let log = std::fs::read_to_string(&rig.cluster.nodes[&full].log).unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "it exits, loudly: {status:?}\n{log}"
    );
    assert!(
        log.contains("Raft stopped") && log.contains("stopping this node"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
    // The other two go on.
    let after = create(&rig.cluster, leader, seq.next()).await.unwrap().key;

    // Space comes back; the node restarts on its store and catches up.
    std::fs::remove_file(&ballast).unwrap();
    rig.cluster.spawn(full).unwrap();
    rig.cluster
        .wait_ready(Duration::from_secs(20))
        .await
        .unwrap();
    rig.cluster
        .converged(Duration::from_secs(20))
        .await
        .unwrap();
    let round = acked_round.unwrap();
    for &node in &ids {
        let info = get(&rig.cluster, node, &task).await.unwrap();
        assert_eq!(
            info.description.map(|d| d.key),
            Some(format!("com.example.round.{round}")),
            "node {node} holds the last acknowledged description"
        );
        get(&rig.cluster, node, &after).await.unwrap();
    }
}
