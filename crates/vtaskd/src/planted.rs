//! Deliberately broken behaviour, so that `vtask chaos` can show that its
//! checker catches the bugs it claims to catch (issue #5). This module and
//! every use of it exist in debug builds only (`#[cfg(debug_assertions)]`):
//! a release build cannot be switched into any of these modes.
//!
//! `VTASKD_PLANTED_BUG` names one bug, read once at startup:
//! - `stale-follower-reads`: a follower answers linearizable reads without
//!   the ReadIndex barrier (`Node::read_barrier`);
//! - `no-dedup`: the state machine ignores the session table, so a retried
//!   request is applied again (`vtask_store::planted`);
//! - `ack-before-fsync`: the log store acknowledges appends at once and
//!   writes the log without the WAL, so a crash of every node loses
//!   acknowledged entries (`vtask_store::planted`).

use std::sync::atomic::{AtomicBool, Ordering};

pub const ENV: &str = "VTASKD_PLANTED_BUG";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    StaleFollowerReads,
}

static STALE_FOLLOWER_READS: AtomicBool = AtomicBool::new(false);

pub fn active(bug: Bug) -> bool {
    match bug {
        Bug::StaleFollowerReads => STALE_FOLLOWER_READS.load(Ordering::Relaxed),
    }
}

/// Switches on the bug `VTASKD_PLANTED_BUG` names; returns its name.
pub fn enable_from_env() -> anyhow::Result<Option<String>> {
    let Some(name) = std::env::var_os(ENV) else {
        return Ok(None);
    };
    let name = name.to_string_lossy().into_owned();
    match name.as_str() {
        "" => return Ok(None),
        "stale-follower-reads" => STALE_FOLLOWER_READS.store(true, Ordering::Relaxed),
        "no-dedup" => vtask_store::planted::plant(vtask_store::planted::Bug::NoDedup),
        "ack-before-fsync" => {
            vtask_store::planted::plant(vtask_store::planted::Bug::AckBeforeFsync)
        }
        other => anyhow::bail!(
            "{ENV}={other:?} names no planted bug (stale-follower-reads, no-dedup, ack-before-fsync)"
        ),
    }
    Ok(Some(name))
}
