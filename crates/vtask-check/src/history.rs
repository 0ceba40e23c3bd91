//! A recorded history: what every client asked, when, and what it got back,
//! plus the watch streams the clients read and the authoritative change list
//! of every task, fetched once the run is over.
//!
//! Times are monotonic nanoseconds of the machine that ran the clients; only
//! their order matters. The whole history is serde (JSON), so a run can be
//! saved and checked again later with [`crate::check`].

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use vtask_model::{Caller, Command, MethodFault, TaskInfo, TaskKey};

use crate::error::HistoryError;
use crate::projection::TaskView;

/// Everything one run recorded.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct History {
    pub operations: Vec<Operation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watches: Vec<WatchStream>,
    /// Every change of every task, oldest first, as `GetTaskHistory` returned
    /// it at the end of the run. The watch checks compare streams against it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub changes: BTreeMap<TaskKey, Vec<RecordedChange>>,
}

impl History {
    pub fn from_json(text: &str) -> Result<History, HistoryError> {
        serde_json::from_str(text).map_err(|e| HistoryError::Json(e.to_string()))
    }

    pub fn to_json(&self) -> Result<String, HistoryError> {
        serde_json::to_string_pretty(self).map_err(|e| HistoryError::Json(e.to_string()))
    }

    /// The earliest invocation: the zero of the times we print.
    pub fn origin(&self) -> u64 {
        self.operations
            .iter()
            .map(|op| op.invoke)
            .min()
            .unwrap_or(0)
    }
}

/// One client call, from invocation to completion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub client: u32,
    pub call: Call,
    /// When the client sent the call.
    pub invoke: u64,
    /// When the reply arrived; for [`OpOutcome::Unknown`], when the client
    /// gave up. The checker treats an unknown call as completing at +∞.
    pub complete: u64,
    pub outcome: OpOutcome,
}

/// What a client asked for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "camelCase")]
pub enum Call {
    /// A task mutation, with the caller as the receiving node resolves it.
    Mutation { caller: Caller, command: Command },
    /// A linearizable `GetTask`.
    GetTask { task: String },
}

impl Call {
    /// The vSphere method name, for counts and printing.
    pub fn method(&self) -> &'static str {
        match self {
            Call::Mutation { command, .. } => command.method(),
            Call::GetTask { .. } => "GetTask",
        }
    }

    /// The task key the call addresses, as the client wrote it; `None` for
    /// CreateTask, whose task is the one it returns.
    pub fn task(&self) -> Option<&str> {
        match self {
            Call::Mutation { command, .. } => command.task(),
            Call::GetTask { task } => Some(task),
        }
    }

    pub fn is_create(&self) -> bool {
        matches!(
            self,
            Call::Mutation {
                command: Command::CreateTask(_),
                ..
            }
        )
    }
}

/// How a call ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum OpOutcome {
    /// The server answered. A fault reply is a completed call whose effect was
    /// "no change".
    Ok { value: Returned },
    /// Known not to have been applied (refused before it reached the log):
    /// the checker drops it.
    Failed,
    /// Timeout or lost connection: it may or may not have taken effect, at any
    /// time after its invocation.
    Unknown,
}

/// The value of an answered call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Returned {
    Task(TaskInfo),
    Fault(MethodFault),
}

/// One watch stream as one client read it, across reconnects. A client that
/// resumes with `start_revision = last + 1` records nothing special; one that
/// starts over from the current state records [`WatchEvent::Resync`] first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchStream {
    pub watcher: u32,
    pub selector: Selector,
    /// As sent in the first `WatchTasks` call: 0 starts with the current state.
    pub start_revision: u64,
    pub events: Vec<WatchEvent>,
    /// The watcher kept reading until after the final state was reached, so
    /// it must end knowing every task's final state.
    pub ran_to_end: bool,
}

/// What a watch selects, as in `WatchTasksRequest`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Selector {
    Task(TaskKey),
    All,
    Filter(vtask_model::TaskFilterSpec),
}

impl Selector {
    pub fn selects(&self, info: &TaskInfo) -> bool {
        match self {
            Selector::Task(key) => info.key == *key,
            Selector::All => true,
            Selector::Filter(filter) => filter.matches(info),
        }
    }
}

/// One message of a watch stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum WatchEvent {
    /// A change of a task at `revision`.
    Change {
        revision: u64,
        change: ChangeKind,
        info: TaskInfo,
    },
    /// The state of a task at `revision`, part of an initial or resync snapshot.
    Current { revision: u64, info: TaskInfo },
    /// The snapshot is complete as of `revision`; what follows is live.
    Synced { revision: u64 },
    /// The watcher forgets what it knew and gets the current state again.
    Resync,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChangeKind {
    Created,
    Updated,
    /// Removed by retention (D16); the info is the task's last state.
    Removed,
}

/// One entry of a task's authoritative change list (`GetTaskHistory`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedChange {
    pub revision: u64,
    pub change: ChangeKind,
    pub info: TaskInfo,
}

/// One operation as one readable line, times in seconds since `origin`:
/// `c3  1.203s→1.250s  UpdateProgress(task-7, 40) → ok {running 40%}`.
pub struct OperationLine<'a> {
    pub op: &'a Operation,
    pub origin: u64,
}

impl fmt::Display for OperationLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = self.op;
        let invoke = Seconds(op.invoke.saturating_sub(self.origin));
        let complete = Seconds(op.complete.saturating_sub(self.origin));
        write!(f, "c{}  {invoke}→", op.client)?;
        match op.outcome {
            OpOutcome::Unknown => write!(f, "?")?,
            OpOutcome::Ok { .. } | OpOutcome::Failed => write!(f, "{complete}")?,
        }
        write!(f, "  {}", CallText(&op.call))?;
        match &op.outcome {
            OpOutcome::Ok {
                value: Returned::Task(info),
            } if op.call.is_create() => write!(f, " → ok {} {}", info.key, TaskView::from(info)),
            OpOutcome::Ok {
                value: Returned::Task(info),
            } => write!(f, " → ok {}", TaskView::from(info)),
            OpOutcome::Ok {
                value: Returned::Fault(fault),
            } => write!(f, " → {}", fault.kind.type_name()),
            OpOutcome::Failed => write!(f, " → failed"),
            OpOutcome::Unknown => write!(f, " → unknown (gave up at {complete})"),
        }
    }
}

/// Nanoseconds printed as seconds with millisecond precision.
struct Seconds(u64);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0 / 1_000_000;
        write!(f, "{}.{:03}s", millis / 1000, millis % 1000)
    }
}

/// A call in the short form of the report: method and the arguments that
/// tell calls apart.
pub struct CallText<'a>(pub &'a Call);

impl fmt::Display for CallText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let command = match self.0 {
            Call::GetTask { task } => return write!(f, "GetTask({task})"),
            Call::Mutation { command, .. } => command,
        };
        match command {
            Command::CreateTask(args) => {
                write!(f, "CreateTask({}", args.obj)?;
                if args.cancelable {
                    write!(f, ", cancelable")?;
                }
                write!(f, ")")
            }
            Command::CancelTask { task } => write!(f, "CancelTask({task})"),
            Command::UpdateProgress {
                task, percent_done, ..
            } => write!(f, "UpdateProgress({task}, {percent_done})"),
            Command::SetTaskState {
                task,
                state,
                result,
                fault,
            } => {
                write!(f, "SetTaskState({task}, {state}")?;
                if result.is_some() {
                    write!(f, ", result")?;
                }
                if let Some(fault) = fault {
                    write!(f, ", {}", fault.kind.type_name())?;
                }
                write!(f, ")")
            }
            Command::SetTaskDescription { task, description } => {
                write!(f, "SetTaskDescription({task}, {})", description.key)
            }
            other => match other.task() {
                Some(task) => write!(f, "{}({task})", other.method()),
                None => write!(f, "{}(…)", other.method()),
            },
        }
    }
}
