//! Work the leader does on its own, by proposing entries like any client:
//! ending tasks whose owner lease lapsed (D26), removing finished tasks after
//! the retention period (D16) and destroying idle collectors (D24). The
//! leader only proposes; apply decides with the entry's time, so a renewal
//! or a use that wins the race makes the proposal a no-op, and a new leader
//! simply picks the work up.
//!
//! A new leader first gives every lease one full time to live: while there
//! was no leader, owners could not renew, and they must not lose their tasks
//! for an election they could not see. For the same reason it gives every
//! collector one full idle period.

use std::time::{Duration, Instant};

use vtask_model::{Caller, Command, Reply, Timestamp};
use vtask_store::Request;

use crate::node::Node;
use crate::proposer::wall_clock;

/// How often the leader looks for lapsed leases.
const LEASE_SCAN: Duration = Duration::from_millis(500);
/// How often the leader looks for expired tasks and idle collectors.
const EXPIRY_SCAN: Duration = Duration::from_secs(5);
/// Most tasks one retention entry removes, so entries stay small.
const EXPIRE_BATCH: usize = 256;

pub fn start(node: Node) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(LEASE_SCAN);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut leader_since = None;
        let mut last_expiry = None::<Instant>;
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
            if last_expiry.is_some_and(|t| t.elapsed() < EXPIRY_SCAN) {
                continue;
            }
            last_expiry = Some(Instant::now());
            if let Err(e) = expire_tasks(&node).await {
                tracing::warn!("retention: {e}");
            }
            if since.elapsed() >= node.settings.collector_idle {
                expire_collectors(&node).await;
            }
        }
    });
}

fn system(command: Command) -> Request {
    Request {
        client: None,
        caller: Caller::System,
        command,
    }
}

async fn lapse_leases(node: &Node, leading_for: Duration) -> anyhow::Result<()> {
    let now = wall_clock();
    let read = node.read.clone();
    let lapsed = tokio::task::spawn_blocking(move || read.lapsed_leases(now)).await??;
    for (key, ttl_millis) in lapsed {
        if leading_for < Duration::from_millis(ttl_millis) {
            continue;
        }
        let command = Command::LapseLease {
            task: key.to_string(),
        };
        match node.submit(system(command)).await {
            Ok((Ok(_), _)) => tracing::info!(task = %key, "owner lease lapsed; task failed"),
            // Renewed or finished meanwhile: apply said no, which is fine.
            Ok((Err(fault), _)) => tracing::debug!(task = %key, %fault, "lease lapse refused"),
            Err(e) => tracing::warn!(task = %key, "proposing a lease lapse: {e}"),
        }
    }
    Ok(())
}

/// D16: proposes the removal of tasks that finished more than the retention
/// period ago, a bounded batch per entry.
async fn expire_tasks(node: &Node) -> anyhow::Result<()> {
    let retention = node.settings.retention;
    let cutoff = Timestamp::from_micros(
        wall_clock()
            .as_micros()
            .saturating_sub(i64::try_from(retention.as_micros()).unwrap_or(i64::MAX)),
    );
    loop {
        let read = node.read.clone();
        let due = tokio::task::spawn_blocking(move || read.completed_before(cutoff, EXPIRE_BATCH))
            .await??;
        if due.is_empty() {
            return Ok(());
        }
        let full = due.len() == EXPIRE_BATCH;
        let command = Command::ExpireTasks {
            tasks: due,
            completed_before: cutoff,
        };
        match node.submit(system(command)).await? {
            (Ok(Reply::Expired { tasks }), _) => {
                tracing::info!(
                    count = tasks.len(),
                    "finished tasks removed after retention"
                );
                node.metrics.expired(tasks.len() as u64);
                if tasks.is_empty() || !full {
                    return Ok(());
                }
            }
            (Ok(_), _) => return Ok(()),
            (Err(fault), _) => anyhow::bail!("ExpireTasks refused: {fault}"),
        }
    }
}

/// D24: destroys collectors nobody used for the idle period.
async fn expire_collectors(node: &Node) {
    let idle_millis = node.settings.collector_idle.as_millis() as u64;
    let now = wall_clock();
    let read = node.read.clone();
    let any_idle = tokio::task::spawn_blocking(move || read.collectors())
        .await
        .ok()
        .and_then(Result::ok)
        .is_some_and(|all| {
            all.iter()
                .any(|c| c.last_used.saturating_add_millis(idle_millis) < now)
        });
    if !any_idle {
        return;
    }
    match node
        .submit(system(Command::ExpireCollectors { idle_millis }))
        .await
    {
        Ok((Ok(Reply::CollectorsExpired { collectors }), _)) => {
            for id in collectors {
                tracing::info!(collector = %id, "idle collector destroyed");
            }
        }
        Ok((outcome, _)) => tracing::warn!(?outcome, "ExpireCollectors"),
        Err(e) => tracing::warn!("proposing collector expiry: {e}"),
    }
}
