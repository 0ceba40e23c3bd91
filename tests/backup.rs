//! Online backup and restore (issue #15): `vtask snapshot save` while the
//! cluster takes writes, `vtask snapshot status`, `vtaskd restore` into a
//! new three-node cluster, and what the new cluster must serve: the same
//! digest, every task, the D27 sessions (a retry from before the backup is
//! answered, not applied again) and revisions that go on from the saved
//! ones; a node of the old cluster refuses the new one; a damaged file is
//! refused; saving needs Cluster.Admin.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use vtask_proto::raft::v1::raft_service_client::RaftServiceClient;
use vtask_proto::raft::v1::RaftRequest;
use vtask_proto::v1::{
    CreateTaskRequest, GetTaskRequest, ManagedObjectReference, ReadConsistency, RequestHeader,
};
use vtask_tests::{hash_token, vtask_bin, vtaskd_bin, Cluster, ClusterConfig};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(command: &mut Command) -> Run {
    let output = command.output().expect("the binary runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `vtask --endpoints E ARGS` as `auth` (a token, or a user name on an
/// insecure cluster), off the async workers.
async fn vtask(endpoints: &str, auth: (&str, &str), args: &[&str]) -> Run {
    let mut command = Command::new(vtask_bin());
    command
        .args(["--endpoints", endpoints])
        .args(args)
        .env(auth.0, auth.1);
    tokio::task::spawn_blocking(move || run(&mut command))
        .await
        .unwrap()
}

fn restore(file: &Path, data_dir: &Path, id: u64, initial_cluster: &str) -> Run {
    run(Command::new(vtaskd_bin())
        .arg("restore")
        .arg("--from")
        .arg(file)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--node-id", &id.to_string()])
        .args(["--initial-cluster", initial_cluster]))
}

/// The request a client that retries sends again unchanged (D27).
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

/// `message` with a bearer token.
fn with<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

fn get(key: &str) -> GetTaskRequest {
    GetTaskRequest {
        key: key.into(),
        consistency: ReadConsistency::Linearizable as i32,
    }
}

/// The users of the restored cluster: an operator with Cluster.Admin and a
/// viewer without it.
fn users_file(path: &Path) {
    let text = format!(
        r#"[roles]
operator = ["Task.Create", "Task.Update", "Global.CancelTask", "System.View", "Cluster.Admin"]
viewer = ["System.View"]

[[users]]
name = "operator"
token_sha256 = "{}"
roles = ["operator"]

[[users]]
name = "viewer"
token_sha256 = "{}"
roles = ["viewer"]
"#,
        hash_token("tok-operator"),
        hash_token("tok-viewer")
    );
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_under_load_restores_into_a_new_cluster_that_serves_the_same_state_d27() {
    let old = Cluster::start(ClusterConfig::default()).await.unwrap();
    let old_endpoints = old.endpoints();
    let old_id = old.status(1).await.unwrap().cluster_id;
    assert_eq!(old_id.len(), 32, "a new cluster has an id: {old_id:?}");

    // Tasks and one request with a known retry identity, before the backup.
    let mut manager = old.manager(1).await.unwrap();
    let mut before = Vec::new();
    for i in 0..20 {
        let reply = manager
            .create_task(create_request("backup-client", i + 1, &format!("vm-{i}")))
            .await
            .unwrap()
            .into_inner();
        before.push(reply.info.unwrap());
    }
    let retried = create_request("backup-client", 7, "vm-6");

    // Writes keep coming while the backup is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        let client =
            vtask_client::Client::new(old_endpoints.split(',').map(String::from).collect())
                .user("loader");
        tokio::spawn(async move {
            let mut written = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let args = vtask_model::CreateTask {
                    obj: vtask_model::MoRef::new("VirtualMachine", format!("load-{written}")),
                    task_type_id: "com.example.load".into(),
                    ..Default::default()
                };
                client.create_task(args).await.expect("a load write");
                written += 1;
            }
            written
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.snap");
    let save = vtask(
        &old_endpoints,
        ("VTASK_USER", "alice"),
        &["snapshot", "save", file.to_str().unwrap()],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let written = load.await.unwrap();
    assert_eq!(save.code, 0, "save: {}{}", save.stdout, save.stderr);
    assert!(written > 0, "the load wrote nothing");
    assert!(!dir.path().join("backup.snap.tmp").exists());

    // `vtask snapshot status` prints the header; it matches the origin.
    let status = vtask(
        &old_endpoints,
        ("VTASK_USER", "alice"),
        &["-o", "json", "snapshot", "status", file.to_str().unwrap()],
    )
    .await;
    assert_eq!(status.code, 0, "status: {}{}", status.stdout, status.stderr);
    let header: Value = serde_json::from_str(status.stdout.trim()).unwrap();
    assert_eq!(header["formatVersion"], 2);
    assert_eq!(header["clusterId"], old_id.as_str());
    assert_eq!(header["checksumOk"], true);
    let saved_index = header["appliedIndex"].as_u64().unwrap();
    let saved_digest = header["stateDigest"].as_str().unwrap().to_string();
    let saved_revision = header["revision"].as_u64().unwrap();
    let saved_tasks = header["tasks"].as_u64().unwrap();
    assert!(saved_tasks >= 20, "{header}");
    assert!(saved_revision >= saved_tasks, "{header}");
    let table = vtask(
        &old_endpoints,
        ("VTASK_USER", "alice"),
        &["snapshot", "status", file.to_str().unwrap()],
    )
    .await;
    assert!(
        table.stdout.contains("checksum        ok"),
        "{}",
        table.stdout
    );

    // A flipped byte: status and restore say so, and leave no directory.
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    let damaged = dir.path().join("damaged.snap");
    std::fs::write(&damaged, &bytes).unwrap();
    let bad = vtask(
        &old_endpoints,
        ("VTASK_USER", "alice"),
        &["snapshot", "status", damaged.to_str().unwrap()],
    )
    .await;
    assert_eq!(bad.code, 2, "{}{}", bad.stdout, bad.stderr);
    assert!(bad.stderr.contains("corrupt snapshot"), "{}", bad.stderr);
    let nowhere = dir.path().join("never");
    let bad = restore(&damaged, &nowhere, 1, "1=127.0.0.1:1");
    assert_eq!(bad.code, 2, "{}{}", bad.stdout, bad.stderr);
    assert!(bad.stderr.contains("corrupt snapshot"), "{}", bad.stderr);
    assert!(!nowhere.exists(), "a failed restore left {nowhere:?}");

    // Restore into three fresh data directories of a new cluster, which
    // runs with a users file.
    let users = dir.path().join("users.toml");
    users_file(&users);
    let mut new = Cluster::prepare(ClusterConfig {
        extra_args: vec![
            "--auth-file".into(),
            users.display().to_string(),
            "--plaintext".into(),
        ],
        ..ClusterConfig::default()
    })
    .unwrap();
    let initial_cluster = new.initial_cluster().to_string();
    let mut new_ids = Vec::new();
    for id in new.ids() {
        let data_dir = new.nodes[&id].data_dir.clone();
        let out = restore(&file, &data_dir, id, &initial_cluster);
        assert_eq!(out.code, 0, "restore {id}: {}{}", out.stdout, out.stderr);
        assert!(out.stdout.contains(&saved_digest), "{}", out.stdout);
        let new_id = out
            .stdout
            .split("new cluster id ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("restore prints the new cluster id")
            .to_string();
        new_ids.push(new_id);
    }
    assert!(new_ids.iter().all(|id| *id == new_ids[0]), "{new_ids:?}");
    assert_ne!(new_ids[0], old_id);
    // A data directory that is not empty is refused, and left alone.
    let again = restore(&file, &new.nodes[&1].data_dir, 1, &initial_cluster);
    assert_eq!(again.code, 2, "{}{}", again.stdout, again.stderr);
    assert!(again.stderr.contains("not empty"), "{}", again.stderr);

    for id in new.ids() {
        new.spawn(id).unwrap();
    }
    new.wait_ready(Duration::from_secs(20)).await.unwrap();
    let new_endpoints = new.endpoints();

    // The same state: the digest of the saved index, on every node.
    let digest = new.converged(Duration::from_secs(10)).await.unwrap();
    assert_eq!(digest, saved_digest);
    for id in new.ids() {
        let status = new.status(id).await.unwrap();
        assert_eq!(status.cluster_id, new_ids[0]);
        assert!(status.applied_index > saved_index, "{status:?}");
    }

    // Every task created before the save reads the same.
    let mut old_manager = old.manager(2).await.unwrap();
    let mut new_manager = new.manager(2).await.unwrap();
    for info in &before {
        let old_info = old_manager
            .get_task(get(&info.key))
            .await
            .unwrap()
            .into_inner()
            .info;
        let new_info = new_manager
            .get_task(with(get(&info.key), "tok-operator"))
            .await
            .unwrap()
            .into_inner()
            .info;
        assert_eq!(new_info, old_info, "{}", info.key);
    }

    // D27: a request retried from before the backup gets its stored reply
    // and is not applied again.
    let reply = new_manager
        .create_task(with(retried, "tok-operator"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.info.as_ref(), Some(&before[6]));
    assert_eq!(
        new.converged(Duration::from_secs(10)).await.unwrap(),
        saved_digest
    );

    // New writes get revisions above the saved ones, and new task numbers.
    let fresh = new_manager
        .create_task(with(
            create_request("after-restore", 1, "vm-new"),
            "tok-operator",
        ))
        .await
        .unwrap()
        .into_inner()
        .info
        .unwrap();
    let fresh_number: u64 = fresh.key.trim_start_matches("task-").parse().unwrap();
    assert!(
        fresh_number > saved_tasks,
        "{} after {saved_tasks} tasks",
        fresh.key
    );
    let history = vtask_client::Client::new(new_endpoints.split(',').map(String::from).collect())
        .token("tok-operator")
        .task_history(&fresh.key)
        .await
        .unwrap();
    assert!(
        history.iter().all(|c| c.revision > saved_revision),
        "revisions {:?} after {saved_revision}",
        history.iter().map(|c| c.revision).collect::<Vec<_>>()
    );

    // A node of the old cluster refuses the new cluster's Raft calls, and
    // the other way round.
    for (cluster, from) in [(&old, &new_ids[0]), (&new, &old_id)] {
        let mut raft = RaftServiceClient::new(cluster.channel(1).await.unwrap());
        let mut request = tonic::Request::new(RaftRequest {
            payload: b"{}".to_vec(),
        });
        request
            .metadata_mut()
            .insert("vtask-cluster-id", from.parse().unwrap());
        let refused = raft.vote(request).await.unwrap_err();
        assert_eq!(
            refused.code(),
            tonic::Code::FailedPrecondition,
            "{refused:?}"
        );
        assert!(
            refused.message().contains("belongs to cluster"),
            "{refused:?}"
        );
    }
    // Both clusters still serve.
    old.converged(Duration::from_secs(10)).await.unwrap();
    new.converged(Duration::from_secs(10)).await.unwrap();

    // Saving needs Cluster.Admin: the viewer gets NoPermission, the operator
    // a backup of the new cluster.
    let denied = vtask(
        &new_endpoints,
        ("VTASK_TOKEN", "tok-viewer"),
        &[
            "snapshot",
            "save",
            dir.path().join("denied.snap").to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(denied.code, 1, "{}{}", denied.stdout, denied.stderr);
    assert!(
        format!("{}{}", denied.stdout, denied.stderr).contains("NoPermission"),
        "{}{}",
        denied.stdout,
        denied.stderr
    );
    assert!(!dir.path().join("denied.snap").exists());
    assert!(!dir.path().join("denied.snap.tmp").exists());
    let second = dir.path().join("second.snap");
    let saved = vtask(
        &new_endpoints,
        ("VTASK_TOKEN", "tok-operator"),
        &["-o", "json", "snapshot", "save", second.to_str().unwrap()],
    )
    .await;
    assert_eq!(saved.code, 0, "{}{}", saved.stdout, saved.stderr);
    let header: Value = serde_json::from_str(saved.stdout.trim()).unwrap();
    assert_eq!(header["clusterId"], new_ids[0].as_str());
    assert!(header["appliedIndex"].as_u64().unwrap() > saved_index);
}
