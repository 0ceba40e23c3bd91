//! `vtask chaos`: run a workload against a cluster while injecting faults,
//! record the history, and check it.
//!
//! Against a cluster it starts itself ([`Target::Local`]) the runner owns
//! the `vtaskd` processes and a proxy on every Raft link, so it can kill,
//! pause, restart and partition; against `--endpoints` of someone else's
//! cluster ([`Target::External`]) it only runs the workload and the checks.
//!
//! The end of a run, in this order: the clients stop and their calls
//! complete; every fault is healed; one linearizable `GetTask` per task
//! (the final reads, invoked after every other call completed); the
//! watchers catch up with the final revision; each task's change list
//! (`GetTaskHistory`); every node's applied index and state digest, which
//! must agree; then [`crate::check`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use vtask_model::TaskKey;
use vtask_proto::v1;
use vtask_proto::v1::task_manager_client::TaskManagerClient;

use crate::cluster::{node_status, LocalCluster};
use crate::history::{Call, ChangeKind, History, OpOutcome, RecordedChange, Returned, WatchEvent};
use crate::nemesis::{count_by_kind, FaultKind, FaultRecord, Nemesis};
use crate::workload::{self, Client, Shared, WatchEnd, Watcher, WorkloadConfig};
use crate::{check, CheckConfig, HistoryError, Report};

/// Why a run could not be completed (as opposed to completed with anomalies).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cluster: {0}")]
    Cluster(String),
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    History(#[from] HistoryError),
}

/// Which cluster to run against.
#[derive(Clone, Debug)]
pub enum Target {
    /// Start `nodes` vtaskd processes under `dir` (a fresh directory in the
    /// system temp dir when `None`), kept afterwards if `keep` or if the run
    /// found anomalies.
    Local {
        vtaskd: PathBuf,
        nodes: u64,
        dir: Option<PathBuf>,
        keep: bool,
    },
    /// A running cluster: workload and checks only.
    External { endpoints: Vec<String> },
}

#[derive(Clone, Debug)]
pub struct RunConfig {
    pub target: Target,
    pub duration: Duration,
    pub faults: Vec<FaultKind>,
    pub interval: Duration,
    pub workload: WorkloadConfig,
    pub check: CheckConfig,
    /// How long the healed cluster gets to elect a leader and answer a
    /// linearizable read before the run reports that it did not recover; and
    /// how long each later phase (final reads, watchers catching up, change
    /// lists, digests) goes on without an answer before it gives up.
    pub recovery: Duration,
}

/// What a run did and found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChaosReport {
    /// "local: 3 nodes in DIR" or "external: ENDPOINTS".
    pub cluster: String,
    pub seed: u64,
    pub duration_secs: f64,
    /// Every recorded call, the final reads included.
    pub operations: usize,
    pub faults: Vec<FaultRecord>,
    pub faults_by_kind: BTreeMap<String, usize>,
    /// The longest stretch in which no mutation got an answer, while the
    /// clients kept sending them.
    pub longest_write_unavailability_secs: f64,
    /// Where that stretch began, in seconds since the start of the run.
    pub unavailable_from_secs: f64,
    pub nodes: Vec<NodeState>,
    /// Whole-cluster violations outside the histories: digests that differ
    /// at the same applied index, tasks with no final read, nodes that died
    /// on their own.
    pub cluster_anomalies: Vec<String>,
    pub check: Report,
    /// Where the history was saved, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_file: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeState {
    pub endpoint: String,
    pub applied_index: u64,
    pub state_digest: String,
}

impl ChaosReport {
    pub fn anomalies(&self) -> usize {
        self.check.anomalies.len() + self.cluster_anomalies.len()
    }

    pub fn is_clean(&self) -> bool {
        self.cluster_anomalies.is_empty() && self.check.is_clean()
    }
}

impl fmt::Display for ChaosReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "cluster: {}", self.cluster)?;
        writeln!(
            f,
            "ran {:.0}s, seed {}, {} operations",
            self.duration_secs, self.seed, self.operations
        )?;
        let faults: Vec<String> = self
            .faults_by_kind
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        writeln!(
            f,
            "faults injected: {}{}",
            self.faults.len(),
            if faults.is_empty() {
                String::new()
            } else {
                format!(" ({})", faults.join(", "))
            }
        )?;
        writeln!(
            f,
            "longest write unavailability: {:.1}s (from {:.1}s)",
            self.longest_write_unavailability_secs, self.unavailable_from_secs
        )?;
        for node in &self.nodes {
            writeln!(
                f,
                "node {}: applied {} digest {}",
                node.endpoint, node.applied_index, node.state_digest
            )?;
        }
        writeln!(f)?;
        write!(f, "{}", self.check)?;
        for anomaly in &self.cluster_anomalies {
            writeln!(f, "cluster anomaly: {anomaly}")?;
        }
        writeln!(
            f,
            "verdict: {}",
            if self.is_clean() {
                "clean".to_string()
            } else {
                format!("{} anomalies", self.anomalies().max(1))
            }
        )?;
        if let Some(file) = &self.history_file {
            writeln!(f, "history saved to {file}")?;
        }
        Ok(())
    }
}

/// Runs the whole thing; `progress` gets a line now and then.
pub async fn run(
    config: RunConfig,
    progress: impl Fn(&str) + Send + Sync + 'static,
) -> Result<(ChaosReport, History), RunError> {
    let progress = Arc::new(progress);
    let origin = Instant::now();
    let (cluster, endpoints, description, dir, keep) = match &config.target {
        Target::Local {
            vtaskd,
            nodes,
            dir,
            keep,
        } => {
            let dir = dir.clone().unwrap_or_else(fresh_dir);
            progress(&format!(
                "starting {nodes} vtaskd nodes in {} ...",
                dir.display()
            ));
            let cluster = LocalCluster::start(vtaskd, &dir, *nodes).await?;
            let endpoints = cluster.endpoints();
            let description = format!("local, {nodes} nodes in {}", dir.display());
            (
                Some(Arc::new(tokio::sync::Mutex::new(cluster))),
                endpoints,
                description,
                Some(dir),
                *keep,
            )
        }
        Target::External { endpoints } => {
            if !config.faults.is_empty() {
                return Err(RunError::Config(
                    "faults need a cluster the runner starts itself; against --endpoints use --faults none".into(),
                ));
            }
            (
                None,
                endpoints.clone(),
                format!("external: {}", endpoints.join(",")),
                None,
                true,
            )
        }
    };
    let result = drive(&config, cluster.clone(), &endpoints, origin, progress).await;
    let mut report_and_history = result?;
    report_and_history.0.cluster = description;
    if let Some(cluster) = cluster {
        let mut cluster = cluster.lock().await;
        cluster.shutdown().await;
    }
    if let Some(dir) = dir {
        if report_and_history.0.is_clean() && !keep {
            let _ = std::fs::remove_dir_all(&dir);
        } else {
            report_and_history.0.cluster = format!(
                "{} (kept: data and node logs)",
                report_and_history.0.cluster
            );
        }
    }
    Ok(report_and_history)
}

fn fresh_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::env::temp_dir().join(format!("vtask-chaos-{}-{nanos:x}", std::process::id()))
}

async fn drive(
    config: &RunConfig,
    cluster: Option<Arc<tokio::sync::Mutex<LocalCluster>>>,
    endpoints: &[String],
    origin: Instant,
    progress: Arc<impl Fn(&str) + Send + Sync + 'static>,
) -> Result<(ChaosReport, History), RunError> {
    let shared = Arc::new(Shared::new(endpoints, &config.workload, origin));
    let mut clients = JoinSet::new();
    for id in 0..config.workload.clients {
        clients.spawn(Client::new(id as u32, shared.clone(), &config.workload).run());
    }
    let (end_tx, end_rx) = watch::channel(None);
    let mut watchers = JoinSet::new();
    let first_watcher = (config.workload.clients + 1) as u32;
    for i in 0..config.workload.watchers {
        let watcher = Watcher {
            id: first_watcher + i as u32,
            shared: shared.clone(),
            rng: StdRng::seed_from_u64(
                config
                    .workload
                    .seed
                    .wrapping_add(1_000_003 * (i as u64 + 1)),
            ),
            end: end_rx.clone(),
        };
        watchers.spawn(watcher.run());
    }
    let started = Instant::now();
    let until = started + config.duration;
    let ticker = {
        let progress = progress.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            tick.tick().await;
            loop {
                tick.tick().await;
                progress(&format!(
                    "{:.0}s of {:.0}s",
                    started.elapsed().as_secs_f64(),
                    (until - started).as_secs_f64()
                ));
            }
        })
    };
    let faults = match &cluster {
        Some(cluster) if !config.faults.is_empty() => {
            let mut nemesis = Nemesis {
                faults: config.faults.clone(),
                interval: config.interval,
                rng: StdRng::seed_from_u64(config.workload.seed ^ 0x5eed),
                origin,
            };
            nemesis.run(cluster, until).await?
        }
        _ => {
            tokio::time::sleep_until(until).await;
            Vec::new()
        }
    };
    ticker.abort();
    progress("workload done; letting calls complete");
    shared.stop();
    while clients.join_next().await.is_some() {}
    let mut cluster_anomalies = Vec::new();
    // A healed cluster that elects no leader, or whose leader answers no
    // linearizable read, has lost its availability for good: that is itself
    // the finding, and the per-task reads would only time out one after
    // another.
    let mut recovered = true;
    if let Some(cluster) = &cluster {
        let mut cluster = cluster.lock().await;
        cluster.heal_all().await?;
        // One deadline for the leader and the read: --recovery-timeout bounds
        // the whole recovery.
        let deadline = Instant::now() + config.recovery;
        let recovery = match cluster.wait_for_leader(config.recovery).await {
            Ok(leader) => wait_for_reads(&shared, endpoints, deadline)
                .await
                .map_err(|e| format!("n{leader} leads, but {e}")),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = recovery {
            cluster_anomalies.push(format!("the healed cluster did not recover: {e}"));
            recovered = false;
        }
    }

    let (final_revision, watch_deadline) = if recovered {
        progress("final reads");
        let keys = shared.keys();
        let final_client = config.workload.clients as u32;
        let (final_revision, unread) =
            final_reads(&shared, final_client, &keys, config.recovery).await;
        for key in unread {
            cluster_anomalies.push(format!(
                "{key}: no node answered its final linearizable read (given up after {:?} without any answer)",
                config.recovery
            ));
        }
        (final_revision, config.recovery)
    } else {
        (u64::MAX, Duration::ZERO)
    };

    progress("watchers catching up");
    end_tx.send_replace(Some(WatchEnd {
        revision: final_revision,
        deadline: Instant::now() + watch_deadline,
    }));
    let mut watches = Vec::new();
    while let Some(stream) = watchers.join_next().await {
        if let Ok(stream) = stream {
            watches.push(stream);
        }
    }
    watches.sort_by_key(|w| w.watcher);

    let operations = shared.take_operations();
    let mut seen: BTreeSet<TaskKey> = BTreeSet::new();
    for op in &operations {
        match (&op.call, &op.outcome) {
            (
                _,
                OpOutcome::Ok {
                    value: Returned::Task(info),
                },
            ) => {
                seen.insert(info.key);
            }
            (call, _) => {
                if let Some(key) = call.task().and_then(TaskKey::parse) {
                    seen.insert(key);
                }
            }
        }
    }
    for stream in &watches {
        for event in &stream.events {
            if let WatchEvent::Change { info, .. } | WatchEvent::Current { info, .. } = event {
                seen.insert(info.key);
            }
        }
    }
    let changes = if recovered {
        progress("change lists");
        let (changes, missing) = change_lists(&shared, &seen, config.recovery).await;
        for key in missing {
            cluster_anomalies.push(format!(
                "{key}: no node answered GetTaskHistory (given up after {:?} without any answer)",
                config.recovery
            ));
        }
        changes
    } else {
        // Without change lists every watched task would count as unknown,
        // burying the one finding that matters: the cluster did not recover.
        watches.clear();
        BTreeMap::new()
    };

    progress("comparing state digests");
    let settle = if recovered {
        config.recovery
    } else {
        Duration::from_secs(5)
    };
    let (nodes, digest_problem) = digests(endpoints, settle).await;
    cluster_anomalies.extend(digest_problem);
    if let Some(cluster) = &cluster {
        let mut cluster = cluster.lock().await;
        cluster.restart_crashed()?;
        for (id, status) in &cluster.unexpected_exits {
            cluster_anomalies.push(format!(
                "node n{id} exited on its own ({status}); see its log in {}",
                cluster.log_dir().display()
            ));
        }
    }

    let (longest, from) = longest_unavailability(&operations, origin, started);
    let history = History {
        operations,
        watches,
        changes,
    };
    progress(&format!(
        "checking {} operations and {} watch streams",
        history.operations.len(),
        history.watches.len()
    ));
    let check_config = config.check;
    let checked = history.clone();
    let report = tokio::task::spawn_blocking(move || check(&checked, &check_config))
        .await
        .map_err(|e| RunError::Config(format!("the checker panicked: {e}")))??;
    let chaos = ChaosReport {
        cluster: String::new(),
        seed: config.workload.seed,
        duration_secs: started.elapsed().as_secs_f64(),
        operations: history.operations.len(),
        faults_by_kind: count_by_kind(&faults),
        faults,
        longest_write_unavailability_secs: longest,
        unavailable_from_secs: from,
        nodes,
        cluster_anomalies,
        check: report,
        history_file: None,
    };
    Ok((chaos, history))
}

/// Waits until some node answers a linearizable read, until `deadline`. A
/// leader alone is not recovery: a leader whose read index is past what it
/// can apply (its log lost entries it had acknowledged) answers no read,
/// and every final read and change list would time out, one after another.
async fn wait_for_reads(
    shared: &Shared,
    endpoints: &[String],
    deadline: Instant,
) -> Result<(), String> {
    // Any well-formed key will do: the read barrier comes before the lookup.
    let key = shared
        .keys()
        .into_iter()
        .next()
        .unwrap_or_else(|| "task-1".to_string());
    let mut node = 0;
    loop {
        let timeout = deadline
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(200), workload::ATTEMPT_TIMEOUT);
        let failure = match workload::answers_reads(shared, &key, node, timeout).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            let endpoint = endpoints
                .get(node % endpoints.len().max(1))
                .map_or("?", String::as_str);
            return Err(format!(
                "no node answered a linearizable read in time (last: {endpoint}: {failure})"
            ));
        }
        node += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Calls `attempt(item, node)` for every item, 16 items in flight at a
/// time, each retried on the next node until answered. The phase gives up
/// once `patience` passes without an answer to any item: the items still
/// unanswered then, tried or not, come back in the second list. A deadline
/// per item would not bound the phase: a cluster that answers nothing would
/// cost it once per 16 items, half an hour for a few hundred tasks.
async fn answer_all<K, T, F, Fut>(
    items: Vec<K>,
    patience: Duration,
    attempt: F,
) -> (Vec<(K, T)>, Vec<K>)
where
    K: Send + 'static,
    T: Send + 'static,
    F: Fn(&K, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Option<T>> + Send + 'static,
{
    const IN_FLIGHT: usize = 16;
    let last_answer = Arc::new(std::sync::Mutex::new(Instant::now()));
    let exhausted = {
        let last_answer = last_answer.clone();
        move || {
            last_answer
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .elapsed()
                >= patience
        }
    };
    let mut answered = Vec::new();
    let mut unanswered = Vec::new();
    let mut pending = items.into_iter().enumerate();
    let mut calls = JoinSet::new();
    loop {
        while calls.len() < IN_FLIGHT {
            let Some((first_node, item)) = pending.next() else {
                break;
            };
            let attempt = attempt.clone();
            let exhausted = exhausted.clone();
            let last_answer = last_answer.clone();
            calls.spawn(async move {
                let mut node = first_node;
                loop {
                    if exhausted() {
                        return (item, None);
                    }
                    if let Some(answer) = attempt(&item, node).await {
                        *last_answer.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
                        return (item, Some(answer));
                    }
                    node += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
        }
        match calls.join_next().await {
            Some(Ok((item, Some(answer)))) => answered.push((item, answer)),
            Some(Ok((item, None))) => unanswered.push(item),
            Some(Err(_)) => {}
            None => break,
        }
    }
    (answered, unanswered)
}

/// One linearizable GetTask per task, each retried on other nodes until
/// answered (every attempt is recorded) or until no node answered any for
/// `patience`. Returns the newest revision the answers reflected and the
/// keys no node answered for.
async fn final_reads(
    shared: &Arc<Shared>,
    client: u32,
    keys: &[String],
    patience: Duration,
) -> (u64, Vec<String>) {
    let shared = shared.clone();
    let (answered, unread) = answer_all(keys.to_vec(), patience, move |key, node| {
        let shared = shared.clone();
        let key = key.clone();
        async move {
            workload::read(&shared, client, &key, node)
                .await
                .map(|(_, revision)| revision)
        }
    })
    .await;
    let revision = answered.iter().map(|(_, r)| *r).max().unwrap_or(0);
    (revision, unread)
}

/// `GetTaskHistory` of every task, retried on every node until answered or
/// until no node answered any for `patience`.
async fn change_lists(
    shared: &Arc<Shared>,
    keys: &BTreeSet<TaskKey>,
    patience: Duration,
) -> (BTreeMap<TaskKey, Vec<RecordedChange>>, Vec<String>) {
    let shared = shared.clone();
    let keys: Vec<TaskKey> = keys.iter().copied().collect();
    let (answered, missing) = answer_all(keys, patience, move |&key, node| {
        let channel = shared.channel(node);
        async move {
            let mut request = tonic::Request::new(v1::GetTaskHistoryRequest {
                key: key.to_string(),
                consistency: v1::ReadConsistency::Linearizable as i32,
            });
            request.set_timeout(workload::ATTEMPT_TIMEOUT);
            let reply = TaskManagerClient::new(channel?)
                .get_task_history(request)
                .await
                .ok()?;
            Some(recorded(reply.into_inner().changes))
        }
    })
    .await;
    (
        answered.into_iter().collect(),
        missing.iter().map(TaskKey::to_string).collect(),
    )
}

fn recorded(changes: Vec<v1::TaskChange>) -> Vec<RecordedChange> {
    changes
        .into_iter()
        .filter_map(|c| {
            let change = match v1::ChangeKind::try_from(c.kind).ok()? {
                v1::ChangeKind::Created => ChangeKind::Created,
                v1::ChangeKind::Updated => ChangeKind::Updated,
                v1::ChangeKind::Removed => ChangeKind::Removed,
                _ => return None,
            };
            let info = vtask_model::TaskInfo::try_from(c.info?).ok()?;
            Some(RecordedChange {
                revision: c.revision,
                change,
                info,
            })
        })
        .collect()
}

/// Every node's applied index and digest once they agree, or the
/// disagreement after `settle`.
async fn digests(endpoints: &[String], settle: Duration) -> (Vec<NodeState>, Option<String>) {
    let deadline = Instant::now() + settle;
    loop {
        let mut nodes = Vec::new();
        for endpoint in endpoints {
            let state = match node_status(endpoint).await {
                Ok(status) => NodeState {
                    endpoint: endpoint.clone(),
                    applied_index: status.applied_index,
                    state_digest: status.state_digest,
                },
                Err(e) => NodeState {
                    endpoint: endpoint.clone(),
                    applied_index: 0,
                    state_digest: format!("unreachable: {e}"),
                },
            };
            nodes.push(state);
        }
        let agree = nodes.windows(2).all(|w| match w {
            [a, b] => a.applied_index == b.applied_index && a.state_digest == b.state_digest,
            _ => true,
        });
        if agree {
            return (nodes, None);
        }
        if Instant::now() >= deadline {
            // Nodes at the same index with different digests diverged;
            // otherwise some node never caught up.
            let mut by_index: BTreeMap<u64, BTreeSet<&str>> = BTreeMap::new();
            for n in &nodes {
                by_index
                    .entry(n.applied_index)
                    .or_default()
                    .insert(n.state_digest.as_str());
            }
            let diverged = by_index.values().any(|d| d.len() > 1);
            let text = nodes
                .iter()
                .map(|n| {
                    format!(
                        "{} applied {} digest {}",
                        n.endpoint, n.applied_index, n.state_digest
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            let what = if diverged {
                "state digests differ at the same applied index"
            } else {
                "nodes did not converge to one applied index and digest"
            };
            return (nodes.clone(), Some(format!("{what}: {text}")));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The longest gap between answers to mutations during the workload, and
/// where it began, in seconds since `origin`.
fn longest_unavailability(
    operations: &[crate::Operation],
    origin: Instant,
    started: Instant,
) -> (f64, f64) {
    let mut answered: Vec<u64> = operations
        .iter()
        .filter(|op| matches!(op.call, Call::Mutation { .. }))
        .filter(|op| matches!(op.outcome, OpOutcome::Ok { .. }))
        .map(|op| op.complete)
        .collect();
    answered.sort_unstable();
    let mut last = started.duration_since(origin).as_nanos() as u64;
    let (mut longest, mut from) = (0u64, last);
    for t in answered {
        if t.saturating_sub(last) > longest {
            longest = t - last;
            from = last;
        }
        last = last.max(t);
    }
    (longest as f64 / 1e9, from as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Operation;
    use vtask_model::{Caller, Command, Privileges};

    fn op(complete_ms: u64, outcome: OpOutcome) -> Operation {
        Operation {
            client: 0,
            call: Call::Mutation {
                caller: Caller::user("chaos", Privileges::ALL),
                command: Command::CancelTask {
                    task: "task-1".into(),
                },
            },
            invoke: 0,
            complete: complete_ms * 1_000_000,
            outcome,
        }
    }

    fn assert_within(start: Instant, limit: Duration) {
        let took = start.elapsed();
        assert!(took < limit, "took {took:?}, more than {limit:?}");
    }

    /// An address nothing listens on: every call is refused at once.
    fn dead_endpoint() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    }

    fn shared(endpoints: &[String]) -> Arc<Shared> {
        let config = WorkloadConfig {
            clients: 1,
            tasks: 1,
            calls_per_task: 1,
            resend: 0.0,
            watchers: 0,
            seed: 0,
        };
        Arc::new(Shared::new(endpoints, &config, Instant::now()))
    }

    #[tokio::test]
    async fn an_end_phase_gives_up_once_nothing_answers_for_its_patience() {
        // With a deadline per 16 items, 100 silent items took 7 deadlines.
        let items: Vec<u32> = (0..100).collect();
        let start = Instant::now();
        let (answered, unanswered) = answer_all(items, Duration::from_millis(300), |_, _| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            None::<()>
        })
        .await;
        assert!(answered.is_empty());
        assert_eq!(unanswered.len(), 100);
        assert_within(start, Duration::from_secs(2));
    }

    #[tokio::test]
    async fn an_end_phase_goes_on_while_answers_come() {
        // Item 0 is never answered; the others take longer together than the
        // patience, but answers keep coming, so every one of them is asked.
        let items: Vec<u32> = (0..100).collect();
        let (answered, unanswered) =
            answer_all(items, Duration::from_millis(300), |&item, _| async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                (item != 0).then_some(item)
            })
            .await;
        assert_eq!(answered.len(), 99);
        assert_eq!(unanswered, vec![0]);
    }

    #[tokio::test]
    async fn final_reads_and_change_lists_are_bounded_on_a_dead_cluster() {
        let endpoints = vec![dead_endpoint(), dead_endpoint(), dead_endpoint()];
        let shared = shared(&endpoints);
        let keys: Vec<String> = (1..=40).map(|n| format!("task-{n}")).collect();
        let tasks: BTreeSet<TaskKey> = keys.iter().filter_map(|k| TaskKey::parse(k)).collect();
        let patience = Duration::from_millis(500);
        let start = Instant::now();
        let (revision, unread) = final_reads(&shared, 0, &keys, patience).await;
        assert_eq!((revision, unread.len()), (0, 40));
        let (changes, missing) = change_lists(&shared, &tasks, patience).await;
        assert!(changes.is_empty());
        assert_eq!(missing.len(), 40);
        assert_within(start, Duration::from_secs(4));
    }

    #[tokio::test]
    async fn a_cluster_that_answers_no_read_has_not_recovered() {
        // A node that accepts connections and never answers, like a leader
        // whose read index is past what it can apply; and a dead one.
        let hung = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoints = vec![hung.local_addr().unwrap().to_string(), dead_endpoint()];
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = hung.accept().await {
                held.push(socket);
            }
        });
        let shared = shared(&endpoints);
        let start = Instant::now();
        let waited = tokio::time::timeout(
            Duration::from_secs(10),
            wait_for_reads(&shared, &endpoints, start + Duration::from_millis(800)),
        )
        .await
        .expect("the recovery wait outlived its deadline");
        assert!(waited.is_err(), "{waited:?}");
        assert_within(start, Duration::from_secs(3));
    }

    #[test]
    fn unavailability_is_the_longest_gap_between_answers() {
        let origin = Instant::now();
        let fault = OpOutcome::Ok {
            value: Returned::Fault(vtask_model::MethodFault::new(
                vtask_model::FaultKind::InvalidState,
            )),
        };
        let ops = vec![
            op(100, fault.clone()),
            op(300, OpOutcome::Unknown),
            op(2_600, fault.clone()),
            op(2_700, fault),
        ];
        let (longest, from) = longest_unavailability(&ops, origin, origin);
        assert!((longest - 2.5).abs() < 1e-9, "{longest}");
        assert!((from - 0.1).abs() < 1e-9, "{from}");
    }
}
