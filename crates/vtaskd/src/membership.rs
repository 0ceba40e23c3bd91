//! Changing who is in the cluster, and moving its leadership.
//!
//! Every change runs on the leader (a follower forwards it), one at a time
//! (`membership_lock`), through openraft's joint consensus: a change is a
//! log entry like any other, so it survives a crash of the leader, and the
//! chaos checker's histories stay valid across it.
//!
//! openraft 0.9.25 has no leader-transfer primitive; [`Node::transfer_here`]
//! builds the nearest equivalent out of what it does have: the leader pauses
//! new proposals, waits until the target holds its whole log, and asks the
//! target to campaign. A follower refuses to vote while its leader lease
//! (election_timeout_max since it last heard from the leader) runs, but the
//! old leader itself has no such lease: with three voters the target's own
//! vote and the old leader's are a majority, so the hand-over takes one vote
//! round. With more voters the leader first goes quiet (no heartbeats) for
//! one lease, so the hand-over costs about one lease, still less than a
//! follower's election timeout (lease plus a randomized election timeout)
//! after a crash. Proposals that arrive meanwhile wait, then go to the new
//! leader: callers see latency, not errors.

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, ServerState};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use vtask_store::NodeId;

use crate::node::{Forwarded, ForwardedReply, Node};

/// The longest a new member may take to catch up before it is made a voter
/// (a snapshot of a large state machine takes a while to send).
pub const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a membership call may take end to end, catching up included.
pub const MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(150);
/// How long a leader transfer may take before the old leader resumes.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(5);
/// The most a proposal waits for a leader transfer to end.
const HAND_OVER_WAIT: Duration = Duration::from_secs(6);
/// A member whose replication is this close to the leader's log is caught
/// up: under load the log grows while it catches up, so "equal" may never
/// hold, but the remaining entries take one AppendEntries call.
const CAUGHT_UP_LAG: u64 = 64;
const NO_LEADER_BACKOFF: Duration = Duration::from_millis(100);
/// How long a membership without this node must last before the node takes
/// itself for removed (see [`Node::watch_removal`]).
const REMOVED_GRACE: Duration = Duration::from_secs(10);

/// One change to the membership.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum MembershipChange {
    /// Adds node `id` at `address` as a learner; unless `learner`, promotes
    /// it to voter once it has caught up.
    Add {
        id: NodeId,
        address: String,
        learner: bool,
    },
    /// Makes learner `id` a voter once it has caught up.
    Promote { id: NodeId },
    /// Removes node `id`, voter or learner; the leader hands over first.
    Remove { id: NodeId },
}

/// A change that took effect (or had nothing to do).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MembershipDone {
    /// The log index of the membership entry that ends the change (the
    /// current one when nothing changed).
    pub log_index: u64,
    /// The leader that made the change.
    pub leader: NodeId,
    /// The membership already was as asked.
    pub unchanged: bool,
}

#[derive(Clone, Debug, thiserror::Error, Serialize, Deserialize)]
pub enum MembershipError {
    /// The change makes no sense for this membership (an unknown node, a
    /// second address for a member, removing the last voter).
    #[error("{0}")]
    Invalid(String),
    /// Another change (or a leader transfer) is under way.
    #[error("{0}")]
    InProgress(String),
    /// No leader, no quorum, or the new member did not catch up in time.
    #[error("{0}")]
    Unavailable(String),
    /// This node is not (or no longer) the leader: try the leader.
    #[error("this node is not the leader")]
    NotLeader,
}

impl Node {
    /// Applies `change` on the leader, wherever it is, and waits until it has
    /// taken effect.
    pub async fn change_membership(
        &self,
        change: MembershipChange,
    ) -> Result<MembershipDone, MembershipError> {
        self.on_leader(
            Forwarded::Membership(change.clone()),
            |reply| match reply {
                ForwardedReply::Membership(result) => Some(result),
                _ => None,
            },
            || self.change_membership_here(change.clone()),
        )
        .await
    }

    /// Moves the leadership to `to` (any caught-up voter when `None`) and
    /// returns the new leader.
    pub async fn transfer_leader(&self, to: Option<NodeId>) -> Result<NodeId, MembershipError> {
        let done = self
            .on_leader(
                Forwarded::Transfer(to),
                |reply| match reply {
                    ForwardedReply::Membership(result) => Some(result),
                    _ => None,
                },
                || async move {
                    let Ok(_one) = self.membership_lock.try_lock() else {
                        return Err(in_progress());
                    };
                    self.transfer_here(to).await.map(|leader| MembershipDone {
                        log_index: 0,
                        leader,
                        unchanged: leader == self.id,
                    })
                },
            )
            .await?;
        Ok(done.leader)
    }

    /// Runs `here` if this node is the leader, or sends `call` to the leader;
    /// retries while no leader is known, for at most [`MEMBERSHIP_TIMEOUT`].
    async fn on_leader<F, Fut>(
        &self,
        call: Forwarded,
        unpack: impl Fn(ForwardedReply) -> Option<Result<MembershipDone, MembershipError>>,
        here: F,
    ) -> Result<MembershipDone, MembershipError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<MembershipDone, MembershipError>>,
    {
        let deadline = Instant::now() + MEMBERSHIP_TIMEOUT;
        loop {
            let metrics = self.raft.metrics().borrow().clone();
            let failure = match metrics.current_leader {
                Some(leader) if leader == self.id && metrics.state == ServerState::Leader => {
                    match here().await {
                        Err(MembershipError::NotLeader) => "the leadership moved".to_string(),
                        other => return other,
                    }
                }
                Some(leader) => match self.address(leader) {
                    Some(addr) => {
                        let remaining = deadline.saturating_duration_since(Instant::now());
                        match self.forward_within(&addr, call.clone(), remaining).await {
                            Ok(reply) => match unpack(reply) {
                                Some(Err(MembershipError::NotLeader)) => {
                                    format!("node {leader} is no longer the leader")
                                }
                                Some(result) => return result,
                                None => {
                                    return Err(MembershipError::Unavailable(
                                        "the leader answered with a reply of another kind".into(),
                                    ))
                                }
                            },
                            Err(e) => format!("calling the leader, node {leader} at {addr}: {e}"),
                        }
                    }
                    None => format!("the leader, node {leader}, has no known address"),
                },
                None => "no leader is known".to_string(),
            };
            if Instant::now() + NO_LEADER_BACKOFF >= deadline {
                return Err(MembershipError::Unavailable(failure));
            }
            tracing::debug!(failure, "membership call: retrying");
            tokio::time::sleep(NO_LEADER_BACKOFF).await;
        }
    }

    /// One membership change on this node, the leader.
    pub(crate) async fn change_membership_here(
        &self,
        change: MembershipChange,
    ) -> Result<MembershipDone, MembershipError> {
        let Ok(_one) = self.membership_lock.try_lock() else {
            return Err(in_progress());
        };
        self.finish_joint().await?;
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership().clone();
        let current = metrics.membership_config.log_id().map_or(0, |id| id.index);
        let unchanged = || {
            Ok(MembershipDone {
                log_index: current,
                leader: self.id,
                unchanged: true,
            })
        };
        let is_voter = |id: NodeId| membership.voter_ids().any(|v| v == id);
        match change {
            MembershipChange::Add {
                id,
                address,
                learner,
            } => {
                if id == 0 {
                    return Err(MembershipError::Invalid("node ids start at 1".into()));
                }
                let address = crate::config::host_port(&address).map_err(|e| {
                    MembershipError::Invalid(format!("the address of node {id}: {e}"))
                })?;
                if let Some((other, _)) = membership
                    .nodes()
                    .find(|(other, node)| **other != id && node.addr == address)
                {
                    return Err(MembershipError::Invalid(format!(
                        "{address} is node {other}'s address"
                    )));
                }
                match membership.get_node(&id) {
                    Some(node) if node.addr != address => {
                        return Err(MembershipError::Invalid(format!(
                            "node {id} is already a member, at {}; remove it first to give it another address",
                            node.addr
                        )))
                    }
                    Some(_) if is_voter(id) || learner => return unchanged(),
                    Some(_) => {}
                    None => {
                        tracing::info!(node = id, %address, "adding a learner");
                        self.raft
                            .add_learner(id, BasicNode::new(&address), false)
                            .await
                            .map_err(write_error)?;
                    }
                }
                if learner {
                    return Ok(self.done());
                }
                self.promote(id).await
            }
            MembershipChange::Promote { id } => {
                if membership.get_node(&id).is_none() {
                    return Err(MembershipError::Invalid(format!(
                        "node {id} is not a member; add it first"
                    )));
                }
                if is_voter(id) {
                    return unchanged();
                }
                self.promote(id).await
            }
            MembershipChange::Remove { id } => {
                if membership.get_node(&id).is_none() {
                    return unchanged();
                }
                let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
                if voters.len() == 1 && voters.contains(&id) {
                    return Err(MembershipError::Invalid(format!(
                        "node {id} is the only voter; a cluster needs one"
                    )));
                }
                if id == self.id {
                    // A leader that commits its own removal leaves the
                    // cluster leaderless for an election timeout; handing
                    // over first makes it a follower the next leader removes.
                    tracing::info!("removing this node, the leader: handing over first");
                    self.transfer_here(None).await?;
                    return Err(MembershipError::NotLeader);
                }
                tracing::info!(node = id, "removing a member");
                let change = if voters.contains(&id) {
                    ChangeMembers::RemoveVoters(BTreeSet::from([id]))
                } else {
                    ChangeMembers::RemoveNodes(BTreeSet::from([id]))
                };
                let address = membership.get_node(&id).map(|n| n.addr.clone());
                self.raft
                    .change_membership(change, false)
                    .await
                    .map_err(write_error)?;
                if let Some(addr) = address {
                    // The removed node may never see the entry that removes
                    // it (the leader stops replicating to it); tell it.
                    let node = self.clone();
                    tokio::spawn(async move {
                        let told = node
                            .forward_within(&addr, Forwarded::Removed, Duration::from_secs(2))
                            .await;
                        if let Err(e) = told {
                            tracing::info!(node = id, "could not tell the removed node: {e}");
                        }
                    });
                }
                Ok(self.done())
            }
        }
    }

    /// A joint configuration left by a leader that crashed mid-change is
    /// completed first (to its second half), so that no change starts from
    /// a half-applied membership.
    async fn finish_joint(&self) -> Result<(), MembershipError> {
        let membership = self.raft.metrics().borrow().membership_config.clone();
        let joint = membership.membership().get_joint_config();
        if joint.len() > 1 {
            let goal = joint.last().cloned().unwrap_or_default();
            tracing::warn!(?joint, "completing a membership change left half done");
            self.raft
                .change_membership(ChangeMembers::ReplaceAllVoters(goal), false)
                .await
                .map_err(write_error)?;
        }
        Ok(())
    }

    /// Waits until learner `id` has caught up, then makes it a voter.
    async fn promote(&self, id: NodeId) -> Result<MembershipDone, MembershipError> {
        let started = std::time::Instant::now();
        self.wait_caught_up(id, CATCH_UP_TIMEOUT).await?;
        tracing::info!(
            node = id,
            caught_up_ms = started.elapsed().as_millis() as u64,
            "promoting a caught-up learner to voter"
        );
        self.raft
            .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
            .await
            .map_err(write_error)?;
        Ok(self.done())
    }

    /// Waits until the leader's replication to `id` is within
    /// [`CAUGHT_UP_LAG`] entries of its log and has reached the current
    /// membership entry (so a node that never answered is never caught up,
    /// however short the log).
    async fn wait_caught_up(&self, id: NodeId, timeout: Duration) -> Result<(), MembershipError> {
        let membership_index = self
            .raft
            .metrics()
            .borrow()
            .membership_config
            .log_id()
            .map_or(0, |l| l.index);
        self.wait_replicated(id, CAUGHT_UP_LAG, membership_index, timeout)
            .await
            .map_err(|lag| {
                MembershipError::Unavailable(format!(
                    "node {id} did not catch up within {} s ({lag}); it stays a learner: check that it runs and that the leader reaches it, then `vtask member promote {id}`",
                    timeout.as_secs()
                ))
            })
    }

    /// Waits until `id`'s matched index is at least `at_least` and within
    /// `lag` of this leader's last log index; on timeout says how far
    /// behind it was.
    async fn wait_replicated(
        &self,
        id: NodeId,
        lag: u64,
        at_least: u64,
        timeout: Duration,
    ) -> Result<(), String> {
        let mut metrics = self.raft.metrics();
        let deadline = Instant::now() + timeout;
        loop {
            let behind = {
                let m = metrics.borrow_and_update();
                if m.state != ServerState::Leader {
                    return Err("this node stopped being the leader".into());
                }
                let last = m.last_log_index.unwrap_or_default();
                match matched(&m, id) {
                    Some(matched) if matched >= at_least => last.saturating_sub(matched),
                    Some(matched) => last.saturating_sub(matched).max(lag + 1),
                    None => u64::MAX,
                }
            };
            if behind <= lag {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, metrics.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err("Raft stopped".into()),
                Err(_) if behind == u64::MAX => return Err("it never answered".into()),
                Err(_) => return Err(format!("{behind} entries behind")),
            }
        }
    }

    fn done(&self) -> MembershipDone {
        let metrics = self.raft.metrics().borrow().clone();
        MembershipDone {
            log_index: metrics.membership_config.log_id().map_or(0, |id| id.index),
            leader: self.id,
            unchanged: false,
        }
    }

    /// Hands the leadership of this node to `to` (the most caught-up other
    /// voter when `None`), as the module comment describes. The caller holds
    /// `membership_lock`. Returns the new leader.
    pub(crate) async fn transfer_here(
        &self,
        to: Option<NodeId>,
    ) -> Result<NodeId, MembershipError> {
        let metrics = self.raft.metrics().borrow().clone();
        if metrics.state != ServerState::Leader {
            return Err(MembershipError::NotLeader);
        }
        let voters: BTreeSet<NodeId> = metrics.membership_config.membership().voter_ids().collect();
        let target = match to {
            Some(id) if id == self.id => return Ok(self.id),
            Some(id) if voters.contains(&id) => id,
            Some(id) => {
                return Err(MembershipError::Invalid(format!(
                    "node {id} is not a voter; only a voter can lead"
                )))
            }
            None => voters
                .iter()
                .copied()
                .filter(|id| *id != self.id)
                .max_by_key(|id| matched(&metrics, *id).unwrap_or(0))
                .ok_or_else(|| {
                    MembershipError::Invalid(
                        "this node is the only voter; no one can take over".into(),
                    )
                })?,
        };
        let Some(target_addr) = self.address(target) else {
            return Err(MembershipError::Invalid(format!(
                "node {target} has no known address"
            )));
        };
        let started = std::time::Instant::now();
        tracing::info!(to = target, "leader transfer: pausing proposals");
        self.handing_over.send_replace(true);
        let result = self.hand_over(target, &target_addr, voters.len()).await;
        self.raft.runtime_config().heartbeat(true);
        self.handing_over.send_replace(false);
        match &result {
            Ok(leader) => tracing::info!(
                to = leader,
                took_ms = started.elapsed().as_millis() as u64,
                "leader transfer done"
            ),
            Err(e) => tracing::warn!(
                to = target,
                "leader transfer failed: {e}; this node leads on"
            ),
        }
        result
    }

    async fn hand_over(
        &self,
        target: NodeId,
        target_addr: &str,
        voters: usize,
    ) -> Result<NodeId, MembershipError> {
        let deadline = Instant::now() + TRANSFER_TIMEOUT;
        // Proposals already in the proposer still reach the log: let them
        // (new ones wait), then the target must hold all of it, or the old
        // leader would refuse it its vote.
        let drained = Instant::now() + Duration::from_secs(2);
        while self.proposer.outstanding() > 0 && Instant::now() < drained {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let last = self
            .raft
            .metrics()
            .borrow()
            .last_log_index
            .unwrap_or_default();
        self.wait_replicated(target, 0, last, Duration::from_secs(2))
            .await
            .map_err(|e| {
                MembershipError::Unavailable(format!(
                    "node {target} did not catch up with the leader's log: {e}"
                ))
            })?;
        let lease = Duration::from_millis(self.raft_config.election_timeout_max + 50);
        // Two votes are a majority of at most three voters.
        let mut quiet = voters > 3;
        if !quiet {
            // This node refuses the target's vote while its own vote is
            // younger than a lease (it became leader just now): wait that out.
            let since = *self.leader_since.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(young) = since.and_then(|at| lease.checked_sub(at.elapsed())) {
                tokio::time::sleep(young).await;
            }
        }
        loop {
            if quiet {
                self.raft.runtime_config().heartbeat(false);
                tokio::time::sleep(lease).await;
            }
            let campaign = self
                .forward_within(target_addr, Forwarded::Campaign, Duration::from_secs(1))
                .await;
            if let Err(e) = campaign {
                return Err(MembershipError::Unavailable(format!(
                    "asking node {target} to campaign: {e}"
                )));
            }
            let mut metrics = self.raft.metrics();
            let wait = Instant::now() + Duration::from_millis(if quiet { 2000 } else { 500 });
            loop {
                {
                    let m = metrics.borrow_and_update();
                    if m.state != ServerState::Leader
                        && m.current_leader.is_some_and(|l| l != self.id)
                    {
                        return Ok(m.current_leader.unwrap_or(target));
                    }
                }
                if tokio::time::timeout_at(wait.min(deadline), metrics.changed())
                    .await
                    .is_err()
                {
                    break;
                }
            }
            if quiet || Instant::now() >= deadline {
                let m = self.raft.metrics().borrow().clone();
                return match m.current_leader {
                    Some(l) if l != self.id => Ok(l),
                    _ if m.state != ServerState::Leader => Err(MembershipError::Unavailable(
                        "the leadership left this node but no new leader is known yet".into(),
                    )),
                    _ => Err(MembershipError::Unavailable(format!(
                        "node {target} did not win an election within {} ms",
                        TRANSFER_TIMEOUT.as_millis()
                    ))),
                };
            }
            // This node's vote was refused (it became leader less than a
            // lease ago): go quiet and try once more.
            quiet = true;
        }
    }

    /// On the transfer target: campaign now.
    pub(crate) async fn campaign(&self) {
        tracing::info!("asked by the leader to take over: campaigning");
        if let Err(e) = self.raft.trigger().elect().await {
            tracing::warn!("starting an election: {e}");
        }
    }

    /// Waits while this node hands its leadership over, for at most
    /// [`HAND_OVER_WAIT`]; a proposal made meanwhile would be lost with the
    /// old term's uncommitted tail or delay the hand-over.
    pub async fn wait_hand_over(&self) {
        if !*self.handing_over.borrow() {
            return;
        }
        let mut rx = self.handing_over.subscribe();
        let _ = tokio::time::timeout(HAND_OVER_WAIT, rx.wait_for(|busy| !*busy)).await;
    }

    /// On shutdown: a leader with other voters hands over first, so that a
    /// planned restart costs no election timeout.
    pub async fn hand_over_before_stopping(&self) {
        let metrics = self.raft.metrics().borrow().clone();
        if metrics.state != ServerState::Leader
            || metrics.membership_config.membership().voter_ids().count() < 2
        {
            return;
        }
        let Ok(_one) =
            tokio::time::timeout(Duration::from_secs(2), self.membership_lock.lock()).await
        else {
            tracing::warn!("stopping without a leader transfer: a membership change is under way");
            return;
        };
        match self.transfer_here(None).await {
            Ok(leader) => tracing::info!(leader, "handed the leadership over before stopping"),
            Err(e) => tracing::warn!("stopping without a leader transfer: {e}"),
        }
    }

    /// A removed node stops serving: it is no longer part of any quorum, and
    /// a client that kept calling it would read a state that no longer moves.
    pub(crate) fn removed(&self, why: &str) {
        if !self.removed.send_replace(true) {
            tracing::warn!(
                "this node was removed from the cluster ({why}); it stops serving. Its data directory is no longer part of the cluster: to bring the machine back, empty it and start with --join"
            );
        }
    }

    /// Notes when this node last became leader (for [`Node::hand_over`]).
    pub(crate) fn watch_leadership(&self) {
        let node = self.clone();
        tokio::spawn(async move {
            let mut metrics = node.raft.metrics();
            let mut leading = None;
            loop {
                let now = {
                    let m = metrics.borrow_and_update();
                    (m.state == ServerState::Leader).then_some(m.current_term)
                };
                if now.is_some() && now != leading {
                    *node.leader_since.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(std::time::Instant::now());
                }
                leading = now;
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        });
    }

    /// Watches the membership for this node's removal: a membership without
    /// this node, unchanged for [`REMOVED_GRACE`]. A node catching up passes
    /// through such memberships (a node removed and added again replays its
    /// removal; a snapshot may predate its addition) but moves on at once,
    /// while a removed node hears nothing more.
    pub(crate) fn watch_removal(&self) {
        let node = self.clone();
        tokio::spawn(async move {
            let mut metrics = node.raft.metrics();
            let mut absent_since: Option<Instant> = None;
            loop {
                let absent = {
                    let m = metrics.borrow_and_update();
                    let membership = m.membership_config.membership();
                    membership.nodes().next().is_some() && membership.get_node(&node.id).is_none()
                };
                absent_since = match (absent, absent_since) {
                    (false, _) => None,
                    (true, since) => Some(since.unwrap_or_else(Instant::now)),
                };
                let changed = match absent_since {
                    Some(since) => {
                        let until = since + REMOVED_GRACE;
                        match tokio::time::timeout_at(until, metrics.changed()).await {
                            Ok(changed) => changed,
                            Err(_) => {
                                node.removed("its membership has not held it for 10 s");
                                return;
                            }
                        }
                    }
                    None => metrics.changed().await,
                };
                if changed.is_err() {
                    return;
                }
            }
        });
    }
}

/// The leader's replication position of `id`, if it replicates to it and
/// `id` has answered.
fn matched(metrics: &openraft::RaftMetrics<NodeId, BasicNode>, id: NodeId) -> Option<u64> {
    metrics
        .replication
        .as_ref()?
        .get(&id)?
        .map(|log_id| log_id.index)
}

fn in_progress() -> MembershipError {
    MembershipError::InProgress(
        "another membership change or leader transfer is under way; retry when it has ended (vtask member list shows the membership)".into(),
    )
}

fn write_error(error: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> MembershipError {
    match error {
        RaftError::APIError(ClientWriteError::ForwardToLeader(_)) => MembershipError::NotLeader,
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            MembershipError::InProgress(format!("openraft refused the change: {e}"))
        }
        RaftError::Fatal(e) => MembershipError::Unavailable(format!("Raft stopped: {e}")),
    }
}
