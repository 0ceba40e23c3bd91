//! The gRPC door of `vtask.v1`: a thin adapter over the task service
//! (`service.rs`). Each handler resolves the caller from the request's
//! metadata, turns the protobuf request into model types, calls the service,
//! and turns the outcome back; a vSphere fault becomes a gRPC status with the
//! `MethodFault` in its details. No rule, privilege check or retry lives here.

use std::time::Duration;

use tonic::{Request, Response, Status};
use vtask_model::{Caller, Command, MethodFault, TaskFilterSpec};
use vtask_proto::convert::{duration_to_millis, fault_to_status, timestamp_to_proto};
use vtask_proto::v1::{self, cluster_server, task_manager_server, task_server};
use vtask_store::ClientRef;

use crate::limits::MAX_REQUEST_BYTES;
use crate::membership::MembershipChange;
use crate::service::{
    self, Consistency, EventKind, Role, ServiceError, Submitted, TaskService, WatchEvent,
    WatchTarget,
};

pub type TaskApi = Api;
pub type TaskManagerApi = Api;
pub type ClusterApi = Api;

#[derive(Clone)]
pub struct Api {
    tasks: TaskService,
}

pub fn task_service(tasks: TaskService) -> task_server::TaskServer<Api> {
    task_server::TaskServer::new(Api { tasks }).max_decoding_message_size(MAX_REQUEST_BYTES)
}

pub fn task_manager_service(tasks: TaskService) -> task_manager_server::TaskManagerServer<Api> {
    task_manager_server::TaskManagerServer::new(Api { tasks })
        .max_decoding_message_size(MAX_REQUEST_BYTES)
}

/// `Cluster.SaveSnapshot` needs `Cluster.Admin`, checked by the service.
/// `Cluster.Status` needs no credentials: peers call it while they start
/// (to tell a new cluster from one that lost a member's data), and it tells
/// only membership, positions and the state digest, no task.
pub fn cluster_service(tasks: TaskService) -> cluster_server::ClusterServer<Api> {
    cluster_server::ClusterServer::new(Api { tasks }).max_decoding_message_size(MAX_REQUEST_BYTES)
}

/// The one place a service error becomes a gRPC status (for every gRPC door).
pub(crate) fn status(error: ServiceError) -> Status {
    match error {
        ServiceError::Fault(fault) => fault_to_status(&fault),
        ServiceError::Unavailable(message) => Status::unavailable(message),
        ServiceError::Exhausted(message) => Status::resource_exhausted(message),
        ServiceError::Internal(message) => Status::internal(message),
    }
}

fn fault_status(fault: MethodFault) -> Status {
    fault_to_status(&fault)
}

fn client(header: Option<&v1::RequestHeader>) -> Result<Option<ClientRef>, Status> {
    match header {
        Some(h) => service::client_ref(&h.client_id, h.seq).map_err(status),
        None => Ok(None),
    }
}

fn consistency(value: i32) -> Result<Consistency, Status> {
    match v1::ReadConsistency::try_from(value) {
        Ok(v1::ReadConsistency::Stale) => Ok(Consistency::Stale),
        Ok(v1::ReadConsistency::Unspecified | v1::ReadConsistency::Linearizable) => {
            Ok(Consistency::Linearizable)
        }
        Err(_) => Err(fault_status(MethodFault::invalid_argument(
            "consistency",
            format!("A specified parameter was not correct: {value} is not a read consistency"),
        ))),
    }
}

fn filter(spec: Option<v1::TaskFilterSpec>) -> Result<Option<TaskFilterSpec>, Status> {
    spec.map(TaskFilterSpec::try_from)
        .transpose()
        .map_err(fault_status)
}

/// A mutating request of the public API: where its header is, and the
/// command it asks for.
trait Mutation: Sized {
    const METHOD: &'static str;
    fn header(&self) -> Option<&v1::RequestHeader>;
    fn command(self) -> Result<Command, MethodFault>;
}

macro_rules! mutation {
    ($request:ty, $method:literal, |$r:ident| $command:expr) => {
        impl Mutation for $request {
            const METHOD: &'static str = $method;
            fn header(&self) -> Option<&v1::RequestHeader> {
                self.header.as_ref()
            }
            fn command(self) -> Result<Command, MethodFault> {
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

/// A mutating request, decoded: the method, who calls, its retry identity
/// and the command.
struct Decoded {
    method: &'static str,
    caller: Caller,
    client: Option<ClientRef>,
    command: Command,
}

impl Api {
    fn caller<T>(&self, request: &Request<T>) -> Caller {
        self.tasks.auth().caller(request.metadata())
    }

    fn decode<M: Mutation>(&self, request: Request<M>) -> Result<Decoded, Status> {
        let caller = self.caller(&request);
        let request = request.into_inner();
        let client = client(request.header())?;
        let command = request.command().map_err(fault_status)?;
        Ok(Decoded {
            method: M::METHOD,
            caller,
            client,
            command,
        })
    }

    /// A mutation that returns the task it changed: the task and the leader.
    async fn run_task<M: Mutation>(
        &self,
        request: Request<M>,
    ) -> Result<(v1::TaskInfo, String), Status> {
        let d = self.decode(request)?;
        let Submitted { reply, leader } = self
            .tasks
            .submit_task(d.method, d.caller, d.client, d.command)
            .await
            .map_err(status)?;
        Ok((reply.into(), leader))
    }

    /// A collector mutation that returns tasks.
    async fn run_tasks<M: Mutation>(
        &self,
        request: Request<M>,
    ) -> Result<(Vec<v1::TaskInfo>, String), Status> {
        let d = self.decode(request)?;
        let Submitted { reply, leader } = self
            .tasks
            .submit_tasks(d.method, d.caller, d.client, d.command)
            .await
            .map_err(status)?;
        Ok((reply.into_iter().map(Into::into).collect(), leader))
    }

    /// A collector mutation that returns nothing: the leader.
    async fn run_done<M: Mutation>(&self, request: Request<M>) -> Result<String, Status> {
        let d = self.decode(request)?;
        self.tasks
            .submit_done(d.method, d.caller, d.client, d.command)
            .await
            .map_err(status)
    }
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

fn watch_response(
    event: Result<WatchEvent, ServiceError>,
) -> Result<v1::WatchTasksResponse, Status> {
    let event = event.map_err(status)?;
    let kind = match event.kind {
        EventKind::Current => v1::ChangeKind::Current,
        EventKind::Synced => v1::ChangeKind::Synced,
        EventKind::Created => v1::ChangeKind::Created,
        EventKind::Updated => v1::ChangeKind::Updated,
        EventKind::Removed => v1::ChangeKind::Removed,
        EventKind::Resync => v1::ChangeKind::Resync,
    };
    Ok(v1::WatchTasksResponse {
        revision: event.revision,
        kind: kind as i32,
        info: event.info.map(Into::into),
    })
}

fn change_kind(kind: vtask_store::ChangeKind) -> v1::ChangeKind {
    match kind {
        vtask_store::ChangeKind::Created => v1::ChangeKind::Created,
        vtask_store::ChangeKind::Updated => v1::ChangeKind::Updated,
        vtask_store::ChangeKind::Removed => v1::ChangeKind::Removed,
    }
}

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
        let (info, revision) = self
            .tasks
            .get_task(&caller, &request.key, consistency(request.consistency)?)
            .await
            .map_err(status)?;
        Ok(Response::new(v1::GetTaskResponse {
            info: Some(info.into()),
            revision,
        }))
    }

    async fn list_tasks(
        &self,
        request: Request<v1::ListTasksRequest>,
    ) -> Result<Response<v1::ListTasksResponse>, Status> {
        let caller = self.caller(&request);
        let request = request.into_inner();
        let page = self
            .tasks
            .list_tasks(
                &caller,
                filter(request.filter)?.unwrap_or_default(),
                request.page_size,
                &request.page_token,
                consistency(request.consistency)?,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(v1::ListTasksResponse {
            tasks: page.tasks.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token,
            revision: page.revision,
        }))
    }

    async fn recent_tasks(
        &self,
        request: Request<v1::RecentTasksRequest>,
    ) -> Result<Response<v1::RecentTasksResponse>, Status> {
        let caller = self.caller(&request);
        let request = request.into_inner();
        let (revision, tasks) = self
            .tasks
            .recent_tasks(&caller, consistency(request.consistency)?)
            .await
            .map_err(status)?;
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
        use futures::StreamExt;
        let caller = self.caller(&request);
        let request = request.into_inner();
        let target = match request.selector {
            Some(v1::watch_tasks_request::Selector::Task(key)) => WatchTarget::Task(key),
            Some(v1::watch_tasks_request::Selector::Filter(spec)) => {
                WatchTarget::Filter(TaskFilterSpec::try_from(spec).map_err(fault_status)?)
            }
            Some(v1::watch_tasks_request::Selector::All(_)) => WatchTarget::All,
            None => {
                return Err(fault_status(MethodFault::invalid_argument(
                    "selector",
                    "A specified parameter was not correct: name a task, a filter or all",
                )))
            }
        };
        let events = self
            .tasks
            .watch(&caller, target, request.start_revision)
            .await
            .map_err(status)?;
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(events).map(watch_response),
        )))
    }

    async fn wait_task(
        &self,
        request: Request<v1::WaitTaskRequest>,
    ) -> Result<Response<v1::WaitTaskResponse>, Status> {
        let caller = self.caller(&request);
        let request = request.into_inner();
        let timeout = match request.timeout {
            Some(d) => Some(Duration::from_millis(
                duration_to_millis(&d, "timeout").map_err(fault_status)?,
            )),
            None => None,
        };
        let (info, revision) = self
            .tasks
            .wait_task(&caller, &request.key, timeout)
            .await
            .map_err(status)?;
        Ok(Response::new(v1::WaitTaskResponse {
            info: Some(info.into()),
            revision,
        }))
    }

    async fn get_task_history(
        &self,
        request: Request<v1::GetTaskHistoryRequest>,
    ) -> Result<Response<v1::GetTaskHistoryResponse>, Status> {
        let caller = self.caller(&request);
        let request = request.into_inner();
        let history = self
            .tasks
            .task_history(&caller, &request.key, consistency(request.consistency)?)
            .await
            .map_err(status)?;
        let changes = history
            .into_iter()
            .map(|c| v1::TaskChange {
                revision: c.revision,
                kind: change_kind(c.kind) as i32,
                method: c.method,
                actor: c.actor,
                time: Some(timestamp_to_proto(c.time)),
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
        let caller = self.caller(&request);
        let request = request.into_inner();
        let client = client(request.header.as_ref())?;
        let Submitted { reply, leader } = self
            .tasks
            .create_collector(caller, client, filter(request.filter)?)
            .await
            .map_err(status)?;
        let (collector, latest_page) = reply;
        Ok(Response::new(v1::CreateCollectorForTasksResponse {
            collector: collector.to_string(),
            latest_page: latest_page.into_iter().map(Into::into).collect(),
            leader_hint: leader,
        }))
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

    async fn get_latest_page(
        &self,
        request: Request<v1::GetLatestPageRequest>,
    ) -> Result<Response<v1::GetLatestPageResponse>, Status> {
        let caller = self.caller(&request);
        let request = request.into_inner();
        let collector = self
            .tasks
            .latest_page(
                &caller,
                &request.collector,
                consistency(request.consistency)?,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(v1::GetLatestPageResponse {
            latest_page: collector.latest_page.into_iter().map(Into::into).collect(),
            filter: Some(collector.filter.into()),
        }))
    }
}

#[tonic::async_trait]
impl cluster_server::Cluster for Api {
    async fn status(
        &self,
        _request: Request<v1::StatusRequest>,
    ) -> Result<Response<v1::StatusResponse>, Status> {
        let node = self.tasks.status().await.map_err(status)?;
        let members = members(node.members);
        Ok(Response::new(v1::StatusResponse {
            node_id: node.node_id,
            members,
            leader_id: node.leader_id,
            term: node.term,
            last_log_index: node.last_log_index,
            committed_index: node.committed_index,
            applied_index: node.applied_index,
            state_digest: node.state_digest,
            cluster_id: node.cluster_id,
        }))
    }

    async fn add_member(
        &self,
        request: Request<v1::AddMemberRequest>,
    ) -> Result<Response<v1::MembershipResponse>, Status> {
        let caller = self.caller(&request);
        let request = request.into_inner();
        self.membership(
            &caller,
            MembershipChange::Add {
                id: request.node_id,
                address: request.address,
                learner: request.learner,
            },
        )
        .await
    }

    async fn promote_member(
        &self,
        request: Request<v1::PromoteMemberRequest>,
    ) -> Result<Response<v1::MembershipResponse>, Status> {
        let caller = self.caller(&request);
        let id = request.into_inner().node_id;
        self.membership(&caller, MembershipChange::Promote { id })
            .await
    }

    async fn remove_member(
        &self,
        request: Request<v1::RemoveMemberRequest>,
    ) -> Result<Response<v1::MembershipResponse>, Status> {
        let caller = self.caller(&request);
        let id = request.into_inner().node_id;
        self.membership(&caller, MembershipChange::Remove { id })
            .await
    }

    async fn transfer_leader(
        &self,
        request: Request<v1::TransferLeaderRequest>,
    ) -> Result<Response<v1::TransferLeaderResponse>, Status> {
        let caller = self.caller(&request);
        let to = request.into_inner().node_id;
        let leader_id = self
            .tasks
            .transfer_leader(&caller, to)
            .await
            .map_err(status)?;
        Ok(Response::new(v1::TransferLeaderResponse { leader_id }))
    }

    type SaveSnapshotStream = std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<v1::SaveSnapshotChunk, Status>> + Send + 'static>,
    >;

    async fn save_snapshot(
        &self,
        request: Request<v1::SaveSnapshotRequest>,
    ) -> Result<Response<Self::SaveSnapshotStream>, Status> {
        let caller = self.caller(&request);
        use futures::StreamExt;
        let parts = self.tasks.save_snapshot(&caller).await.map_err(status)?;
        let chunks = tokio_stream::wrappers::ReceiverStream::new(parts).map(|part| match part {
            Ok(service::BackupPart::Data(data)) => Ok(v1::SaveSnapshotChunk { data, info: None }),
            Ok(service::BackupPart::Done(header)) => Ok(v1::SaveSnapshotChunk {
                data: Vec::new(),
                info: Some(v1::SnapshotInfo {
                    format_version: vtask_store::snapfile::VERSION,
                    cluster_id: header.cluster_id.unwrap_or_default(),
                    applied_index: header.applied_index,
                    state_digest: header.digest.unwrap_or_default(),
                    tasks: header.tasks.unwrap_or_default(),
                    revision: header.revision,
                }),
            }),
            Err(e) => Err(status(e)),
        });
        Ok(Response::new(Box::pin(chunks)))
    }
}

impl Api {
    async fn membership(
        &self,
        caller: &Caller,
        change: MembershipChange,
    ) -> Result<Response<v1::MembershipResponse>, Status> {
        let done = self
            .tasks
            .change_membership(caller, change)
            .await
            .map_err(status)?;
        Ok(Response::new(v1::MembershipResponse {
            log_index: done.log_index,
            leader_id: done.leader,
            unchanged: done.unchanged,
            members: members(self.tasks.status_without_digest().members),
        }))
    }
}

fn members(members: Vec<service::MemberStatus>) -> Vec<v1::Member> {
    members
        .into_iter()
        .map(|m| v1::Member {
            node_id: m.node_id,
            address: m.address,
            role: match m.role {
                Role::Leader => v1::Role::Leader,
                Role::Candidate => v1::Role::Candidate,
                Role::Follower => v1::Role::Follower,
                Role::Learner => v1::Role::Learner,
            } as i32,
            matched_index: m.matched_index,
            lag: m.lag,
        })
        .collect()
}
