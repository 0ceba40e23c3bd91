//! Larger histories made by a random but correct server: every call gets a
//! random interval and a linearization point inside it (an unknown call that
//! took effect may land any time after its invocation), calls are applied to
//! a `MemTable` in linearization-point order, and each records what the
//! table answered. Such a history is linearizable by construction; with one
//! read made stale it is not.

mod common;

use std::time::{Duration, Instant};

use common::*;
use vtask_check::{
    check, AnomalyKind, Call, CheckConfig, History, OpOutcome, Operation, Report, Returned,
};
use vtask_model::{
    AnyValue, Command, EntryContext, FaultKind, MemTable, MethodFault, Reply, State, Timestamp,
};

/// xorshift64*: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Planned {
    client: u32,
    invoke: u64,
    complete: u64,
    /// When it takes effect; `None`: never.
    point: Option<u64>,
    call: Call,
    outcome: Outcome,
}

#[derive(Clone, Copy, PartialEq)]
enum Outcome {
    Answered,
    Unknown,
    Failed,
}

fn random_command(rng: &mut Rng, task: &str) -> Call {
    let command = match rng.below(100) {
        0..=29 => return Call::GetTask { task: task.into() },
        30..=59 => progress(task, rng.below(101) as i32),
        60..=74 => describe(task, &format!("phase.{}", rng.below(5))),
        75..=84 => set_state(task, State::Running),
        85..=89 => set_state(task, State::Queued),
        90..=92 => cancel(task),
        93..=95 => Command::SetTaskState {
            task: task.into(),
            state: State::Success,
            result: Some(AnyValue::Long(rng.below(1000) as i64)),
            fault: None,
        },
        96..=97 => Command::SetTaskState {
            task: task.into(),
            state: State::Error,
            result: None,
            fault: Some(MethodFault::new(FaultKind::Other {
                type_name: "FileNotFound".into(),
            })),
        },
        _ => Command::SetTaskState {
            task: task.into(),
            state: State::Error,
            result: None,
            fault: None,
        },
    };
    mutation(command)
}

/// `clients` clients making `per_client` calls each on `tasks` tasks,
/// created first; then one final read of every task.
fn random_history(seed: u64, clients: u32, per_client: usize, tasks: u64) -> History {
    let mut rng = Rng(seed | 1);
    let mut planned = Vec::new();
    for i in 0..tasks {
        let t = ms(i * 2);
        planned.push(Planned {
            client: 0,
            invoke: t,
            complete: t + ms(1),
            point: Some(t + 500_000),
            call: mutation(create()),
            outcome: Outcome::Answered,
        });
    }
    let start = ms(tasks * 2 + 1);
    let mut end = start;
    for client in 1..=clients {
        let mut now = start + rng.below(ms(1));
        for _ in 0..per_client {
            let task = format!("task-{}", 1 + rng.below(tasks));
            let invoke = now + rng.below(ms(2));
            let complete = invoke + 1 + rng.below(ms(8));
            let outcome = match rng.below(100) {
                0..=2 => Outcome::Unknown,
                3 => Outcome::Failed,
                _ => Outcome::Answered,
            };
            let point = match outcome {
                Outcome::Answered => Some(invoke + rng.below(complete - invoke)),
                Outcome::Unknown if rng.below(2) == 0 => Some(invoke + rng.below(ms(40))),
                Outcome::Unknown | Outcome::Failed => None,
            };
            planned.push(Planned {
                client,
                invoke,
                complete,
                point,
                call: random_command(&mut rng, &task),
                outcome,
            });
            now = complete;
            end = end.max(complete).max(point.unwrap_or(0));
        }
    }
    for i in 1..=tasks {
        let t = end + ms(1 + i);
        planned.push(Planned {
            client: 0,
            invoke: t,
            complete: t + ms(1),
            point: Some(t + 1),
            call: Call::GetTask {
                task: format!("task-{i}"),
            },
            outcome: Outcome::Answered,
        });
    }
    run(planned)
}

/// Applies the planned calls in the order of their linearization points.
fn run(planned: Vec<Planned>) -> History {
    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by_key(|&i| planned[i].point.unwrap_or(u64::MAX));
    let mut table = MemTable::new();
    let mut answers: Vec<Option<Returned>> = vec![None; planned.len()];
    for (n, &i) in order.iter().enumerate() {
        let p = &planned[i];
        let Some(point) = p.point else { continue };
        let ctx = EntryContext {
            time: Timestamp::from_micros((point / 1000) as i64),
            term: 1,
            index: n as u64 + 1,
        };
        answers[i] = Some(match &p.call {
            Call::GetTask { task } => match vtask_model::lookup(&table, task) {
                Ok(task) => Returned::Task(task.info),
                Err(fault) => Returned::Fault(fault),
            },
            Call::Mutation { caller, command } => match table.apply(caller, command, &ctx) {
                Ok(Reply::Task { info }) => Returned::Task(info),
                Ok(other) => panic!("unexpected reply {other:?}"),
                Err(fault) => Returned::Fault(fault),
            },
        });
    }
    let operations = planned
        .into_iter()
        .zip(answers)
        .map(|(p, answer)| Operation {
            client: p.client,
            call: p.call,
            invoke: p.invoke,
            complete: p.complete,
            outcome: match (p.outcome, answer) {
                (Outcome::Answered, Some(value)) => OpOutcome::Ok { value },
                (Outcome::Failed, _) => OpOutcome::Failed,
                (Outcome::Unknown, _) | (Outcome::Answered, None) => OpOutcome::Unknown,
            },
        })
        .collect();
    History {
        operations,
        ..History::default()
    }
}

fn timed_check(history: &History) -> (Report, Duration) {
    let started = Instant::now();
    let report = check(history, &CheckConfig::default()).expect("a valid history");
    (report, started.elapsed())
}

#[test]
fn five_clients_times_two_hundred_calls_check_fast() {
    // Four tasks, and all calls on one task: the hardest case for the search.
    for (seed, tasks) in [(1, 4), (2, 4), (3, 4), (4, 1)] {
        let history = random_history(seed, 5, 200, tasks);
        let (report, took) = timed_check(&history);
        eprintln!(
            "seed {seed}: {} calls on {tasks} task(s) checked in {took:?}",
            history.operations.len()
        );
        assert!(report.is_clean(), "seed {seed}:\n{report}");
        assert_eq!(report.histories_checked, tasks as usize);
        // Generous for an unoptimised build on a loaded machine; the figure
        // printed above is the one to watch.
        assert!(took < Duration::from_secs(5), "seed {seed}: {took:?}");
    }
}

#[test]
fn one_stale_read_in_a_large_history_is_found_and_shrunk() {
    let mut history = random_history(7, 5, 200, 4);
    // Make one late read of task-1 answer with the task as it was created.
    let created = history
        .operations
        .iter()
        .find_map(|op| match (&op.call, &op.outcome) {
            (
                call,
                OpOutcome::Ok {
                    value: Returned::Task(info),
                },
            ) if call.is_create() && info.key.0 == 1 => Some(info.clone()),
            _ => None,
        })
        .expect("task-1 was created");
    let read = history
        .operations
        .iter_mut()
        .rev()
        .find(|op| {
            matches!(&op.call, Call::GetTask { task } if task == "task-1")
                && matches!(
                    &op.outcome,
                    OpOutcome::Ok {
                        value: Returned::Task(info)
                    } if info.state != State::Queued
                )
        })
        .expect("a read of task-1 after it started");
    read.outcome = OpOutcome::Ok {
        value: Returned::Task(created),
    };
    let (report, took) = timed_check(&history);
    eprintln!("stale read found and shrunk in {took:?}");
    let kinds: Vec<(AnomalyKind, &str)> = report
        .anomalies
        .iter()
        .map(|a| (a.kind, a.task.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [(AnomalyKind::NotLinearizable, "task-1")],
        "{report}"
    );
    let anomaly = &report.anomalies[0];
    assert!(anomaly.sub_history.len() <= 4, "{anomaly}");
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[test]
fn a_saved_history_checks_the_same_after_a_json_round_trip() {
    for history in [random_history(11, 3, 30, 2), lost_write()] {
        let json = history.to_json().expect("serializable");
        let again = History::from_json(&json).expect("parses");
        assert_eq!(again, history);
        let report = check(&history, &CheckConfig::default()).expect("valid");
        let report_again = check(&again, &CheckConfig::default()).expect("valid");
        assert_eq!(report, report_again);
        let report_json = serde_json::to_string(&report).expect("serializable");
        let parsed: Report = serde_json::from_str(&report_json).expect("parses");
        assert_eq!(parsed, report);
    }
    assert_eq!(
        check(&lost_write(), &CheckConfig::default())
            .expect("valid")
            .anomalies
            .len(),
        1
    );
}

fn lost_write() -> History {
    let mut s = Server::new();
    History {
        operations: vec![
            s.ok(1, 0, 10, create()),
            s.lost(2, 20, 30, set_state("task-1", State::Running)),
            s.get(3, 40, 50, "task-1"),
        ],
        ..History::default()
    }
}

#[test]
fn a_history_that_is_not_json_is_a_typed_error() {
    let error = History::from_json("{\"operations\": 3}").expect_err("not a history");
    assert!(
        error
            .to_string()
            .starts_with("the history is not valid JSON"),
        "{error}"
    );
}
