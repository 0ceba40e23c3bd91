//! The public gRPC services of `vtask.v1`. Each handler converts the request
//! into a model command, submits it through the leader (or runs the read
//! barrier for a linearizable read), and converts the outcome back. A vSphere
//! fault becomes a gRPC status with the `MethodFault` in its details.

use std::sync::Arc;
use std::time::Duration;

use openraft::ServerState;
use tonic::{Request, Response, Status};
use vtask_model::{
    Caller, Command, MethodFault, Privilege, Reply, Task, TaskFilterSpec, TaskInfo, TaskKey,
};
use vtask_proto::convert::{duration_to_millis, fault_to_status};
use vtask_proto::v1::{self, cluster_server, task_manager_server, task_server};
use vtask_store::{ClientRef, Request as LogRequest};

use crate::auth::Auth;
use crate::config::TaskSettings;
use crate::limits::{OpenCalls, MAX_REQUEST_BYTES};
use crate::node::{Node, NodeError};

pub type TaskApi = Api;
pub type TaskManagerApi = Api;
pub type ClusterApi = Api;

/// ListTasks page size when the request names none, and the largest allowed.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;
/// D17: how long a completed task stays recent, and how many of them.
const RECENT_WINDOW: Duration = Duration::from_secs(10 * 60);
const RECENT_COMPLETED: usize = 200;
/// The longest WaitTask may wait.
const MAX_WAIT: Duration = Duration::from_secs(600);

#[derive(Clone)]
pub struct Api {
    node: Node,
    gate: Gate,
}

/// What the public API checks before it serves a call: who calls, and how
/// many long calls each caller holds open on this node.
#[derive(Clone)]
pub struct Gate {
    pub auth: Auth,
    pub watches: Arc<OpenCalls>,
    pub waits: Arc<OpenCalls>,
}

pub fn task_service(node: Node, gate: Gate) -> task_server::TaskServer<Api> {
    task_server::TaskServer::new(Api { node, gate }).max_decoding_message_size(MAX_REQUEST_BYTES)
}

pub fn task_manager_service(node: Node, gate: Gate) -> task_manager_server::TaskManagerServer<Api> {
    task_manager_server::TaskManagerServer::new(Api { node, gate })
        .max_decoding_message_size(MAX_REQUEST_BYTES)
}

/// `Cluster.Status` needs no credentials: peers call it while they start
/// (to tell a new cluster from one that lost a member's data), and it tells
/// only membership, positions and the state digest, no task.
pub fn cluster_service(node: Node, gate: Gate) -> cluster_server::ClusterServer<Api> {
    cluster_server::ClusterServer::new(Api { node, gate })
        .max_decoding_message_size(MAX_REQUEST_BYTES)
}

fn node_status(error: NodeError) -> Status {
    match error {
        NodeError::Unavailable(message) => Status::unavailable(message),
        NodeError::Internal(message) => Status::internal(message),
    }
}

fn store_status(error: vtask_store::StoreError) -> Status {
    tracing::error!(%error, "store read failed");
    Status::internal(format!("reading the store: {error}"))
}

/// Runs a store read on the blocking pool, off the async worker threads.
async fn blocking<T: Send + 'static>(
    read: impl FnOnce() -> Result<T, vtask_store::StoreError> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(read)
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(store_status)
}

fn fault_status(fault: MethodFault) -> Status {
    fault_to_status(&fault)
}

/// D5 order for the reads, which are no log entries and so are checked
/// here: the caller must hold `System.View` (spec §9), checked after the
/// object is known to exist.
fn may_view(caller: &Caller, object: Option<&vtask_model::MoRef>) -> Result<(), Status> {
    vtask_model::authorize(caller, Privilege::SystemView, object).map_err(fault_status)
}

/// A task key or collector name is at most 256 characters (D12): no
/// longer one exists, and a longer one must not reach the log or be echoed
/// back in a fault.
fn bounded_name(property: &str, value: &str) -> Result<(), Status> {
    if value.chars().count() > vtask_model::validate::MAX_NAME_LEN {
        return Err(fault_status(MethodFault::invalid_argument(
            property,
            format!(
                "A specified parameter was not correct: {property} is longer than {} characters",
                vtask_model::validate::MAX_NAME_LEN
            ),
        )));
    }
    Ok(())
}

/// [`bounded_name`] for the task or collector a command names.
fn bounded_target(command: &Command) -> Result<(), Status> {
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

fn client(header: Option<&v1::RequestHeader>) -> Result<Option<ClientRef>, Status> {
    match header {
        Some(h) if !h.client_id.is_empty() => {
            vtask_model::validate::name("header.clientId", &h.client_id).map_err(fault_status)?;
            Ok(Some(ClientRef {
                id: h.client_id.clone(),
                seq: h.seq,
            }))
        }
        _ => Ok(None),
    }
}

fn consistency(value: i32) -> Result<v1::ReadConsistency, Status> {
    v1::ReadConsistency::try_from(value).map_err(|_| {
        fault_status(MethodFault::invalid_argument(
            "consistency",
            format!("A specified parameter was not correct: {value} is not a read consistency"),
        ))
    })
}

impl Api {
    fn caller<T>(&self, request: &Request<T>) -> Caller {
        self.gate.auth.caller(request.metadata())
    }

    /// Submits one mutation and returns its reply, with the leader's address.
    async fn mutate(
        &self,
        method: &'static str,
        caller: Caller,
        client: Option<ClientRef>,
        command: Command,
    ) -> Result<(Reply, String), Status> {
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
            Err(NodeError::Internal(_)) => "internal".into(),
        };
        self.node.metrics.request(method, &outcome_label);
        let (outcome, leader) = result.map_err(node_status)?;
        outcome.map(|reply| (reply, leader)).map_err(fault_status)
    }

    /// Waits for the read barrier unless the caller asked for a stale read.
    async fn before_read(&self, consistency: v1::ReadConsistency) -> Result<(), Status> {
        match consistency {
            v1::ReadConsistency::Stale => Ok(()),
            v1::ReadConsistency::Unspecified | v1::ReadConsistency::Linearizable => {
                self.node.read_barrier().await.map_err(node_status)
            }
        }
    }

    fn lookup(&self, key: &str) -> Result<Task, Status> {
        self.node
            .read
            .lookup(key)
            .map_err(store_status)?
            .map_err(fault_status)
    }
}

/// A mutating request of the public API: where its header is, and the
/// command it asks for (some commands carry a node setting that every
/// replica must apply alike).
trait Mutation: Sized {
    const METHOD: &'static str;
    fn header(&self) -> Option<&v1::RequestHeader>;
    fn command(self, settings: &TaskSettings) -> Result<Command, MethodFault>;
}

macro_rules! mutation {
    ($request:ty, $method:literal, |$r:ident| $command:expr) => {
        mutation!($request, $method, |$r, _settings| $command);
    };
    ($request:ty, $method:literal, |$r:ident, $settings:ident| $command:expr) => {
        impl Mutation for $request {
            const METHOD: &'static str = $method;
            fn header(&self) -> Option<&v1::RequestHeader> {
                self.header.as_ref()
            }
            fn command(self, $settings: &TaskSettings) -> Result<Command, MethodFault> {
                let $r = self;
                $command
            }
        }
    };
}

mutation!(v1::CancelTaskRequest, "CancelTask", |r| Ok(Command::from(
    r
)));
mutation!(v1::UpdateProgressRequest, "UpdateProgress", |r| {
    Command::try_from(r)
});
mutation!(v1::SetTaskStateRequest, "SetTaskState", |r| {
    Command::try_from(r)
});
mutation!(v1::SetTaskDescriptionRequest, "SetTaskDescription", |r| {
    Command::try_from(r)
});
mutation!(v1::CreateTaskRequest, "CreateTask", |r| Command::try_from(
    r
));
mutation!(
    v1::CreateCollectorForTasksRequest,
    "CreateCollectorForTasks",
    |r, settings| Ok(Command::CreateCollector {
        filter: match r.filter {
            Some(filter) => {
                let filter = TaskFilterSpec::try_from(filter)?;
                vtask_model::validate::filter_limits(&filter)?;
                filter
            }
            None => TaskFilterSpec::default(),
        },
        // D18: the limit travels in the entry, so every replica checks the same one.
        max_per_owner: settings.max_collectors,
    })
);
mutation!(v1::ReadNextTasksRequest, "ReadNextTasks", |r| Ok(
    Command::ReadNextTasks {
        collector: r.collector,
        max_count: r.max_count,
    }
));
mutation!(v1::ReadPreviousTasksRequest, "ReadPreviousTasks", |r| Ok(
    Command::ReadPreviousTasks {
        collector: r.collector,
        max_count: r.max_count,
    }
));
mutation!(v1::RewindCollectorRequest, "RewindCollector", |r| Ok(
    Command::RewindCollector {
        collector: r.collector
    }
));
mutation!(v1::ResetCollectorRequest, "ResetCollector", |r| Ok(
    Command::ResetCollector {
        collector: r.collector
    }
));
mutation!(
    v1::SetCollectorPageSizeRequest,
    "SetCollectorPageSize",
    |r| Ok(Command::SetCollectorPageSize {
        collector: r.collector,
        max_count: r.max_count,
    })
);
mutation!(v1::DestroyCollectorRequest, "DestroyCollector", |r| Ok(
    Command::DestroyCollector {
        collector: r.collector
    }
));

impl Api {
    /// Runs one mutating call end to end: caller, client identity, command,
    /// submission through the leader. Returns the reply and the leader's address.
    async fn run<M: Mutation>(&self, request: Request<M>) -> Result<(Reply, String), Status> {
        let caller = self.caller(&request);
        let request = request.into_inner();
        let client = client(request.header())?;
        let command = request.command(&self.node.settings).map_err(fault_status)?;
        bounded_target(&command)?;
        if let Err(refusal) = self.refuse_unauthorized(&caller, &command).await {
            self.node.metrics.request(M::METHOD, "refused");
            return Err(refusal);
        }
        self.mutate(M::METHOD, caller, client, command).await
    }

    /// Answers a caller that the model would refuse (NotAuthenticated,
    /// NoPermission) here, after a linearizable read, so that clients
    /// without credentials cannot fill the Raft log with refused entries.
    /// The answer is the model's: its `authorize`, in the D5 order (a
    /// missing task or collector is reported first). Authorized callers
    /// pass without a read; the model checks them again at apply.
    async fn refuse_unauthorized(&self, caller: &Caller, command: &Command) -> Result<(), Status> {
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
                self.before_read(v1::ReadConsistency::Linearizable).await?;
                let read = self.node.read.clone();
                let found = match vtask_model::CollectorId::parse(collector) {
                    Some(id) => blocking(move || read.collector(id)).await?,
                    None => None,
                };
                return vtask_model::collector_for(found, caller, collector)
                    .map(|_| ())
                    .map_err(fault_status);
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
                self.before_read(v1::ReadConsistency::Linearizable).await?;
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
        vtask_model::authorize(caller, privilege, object.as_ref()).map_err(fault_status)
    }

    /// [`Api::run`] for the methods that return the task they changed.
    async fn run_task<M: Mutation>(
        &self,
        request: Request<M>,
    ) -> Result<(v1::TaskInfo, String), Status> {
        match self.run(request).await? {
            (Reply::Task { info }, leader) => Ok((info.into(), leader)),
            (other, _) => Err(unexpected(M::METHOD, &other)),
        }
    }

    /// [`Api::run`] for the collector methods that return tasks.
    async fn run_tasks<M: Mutation>(
        &self,
        request: Request<M>,
    ) -> Result<(Vec<v1::TaskInfo>, String), Status> {
        match self.run(request).await? {
            (Reply::Tasks { tasks }, leader) => {
                Ok((tasks.into_iter().map(Into::into).collect(), leader))
            }
            (other, _) => Err(unexpected(M::METHOD, &other)),
        }
    }

    /// [`Api::run`] for the collector methods that return nothing.
    async fn run_done<M: Mutation>(&self, request: Request<M>) -> Result<String, Status> {
        match self.run(request).await? {
            (Reply::Done, leader) => Ok(leader),
            (other, _) => Err(unexpected(M::METHOD, &other)),
        }
    }
}

fn unexpected(method: &str, reply: &Reply) -> Status {
    Status::internal(format!("{method} returned {reply:?}"))
}

#[tonic::async_trait]
impl task_server::Task for Api {
    async fn cancel_task(
        &self,
        request: Request<v1::CancelTaskRequest>,
    ) -> Result<Response<v1::CancelTaskResponse>, Status> {
        let (info, leader_hint) = self.run_task(request).await?;
        Ok(Response::new(v1::CancelTaskResponse {
            info: Some(info),
            leader_hint,
        }))
    }

    async fn update_progress(
        &self,
        request: Request<v1::UpdateProgressRequest>,
    ) -> Result<Response<v1::UpdateProgressResponse>, Status> {
        let (info, leader_hint) = self.run_task(request).await?;
        Ok(Response::new(v1::UpdateProgressResponse {
            info: Some(info),
            leader_hint,
        }))
    }

    async fn set_task_state(
        &self,
        request: Request<v1::SetTaskStateRequest>,
    ) -> Result<Response<v1::SetTaskStateResponse>, Status> {
        let (info, leader_hint) = self.run_task(request).await?;
        Ok(Response::new(v1::SetTaskStateResponse {
            info: Some(info),
            leader_hint,
        }))
    }

    async fn set_task_description(
        &self,
        request: Request<v1::SetTaskDescriptionRequest>,
    ) -> Result<Response<v1::SetTaskDescriptionResponse>, Status> {
        let (info, leader_hint) = self.run_task(request).await?;
        Ok(Response::new(v1::SetTaskDescriptionResponse {
            info: Some(info),
            leader_hint,
        }))
    }
}

type WatchStream = std::pin::Pin<
    Box<dyn futures::Stream<Item = Result<v1::WatchTasksResponse, Status>> + Send + 'static>,
>;

#[tonic::async_trait]
impl task_manager_server::TaskManager for Api {
    async fn create_task(
        &self,
        request: Request<v1::CreateTaskRequest>,
    ) -> Result<Response<v1::CreateTaskResponse>, Status> {
        let (info, leader_hint) = self.run_task(request).await?;
        Ok(Response::new(v1::CreateTaskResponse {
            info: Some(info),
            leader_hint,
        }))
    }

    async fn get_task(
        &self,
        request: Request<v1::GetTaskRequest>,
    ) -> Result<Response<v1::GetTaskResponse>, Status> {
        let caller = self.caller(&request);
        let request = request.into_inner();
        bounded_name("key", &request.key)?;
        self.before_read(consistency(request.consistency)?).await?;
        let task = self.lookup(&request.key)?;
        may_view(&caller, Some(&task.info.task()))?;
        let revision = self.node.read.applied().revision;
        Ok(Response::new(v1::GetTaskResponse {
            info: Some(task.info.into()),
            revision,
        }))
    }

    async fn list_tasks(
        &self,
        request: Request<v1::ListTasksRequest>,
    ) -> Result<Response<v1::ListTasksResponse>, Status> {
        may_view(&self.caller(&request), None)?;
        let request = request.into_inner();
        let filter = match request.filter {
            Some(filter) => TaskFilterSpec::try_from(filter).map_err(fault_status)?,
            None => TaskFilterSpec::default(),
        };
        filter.validate().map_err(fault_status)?;
        vtask_model::validate::filter_limits(&filter).map_err(fault_status)?;
        let page_size = match request.page_size as usize {
            0 => DEFAULT_PAGE,
            n if n <= MAX_PAGE => n,
            n => {
                return Err(fault_status(MethodFault::invalid_argument(
                    "pageSize",
                    format!(
                        "A specified parameter was not correct: page size {n} is above {MAX_PAGE}"
                    ),
                )))
            }
        };
        // The page token is the key of the last task of the previous page:
        // keys never change or get reused, so pages are stable across leaders.
        let after = if request.page_token.is_empty() {
            0
        } else {
            vtask_model::TaskKey::parse(&request.page_token)
                .ok_or_else(|| {
                    fault_status(MethodFault::invalid_argument(
                        "pageToken",
                        format!(
                            "A specified parameter was not correct: {:?} is not a page token",
                            request.page_token
                        ),
                    ))
                })?
                .0
        };
        self.before_read(consistency(request.consistency)?).await?;
        let read = self.node.read.clone();
        let revision = read.applied().revision;
        let tasks = blocking(move || read.scan(after, page_size + 1, &filter)).await?;
        let more = tasks.len() > page_size;
        let tasks: Vec<Task> = tasks.into_iter().take(page_size).collect();
        let next_page_token = match (more, tasks.last()) {
            (true, Some(last)) => last.info.key.to_string(),
            _ => String::new(),
        };
        Ok(Response::new(v1::ListTasksResponse {
            tasks: tasks.into_iter().map(|t| t.info.into()).collect(),
            next_page_token,
            revision,
        }))
    }

    /// D17: every queued and running task, plus the last 200 of the tasks
    /// that completed in the last 10 minutes (by this node's clock: a read
    /// needs no replicated time).
    async fn recent_tasks(
        &self,
        request: Request<v1::RecentTasksRequest>,
    ) -> Result<Response<v1::RecentTasksResponse>, Status> {
        may_view(&self.caller(&request), None)?;
        let request = request.into_inner();
        self.before_read(consistency(request.consistency)?).await?;
        let now = crate::proposer::wall_clock().as_micros();
        let cutoff = vtask_model::Timestamp::from_micros(now - RECENT_WINDOW.as_micros() as i64);
        let read = self.node.read.clone();
        let (revision, tasks) = blocking(move || read.recent(cutoff, RECENT_COMPLETED)).await?;
        Ok(Response::new(v1::RecentTasksResponse {
            tasks: tasks.into_iter().map(Into::into).collect(),
            revision,
        }))
    }

    type WatchTasksStream = WatchStream;

    async fn watch_tasks(
        &self,
        request: Request<v1::WatchTasksRequest>,
    ) -> Result<Response<Self::WatchTasksStream>, Status> {
        let caller = self.caller(&request);
        let request = request.into_inner();
        let selector = match request.selector {
            Some(v1::watch_tasks_request::Selector::Task(key)) => {
                bounded_name("key", &key)?;
                let task = self.lookup(&key)?;
                may_view(&caller, Some(&task.info.task()))?;
                Selector::Task(task.info.key)
            }
            Some(v1::watch_tasks_request::Selector::Filter(filter)) => {
                may_view(&caller, None)?;
                let filter = TaskFilterSpec::try_from(filter).map_err(fault_status)?;
                filter.validate().map_err(fault_status)?;
                vtask_model::validate::filter_limits(&filter).map_err(fault_status)?;
                Selector::Filter(filter)
            }
            Some(v1::watch_tasks_request::Selector::All(_)) => {
                may_view(&caller, None)?;
                Selector::All
            }
            None => {
                return Err(fault_status(MethodFault::invalid_argument(
                    "selector",
                    "A specified parameter was not correct: name a task, a filter or all",
                )))
            }
        };
        // Start from a state at least as new as every write acknowledged
        // before this call.
        let slot = self
            .gate
            .watches
            .acquire(caller.name().unwrap_or_default())?;
        self.before_read(v1::ReadConsistency::Linearizable).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(WATCH_BUFFER);
        let read = self.node.read.clone();
        let start = request.start_revision;
        tokio::spawn(async move {
            watch(read, selector, start, tx).await;
            // The slot is the watch's until its feeder ends (the reader went away).
            drop(slot);
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn wait_task(
        &self,
        request: Request<v1::WaitTaskRequest>,
    ) -> Result<Response<v1::WaitTaskResponse>, Status> {
        let caller = self.caller(&request);
        let request = request.into_inner();
        bounded_name("key", &request.key)?;
        let timeout = match request.timeout {
            Some(d) => {
                Duration::from_millis(duration_to_millis(&d, "timeout").map_err(fault_status)?)
                    .min(MAX_WAIT)
            }
            None => MAX_WAIT,
        };
        self.before_read(v1::ReadConsistency::Linearizable).await?;
        may_view(&caller, Some(&self.lookup(&request.key)?.info.task()))?;
        let _slot = self.gate.waits.acquire(caller.name().unwrap_or_default())?;
        let mut applied = self.node.read.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let task = self.lookup(&request.key)?;
            let revision = self.node.read.applied().revision;
            let done = task.info.state.is_terminal();
            if done || tokio::time::Instant::now() >= deadline {
                return Ok(Response::new(v1::WaitTaskResponse {
                    info: Some(task.info.into()),
                    revision,
                }));
            }
            // Wake on the next apply, or at the deadline.
            if tokio::time::timeout_at(deadline, applied.changed())
                .await
                .is_ok_and(|r| r.is_err())
            {
                return Err(Status::unavailable("the node is shutting down"));
            }
        }
    }

    async fn get_task_history(
        &self,
        request: Request<v1::GetTaskHistoryRequest>,
    ) -> Result<Response<v1::GetTaskHistoryResponse>, Status> {
        let caller = self.caller(&request);
        let request = request.into_inner();
        bounded_name("key", &request.key)?;
        self.before_read(consistency(request.consistency)?).await?;
        let task = self.lookup(&request.key)?;
        may_view(&caller, Some(&task.info.task()))?;
        let key = task.info.key;
        let read = self.node.read.clone();
        let history = blocking(move || read.history(key)).await?;
        let changes = history
            .into_iter()
            .map(|c| v1::TaskChange {
                revision: c.revision,
                kind: change_kind(c.kind) as i32,
                method: c.method,
                actor: c.actor,
                time: Some(vtask_proto::convert::timestamp_to_proto(c.time)),
                term: c.term,
                index: c.index,
                info: Some(c.info.into()),
            })
            .collect();
        Ok(Response::new(v1::GetTaskHistoryResponse { changes }))
    }

    async fn create_collector_for_tasks(
        &self,
        request: Request<v1::CreateCollectorForTasksRequest>,
    ) -> Result<Response<v1::CreateCollectorForTasksResponse>, Status> {
        match self.run(request).await? {
            (
                Reply::Collector {
                    collector,
                    latest_page,
                },
                leader_hint,
            ) => Ok(Response::new(v1::CreateCollectorForTasksResponse {
                collector: collector.to_string(),
                latest_page: latest_page.into_iter().map(Into::into).collect(),
                leader_hint,
            })),
            (other, _) => Err(unexpected("CreateCollectorForTasks", &other)),
        }
    }

    async fn read_next_tasks(
        &self,
        request: Request<v1::ReadNextTasksRequest>,
    ) -> Result<Response<v1::ReadNextTasksResponse>, Status> {
        let (tasks, leader_hint) = self.run_tasks(request).await?;
        Ok(Response::new(v1::ReadNextTasksResponse {
            tasks,
            leader_hint,
        }))
    }

    async fn read_previous_tasks(
        &self,
        request: Request<v1::ReadPreviousTasksRequest>,
    ) -> Result<Response<v1::ReadPreviousTasksResponse>, Status> {
        let (tasks, leader_hint) = self.run_tasks(request).await?;
        Ok(Response::new(v1::ReadPreviousTasksResponse {
            tasks,
            leader_hint,
        }))
    }

    async fn rewind_collector(
        &self,
        request: Request<v1::RewindCollectorRequest>,
    ) -> Result<Response<v1::RewindCollectorResponse>, Status> {
        let leader_hint = self.run_done(request).await?;
        Ok(Response::new(v1::RewindCollectorResponse { leader_hint }))
    }

    async fn reset_collector(
        &self,
        request: Request<v1::ResetCollectorRequest>,
    ) -> Result<Response<v1::ResetCollectorResponse>, Status> {
        let leader_hint = self.run_done(request).await?;
        Ok(Response::new(v1::ResetCollectorResponse { leader_hint }))
    }

    async fn set_collector_page_size(
        &self,
        request: Request<v1::SetCollectorPageSizeRequest>,
    ) -> Result<Response<v1::SetCollectorPageSizeResponse>, Status> {
        let (latest_page, leader_hint) = self.run_tasks(request).await?;
        Ok(Response::new(v1::SetCollectorPageSizeResponse {
            latest_page,
            leader_hint,
        }))
    }

    async fn destroy_collector(
        &self,
        request: Request<v1::DestroyCollectorRequest>,
    ) -> Result<Response<v1::DestroyCollectorResponse>, Status> {
        let leader_hint = self.run_done(request).await?;
        Ok(Response::new(v1::DestroyCollectorResponse { leader_hint }))
    }

    /// `latestPage` is a property: a read, not a log entry, so it does not
    /// count as a use of the collector (D24). Like every collector method it
    /// needs no privilege, only ownership (spec §9); creating the collector
    /// needed System.View.
    async fn get_latest_page(
        &self,
        request: Request<v1::GetLatestPageRequest>,
    ) -> Result<Response<v1::GetLatestPageResponse>, Status> {
        let caller = self.caller(&request);
        let request = request.into_inner();
        bounded_name("collector", &request.collector)?;
        self.before_read(consistency(request.consistency)?).await?;
        let read = self.node.read.clone();
        let id = vtask_model::CollectorId::parse(&request.collector);
        let found = match id {
            Some(id) => blocking(move || read.collector(id)).await?,
            None => None,
        };
        let collector =
            vtask_model::collector_for(found, &caller, &request.collector).map_err(fault_status)?;
        Ok(Response::new(v1::GetLatestPageResponse {
            latest_page: collector.latest_page.into_iter().map(Into::into).collect(),
            filter: Some(collector.filter.into()),
        }))
    }
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

fn change_kind(kind: vtask_store::ChangeKind) -> v1::ChangeKind {
    match kind {
        vtask_store::ChangeKind::Created => v1::ChangeKind::Created,
        vtask_store::ChangeKind::Updated => v1::ChangeKind::Updated,
        vtask_store::ChangeKind::Removed => v1::ChangeKind::Removed,
    }
}

/// Events a watch may have buffered before it waits for its reader.
const WATCH_BUFFER: usize = 256;
/// Changes read from the store at a time.
const WATCH_PAGE: usize = 512;

fn event(
    revision: u64,
    kind: v1::ChangeKind,
    info: Option<TaskInfo>,
) -> Result<v1::WatchTasksResponse, Status> {
    Ok(v1::WatchTasksResponse {
        revision,
        kind: kind as i32,
        info: info.map(Into::into),
    })
}

/// Feeds one watch stream until its reader goes away. Revisions are the
/// same on every replica, so a reader that reconnects anywhere with
/// `start_revision = last + 1` misses nothing and sees nothing twice.
async fn watch(
    read: vtask_store::ReadView,
    selector: Selector,
    start_revision: u64,
    tx: tokio::sync::mpsc::Sender<Result<v1::WatchTasksResponse, Status>>,
) {
    let mut applied = read.subscribe();
    let mut next = start_revision;
    loop {
        if next == 0 {
            let snapshot = read.current(|info| selector.selects(info));
            let (revision, tasks) = match snapshot {
                Ok(current) => current,
                Err(e) => {
                    let _ = tx.send(Err(store_status(e))).await;
                    return;
                }
            };
            for info in tasks {
                if tx
                    .send(event(revision, v1::ChangeKind::Current, Some(info)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if tx
                .send(event(revision, v1::ChangeKind::Synced, None))
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
                if tx
                    .send(event(next, v1::ChangeKind::Resync, None))
                    .await
                    .is_err()
                {
                    return;
                }
                next = 0;
                continue;
            }
            Err(status) => {
                let _ = tx.send(Err(status)).await;
                return;
            }
        };
        if changes.is_empty() {
            tokio::select! {
                changed = applied.changed() => if changed.is_err() {
                    let _ = tx.send(Err(Status::unavailable("the node is shutting down"))).await;
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
            let kind = match change.kind {
                vtask_store::ChangeKind::Created => v1::ChangeKind::Created,
                vtask_store::ChangeKind::Updated => v1::ChangeKind::Updated,
                vtask_store::ChangeKind::Removed => v1::ChangeKind::Removed,
            };
            if tx
                .send(event(change.revision, kind, Some(change.info)))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

#[tonic::async_trait]
impl cluster_server::Cluster for Api {
    async fn status(
        &self,
        _request: Request<v1::StatusRequest>,
    ) -> Result<Response<v1::StatusResponse>, Status> {
        let metrics = self.node.raft.metrics().borrow().clone();
        let read = self.node.read.clone();
        let (applied_index, state_digest) = blocking(move || read.digest()).await?;
        let role_of = |id: u64| -> v1::Role {
            if id == self.node.id {
                match metrics.state {
                    ServerState::Leader => v1::Role::Leader,
                    ServerState::Candidate => v1::Role::Candidate,
                    ServerState::Learner => v1::Role::Learner,
                    ServerState::Follower | ServerState::Shutdown => v1::Role::Follower,
                }
            } else if metrics.current_leader == Some(id) {
                v1::Role::Leader
            } else {
                v1::Role::Follower
            }
        };
        let replication = metrics.replication.clone().unwrap_or_default();
        let members = metrics
            .membership_config
            .nodes()
            .map(|(id, node)| v1::Member {
                node_id: *id,
                address: node.addr.clone(),
                role: role_of(*id) as i32,
                matched_index: replication.get(id).map(|m| m.map_or(0, |l| l.index)),
            })
            .collect();
        Ok(Response::new(v1::StatusResponse {
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
        }))
    }
}
