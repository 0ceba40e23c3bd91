//! `vtask bench`: a load generator for figures, not a test (issue #6).
//!
//! C clients run one workload back to back, each with its own client id and
//! rising sequence numbers, against vtask or, for comparison, etcd. After a
//! warm-up the tool measures for a fixed time: throughput, latency
//! percentiles (HdrHistogram), errors, and the CPU time the server processes
//! spent per 1000 operations, read from `/proc` at the start and end of the
//! measured window. Several workloads and client counts run one after the
//! other in one invocation, so one table compares them.

mod cpu;
mod etcd;
mod vtask;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::ValueEnum;
use hdrhistogram::Histogram;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::Status;

use crate::{Conn, Failure, Format};

/// Latencies above this are recorded as this (the channel times out sooner).
const MAX_MICROS: u64 = 60_000_000;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Workloads to run, comma separated, one after the other.
    #[arg(value_enum, value_delimiter = ',', default_value = "progress")]
    workloads: Vec<Workload>,
    /// Concurrent clients; a comma-separated list runs once per count (e.g. 1,16,64,256).
    #[arg(long, value_delimiter = ',', default_value = "16")]
    clients: Vec<usize>,
    /// How long to measure each run, e.g. 10s.
    #[arg(long, value_parser = crate::parse_duration, default_value = "10s")]
    duration: Duration,
    /// How long each run goes before measuring starts.
    #[arg(long, value_parser = crate::parse_duration, default_value = "2s")]
    warmup: Duration,
    /// The system under load. For etcd, give its client URLs' host:port with --endpoints.
    #[arg(long, value_enum, default_value_t = Target::Vtask)]
    target: Target,
    /// HTTP/2 connections the clients share, spread over the endpoints
    /// [default: one per client].
    #[arg(long)]
    connections: Option<usize>,
    /// The server processes whose CPU time is measured, comma separated
    /// [default: every local process named vtaskd, resp. etcd].
    #[arg(long, value_delimiter = ',')]
    server_pids: Vec<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// Each client owns a running task and sends UpdateProgress back to back
    /// (etcd: a Put of 150 bytes to the client's key).
    Progress,
    /// Per task: CreateTask, running, 10 UpdateProgress, success; each call
    /// is one operation (vtask only).
    Lifecycle,
    /// CreateTask back to back: queued tasks pile up, e.g. to fill a
    /// cluster before timing a snapshot (vtask only).
    Create,
    /// Linearizable GetTask of the client's task (etcd: linearizable Range).
    Get,
    /// GetTask from the answering node's state (etcd: serializable Range).
    GetStale,
    /// 90% UpdateProgress, 5% CreateTask, 5% linearizable GetTask (etcd: 95%
    /// Put, 5% Range).
    Mixed,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Progress => "progress",
            Workload::Lifecycle => "lifecycle",
            Workload::Create => "create",
            Workload::Get => "get",
            Workload::GetStale => "get-stale",
            Workload::Mixed => "mixed",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// A vtask cluster (the vim.Task API).
    Vtask,
    /// An etcd 3.4 cluster (v3 gRPC API, KV Put and Range), the yardstick.
    Etcd,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Vtask => "vtask",
            Target::Etcd => "etcd",
        }
    }

    /// The `comm` of its server processes, for finding them in `/proc`.
    fn process_name(self) -> &'static str {
        match self {
            Target::Vtask => "vtaskd",
            Target::Etcd => "etcd",
        }
    }
}

/// Why a benchmark could not run (a run that merely saw errors still reports).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    BadEndpoint(String),
    #[error("{target} {workload}: setting up client {client} failed: {message}")]
    Setup {
        target: &'static str,
        workload: &'static str,
        client: usize,
        message: String,
    },
    #[error("finding the server processes in /proc: {0}")]
    Proc(#[from] std::io::Error),
    #[error("a benchmark client stopped abnormally: {0}")]
    Client(#[from] tokio::task::JoinError),
}

impl From<BenchError> for Failure {
    fn from(error: BenchError) -> Failure {
        match error {
            BenchError::Usage(_) | BenchError::BadEndpoint(_) => Failure::Usage(error.to_string()),
            BenchError::Setup { .. } | BenchError::Proc(_) | BenchError::Client(_) => {
                Failure::Unavailable(error.to_string())
            }
        }
    }
}

/// Counts what the clients see inside the measured window; shared by all
/// clients of one run (they run on one thread, so the locks never contend).
#[derive(Clone)]
pub struct Recorder {
    shared: Arc<Shared>,
    start: Instant,
    end: Instant,
}

struct Shared {
    latencies: Mutex<Histogram<u64>>,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// The last answer in the window and the longest pause between two:
    /// what a failover or a leader transfer during the run costs.
    answers: Mutex<Pauses>,
}

#[derive(Default)]
struct Pauses {
    last: Option<Instant>,
    longest: Duration,
}

impl Recorder {
    fn new(start: Instant, end: Instant) -> Recorder {
        let histogram = Histogram::new_with_bounds(1, MAX_MICROS, 3)
            .expect("constant histogram bounds are valid");
        Recorder {
            shared: Arc::new(Shared {
                latencies: Mutex::new(histogram),
                errors: AtomicU64::new(0),
                first_error: Mutex::new(None),
                answers: Mutex::new(Pauses::default()),
            }),
            start,
            end,
        }
    }

    /// Whether clients should send another request.
    pub fn running(&self) -> bool {
        Instant::now() < self.end
    }

    /// Awaits one call and records it if it began and ended inside the
    /// window: calls in flight across either edge ran under a load that was
    /// still ramping up or already winding down.
    pub async fn time<T>(&self, call: impl Future<Output = Result<T, Status>>) -> Option<T> {
        let sent = Instant::now();
        let result = call.await;
        let done = Instant::now();
        let counted = sent >= self.start && done <= self.end;
        match result {
            Ok(value) => {
                if counted {
                    let micros = (done - sent).as_micros().min(u128::from(MAX_MICROS)) as u64;
                    lock(&self.shared.latencies).saturating_record(micros.max(1));
                    let mut answers = lock(&self.shared.answers);
                    let since = answers.last.unwrap_or(self.start);
                    answers.longest = answers.longest.max(done.saturating_duration_since(since));
                    answers.last = Some(answers.last.map_or(done, |last| last.max(done)));
                }
                Some(value)
            }
            Err(status) => {
                if counted {
                    self.shared.errors.fetch_add(1, Ordering::Relaxed);
                    lock(&self.shared.first_error).get_or_insert_with(|| {
                        format!("{:?}: {}", status.code(), status.message())
                    });
                }
                None
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A client that panicked mid-record leaves a usable histogram behind.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A client ready to run, of either target.
enum Prepared {
    Vtask(vtask::Client),
    Etcd(etcd::Client),
}

impl Prepared {
    async fn run(self, workload: Workload, recorder: Recorder) {
        match self {
            Prepared::Vtask(client) => client.run(workload, recorder).await,
            Prepared::Etcd(client) => client.run(workload, recorder).await,
        }
    }
}

/// The figures of one run (one workload at one client count).
struct Report {
    target: Target,
    workload: Workload,
    clients: usize,
    connections: usize,
    seconds: f64,
    ops: u64,
    errors: u64,
    first_error: Option<String>,
    latencies: Histogram<u64>,
    /// The longest pause between two answered calls (or the window's edges).
    longest_pause: Duration,
    server_pids: Vec<u32>,
    missing_pids: Vec<u32>,
    server_cpu: Duration,
    client_cpu: Option<Duration>,
}

impl Report {
    fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.seconds
    }

    fn quantile_ms(&self, q: f64) -> f64 {
        self.latencies.value_at_quantile(q) as f64 / 1000.0
    }

    fn per_1000_ops_ms(&self, cpu: Duration) -> Option<f64> {
        (self.ops > 0).then(|| cpu.as_secs_f64() * 1000.0 * 1000.0 / self.ops as f64)
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "target": self.target.name(),
            "workload": self.workload.name(),
            "clients": self.clients,
            "connections": self.connections,
            "seconds": self.seconds,
            "ops": self.ops,
            "opsPerSec": self.ops_per_sec(),
            "errors": self.errors,
            "firstError": self.first_error,
            "p50Ms": self.quantile_ms(0.5),
            "p90Ms": self.quantile_ms(0.9),
            "p99Ms": self.quantile_ms(0.99),
            "p999Ms": self.quantile_ms(0.999),
            "maxMs": self.latencies.max() as f64 / 1000.0,
            "meanMs": self.latencies.mean() / 1000.0,
            "longestPauseMs": self.longest_pause.as_secs_f64() * 1000.0,
            "serverPids": self.server_pids,
            "missingServerPids": self.missing_pids,
            "serverCpuSecs": self.server_cpu.as_secs_f64(),
            "serverCores": self.server_cpu.as_secs_f64() / self.seconds,
            "serverCpuMsPer1000Ops": self.per_1000_ops_ms(self.server_cpu),
            "clientCpuMsPer1000Ops": self.client_cpu.and_then(|c| self.per_1000_ops_ms(c)),
        })
    }

    fn table_row(&self) -> String {
        let cpu = |c: Option<f64>| c.map_or_else(|| "-".to_string(), |ms| format!("{ms:.1}"));
        format!(
            "{:<6} {:<10} {:>7} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>7} {:>12} {:>12}",
            self.target.name(),
            self.workload.name(),
            self.clients,
            self.ops_per_sec(),
            self.quantile_ms(0.5),
            self.quantile_ms(0.9),
            self.quantile_ms(0.99),
            self.quantile_ms(0.999),
            self.errors,
            cpu(self.per_1000_ops_ms(self.server_cpu)),
            cpu(self.client_cpu.and_then(|c| self.per_1000_ops_ms(c))),
        )
    }
}

const TABLE_HEADER: &str = "target workload   clients     ops/s   p50 ms   p90 ms   p99 ms  p99.9 ms  errors  srv CPU ms/1k  cli CPU ms/1k";

pub async fn run(conn: &Conn, format: Format, args: BenchArgs) -> Result<(), Failure> {
    if args.clients.contains(&0) {
        return Err(BenchError::Usage("--clients must be at least 1".into()).into());
    }
    if args.duration.is_zero() {
        return Err(BenchError::Usage("--duration must be more than 0".into()).into());
    }
    if let Some(only_vtask) = args
        .workloads
        .iter()
        .find(|w| matches!(w, Workload::Lifecycle | Workload::Create))
        .filter(|_| args.target == Target::Etcd)
    {
        return Err(BenchError::Usage(format!(
            "the {} workload has no etcd equivalent; use progress, get, get-stale or mixed",
            only_vtask.name()
        ))
        .into());
    }
    let pids = if args.server_pids.is_empty() {
        cpu::pids_named(args.target.process_name()).map_err(BenchError::from)?
    } else {
        args.server_pids.clone()
    };
    if format == Format::Table {
        let pid_list = pids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        println!(
            "# {} at {}; {:?} per run after {:?} warm-up; server pids {}",
            args.target.name(),
            conn.endpoints().join(","),
            args.duration,
            args.warmup,
            if pid_list.is_empty() {
                "none found"
            } else {
                &pid_list
            },
        );
        println!("{TABLE_HEADER}");
    }
    for &workload in &args.workloads {
        for &clients in &args.clients {
            let report = run_one(conn, &args, workload, clients, &pids).await?;
            match format {
                Format::Json | Format::Key => println!("{}", report.json()),
                Format::Table => {
                    println!("{}", report.table_row());
                    if let Some(error) = &report.first_error {
                        eprintln!("  {} errors, the first: {error}", report.errors);
                    }
                    if report.longest_pause >= Duration::from_millis(500) {
                        eprintln!(
                            "  longest pause between two answers: {} ms",
                            report.longest_pause.as_millis()
                        );
                    }
                    if !report.missing_pids.is_empty() {
                        eprintln!(
                            "  server pids {:?} were gone before the end: their CPU time is not counted",
                            report.missing_pids
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

async fn run_one(
    conn: &Conn,
    args: &BenchArgs,
    workload: Workload,
    clients: usize,
    pids: &[u32],
) -> Result<Report, BenchError> {
    let endpoints = conn.endpoints();
    if endpoints.is_empty() {
        return Err(BenchError::Usage("no --endpoints given".into()));
    }
    let connections = args.connections.unwrap_or(clients).clamp(1, clients);
    let channels = (0..connections)
        .map(|i| {
            Conn::channel(&endpoints[i % endpoints.len()])
                .map_err(|e| BenchError::BadEndpoint(e.to_string()))
        })
        .collect::<Result<Vec<Channel>, _>>()?;

    // Every client is ready (its task created and running, its key written)
    // before the clock starts, so set-up never counts as load.
    let mut setups = JoinSet::new();
    for i in 0..clients {
        let channel = channels[i % connections].clone();
        let id = format!("{}-{}-c{clients}-{i}", conn.client_id(), workload.name());
        let offset = (i as u64).wrapping_mul(7);
        let target = args.target;
        setups.spawn(async move {
            let prepared = match target {
                Target::Vtask => vtask::Client::setup(channel, id, offset, workload)
                    .await
                    .map(Prepared::Vtask),
                Target::Etcd => etcd::Client::setup(channel, format!("vtask-bench/{i}"), offset)
                    .await
                    .map(Prepared::Etcd),
            };
            (i, prepared)
        });
    }
    let mut prepared = Vec::with_capacity(clients);
    while let Some(joined) = setups.join_next().await {
        let (client, result) = joined?;
        match result {
            Ok(ready) => prepared.push(ready),
            Err(status) => {
                return Err(BenchError::Setup {
                    target: args.target.name(),
                    workload: workload.name(),
                    client,
                    message: format!("{:?}: {}", status.code(), status.message()),
                })
            }
        }
    }

    let start = Instant::now() + args.warmup;
    let end = start + args.duration;
    let recorder = Recorder::new(start, end);
    let sampler = {
        let pids = pids.to_vec();
        tokio::spawn(async move {
            tokio::time::sleep_until(start).await;
            let (servers, me) = (cpu::Sample::take(&pids), cpu::own_cpu_time());
            tokio::time::sleep_until(end).await;
            let (servers_after, me_after) = (cpu::Sample::take(&pids), cpu::own_cpu_time());
            let (server_cpu, missing) = servers.used_until(&servers_after);
            let client_cpu = match (me, me_after) {
                (Ok(me), Ok(after)) => Some(after.saturating_sub(me)),
                _ => None,
            };
            (server_cpu, missing, client_cpu)
        })
    };
    let mut running = JoinSet::new();
    for client in prepared {
        running.spawn(client.run(workload, recorder.clone()));
    }
    while let Some(joined) = running.join_next().await {
        joined?;
    }
    let (server_cpu, missing_pids, client_cpu) = sampler.await?;

    let latencies = lock(&recorder.shared.latencies).clone();
    let first_error = lock(&recorder.shared.first_error).clone();
    let longest_pause = {
        let answers = lock(&recorder.shared.answers);
        let end = recorder.end;
        answers
            .longest
            .max(end.saturating_duration_since(answers.last.unwrap_or(recorder.start)))
    };
    Ok(Report {
        target: args.target,
        workload,
        clients,
        connections,
        seconds: args.duration.as_secs_f64(),
        ops: latencies.len(),
        errors: recorder.shared.errors.load(Ordering::Relaxed),
        first_error,
        latencies,
        longest_pause,
        server_pids: pids.to_vec(),
        missing_pids,
        server_cpu,
        client_cpu,
    })
}
