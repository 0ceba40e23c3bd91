//! The state machine's apply on its own (issue #6): the CPU one node spends
//! per UpdateProgress, the request the `progress` workload sends, with every
//! write a real one (task, change record, history, reply, session).
//!
//! Not a test: `cargo bench --workspace --profile dev --bench apply`
//! (`VTASK_BENCH_CLIENTS` clients, default 64, each with its own running
//! task and session; `VTASK_BENCH_BATCH` requests per entry, default 32).

use std::time::Instant;

use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
use vtask_model::{Caller, Command, CreateTask, MoRef, Privileges, State, Timestamp};
use vtask_store::{Batch, ClientRef, Request, TypeConfig};

const UPDATES: u64 = 200_000;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

fn request(client: Option<ClientRef>, command: Command) -> Request {
    Request {
        client,
        caller: Caller::user("bench", Privileges::ALL),
        command,
    }
}

/// CPU time used so far by `clock`: this thread (apply runs on it) or the
/// whole process (RocksDB's flushes and compactions too).
fn cpu(clock: libc::clockid_t) -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec to a valid pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let clients = env("VTASK_BENCH_CLIENTS", 64);
    let per_entry = env("VTASK_BENCH_BATCH", 32);
    let dir = tempfile::tempdir().expect("temp dir");
    let (_log, mut sm) = vtask_store::open(dir.path()).expect("open");
    let mut index = 0;
    let mut entry = |requests: Vec<Request>| {
        index += 1;
        Entry::<TypeConfig> {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(Batch {
                time: Timestamp::from_micros(1_700_000_000_000_000 + index as i64),
                requests: requests.into(),
            }),
        }
    };
    let mut setup = Vec::new();
    for n in 1..=clients {
        setup.push(request(
            None,
            Command::CreateTask(CreateTask {
                obj: MoRef::new("VirtualMachine", format!("vm-{n}")),
                task_type_id: "com.example.bench".into(),
                cancelable: true,
                ..Default::default()
            }),
        ));
        setup.push(request(
            None,
            Command::SetTaskState {
                task: format!("task-{n}"),
                state: State::Running,
                result: None,
                fault: None,
            },
        ));
    }
    sm.apply(vec![entry(setup)]).await.expect("setup");

    let mut seq = 0;
    let mut sent = 0;
    let (wall, thread, process) = (
        Instant::now(),
        cpu(libc::CLOCK_THREAD_CPUTIME_ID),
        cpu(libc::CLOCK_PROCESS_CPUTIME_ID),
    );
    while sent < UPDATES {
        let mut requests = Vec::new();
        for _ in 0..per_entry {
            let n = sent % clients + 1;
            if n == 1 {
                seq += 1;
            }
            sent += 1;
            requests.push(request(
                Some(ClientRef {
                    id: format!("bench-client-{n}"),
                    seq,
                }),
                Command::UpdateProgress {
                    task: format!("task-{n}"),
                    percent_done: (seq % 100) as i32,
                    progress_details: None,
                    api_version: Default::default(),
                },
            ));
        }
        sm.apply(vec![entry(requests)]).await.expect("apply");
    }
    let per_request = |d: std::time::Duration| d.as_secs_f64() * 1e6 / UPDATES as f64;
    println!(
        "{UPDATES} UpdateProgress, {clients} clients, {per_entry} per entry, per request: \
         {:.1} µs wall, {:.1} µs CPU applying, {:.1} µs CPU in all (flushes, compactions)",
        per_request(wall.elapsed()),
        per_request(cpu(libc::CLOCK_THREAD_CPUTIME_ID) - thread),
        per_request(cpu(libc::CLOCK_PROCESS_CPUTIME_ID) - process),
    );
}
