//! The `vtask` command line against a live three-node cluster: every verb,
//! the faults a user meets, the exit codes (0 done, 1 fault, 2 usage,
//! 3 unavailable, 4 wait timed out) and the JSON output with vSphere's names.

use std::process::Command;

use serde_json::Value;
use vtask_tests::{vtask_bin, Cluster, ClusterConfig};

/// What one `vtask` run printed and how it ended.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// Runs `vtask --endpoints <cluster> <args>` off the async workers.
async fn vtask(endpoints: &str, args: &[&str]) -> Run {
    let mut command = Command::new(vtask_bin());
    command
        .args(["--endpoints", endpoints])
        .args(args)
        .env("VTASK_USER", "alice");
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("vtask runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// One step of the table below: arguments, expected exit code, and text the
/// output (stdout or stderr) must contain.
struct Step {
    args: &'static str,
    code: i32,
    contains: &'static str,
}

const fn step(args: &'static str, code: i32, contains: &'static str) -> Step {
    Step {
        args,
        code,
        contains,
    }
}

/// A task's whole life and every fault on the way, one CLI call per line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_verb_and_fault_through_the_cli() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let endpoints = cluster.endpoints();
    #[rustfmt::skip]
    let table = [
        step("-o key create --type-id com.example.backup --entity VirtualMachine:vm-1 --entity-name web-1 --cancelable", 0, "task-1"),
        step("-o key create --type-id com.example.fixed --entity VirtualMachine:vm-2", 0, "task-2"),
        step("-o key create --type-id com.example.child --entity VirtualMachine:vm-1 --parent task-1 --activation-id act-7 --initiated-by bob --cancelable", 0, "task-3"),
        step("-o json get task-3", 0, r#""rootTaskKey":"task-1""#),
        step("-o json get task-3 --stale", 0, r#""userName":"bob""#),
        step("create --type-id bad/type --entity VirtualMachine:vm-1", 1, "InvalidArgument"),
        step("progress task-1 40", 1, "InvalidState"),
        step("-o json start task-1", 0, r#""state":"running""#),
        step("-o json progress task-1 140", 0, r#""progress":100"#),
        step("-o json progress task-1 40", 0, r#""progress":40"#),
        // A negative percentage is a number to clamp, not a flag.
        step("-o json progress task-1 -5", 0, r#""progress":0"#),
        step("-o json describe task-1 --key phase.copy --arg disk=2 --message copying", 0, r#""key":"phase.copy""#),
        step("set-state task-1 queued", 1, "InvalidState"),
        step("set-state task-1 success --fault SystemError", 1, "InvalidState"),
        step("set-state task-1 error", 1, "InvalidState"),
        step("cancel task-2", 1, "NotSupported"),
        step("-o json cancel task-1", 0, r#""cancelled":true"#),
        step("cancel task-1", 1, "InvalidState"),
        step("wait task-1 --timeout 1s", 4, ""),
        step("-o json set-state task-1 error --fault RequestCanceled", 0, r#""_typeName":"RequestCanceled""#),
        step("-o json wait task-1", 1, r#""state":"error""#),
        step("progress task-1 50", 1, "InvalidState"),
        step("describe task-1 --key late", 1, "InvalidState"),
        step("-o json start task-2", 0, r#""startTime""#),
        step(r#"-o json set-state task-2 success --result {"vm":"vm-2"}"#, 0, r#""state":"success""#),
        step("-o json wait task-2", 0, r#""result""#),
        step("get task-99", 1, "was ever created"),
        step("get nonsense", 1, "ManagedObjectNotFound"),
        step("-o key list --state error", 0, "task-1"),
        step("-o key list --entity VirtualMachine:vm-1 --limit 1 --after task-1", 0, "task-3"),
        step("-o key list --initiated-by bob", 0, "task-3"),
        step("-o key list --activation-id act-7", 0, "task-3"),
        step("-o key list --parent task-1", 0, "task-3"),
        step("-o key list --root task-1", 0, "task-3"),
        step("list --entity nonsense", 2, "TYPE:VALUE"),
        step("-o key recent", 0, "task-3"),
        step("-o json history task-1", 0, "CancelTask"),
        step("-o key collector create --state error,success", 0, "collector-1"),
        step("-o key collector next collector-1 --max 1", 0, "task-1"),
        step("-o key collector next collector-1", 0, "task-2"),
        step("-o key collector prev collector-1 --max 5", 0, "task-2"),
        step("collector rewind collector-1", 0, ""),
        step("-o key collector next collector-1 --max 1", 0, "task-1"),
        step("collector reset collector-1", 0, ""),
        step("-o key collector page collector-1", 0, "task-2"),
        step("-o key collector page-size collector-1 1", 0, "task-2"),
        step("collector page-size collector-1 1001", 1, "maxCount"),
        step("collector next collector-1 --max 0", 1, "InvalidArgument"),
        step("collector destroy collector-1", 0, ""),
        step("collector next collector-1", 1, "ManagedObjectNotFound"),
        step("-o json cluster status", 0, "leader"),
        step("frobnicate", 2, ""),
    ];
    for (i, s) in table.iter().enumerate() {
        let args = shell_words(s.args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = vtask(&endpoints, &args).await;
        let shown = format!("{}{}", run.stdout, run.stderr);
        assert!(
            run.code == s.code && shown.contains(s.contains),
            "step {}: vtask {}\nwanted exit {} and {:?}\ngot exit {}\nstdout: {}\nstderr: {}",
            i + 1,
            s.args,
            s.code,
            s.contains,
            run.code,
            run.stdout,
            run.stderr
        );
    }

    // The table: a header and one line per task, each ending in a newline,
    // so a shell prompt starts on a line of its own.
    let list = vtask(&endpoints, &["list"]).await;
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(list.stdout.ends_with('\n'), "{:?}", list.stdout);
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{:?}", list.stdout);
    assert!(lines[0].starts_with("KEY"), "{:?}", lines[0]);
    assert!(
        lines.iter().all(|line| line == &line.trim_end()),
        "trailing blanks: {:?}",
        list.stdout
    );

    // JSON output uses vSphere's names, lower-case states and RFC 3339 times.
    let task = vtask(&endpoints, &["-o", "json", "get", "task-1"])
        .await
        .json();
    for field in [
        "key",
        "state",
        "cancelled",
        "cancelable",
        "description",
        "error",
        "reason",
        "queueTime",
        "startTime",
        "completeTime",
        "entity",
        "entityName",
        "descriptionId",
        "eventChainId",
        "progress",
    ] {
        assert!(task.get(field).is_some(), "no {field} in {task}");
    }
    assert_eq!(task["state"], "error");
    assert_eq!(task["error"]["_typeName"], "RequestCanceled");
    assert!(task["error"]["localizedMessage"].is_string(), "{task}");
    let queued = task["queueTime"].as_str().unwrap();
    assert!(queued.ends_with('Z') && queued.contains('T'), "{queued}");
}

/// No node answers: exit code 3 and a message saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cluster_is_exit_code_three() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let mut command = Command::new(vtask_bin());
    command.args(["--endpoints", &closed, "--retry-for", "1s", "get", "task-1"]);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{output:?}");
}

/// The table's arguments are separated by single spaces (none contains one).
fn shell_words(text: &str) -> Vec<String> {
    text.split(' ').map(String::from).collect()
}
