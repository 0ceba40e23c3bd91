//! Work the leader does on its own: ending tasks whose owner lease lapsed
//! (D26). The leader only proposes; apply decides with the entry's time, so a
//! renewal that wins the race makes the proposal a no-op, and a new leader
//! simply picks the work up.
//!
//! A new leader first gives every lease one full time to live: while there
//! was no leader, owners could not renew, and they must not lose their tasks
//! for an election they could not see.

use std::time::{Duration, Instant};

use vtask_model::{Caller, Command};
use vtask_store::Request;

use crate::node::Node;
use crate::proposer::wall_clock;

/// How often the leader looks for lapsed leases.
const LEASE_SCAN: Duration = Duration::from_millis(500);

pub fn start(node: Node) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(LEASE_SCAN);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut leader_since = None;
        loop {
            tick.tick().await;
            if !node.gauges().is_leader {
                leader_since = None;
                continue;
            }
            let since = *leader_since.get_or_insert_with(Instant::now);
            if let Err(e) = lapse_leases(&node, since.elapsed()).await {
                tracing::warn!("lease scan: {e}");
            }
        }
    });
}

async fn lapse_leases(node: &Node, leading_for: Duration) -> anyhow::Result<()> {
    let now = wall_clock();
    let read = node.read.clone();
    let lapsed = tokio::task::spawn_blocking(move || read.lapsed_leases(now)).await??;
    for (key, ttl_millis) in lapsed {
        if leading_for < Duration::from_millis(ttl_millis) {
            continue;
        }
        let request = Request {
            client: None,
            caller: Caller::System,
            command: Command::LapseLease {
                task: key.to_string(),
            },
        };
        match node.submit(request).await {
            Ok((Ok(_), _)) => tracing::info!(task = %key, "owner lease lapsed; task failed"),
            // Renewed or finished meanwhile: apply said no, which is fine.
            Ok((Err(fault), _)) => tracing::debug!(task = %key, %fault, "lease lapse refused"),
            Err(e) => tracing::warn!(task = %key, "proposing a lease lapse: {e}"),
        }
    }
    Ok(())
}
