//! `vtask chaos`: fault injection, a recorded history and its check
//! (`vtask-check`). The verb only turns flags into a `RunConfig`, prints the
//! report and decides the exit code; the work is in `vtask_check::runner`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use vtask_check::nemesis::FaultKind;
use vtask_check::runner::{self, RunConfig, Target};
use vtask_check::workload::WorkloadConfig;
use vtask_check::{CheckConfig, History};

use crate::{Failure, Format};

/// Exit code when the run or the re-check found an anomaly.
pub const ANOMALY_EXIT: u8 = 1;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
#[command(after_help = "\
Without --external, vtask chaos starts its own cluster of vtaskd processes on
loopback ports, with a fault-injecting TCP proxy on every Raft link, and
injects one fault every --interval:
  kill       SIGKILL the leader or a random node; restart it after a while
  restart    SIGTERM a node (clean shutdown) and start it again
  stop       SIGSTOP the leader or a random node; SIGCONT after a while
  partition  leader isolated, follower isolated, a bridge, or one way (drop or reset)
  slow       20-400 ms of delay on every link or on one node's links
  crash      SIGKILL every node at once, restart them all
At the end it heals everything, reads every task once more (linearizable),
fetches every task's change list and every node's state digest, and checks:
each task's calls are linearizable against the vtask-model rules, no
acknowledged write is missing, watch streams are ordered, gap- and
duplicate-free and end in the final state, and all digests agree.

Exit codes: 0 clean, 1 anomalies found (or the search was inconclusive, or
fewer operations than --min-operations), 2 bad usage, 3 the run could not be
completed (the cluster would not start).

Examples:
  vtask chaos --duration 10m --faults kill,stop,partition
  vtask chaos --duration 30s --resend 0.2 --history run.json -o json
  vtask chaos check run.json
  vtask --endpoints 10.0.0.1:7001,10.0.0.2:7001,10.0.0.3:7001 chaos --external --duration 5m")]
pub struct ChaosArgs {
    #[command(subcommand)]
    command: Option<ChaosCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, clap::Subcommand)]
enum ChaosCommand {
    /// Check a history saved with --history again; prints the same report.
    Check {
        /// The history JSON file.
        file: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// How long the workload runs, e.g. 3m or 10m.
    #[arg(long, value_parser = crate::parse_duration, default_value = "1m")]
    duration: Duration,
    /// Faults to inject, comma separated: kill, restart, stop, partition, slow, crash, member
    /// (remove a node, wipe its disk, add it back), transfer (leader transfer), or none.
    #[arg(long, value_delimiter = ',', default_value = "kill,stop,partition")]
    faults: Vec<String>,
    /// Time between the starts of two faults; each is healed before the next.
    #[arg(long, value_parser = crate::parse_duration, default_value = "10s")]
    interval: Duration,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Tasks in play at once; few tasks make calls collide.
    #[arg(long, default_value_t = 6)]
    tasks: usize,
    /// Calls on one task before the workload moves on to a new one.
    #[arg(long, default_value_t = 30)]
    calls_per_task: usize,
    /// Watchers following every task across reconnects.
    #[arg(long, default_value_t = 2)]
    watchers: usize,
    /// Probability (0..1) that an answered write is sent again with the same
    /// client id and seq, as a client does after losing a reply.
    #[arg(long, default_value_t = 0.05)]
    resend: f64,
    /// Random seed of the workload and the faults [default: from the clock].
    #[arg(long)]
    seed: Option<u64>,
    /// Save the recorded history here, for `vtask chaos check FILE`.
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// Run against the cluster at --endpoints instead of starting one:
    /// workload and checks only, no faults.
    #[arg(long)]
    external: bool,
    /// The vtaskd binary for the cluster it starts [default: next to this vtask binary].
    #[arg(long, value_name = "PATH")]
    vtaskd: Option<PathBuf>,
    /// Nodes of the cluster it starts.
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// Directory for the nodes' data and logs [default: a new one in the temp dir].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Keep the data and logs even after a clean run (always kept after an anomaly).
    #[arg(long)]
    keep: bool,
    /// How long the healed cluster gets at the end to elect a leader and
    /// answer a linearizable read before the run reports that it did not
    /// recover; also how long each later phase (final reads, watchers,
    /// change lists, digests) goes on without an answer before it gives up.
    #[arg(long, value_parser = crate::parse_duration, default_value = "60s")]
    recovery_timeout: Duration,
    /// Fail (exit 1) if the run records fewer operations than this: a run
    /// that did little proves little.
    #[arg(long, default_value_t = 0)]
    min_operations: usize,
}

pub async fn run(endpoints: &[String], format: Format, args: ChaosArgs) -> Result<u8, Failure> {
    if let Some(ChaosCommand::Check { file }) = args.command {
        return recheck(&file, format);
    }
    let args = args.run;
    let faults = parse_faults(&args.faults)?;
    if !(0.0..=1.0).contains(&args.resend) {
        return Err(Failure::Usage("--resend must be between 0 and 1".into()));
    }
    let target = if args.external {
        if !faults.is_empty() {
            return Err(Failure::Usage(
                "--external runs no faults: add --faults none".into(),
            ));
        }
        Target::External {
            endpoints: endpoints.to_vec(),
        }
    } else {
        Target::Local {
            vtaskd: match args.vtaskd {
                Some(path) => path,
                None => default_vtaskd()?,
            },
            nodes: args.nodes,
            dir: args.dir,
            keep: args.keep,
        }
    };
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let config = RunConfig {
        target,
        duration: args.duration,
        faults,
        interval: args.interval,
        workload: WorkloadConfig {
            clients: args.clients.max(1),
            tasks: args.tasks.max(1),
            calls_per_task: args.calls_per_task.max(1),
            resend: args.resend,
            watchers: args.watchers,
            seed,
        },
        check: CheckConfig::default(),
        recovery: args.recovery_timeout,
    };
    // The CLI's runtime has one thread; the runner carries the proxies of
    // every Raft link and all clients, so it gets a runtime of its own.
    let runner = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| runner::RunError::Cluster(format!("starting a runtime: {e}")))?;
        runtime.block_on(runner::run(config, |line| eprintln!("chaos: {line}")))
    });
    let (mut report, history) = runner
        .join()
        .map_err(|_| Failure::Unavailable("the chaos runner panicked".into()))?
        .map_err(|e| match e {
            runner::RunError::Config(m) => Failure::Usage(m),
            other => Failure::Unavailable(other.to_string()),
        })?;
    if let Some(path) = &args.history {
        let json = history
            .to_json()
            .map_err(|e| Failure::Unavailable(e.to_string()))?;
        std::fs::write(path, json)
            .map_err(|e| Failure::Unavailable(format!("writing {}: {e}", path.display())))?;
        report.history_file = Some(path.display().to_string());
    }
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report)
                .map_err(|e| Failure::Unavailable(e.to_string()))?
        ),
        Format::Table | Format::Key => print!("{report}"),
    }
    if report.operations < args.min_operations {
        eprintln!(
            "vtask: the run recorded {} operations, fewer than --min-operations {}",
            report.operations, args.min_operations
        );
        return Ok(ANOMALY_EXIT);
    }
    Ok(if report.is_clean() { 0 } else { ANOMALY_EXIT })
}

fn recheck(file: &Path, format: Format) -> Result<u8, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::Usage(format!("reading {}: {e}", file.display())))?;
    let history = History::from_json(&text).map_err(|e| Failure::Usage(e.to_string()))?;
    let report = vtask_check::check(&history, &CheckConfig::default())
        .map_err(|e| Failure::Usage(e.to_string()))?;
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report)
                .map_err(|e| Failure::Unavailable(e.to_string()))?
        ),
        Format::Table | Format::Key => print!("{report}"),
    }
    Ok(if report.is_clean() { 0 } else { ANOMALY_EXIT })
}

fn parse_faults(names: &[String]) -> Result<Vec<FaultKind>, Failure> {
    let mut faults = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        if name == "none" {
            continue;
        }
        let kind = name.parse::<FaultKind>().map_err(Failure::Usage)?;
        if !faults.contains(&kind) {
            faults.push(kind);
        }
    }
    Ok(faults)
}

/// `vtaskd` in the directory of the running `vtask`.
fn default_vtaskd() -> Result<PathBuf, Failure> {
    let exe = std::env::current_exe()
        .map_err(|e| Failure::Usage(format!("finding this binary: {e}; give --vtaskd")))?;
    Ok(exe.with_file_name("vtaskd"))
}
