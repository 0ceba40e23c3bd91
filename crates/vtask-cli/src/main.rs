//! `vtask`: the command line of a vtask cluster.
//!
//! Every verb is one gRPC call, through `vtask-client`, to any node of the
//! cluster (the node forwards writes to the leader itself). Exit codes: 0 done, 1 the server answered
//! with a vSphere fault, 2 bad usage, 3 no node could answer.

mod bench;
mod chaos;
mod output;
mod snapshot;
mod watch;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use vtask_model::{
    AnyValue, FaultKind, KeyAnyValue, LocalizableMessage, MethodFault, MoRef, State,
};
use vtask_proto::v1;
use vtask_proto::v1::cluster_client::ClusterClient;

/// vtask: create, watch and finish vSphere-style tasks on a vtask cluster.
#[derive(Debug, Parser)]
#[command(name = "vtask", version, about)]
struct Cli {
    /// gRPC addresses of the cluster's nodes, comma separated.
    #[arg(
        long,
        global = true,
        env = "VTASK_ENDPOINTS",
        value_delimiter = ',',
        default_value = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"
    )]
    endpoints: Vec<String>,
    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// The user name the request is made as, on a node run with --insecure (no authentication).
    #[arg(long, global = true, env = "VTASK_USER")]
    user: Option<String>,
    /// Bearer token to authenticate with (the node's users file holds its SHA-256).
    #[arg(long, global = true, env = "VTASK_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Talk TLS, trusting only this CA certificate (PEM), e.g. .dev/certs/ca.pem.
    #[arg(long, global = true, env = "VTASK_CA", value_name = "FILE")]
    ca: Option<std::path::PathBuf>,
    /// How long a call keeps trying while no node answers, e.g. 15s.
    #[arg(long, global = true, env = "VTASK_RETRY_FOR", value_parser = parse_duration, default_value = "15s")]
    retry_for: Duration,
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
        #[command(flatten)]
        filter: FilterArgs,
        /// The most tasks to show.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Continue after this task key (the last key of the previous page).
        #[arg(long)]
        after: Option<String>,
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
    /// Report a running task's progress in percent (Task.UpdateProgress);
    /// the server clamps it to 0..100, so -5 means 0.
    Progress {
        key: String,
        #[arg(allow_negative_numbers = true)]
        percent: i32,
    },
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
        #[command(flatten)]
        filter: FilterArgs,
        /// Replay changes from this revision on, instead of starting with the current state.
        #[arg(long)]
        from: Option<u64>,
    },
    /// Load a cluster (vtask, or etcd for comparison) with a workload and
    /// report ops/s, latency percentiles, errors and server CPU per 1000 ops.
    Bench(bench::BenchArgs),
    /// Run a workload while injecting faults (kills, pauses, partitions),
    /// record the history and check it: linearizability per task, watch
    /// streams, state digests. `vtask chaos check FILE` re-checks a saved run.
    Chaos(chaos::ChaosArgs),
    /// Task history collectors (spec §8.2): a cursor over every task a
    /// filter selects, kept by the cluster so it survives a leader change.
    Collector {
        #[command(subcommand)]
        verb: CollectorVerb,
    },
    /// Cluster administration.
    Cluster {
        #[command(subcommand)]
        verb: ClusterVerb,
    },
    /// The cluster's members: list them, add, promote or remove one (needs
    /// Cluster.Admin; each change runs on the leader, one at a time).
    Member {
        #[command(subcommand)]
        verb: MemberVerb,
    },
    /// The Raft leader: hand the leadership to another voter.
    Leader {
        #[command(subcommand)]
        verb: LeaderVerb,
    },
    /// Backups (issue #15): save one from the running cluster, or check a file.
    Snapshot {
        #[command(subcommand)]
        verb: SnapshotVerb,
    },
}

#[derive(Debug, Subcommand)]
enum MemberVerb {
    /// Every member: id, address, role (leader, follower, learner), and as
    /// the leader sees it, match index and lag (entries it lacks).
    List,
    /// Add node ID at ADDRESS (its gRPC HOST:PORT; the node must be running,
    /// started with --join or an empty data directory). It joins as a
    /// learner, catches up (by snapshot if needed) and only then becomes a
    /// voter. Waits until then (up to 150 s).
    Add {
        id: u64,
        address: String,
        /// Leave it a learner: it replicates but does not vote.
        #[arg(long)]
        learner: bool,
    },
    /// Make learner ID a voter, once it has caught up.
    Promote { id: u64 },
    /// Remove node ID (the leader too: it hands over first). The removed node
    /// stops serving; its data directory no longer belongs to the cluster.
    Remove { id: u64 },
}

#[derive(Debug, Subcommand)]
enum LeaderVerb {
    /// Hand the leadership to voter ID, or to the most caught-up voter.
    /// Writes made meanwhile wait, then go to the new leader.
    Transfer { id: Option<u64> },
}

#[derive(Debug, Subcommand)]
enum SnapshotVerb {
    /// Save a consistent backup of the whole state (Cluster.SaveSnapshot,
    /// needs Cluster.Admin) to FILE: written to FILE.tmp, fsynced, checked,
    /// then renamed. `vtaskd restore --from FILE` seeds a new cluster from it.
    Save { file: std::path::PathBuf },
    /// Check a backup file (every byte, against its checksum) and print its
    /// header: format, origin cluster id, applied index, tasks, digest.
    /// Exit 0 when it is whole, 2 when it is damaged or no backup.
    Status { file: std::path::PathBuf },
}

/// `TaskFilterSpec` (spec §8.1) on the command line. Fields combine with
/// AND; the values of one flag with OR.
#[derive(Debug, Default, clap::Args)]
struct FilterArgs {
    /// Only tasks in these states (queued, running, success, error).
    #[arg(long, value_delimiter = ',')]
    state: Vec<String>,
    /// Only tasks on this entity, TYPE:VALUE (e.g. VirtualMachine:vm-42).
    #[arg(long, value_parser = parse_moref)]
    entity: Option<MoRef>,
    /// Only tasks initiated by these users.
    #[arg(long = "initiated-by", value_delimiter = ',')]
    users: Vec<String>,
    /// Only tasks with these activation ids.
    #[arg(long, value_delimiter = ',')]
    activation_id: Vec<String>,
    /// Only tasks with these change tags ("" selects tasks without one).
    #[arg(long, value_delimiter = ',')]
    tag: Vec<String>,
    /// Only children of these tasks.
    #[arg(long, value_delimiter = ',')]
    parent: Vec<String>,
    /// Only tasks under these root tasks.
    #[arg(long, value_delimiter = ',')]
    root: Vec<String>,
}

impl FilterArgs {
    fn spec(&self) -> Result<vtask_model::TaskFilterSpec, Failure> {
        let mut spec = state_filter(&self.state)?;
        spec.entity = self.entity.clone().map(vtask_model::FilterByEntity::itself);
        if !self.users.is_empty() {
            spec.user_name = Some(vtask_model::FilterByUsername::users(self.users.clone()));
        }
        spec.activation_id = self.activation_id.clone();
        spec.tag = self.tag.clone();
        spec.parent_task_key = self.parent.clone();
        spec.root_task_key = self.root.clone();
        Ok(spec)
    }
}

#[derive(Debug, Subcommand)]
enum CollectorVerb {
    /// Create a collector over the tasks the filter selects; prints its name
    /// and latest page. The cursor starts before the oldest task.
    Create {
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// The next tasks after the cursor, oldest first (ReadNextTasks); none at the end.
    Next {
        collector: String,
        #[arg(long, default_value_t = 10)]
        max: i32,
    },
    /// The tasks before the cursor, newest first (ReadPreviousTasks); none at the head.
    Prev {
        collector: String,
        #[arg(long, default_value_t = 10)]
        max: i32,
    },
    /// Move the cursor before the oldest task (RewindCollector).
    Rewind { collector: String },
    /// Move the cursor just before the latest page (ResetCollector).
    Reset { collector: String },
    /// Show the latest page: the newest matching tasks, newest first.
    Page { collector: String },
    /// Set the latest page's size, 1..1000 or 0 for 10 (SetCollectorPageSize); rewinds the cursor.
    PageSize { collector: String, size: i32 },
    /// Destroy the collector (DestroyCollector).
    Destroy { collector: String },
}

#[derive(Debug, Subcommand)]
enum ClusterVerb {
    /// Each node's role, term, log and applied indexes and state digest.
    Status,
}

fn parse_moref(text: &str) -> Result<MoRef, String> {
    MoRef::parse(text)
        .ok_or_else(|| format!("{text:?} is not TYPE:VALUE, e.g. VirtualMachine:vm-42"))
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

async fn collector(conn: &Conn, format: Format, verb: CollectorVerb) -> Result<(), Failure> {
    match verb {
        CollectorVerb::Create { filter } => {
            let (name, page) = conn.create_collector(filter.spec()?).await?;
            output::print_collector(format, &name, &page);
        }
        CollectorVerb::Next { collector, max } => {
            output::print_tasks(format, &conn.read_next_tasks(&collector, max).await?)
        }
        CollectorVerb::Prev { collector, max } => {
            output::print_tasks(format, &conn.read_previous_tasks(&collector, max).await?)
        }
        CollectorVerb::Rewind { collector } => conn.rewind_collector(&collector).await?,
        CollectorVerb::Reset { collector } => conn.reset_collector(&collector).await?,
        CollectorVerb::Page { collector } => {
            output::print_tasks(format, &conn.latest_page(&collector).await?)
        }
        CollectorVerb::PageSize { collector, size } => output::print_tasks(
            format,
            &conn.set_collector_page_size(&collector, size).await?,
        ),
        CollectorVerb::Destroy { collector } => conn.destroy_collector(&collector).await?,
    }
    Ok(())
}

/// A filter on the states named on the command line (none: every task).
fn state_filter(states: &[String]) -> Result<vtask_model::TaskFilterSpec, Failure> {
    Ok(vtask_model::TaskFilterSpec {
        state: states
            .iter()
            .map(|s| parse_state(s))
            .collect::<Result<_, _>>()?,
        ..Default::default()
    })
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

/// The connection to the cluster (see `vtask-client`).
pub type Conn = vtask_client::Client;

impl From<vtask_client::Error> for Failure {
    fn from(error: vtask_client::Error) -> Failure {
        match error {
            vtask_client::Error::Fault(fault) => Failure::Fault(fault),
            vtask_client::Error::BadEndpoint { .. } => Failure::Usage(error.to_string()),
            vtask_client::Error::Unavailable(_) | vtask_client::Error::Protocol(_) => {
                Failure::Unavailable(error.to_string())
            }
        }
    }
}

async fn run(cli: Cli) -> Result<u8, Failure> {
    let mut conn = Conn::new(cli.endpoints.clone()).retry_for(cli.retry_for);
    if let Some(user) = &cli.user {
        conn = conn.user(user.clone());
    }
    if let Some(token) = &cli.token {
        conn = conn.token(token.clone());
    }
    if let Some(ca) = &cli.ca {
        let pem = std::fs::read(ca).map_err(|e| {
            Failure::Usage(format!("reading the CA certificate {}: {e}", ca.display()))
        })?;
        conn = conn.tls_ca(pem);
    }
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
            let args = vtask_model::CreateTask {
                obj: entity,
                entity_name,
                task_type_id: type_id,
                initiated_by,
                cancelable,
                parent_task_key: parent,
                activation_id,
                change_tag,
                lease_millis: lease.map(|d| d.as_millis() as u64),
            };
            output::print_task(format, &conn.create_task(args).await?);
        }
        Verb::Get { key, stale } => output::print_task(format, &conn.get_task(&key, stale).await?),
        Verb::List {
            filter,
            limit,
            after,
        } => {
            let after = after.unwrap_or_default();
            let (tasks, _) = conn.list_tasks(filter.spec()?, limit, &after).await?;
            output::print_tasks(format, &tasks);
        }
        Verb::Recent => output::print_tasks(format, &conn.recent_tasks().await?),
        Verb::History { key } => output::print_history(format, &conn.task_history(&key).await?)?,
        Verb::Start { key } => output::print_task(
            format,
            &conn
                .set_task_state(&key, State::Running, None, None)
                .await?,
        ),
        Verb::SetState {
            key,
            state,
            result,
            fault,
        } => {
            let state = parse_state(&state)?;
            let result = result.map(AnyValue::Json);
            let fault = fault.map(|f| parse_fault(&f));
            output::print_task(
                format,
                &conn.set_task_state(&key, state, result, fault).await?,
            );
        }
        Verb::Progress { key, percent } => {
            output::print_task(format, &conn.update_progress(&key, percent).await?)
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
            output::print_task(format, &conn.set_task_description(&key, description).await?);
        }
        Verb::Cancel { key } => output::print_task(format, &conn.cancel_task(&key).await?),
        Verb::Wait { key, timeout } => {
            let info = conn.wait(&key, timeout).await?;
            output::print_task(format, &info);
            return Ok(match info.state {
                State::Success => 0,
                State::Error => 1,
                // Still queued or running when the timeout ran out.
                State::Queued | State::Running => 4,
            });
        }
        Verb::Watch { key, filter, from } => {
            let spec = filter.spec()?;
            let selector = match key {
                Some(key) => vtask_client::WatchSelector::Task(key),
                None if spec == vtask_model::TaskFilterSpec::default() => {
                    vtask_client::WatchSelector::All
                }
                None => vtask_client::WatchSelector::Filter(spec),
            };
            return watch::run(&conn, format, selector, from.unwrap_or(0)).await;
        }
        Verb::Bench(args) => bench::run(&conn, format, args).await?,
        Verb::Chaos(args) => return chaos::run(&cli.endpoints, format, args).await,
        Verb::Collector { verb } => collector(&conn, format, verb).await?,
        Verb::Snapshot {
            verb: SnapshotVerb::Save { file },
        } => {
            let (summary, info) = snapshot::save(&conn, &file).await?;
            output::print_snapshot(format, &file, &summary, info.as_ref());
        }
        Verb::Snapshot {
            verb: SnapshotVerb::Status { file },
        } => {
            let summary = snapshot::check(&file)?;
            output::print_snapshot(format, &file, &summary, None);
        }
        Verb::Member {
            verb: MemberVerb::List,
        } => {
            let status = leader_status(&conn).await?;
            output::print_members(format, &status);
        }
        Verb::Member { verb } => {
            let reply = match verb {
                MemberVerb::Add {
                    id,
                    address,
                    learner,
                } => conn.add_member(id, &address, learner).await?,
                MemberVerb::Promote { id } => conn.promote_member(id).await?,
                MemberVerb::Remove { id } => conn.remove_member(id).await?,
                MemberVerb::List => unreachable!("listed above"),
            };
            output::print_membership_change(format, &reply);
        }
        Verb::Leader {
            verb: LeaderVerb::Transfer { id },
        } => {
            let leader = conn.transfer_leader(id).await?;
            match format {
                Format::Table => println!("node {leader} is the leader"),
                _ => println!("{}", serde_json::json!({ "leaderId": leader })),
            }
        }
        Verb::Cluster {
            verb: ClusterVerb::Status,
        } => {
            let mut statuses = Vec::new();
            for addr in conn.endpoints() {
                let mut client = ClusterClient::new(conn.connect(addr)?);
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

/// Cluster.Status from the leader (which alone knows match indexes and
/// lag), or from the first node that answers if none claims to lead.
async fn leader_status(conn: &vtask_client::Client) -> Result<v1::StatusResponse, Failure> {
    let mut first = None;
    let mut last_error = String::from("no endpoint given");
    for addr in conn.endpoints() {
        let mut client = ClusterClient::new(conn.connect(addr)?);
        match client.status(v1::StatusRequest {}).await {
            Ok(reply) => {
                let status = reply.into_inner();
                if status.leader_id == Some(status.node_id) {
                    return Ok(status);
                }
                first.get_or_insert(status);
            }
            Err(s) => last_error = format!("{addr}: {}", s.message()),
        }
    }
    first.ok_or_else(|| Failure::Unavailable(format!("no node answered (last: {last_error})")))
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
