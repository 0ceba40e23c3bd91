//! The clients of a chaos run and what they record.
//!
//! N clients call the task API back to back over a small pool of tasks, so
//! calls on one task overlap: CreateTask keeps the pool filled, and each
//! other call picks a task of the pool, sent to a random node (followers
//! included). A task leaves the pool after a bounded number of calls, which
//! keeps each task's history small enough to search.
//!
//! A mutation is one logical call with one client id and sequence number: a
//! reply that does not come (timeout, lost connection, `UNAVAILABLE`) is
//! retried on the next node with the same header, as `vtask-client` does,
//! until an answer or the op window closes. With `resend` > 0 a client also
//! re-sends some answered calls unchanged, as if the first reply had been
//! lost, and records the second reply: with working deduplication (D27) it
//! is the first reply again.
//!
//! Outcomes: an answer (task or vSphere fault) is `Ok`; a call no node ever
//! received (every attempt was refused at connect) is `Failed`; anything
//! else is `Unknown`.
//!
//! Watchers follow `WatchTasks(all)` from the current state, resume on
//! another node from `last + 1` when their stream breaks or stalls, and now
//! and then start over from the current state (recorded as a `Resync`).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use vtask_model::{
    AnyValue, Caller, Command, CreateTask, FaultKind, LocalizableMessage, MethodFault, MoRef,
    Privileges, TaskInfo,
};
use vtask_proto::convert::status_to_fault;
use vtask_proto::v1::task_client::TaskClient;
use vtask_proto::v1::task_manager_client::TaskManagerClient;
use vtask_proto::v1::{self, RequestHeader};

use crate::history::{Call, ChangeKind, OpOutcome, Operation, Returned, Selector};
use crate::history::{WatchEvent, WatchStream};

/// The caller every chaos client names itself as (`x-vtask-user`).
pub const USER: &str = "chaos";
/// How long one attempt of a call may take. Above the server's own 5 s
/// bound on writes and read barriers, so a node that is up answers first.
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(6);
/// How long a mutation keeps being retried with its header.
const OP_WINDOW: Duration = Duration::from_secs(20);
/// A watch stream that says nothing this long is dropped and resumed
/// elsewhere (its node may be paused or cut off).
const WATCH_STALL: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    pub clients: usize,
    /// Tasks in play at once.
    pub tasks: usize,
    /// Calls on one task before it leaves the pool.
    pub calls_per_task: usize,
    /// Probability that an answered mutation is sent again unchanged.
    pub resend: f64,
    pub watchers: usize,
    pub seed: u64,
}

/// What every client shares.
pub struct Shared {
    pub origin: Instant,
    channels: Vec<Channel>,
    pool: Mutex<Pool>,
    operations: Mutex<Vec<Operation>>,
    stopping: AtomicBool,
    /// Distinguishes this run's client ids from any earlier run's.
    nonce: String,
}

impl Shared {
    pub fn new(endpoints: &[String], config: &WorkloadConfig, origin: Instant) -> Shared {
        let channels = endpoints
            .iter()
            .filter_map(|addr| {
                Endpoint::from_shared(format!("http://{addr}"))
                    .ok()
                    .map(|e| {
                        e.connect_timeout(Duration::from_secs(1))
                            .tcp_nodelay(true)
                            .connect_lazy()
                    })
            })
            .collect();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Shared {
            origin,
            channels,
            pool: Mutex::new(Pool {
                live: Vec::new(),
                creating: 0,
                target: config.tasks.max(1),
                calls_per_task: config.calls_per_task.max(1),
                keys: BTreeSet::new(),
            }),
            operations: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            nonce: format!("{}-{nanos:x}", std::process::id()),
        }
    }

    pub fn now(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    pub fn record(&self, op: Operation) {
        self.operations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(op);
    }

    pub fn take_operations(&self) -> Vec<Operation> {
        std::mem::take(&mut *self.operations.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Every key an acknowledged create returned.
    pub fn keys(&self) -> Vec<String> {
        let pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        pool.keys.iter().cloned().collect()
    }

    pub fn channel(&self, index: usize) -> Option<Channel> {
        self.channels
            .get(index % self.channels.len().max(1))
            .cloned()
    }

    pub fn nodes(&self) -> usize {
        self.channels.len()
    }

    fn with_pool<T>(&self, f: impl FnOnce(&mut Pool) -> T) -> T {
        f(&mut self.pool.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

struct Pool {
    live: Vec<Live>,
    creating: usize,
    target: usize,
    calls_per_task: usize,
    keys: BTreeSet<String>,
}

struct Live {
    key: String,
    calls: usize,
    ended: bool,
}

enum Plan {
    Create,
    On(String),
}

impl Pool {
    fn plan(&mut self, rng: &mut StdRng) -> Plan {
        if self.live.is_empty() || self.live.len() + self.creating < self.target {
            self.creating += 1;
            return Plan::Create;
        }
        let i = rng.gen_range(0..self.live.len());
        let Some(task) = self.live.get_mut(i) else {
            self.creating += 1;
            return Plan::Create;
        };
        task.calls += 1;
        let key = task.key.clone();
        // An ended task keeps drawing calls for a while: faults on it are
        // part of what the checker must explain.
        if task.calls >= self.calls_per_task || (task.ended && rng.gen_bool(0.3)) {
            self.live.swap_remove(i);
        }
        Plan::On(key)
    }

    fn created(&mut self, key: Option<String>) {
        self.creating = self.creating.saturating_sub(1);
        if let Some(key) = key {
            self.keys.insert(key.clone());
            self.live.push(Live {
                key,
                calls: 0,
                ended: false,
            });
        }
    }

    fn saw(&mut self, info: &TaskInfo) {
        if info.state.is_terminal() {
            let key = info.key.to_string();
            if let Some(task) = self.live.iter_mut().find(|t| t.key == key) {
                task.ended = true;
            }
        }
    }
}

/// One mutation as sent on the wire.
#[derive(Clone)]
enum Request {
    Create(v1::CreateTaskRequest),
    Cancel(v1::CancelTaskRequest),
    Progress(v1::UpdateProgressRequest),
    State(v1::SetTaskStateRequest),
    Describe(v1::SetTaskDescriptionRequest),
}

impl Request {
    /// The command the receiving node derives from the request, by the
    /// same conversion it uses.
    fn command(&self) -> Result<Command, MethodFault> {
        match self.clone() {
            Request::Create(r) => Command::try_from(r),
            Request::Cancel(r) => Ok(Command::from(r)),
            Request::Progress(r) => Command::try_from(r),
            Request::State(r) => Command::try_from(r),
            Request::Describe(r) => Command::try_from(r),
        }
    }

    async fn send(&self, channel: Channel) -> Result<Option<v1::TaskInfo>, Status> {
        match self.clone() {
            Request::Create(r) => TaskManagerClient::new(channel)
                .create_task(request(r))
                .await
                .map(|r| r.into_inner().info),
            Request::Cancel(r) => TaskClient::new(channel)
                .cancel_task(request(r))
                .await
                .map(|r| r.into_inner().info),
            Request::Progress(r) => TaskClient::new(channel)
                .update_progress(request(r))
                .await
                .map(|r| r.into_inner().info),
            Request::State(r) => TaskClient::new(channel)
                .set_task_state(request(r))
                .await
                .map(|r| r.into_inner().info),
            Request::Describe(r) => TaskClient::new(channel)
                .set_task_description(request(r))
                .await
                .map(|r| r.into_inner().info),
        }
    }
}

fn request<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(ATTEMPT_TIMEOUT);
    if let Ok(user) = USER.parse() {
        request.metadata_mut().insert("x-vtask-user", user);
    }
    request
}

/// How one attempt ended.
enum Attempt {
    Answer(Returned),
    /// Refused at connect: no node saw it.
    NotSent,
    /// Sent, no answer.
    Lost,
}

fn attempt_result(result: Result<Option<v1::TaskInfo>, Status>) -> Attempt {
    match result {
        Ok(Some(info)) => match TaskInfo::try_from(info) {
            Ok(info) => Attempt::Answer(Returned::Task(info)),
            Err(_) => Attempt::Lost,
        },
        Ok(None) => Attempt::Lost,
        Err(status) => match status_to_fault(&status) {
            Some(fault) => Attempt::Answer(Returned::Fault(fault)),
            None if never_sent(&status) => Attempt::NotSent,
            None => Attempt::Lost,
        },
    }
}

/// A connection refused before the request left: the node never saw it.
fn never_sent(status: &Status) -> bool {
    if status.code() != Code::Unavailable {
        return false;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        source = error.source();
    }
    false
}

pub struct Client {
    pub id: u32,
    shared: Arc<Shared>,
    rng: StdRng,
    client_id: String,
    seq: u64,
    resend: f64,
}

impl Client {
    pub fn new(id: u32, shared: Arc<Shared>, config: &WorkloadConfig) -> Client {
        let client_id = format!("chaos-{}-c{id}", shared.nonce);
        Client {
            id,
            rng: StdRng::seed_from_u64(config.seed.wrapping_add(u64::from(id) * 7919)),
            shared,
            client_id,
            seq: 0,
            resend: config.resend,
        }
    }

    /// Calls until the run stops.
    pub async fn run(mut self) {
        while !self.shared.stopping() {
            match self.shared.with_pool(|p| p.plan(&mut self.rng)) {
                Plan::Create => {
                    let key = self.create().await;
                    self.shared.with_pool(|p| p.created(key));
                }
                Plan::On(key) => self.on_task(&key).await,
            }
        }
    }

    fn header(&mut self) -> Option<RequestHeader> {
        self.seq += 1;
        Some(RequestHeader {
            client_id: self.client_id.clone(),
            seq: self.seq,
        })
    }

    fn random_node(&mut self) -> usize {
        self.rng.gen_range(0..self.shared.nodes().max(1))
    }

    async fn create(&mut self) -> Option<String> {
        let vm = self.rng.gen_range(1..=10);
        let args = CreateTask {
            obj: MoRef::new("VirtualMachine", format!("vm-{vm}")),
            entity_name: self.rng.gen_bool(0.5).then(|| format!("VM {vm}")),
            task_type_id: "com.example.chaos".into(),
            cancelable: self.rng.gen_bool(0.7),
            ..Default::default()
        };
        let mut message = v1::CreateTaskRequest::from(args);
        message.header = self.header();
        let returned = self.mutate(Request::Create(message)).await;
        match returned {
            Some(Returned::Task(info)) => Some(info.key.to_string()),
            _ => None,
        }
    }

    async fn on_task(&mut self, key: &str) {
        let roll = self.rng.gen_range(0..100);
        let task = key.to_string();
        let request = match roll {
            0..=24 => {
                self.get(key).await;
                return;
            }
            25..=39 => Request::State(v1::SetTaskStateRequest {
                header: self.header(),
                task,
                state: v1::TaskInfoState::Running as i32,
                result: None,
                fault: None,
            }),
            40..=61 => {
                // Now and then out of range: the server clamps it (D28).
                let percent = if self.rng.gen_bool(0.05) {
                    150
                } else {
                    self.rng.gen_range(0..=100)
                };
                Request::Progress(v1::UpdateProgressRequest {
                    header: self.header(),
                    task,
                    percent_done: percent,
                    progress_details: None,
                    api_version: v1::ApiVersion::Current as i32,
                })
            }
            62..=73 => {
                let step = self.rng.gen_range(1..=4);
                Request::Describe(v1::SetTaskDescriptionRequest {
                    header: self.header(),
                    task,
                    description: Some(
                        LocalizableMessage {
                            key: format!("com.example.chaos.step{step}"),
                            arg: Vec::new(),
                            message: Some(format!("Step {step}")),
                        }
                        .into(),
                    ),
                })
            }
            74..=83 => Request::Cancel(v1::CancelTaskRequest {
                header: self.header(),
                task,
            }),
            84..=89 => {
                let result = self
                    .rng
                    .gen_bool(0.5)
                    .then(|| AnyValue::String(format!("done by {}", self.client_id)).into());
                Request::State(v1::SetTaskStateRequest {
                    header: self.header(),
                    task,
                    state: v1::TaskInfoState::Success as i32,
                    result,
                    fault: None,
                })
            }
            90..=95 => {
                let fault = if self.rng.gen_bool(0.5) {
                    MethodFault::new(FaultKind::RequestCanceled)
                } else {
                    MethodFault::new(FaultKind::SystemError {
                        reason: "disk full".into(),
                    })
                };
                Request::State(v1::SetTaskStateRequest {
                    header: self.header(),
                    task,
                    state: v1::TaskInfoState::Error as i32,
                    result: None,
                    fault: Some(fault.into()),
                })
            }
            _ => Request::State(v1::SetTaskStateRequest {
                header: self.header(),
                task,
                state: v1::TaskInfoState::Queued as i32,
                result: None,
                fault: None,
            }),
        };
        self.mutate(request).await;
    }

    /// Sends one mutation until answered or the window closes, records it,
    /// and returns the answer.
    async fn mutate(&mut self, request: Request) -> Option<Returned> {
        let Ok(command) = request.command() else {
            // The workload builds only valid requests; one that does not
            // convert is not a call the checker could model.
            return None;
        };
        let invoke = self.shared.now();
        let mut outcome = self.until_answered(&request).await;
        if let OpOutcome::Ok { .. } = outcome {
            if self.resend > 0.0 && self.rng.gen_bool(self.resend.min(1.0)) {
                // As if the first reply had been lost: the same header again.
                if let again @ OpOutcome::Ok { .. } = self.until_answered(&request).await {
                    outcome = again;
                }
            }
        }
        let returned = match &outcome {
            OpOutcome::Ok { value } => {
                if let Returned::Task(info) = value {
                    self.shared.with_pool(|p| p.saw(info));
                }
                Some(value.clone())
            }
            OpOutcome::Failed | OpOutcome::Unknown => None,
        };
        self.shared.record(Operation {
            client: self.id,
            call: Call::Mutation {
                caller: Caller::user(USER, Privileges::ALL),
                command,
            },
            invoke,
            complete: self.shared.now(),
            outcome,
        });
        returned
    }

    async fn until_answered(&mut self, request: &Request) -> OpOutcome {
        let deadline = Instant::now() + OP_WINDOW;
        let mut node = self.random_node();
        let mut sent = false;
        loop {
            if let Some(channel) = self.shared.channel(node) {
                match attempt_result(request.send(channel).await) {
                    Attempt::Answer(value) => return OpOutcome::Ok { value },
                    Attempt::NotSent => {}
                    Attempt::Lost => sent = true,
                }
            }
            if Instant::now() >= deadline || self.shared.stopping() && sent {
                return if sent {
                    OpOutcome::Unknown
                } else {
                    OpOutcome::Failed
                };
            }
            node += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One linearizable GetTask on a random node, recorded.
    async fn get(&mut self, key: &str) {
        let node = self.random_node();
        read(&self.shared, self.id, key, node).await;
    }
}

fn linearizable_get(key: &str) -> v1::GetTaskRequest {
    v1::GetTaskRequest {
        key: key.to_string(),
        consistency: v1::ReadConsistency::Linearizable as i32,
    }
}

/// A linearizable GetTask of `key` on node `node`, recorded; returns the
/// task and the revision the read reflects when it was answered.
pub async fn read(shared: &Shared, client: u32, key: &str, node: usize) -> Option<(Returned, u64)> {
    let invoke = shared.now();
    let (outcome, revision) = match shared.channel(node) {
        Some(channel) => {
            let reply = TaskManagerClient::new(channel)
                .get_task(request(linearizable_get(key)))
                .await
                .map(tonic::Response::into_inner);
            let revision = reply.as_ref().map_or(0, |r| r.revision);
            let outcome = match attempt_result(reply.map(|r| r.info)) {
                Attempt::Answer(value) => OpOutcome::Ok { value },
                Attempt::NotSent => OpOutcome::Failed,
                Attempt::Lost => OpOutcome::Unknown,
            };
            (outcome, revision)
        }
        None => (OpOutcome::Failed, 0),
    };
    let answer = match &outcome {
        OpOutcome::Ok { value } => Some((value.clone(), revision)),
        _ => None,
    };
    shared.record(Operation {
        client,
        call: Call::GetTask {
            task: key.to_string(),
        },
        invoke,
        complete: shared.now(),
        outcome,
    });
    answer
}

/// Whether node `node` answers a linearizable GetTask of `key` within
/// `timeout`: `Err` with the reason if not. A fault such as NotFound counts
/// as an answer, since the node passed its read barrier before it looked the
/// key up. Not recorded: this is the runner's recovery check, not a call of
/// the history.
pub async fn answers_reads(
    shared: &Shared,
    key: &str,
    node: usize,
    timeout: Duration,
) -> Result<(), String> {
    let channel = shared
        .channel(node)
        .ok_or_else(|| "no endpoints".to_string())?;
    let mut call = request(linearizable_get(key));
    call.set_timeout(timeout);
    match TaskManagerClient::new(channel).get_task(call).await {
        Ok(_) => Ok(()),
        Err(status) if status_to_fault(&status).is_some() => Ok(()),
        Err(status) => Err(status.message().to_string()),
    }
}

/// When a watcher may stop: once it has every change up to `revision`, or
/// at `deadline` whatever it has.
#[derive(Clone, Copy, Debug)]
pub struct WatchEnd {
    pub revision: u64,
    pub deadline: Instant,
}

pub struct Watcher {
    pub id: u32,
    pub shared: Arc<Shared>,
    pub rng: StdRng,
    pub end: watch::Receiver<Option<WatchEnd>>,
}

impl Watcher {
    /// Follows every task until told to end; the stream as read.
    pub async fn run(mut self) -> WatchStream {
        let mut events = Vec::new();
        // The revision to resume after, once a snapshot completed.
        let mut resume: Option<u64> = None;
        let mut started = false;
        loop {
            if self.finished(resume) {
                break;
            }
            let start_revision = match resume {
                Some(last) if self.rng.gen_bool(0.9) => last + 1,
                _ => {
                    if started {
                        events.push(WatchEvent::Resync);
                    }
                    resume = None;
                    0
                }
            };
            started = true;
            let node = self.rng.gen_range(0..self.shared.nodes().max(1));
            let Some(channel) = self.shared.channel(node) else {
                break;
            };
            let message = v1::WatchTasksRequest {
                selector: Some(v1::watch_tasks_request::Selector::All(())),
                start_revision,
            };
            let mut call = tonic::Request::new(message);
            call.set_timeout(Duration::from_secs(3600));
            let stream = tokio::time::timeout(
                ATTEMPT_TIMEOUT,
                TaskManagerClient::new(channel).watch_tasks(call),
            )
            .await;
            let mut stream = match stream {
                Ok(Ok(reply)) => reply.into_inner(),
                _ => {
                    // Nothing was delivered, so nothing to forget: take the
                    // Resync back if this attempt pushed one.
                    if start_revision == 0 && matches!(events.last(), Some(WatchEvent::Resync)) {
                        events.pop();
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            // Now and then the watcher drops a healthy stream, to resume
            // somewhere else; never inside a snapshot, which can be longer
            // than that and would then never complete.
            let drop_after = self.rng.gen_range(200..2000usize);
            let mut received = 0usize;
            loop {
                if self.finished(resume) || (received >= drop_after && resume.is_some()) {
                    break;
                }
                let message = match tokio::time::timeout(WATCH_STALL, stream.message()).await {
                    Ok(Ok(Some(message))) => message,
                    _ => break,
                };
                received += 1;
                let Some(event) = event(&message) else {
                    continue;
                };
                match &event {
                    WatchEvent::Change { revision, .. } | WatchEvent::Synced { revision } => {
                        resume = Some(*revision);
                    }
                    WatchEvent::Resync => resume = None,
                    WatchEvent::Current { .. } => {}
                }
                events.push(event);
            }
        }
        WatchStream {
            watcher: self.id,
            selector: Selector::All,
            start_revision: 0,
            events,
            ran_to_end: true,
        }
    }

    fn finished(&self, resume: Option<u64>) -> bool {
        match *self.end.borrow() {
            Some(end) => {
                resume.is_some_and(|r| r >= end.revision) || Instant::now() >= end.deadline
            }
            None => false,
        }
    }
}

fn event(message: &v1::WatchTasksResponse) -> Option<WatchEvent> {
    let info = || {
        message
            .info
            .clone()
            .and_then(|info| TaskInfo::try_from(info).ok())
    };
    let revision = message.revision;
    let change = |change| {
        info().map(|info| WatchEvent::Change {
            revision,
            change,
            info,
        })
    };
    match v1::ChangeKind::try_from(message.kind).ok()? {
        v1::ChangeKind::Created => change(ChangeKind::Created),
        v1::ChangeKind::Updated => change(ChangeKind::Updated),
        v1::ChangeKind::Removed => change(ChangeKind::Removed),
        v1::ChangeKind::Current => info().map(|info| WatchEvent::Current { revision, info }),
        v1::ChangeKind::Synced => Some(WatchEvent::Synced { revision }),
        v1::ChangeKind::Resync => Some(WatchEvent::Resync),
        v1::ChangeKind::Unspecified => None,
    }
}
