//! Authentication and the vSphere privileges (spec §9, D5) on a live
//! cluster: every principal against every method, tokens revoked by a
//! reload, identity kept across forwarding, and a node that will not start
//! without a users file.

use std::path::Path;
use std::time::Duration;

use vtask_client::{Client, Error, WatchSelector};
use vtask_model::{CreateTask, FaultKind, LocalizableMessage, MoRef, State, TaskFilterSpec};
use vtask_tests::{hash_token, Cluster, ClusterConfig};

/// A principal of the table: its token and the privileges its roles give.
struct Principal {
    label: &'static str,
    token: Option<&'static str>,
    privileges: &'static [&'static str],
}

/// The users file lists the tokens of `create`..`nobody` (each a role of
/// its own); `stranger` presents a token the file does not know, and
/// `anonymous` none at all.
const PRINCIPALS: &[Principal] = &[
    Principal {
        label: "admin",
        token: Some("tok-admin"),
        privileges: &[
            "Task.Create",
            "Task.Update",
            "Global.CancelTask",
            "System.View",
        ],
    },
    Principal {
        label: "creator",
        token: Some("tok-creator"),
        privileges: &["Task.Create"],
    },
    Principal {
        label: "updater",
        token: Some("tok-updater"),
        privileges: &["Task.Update"],
    },
    Principal {
        label: "canceller",
        token: Some("tok-canceller"),
        privileges: &["Global.CancelTask"],
    },
    Principal {
        label: "viewer",
        token: Some("tok-viewer"),
        privileges: &["System.View"],
    },
    Principal {
        label: "nobody",
        token: Some("tok-nobody"),
        privileges: &[],
    },
    Principal {
        label: "stranger",
        token: Some("tok-unknown"),
        privileges: &[],
    },
    Principal {
        label: "anonymous",
        token: None,
        privileges: &[],
    },
];

#[derive(Clone, Copy, Debug)]
enum Method {
    CreateTask,
    UpdateProgress,
    SetTaskState,
    SetTaskDescription,
    CancelTask,
    GetTask,
    ListTasks,
    RecentTasks,
    WatchTasks,
    WaitTask,
    GetTaskHistory,
    CreateCollector,
}

const METHODS: &[(Method, &str)] = &[
    (Method::CreateTask, "Task.Create"),
    (Method::UpdateProgress, "Task.Update"),
    (Method::SetTaskState, "Task.Update"),
    (Method::SetTaskDescription, "Task.Update"),
    (Method::CancelTask, "Global.CancelTask"),
    (Method::GetTask, "System.View"),
    (Method::ListTasks, "System.View"),
    (Method::RecentTasks, "System.View"),
    (Method::WatchTasks, "System.View"),
    (Method::WaitTask, "System.View"),
    (Method::GetTaskHistory, "System.View"),
    (Method::CreateCollector, "System.View"),
];

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    NotAuthenticated,
    NoPermission(String),
    NotFound,
    Other(String),
}

fn users_file(path: &Path, revoked: &[&str]) {
    let mut text = String::from("[roles]\n");
    for p in PRINCIPALS
        .iter()
        .filter(|p| p.label != "stranger" && p.token.is_some())
    {
        let ids: Vec<String> = p.privileges.iter().map(|id| format!("{id:?}")).collect();
        text.push_str(&format!("{} = [{}]\n", p.label, ids.join(", ")));
    }
    for p in PRINCIPALS {
        let Some(token) = p.token else { continue };
        if p.label == "stranger" || revoked.contains(&p.label) {
            continue;
        }
        text.push_str(&format!(
            "\n[[users]]\nname = {:?}\ntoken_sha256 = {:?}\nroles = [{:?}]\n",
            p.label,
            hash_token(token),
            p.label
        ));
    }
    std::fs::write(path, text).unwrap();
}

/// The users file's hash of a token, made by `vtaskd hash-token`, so the
/// test also covers the helper operators use.
async fn auth_cluster() -> (Cluster, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.toml");
    users_file(&path, &[]);
    let cluster = Cluster::start(ClusterConfig {
        // Plain text keeps this test about tokens; tests/tls.rs runs auth over TLS.
        extra_args: vec![
            "--auth-file".into(),
            path.display().to_string(),
            "--plaintext".into(),
        ],
        ..ClusterConfig::default()
    })
    .await
    .unwrap();
    (cluster, dir)
}

fn client(cluster: &Cluster, token: Option<&str>) -> Client {
    let client = Client::new(cluster.endpoints().split(',').map(String::from).collect())
        .retry_for(Duration::from_secs(10))
        // Ignored by an authenticating node: a name must come with a token.
        .user("admin");
    match token {
        Some(token) => client.token(token),
        None => client,
    }
}

fn client_at(endpoints: &str, token: &str) -> Client {
    Client::new(endpoints.split(',').map(String::from).collect())
        .retry_for(Duration::from_secs(10))
        .token(token)
}

fn args(vm: &str) -> CreateTask {
    CreateTask {
        obj: MoRef::new("VirtualMachine", vm),
        task_type_id: "com.example.auth".into(),
        cancelable: true,
        ..Default::default()
    }
}

fn outcome<T>(result: Result<T, Error>) -> Outcome {
    match result {
        Ok(_) => Outcome::Ok,
        Err(Error::Fault(fault)) => match fault.kind {
            FaultKind::NotAuthenticated => Outcome::NotAuthenticated,
            FaultKind::NoPermission { privilege_id, .. } => {
                Outcome::NoPermission(privilege_id.unwrap_or_default())
            }
            FaultKind::ManagedObjectNotFound { .. } => Outcome::NotFound,
            other => Outcome::Other(format!("{other:?}")),
        },
        Err(other) => Outcome::Other(other.to_string()),
    }
}

/// Calls `method` as `caller` on the running task `key`.
async fn call(caller: &Client, method: Method, key: &str) -> Outcome {
    match method {
        Method::CreateTask => outcome(caller.create_task(args("vm-new")).await),
        Method::UpdateProgress => outcome(caller.update_progress(key, 40).await),
        Method::SetTaskState => {
            outcome(caller.set_task_state(key, State::Running, None, None).await)
        }
        Method::SetTaskDescription => outcome(
            caller
                .set_task_description(
                    key,
                    LocalizableMessage {
                        key: "com.example.step".into(),
                        arg: vec![],
                        message: Some("step two".into()),
                    },
                )
                .await,
        ),
        Method::CancelTask => outcome(caller.cancel_task(key).await),
        Method::GetTask => outcome(caller.get_task(key, false).await),
        Method::ListTasks => outcome(caller.list_tasks(TaskFilterSpec::default(), 10, "").await),
        Method::RecentTasks => outcome(caller.recent_tasks().await),
        Method::WatchTasks => {
            let mut watch = caller.watch(WatchSelector::Task(key.into()), 0);
            outcome(watch.next().await)
        }
        Method::WaitTask => outcome(caller.wait(key, Duration::from_millis(10)).await),
        Method::GetTaskHistory => outcome(caller.task_history(key).await),
        Method::CreateCollector => {
            outcome(caller.create_collector(TaskFilterSpec::default()).await)
        }
    }
}

/// Spec §9 and D5: every principal × every method. A known user without the
/// method's privilege gets NoPermission naming it; a caller without a known
/// token gets NotAuthenticated; a task that does not exist is reported as
/// such before either (D5), to everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_principal_gets_what_its_privileges_allow() {
    let (mut cluster, dir) = auth_cluster().await;
    let admin = client(&cluster, Some("tok-admin"));
    let mut failures = Vec::new();
    let mut cases = 0;
    for principal in PRINCIPALS {
        let caller = client(&cluster, principal.token);
        let known = principal.token.is_some() && principal.label != "stranger";
        for &(method, privilege) in METHODS {
            let mut task = admin.create_task(args("vm-1")).await.unwrap();
            task = admin
                .set_task_state(&task.key.to_string(), State::Running, None, None)
                .await
                .unwrap();
            let key = task.key.to_string();
            let expected = if !known {
                Outcome::NotAuthenticated
            } else if principal.privileges.contains(&privilege) {
                Outcome::Ok
            } else {
                Outcome::NoPermission(privilege.into())
            };
            let got = call(&caller, method, &key).await;
            cases += 1;
            if got != expected {
                failures.push(format!(
                    "{} {method:?}: expected {expected:?}, got {got:?}",
                    principal.label
                ));
            }
            // D5: a task that does not exist is not found, whoever asks.
            if !matches!(
                method,
                Method::CreateTask
                    | Method::ListTasks
                    | Method::RecentTasks
                    | Method::CreateCollector
            ) {
                let got = call(&caller, method, "task-999999").await;
                cases += 1;
                if got != Outcome::NotFound {
                    failures.push(format!(
                        "{} {method:?} on a missing task: expected NotFound, got {got:?}",
                        principal.label
                    ));
                }
            }
        }
    }

    // A revoked token stops working once every node has re-read the file;
    // the others keep theirs.
    let path = dir.path().join("users.toml");
    users_file(&path, &["viewer"]);
    for id in cluster.ids() {
        assert!(cluster.hangup(id), "node {id} is running");
    }
    let viewer = client(&cluster, Some("tok-viewer"));
    let probe = admin
        .create_task(args("vm-2"))
        .await
        .unwrap()
        .key
        .to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for id in cluster.ids() {
        let one = client_at(&cluster.nodes[&id].grpc, "tok-viewer");
        loop {
            let got = outcome(one.get_task(&probe, true).await);
            if got == Outcome::NotAuthenticated {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "node {id} still accepts the revoked token: {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    cases += 1;
    assert_eq!(
        outcome(viewer.list_tasks(TaskFilterSpec::default(), 1, "").await),
        Outcome::NotAuthenticated
    );
    assert_eq!(call(&admin, Method::GetTask, &probe).await, Outcome::Ok);

    // A broken users file is refused on reload: the previous users stay.
    std::fs::write(&path, "[[users]]\nthis is not toml").unwrap();
    for id in cluster.ids() {
        cluster.hangup(id);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for id in cluster.ids() {
        let one = client_at(&cluster.nodes[&id].grpc, "tok-admin");
        assert_eq!(
            outcome(one.get_task(&probe, true).await),
            Outcome::Ok,
            "node {id}"
        );
    }
    cases += 1;
    assert!(
        cluster.logs().contains("keeping the previous users"),
        "the refusal is logged"
    );
    cluster.converged(Duration::from_secs(10)).await.unwrap();
    for id in cluster.ids() {
        assert!(cluster.stop(id), "node {id} stops cleanly");
    }
    eprintln!("{cases} authorization cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The identity is resolved by the node the client called and travels in
/// the log entry: a write made through a follower is recorded as its caller
/// (history actor, D11 reason), not as the follower or the leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_write_keeps_the_callers_identity() {
    let (cluster, _dir) = auth_cluster().await;
    let leader = cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    let follower = cluster.ids().into_iter().find(|id| *id != leader).unwrap();
    let through_follower = client_at(&cluster.nodes[&follower].grpc, "tok-creator");
    let task = through_follower.create_task(args("vm-9")).await.unwrap();
    let key = task.key.to_string();
    assert_eq!(
        task.reason,
        vtask_model::TaskReason::User {
            user_name: "creator".into()
        }
    );
    let updater = client_at(&cluster.nodes[&follower].grpc, "tok-updater");
    updater
        .set_task_state(&key, State::Running, None, None)
        .await
        .unwrap();
    let admin = client_at(&cluster.nodes[&leader].grpc, "tok-admin");
    let history = admin.task_history(&key).await.unwrap();
    let actors: Vec<Option<&str>> = history.iter().map(|c| c.actor.as_deref()).collect();
    assert_eq!(actors, [Some("creator"), Some("updater")]);
}

/// A node does not start without a users file unless told it may run
/// insecure, and does not start with a users file it cannot read.
#[test]
fn a_node_refuses_to_start_without_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let base = [
        "--node-id",
        "1",
        "--listen",
        "127.0.0.1:1",
        "--http",
        "127.0.0.1:2",
        "--initial-cluster",
        "1=127.0.0.1:1",
    ];
    let run = |extra: &[&str]| {
        std::process::Command::new(vtask_tests::vtaskd_bin())
            .args(base)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(extra)
            .env_remove("VTASKD_AUTH_FILE")
            .env_remove("VTASKD_INSECURE")
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no users file is configured"), "{stderr}");
    assert!(stderr.contains("--insecure"), "{stderr}");

    let bad = dir.path().join("users.toml");
    std::fs::write(&bad, "[roles]\nadmin = [\"Task.Everything\"]\n").unwrap();
    let out = run(&["--auth-file", bad.to_str().unwrap(), "--plaintext"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("\"Task.Everything\" is not a privilege id"),
        "{stderr}"
    );
}
