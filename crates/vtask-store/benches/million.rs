//! A store with a million tasks (issue #6): how long a page of 100 running
//! tasks takes to read (ListTasks by state), and how long the store takes to
//! open again, as a restarted node does before it can serve.
//!
//! Not a test: `cargo bench --workspace --profile dev --bench million`
//! (the dev profile shares the one build; `VTASK_BENCH_TASKS` sets the
//! number of tasks, default 1,000,000; every 10th task is running).

use std::time::{Duration, Instant};

use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
use vtask_model::{
    Caller, Command, CreateTask, MoRef, Privileges, State, TaskFilterSpec, Timestamp,
};
use vtask_store::{Batch, Request, TypeConfig};

const PER_ENTRY: u64 = 1000;

fn request(command: Command) -> Request {
    Request {
        client: None,
        caller: Caller::user("bench", Privileges::ALL),
        command,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let tasks: u64 = std::env::var("VTASK_BENCH_TASKS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let (log, mut sm) = vtask_store::open(dir.path()).expect("open");
    let started = Instant::now();
    let mut index = 0;
    let mut created = 0;
    while created < tasks {
        let mut requests = Vec::new();
        for _ in 0..PER_ENTRY.min(tasks - created) {
            created += 1;
            requests.push(request(Command::CreateTask(CreateTask {
                obj: MoRef::new("VirtualMachine", format!("vm-{created}")),
                task_type_id: "com.example.bench".into(),
                cancelable: true,
                ..Default::default()
            })));
            if created % 10 == 0 {
                requests.push(request(Command::SetTaskState {
                    task: format!("task-{created}"),
                    state: State::Running,
                    result: None,
                    fault: None,
                }));
            }
        }
        index += 1;
        let entry: Entry<TypeConfig> = Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(Batch {
                time: Timestamp::from_micros(1_700_000_000_000_000 + index as i64),
                requests: requests.into(),
            }),
        };
        sm.apply(vec![entry]).await.expect("apply");
    }
    println!(
        "stored {tasks} tasks ({} running) in {:.1?}",
        tasks / 10,
        started.elapsed()
    );

    let read = sm.read_view();
    let running = TaskFilterSpec {
        state: vec![State::Running],
        ..TaskFilterSpec::default()
    };
    let mut samples = Vec::new();
    let mut after = 0;
    for _ in 0..2000 {
        let t = Instant::now();
        let page = read.scan(after, 100, &running).expect("scan");
        samples.push(t.elapsed());
        after = page.last().map_or(0, |task| task.info.key.0);
    }
    samples.sort();
    println!(
        "ListTasks(state=running, 100 per page), 2000 pages: p50 {:.2?} p99 {:.2?} max {:.2?}",
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples[samples.len() - 1]
    );

    drop(read);
    drop(sm);
    drop(log);
    let t = Instant::now();
    let (_log, sm) = vtask_store::open(dir.path()).expect("reopen");
    let opened = t.elapsed();
    let read = sm.read_view();
    let first = read.scan(0, 100, &running).expect("scan after reopen");
    println!(
        "reopened the store in {opened:.2?}; first page after reopen: {} tasks in {:.2?}",
        first.len(),
        t.elapsed()
    );
}
