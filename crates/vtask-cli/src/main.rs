//! `vtask`: the command line of a vtask cluster.
//!
//! Every verb is one gRPC call to any node of the cluster (the node forwards
//! writes to the leader itself). Exit codes: 0 done, 1 the server answered
//! with a vSphere fault, 2 bad usage, 3 no node could answer.

mod bench;
mod output;
mod watch;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use tonic::transport::{Channel, Endpoint};
use vtask_model::{
    AnyValue, FaultKind, KeyAnyValue, LocalizableMessage, MethodFault, MoRef, State, TaskInfo,
};
use vtask_proto::convert::{millis_to_duration, status_to_fault};
use vtask_proto::v1::cluster_client::ClusterClient;
use vtask_proto::v1::task_client::TaskClient;
use vtask_proto::v1::task_manager_client::TaskManagerClient;
use vtask_proto::v1::{self, RequestHeader};

/// vtask: create, watch and finish vSphere-style tasks on a vtask cluster.
#[derive(Debug, Parser)]
#[command(name = "vtask", version, about)]
struct Cli {
    /// gRPC addresses of the cluster's nodes, comma separated.
    #[arg(
        long,
        env = "VTASK_ENDPOINTS",
        value_delimiter = ',',
        default_value = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"
    )]
    endpoints: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// The user name the request is made as (until authentication is configured).
    #[arg(long, global = true, env = "VTASK_USER")]
    user: Option<String>,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable.
    Table,
    /// TaskInfo as JSON with vSphere's names, one object per line.
    Json,
    /// Only the task key (for scripts).
    Key,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Create a task (TaskManager.CreateTask); prints the new TaskInfo.
    Create {
        /// The task type, e.g. com.example.backup (D10).
        #[arg(long)]
        type_id: String,
        /// The entity the task acts on, TYPE:VALUE, e.g. VirtualMachine:vm-42.
        #[arg(long, value_parser = parse_moref)]
        entity: MoRef,
        /// The entity's display name.
        #[arg(long)]
        entity_name: Option<String>,
        /// Whether CancelTask may cancel the task.
        #[arg(long)]
        cancelable: bool,
        /// The user the task is shown as started by.
        #[arg(long)]
        initiated_by: Option<String>,
        /// The key of the task that spawned this one.
        #[arg(long)]
        parent: Option<String>,
        /// A token of the caller's to correlate the task with its call.
        #[arg(long)]
        activation_id: Option<String>,
        /// A change tag to filter on.
        #[arg(long)]
        change_tag: Option<String>,
        /// Owner lease (D26), e.g. 30s or 5m: the task fails when its owner stops reporting for this long.
        #[arg(long, value_parser = parse_duration)]
        lease: Option<Duration>,
    },
    /// Show a task (linearizable unless --stale).
    Get {
        key: String,
        /// Read from the answering node without the leader's confirmation.
        #[arg(long)]
        stale: bool,
    },
    /// List tasks, oldest first.
    List {
        /// Only tasks in these states (queued, running, success, error).
        #[arg(long, value_delimiter = ',')]
        state: Vec<String>,
        /// The most tasks to show.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Recent tasks (D17): queued and running ones, and those completed in the last 10 minutes.
    Recent,
    /// Every change of a task: who, what, when, and the Raft term and index (D23).
    History { key: String },
    /// Start a queued task (SetTaskState running).
    Start { key: String },
    /// Set a task's state (Task.SetTaskState).
    SetState {
        key: String,
        /// queued, running, success or error.
        state: String,
        /// The result of a successful task, as JSON.
        #[arg(long)]
        result: Option<String>,
        /// The fault of a failed task: TYPE or TYPE:MESSAGE, e.g. RequestCanceled or SystemError:disk full.
        #[arg(long)]
        fault: Option<String>,
    },
    /// Report a running task's progress in percent (Task.UpdateProgress).
    Progress { key: String, percent: i32 },
    /// Set a task's description (Task.SetTaskDescription).
    Describe {
        key: String,
        /// The message catalog key.
        #[arg(long = "key")]
        message_key: String,
        /// A message argument, K=V (repeatable).
        #[arg(long = "arg", value_parser = parse_arg)]
        args: Vec<KeyAnyValue>,
        /// The rendered message.
        #[arg(long)]
        message: Option<String>,
    },
    /// Request cancellation (Task.CancelTask).
    Cancel { key: String },
    /// Wait until a task ends; exit 0 on success, 1 on error.
    Wait {
        key: String,
        /// How long to wait, e.g. 60s.
        #[arg(long, value_parser = parse_duration, default_value = "60s")]
        timeout: Duration,
    },
    /// Follow changes as they are applied: one task (until it ends), tasks in
    /// some states, or all tasks. Survives the loss of the node it reads from.
    Watch {
        /// The task to follow; without it, every task the filter selects.
        key: Option<String>,
        /// Only tasks in these states.
        #[arg(long, value_delimiter = ',')]
        state: Vec<String>,
        /// Replay changes from this revision on, instead of starting with the current state.
        #[arg(long)]
        from: Option<u64>,
    },
    /// Measure throughput and latency: each client owns a running task and
    /// sends UpdateProgress back to back.
    Bench {
        /// Concurrent clients.
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// How long to measure, e.g. 10s.
        #[arg(long, value_parser = parse_duration, default_value = "10s")]
        duration: Duration,
        /// How long to run before measuring.
        #[arg(long, value_parser = parse_duration, default_value = "2s")]
        warmup: Duration,
    },
    /// Cluster administration.
    Cluster {
        #[command(subcommand)]
        verb: ClusterVerb,
    },
}

#[derive(Debug, Subcommand)]
enum ClusterVerb {
    /// Each node's role, term, log and applied indexes and state digest.
    Status,
}

fn parse_moref(text: &str) -> Result<MoRef, String> {
    match text.split_once(':') {
        Some((t, v)) if !t.is_empty() && !v.is_empty() => Ok(MoRef::new(t, v)),
        _ => Err(format!(
            "{text:?} is not TYPE:VALUE, e.g. VirtualMachine:vm-42"
        )),
    }
}

fn parse_arg(text: &str) -> Result<KeyAnyValue, String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not K=V"))?;
    Ok(KeyAnyValue {
        key: key.into(),
        value: AnyValue::String(value.into()),
    })
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30s, 5m or 500ms"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!(
            "{text:?}: unknown unit {unit:?} (use ms, s, m or h)"
        )),
    }
}

fn parse_state(text: &str) -> Result<State, Failure> {
    State::parse(text)
        .ok_or_else(|| Failure::Usage(format!("{text:?} is not queued, running, success or error")))
}

/// How a verb failed; `main` prints it and picks the exit code.
pub enum Failure {
    Fault(MethodFault),
    Usage(String),
    Unavailable(String),
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Fault(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Unavailable(_) => 3,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("vtask: {e}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            match &failure {
                Failure::Fault(fault) => output::print_fault(fault),
                Failure::Usage(message) => eprintln!("vtask: {message}"),
                Failure::Unavailable(message) => eprintln!("vtask: {message}"),
            }
            ExitCode::from(failure.exit_code())
        }
    }
}

/// The connection to the cluster: tries each endpoint in turn, and retries
/// for a while with the same client id and sequence number, so a write is
/// applied at most once however often it is re-sent.
struct Conn {
    endpoints: Vec<String>,
    client_id: String,
    user: Option<String>,
}

/// How long a verb keeps retrying while no node answers.
const RETRY_FOR: Duration = Duration::from_secs(15);

impl Conn {
    fn header(&self) -> Option<RequestHeader> {
        Some(RequestHeader {
            client_id: self.client_id.clone(),
            seq: 1,
        })
    }

    fn channel(addr: &str) -> Result<Channel, Failure> {
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| Failure::Usage(format!("endpoint {addr:?}: {e}")))?;
        Ok(endpoint
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(30))
            .connect_lazy())
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(user) = self.user.as_deref().and_then(|u| u.parse().ok()) {
            request.metadata_mut().insert("x-vtask-user", user);
        }
        request
    }

    /// Runs `call` against the endpoints until one answers with something
    /// other than "unavailable".
    async fn call<T, F, Fut>(&self, call: F) -> Result<T, Failure>
    where
        F: Fn(Channel) -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        let deadline = tokio::time::Instant::now() + RETRY_FOR;
        let mut last = String::from("no endpoint given");
        loop {
            for addr in &self.endpoints {
                match call(Conn::channel(addr)?).await {
                    Ok(value) => return Ok(value),
                    Err(status) => {
                        if let Some(fault) = status_to_fault(&status) {
                            return Err(Failure::Fault(fault));
                        }
                        match status.code() {
                            tonic::Code::Unavailable
                            | tonic::Code::DeadlineExceeded
                            | tonic::Code::Unknown => {
                                last = format!("{addr}: {}", status.message());
                            }
                            _ => {
                                return Err(Failure::Unavailable(format!(
                                    "{addr}: {}",
                                    status.message()
                                )))
                            }
                        }
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Failure::Unavailable(format!(
                    "no node answered within {RETRY_FOR:?} (last: {last})"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn info_of(info: Option<v1::TaskInfo>) -> Result<TaskInfo, Failure> {
    let info = info.ok_or_else(|| Failure::Unavailable("the server sent no TaskInfo".into()))?;
    TaskInfo::try_from(info).map_err(Failure::Fault)
}

async fn run(cli: Cli) -> Result<u8, Failure> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let conn = Conn {
        endpoints: cli.endpoints.clone(),
        client_id: format!("vtask-cli-{}-{nanos:x}", std::process::id()),
        user: cli.user.clone(),
    };
    let format = cli.output;
    match cli.verb {
        Verb::Create {
            type_id,
            entity,
            entity_name,
            cancelable,
            initiated_by,
            parent,
            activation_id,
            change_tag,
            lease,
        } => {
            let message = v1::CreateTaskRequest {
                header: conn.header(),
                obj: Some(entity.into()),
                entity_name,
                task_type_id: type_id,
                initiated_by,
                cancelable,
                parent_task_key: parent,
                activation_id,
                change_tag,
                lease: lease.map(|d| millis_to_duration(d.as_millis() as u64)),
            };
            let info = conn
                .call(|ch| {
                    let request = conn.request(message.clone());
                    async move { TaskManagerClient::new(ch).create_task(request).await }
                })
                .await?;
            output::print_task(format, &info_of(info.into_inner().info)?);
        }
        Verb::Get { key, stale } => {
            let consistency = if stale {
                v1::ReadConsistency::Stale
            } else {
                v1::ReadConsistency::Linearizable
            };
            let message = v1::GetTaskRequest {
                key,
                consistency: consistency as i32,
            };
            let reply = conn
                .call(|ch| {
                    let request = conn.request(message.clone());
                    async move { TaskManagerClient::new(ch).get_task(request).await }
                })
                .await?;
            output::print_task(format, &info_of(reply.into_inner().info)?);
        }
        Verb::List { state, limit } => {
            let states = state
                .iter()
                .map(|s| parse_state(s))
                .collect::<Result<Vec<_>, _>>()?;
            let filter = vtask_model::TaskFilterSpec {
                state: states,
                ..Default::default()
            };
            let message = v1::ListTasksRequest {
                filter: Some(filter.into()),
                page_size: limit,
                page_token: String::new(),
                consistency: v1::ReadConsistency::Linearizable as i32,
            };
            let reply = conn
                .call(|ch| {
                    let request = conn.request(message.clone());
                    async move { TaskManagerClient::new(ch).list_tasks(request).await }
                })
                .await?;
            let tasks = reply
                .into_inner()
                .tasks
                .into_iter()
                .map(|t| info_of(Some(t)))
                .collect::<Result<Vec<_>, _>>()?;
            output::print_tasks(format, &tasks);
        }
        Verb::Recent => {
            let message = v1::RecentTasksRequest {
                consistency: v1::ReadConsistency::Linearizable as i32,
            };
            let reply = conn
                .call(|ch| {
                    let request = conn.request(message);
                    async move { TaskManagerClient::new(ch).recent_tasks(request).await }
                })
                .await?;
            let tasks = reply
                .into_inner()
                .tasks
                .into_iter()
                .map(|t| info_of(Some(t)))
                .collect::<Result<Vec<_>, _>>()?;
            output::print_tasks(format, &tasks);
        }
        Verb::History { key } => {
            let message = v1::GetTaskHistoryRequest {
                key,
                consistency: v1::ReadConsistency::Linearizable as i32,
            };
            let reply = conn
                .call(|ch| {
                    let request = conn.request(message.clone());
                    async move { TaskManagerClient::new(ch).get_task_history(request).await }
                })
                .await?;
            output::print_history(format, &reply.into_inner().changes)?;
        }
        Verb::Start { key } => {
            let info = set_state(&conn, key, State::Running, None, None).await?;
            output::print_task(format, &info);
        }
        Verb::SetState {
            key,
            state,
            result,
            fault,
        } => {
            let state = parse_state(&state)?;
            let result = result.map(AnyValue::Json);
            let fault = fault.map(|f| parse_fault(&f));
            let info = set_state(&conn, key, state, result, fault).await?;
            output::print_task(format, &info);
        }
        Verb::Progress { key, percent } => {
            let message = v1::UpdateProgressRequest {
                header: conn.header(),
                task: key,
                percent_done: percent,
                progress_details: None,
                api_version: v1::ApiVersion::Current as i32,
            };
            let reply = conn
                .call(|ch| {
                    let request = conn.request(message.clone());
                    async move { TaskClient::new(ch).update_progress(request).await }
                })
                .await?;
            output::print_task(format, &info_of(reply.into_inner().info)?);
        }
        Verb::Describe {
            key,
            message_key,
            args,
            message,
        } => {
            let description = LocalizableMessage {
                key: message_key,
                arg: args,
                message,
            };
            let message = v1::SetTaskDescriptionRequest {
                header: conn.header(),
                task: key,
                description: Some(description.into()),
            };
            let reply = conn
                .call(|ch| {
                    let request = conn.request(message.clone());
                    async move { TaskClient::new(ch).set_task_description(request).await }
                })
                .await?;
            output::print_task(format, &info_of(reply.into_inner().info)?);
        }
        Verb::Cancel { key } => {
            let message = v1::CancelTaskRequest {
                header: conn.header(),
                task: key,
            };
            let reply = conn
                .call(|ch| {
                    let request = conn.request(message.clone());
                    async move { TaskClient::new(ch).cancel_task(request).await }
                })
                .await?;
            output::print_task(format, &info_of(reply.into_inner().info)?);
        }
        Verb::Wait { key, timeout } => {
            let message = v1::WaitTaskRequest {
                key,
                timeout: Some(millis_to_duration(timeout.as_millis() as u64)),
            };
            let reply = conn
                .call(|ch| {
                    let request = conn.request(message.clone());
                    async move { TaskManagerClient::new(ch).wait_task(request).await }
                })
                .await?;
            let info = info_of(reply.into_inner().info)?;
            output::print_task(format, &info);
            return Ok(match info.state {
                State::Success => 0,
                State::Error => 1,
                // Still queued or running when the timeout ran out.
                State::Queued | State::Running => 4,
            });
        }
        Verb::Watch { key, state, from } => {
            let selector = match (key, state.is_empty()) {
                (Some(key), _) => v1::watch_tasks_request::Selector::Task(key),
                (None, false) => {
                    let states = state
                        .iter()
                        .map(|s| parse_state(s))
                        .collect::<Result<Vec<_>, _>>()?;
                    let filter = vtask_model::TaskFilterSpec {
                        state: states,
                        ..Default::default()
                    };
                    v1::watch_tasks_request::Selector::Filter(filter.into())
                }
                (None, true) => v1::watch_tasks_request::Selector::All(()),
            };
            return watch::run(&conn, format, selector, from.unwrap_or(0)).await;
        }
        Verb::Bench {
            clients,
            duration,
            warmup,
        } => {
            let args = bench::BenchArgs {
                clients: clients.max(1),
                duration,
                warmup,
            };
            bench::run(&conn, format, args).await?;
        }
        Verb::Cluster {
            verb: ClusterVerb::Status,
        } => {
            let mut statuses = Vec::new();
            for addr in &conn.endpoints {
                let mut client = ClusterClient::new(Conn::channel(addr)?);
                let status = client
                    .status(v1::StatusRequest {})
                    .await
                    .map_err(|s| format!("{addr}: {}", s.message()));
                statuses.push((addr.clone(), status.map(|r| r.into_inner())));
            }
            output::print_cluster(format, &statuses);
            if statuses.iter().all(|(_, s)| s.is_err()) {
                return Err(Failure::Unavailable("no node answered".into()));
            }
        }
    }
    Ok(0)
}

async fn set_state(
    conn: &Conn,
    key: String,
    state: State,
    result: Option<AnyValue>,
    fault: Option<MethodFault>,
) -> Result<TaskInfo, Failure> {
    let message = v1::SetTaskStateRequest {
        header: conn.header(),
        task: key,
        state: v1::TaskInfoState::from(state) as i32,
        result: result.map(Into::into),
        fault: fault.map(Into::into),
    };
    let reply = conn
        .call(|ch| {
            let request = conn.request(message.clone());
            async move { TaskClient::new(ch).set_task_state(request).await }
        })
        .await?;
    info_of(reply.into_inner().info)
}

/// `TYPE[:MESSAGE]`, where TYPE is a vSphere fault name.
fn parse_fault(text: &str) -> MethodFault {
    let (type_name, message) = match text.split_once(':') {
        Some((t, m)) => (t.trim(), Some(m.trim().to_string())),
        None => (text.trim(), None),
    };
    let kind = match type_name {
        "RequestCanceled" => FaultKind::RequestCanceled,
        "NotSupported" => FaultKind::NotSupported,
        "InvalidState" => FaultKind::InvalidState,
        "SystemError" => FaultKind::SystemError {
            reason: message.clone().unwrap_or_default(),
        },
        other => FaultKind::Other {
            type_name: other.to_string(),
        },
    };
    MethodFault {
        kind,
        localized_message: message,
        fault_cause: None,
        fault_message: Vec::new(),
    }
}
