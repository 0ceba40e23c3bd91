//! Group commit: the leader gathers concurrent requests into one Raft entry
//! and fans the replies back out.
//!
//! A request is proposed at once when nothing is in flight. While
//! `batch_inflight` entries await commit, new requests queue up, and the next
//! free slot takes up to `batch_max` of them as one entry. Under load the
//! batches grow by themselves; when idle nobody waits for a timer.

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{mpsc, oneshot, Semaphore};
use vtask_model::{Outcome, Timestamp};
use vtask_store::{Batch, NodeId, Request};

use crate::metrics::Metrics;
use crate::Raft;

/// Why a request was not (or not known to be) applied.
#[derive(Clone, Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ProposeError {
    /// This node is not the leader; `leader` is the one it knows of, if any.
    #[error("this node is not the leader")]
    NotLeader { leader: Option<(NodeId, String)> },
    /// The outcome is unknown: the entry may still commit (a retry with the
    /// same client id and sequence number is safe).
    #[error("{0}")]
    Unavailable(String),
    /// The leader's disk is below its reserve: it proposed nothing
    /// (RESOURCE_EXHAUSTED for the client; see `disk.rs`).
    #[error("{0}")]
    DiskLow(String),
}

/// From proposing an entry to its outcome: replication, commit and apply.
pub static COMMIT: vtask_store::latency::Histogram = vtask_store::latency::Histogram::new(
    "vtask_proposal_seconds",
    "From proposing one batch as a Raft entry to its outcome on this leader (replicated, committed and applied).",
);

struct Pending {
    request: Request,
    reply: oneshot::Sender<Result<Outcome, ProposeError>>,
}

/// The handle the API uses to propose requests on this node.
#[derive(Clone)]
pub struct Proposer {
    queue: mpsc::Sender<Pending>,
    timeout: Duration,
    /// Proposals made and not yet answered (queued or in flight).
    outstanding: Arc<AtomicUsize>,
}

impl Proposer {
    /// Starts the batching loop; it ends when every `Proposer` is dropped.
    pub fn start(
        raft: Raft,
        batch_max: usize,
        batch_inflight: usize,
        timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Proposer {
        let (queue, rx) = mpsc::channel(batch_max * batch_inflight * 4);
        tokio::spawn(run(raft, rx, batch_max, batch_inflight, metrics));
        Proposer {
            queue,
            timeout,
            outstanding: Arc::default(),
        }
    }

    /// How many proposals await their outcome; a leader transfer waits for
    /// none, so that the log stops growing before the target catches up.
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::SeqCst)
    }

    /// Proposes one request and waits for its outcome, for at most the
    /// proposal timeout.
    pub async fn propose(&self, request: Request) -> Result<Outcome, ProposeError> {
        self.outstanding.fetch_add(1, Ordering::SeqCst);
        let _answered = Answered(&self.outstanding);
        let (reply, rx) = oneshot::channel();
        self.queue
            .send(Pending { request, reply })
            .await
            .map_err(|_| ProposeError::Unavailable("the node is shutting down".into()))?;
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ProposeError::Unavailable("the node is shutting down".into())),
            Err(_) => Err(ProposeError::Unavailable(format!(
                "no quorum answered within {} ms; the request may still be applied, retry it with the same client id and seq",
                self.timeout.as_millis()
            ))),
        }
    }
}

/// Counts a proposal as answered when its caller stops waiting, however.
struct Answered<'a>(&'a AtomicUsize);

impl Drop for Answered<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn run(
    raft: Raft,
    mut rx: mpsc::Receiver<Pending>,
    batch_max: usize,
    batch_inflight: usize,
    metrics: Arc<Metrics>,
) {
    let slots = Arc::new(Semaphore::new(batch_inflight));
    let clock = Arc::new(LeaderClock::default());
    while let Some(first) = rx.recv().await {
        // Wait for a free slot first, so that requests pile up meanwhile.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let mut pending = vec![first];
        while pending.len() < batch_max {
            match rx.try_recv() {
                Ok(next) => pending.push(next),
                Err(_) => break,
            }
        }
        let raft = raft.clone();
        let clock = clock.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _slot = slot;
            metrics.batch(pending.len());
            let (requests, replies): (Vec<_>, Vec<_>) =
                pending.into_iter().map(|p| (p.request, p.reply)).unzip();
            let batch = Batch {
                time: clock.now(),
                requests: requests.into(),
            };
            let started = std::time::Instant::now();
            let written = raft.client_write(batch).await;
            COMMIT.record(started.elapsed());
            match written {
                Ok(response) => {
                    let mut outcomes = response.data.outcomes.into_iter();
                    for reply in replies {
                        let outcome = outcomes.next().ok_or_else(|| {
                            ProposeError::Unavailable(
                                "the state machine returned too few replies".into(),
                            )
                        });
                        let _ = reply.send(outcome);
                    }
                }
                Err(error) => {
                    let error = propose_error(error);
                    for reply in replies {
                        let _ = reply.send(Err(error.clone()));
                    }
                }
            }
        });
    }
}

fn propose_error(
    error: RaftError<NodeId, ClientWriteError<NodeId, openraft::BasicNode>>,
) -> ProposeError {
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(forward)) => {
            ProposeError::NotLeader {
                leader: forward.leader_id.zip(forward.leader_node.map(|n| n.addr)),
            }
        }
        RaftError::APIError(other) => ProposeError::Unavailable(other.to_string()),
        RaftError::Fatal(fatal) => ProposeError::Unavailable(format!("raft stopped: {fatal}")),
    }
}

/// The leader's wall clock for entries, never going backwards within this
/// process (apply also keeps each task's times in order across leaders).
#[derive(Default)]
struct LeaderClock {
    last: AtomicI64,
}

impl LeaderClock {
    fn now(&self) -> Timestamp {
        let wall = wall_clock().as_micros();
        let previous = self.last.fetch_max(wall, Ordering::SeqCst);
        Timestamp::from_micros(wall.max(previous))
    }
}

/// A shift of this node's wall clock in microseconds, set once at start
/// (`--clock-offset-ms`, testing only): it lets tests and chaos runs rehearse
/// clock skew and the passing of retention periods.
static CLOCK_OFFSET_MICROS: AtomicI64 = AtomicI64::new(0);

pub fn set_clock_offset(millis: i64) {
    CLOCK_OFFSET_MICROS.store(millis.saturating_mul(1000), Ordering::Relaxed);
}

/// This node's wall clock. Only the proposer (stamping entries) and reads
/// that need "now" call it; apply never does.
pub fn wall_clock() -> Timestamp {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
    Timestamp::from_micros(micros.saturating_add(CLOCK_OFFSET_MICROS.load(Ordering::Relaxed)))
}
