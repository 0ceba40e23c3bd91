//! Hand-written histories: a [`Server`] applies calls to a `MemTable` in the
//! order the test makes them (the "real" order) and records each as an
//! operation with the client and the times the test gives, in milliseconds.
//! A test that wants an anomaly records what a broken server would answer:
//! a read from an older [`Snapshot`], a write that the table never kept, or
//! one applied twice.

#![allow(dead_code)]

use vtask_check::{
    check, Anomaly, AnomalyKind, Call, CheckConfig, History, OpOutcome, Operation, Report, Returned,
};
use vtask_model::{
    Caller, Command, CreateTask, EntryContext, LocalizableMessage, MemTable, MethodFault, MoRef,
    Privileges, Reply, State, Timestamp,
};

pub fn alice() -> Caller {
    Caller::user("alice", Privileges::ALL)
}

pub fn create_args() -> CreateTask {
    CreateTask {
        obj: MoRef::new("VirtualMachine", "vm-1"),
        task_type_id: "com.example.backup".into(),
        cancelable: true,
        ..CreateTask::default()
    }
}

pub fn create() -> Command {
    Command::CreateTask(create_args())
}

pub fn cancel(task: &str) -> Command {
    Command::CancelTask { task: task.into() }
}

pub fn progress(task: &str, percent: i32) -> Command {
    Command::UpdateProgress {
        task: task.into(),
        percent_done: percent,
        progress_details: None,
        api_version: Default::default(),
    }
}

pub fn set_state(task: &str, state: State) -> Command {
    Command::SetTaskState {
        task: task.into(),
        state,
        result: None,
        fault: None,
    }
}

pub fn describe(task: &str, key: &str) -> Command {
    Command::SetTaskDescription {
        task: task.into(),
        description: LocalizableMessage {
            key: key.into(),
            arg: Vec::new(),
            message: None,
        },
    }
}

pub fn ms(millis: u64) -> u64 {
    millis * 1_000_000
}

/// A state of the table to read from later: what a stale replica would serve.
#[derive(Clone)]
pub struct Snapshot(MemTable);

#[derive(Default)]
pub struct Server {
    table: MemTable,
    index: u64,
}

impl Server {
    pub fn new() -> Server {
        Server::default()
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot(self.table.clone())
    }

    fn apply(&mut self, command: &Command) -> Returned {
        self.index += 1;
        let ctx = EntryContext {
            time: Timestamp::from_millis(1_000_000 + self.index as i64),
            term: 3,
            index: 100 + self.index,
        };
        match self.table.apply(&alice(), command, &ctx) {
            Ok(Reply::Task { info }) => Returned::Task(info),
            Ok(other) => panic!("test server: unexpected reply {other:?}"),
            Err(fault) => Returned::Fault(fault),
        }
    }

    /// Applies `command` now; the client saw the reply.
    pub fn ok(&mut self, client: u32, invoke: u64, complete: u64, command: Command) -> Operation {
        let value = self.apply(&command);
        operation(
            client,
            invoke,
            complete,
            mutation(command),
            OpOutcome::Ok { value },
        )
    }

    /// Applies `command` now; the client never saw the reply.
    pub fn applied_unknown(
        &mut self,
        client: u32,
        invoke: u64,
        gave_up: u64,
        command: Command,
    ) -> Operation {
        self.apply(&command);
        operation(
            client,
            invoke,
            gave_up,
            mutation(command),
            OpOutcome::Unknown,
        )
    }

    /// Applies `command` twice (a retry that dedup missed); the client saw the
    /// second reply.
    pub fn twice(
        &mut self,
        client: u32,
        invoke: u64,
        complete: u64,
        command: Command,
    ) -> Operation {
        self.apply(&command);
        self.ok(client, invoke, complete, command)
    }

    /// Applies `command` again without any client seeing it: a retry that
    /// dedup let through after the client had its answer.
    pub fn replay(&mut self, command: Command) {
        self.apply(&command);
    }

    /// Acknowledges `command` with the reply it would get, but keeps nothing:
    /// an acknowledged write that is lost.
    pub fn lost(&mut self, client: u32, invoke: u64, complete: u64, command: Command) -> Operation {
        let kept = self.table.clone();
        let op = self.ok(client, invoke, complete, command);
        self.table = kept;
        op
    }

    /// A linearizable read of the current state.
    pub fn get(&mut self, client: u32, invoke: u64, complete: u64, task: &str) -> Operation {
        let snapshot = self.snapshot();
        self.get_from(&snapshot, client, invoke, complete, task)
    }

    /// A read served from an older state.
    pub fn get_from(
        &mut self,
        snapshot: &Snapshot,
        client: u32,
        invoke: u64,
        complete: u64,
        task: &str,
    ) -> Operation {
        let value = match vtask_model::lookup(&snapshot.0, task) {
            Ok(task) => Returned::Task(task.info),
            Err(fault) => Returned::Fault(fault),
        };
        operation(
            client,
            invoke,
            complete,
            Call::GetTask { task: task.into() },
            OpOutcome::Ok { value },
        )
    }
}

pub fn mutation(command: Command) -> Call {
    Call::Mutation {
        caller: alice(),
        command,
    }
}

/// A call with the given outcome that the server never saw.
pub fn unapplied(
    client: u32,
    invoke: u64,
    complete: u64,
    command: Command,
    outcome: OpOutcome,
) -> Operation {
    operation(client, invoke, complete, mutation(command), outcome)
}

/// A call answered with `fault`, whatever the server state.
pub fn faulted(
    client: u32,
    invoke: u64,
    complete: u64,
    command: Command,
    fault: MethodFault,
) -> Operation {
    operation(
        client,
        invoke,
        complete,
        mutation(command),
        OpOutcome::Ok {
            value: Returned::Fault(fault),
        },
    )
}

pub fn operation(
    client: u32,
    invoke: u64,
    complete: u64,
    call: Call,
    outcome: OpOutcome,
) -> Operation {
    Operation {
        client,
        call,
        invoke: ms(invoke),
        complete: ms(complete),
        outcome,
    }
}

pub fn report(operations: Vec<Operation>) -> Report {
    let history = History {
        operations,
        ..History::default()
    };
    check(&history, &CheckConfig::default()).expect("a valid history")
}

/// The history is linearizable and nothing else is reported.
pub fn assert_linearizable(operations: Vec<Operation>) {
    let report = report(operations);
    assert!(report.is_clean(), "expected no anomaly, got:\n{report}");
}

/// Exactly one anomaly, not linearizable, on `task`, whose minimal
/// sub-history prints as `expect` (one operation per line).
pub fn assert_not_linearizable(operations: Vec<Operation>, task: &str, expect: &str) {
    let report = report(operations);
    let [anomaly] = report.anomalies.as_slice() else {
        panic!("expected one anomaly, got:\n{report}");
    };
    assert_eq!(anomaly.kind, AnomalyKind::NotLinearizable, "{report}");
    assert_eq!(anomaly.task, task, "{report}");
    assert_sub_history(anomaly, expect);
}

pub fn assert_sub_history(anomaly: &Anomaly, expect: &str) {
    let got: Vec<&str> = anomaly.lines[..anomaly.sub_history.len()]
        .iter()
        .map(String::as_str)
        .collect();
    let expect: Vec<&str> = expect
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(got, expect, "\nfull anomaly:\n{anomaly}");
}
