//! Limits on what one client may hold open on a node: WatchTasks streams
//! and WaitTask calls, per principal. Each lives for minutes and holds a
//! task and a buffer on the node, so without a cap one client could starve
//! the others. The cap is per node: a client spreading its watches over
//! every node gets the cap on each, which still bounds each node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A caller already holds as many open calls of a kind as it may.
#[derive(Debug)]
pub struct LimitReached {
    what: &'static str,
    setting: &'static str,
    user: String,
    held: usize,
    max_per_user: usize,
}

impl std::fmt::Display for LimitReached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "too many open {}: {} holds {} on this node, the limit is {} ({}); close one first",
            self.what, self.user, self.held, self.max_per_user, self.setting
        )
    }
}

/// The largest request the public API decodes. Every string and list in a
/// request is bounded too (vtask_model::validate), but their product is
/// not; this bounds the whole, and so the size of any one log entry's
/// request.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// Default for `max_watches_per_user`.
pub const DEFAULT_MAX_WATCHES: usize = 64;
/// Default for `max_waits_per_user`.
pub const DEFAULT_MAX_WAITS: usize = 256;

/// Open calls of one kind, counted per principal.
pub struct OpenCalls {
    what: &'static str,
    setting: &'static str,
    max_per_user: usize,
    open: Mutex<HashMap<String, usize>>,
}

/// One open call; dropping it frees the slot.
pub struct Slot {
    calls: Arc<OpenCalls>,
    user: String,
}

impl OpenCalls {
    pub fn new(what: &'static str, setting: &'static str, max_per_user: usize) -> Arc<OpenCalls> {
        Arc::new(OpenCalls {
            what,
            setting,
            max_per_user,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for `user`, or the limit it has reached (RESOURCE_EXHAUSTED
    /// at the door).
    pub fn acquire(self: &Arc<OpenCalls>, user: &str) -> Result<Slot, LimitReached> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let held = open.entry(user.to_string()).or_insert(0);
        if *held >= self.max_per_user {
            return Err(LimitReached {
                what: self.what,
                setting: self.setting,
                user: user.to_string(),
                held: *held,
                max_per_user: self.max_per_user,
            });
        }
        *held += 1;
        Ok(Slot {
            calls: self.clone(),
            user: user.to_string(),
        })
    }

    #[cfg(test)]
    fn held(&self, user: &str) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(user).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.calls.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(held) = open.get_mut(&self.user) {
            *held -= 1;
            if *held == 0 {
                open.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_gets_at_most_the_limit_and_a_closed_slot_is_free_again() {
        let calls = OpenCalls::new("watches", "max_watches_per_user", 2);
        let a = calls.acquire("alice").unwrap();
        let _b = calls.acquire("alice").unwrap();
        let refused = calls.acquire("alice").err().unwrap().to_string();
        assert!(
            refused.contains("alice holds 2 on this node, the limit is 2 (max_watches_per_user)"),
            "{refused}"
        );
        let _other = calls.acquire("bob").unwrap();
        drop(a);
        assert_eq!(calls.held("alice"), 1);
        let _c = calls.acquire("alice").unwrap();
        assert_eq!(calls.held("alice"), 2);
    }
}
