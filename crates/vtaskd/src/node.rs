//! One node: the RocksDB store, the openraft instance, the proposer, and the
//! two things every API call needs: submitting a mutation from any node, and
//! a linearizable read barrier from any node.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use openraft::error::{InitializeError, RaftError};
use openraft::{BasicNode, ServerState};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use vtask_model::Outcome;
use vtask_proto::raft::v1::raft_service_client::RaftServiceClient;
use vtask_proto::raft::v1::ForwardRequest;
use vtask_raft::codec::{decode, encode};
use vtask_raft::Network;
use vtask_store::{ClientRef, NodeId, ReadView, Request};

use crate::config::Config;
use crate::disk::Disk;
use crate::membership::{MembershipChange, MembershipDone, MembershipError};
use crate::metrics::{Metrics, RaftGauges};
use crate::proposer::{ProposeError, Proposer};
use crate::Raft;

/// How long a write or a read barrier may take before the caller gets
/// `UNAVAILABLE` (with two of three nodes down, for example).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between attempts while no leader is known.
const NO_LEADER_BACKOFF: Duration = Duration::from_millis(50);

/// A call one node makes on another (internal `Forward` RPC): mostly a
/// follower on its leader, but also a leader on a transfer target or a
/// removed member, and a joining node on any member.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Forwarded {
    /// Propose this request through the leader's proposer.
    Propose(Request),
    /// Confirm leadership with a quorum and return the index a linearizable
    /// read must wait for (ReadIndex).
    ReadIndex,
    /// Change the membership (on the leader, or forwarded on to it).
    Membership(MembershipChange),
    /// Hand the leadership to this node (any caught-up voter if `None`).
    Transfer(Option<NodeId>),
    /// To a transfer target, from its leader: campaign now.
    Campaign,
    /// To a removed member, from the leader that removed it.
    Removed,
}

/// The answer to a [`Forwarded`] call.
#[derive(Debug, Serialize, Deserialize)]
pub enum ForwardedReply {
    Outcome(Outcome),
    ReadIndex(u64),
    Membership(Result<MembershipDone, MembershipError>),
    Done,
}

/// Why a call could not be served; becomes a gRPC status at the API edge.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("{0}")]
    Unavailable(String),
    /// This node's disk, or the leader's, is below its reserve
    /// ([`crate::disk`]): the write was not proposed.
    #[error("{0}")]
    Exhausted(String),
    #[error("{0}")]
    Internal(String),
}

#[derive(Clone)]
pub struct Node {
    pub id: NodeId,
    pub raft: Raft,
    pub read: ReadView,
    pub proposer: Proposer,
    reads: ReadIndexBatcher,
    pub network: Network,
    pub members: Arc<BTreeMap<NodeId, String>>,
    pub metrics: Arc<Metrics>,
    pub settings: crate::config::TaskSettings,
    /// The free space of the data directory against the reserve.
    pub disk: Arc<Disk>,
    /// The cluster this node belongs to (`raft_meta/cluster_id`): sent with
    /// every Raft call and compared on every one received.
    pub cluster_id: vtask_raft::SharedClusterId,
    /// Serializes adopting a cluster id at first contact.
    adopting: Arc<tokio::sync::Mutex<()>>,
    /// One membership change or leader transfer at a time (on the leader).
    pub(crate) membership_lock: Arc<tokio::sync::Mutex<()>>,
    /// True while this leader hands its leadership over: new proposals wait.
    pub(crate) handing_over: Arc<tokio::sync::watch::Sender<bool>>,
    /// Set once this node has been removed from the cluster: it stops.
    pub(crate) removed: Arc<tokio::sync::watch::Sender<bool>>,
    pub(crate) raft_config: Arc<openraft::Config>,
    /// When this node last became leader, if it is one.
    pub(crate) leader_since: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    /// `--join`: the members a new node asks to add it.
    pub(crate) join: Arc<Vec<String>>,
}

impl Node {
    /// Opens the store, starts Raft and, on the lowest-numbered member of a
    /// cluster that was never initialized, initializes it (exactly once:
    /// no other node ever does).
    pub async fn start(config: &Config) -> anyhow::Result<Node> {
        let (log, sm) = vtask_store::open(&config.data_dir).with_context(|| {
            let free = crate::disk::free_bytes(&config.data_dir)
                .map_or_else(|e| format!("unknown ({e})"), crate::disk::human);
            format!(
                "opening the store in {} ({free} free there)",
                config.data_dir.display()
            )
        })?;
        let disk = Disk::new(config.node_id, &config.data_dir, config.disk_reserve);
        disk.start(config.disk_check_interval);
        let read = sm.read_view();
        let cluster_id: vtask_raft::SharedClusterId = Arc::new(std::sync::RwLock::new(
            read.cluster_id().context("reading the cluster id")?,
        ));
        let election_ms = config.election_timeout.as_millis() as u64;
        let raft_config = openraft::Config {
            cluster_name: "vtask".into(),
            heartbeat_interval: config.heartbeat.as_millis() as u64,
            election_timeout_min: election_ms,
            election_timeout_max: election_ms * 2,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(config.snapshot_entries),
            max_in_snapshot_log_to_keep: config.keep_entries,
            snapshot_max_chunk_size: vtask_raft::SNAPSHOT_CHUNK_BYTES,
            install_snapshot_timeout: 10_000,
            max_payload_entries: 256,
            ..Default::default()
        }
        .validate()
        .context("Raft settings")?;
        let network = Network::with_routes(
            config
                .peer_routes
                .iter()
                .map(|(id, addr)| (*id, addr.clone()))
                .collect(),
        )
        .with_tls(crate::tls::peer_config(config.tls.as_ref())?)
        .with_cluster_id(cluster_id.clone());
        let raft_config = Arc::new(raft_config);
        let raft = Raft::new(
            config.node_id,
            raft_config.clone(),
            network.clone(),
            log,
            sm,
        )
        .await
        .context("starting Raft")?;
        let metrics = Arc::new(Metrics::default());
        let proposer = Proposer::start(
            raft.clone(),
            config.batch_max,
            config.batch_inflight,
            REQUEST_TIMEOUT,
            metrics.clone(),
        );
        let reads = ReadIndexBatcher::start(raft.clone());
        let node = Node {
            id: config.node_id,
            raft,
            read,
            proposer,
            reads,
            network,
            members: Arc::new(config.initial_cluster.clone()),
            metrics,
            settings: config.tasks,
            disk,
            cluster_id,
            adopting: Arc::default(),
            membership_lock: Arc::default(),
            handing_over: Arc::new(tokio::sync::watch::channel(false).0),
            removed: Arc::new(tokio::sync::watch::channel(false).0),
            raft_config,
            leader_since: Arc::default(),
            join: Arc::new(config.join.clone()),
        };
        node.bootstrap().await?;
        node.watch_removal();
        node.watch_leadership();
        Ok(node)
    }

    async fn bootstrap(&self) -> anyhow::Result<()> {
        if !self.join.is_empty() {
            if self
                .raft
                .is_initialized()
                .await
                .context("reading Raft state")?
            {
                tracing::info!("already a member (--join is only read by a new node); rejoining");
            } else {
                self.ask_to_join();
            }
            return Ok(());
        }
        let first = self.members.keys().next().copied();
        if first != Some(self.id) {
            return Ok(());
        }
        if self
            .raft
            .is_initialized()
            .await
            .context("reading Raft state")?
        {
            tracing::info!("cluster already initialized; rejoining");
            return Ok(());
        }
        // An empty store on the first member is a new cluster only if no
        // peer has seen one. A member that lost its data directory must wait
        // for the leader to replicate to it: initializing again would start a
        // second history that a lagging peer could follow, losing committed
        // entries (tests/cluster.rs: a_member_that_lost_its_data_rejoins).
        if let Some((peer, term)) = self.initialized_peer().await {
            tracing::warn!(
                peer,
                term,
                "this node has no Raft state but the cluster exists; waiting for the leader to replicate to it"
            );
            return Ok(());
        }
        // A new cluster gets a new id before its first entry, so every call
        // its members make carries it (kept if a crash came in between).
        if self.cluster_id().is_none() {
            let id = new_cluster_id().context("making a cluster id")?;
            let read = self.read.clone();
            let stored = id.clone();
            tokio::task::spawn_blocking(move || read.set_cluster_id(&stored))
                .await
                .context("recording the cluster id")?
                .context("recording the cluster id")?;
            *self.cluster_id.write().unwrap_or_else(|p| p.into_inner()) = Some(id);
        }
        let members: BTreeMap<NodeId, BasicNode> = self
            .members
            .iter()
            .map(|(id, addr)| (*id, BasicNode::new(addr)))
            .collect();
        match self.raft.initialize(members).await {
            Ok(()) => {
                tracing::info!(members = ?self.members, cluster_id = ?self.cluster_id(), "initialized the cluster")
            }
            Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                tracing::info!(%e, "cluster already initialized")
            }
            Err(e) => return Err(e).context("initializing the cluster"),
        }
        Ok(())
    }

    /// The id of the cluster this node belongs to, if it knows one.
    pub fn cluster_id(&self) -> Option<String> {
        self.cluster_id
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether this node takes a Raft call from a node of cluster `theirs`
    /// (`None`: the caller sent no id). Equal ids pass, different ones never.
    /// A node without an id adopts the caller's at its first contact if it
    /// has no Raft state yet (a new member, or one that lost its data); a node
    /// with Raft state but no id (initialized before cluster ids existed)
    /// takes calls without an id only.
    pub async fn admit(&self, theirs: Option<&str>) -> Result<(), String> {
        let refuse = |ours: &str| {
            Err(format!(
                "this node belongs to cluster {ours}, the caller {}",
                theirs.map_or("names no cluster".to_string(), |t| format!(
                    "to cluster {t}"
                ))
            ))
        };
        match (self.cluster_id().as_deref(), theirs) {
            (Some(ours), Some(t)) if ours == t => return Ok(()),
            (Some(ours), _) => return refuse(ours),
            (None, None) => return Ok(()),
            (None, Some(_)) => {}
        }
        let theirs = theirs.unwrap_or_default();
        let _adopting = self.adopting.lock().await;
        if let Some(ours) = self.cluster_id() {
            return if ours == theirs {
                Ok(())
            } else {
                refuse(&ours)
            };
        }
        if self.raft.is_initialized().await.unwrap_or(true) {
            return Err(format!(
                "this node's Raft state predates cluster ids; it takes no call from cluster {theirs}"
            ));
        }
        let read = self.read.clone();
        let id = theirs.to_string();
        tokio::task::spawn_blocking(move || read.set_cluster_id(&id))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("recording the cluster id: {e}"))?;
        *self.cluster_id.write().unwrap_or_else(|p| p.into_inner()) = Some(theirs.to_string());
        tracing::info!(cluster_id = theirs, "joined the cluster at its first call");
        Ok(())
    }

    /// A peer that reports a Raft term, i.e. belongs to an initialized cluster.
    async fn initialized_peer(&self) -> Option<(NodeId, u64)> {
        for (&id, addr) in self.members.iter().filter(|(&id, _)| id != self.id) {
            let Ok(channel) = self.network.channel(id, addr) else {
                continue;
            };
            let mut request = tonic::Request::new(vtask_proto::v1::StatusRequest {});
            request.set_timeout(Duration::from_secs(1));
            let client = vtask_proto::v1::cluster_client::ClusterClient::new(channel);
            if let Ok(status) = client.clone().status(request).await {
                let status = status.into_inner();
                if status.term > 0 {
                    return Some((id, status.term));
                }
            }
        }
        None
    }

    /// A client identity for a request that came without one, so that this
    /// node's own retries are deduplicated too (D27).
    fn fresh_client(&self) -> ClientRef {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        static BOOT: OnceLock<u128> = OnceLock::new();
        let boot = BOOT.get_or_init(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        });
        ClientRef {
            id: format!(
                "vtaskd-{}-{boot:x}-{}",
                self.id,
                NEXT.fetch_add(1, Ordering::Relaxed)
            ),
            seq: 1,
        }
    }

    /// The address of a member: from the replicated membership, else as
    /// configured.
    pub fn address(&self, id: NodeId) -> Option<String> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        metrics
            .membership_config
            .membership()
            .get_node(&id)
            .map(|node| node.addr.clone())
            .or_else(|| self.members.get(&id).cloned())
    }

    /// The member at `addr`, if any (0 otherwise: the channel cache's key).
    fn member_at(&self, addr: &str) -> NodeId {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let found = metrics
            .membership_config
            .membership()
            .nodes()
            .find(|(_, node)| node.addr == addr)
            .map(|(id, _)| *id);
        found
            .or_else(|| {
                self.members
                    .iter()
                    .find(|(_, a)| a.as_str() == addr)
                    .map(|(id, _)| *id)
            })
            .unwrap_or(0)
    }

    /// `--join`: asks the members, in turn, to add this node, until one
    /// has (the call returns once this node is a caught-up voter). The node
    /// serves meanwhile: the leader replicates to it while it waits.
    fn ask_to_join(&self) {
        let node = self.clone();
        tokio::spawn(async move {
            let change = MembershipChange::Add {
                id: node.id,
                address: node.address(node.id).unwrap_or_default(),
                learner: false,
            };
            tracing::info!(endpoints = ?node.join, "a new node: asking the cluster to add it");
            let mut attempt = 0u32;
            loop {
                for endpoint in node.join.iter() {
                    let reply = node
                        .forward_within(
                            endpoint,
                            Forwarded::Membership(change.clone()),
                            crate::membership::MEMBERSHIP_TIMEOUT,
                        )
                        .await;
                    match reply {
                        Ok(ForwardedReply::Membership(Ok(done))) => {
                            tracing::info!(
                                leader = done.leader,
                                log_index = done.log_index,
                                "joined the cluster as a voter"
                            );
                            return;
                        }
                        Ok(ForwardedReply::Membership(Err(e))) => {
                            tracing::warn!(%endpoint, "the cluster did not add this node: {e}")
                        }
                        Ok(_) => tracing::warn!(%endpoint, "an unexpected reply to a join"),
                        Err(e) => tracing::warn!(%endpoint, "asking to join: {e}"),
                    }
                }
                attempt = attempt.saturating_add(1);
                let pause = Duration::from_millis(500 * u64::from(attempt.min(10)));
                tokio::time::sleep(pause).await;
            }
        });
    }

    /// Applies `request` through the leader, wherever it is, and returns the
    /// outcome with the leader's address. Retries while there is no leader,
    /// for at most [`REQUEST_TIMEOUT`]. A request is only re-sent when it
    /// carries a client id, so a retry is never applied twice.
    pub async fn submit(&self, mut request: Request) -> Result<(Outcome, String), NodeError> {
        if request.client.is_none() {
            request.client = Some(self.fresh_client());
        }
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        loop {
            let failure = match self.propose_here(request.clone()).await {
                Ok(outcome) => return Ok((outcome, self.address(self.id).unwrap_or_default())),
                Err(ProposeError::Unavailable(message)) => {
                    return Err(NodeError::Unavailable(message))
                }
                Err(ProposeError::DiskLow(message)) => return Err(NodeError::Exhausted(message)),
                Err(ProposeError::NotLeader {
                    leader: Some((leader, addr)),
                }) if leader != self.id => {
                    self.metrics.forwarded();
                    match self
                        .forward(&addr, Forwarded::Propose(request.clone()))
                        .await
                    {
                        Ok(ForwardedReply::Outcome(outcome)) => return Ok((outcome, addr)),
                        Ok(_) => {
                            return Err(NodeError::Internal(
                                "the leader answered a proposal with a reply of another kind"
                                    .into(),
                            ))
                        }
                        Err(ForwardError::Refused(ProposeError::Unavailable(message))) => {
                            return Err(NodeError::Unavailable(message))
                        }
                        Err(ForwardError::Refused(ProposeError::DiskLow(message))) => {
                            return Err(NodeError::Exhausted(message))
                        }
                        Err(error) => format!("forwarding to the leader at {addr}: {error}"),
                    }
                }
                Err(ProposeError::NotLeader { .. }) => "no leader is known".to_string(),
            };
            if Instant::now() + NO_LEADER_BACKOFF >= deadline {
                return Err(NodeError::Unavailable(format!(
                    "no leader could take the request within {} ms ({failure})",
                    REQUEST_TIMEOUT.as_millis()
                )));
            }
            tokio::time::sleep(NO_LEADER_BACKOFF).await;
        }
    }

    /// Waits until this node has applied everything committed before the
    /// call began, as confirmed by the leader with a quorum (ReadIndex). After
    /// it returns, a local read is linearizable.
    pub async fn read_barrier(&self) -> Result<(), NodeError> {
        #[cfg(debug_assertions)]
        if crate::planted::active(crate::planted::Bug::StaleFollowerReads)
            && self.raft.metrics().borrow().state != ServerState::Leader
        {
            return Ok(());
        }
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        loop {
            let failure = match self.read_index().await {
                Ok(index) => {
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    return match tokio::time::timeout(remaining, self.read.wait_applied(index))
                        .await
                    {
                        Ok(_) => Ok(()),
                        Err(_) => Err(NodeError::Unavailable(format!(
                            "this node did not apply up to the read index {index} within {} ms",
                            REQUEST_TIMEOUT.as_millis()
                        ))),
                    };
                }
                Err(failure) => failure,
            };
            if Instant::now() + NO_LEADER_BACKOFF >= deadline {
                return Err(NodeError::Unavailable(format!(
                    "no leader confirmed a linearizable read within {} ms ({failure})",
                    REQUEST_TIMEOUT.as_millis()
                )));
            }
            tokio::time::sleep(NO_LEADER_BACKOFF).await;
        }
    }

    /// The read index from the leader: ourselves, or over the internal RPC.
    async fn read_index(&self) -> Result<u64, String> {
        match self.local_read_index().await {
            Ok(index) => Ok(index),
            Err(ProposeError::NotLeader {
                leader: Some((leader, addr)),
            }) if leader != self.id => match self.forward(&addr, Forwarded::ReadIndex).await {
                Ok(ForwardedReply::ReadIndex(index)) => Ok(index),
                Ok(_) => {
                    Err("the leader answered a read index with a reply of another kind".into())
                }
                Err(error) => Err(format!("asking the leader at {addr}: {error}")),
            },
            Err(ProposeError::NotLeader { .. }) => Err("no leader is known".into()),
            Err(ProposeError::Unavailable(message) | ProposeError::DiskLow(message)) => {
                Err(message)
            }
        }
    }

    /// ReadIndex on this node, if it is the leader.
    pub async fn local_read_index(&self) -> Result<u64, ProposeError> {
        // A ReadIndex round is a heartbeat: it would renew the followers'
        // leader lease that a leader transfer waits out.
        self.wait_hand_over().await;
        self.reads.read_index().await
    }

    /// Proposes `request` through this node's proposer, for its own client
    /// or for a follower's: the one door to the log, where a leader transfer
    /// holds new proposals back and a disk below its reserve refuses them
    /// (a follower checked its own disk before it forwarded).
    async fn propose_here(&self, request: Request) -> Result<Outcome, ProposeError> {
        self.wait_hand_over().await;
        if let Err(low) = self.disk.admit_write() {
            return Err(ProposeError::DiskLow(low.to_string()));
        }
        self.proposer.propose(request).await
    }

    /// Handles a [`Forwarded`] call on the leader.
    pub async fn serve_forwarded(&self, call: Forwarded) -> Result<ForwardedReply, ProposeError> {
        match call {
            Forwarded::Propose(request) => self
                .propose_here(request)
                .await
                .map(ForwardedReply::Outcome),
            Forwarded::ReadIndex => self.local_read_index().await.map(ForwardedReply::ReadIndex),
            Forwarded::Membership(change) => Ok(ForwardedReply::Membership(
                self.change_membership(change).await,
            )),
            Forwarded::Transfer(to) => Ok(ForwardedReply::Membership(
                self.transfer_leader(to).await.map(|leader| MembershipDone {
                    log_index: 0,
                    leader,
                    unchanged: false,
                }),
            )),
            Forwarded::Campaign => {
                self.campaign().await;
                Ok(ForwardedReply::Done)
            }
            Forwarded::Removed => {
                self.removed("the leader said so");
                Ok(ForwardedReply::Done)
            }
        }
    }

    async fn forward(&self, addr: &str, call: Forwarded) -> Result<ForwardedReply, ForwardError> {
        self.forward_within(addr, call, REQUEST_TIMEOUT).await
    }

    /// Makes a [`Forwarded`] call on the node at `addr`, waiting for at most
    /// `timeout`.
    pub(crate) async fn forward_within(
        &self,
        addr: &str,
        call: Forwarded,
        timeout: Duration,
    ) -> Result<ForwardedReply, ForwardError> {
        let channel = self
            .network
            .channel(self.member_at(addr), addr)
            .map_err(|e| ForwardError::Transport(e.to_string()))?;
        let mut client = RaftServiceClient::new(channel)
            .max_decoding_message_size(vtask_raft::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(vtask_raft::MAX_MESSAGE_BYTES);
        let mut request = tonic::Request::new(ForwardRequest {
            proposal: encode(&call),
        });
        request.set_timeout(timeout);
        vtask_raft::add_cluster_id(&mut request, &self.cluster_id);
        let reply = client
            .forward(request)
            .await
            .map_err(|status| ForwardError::Transport(status.message().to_string()))?;
        let result: Result<ForwardedReply, ProposeError> = decode(&reply.into_inner().reply)
            .map_err(|status| ForwardError::Transport(status.message().to_string()))?;
        result.map_err(ForwardError::Refused)
    }

    /// Resolves when Raft has stopped by itself (a storage error, a panic
    /// in its core), with the reason; never while it runs. openraft stops
    /// on any failed write of the log, the vote or the state machine (a
    /// full disk, say), having acknowledged nothing that was not written.
    pub async fn raft_failed(&self) -> String {
        let mut metrics = self.raft.metrics();
        loop {
            if let Err(fatal) = &metrics.borrow().running_state {
                return fatal.to_string();
            }
            if metrics.changed().await.is_err() {
                return "the Raft core ended".into();
            }
        }
    }

    /// The Raft gauges for `/metrics` and `Cluster.Status`.
    pub fn gauges(&self) -> RaftGauges {
        let metrics = self.raft.metrics().borrow().clone();
        RaftGauges {
            term: metrics.current_term,
            is_leader: metrics.state == ServerState::Leader,
            last_log_index: metrics.last_log_index.unwrap_or_default(),
            applied_index: metrics.last_applied.map_or(0, |id| id.index),
            snapshot_index: metrics.snapshot.map_or(0, |id| id.index),
        }
    }
}

/// A fresh cluster id: 16 random bytes from the OS, hex.
fn new_cluster_id() -> std::io::Result<String> {
    Ok(crate::auth::random_token()?[..32].to_string())
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ForwardError {
    #[error("{0}")]
    Transport(String),
    #[error("{0}")]
    Refused(ProposeError),
}

/// ReadIndex for many readers at once: openraft confirms leadership with a
/// round of heartbeats to every voter per call, so concurrent reads share a
/// round instead. A reader joins only a round that starts after it arrived,
/// so the index it gets is at least the commit index at its arrival, as a
/// linearizable read needs.
#[derive(Clone)]
struct ReadIndexBatcher {
    queue: tokio::sync::mpsc::UnboundedSender<tokio::sync::oneshot::Sender<ReadIndex>>,
}

type ReadIndex = Result<u64, ProposeError>;

impl ReadIndexBatcher {
    /// Starts the loop; it ends when every handle is dropped.
    fn start(raft: Raft) -> ReadIndexBatcher {
        let (queue, mut rx) =
            tokio::sync::mpsc::unbounded_channel::<tokio::sync::oneshot::Sender<ReadIndex>>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                // Everyone queued so far arrived before this round starts.
                let mut readers = vec![first];
                while let Ok(next) = rx.try_recv() {
                    readers.push(next);
                }
                let index = confirm_leadership(&raft).await;
                for reader in readers {
                    let _ = reader.send(index.clone());
                }
            }
        });
        ReadIndexBatcher { queue }
    }

    async fn read_index(&self) -> ReadIndex {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.queue
            .send(tx)
            .map_err(|_| ProposeError::Unavailable("the node is shutting down".into()))?;
        match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Ok(Ok(index)) => index,
            Ok(Err(_)) => Err(ProposeError::Unavailable(
                "the node is shutting down".into(),
            )),
            Err(_) => Err(ProposeError::Unavailable(
                "no quorum confirmed leadership in time".into(),
            )),
        }
    }
}

/// One round of ReadIndex: the leader's commit index, once a quorum has
/// confirmed that it is still the leader.
async fn confirm_leadership(raft: &Raft) -> ReadIndex {
    let confirmed = tokio::time::timeout(REQUEST_TIMEOUT, raft.get_read_log_id()).await;
    match confirmed {
        Ok(Ok((read_log_id, _applied))) => Ok(read_log_id.map_or(0, |id| id.index)),
        Ok(Err(RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(
            forward,
        )))) => Err(ProposeError::NotLeader {
            leader: forward.leader_id.zip(forward.leader_node.map(|n| n.addr)),
        }),
        Ok(Err(other)) => Err(ProposeError::Unavailable(format!(
            "leadership not confirmed: {other}"
        ))),
        Err(_) => Err(ProposeError::Unavailable(
            "no quorum confirmed leadership in time".into(),
        )),
    }
}
