//! `vtask-client`: talk to a vtask cluster from Rust.
//!
//! A [`Client`] knows several endpoints. Every node accepts every call (a
//! follower forwards writes to the leader), so the client simply tries the
//! endpoints in turn while they answer `UNAVAILABLE` or do not answer at all.
//! Each mutating call gets one sequence number, and every retry of that call
//! re-sends the same client id and number: the cluster answers a retry with
//! the first reply and never applies it twice (D27).
//!
//! A vSphere fault comes back as [`Error::Fault`] with the typed
//! [`MethodFault`]; transport trouble that outlasts the retry window is
//! [`Error::Unavailable`].

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use vtask_model::{
    AnyValue, CreateTask, LocalizableMessage, MethodFault, State, TaskFilterSpec, TaskInfo,
};
use vtask_proto::convert::{millis_to_duration, status_to_fault};
use vtask_proto::v1::cluster_client::ClusterClient;
use vtask_proto::v1::task_client::TaskClient;
use vtask_proto::v1::task_manager_client::TaskManagerClient;
use vtask_proto::v1::{self, RequestHeader};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cluster refused the call with a vSphere fault (InvalidState, ...).
    #[error("{0}")]
    Fault(MethodFault),
    /// No endpoint answered within the retry window. For a write, the
    /// outcome is unknown; retrying it through the same client is safe.
    #[error("{0}")]
    Unavailable(String),
    /// An endpoint is not a usable address.
    #[error("endpoint {endpoint:?}: {message}")]
    BadEndpoint { endpoint: String, message: String },
    /// The server sent something this client cannot read.
    #[error("unreadable reply: {0}")]
    Protocol(String),
}

/// How long a call keeps trying while no node answers.
pub const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(15);
/// How long one call may take to answer before the next node is tried.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// What a WaitTask call gets beyond its wait for the answer to arrive.
/// The deadline of a membership call: above the server's own limit (a new
/// member has 120 s to catch up, the whole change 150 s).
pub const MEMBERSHIP_CALL_TIMEOUT: Duration = Duration::from_secs(160);
const WAIT_MARGIN: Duration = Duration::from_secs(5);

/// A connection to a cluster, cheap to share between tasks.
pub struct Client {
    endpoints: Vec<String>,
    client_id: String,
    next_seq: AtomicU64,
    /// The endpoint tried first: the leader once a reply named it, else
    /// the last one that answered. Writes sent to a follower cost the
    /// cluster a forwarding hop, and linearizable reads a ReadIndex round.
    preferred: AtomicUsize,
    user: Option<String>,
    token: Option<String>,
    tls: Option<ClientTlsConfig>,
    retry_for: Duration,
    call_timeout: Duration,
}

impl Client {
    /// A client of the nodes at `endpoints` (`HOST:PORT`), with a fresh client id.
    pub fn new(endpoints: Vec<String>) -> Client {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Client::with_id(
            endpoints,
            format!("vtask-client-{}-{nanos:x}", std::process::id()),
        )
    }

    /// A client that resumes an earlier identity, e.g. after a restart, so
    /// that its retries are still recognised.
    pub fn with_id(endpoints: Vec<String>, client_id: String) -> Client {
        Client {
            endpoints,
            client_id,
            next_seq: AtomicU64::new(1),
            preferred: AtomicUsize::new(0),
            user: None,
            token: None,
            tls: None,
            retry_for: DEFAULT_RETRY_FOR,
            call_timeout: DEFAULT_CALL_TIMEOUT,
        }
    }

    /// Names the caller (the `x-vtask-user` metadata) while the cluster runs
    /// without authentication.
    pub fn user(mut self, user: impl Into<String>) -> Client {
        self.user = Some(user.into());
        self
    }

    /// Authenticates every call with this bearer token (`authorization:
    /// Bearer <token>` metadata).
    pub fn token(mut self, token: impl Into<String>) -> Client {
        self.token = Some(token.into());
        self
    }

    /// Talks TLS to the nodes and trusts only the CA in `ca_pem` (the
    /// cluster CA's certificate, PEM).
    pub fn tls_ca(mut self, ca_pem: impl AsRef<[u8]>) -> Client {
        self.tls = Some(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem)));
        self
    }

    /// A lazily connected channel to `addr`, over TLS when this client has
    /// a CA ([`Client::tls_ca`]).
    pub fn connect(&self, addr: &str) -> Result<Channel, Error> {
        self.connect_within(addr, self.call_timeout)
    }

    /// [`Client::connect`] for calls that may take up to `per_call` to
    /// answer (a WaitTask answers when its task ends).
    fn connect_within(&self, addr: &str, per_call: Duration) -> Result<Channel, Error> {
        match &self.tls {
            None => Client::channel_within(addr, per_call),
            Some(tls) => {
                let bad = |e: tonic::transport::Error| Error::BadEndpoint {
                    endpoint: addr.into(),
                    message: e.to_string(),
                };
                let endpoint = Endpoint::from_shared(format!("https://{addr}"))
                    .map_err(bad)?
                    .tls_config(tls.clone())
                    .map_err(bad)?;
                Ok(failing_fast(endpoint, per_call).connect_lazy())
            }
        }
    }

    pub fn retry_for(mut self, window: Duration) -> Client {
        self.retry_for = window;
        self
    }

    /// How long one call may take to answer before it counts as lost and
    /// the next node is tried (default 30 s). [`Client::wait`] gives its
    /// calls as long as the wait, beyond this bound.
    pub fn call_timeout(mut self, timeout: Duration) -> Client {
        self.call_timeout = timeout;
        self
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// A header with the next sequence number: one per logical call.
    pub fn next_header(&self) -> RequestHeader {
        RequestHeader {
            client_id: self.client_id.clone(),
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// A lazily connected channel to `addr`.
    pub fn channel(addr: &str) -> Result<Channel, Error> {
        Client::channel_within(addr, DEFAULT_CALL_TIMEOUT)
    }

    fn channel_within(addr: &str, per_call: Duration) -> Result<Channel, Error> {
        let endpoint =
            Endpoint::from_shared(format!("http://{addr}")).map_err(|e| Error::BadEndpoint {
                endpoint: addr.into(),
                message: e.to_string(),
            })?;
        Ok(failing_fast(endpoint, per_call).connect_lazy())
    }

    /// Wraps a message in a request with this client's metadata.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(user) = self.user.as_deref().and_then(|u| u.parse().ok()) {
            request.metadata_mut().insert("x-vtask-user", user);
        }
        if let Some(value) = self
            .token
            .as_deref()
            .and_then(|t| format!("Bearer {t}").parse().ok())
        {
            request.metadata_mut().insert("authorization", value);
        }
        request
    }

    /// Runs `call` against the endpoints in turn until one answers with
    /// something other than "unavailable", for at most the retry window.
    pub async fn call<T, F, Fut>(&self, call: F) -> Result<T, Error>
    where
        F: Fn(Channel) -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        self.call_within(self.call_timeout, call).await
    }

    /// [`Client::call`] for a call that may take up to `per_call` to answer.
    async fn call_within<T, F, Fut>(&self, per_call: Duration, call: F) -> Result<T, Error>
    where
        F: Fn(Channel) -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        let deadline = tokio::time::Instant::now() + self.retry_for;
        let mut last = String::from("no endpoint given");
        loop {
            let first = self.preferred.load(Ordering::Relaxed);
            for i in 0..self.endpoints.len() {
                let at = (first + i) % self.endpoints.len();
                let addr = &self.endpoints[at];
                match call(self.connect_within(addr, per_call)?).await {
                    Ok(value) => {
                        self.preferred.store(at, Ordering::Relaxed);
                        return Ok(value);
                    }
                    Err(status) => {
                        if let Some(fault) = status_to_fault(&status) {
                            return Err(Error::Fault(fault));
                        }
                        match status.code() {
                            // Cancelled: the node closed the connection under
                            // the call (it was stopping); no vtask node answers
                            // a call with it. A retry carries the same header,
                            // so it is applied once (D27).
                            tonic::Code::Unavailable
                            | tonic::Code::DeadlineExceeded
                            | tonic::Code::Cancelled
                            | tonic::Code::Unknown => {
                                last = format!("{addr}: {}", status.message());
                            }
                            _ => {
                                return Err(Error::Unavailable(format!(
                                    "{addr}: {}",
                                    status.message()
                                )))
                            }
                        }
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Unavailable(format!(
                    "no node answered within {:?} (last: {last})",
                    self.retry_for
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// One unary call through [`Client::call`]: `message` goes out with this
    /// client's metadata, unchanged on every retry.
    async fn unary<M, R, F, Fut>(&self, message: M, rpc: F) -> Result<R, Error>
    where
        M: Clone,
        R: LeaderHint,
        F: Fn(Channel, tonic::Request<M>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<R>, tonic::Status>>,
    {
        self.unary_within(self.call_timeout, message, rpc).await
    }

    /// [`Client::unary`] for a call that may take up to `per_call` to answer.
    async fn unary_within<M, R, F, Fut>(
        &self,
        per_call: Duration,
        message: M,
        rpc: F,
    ) -> Result<R, Error>
    where
        M: Clone,
        R: LeaderHint,
        F: Fn(Channel, tonic::Request<M>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<R>, tonic::Status>>,
    {
        let reply = self
            .call_within(per_call, |ch| rpc(ch, self.request(message.clone())))
            .await?
            .into_inner();
        if let Some(at) = reply
            .leader_hint()
            .and_then(|leader| self.endpoints.iter().position(|e| e == leader))
        {
            self.preferred.store(at, Ordering::Relaxed);
        }
        Ok(reply)
    }

    /// `Cluster.SaveSnapshot` (needs `Cluster.Admin`): a backup's chunks as
    /// the answering node streams them; the last one carries its info.
    pub async fn save_snapshot(&self) -> Result<tonic::Streaming<v1::SaveSnapshotChunk>, Error> {
        let response = self
            .call(|ch| async move {
                ClusterClient::new(ch)
                    .save_snapshot(self.request(v1::SaveSnapshotRequest {}))
                    .await
            })
            .await?;
        Ok(response.into_inner())
    }

    /// `Cluster.AddMember` (needs `Cluster.Admin`): waits until node `id`
    /// has caught up and is a voter (unless `learner`).
    pub async fn add_member(
        &self,
        id: u64,
        address: &str,
        learner: bool,
    ) -> Result<v1::MembershipResponse, Error> {
        let message = v1::AddMemberRequest {
            node_id: id,
            address: address.to_string(),
            learner,
        };
        self.admin(message, |ch, request| async move {
            ClusterClient::new(ch).add_member(request).await
        })
        .await
    }

    /// `Cluster.PromoteMember` (needs `Cluster.Admin`).
    pub async fn promote_member(&self, id: u64) -> Result<v1::MembershipResponse, Error> {
        self.admin(
            v1::PromoteMemberRequest { node_id: id },
            |ch, request| async move { ClusterClient::new(ch).promote_member(request).await },
        )
        .await
    }

    /// `Cluster.RemoveMember` (needs `Cluster.Admin`).
    pub async fn remove_member(&self, id: u64) -> Result<v1::MembershipResponse, Error> {
        self.admin(
            v1::RemoveMemberRequest { node_id: id },
            |ch, request| async move { ClusterClient::new(ch).remove_member(request).await },
        )
        .await
    }

    /// `Cluster.TransferLeader` (needs `Cluster.Admin`): the new leader.
    pub async fn transfer_leader(&self, to: Option<u64>) -> Result<u64, Error> {
        let reply = self
            .admin(
                v1::TransferLeaderRequest { node_id: to },
                |ch, request| async move { ClusterClient::new(ch).transfer_leader(request).await },
            )
            .await?;
        Ok(reply.leader_id)
    }

    /// A membership call: it may wait for a new member to catch up, so it
    /// gets a long deadline. Retrying one is safe: a change that took effect
    /// answers `unchanged`.
    async fn admin<M, R, F, Fut>(&self, message: M, rpc: F) -> Result<R, Error>
    where
        M: Clone,
        F: Fn(Channel, tonic::Request<M>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<R>, tonic::Status>>,
    {
        Ok(self
            .call_within(MEMBERSHIP_CALL_TIMEOUT, |ch| {
                rpc(ch, self.request(message.clone()))
            })
            .await?
            .into_inner())
    }

    /// `TaskManager.CreateTask`: the new task.
    pub async fn create_task(&self, args: CreateTask) -> Result<TaskInfo, Error> {
        let mut message = v1::CreateTaskRequest::from(args);
        message.header = Some(self.next_header());
        let reply = self
            .unary(message, |ch, request| async move {
                TaskManagerClient::new(ch).create_task(request).await
            })
            .await?;
        info(reply.info)
    }

    /// `TaskManager.GetTask`, linearizable unless `stale`.
    pub async fn get_task(&self, key: &str, stale: bool) -> Result<TaskInfo, Error> {
        let consistency = if stale {
            v1::ReadConsistency::Stale
        } else {
            v1::ReadConsistency::Linearizable
        };
        let message = v1::GetTaskRequest {
            key: key.into(),
            consistency: consistency as i32,
        };
        let reply = self
            .unary(message, |ch, request| async move {
                TaskManagerClient::new(ch).get_task(request).await
            })
            .await?;
        info(reply.info)
    }

    /// `Task.UpdateProgress`.
    pub async fn update_progress(&self, key: &str, percent_done: i32) -> Result<TaskInfo, Error> {
        let message = v1::UpdateProgressRequest {
            header: Some(self.next_header()),
            task: key.into(),
            percent_done,
            progress_details: None,
            api_version: v1::ApiVersion::Current as i32,
        };
        let reply = self
            .unary(message, |ch, request| async move {
                TaskClient::new(ch).update_progress(request).await
            })
            .await?;
        info(reply.info)
    }

    /// `Task.SetTaskState`.
    pub async fn set_task_state(
        &self,
        key: &str,
        state: State,
        result: Option<AnyValue>,
        fault: Option<MethodFault>,
    ) -> Result<TaskInfo, Error> {
        let message = v1::SetTaskStateRequest {
            header: Some(self.next_header()),
            task: key.into(),
            state: v1::TaskInfoState::from(state) as i32,
            result: result.map(Into::into),
            fault: fault.map(Into::into),
        };
        let reply = self
            .unary(message, |ch, request| async move {
                TaskClient::new(ch).set_task_state(request).await
            })
            .await?;
        info(reply.info)
    }

    /// `Task.SetTaskDescription`.
    pub async fn set_task_description(
        &self,
        key: &str,
        description: LocalizableMessage,
    ) -> Result<TaskInfo, Error> {
        let message = v1::SetTaskDescriptionRequest {
            header: Some(self.next_header()),
            task: key.into(),
            description: Some(description.into()),
        };
        let reply = self
            .unary(message, |ch, request| async move {
                TaskClient::new(ch).set_task_description(request).await
            })
            .await?;
        info(reply.info)
    }

    /// `Task.CancelTask`.
    pub async fn cancel_task(&self, key: &str) -> Result<TaskInfo, Error> {
        let message = v1::CancelTaskRequest {
            header: Some(self.next_header()),
            task: key.into(),
        };
        let reply = self
            .unary(message, |ch, request| async move {
                TaskClient::new(ch).cancel_task(request).await
            })
            .await?;
        info(reply.info)
    }

    /// Waits until the task ends or `timeout` passes; the task as it is then.
    /// Resumes on another node if the one it waits on goes away.
    pub async fn wait(&self, key: &str, timeout: Duration) -> Result<TaskInfo, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = v1::WaitTaskRequest {
                key: key.into(),
                timeout: Some(millis_to_duration(left.as_millis() as u64)),
            };
            // The call lasts as long as the wait: give it that, and a margin
            // for the answer, instead of the usual per-call bound.
            let reply = self
                .unary_within(left + WAIT_MARGIN, message, |ch, request| async move {
                    TaskManagerClient::new(ch).wait_task(request).await
                })
                .await?;
            let task = info(reply.info)?;
            if task.state.is_terminal() || tokio::time::Instant::now() >= deadline {
                return Ok(task);
            }
        }
    }

    /// `TaskManager.ListTasks`, one page: the tasks and the next page token.
    pub async fn list_tasks(
        &self,
        filter: TaskFilterSpec,
        page_size: u32,
        page_token: &str,
    ) -> Result<(Vec<TaskInfo>, String), Error> {
        let message = v1::ListTasksRequest {
            filter: Some(filter.into()),
            page_size,
            page_token: page_token.into(),
            consistency: v1::ReadConsistency::Linearizable as i32,
        };
        let reply = self
            .unary(message, |ch, request| async move {
                TaskManagerClient::new(ch).list_tasks(request).await
            })
            .await?;
        let tasks = infos(reply.tasks)?;
        Ok((tasks, reply.next_page_token))
    }

    /// `TaskManager.RecentTasks` (D17).
    pub async fn recent_tasks(&self) -> Result<Vec<TaskInfo>, Error> {
        let message = v1::RecentTasksRequest {
            consistency: v1::ReadConsistency::Linearizable as i32,
        };
        let reply = self
            .unary(message, |ch, request| async move {
                TaskManagerClient::new(ch).recent_tasks(request).await
            })
            .await?;
        infos(reply.tasks)
    }

    /// `TaskManager.CreateCollectorForTasks` (spec §7.3): the collector's
    /// name and its first latest page (newest first).
    pub async fn create_collector(
        &self,
        filter: TaskFilterSpec,
    ) -> Result<(String, Vec<TaskInfo>), Error> {
        let message = v1::CreateCollectorForTasksRequest {
            header: Some(self.next_header()),
            filter: Some(filter.into()),
        };
        let reply = self
            .unary(message, |ch, request| async move {
                TaskManagerClient::new(ch)
                    .create_collector_for_tasks(request)
                    .await
            })
            .await?;
        Ok((reply.collector, infos(reply.latest_page)?))
    }

    /// `ReadNextTasks`: up to `max_count` tasks after the cursor, oldest
    /// first; empty at the end.
    pub async fn read_next_tasks(
        &self,
        collector: &str,
        max_count: i32,
    ) -> Result<Vec<TaskInfo>, Error> {
        let message = v1::ReadNextTasksRequest {
            header: Some(self.next_header()),
            collector: collector.into(),
            max_count,
        };
        let reply = self
            .unary(message, |ch, request| async move {
                TaskManagerClient::new(ch).read_next_tasks(request).await
            })
            .await?;
        infos(reply.tasks)
    }

    /// `ReadPreviousTasks`: up to `max_count` tasks before the cursor,
    /// newest first; empty at the head.
    pub async fn read_previous_tasks(
        &self,
        collector: &str,
        max_count: i32,
    ) -> Result<Vec<TaskInfo>, Error> {
        let message = v1::ReadPreviousTasksRequest {
            header: Some(self.next_header()),
            collector: collector.into(),
            max_count,
        };
        let reply = self
            .unary(message, |ch, request| async move {
                TaskManagerClient::new(ch)
                    .read_previous_tasks(request)
                    .await
            })
            .await?;
        infos(reply.tasks)
    }

    /// `RewindCollector`: the cursor goes before the oldest task.
    pub async fn rewind_collector(&self, collector: &str) -> Result<(), Error> {
        let message = v1::RewindCollectorRequest {
            header: Some(self.next_header()),
            collector: collector.into(),
        };
        self.unary(message, |ch, request| async move {
            TaskManagerClient::new(ch).rewind_collector(request).await
        })
        .await?;
        Ok(())
    }

    /// `ResetCollector`: the cursor goes just before the latest page (D20).
    pub async fn reset_collector(&self, collector: &str) -> Result<(), Error> {
        let message = v1::ResetCollectorRequest {
            header: Some(self.next_header()),
            collector: collector.into(),
        };
        self.unary(message, |ch, request| async move {
            TaskManagerClient::new(ch).reset_collector(request).await
        })
        .await?;
        Ok(())
    }

    /// `SetCollectorPageSize` (D19): the rebuilt latest page.
    pub async fn set_collector_page_size(
        &self,
        collector: &str,
        max_count: i32,
    ) -> Result<Vec<TaskInfo>, Error> {
        let message = v1::SetCollectorPageSizeRequest {
            header: Some(self.next_header()),
            collector: collector.into(),
            max_count,
        };
        let reply = self
            .unary(message, |ch, request| async move {
                TaskManagerClient::new(ch)
                    .set_collector_page_size(request)
                    .await
            })
            .await?;
        infos(reply.latest_page)
    }

    /// `DestroyCollector`.
    pub async fn destroy_collector(&self, collector: &str) -> Result<(), Error> {
        let message = v1::DestroyCollectorRequest {
            header: Some(self.next_header()),
            collector: collector.into(),
        };
        self.unary(message, |ch, request| async move {
            TaskManagerClient::new(ch).destroy_collector(request).await
        })
        .await?;
        Ok(())
    }

    /// A collector's `latestPage` (newest first), read linearizably.
    pub async fn latest_page(&self, collector: &str) -> Result<Vec<TaskInfo>, Error> {
        let message = v1::GetLatestPageRequest {
            collector: collector.into(),
            consistency: v1::ReadConsistency::Linearizable as i32,
        };
        let reply = self
            .unary(message, |ch, request| async move {
                TaskManagerClient::new(ch).get_latest_page(request).await
            })
            .await?;
        infos(reply.latest_page)
    }

    /// Follows the tasks `selector` picks, from `from` (0: their current
    /// state first). See [`Watch`].
    pub fn watch(&self, selector: WatchSelector, from: u64) -> Watch<'_> {
        Watch {
            client: self,
            selector: selector.into(),
            next: from,
            in_snapshot: false,
            endpoint: 0,
            stream: None,
            pending_resync: false,
        }
    }

    /// `TaskManager.GetTaskHistory` (D23), in wire form.
    pub async fn task_history(&self, key: &str) -> Result<Vec<v1::TaskChange>, Error> {
        let message = v1::GetTaskHistoryRequest {
            key: key.into(),
            consistency: v1::ReadConsistency::Linearizable as i32,
        };
        let reply = self
            .unary(message, |ch, request| async move {
                TaskManagerClient::new(ch).get_task_history(request).await
            })
            .await?;
        Ok(reply.changes)
    }
}

/// A reply that may name the leader (every mutation's does).
pub trait LeaderHint {
    fn leader_hint(&self) -> Option<&str> {
        None
    }
}

macro_rules! leader_hint {
    (named: $($named:ty),*; unnamed: $($unnamed:ty),*) => {
        $(impl LeaderHint for $named {
            fn leader_hint(&self) -> Option<&str> {
                Some(self.leader_hint.as_str()).filter(|h| !h.is_empty())
            }
        })*
        $(impl LeaderHint for $unnamed {})*
    };
}

leader_hint!(
    named: v1::CreateTaskResponse, v1::UpdateProgressResponse, v1::SetTaskStateResponse,
        v1::SetTaskDescriptionResponse, v1::CancelTaskResponse,
        v1::CreateCollectorForTasksResponse, v1::ReadNextTasksResponse,
        v1::ReadPreviousTasksResponse, v1::RewindCollectorResponse, v1::ResetCollectorResponse,
        v1::SetCollectorPageSizeResponse, v1::DestroyCollectorResponse;
    unnamed: v1::GetTaskResponse, v1::WaitTaskResponse, v1::ListTasksResponse,
        v1::RecentTasksResponse, v1::GetTaskHistoryResponse, v1::GetLatestPageResponse
);

/// How long a connection attempt may take before the next endpoint is
/// tried (500 ms failed connections that a loaded 2-core machine was slow to
/// set up: 256 clients connecting at once during `vtask bench`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// A call in flight pings its node this often, and gives the connection up
/// when a ping is not answered within [`KEEPALIVE_TIMEOUT`].
const KEEPALIVE_INTERVAL: Duration = Duration::from_millis(500);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(1);

/// An endpoint that gives up a dead node quickly: a node that does not
/// accept the connection, or stops answering pings during a call (a
/// crashed host, a partition: no RST ever comes), fails the attempt within
/// about a second, and the call goes on to the next endpoint instead of
/// waiting out `per_call`.
fn failing_fast(endpoint: Endpoint, per_call: Duration) -> Endpoint {
    endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
        .timeout(per_call)
}

fn infos(list: Vec<v1::TaskInfo>) -> Result<Vec<TaskInfo>, Error> {
    list.into_iter().map(|t| info(Some(t))).collect()
}

fn info(info: Option<v1::TaskInfo>) -> Result<TaskInfo, Error> {
    let info = info.ok_or_else(|| Error::Protocol("the server sent no TaskInfo".into()))?;
    TaskInfo::try_from(info).map_err(|fault| Error::Protocol(fault.to_string()))
}

/// Which tasks a watch follows.
#[derive(Clone, Debug)]
pub enum WatchSelector {
    Task(String),
    Filter(TaskFilterSpec),
    All,
}

impl From<WatchSelector> for v1::watch_tasks_request::Selector {
    fn from(selector: WatchSelector) -> Self {
        match selector {
            WatchSelector::Task(key) => v1::watch_tasks_request::Selector::Task(key),
            WatchSelector::Filter(filter) => {
                v1::watch_tasks_request::Selector::Filter(filter.into())
            }
            WatchSelector::All => v1::watch_tasks_request::Selector::All(()),
        }
    }
}

/// What one watch event says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchKind {
    Created,
    Updated,
    /// Removed by retention (D16); the info is the task's last state.
    Removed,
    /// The state of a selected task, part of a snapshot at the event's revision.
    Current,
    /// Forget what you know of the selected tasks: a snapshot follows.
    Resync,
    /// The snapshot is complete; live changes follow.
    Synced,
}

/// One event of a [`Watch`].
#[derive(Clone, Debug, PartialEq)]
pub struct WatchEvent {
    pub revision: u64,
    pub kind: WatchKind,
    pub info: Option<TaskInfo>,
}

/// A WatchTasks stream that survives the loss of the node it reads from: it
/// reconnects to the next endpoint and resumes after the last change it
/// delivered, so the caller misses nothing and sees nothing twice. A snapshot
/// (CURRENT events) cut off before its SYNCED cannot be resumed half way; the
/// watch then starts the snapshot over and says so with a `Resync` event.
pub struct Watch<'a> {
    client: &'a Client,
    selector: v1::watch_tasks_request::Selector,
    /// The start revision of the next stream.
    next: u64,
    /// Between the first CURRENT (or RESYNC) and SYNCED.
    in_snapshot: bool,
    endpoint: usize,
    stream: Option<tonic::Streaming<v1::WatchTasksResponse>>,
    pending_resync: bool,
}

impl Watch<'_> {
    /// The revision a new watch would start from to continue this one.
    pub fn resume_revision(&self) -> u64 {
        self.next
    }

    /// The next event. Waits as long as it takes for a change; while no node
    /// answers it keeps trying for the client's retry window.
    pub async fn next(&mut self) -> Result<WatchEvent, Error> {
        loop {
            if self.pending_resync {
                self.pending_resync = false;
                return Ok(WatchEvent {
                    revision: self.next,
                    kind: WatchKind::Resync,
                    info: None,
                });
            }
            if self.stream.is_none() {
                self.connect().await?;
            }
            let Some(stream) = self.stream.as_mut() else {
                continue;
            };
            match stream.message().await {
                Ok(Some(event)) => {
                    if let Some(event) = self.accept(event)? {
                        return Ok(event);
                    }
                }
                Ok(None) | Err(_) => self.lost(),
            }
        }
    }

    /// Opens a stream at the next endpoint that serves it.
    async fn connect(&mut self) -> Result<(), Error> {
        let endpoints = self.client.endpoints.len().max(1);
        let selector = self.selector.clone();
        let start_revision = self.next;
        let offset = self.endpoint;
        let deadline = tokio::time::Instant::now() + self.client.retry_for;
        let mut last = String::new();
        for attempt in 0.. {
            let addr = &self.client.endpoints[(offset + attempt) % endpoints];
            let request = self.client.request(v1::WatchTasksRequest {
                selector: Some(selector.clone()),
                start_revision,
            });
            match TaskManagerClient::new(self.client.connect(addr)?)
                .watch_tasks(request)
                .await
            {
                Ok(stream) => {
                    self.endpoint = (offset + attempt) % endpoints;
                    self.stream = Some(stream.into_inner());
                    return Ok(());
                }
                Err(status) => {
                    if let Some(fault) = status_to_fault(&status) {
                        return Err(Error::Fault(fault));
                    }
                    last = format!("{addr}: {}", status.message());
                }
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            if (attempt + 1) % endpoints == 0 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Err(Error::Unavailable(format!(
            "no node serves the watch (last: {last})"
        )))
    }

    /// The stream broke: resume elsewhere.
    fn lost(&mut self) {
        self.stream = None;
        self.endpoint += 1;
        if self.in_snapshot {
            // Start a fresh snapshot: 0 asks for the current state.
            self.in_snapshot = false;
            self.next = 0;
            self.pending_resync = true;
        }
    }

    fn accept(&mut self, event: v1::WatchTasksResponse) -> Result<Option<WatchEvent>, Error> {
        let kind = match v1::ChangeKind::try_from(event.kind) {
            Ok(v1::ChangeKind::Created) => WatchKind::Created,
            Ok(v1::ChangeKind::Updated) => WatchKind::Updated,
            Ok(v1::ChangeKind::Removed) => WatchKind::Removed,
            Ok(v1::ChangeKind::Current) => WatchKind::Current,
            Ok(v1::ChangeKind::Resync) => WatchKind::Resync,
            Ok(v1::ChangeKind::Synced) => WatchKind::Synced,
            _ => {
                return Err(Error::Protocol(format!(
                    "unknown watch event kind {}",
                    event.kind
                )))
            }
        };
        let info = event.info.map(|i| info(Some(i))).transpose()?;
        match kind {
            WatchKind::Current | WatchKind::Resync => self.in_snapshot = true,
            WatchKind::Synced => {
                self.in_snapshot = false;
                self.next = event.revision + 1;
            }
            WatchKind::Created | WatchKind::Updated | WatchKind::Removed => {
                self.next = event.revision + 1;
            }
        }
        Ok(Some(WatchEvent {
            revision: event.revision,
            kind,
            info,
        }))
    }
}
