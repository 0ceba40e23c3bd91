//! The faults a chaos run injects into a cluster it started itself, one
//! every interval: each is applied, held for a while, then healed, so the
//! cluster always gets a calm stretch before the next one.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::cluster::LocalCluster;
use crate::proxy::{LinkMode, LinkState};
use crate::runner::RunError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FaultKind {
    /// SIGKILL the leader or a random node; restart it after the hold.
    Kill,
    /// SIGTERM a node (clean shutdown) and start it again at once.
    Restart,
    /// SIGSTOP the leader or a random node; SIGCONT after the hold.
    Stop,
    /// Cut Raft links: leader isolated, follower isolated, a bridge, or one way.
    Partition,
    /// Delay every chunk on some Raft links.
    Slow,
    /// SIGKILL every node at once, then restart them all: only fsynced
    /// writes survive.
    Crash,
    /// Remove the leader or a random node from the membership (a leader
    /// hands over first), wipe its data directory, and add it back as a new
    /// member with an empty disk: it catches up before it votes again.
    Member,
    /// Hand the leadership to a random other voter (`vtask leader transfer`).
    Transfer,
}

impl FaultKind {
    pub const ALL: [FaultKind; 8] = [
        FaultKind::Kill,
        FaultKind::Restart,
        FaultKind::Stop,
        FaultKind::Partition,
        FaultKind::Slow,
        FaultKind::Crash,
        FaultKind::Member,
        FaultKind::Transfer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Restart => "restart",
            FaultKind::Stop => "stop",
            FaultKind::Partition => "partition",
            FaultKind::Slow => "slow",
            FaultKind::Crash => "crash",
            FaultKind::Member => "member",
            FaultKind::Transfer => "transfer",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = String;
    fn from_str(s: &str) -> Result<FaultKind, String> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                format!(
                    "{s:?} is not a fault (kill, restart, stop, partition, slow, crash, member, transfer)"
                )
            })
    }
}

/// One injected fault, for the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRecord {
    pub kind: FaultKind,
    /// What exactly, e.g. "leader n2 isolated (drop)".
    pub detail: String,
    /// Seconds since the start of the run.
    pub start_secs: f64,
    pub healed_secs: f64,
}

pub struct Nemesis {
    pub faults: Vec<FaultKind>,
    pub interval: Duration,
    pub rng: StdRng,
    pub origin: Instant,
}

impl Nemesis {
    /// Injects faults until `until`, then heals everything.
    pub async fn run(
        &mut self,
        cluster: &tokio::sync::Mutex<LocalCluster>,
        until: Instant,
    ) -> Result<Vec<FaultRecord>, RunError> {
        let mut records = Vec::new();
        if self.faults.is_empty() {
            tokio::time::sleep_until(until).await;
            return Ok(records);
        }
        // A calm start: the workload gets going before the first fault.
        let mut next = Instant::now() + self.interval / 2;
        loop {
            tokio::time::sleep_until(next.min(until)).await;
            if Instant::now() >= until {
                break;
            }
            let kind = *self
                .faults
                .choose(&mut self.rng)
                .unwrap_or(&FaultKind::Kill);
            let hold = self
                .interval
                .mul_f64(self.rng.gen_range(0.25..0.6))
                .max(Duration::from_millis(500));
            let start = self.origin.elapsed().as_secs_f64();
            let detail = {
                let mut cluster = cluster.lock().await;
                cluster.restart_crashed()?;
                self.inject(&mut cluster, kind, hold).await?
            };
            records.push(FaultRecord {
                kind,
                detail,
                start_secs: start,
                healed_secs: self.origin.elapsed().as_secs_f64(),
            });
            next += self.interval;
        }
        cluster.lock().await.heal_all().await?;
        Ok(records)
    }

    /// The leader, or (half the time, or with no leader) a random node.
    async fn target(&mut self, cluster: &LocalCluster) -> (u64, &'static str) {
        if self.rng.gen_bool(0.5) {
            if let Some(leader) = cluster.leader().await {
                return (leader, "leader");
            }
        }
        let ids = cluster.ids();
        (*ids.choose(&mut self.rng).unwrap_or(&1), "node")
    }

    /// Applies one fault, holds it, heals it; returns its description.
    async fn inject(
        &mut self,
        cluster: &mut LocalCluster,
        kind: FaultKind,
        hold: Duration,
    ) -> Result<String, RunError> {
        let detail = match kind {
            FaultKind::Kill => {
                let (id, role) = self.target(cluster).await;
                cluster.kill(id).await;
                tokio::time::sleep(hold).await;
                cluster.spawn(id)?;
                format!("SIGKILL {role} n{id}, restarted after {}", secs(hold))
            }
            FaultKind::Restart => {
                let (id, role) = self.target(cluster).await;
                cluster.terminate(id).await;
                cluster.spawn(id)?;
                format!("SIGTERM {role} n{id}, restarted")
            }
            FaultKind::Stop => {
                let (id, role) = self.target(cluster).await;
                cluster.pause(id);
                tokio::time::sleep(hold).await;
                cluster.resume(id);
                format!("SIGSTOP {role} n{id} for {}", secs(hold))
            }
            FaultKind::Partition => {
                let text = self.partition(cluster).await;
                tokio::time::sleep(hold).await;
                cluster.heal_links();
                format!("{text} for {}", secs(hold))
            }
            FaultKind::Slow => {
                let delay = Duration::from_millis(self.rng.gen_range(20..=400));
                let ids = cluster.ids();
                let slow_node = if self.rng.gen_bool(0.5) {
                    ids.choose(&mut self.rng).copied()
                } else {
                    None
                };
                for &from in &ids {
                    for &to in &ids {
                        if from != to && slow_node.is_none_or(|n| n == from || n == to) {
                            cluster.set_link(
                                from,
                                to,
                                LinkState {
                                    mode: LinkMode::Pass,
                                    delay,
                                },
                            );
                        }
                    }
                }
                tokio::time::sleep(hold).await;
                cluster.heal_links();
                let links = match slow_node {
                    Some(n) => format!("links of n{n}"),
                    None => "every link".into(),
                };
                format!("{links} +{} ms for {}", delay.as_millis(), secs(hold))
            }
            FaultKind::Crash => {
                for id in cluster.ids() {
                    cluster.resume(id);
                    cluster.kill(id).await;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                for id in cluster.ids() {
                    cluster.spawn(id)?;
                }
                "SIGKILL every node at once, restarted".to_string()
            }
            FaultKind::Member => {
                let (id, role) = self.target(cluster).await;
                cluster
                    .replace_member(id)
                    .await
                    .map(|detail| format!("{role} {detail}"))?
            }
            FaultKind::Transfer => {
                let leader = cluster.leader().await;
                let others: Vec<u64> = cluster
                    .ids()
                    .into_iter()
                    .filter(|id| Some(*id) != leader)
                    .collect();
                let to = *others.choose(&mut self.rng).unwrap_or(&1);
                let started = Instant::now();
                match cluster.admin().transfer_leader(Some(to)).await {
                    Ok(now) => format!(
                        "leader transfer n{} -> n{to}: n{now} leads after {} ms",
                        leader.map_or("?".into(), |l| l.to_string()),
                        started.elapsed().as_millis()
                    ),
                    Err(e) => format!("leader transfer to n{to} refused: {e}"),
                }
            }
        };
        Ok(detail)
    }

    /// Cuts links and says which.
    async fn partition(&mut self, cluster: &LocalCluster) -> String {
        let mode = if self.rng.gen_bool(0.5) {
            LinkMode::Drop
        } else {
            LinkMode::Reset
        };
        let mode_name = match mode {
            LinkMode::Drop => "drop",
            _ => "reset",
        };
        let cut = LinkState {
            mode,
            delay: Duration::ZERO,
        };
        let ids = cluster.ids();
        let leader = cluster.leader().await;
        let followers: Vec<u64> = ids.iter().copied().filter(|&i| Some(i) != leader).collect();
        let isolate = |id: u64| {
            for &other in ids.iter().filter(|&&o| o != id) {
                cluster.set_link(id, other, cut);
                cluster.set_link(other, id, cut);
            }
        };
        match self.rng.gen_range(0..4) {
            0 if leader.is_some() => {
                let id = leader.unwrap_or(1);
                isolate(id);
                format!("leader n{id} isolated ({mode_name})")
            }
            0 | 1 => {
                let id = *followers.choose(&mut self.rng).unwrap_or(&1);
                isolate(id);
                format!("n{id} isolated ({mode_name})")
            }
            2 if ids.len() >= 3 => {
                // The bridge reaches both halves; the halves do not reach
                // each other. With the leader on one side, the bridge may
                // elect itself and split the leader's majority.
                let mut shuffled = ids.clone();
                shuffled.shuffle(&mut self.rng);
                let bridge = shuffled.remove(0);
                let (left, right) = shuffled.split_at(shuffled.len() / 2);
                for &a in left {
                    for &b in right {
                        cluster.set_link(a, b, cut);
                        cluster.set_link(b, a, cut);
                    }
                }
                format!("bridge n{bridge} between {left:?} and {right:?} ({mode_name})")
            }
            _ => {
                let from = leader
                    .filter(|_| self.rng.gen_bool(0.5))
                    .unwrap_or_else(|| *ids.choose(&mut self.rng).unwrap_or(&1));
                let others: Vec<u64> = ids.iter().copied().filter(|&i| i != from).collect();
                let to = *others.choose(&mut self.rng).unwrap_or(&1);
                cluster.set_link(from, to, cut);
                format!("one way: n{from} cannot reach n{to} ({mode_name})")
            }
        }
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Figures per fault kind for the report.
pub fn count_by_kind(records: &[FaultRecord]) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for record in records {
        *counts.entry(record.kind.name().to_string()).or_insert(0) += 1;
    }
    counts
}
