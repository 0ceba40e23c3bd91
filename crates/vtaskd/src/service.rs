//! The task service: what every call of the vim.Task API does, written once
//! for every front door (the gRPC API in `api.rs`; vSphere SOAP,
//! google.longrunning and the web view adapt to the same methods).
//!
//! A call here takes the caller (already resolved by its door), model types
//! and a read consistency, and returns model types or a [`ServiceError`].
//! In between it does the parts no door may do differently: bounds on names,
//! the early refusal of callers the model would refuse, the privilege check
//! of reads (D5 order), the read barrier, submission through the leader with
//! the client's retry identity (D27), per-caller limits on long calls, and
//! the request metrics. Doors only translate their wire types and render
//! the error.

use std::sync::Arc;
use std::time::Duration;

use openraft::ServerState;
use vtask_model::{
    Caller, Collector, CollectorId, Command, MethodFault, MoRef, Privilege, Reply, Task,
    TaskFilterSpec, TaskInfo, TaskKey,
};
use vtask_store::{ChangeKind, ChangeRecord, ClientRef, ReadView, Request as LogRequest};

use crate::auth::Auth;
use crate::limits::{LimitReached, OpenCalls};
use crate::membership::{MembershipChange, MembershipDone, MembershipError};
use crate::node::{Node, NodeError};

/// ListTasks page size when the request names none, and the largest allowed.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;
/// D17: how long a completed task stays recent, and how many of them.
const RECENT_WINDOW: Duration = Duration::from_secs(10 * 60);
const RECENT_COMPLETED: usize = 200;
/// The longest WaitTask may wait.
const MAX_WAIT: Duration = Duration::from_secs(600);
/// Events a watch may have buffered before it waits for its reader.
const WATCH_BUFFER: usize = 256;
/// Changes read from the store at a time.
const WATCH_PAGE: usize = 512;

/// Why a call failed, for its door to render (a gRPC status, a SOAP fault).
#[derive(Debug)]
pub enum ServiceError {
    /// The rules refused the call: a vSphere fault for the caller.
    Fault(MethodFault),
    /// No leader, or this node is stopping: the caller may retry elsewhere.
    Unavailable(String),
    /// A resource ran out (RESOURCE_EXHAUSTED): the caller holds as many
    /// long calls on this node as it may, or the disk of this node or of
    /// the leader is below its reserve, so the write was not proposed.
    Exhausted(String),
    /// The node failed (a store read, a reply of the wrong kind).
    Internal(String),
}

impl From<MethodFault> for ServiceError {
    fn from(fault: MethodFault) -> ServiceError {
        ServiceError::Fault(fault)
    }
}

impl From<MembershipError> for ServiceError {
    fn from(error: MembershipError) -> ServiceError {
        match error {
            MembershipError::Invalid(message) => {
                ServiceError::Fault(MethodFault::invalid_argument("member", message))
            }
            MembershipError::InProgress(message) => {
                ServiceError::Fault(MethodFault::invalid_state(message))
            }
            MembershipError::Unavailable(message) => ServiceError::Unavailable(message),
            MembershipError::NotLeader => {
                ServiceError::Unavailable("the leadership moved; retry".into())
            }
        }
    }
}

impl From<NodeError> for ServiceError {
    fn from(error: NodeError) -> ServiceError {
        match error {
            NodeError::Unavailable(message) => ServiceError::Unavailable(message),
            NodeError::Exhausted(message) => ServiceError::Exhausted(message),
            NodeError::Internal(message) => ServiceError::Internal(message),
        }
    }
}

impl From<vtask_store::StoreError> for ServiceError {
    fn from(error: vtask_store::StoreError) -> ServiceError {
        tracing::error!(%error, "store read failed");
        ServiceError::Internal(format!("reading the store: {error}"))
    }
}

impl From<crate::disk::DiskLow> for ServiceError {
    fn from(low: crate::disk::DiskLow) -> ServiceError {
        ServiceError::Exhausted(low.to_string())
    }
}

impl From<LimitReached> for ServiceError {
    fn from(limit: LimitReached) -> ServiceError {
        ServiceError::Exhausted(limit.to_string())
    }
}

pub type Result<T> = std::result::Result<T, ServiceError>;

/// How fresh a read must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consistency {
    /// Sees every write acknowledged before the call (the read barrier).
    Linearizable,
    /// This node's applied state, however far behind the leader it is.
    Stale,
}

/// What the service checks before it serves a call: who calls, and how
/// many long calls each caller holds open on this node.
#[derive(Clone)]
pub struct Gate {
    pub auth: Auth,
    pub watches: Arc<OpenCalls>,
    pub waits: Arc<OpenCalls>,
}

/// A mutation's outcome: the model's reply and the leader that applied it.
pub struct Submitted<T> {
    pub reply: T,
    pub leader: String,
}

/// One page of ListTasks.
pub struct TaskPage {
    pub tasks: Vec<TaskInfo>,
    /// The token of the next page; empty on the last.
    pub next_page_token: String,
    pub revision: u64,
}

/// Which tasks a watch follows.
enum Selector {
    Task(TaskKey),
    Filter(TaskFilterSpec),
    All,
}

impl Selector {
    fn selects(&self, info: &TaskInfo) -> bool {
        match self {
            Selector::Task(key) => info.key == *key,
            Selector::Filter(filter) => filter.matches(info),
            Selector::All => true,
        }
    }
}

/// What a watch asks to follow, before the service has checked it.
pub enum WatchTarget {
    Task(String),
    Filter(TaskFilterSpec),
    All,
}

/// One event of a watch stream.
#[derive(Debug)]
pub struct WatchEvent {
    pub revision: u64,
    pub kind: EventKind,
    pub info: Option<TaskInfo>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A selected task as it is at the start (`start_revision` 0).
    Current,
    /// The current tasks have all been sent; changes follow.
    Synced,
    Created,
    Updated,
    Removed,
    /// The changes asked for are gone (D16): the current state follows again.
    Resync,
}

impl From<ChangeKind> for EventKind {
    fn from(kind: ChangeKind) -> EventKind {
        match kind {
            ChangeKind::Created => EventKind::Created,
            ChangeKind::Updated => EventKind::Updated,
            ChangeKind::Removed => EventKind::Removed,
        }
    }
}

/// A node's view of its cluster (Cluster.Status).
pub struct NodeStatus {
    pub node_id: u64,
    pub members: Vec<MemberStatus>,
    pub leader_id: Option<u64>,
    pub term: u64,
    pub last_log_index: u64,
    pub committed_index: u64,
    pub applied_index: u64,
    pub state_digest: String,
    pub cluster_id: String,
}

/// One part of a backup as it streams ([`TaskService::save_snapshot`]).
pub enum BackupPart {
    /// The next bytes of the file.
    Data(Vec<u8>),
    /// The end: the file's header.
    Done(vtask_store::snapfile::Header),
}

/// The most bytes of a backup in one message: far below gRPC's default
/// 4 MiB limit of a receiver.
const BACKUP_CHUNK: usize = 1 << 20;

/// Hands what is written to it to a stream in chunks of [`BACKUP_CHUNK`],
/// from a blocking thread; fails once the reader has gone away.
struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<Result<BackupPart>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(BACKUP_CHUNK));
        self.tx
            .blocking_send(Ok(BackupPart::Data(chunk)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the reader left"))
    }
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let room = BACKUP_CHUNK - self.buf.len();
        let n = bytes.len().min(room);
        self.buf.extend_from_slice(&bytes[..n]);
        if self.buf.len() >= BACKUP_CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

pub struct MemberStatus {
    pub node_id: u64,
    pub address: String,
    pub role: Role,
    /// The leader's replication position of this member; `None` elsewhere.
    pub matched_index: Option<u64>,
    /// How many entries of the leader's log it lacks; `None` off the leader.
    pub lag: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Leader,
    Candidate,
    Follower,
    Learner,
}

/// The task service of one node.
#[derive(Clone)]
pub struct TaskService {
    node: Node,
    gate: Gate,
}

/// A task key or collector name is at most 256 characters (D12): no
/// longer one exists, and a longer one must not reach the log or be echoed
/// back in a fault.
fn bounded_name(property: &str, value: &str) -> Result<()> {
    if value.chars().count() > vtask_model::validate::MAX_NAME_LEN {
        return Err(MethodFault::invalid_argument(
            property,
            format!(
                "A specified parameter was not correct: {property} is longer than {} characters",
                vtask_model::validate::MAX_NAME_LEN
            ),
        )
        .into());
    }
    Ok(())
}

/// [`bounded_name`] for the task or collector a command names.
fn bounded_target(command: &Command) -> Result<()> {
    match command {
        Command::CancelTask { task }
        | Command::UpdateProgress { task, .. }
        | Command::SetTaskState { task, .. }
        | Command::SetTaskDescription { task, .. }
        | Command::LapseLease { task } => bounded_name("task", task),
        Command::ReadNextTasks { collector, .. }
        | Command::ReadPreviousTasks { collector, .. }
        | Command::RewindCollector { collector }
        | Command::ResetCollector { collector }
        | Command::SetCollectorPageSize { collector, .. }
        | Command::DestroyCollector { collector } => bounded_name("collector", collector),
        Command::CreateTask(_)
        | Command::CreateCollector { .. }
        | Command::ExpireTasks { .. }
        | Command::ExpireCollectors { .. } => Ok(()),
    }
}

/// D5 order for the reads, which are no log entries and so are checked
/// here: the caller must hold `System.View` (spec §9), checked after the
/// object is known to exist.
fn may_view(caller: &Caller, object: Option<&MoRef>) -> Result<()> {
    Ok(vtask_model::authorize(
        caller,
        Privilege::SystemView,
        object,
    )?)
}

/// A filter a read or a watch applies: well-formed and within the limits.
fn checked_filter(filter: TaskFilterSpec) -> Result<TaskFilterSpec> {
    filter.validate()?;
    vtask_model::validate::filter_limits(&filter)?;
    Ok(filter)
}

/// The retry identity of a request (D27): a client id names the client,
/// and `seq` its request; no id, no deduplication.
pub fn client_ref(client_id: &str, seq: u64) -> Result<Option<ClientRef>> {
    if client_id.is_empty() {
        return Ok(None);
    }
    vtask_model::validate::name("header.clientId", client_id)?;
    Ok(Some(ClientRef {
        id: client_id.to_string(),
        seq,
    }))
}

/// Runs a store read on the blocking pool, off the async worker threads.
async fn blocking<T: Send + 'static>(
    read: impl FnOnce() -> std::result::Result<T, vtask_store::StoreError> + Send + 'static,
) -> Result<T> {
    Ok(tokio::task::spawn_blocking(read)
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))??)
}

fn unexpected(method: &str, reply: &Reply) -> ServiceError {
    ServiceError::Internal(format!("{method} returned {reply:?}"))
}

impl TaskService {
    pub fn new(node: Node, gate: Gate) -> TaskService {
        TaskService { node, gate }
    }

    /// The callers' registry: doors resolve their credentials with it.
    pub fn auth(&self) -> &Auth {
        &self.gate.auth
    }

    /// Submits one mutation end to end: bounds, the early refusal of
    /// unauthorized callers, the disk reserve, submission through the
    /// leader, metrics.
    ///
    /// Every call that becomes a log entry comes through here, from every
    /// door, so this is where a node whose disk is low refuses it (a
    /// collector call too: it moves a replicated cursor). The refusal comes
    /// after the caller's own faults, which a retry would not cure; the
    /// leader checks its disk again for a write forwarded to it
    /// (`Node::serve_forwarded`).
    pub async fn submit(
        &self,
        method: &'static str,
        caller: Caller,
        client: Option<ClientRef>,
        command: Command,
    ) -> Result<Submitted<Reply>> {
        bounded_target(&command)?;
        if let Err(refusal) = self.refuse_unauthorized(&caller, &command).await {
            self.node.metrics.request(method, "refused");
            return Err(refusal);
        }
        if let Err(low) = self.node.disk.admit_write() {
            self.node.metrics.request(method, "disk_low");
            return Err(low.into());
        }
        let request = LogRequest {
            client,
            caller,
            command,
        };
        let result = self.node.submit(request).await;
        let outcome_label = match &result {
            Ok((Ok(_), _)) => "ok".to_string(),
            Ok((Err(fault), _)) => fault.kind.type_name().to_string(),
            Err(NodeError::Unavailable(_)) => "unavailable".into(),
            Err(NodeError::Exhausted(_)) => "disk_low".into(),
            Err(NodeError::Internal(_)) => "internal".into(),
        };
        self.node.metrics.request(method, &outcome_label);
        let (outcome, leader) = result?;
        Ok(Submitted {
            reply: outcome?,
            leader,
        })
    }

    /// [`TaskService::submit`] for the methods that return the task they changed.
    pub async fn submit_task(
        &self,
        method: &'static str,
        caller: Caller,
        client: Option<ClientRef>,
        command: Command,
    ) -> Result<Submitted<TaskInfo>> {
        let done = self.submit(method, caller, client, command).await?;
        match done.reply {
            Reply::Task { info } => Ok(Submitted {
                reply: info,
                leader: done.leader,
            }),
            other => Err(unexpected(method, &other)),
        }
    }

    /// [`TaskService::submit`] for the collector methods that return tasks.
    pub async fn submit_tasks(
        &self,
        method: &'static str,
        caller: Caller,
        client: Option<ClientRef>,
        command: Command,
    ) -> Result<Submitted<Vec<TaskInfo>>> {
        let done = self.submit(method, caller, client, command).await?;
        match done.reply {
            Reply::Tasks { tasks } => Ok(Submitted {
                reply: tasks,
                leader: done.leader,
            }),
            other => Err(unexpected(method, &other)),
        }
    }

    /// [`TaskService::submit`] for the collector methods that return nothing.
    pub async fn submit_done(
        &self,
        method: &'static str,
        caller: Caller,
        client: Option<ClientRef>,
        command: Command,
    ) -> Result<String> {
        let done = self.submit(method, caller, client, command).await?;
        match done.reply {
            Reply::Done => Ok(done.leader),
            other => Err(unexpected(method, &other)),
        }
    }

    /// CreateCollectorForTasks: the new collector's name and its first page.
    pub async fn create_collector(
        &self,
        caller: Caller,
        client: Option<ClientRef>,
        filter: Option<TaskFilterSpec>,
    ) -> Result<Submitted<(CollectorId, Vec<TaskInfo>)>> {
        let filter = match filter {
            Some(filter) => {
                vtask_model::validate::filter_limits(&filter)?;
                filter
            }
            None => TaskFilterSpec::default(),
        };
        let command = Command::CreateCollector {
            filter,
            // D18: the limit travels in the entry, so every replica checks the same one.
            max_per_owner: self.node.settings.max_collectors,
        };
        const METHOD: &str = "CreateCollectorForTasks";
        let done = self.submit(METHOD, caller, client, command).await?;
        match done.reply {
            Reply::Collector {
                collector,
                latest_page,
            } => Ok(Submitted {
                reply: (collector, latest_page),
                leader: done.leader,
            }),
            other => Err(unexpected(METHOD, &other)),
        }
    }

    /// Answers a caller that the model would refuse (NotAuthenticated,
    /// NoPermission) here, after a linearizable read, so that clients
    /// without credentials cannot fill the Raft log with refused entries.
    /// The answer is the model's: its `authorize`, in the D5 order (a
    /// missing task or collector is reported first). Authorized callers
    /// pass without a read; the model checks them again at apply.
    async fn refuse_unauthorized(&self, caller: &Caller, command: &Command) -> Result<()> {
        let (privilege, task) = match command {
            Command::CreateTask(_) => (Privilege::TaskCreate, None),
            Command::CreateCollector { .. } => (Privilege::SystemView, None),
            Command::CancelTask { task } => (Privilege::GlobalCancelTask, Some(task)),
            Command::UpdateProgress { task, .. }
            | Command::SetTaskState { task, .. }
            | Command::SetTaskDescription { task, .. } => (Privilege::TaskUpdate, Some(task)),
            Command::ReadNextTasks { collector, .. }
            | Command::ReadPreviousTasks { collector, .. }
            | Command::RewindCollector { collector }
            | Command::ResetCollector { collector }
            | Command::SetCollectorPageSize { collector, .. }
            | Command::DestroyCollector { collector } => {
                // Collectors need ownership only (spec §9), which apply
                // checks; an anonymous caller owns none.
                if *caller != Caller::Anonymous {
                    return Ok(());
                }
                self.before_read(Consistency::Linearizable).await?;
                self.owned_collector(caller, collector).await?;
                return Ok(());
            }
            Command::LapseLease { .. }
            | Command::ExpireTasks { .. }
            | Command::ExpireCollectors { .. } => return Ok(()),
        };
        let allowed = match caller {
            Caller::System => true,
            Caller::Anonymous => false,
            Caller::User { privileges, .. } => privileges.contains(privilege),
        };
        if allowed {
            return Ok(());
        }
        let object = match task {
            None => None,
            Some(key) => {
                self.before_read(Consistency::Linearizable).await?;
                let info = self.lookup(key)?.info;
                // As apply does: Global.CancelTask is checked on the entity
                // the task relates to (spec §9).
                Some(match privilege {
                    Privilege::GlobalCancelTask => {
                        info.entity.clone().unwrap_or_else(|| info.task())
                    }
                    _ => info.task(),
                })
            }
        };
        Ok(vtask_model::authorize(caller, privilege, object.as_ref())?)
    }

    /// Waits for the read barrier unless the caller asked for a stale read.
    async fn before_read(&self, consistency: Consistency) -> Result<()> {
        match consistency {
            Consistency::Stale => Ok(()),
            Consistency::Linearizable => Ok(self.node.read_barrier().await?),
        }
    }

    fn lookup(&self, key: &str) -> Result<Task> {
        Ok(self.node.read.lookup(key)??)
    }

    /// The collector `name`, if it exists and `caller` owns it.
    async fn owned_collector(&self, caller: &Caller, name: &str) -> Result<Collector> {
        let read = self.node.read.clone();
        let found = match CollectorId::parse(name) {
            Some(id) => blocking(move || read.collector(id)).await?,
            None => None,
        };
        Ok(vtask_model::collector_for(found, caller, name)?)
    }

    /// GetTask: the task and the revision it was read at.
    pub async fn get_task(
        &self,
        caller: &Caller,
        key: &str,
        consistency: Consistency,
    ) -> Result<(TaskInfo, u64)> {
        bounded_name("key", key)?;
        self.before_read(consistency).await?;
        let task = self.lookup(key)?;
        may_view(caller, Some(&task.info.task()))?;
        let revision = self.node.read.applied().revision;
        Ok((task.info, revision))
    }

    /// ListTasks: tasks in key order after the page token, `page_size` at
    /// most (0: 100).
    pub async fn list_tasks(
        &self,
        caller: &Caller,
        filter: TaskFilterSpec,
        page_size: u32,
        page_token: &str,
        consistency: Consistency,
    ) -> Result<TaskPage> {
        may_view(caller, None)?;
        let filter = checked_filter(filter)?;
        let page_size = match page_size as usize {
            0 => DEFAULT_PAGE,
            n if n <= MAX_PAGE => n,
            n => {
                return Err(MethodFault::invalid_argument(
                    "pageSize",
                    format!(
                        "A specified parameter was not correct: page size {n} is above {MAX_PAGE}"
                    ),
                )
                .into())
            }
        };
        // The page token is the key of the last task of the previous page:
        // keys never change or get reused, so pages are stable across leaders.
        let after = if page_token.is_empty() {
            0
        } else {
            TaskKey::parse(page_token)
                .ok_or_else(|| {
                    MethodFault::invalid_argument(
                        "pageToken",
                        format!(
                            "A specified parameter was not correct: {page_token:?} is not a page token"
                        ),
                    )
                })?
                .0
        };
        self.before_read(consistency).await?;
        let read = self.node.read.clone();
        let revision = read.applied().revision;
        let tasks = blocking(move || read.scan(after, page_size + 1, &filter)).await?;
        let more = tasks.len() > page_size;
        let tasks: Vec<TaskInfo> = tasks.into_iter().take(page_size).map(|t| t.info).collect();
        let next_page_token = match (more, tasks.last()) {
            (true, Some(last)) => last.key.to_string(),
            _ => String::new(),
        };
        Ok(TaskPage {
            tasks,
            next_page_token,
            revision,
        })
    }

    /// D17: every queued and running task, plus the last 200 of the tasks
    /// that completed in the last 10 minutes (by this node's clock: a read
    /// needs no replicated time). Returns the revision and the tasks.
    pub async fn recent_tasks(
        &self,
        caller: &Caller,
        consistency: Consistency,
    ) -> Result<(u64, Vec<TaskInfo>)> {
        may_view(caller, None)?;
        self.before_read(consistency).await?;
        let now = crate::proposer::wall_clock().as_micros();
        let cutoff = vtask_model::Timestamp::from_micros(now - RECENT_WINDOW.as_micros() as i64);
        let read = self.node.read.clone();
        blocking(move || read.recent(cutoff, RECENT_COMPLETED)).await
    }

    /// WaitTask: the task once it has ended, or as it is when `timeout`
    /// (at most 10 minutes; `None`: 10 minutes) has passed.
    pub async fn wait_task(
        &self,
        caller: &Caller,
        key: &str,
        timeout: Option<Duration>,
    ) -> Result<(TaskInfo, u64)> {
        bounded_name("key", key)?;
        let timeout = timeout.map_or(MAX_WAIT, |t| t.min(MAX_WAIT));
        self.before_read(Consistency::Linearizable).await?;
        may_view(caller, Some(&self.lookup(key)?.info.task()))?;
        let _slot = self.gate.waits.acquire(caller.name().unwrap_or_default())?;
        let mut applied = self.node.read.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let task = self.lookup(key)?;
            let revision = self.node.read.applied().revision;
            if task.info.state.is_terminal() || tokio::time::Instant::now() >= deadline {
                return Ok((task.info, revision));
            }
            // Wake on the next apply, or at the deadline.
            if tokio::time::timeout_at(deadline, applied.changed())
                .await
                .is_ok_and(|r| r.is_err())
            {
                return Err(ServiceError::Unavailable(
                    "the node is shutting down".into(),
                ));
            }
        }
    }

    /// Every change of one task, oldest first (D23).
    pub async fn task_history(
        &self,
        caller: &Caller,
        key: &str,
        consistency: Consistency,
    ) -> Result<Vec<ChangeRecord>> {
        bounded_name("key", key)?;
        self.before_read(consistency).await?;
        let task = self.lookup(key)?;
        may_view(caller, Some(&task.info.task()))?;
        let key = task.info.key;
        let read = self.node.read.clone();
        blocking(move || read.history(key)).await
    }

    /// `latestPage` is a property: a read, not a log entry, so it does not
    /// count as a use of the collector (D24). Like every collector method it
    /// needs no privilege, only ownership (spec §9); creating the collector
    /// needed System.View.
    pub async fn latest_page(
        &self,
        caller: &Caller,
        collector: &str,
        consistency: Consistency,
    ) -> Result<Collector> {
        bounded_name("collector", collector)?;
        self.before_read(consistency).await?;
        self.owned_collector(caller, collector).await
    }

    /// WatchTasks: a stream of events from `start_revision` (0: the current
    /// tasks first). It starts from a state at least as new as every write
    /// acknowledged before this call, and ends when the receiver is dropped.
    pub async fn watch(
        &self,
        caller: &Caller,
        target: WatchTarget,
        start_revision: u64,
    ) -> Result<tokio::sync::mpsc::Receiver<Result<WatchEvent>>> {
        // The barrier comes first: a task created just before the call must
        // be found here even when this node has not applied it yet.
        self.before_read(Consistency::Linearizable).await?;
        let selector = match target {
            WatchTarget::Task(key) => {
                bounded_name("key", &key)?;
                let task = self.lookup(&key)?;
                may_view(caller, Some(&task.info.task()))?;
                Selector::Task(task.info.key)
            }
            WatchTarget::Filter(filter) => {
                may_view(caller, None)?;
                Selector::Filter(checked_filter(filter)?)
            }
            WatchTarget::All => {
                may_view(caller, None)?;
                Selector::All
            }
        };
        let slot = self
            .gate
            .watches
            .acquire(caller.name().unwrap_or_default())?;
        let (tx, rx) = tokio::sync::mpsc::channel(WATCH_BUFFER);
        let read = self.node.read.clone();
        tokio::spawn(async move {
            watch(read, selector, start_revision, tx).await;
            // The slot is the watch's until its feeder ends (the reader went away).
            drop(slot);
        });
        Ok(rx)
    }

    /// Cluster.Status: this node's view of membership, positions and the
    /// state digest.
    pub async fn status(&self) -> Result<NodeStatus> {
        let read = self.node.read.clone();
        let (applied_index, state_digest) = blocking(move || read.digest()).await?;
        Ok(self.positions(applied_index, state_digest))
    }

    /// Cluster.SaveSnapshot: needs `Cluster.Admin`; after a read barrier
    /// (the linearizable point), streams a backup of the state as of one
    /// point-in-time view at an applied index at or above the barrier's, so
    /// it holds every write acknowledged before the call.
    pub async fn save_snapshot(
        &self,
        caller: &Caller,
    ) -> Result<tokio::sync::mpsc::Receiver<Result<BackupPart>>> {
        vtask_model::authorize(caller, Privilege::ClusterAdmin, None)?;
        self.node.read_barrier().await?;
        let read = self.node.read.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::task::spawn_blocking(move || {
            let mut out = ChunkWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(BACKUP_CHUNK),
            };
            let last = match read.write_backup(&mut out) {
                Ok(header) => Ok(BackupPart::Done(header)),
                Err(e) => {
                    tracing::warn!("a backup failed: {e}");
                    Err(ServiceError::Internal(format!("writing the backup: {e}")))
                }
            };
            let _ = tx.blocking_send(last);
        });
        Ok(rx)
    }

    /// Cluster.AddMember / PromoteMember / RemoveMember: needs
    /// `Cluster.Admin`; runs on the leader (see `membership.rs`).
    pub async fn change_membership(
        &self,
        caller: &Caller,
        change: MembershipChange,
    ) -> Result<MembershipDone> {
        vtask_model::authorize(caller, Privilege::ClusterAdmin, None)?;
        tracing::info!(
            user = caller.name().unwrap_or("-"),
            ?change,
            "membership change asked"
        );
        Ok(self.node.change_membership(change).await?)
    }

    /// Cluster.TransferLeader: needs `Cluster.Admin`; returns the new leader.
    pub async fn transfer_leader(&self, caller: &Caller, to: Option<u64>) -> Result<u64> {
        vtask_model::authorize(caller, Privilege::ClusterAdmin, None)?;
        tracing::info!(
            user = caller.name().unwrap_or("-"),
            ?to,
            "leader transfer asked"
        );
        Ok(self.node.transfer_leader(to).await?)
    }

    /// [`TaskService::status`] without the state digest (`state_digest`
    /// empty), which reads the whole state: cheap enough for a page to poll
    /// every second (the web view's cluster page).
    pub fn status_without_digest(&self) -> NodeStatus {
        self.positions(self.node.read.applied().index, String::new())
    }

    fn positions(&self, applied_index: u64, state_digest: String) -> NodeStatus {
        let metrics = self.node.raft.metrics().borrow().clone();
        let role_of = |id: u64| -> Role {
            if id == self.node.id {
                match metrics.state {
                    ServerState::Leader => Role::Leader,
                    ServerState::Candidate => Role::Candidate,
                    ServerState::Learner => Role::Learner,
                    ServerState::Follower | ServerState::Shutdown => Role::Follower,
                }
            } else if metrics.current_leader == Some(id) {
                Role::Leader
            } else {
                Role::Follower
            }
        };
        let replication = metrics.replication.clone().unwrap_or_default();
        let membership = metrics.membership_config.membership();
        let last_log_index = metrics.last_log_index.unwrap_or_default();
        let members = membership
            .nodes()
            .map(|(id, node)| {
                let matched = replication.get(id).map(|m| m.map_or(0, |l| l.index));
                let voter = membership.voter_ids().any(|v| v == *id);
                MemberStatus {
                    node_id: *id,
                    address: node.addr.clone(),
                    role: if voter { role_of(*id) } else { Role::Learner },
                    matched_index: matched,
                    lag: matched.map(|m| last_log_index.saturating_sub(m)),
                }
            })
            .collect();
        NodeStatus {
            node_id: self.node.id,
            members,
            leader_id: metrics.current_leader,
            term: metrics.current_term,
            last_log_index: metrics.last_log_index.unwrap_or_default(),
            committed_index: metrics
                .last_applied
                .map_or(0, |l| l.index)
                .max(applied_index),
            applied_index,
            state_digest,
            cluster_id: self.node.cluster_id().unwrap_or_default(),
        }
    }
}

fn event(revision: u64, kind: EventKind, info: Option<TaskInfo>) -> Result<WatchEvent> {
    Ok(WatchEvent {
        revision,
        kind,
        info,
    })
}

/// Feeds one watch stream until its reader goes away. Revisions are the
/// same on every replica, so a reader that reconnects anywhere with
/// `start_revision = last + 1` misses nothing and sees nothing twice.
async fn watch(
    read: ReadView,
    selector: Selector,
    start_revision: u64,
    tx: tokio::sync::mpsc::Sender<Result<WatchEvent>>,
) {
    let mut applied = read.subscribe();
    let mut next = start_revision;
    loop {
        if next == 0 {
            let (revision, tasks) = match read.current(|info| selector.selects(info)) {
                Ok(current) => current,
                Err(e) => {
                    let _ = tx.send(Err(e.into())).await;
                    return;
                }
            };
            for info in tasks {
                if tx
                    .send(event(revision, EventKind::Current, Some(info)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if tx
                .send(event(revision, EventKind::Synced, None))
                .await
                .is_err()
            {
                return;
            }
            next = revision + 1;
        }
        let changes = {
            let read = read.clone();
            blocking(move || read.changes_since(next.saturating_sub(1), WATCH_PAGE)).await
        };
        let changes = match changes {
            Ok(Some(changes)) => changes,
            Ok(None) => {
                // The changes since `next` went with their removed tasks
                // (D16): say so, and start over from the current state.
                if tx.send(event(next, EventKind::Resync, None)).await.is_err() {
                    return;
                }
                next = 0;
                continue;
            }
            Err(error) => {
                let _ = tx.send(Err(error)).await;
                return;
            }
        };
        if changes.is_empty() {
            tokio::select! {
                changed = applied.changed() => if changed.is_err() {
                    let _ = tx
                        .send(Err(ServiceError::Unavailable("the node is shutting down".into())))
                        .await;
                    return;
                },
                _ = tx.closed() => return,
            }
            continue;
        }
        for change in changes {
            next = change.revision + 1;
            if !selector.selects(&change.info) {
                continue;
            }
            if tx
                .send(event(
                    change.revision,
                    change.kind.into(),
                    Some(change.info),
                ))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}
