//! Deliberately broken storage behaviour for `vtask chaos`'s proof that its
//! checker catches real bugs (issue #5). Debug builds only: this module and
//! every use of it are `#[cfg(debug_assertions)]`. The store reads no
//! environment; `vtaskd` plants a bug here at startup when asked to.

use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    /// The state machine ignores the session table: a retry with the same
    /// client id and seq is applied again (breaks D27).
    NoDedup,
    /// The log store acknowledges an append before any fsync and writes the
    /// log without the WAL, so a SIGKILL loses acknowledged entries.
    AckBeforeFsync,
}

static NO_DEDUP: AtomicBool = AtomicBool::new(false);
static ACK_BEFORE_FSYNC: AtomicBool = AtomicBool::new(false);

fn flag(bug: Bug) -> &'static AtomicBool {
    match bug {
        Bug::NoDedup => &NO_DEDUP,
        Bug::AckBeforeFsync => &ACK_BEFORE_FSYNC,
    }
}

/// Switches `bug` on for the rest of the process.
pub fn plant(bug: Bug) {
    flag(bug).store(true, Ordering::Relaxed);
}

pub(crate) fn active(bug: Bug) -> bool {
    flag(bug).load(Ordering::Relaxed)
}
