//! The commands that change tasks, who issues them, and what applying one
//! yields. A command is what a log entry carries; [`crate::apply`] turns it
//! into changes and a reply.

use serde::{Deserialize, Serialize};

use crate::collector::{Collector, CollectorId};
use crate::filter::TaskFilterSpec;
use crate::types::{
    AnyValue, KeyAnyValue, LocalizableMessage, MethodFault, MoRef, State, TaskInfo, TaskKey,
    Timestamp,
};

/// One task mutation, with the arguments of spec §4–§7 and D10–D15, D26, D28.
/// Task keys travel as the caller wrote them: a malformed key is a fault of
/// apply (`ManagedObjectNotFound`), not a decoding error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Command {
    CreateTask(CreateTask),
    #[serde(rename_all = "camelCase")]
    CancelTask {
        task: String,
    },
    #[serde(rename_all = "camelCase")]
    UpdateProgress {
        task: String,
        percent_done: i32,
        /// D15: replaces the stored details when given; `None` keeps them.
        #[serde(default)]
        progress_details: Option<Vec<KeyAnyValue>>,
        /// D28: the API version the caller speaks.
        #[serde(default)]
        api_version: ApiVersion,
    },
    #[serde(rename_all = "camelCase")]
    SetTaskState {
        task: String,
        state: State,
        #[serde(default)]
        result: Option<AnyValue>,
        #[serde(default)]
        fault: Option<MethodFault>,
    },
    #[serde(rename_all = "camelCase")]
    SetTaskDescription {
        task: String,
        description: LocalizableMessage,
    },
    /// D26: proposed by the leader when it sees an owner lease run out. Apply
    /// checks the lapse against the entry's time, so a renewal that won the
    /// race makes this a no-op fault, never a wrong failure.
    #[serde(rename_all = "camelCase")]
    LapseLease {
        task: String,
    },
    /// D16: proposed by the leader; removes those of `tasks` that completed at
    /// or before `completed_before` (and at least the minimum retention ago).
    #[serde(rename_all = "camelCase")]
    ExpireTasks {
        tasks: Vec<TaskKey>,
        completed_before: Timestamp,
    },
    /// `TaskManager.CreateCollectorForTasks` (spec §7.3). The receiving node
    /// fills in its configured per-principal limit (D18), so every replica
    /// checks the same number.
    #[serde(rename_all = "camelCase")]
    CreateCollector {
        filter: TaskFilterSpec,
        max_per_owner: u32,
    },
    /// `ReadNextTasks`: moves the cursor, so it is a log entry like any write.
    #[serde(rename_all = "camelCase")]
    ReadNextTasks {
        collector: String,
        max_count: i32,
    },
    #[serde(rename_all = "camelCase")]
    ReadPreviousTasks {
        collector: String,
        max_count: i32,
    },
    #[serde(rename_all = "camelCase")]
    RewindCollector {
        collector: String,
    },
    #[serde(rename_all = "camelCase")]
    ResetCollector {
        collector: String,
    },
    #[serde(rename_all = "camelCase")]
    SetCollectorPageSize {
        collector: String,
        max_count: i32,
    },
    #[serde(rename_all = "camelCase")]
    DestroyCollector {
        collector: String,
    },
    /// D24: proposed by the leader; destroys collectors idle for longer than
    /// `idle_millis` before the entry's time.
    #[serde(rename_all = "camelCase")]
    ExpireCollectors {
        idle_millis: u64,
    },
}

impl Command {
    /// The task a command addresses, for commands that address one.
    pub fn task(&self) -> Option<&str> {
        match self {
            Command::CancelTask { task }
            | Command::UpdateProgress { task, .. }
            | Command::SetTaskState { task, .. }
            | Command::SetTaskDescription { task, .. }
            | Command::LapseLease { task } => Some(task),
            _ => None,
        }
    }

    /// The vSphere method name, for logs and metrics.
    pub fn method(&self) -> &'static str {
        match self {
            Command::CreateTask(_) => "CreateTask",
            Command::CancelTask { .. } => "CancelTask",
            Command::UpdateProgress { .. } => "UpdateProgress",
            Command::SetTaskState { .. } => "SetTaskState",
            Command::SetTaskDescription { .. } => "SetTaskDescription",
            Command::LapseLease { .. } => "LapseLease",
            Command::ExpireTasks { .. } => "ExpireTasks",
            Command::CreateCollector { .. } => "CreateCollectorForTasks",
            Command::ReadNextTasks { .. } => "ReadNextTasks",
            Command::ReadPreviousTasks { .. } => "ReadPreviousTasks",
            Command::RewindCollector { .. } => "RewindCollector",
            Command::ResetCollector { .. } => "ResetCollector",
            Command::SetCollectorPageSize { .. } => "SetCollectorPageSize",
            Command::DestroyCollector { .. } => "DestroyCollector",
            Command::ExpireCollectors { .. } => "ExpireCollectors",
        }
    }
}

/// `TaskManager.CreateTask` (spec §7.2) with our extensions: the entity's
/// display name (D12), a change tag (D14) and an owner lease (D26).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateTask {
    pub obj: MoRef,
    #[serde(default)]
    pub entity_name: Option<String>,
    pub task_type_id: String,
    #[serde(default)]
    pub initiated_by: Option<String>,
    pub cancelable: bool,
    #[serde(default)]
    pub parent_task_key: Option<String>,
    #[serde(default)]
    pub activation_id: Option<String>,
    #[serde(default)]
    pub change_tag: Option<String>,
    /// Owner lease time to live in milliseconds (D26).
    #[serde(default)]
    pub lease_millis: Option<u64>,
}

impl Default for MoRef {
    fn default() -> MoRef {
        MoRef::new("", "")
    }
}

/// The behaviour generation a caller asks for (D28).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ApiVersion {
    /// VirtualCenter 2.x (VI API 2.5): UpdateProgress outside 0..100 is `OutOfBounds`.
    Vim25,
    /// Every later version: out-of-range progress is clamped.
    #[default]
    Current,
}

/// A vSphere privilege id (spec §9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Privilege {
    #[serde(rename = "Task.Create")]
    TaskCreate,
    #[serde(rename = "Task.Update")]
    TaskUpdate,
    #[serde(rename = "Global.CancelTask")]
    GlobalCancelTask,
    #[serde(rename = "System.View")]
    SystemView,
    /// Cluster operations (issue #15): `Cluster.SaveSnapshot`. Not a
    /// vSphere privilege; no task method needs it.
    #[serde(rename = "Cluster.Admin")]
    ClusterAdmin,
}

impl Privilege {
    pub const ALL: [Privilege; 5] = [
        Privilege::TaskCreate,
        Privilege::TaskUpdate,
        Privilege::GlobalCancelTask,
        Privilege::SystemView,
        Privilege::ClusterAdmin,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Privilege::TaskCreate => "Task.Create",
            Privilege::TaskUpdate => "Task.Update",
            Privilege::GlobalCancelTask => "Global.CancelTask",
            Privilege::SystemView => "System.View",
            Privilege::ClusterAdmin => "Cluster.Admin",
        }
    }

    pub fn parse(id: &str) -> Option<Privilege> {
        Privilege::ALL.into_iter().find(|p| p.id() == id)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of privileges, as the receiving node resolved them for the caller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Privileges(u8);

impl Privileges {
    pub const NONE: Privileges = Privileges(0);
    pub const ALL: Privileges = Privileges(0b1_1111);

    pub fn of(list: &[Privilege]) -> Privileges {
        Privileges(list.iter().fold(0, |bits, p| bits | p.bit()))
    }

    pub fn contains(self, privilege: Privilege) -> bool {
        self.0 & privilege.bit() != 0
    }
}

/// Who issued a command. The receiving node authenticates the caller and
/// resolves its privileges; both travel in the log entry, so authorization
/// at apply time reads no node-local state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Caller {
    /// No valid credentials: every task method answers `NotAuthenticated`
    /// once the task is known to exist (D5).
    Anonymous,
    User {
        name: String,
        privileges: Privileges,
    },
    /// The service itself (lease lapses, retention). Holds every privilege.
    System,
}

impl Caller {
    pub fn user(name: impl Into<String>, privileges: Privileges) -> Caller {
        Caller::User {
            name: name.into(),
            privileges,
        }
    }

    pub fn name(&self) -> Option<&str> {
        match self {
            Caller::User { name, .. } => Some(name),
            Caller::Anonymous | Caller::System => None,
        }
    }
}

/// What the log entry provides to apply: the leader's time and the entry's
/// position. Apply reads nothing else from its surroundings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryContext {
    pub time: Timestamp,
    pub term: u64,
    pub index: u64,
}

/// A task as the state machine stores it: the vSphere view plus the owner
/// lease that is ours (D26).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub info: TaskInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<OwnerLease>,
}

/// D26: a task whose owner must keep calling Task.Update methods.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerLease {
    pub owner: String,
    pub ttl_millis: u64,
    pub expires_at: Timestamp,
}

/// The replicated counters that make keys and chain ids (spec §12).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    /// The number of the newest task ever created; 0 before the first.
    pub last_task: u64,
    /// The newest event chain id handed out (D23).
    pub last_event_chain: i32,
    /// The number of the newest collector ever created (D24).
    #[serde(default)]
    pub last_collector: u64,
}

/// Read access to the state that apply needs. The store implements it over
/// RocksDB (with the writes of the current batch on top); [`crate::MemTable`]
/// implements it in memory.
pub trait TaskTable {
    fn task(&self, key: TaskKey) -> Option<Task>;
    fn counters(&self) -> Counters;
    /// Visits the tasks numbered from `from` on (inclusive), upwards when
    /// `ascending`, else downwards, until `visit` returns false.
    fn scan(&self, from: TaskKey, ascending: bool, visit: &mut dyn FnMut(&Task) -> bool);
    fn collector(&self, id: CollectorId) -> Option<Collector>;
    /// Every collector, in id order.
    fn collectors(&self) -> Vec<Collector>;
}

/// One change to the task table.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// A task was created (`before` is `None`) or changed.
    Put {
        before: Option<Task>,
        after: Task,
    },
    /// A task was removed by retention (D16).
    Remove {
        task: Task,
    },
    /// A collector was created or changed (D24).
    PutCollector(Collector),
    RemoveCollector(CollectorId),
}

/// What a command returns to its caller.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Reply {
    /// The task as the command left it (for CreateTask, the new task).
    Task { info: TaskInfo },
    /// The tasks that retention removed.
    Expired { tasks: Vec<TaskKey> },
    /// A new collector and its first latest page (newest first).
    #[serde(rename_all = "camelCase")]
    Collector {
        collector: CollectorId,
        latest_page: Vec<TaskInfo>,
    },
    /// Tasks a collector read, or its rebuilt latest page.
    Tasks { tasks: Vec<TaskInfo> },
    /// The collectors that idle expiry destroyed.
    CollectorsExpired { collectors: Vec<CollectorId> },
    /// A command that returns nothing.
    Done,
}

impl Reply {
    pub fn info(&self) -> Option<&TaskInfo> {
        match self {
            Reply::Task { info } => Some(info),
            _ => None,
        }
    }
}

pub type Outcome = Result<Reply, MethodFault>;

/// The result of applying one command: the reply, and the changes and counters
/// to write atomically with it. A fault comes with no changes.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    pub outcome: Outcome,
    pub changes: Vec<Change>,
    pub counters: Counters,
}
