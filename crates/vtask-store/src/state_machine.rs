//! The task state machine: openraft's `RaftStateMachine` applying each
//! committed batch through `vtask_model::apply`, and the read view the API
//! serves from.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};
use rocksdb::{Direction, IteratorMode, WriteBatch};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use vtask_model::{
    Change, Collector, CollectorId, Counters, EntryContext, MethodFault, Outcome, Reply, State,
    Task, TaskFilterSpec, TaskInfo, TaskKey, TaskTable, Timestamp,
};

use crate::db::{
    decode, encode, u64_from_key, u64_key, Store, StoreError, CF_CHANGES, CF_COLLECTORS,
    CF_HISTORY, CF_INDEX, CF_REPLIES, CF_SESSIONS, CF_SM_META, CF_TASKS, STATE_CFS,
};
use crate::snapshot;
use crate::types::{
    BatchReply, ChangeKind, ChangeRecord, ClientRef, Request, Session, StoredReply,
};
use crate::{NodeId, TypeConfig};

type StorageResult<T> = Result<T, StorageError<NodeId>>;

/// A client session not seen for this long (by entry time) is forgotten, and
/// a retry after that is applied as new (D27).
pub const SESSION_TTL_MILLIS: u64 = 60 * 60 * 1000;
/// How many recent replies a session keeps, so one client may have this many
/// requests in flight at once.
pub const SESSION_WINDOW: usize = 128;

/// Above this many sessions in memory, the state machine forgets them all
/// (they are read back from RocksDB on their next request).
const MAX_CACHED_SESSIONS: usize = 16_384;
/// Every this many log indexes, apply expires idle sessions.
const SESSION_SWEEP_EVERY: u64 = 1024;

/// What has been applied, published to readers after every apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppliedState {
    pub index: u64,
    pub revision: u64,
}

/// The state machine half of the store.
pub struct StateMachine {
    store: Store,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, openraft::BasicNode>,
    counters: Counters,
    revision: u64,
    /// Every collector, kept in memory: apply consults them all on each task
    /// creation and state change (D21), and they are few.
    collectors: BTreeMap<CollectorId, Collector>,
    /// Sessions read or written since the start (or the last reload), as
    /// RocksDB holds them: a session is read and rewritten by every request
    /// of its client, and decoding it each time was a large part of apply.
    sessions: HashMap<String, Session>,
    applied_tx: watch::Sender<AppliedState>,
    /// Serializes snapshot builds with each other.
    snapshot_lock: Arc<Mutex<()>>,
}

impl StateMachine {
    pub(crate) fn new(store: Store) -> Result<StateMachine, StoreError> {
        let last_applied: Option<LogId<NodeId>> = store.get(CF_SM_META, b"last_applied")?.flatten();
        let membership = store.get(CF_SM_META, b"membership")?.unwrap_or_default();
        let counters = store.get(CF_SM_META, b"counters")?.unwrap_or_default();
        let revision = store.get(CF_SM_META, b"revision")?.unwrap_or_default();
        let mut collectors = BTreeMap::new();
        for item in store
            .db
            .iterator_cf(store.cf(CF_COLLECTORS), IteratorMode::Start)
        {
            let (_, value) = item.map_err(|e| store.rocks(e))?;
            let collector: Collector = decode(CF_COLLECTORS, &value)?;
            collectors.insert(collector.id, collector);
        }
        let applied = AppliedState {
            index: last_applied.map_or(0, |id| id.index),
            revision,
        };
        let (applied_tx, _) = watch::channel(applied);
        Ok(StateMachine {
            store,
            last_applied,
            membership,
            counters,
            revision,
            collectors,
            sessions: HashMap::new(),
            applied_tx,
            snapshot_lock: Arc::new(Mutex::new(())),
        })
    }

    /// A read-only view for the API, valid for the life of the node.
    pub fn read_view(&self) -> ReadView {
        ReadView {
            store: self.store.clone(),
            applied: self.applied_tx.subscribe(),
        }
    }

    fn reload(&mut self) -> Result<(), StoreError> {
        let fresh = StateMachine::new(self.store.clone())?;
        self.last_applied = fresh.last_applied;
        self.membership = fresh.membership;
        self.counters = fresh.counters;
        self.revision = fresh.revision;
        self.collectors = fresh.collectors;
        self.sessions = fresh.sessions;
        self.publish();
        Ok(())
    }

    fn publish(&self) {
        let state = AppliedState {
            index: self.last_applied.map_or(0, |id| id.index),
            revision: self.revision,
        };
        self.applied_tx.send_replace(state);
    }

    fn apply_entries(
        &mut self,
        entries: Vec<Entry<TypeConfig>>,
    ) -> Result<Vec<BatchReply>, StoreError> {
        // The batch works on the collectors and sessions themselves, not a
        // copy; if it fails, nothing was written and the store still holds
        // the truth.
        let collectors = std::mem::take(&mut self.collectors);
        let sessions = std::mem::take(&mut self.sessions);
        self.apply_batch(entries, collectors, sessions)
            .inspect_err(|_| {
                if let Err(error) = self.reload() {
                    tracing::error!(%error, "reloading the state machine after a failed apply");
                }
            })
    }

    fn apply_batch(
        &mut self,
        entries: Vec<Entry<TypeConfig>>,
        collectors: BTreeMap<CollectorId, Collector>,
        sessions: HashMap<String, Session>,
    ) -> Result<Vec<BatchReply>, StoreError> {
        let mut pending = Pending::new(
            &self.store,
            self.counters,
            self.revision,
            collectors,
            sessions,
        );
        let mut replies = Vec::with_capacity(entries.len());
        for entry in entries {
            let log_id = entry.log_id;
            match entry.payload {
                EntryPayload::Blank => replies.push(BatchReply::default()),
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(log_id), membership);
                    pending.batch.put_cf(
                        self.store.cf(CF_SM_META),
                        b"membership",
                        encode(&self.membership),
                    );
                    replies.push(BatchReply::default());
                }
                EntryPayload::Normal(batch) => {
                    let ctx = EntryContext {
                        time: batch.time,
                        term: log_id.leader_id.term,
                        index: log_id.index,
                    };
                    let outcomes = batch
                        .requests
                        .iter()
                        .map(|request| pending.apply(request, &ctx))
                        .collect::<Result<Vec<_>, _>>()?;
                    replies.push(BatchReply { outcomes });
                    if log_id.index % SESSION_SWEEP_EVERY == 0 {
                        pending.expire_sessions(batch.time)?;
                    }
                }
            }
            self.last_applied = Some(log_id);
        }
        let meta = self.store.cf(CF_SM_META);
        let (mut batch, counters, revision, collectors, mut sessions) = pending.finish()?;
        batch.put_cf(meta, b"last_applied", encode(&self.last_applied));
        batch.put_cf(meta, b"counters", encode(&counters));
        batch.put_cf(meta, b"revision", encode(&revision));
        // One WriteBatch: tasks, indexes, sessions, counters and last_applied
        // change together or not at all.
        self.store
            .db
            .write(batch)
            .map_err(|e| self.store.rocks(e))?;
        self.counters = counters;
        self.revision = revision;
        self.collectors = collectors;
        if sessions.len() > MAX_CACHED_SESSIONS {
            // Many clients at once (a CLI call is a client of its own): keep
            // memory bounded; RocksDB still has every session.
            sessions.clear();
        }
        self.sessions = sessions;
        self.publish();
        Ok(replies)
    }
}

/// The writes of one `apply` call, with a view of the state that includes them.
struct Pending<'a> {
    store: &'a Store,
    batch: WriteBatch,
    /// Ordered, so scans can merge it with RocksDB's key order.
    tasks: BTreeMap<TaskKey, Option<Task>>,
    /// The state machine's session cache, with this batch's changes.
    sessions: HashMap<String, Session>,
    /// Replies stored by this batch, for a retry inside the same batch.
    replies: HashMap<Vec<u8>, Outcome>,
    /// `sm_meta/pruned_through` once this batch has read or moved it.
    pruned_through: Option<u64>,
    counters: Counters,
    revision: u64,
    collectors: BTreeMap<CollectorId, Collector>,
    /// A read error inside `TaskTable::task`, which cannot return one; the
    /// apply fails with it once the model returns.
    error: RefCell<Option<StoreError>>,
}

impl<'a> Pending<'a> {
    fn new(
        store: &'a Store,
        counters: Counters,
        revision: u64,
        collectors: BTreeMap<CollectorId, Collector>,
        sessions: HashMap<String, Session>,
    ) -> Pending<'a> {
        Pending {
            store,
            batch: WriteBatch::default(),
            tasks: BTreeMap::new(),
            sessions,
            replies: HashMap::new(),
            pruned_through: None,
            counters,
            revision,
            collectors,
            error: RefCell::new(None),
        }
    }

    fn apply(&mut self, request: &Request, ctx: &EntryContext) -> Result<Outcome, StoreError> {
        if let Some(client) = &request.client {
            let session = self.session(&client.id)?;
            let stored = session.seqs.contains(&client.seq);
            #[cfg(debug_assertions)]
            let stored = stored && !crate::planted::active(crate::planted::Bug::NoDedup);
            if stored {
                // D27: a retry gets the stored reply and is not applied again.
                return self.reply(&client.id, client.seq);
            }
            if session.seqs.len() >= SESSION_WINDOW
                && session
                    .seqs
                    .first()
                    .is_some_and(|&oldest| client.seq < oldest)
            {
                return Ok(Err(MethodFault::invalid_argument(
                    "header.seq",
                    format!(
                        "A specified parameter was not correct: sequence number {} of client {} is older than the {SESSION_WINDOW} replies kept for it",
                        client.seq, client.id
                    ),
                )));
            }
        }
        let applied = vtask_model::apply(&*self, &request.caller, &request.command, ctx);
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        let reply_info = applied.outcome.as_ref().ok().and_then(Reply::info);
        let mut reply_change = None;
        for change in applied.changes {
            if let Some(found) = self.write_change(change, request, ctx, reply_info) {
                reply_change = Some(found);
            }
        }
        self.counters = applied.counters;
        if let Some(client) = &request.client {
            let stored = match reply_change {
                Some((task, revision)) => StoredReply::Change {
                    task: task.0,
                    revision,
                },
                None => StoredReply::Outcome(applied.outcome.clone()),
            };
            self.store_reply(client, ctx.time, &applied.outcome, &stored);
        }
        Ok(applied.outcome)
    }

    /// A client's session, read into the cache if it is not there yet.
    fn session(&mut self, id: &str) -> Result<&mut Session, StoreError> {
        if !self.sessions.contains_key(id) {
            let stored = self
                .store
                .get(CF_SESSIONS, id.as_bytes())?
                .unwrap_or_default();
            self.sessions.insert(id.to_owned(), stored);
        }
        Ok(self
            .sessions
            .get_mut(id)
            .expect("the session was just inserted"))
    }

    /// Keeps `outcome` (stored as `stored`) as the reply to `client`'s
    /// request and forgets the oldest reply beyond the window.
    fn store_reply(
        &mut self,
        client: &ClientRef,
        time: Timestamp,
        outcome: &Outcome,
        stored: &StoredReply,
    ) {
        let replies = self.store.cf(CF_REPLIES);
        let key = reply_key(&client.id, client.seq);
        self.batch.put_cf(replies, &key, encode(stored));
        self.replies.insert(key, outcome.clone());
        let session = self
            .sessions
            .get_mut(&client.id)
            .expect("apply read the session first");
        session.seqs.insert(client.seq);
        while session.seqs.len() > SESSION_WINDOW {
            if let Some(oldest) = session.seqs.pop_first() {
                let key = reply_key(&client.id, oldest);
                self.batch.delete_cf(replies, &key);
                self.replies.remove(&key);
            }
        }
        session.last_seen = time;
        self.batch.put_cf(
            self.store.cf(CF_SESSIONS),
            client.id.as_bytes(),
            encode(&*session),
        );
    }

    /// The reply stored for a client's sequence number.
    fn reply(&self, id: &str, seq: u64) -> Result<Outcome, StoreError> {
        let key = reply_key(id, seq);
        if let Some(outcome) = self.replies.get(&key) {
            return Ok(outcome.clone());
        }
        let stored: StoredReply = self.store.get(CF_REPLIES, &key)?.ok_or_else(|| {
            StoreError::Missing(format!("the reply to {id} #{seq}, listed in its session"))
        })?;
        match stored {
            StoredReply::Outcome(outcome) => Ok(outcome),
            StoredReply::Change { task, revision } => {
                match self
                    .store
                    .get::<ChangeRecord>(CF_CHANGES, &u64_key(revision))?
                {
                    Some(record) if record.info.key.0 == task => {
                        Ok(Ok(Reply::Task { info: record.info }))
                    }
                    Some(_) => Err(StoreError::Missing(format!(
                        "the change record at revision {revision} of task-{task}, the reply to {id} #{seq}"
                    ))),
                    // Retention removed the task and its history since
                    // (D16): the retry is answered as any call about the
                    // task now is, with ManagedObjectNotFound (expired).
                    None => {
                        let fault = vtask_model::lookup(self, &TaskKey(task).to_string())
                            .err()
                            .unwrap_or_else(|| {
                                MethodFault::invalid_argument(
                                    "header.seq",
                                    format!("the reply to {id} #{seq} is no longer kept"),
                                )
                            });
                        Ok(Err(fault))
                    }
                }
            }
        }
    }

    /// Writes one change of `request`. For a task change whose new state is
    /// `reply_info`, returns the task and the revision of its change record,
    /// which the stored reply then refers to.
    fn write_change(
        &mut self,
        change: Change,
        request: &Request,
        ctx: &EntryContext,
        reply_info: Option<&TaskInfo>,
    ) -> Option<(TaskKey, u64)> {
        let (kind, before, after) = match change {
            Change::PutCollector(collector) => {
                self.batch.put_cf(
                    self.store.cf(CF_COLLECTORS),
                    u64_key(collector.id.0),
                    encode(&collector),
                );
                self.collectors.insert(collector.id, collector);
                return None;
            }
            Change::RemoveCollector(id) => {
                self.batch
                    .delete_cf(self.store.cf(CF_COLLECTORS), u64_key(id.0));
                self.collectors.remove(&id);
                return None;
            }
            Change::Put {
                before: None,
                after,
            } => (ChangeKind::Created, None, Some(after)),
            Change::Put {
                before: Some(before),
                after,
            } => (ChangeKind::Updated, Some(before), Some(after)),
            Change::Remove { task } => (ChangeKind::Removed, Some(task), None),
        };
        // Only task changes are numbered: watchers and histories follow tasks.
        self.revision += 1;
        let tasks = self.store.cf(CF_TASKS);
        let index = self.store.cf(CF_INDEX);
        // Only the index entries that change: a progress update keeps its
        // state, so it touches none.
        let old_keys = before.as_ref().map(index_keys).unwrap_or_default();
        let new_keys = after.as_ref().map(index_keys).unwrap_or_default();
        for k in old_keys.iter().filter(|k| !new_keys.contains(k)) {
            self.batch.delete_cf(index, k);
        }
        for k in new_keys.iter().filter(|k| !old_keys.contains(k)) {
            self.batch.put_cf(index, k, []);
        }
        let last = match (&after, &before) {
            (Some(task), _) | (None, Some(task)) => task,
            (None, None) => return None,
        };
        let key = last.info.key;
        let refers = after.is_some() && reply_info == Some(&last.info);
        let record = ChangeRecord {
            revision: self.revision,
            kind,
            info: last.info.clone(),
            method: request.command.method().to_string(),
            actor: request.caller.name().map(str::to_string),
            time: ctx.time,
            term: ctx.term,
            index: ctx.index,
        };
        match &after {
            Some(task) => {
                self.batch.put_cf(tasks, u64_key(key.0), encode(task));
            }
            None => self.batch.delete_cf(tasks, u64_key(key.0)),
        }
        self.batch.put_cf(
            self.store.cf(CF_CHANGES),
            u64_key(self.revision),
            encode(&record),
        );
        if after.is_some() {
            self.batch.put_cf(
                self.store.cf(CF_HISTORY),
                history_key(key, self.revision),
                [],
            );
        } else {
            // Retention (D16) takes the task's history with it: only the
            // REMOVED record stays, for watchers. Storage stays bounded by
            // the tasks that exist.
            if let Err(error) = self.prune_history(key) {
                self.note(error);
            }
        }
        self.tasks.insert(key, after);
        refers.then_some((key, self.revision))
    }

    /// Deletes the history and the change records of a removed task, and
    /// moves `pruned_through` past them: a watcher that resumes at or below
    /// it may have missed one, so it gets a resync instead.
    fn prune_history(&mut self, key: TaskKey) -> Result<(), StoreError> {
        let history = self.store.cf(CF_HISTORY);
        let mut pruned = match self.pruned_through {
            Some(pruned) => pruned,
            None => self
                .store
                .get(CF_SM_META, b"pruned_through")?
                .unwrap_or_default(),
        };
        for revision in task_revisions(self.store, key)? {
            self.batch.delete_cf(history, history_key(key, revision));
            self.batch
                .delete_cf(self.store.cf(CF_CHANGES), u64_key(revision));
            pruned = pruned.max(revision);
        }
        self.batch.put_cf(
            self.store.cf(CF_SM_META),
            b"pruned_through",
            encode(&pruned),
        );
        self.pruned_through = Some(pruned);
        Ok(())
    }

    /// Forgets sessions idle for longer than [`SESSION_TTL_MILLIS`] by entry
    /// time: every replica does this at the same log index with the same
    /// time, so they stay identical.
    fn expire_sessions(&mut self, now: Timestamp) -> Result<(), StoreError> {
        let cf = self.store.cf(CF_SESSIONS);
        for item in self.store.db.iterator_cf(cf, IteratorMode::Start) {
            let (key, value) = item.map_err(|e| self.store.rocks(e))?;
            let id = String::from_utf8_lossy(&key).into_owned();
            let session = match self.sessions.remove(&id) {
                Some(session) => session,
                None => decode::<Session>(CF_SESSIONS, &value)?,
            };
            if session.last_seen.saturating_add_millis(SESSION_TTL_MILLIS) < now {
                self.batch.delete_cf(cf, &key);
                for seq in &session.seqs {
                    let reply = reply_key(&id, *seq);
                    self.batch.delete_cf(self.store.cf(CF_REPLIES), &reply);
                    self.replies.remove(&reply);
                }
            } else {
                self.sessions.insert(id, session);
            }
        }
        Ok(())
    }

    #[allow(clippy::type_complexity)]
    fn finish(
        self,
    ) -> Result<
        (
            WriteBatch,
            Counters,
            u64,
            BTreeMap<CollectorId, Collector>,
            HashMap<String, Session>,
        ),
        StoreError,
    > {
        match self.error.into_inner() {
            Some(error) => Err(error),
            None => Ok((
                self.batch,
                self.counters,
                self.revision,
                self.collectors,
                self.sessions,
            )),
        }
    }

    fn note(&self, error: StoreError) {
        self.error.borrow_mut().get_or_insert(error);
    }
}

impl TaskTable for Pending<'_> {
    fn task(&self, key: TaskKey) -> Option<Task> {
        if let Some(pending) = self.tasks.get(&key) {
            return pending.clone();
        }
        match self.store.get(CF_TASKS, &u64_key(key.0)) {
            Ok(task) => task,
            Err(error) => {
                self.note(error);
                None
            }
        }
    }

    fn counters(&self) -> Counters {
        self.counters
    }

    /// RocksDB's tasks merged with this batch's writes, in key order.
    fn scan(&self, from: TaskKey, ascending: bool, visit: &mut dyn FnMut(&Task) -> bool) {
        let start = u64_key(from.0);
        let direction = if ascending {
            Direction::Forward
        } else {
            Direction::Reverse
        };
        let mut stored = self
            .store
            .db
            .iterator_cf(
                self.store.cf(CF_TASKS),
                IteratorMode::From(&start, direction),
            )
            .map(|item| -> Result<(TaskKey, Task), StoreError> {
                let (_, value) = item.map_err(|e| self.store.rocks(e))?;
                let task: Task = decode(CF_TASKS, &value)?;
                Ok((task.info.key, task))
            })
            .peekable();
        let mut pending: Box<dyn Iterator<Item = (&TaskKey, &Option<Task>)>> = if ascending {
            Box::new(self.tasks.range(from..))
        } else {
            Box::new(self.tasks.range(..=from).rev())
        };
        let mut next_pending = pending.next();
        loop {
            let next_stored = match stored.peek() {
                Some(Ok((key, _))) => Some(*key),
                Some(Err(_)) => {
                    if let Some(Err(error)) = stored.next() {
                        self.note(error);
                    }
                    return;
                }
                None => None,
            };
            // The nearer of the two keys in scan order; the batch's version
            // wins when both hold the same key.
            let take_pending = match (next_pending, next_stored) {
                (None, None) => return,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((p, _)), Some(s)) => {
                    if *p == s {
                        stored.next();
                    }
                    if ascending {
                        *p <= s
                    } else {
                        *p >= s
                    }
                }
            };
            let keep_going = if take_pending {
                let (_, version) = next_pending.take().expect("chosen above");
                next_pending = pending.next();
                match version {
                    Some(task) => visit(task),
                    None => true,
                }
            } else {
                match stored.next() {
                    Some(Ok((_, task))) => visit(&task),
                    _ => return,
                }
            };
            if !keep_going {
                return;
            }
        }
    }

    fn collector(&self, id: CollectorId) -> Option<Collector> {
        self.collectors.get(&id).cloned()
    }

    fn collectors(&self) -> Vec<Collector> {
        self.collectors.values().cloned().collect()
    }
}

fn state_byte(state: State) -> u8 {
    match state {
        State::Queued => 0,
        State::Running => 1,
        State::Success => 2,
        State::Error => 3,
    }
}

/// The secondary index entries of a task: `s` state key (ListTasks by
/// state); for finished tasks `c` completeTime key, which retention walks in
/// time order (D16); for unfinished tasks with an owner lease `l` expiry key,
/// which the leader walks for lapsed leases (D26).
fn index_keys(task: &Task) -> Vec<Vec<u8>> {
    let number = task.info.key.0;
    let mut by_state = vec![b's', state_byte(task.info.state)];
    by_state.extend_from_slice(&u64_key(number));
    let mut keys = vec![by_state];
    if let Some(complete) = task.info.complete_time {
        keys.push(time_key(b'c', complete, number));
    }
    if let Some(lease) = task
        .lease
        .as_ref()
        .filter(|_| !task.info.state.is_terminal())
    {
        keys.push(time_key(b'l', lease.expires_at, number));
    }
    keys
}

/// `tag`, a time as an order-preserving u64, task number.
fn time_key(tag: u8, time: Timestamp, number: u64) -> Vec<u8> {
    let mut k = vec![tag];
    k.extend_from_slice(&((time.as_micros() as u64) ^ (1 << 63)).to_be_bytes());
    k.extend_from_slice(&u64_key(number));
    k
}

/// Client id, a 0 byte (ids are names, without one), sequence number.
fn reply_key(id: &str, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(id.len() + 9);
    k.extend_from_slice(id.as_bytes());
    k.push(0);
    k.extend_from_slice(&u64_key(seq));
    k
}

/// The revisions of every stored change of one task, oldest first (the
/// `history` family's keys under the task's prefix).
fn task_revisions(store: &Store, key: TaskKey) -> Result<Vec<u64>, StoreError> {
    let prefix = u64_key(key.0);
    let mut revisions = Vec::new();
    for item in store.db.iterator_cf(
        store.cf(CF_HISTORY),
        IteratorMode::From(&prefix, Direction::Forward),
    ) {
        let (k, _) = item.map_err(|e| store.rocks(e))?;
        if !k.starts_with(&prefix) {
            break;
        }
        revisions.extend(k.get(8..).and_then(u64_from_key));
    }
    Ok(revisions)
}

fn history_key(key: TaskKey, revision: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&u64_key(key.0));
    k[8..].copy_from_slice(&u64_key(revision));
    k
}

fn read_sm(e: StoreError) -> StorageError<NodeId> {
    StorageIOError::read_state_machine(AnyError::new(&e)).into()
}

fn write_sm(e: StoreError) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(AnyError::new(&e)).into()
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> StorageResult<(
        Option<LogId<NodeId>>,
        StoredMembership<NodeId, openraft::BasicNode>,
    )> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<BatchReply>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let started = std::time::Instant::now();
        let entries: Vec<_> = entries.into_iter().collect();
        let replies = self.apply_entries(entries).map_err(write_sm);
        crate::latency::APPLY.record(started.elapsed());
        replies
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            store: self.store.clone(),
            lock: self.snapshot_lock.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<tokio::fs::File>> {
        let path = self.store.snapshot_dir().join("receiving.snap");
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, AnyError::new(&e)))?;
        Ok(Box::new(file))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        snapshot: Box<tokio::fs::File>,
    ) -> StorageResult<()> {
        let file = snapshot.into_std().await;
        let store = self.store.clone();
        let meta = meta.clone();
        let signature = meta.signature();
        tokio::task::spawn_blocking(move || snapshot::install(&store, &meta, file))
            .await
            .map_err(|e| {
                StorageIOError::write_snapshot(Some(signature.clone()), AnyError::error(e))
            })?
            .map_err(|e| StorageIOError::write_snapshot(Some(signature), AnyError::new(&e)))?;
        self.reload().map_err(read_sm)
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        snapshot::current(&self.store)
            .await
            .map_err(|e| StorageIOError::read_snapshot(None, AnyError::new(&e)).into())
    }
}

/// Builds a snapshot from a RocksDB point-in-time view.
pub struct SnapshotBuilder {
    store: Store,
    lock: Arc<Mutex<()>>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let store = self.store.clone();
        let lock = self.lock.clone();
        tokio::task::spawn_blocking(move || {
            let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
            snapshot::build(&store)
        })
        .await
        .map_err(|e| StorageIOError::write_snapshot(None, AnyError::error(e)))?
        .map_err(|e| StorageIOError::write_snapshot(None, AnyError::new(&e)))?;
        match snapshot::current(&self.store).await {
            Ok(Some(snapshot)) => Ok(snapshot),
            Ok(None) => Err(StorageIOError::read_snapshot(
                None,
                AnyError::error("snapshot vanished after build"),
            )
            .into()),
            Err(e) => Err(StorageIOError::read_snapshot(None, AnyError::new(&e)).into()),
        }
    }
}

/// A point-in-time view of the store.
type View<'a> = rocksdb::SnapshotWithThreadMode<'a, rocksdb::DB>;

/// Read access to the applied state, for the API. Reads see only what is
/// applied; linearizability is the caller's business (ReadIndex first).
#[derive(Clone)]
pub struct ReadView {
    store: Store,
    applied: watch::Receiver<AppliedState>,
}

impl ReadView {
    pub fn task(&self, key: TaskKey) -> Result<Option<Task>, StoreError> {
        self.store.get(CF_TASKS, &u64_key(key.0))
    }

    /// Looks a task key up with the model's not-found rules (D16).
    pub fn lookup(&self, key: &str) -> Result<Result<Task, MethodFault>, StoreError> {
        if let Some(task) = TaskKey::parse(key)
            .map(|k| self.task(k))
            .transpose()?
            .flatten()
        {
            return Ok(Ok(task));
        }
        let counters = self.store.get(CF_SM_META, b"counters")?.unwrap_or_default();
        Ok(vtask_model::lookup(&Absent { counters }, key))
    }

    pub fn applied(&self) -> AppliedState {
        *self.applied.borrow()
    }

    /// Waits until at least `index` is applied.
    pub async fn wait_applied(&self, index: u64) -> AppliedState {
        let mut rx = self.applied.clone();
        let reached = rx.wait_for(|s| s.index >= index).await.map(|state| *state);
        // Err: the state machine is gone (shutdown); report what we last saw.
        reached.unwrap_or_else(|_| *rx.borrow())
    }

    /// A receiver that changes on every apply.
    pub fn subscribe(&self) -> watch::Receiver<AppliedState> {
        self.applied.clone()
    }

    /// Tasks after task number `after` that match `filter`, oldest first, at
    /// most `limit`. A filter on states walks the state index, so a page of
    /// running tasks costs the same among a million finished ones.
    pub fn scan(
        &self,
        after: u64,
        limit: usize,
        filter: &TaskFilterSpec,
    ) -> Result<Vec<Task>, StoreError> {
        if filter.state.is_empty() {
            let from = u64_key(after.saturating_add(1));
            let tasks = self.store.db.iterator_cf(
                self.store.cf(CF_TASKS),
                IteratorMode::From(&from, Direction::Forward),
            );
            return collect_tasks(&self.store, tasks, limit, |task| {
                filter.matches(&task.info).then_some(task)
            });
        }
        self.by_state(&self.store.db.snapshot(), after, limit, filter)
    }

    /// `scan` with a state filter, in `view`: one cursor per selected state
    /// on the state index, merged by task number.
    fn by_state(
        &self,
        view: &View<'_>,
        after: u64,
        limit: usize,
        filter: &TaskFilterSpec,
    ) -> Result<Vec<Task>, StoreError> {
        let index = self.store.cf(CF_INDEX);
        let mut states: Vec<State> = filter.state.clone();
        states.sort_by_key(|s| state_byte(*s));
        states.dedup();
        let mut cursors = Vec::new();
        for state in states {
            let prefix = [b's', state_byte(state)];
            let mut from = prefix.to_vec();
            from.extend_from_slice(&u64_key(after.saturating_add(1)));
            let iter = view
                .iterator_cf(index, IteratorMode::From(&from, Direction::Forward))
                .map(|item| item.map(|(k, _)| k))
                .take_while(move |item| item.as_ref().map_or(true, |k| k.starts_with(&prefix)))
                .map(|item| -> Result<u64, StoreError> {
                    let k = item.map_err(|e| self.store.rocks(e))?;
                    Ok(k.get(2..).and_then(u64_from_key).unwrap_or_default())
                })
                .peekable();
            cursors.push(iter);
        }
        let mut out = Vec::new();
        let mut exhausted = false;
        while out.len() < limit && !exhausted {
            // The next task numbers in order over all cursors, as many as
            // the page still needs, read with one multi-get.
            let mut numbers = Vec::new();
            while numbers.len() < limit - out.len() {
                let mut best: Option<(usize, u64)> = None;
                for (i, cursor) in cursors.iter_mut().enumerate() {
                    match cursor.peek() {
                        Some(Ok(n)) if best.is_none_or(|(_, b)| *n < b) => best = Some((i, *n)),
                        Some(Ok(_)) | None => {}
                        Some(Err(_)) => {
                            if let Some(Err(e)) = cursor.next() {
                                return Err(e);
                            }
                        }
                    }
                }
                let Some((i, number)) = best else {
                    exhausted = true;
                    break;
                };
                cursors[i].next();
                numbers.push(number);
            }
            let tasks = self.tasks_in(view, &numbers)?;
            out.extend(tasks.into_iter().filter(|task| filter.matches(&task.info)));
        }
        Ok(out)
    }

    /// The stored tasks with these numbers, in their order, read from `view`
    /// with one multi-get; a number without a task is skipped.
    fn tasks_in(&self, view: &View<'_>, numbers: &[u64]) -> Result<Vec<Task>, StoreError> {
        let tasks = self.store.cf(CF_TASKS);
        let keys: Vec<_> = numbers.iter().map(|&n| u64_key(n)).collect();
        let mut out = Vec::with_capacity(keys.len());
        for value in view.multi_get_cf(keys.iter().map(|k| (tasks, k))) {
            if let Some(value) = value.map_err(|e| self.store.rocks(e))? {
                out.push(decode(CF_TASKS, &value)?);
            }
        }
        Ok(out)
    }

    /// The tasks that `selected` picks and the revision they are current
    /// at, both from one point-in-time view.
    pub fn current(
        &self,
        selected: impl Fn(&TaskInfo) -> bool,
    ) -> Result<(u64, Vec<TaskInfo>), StoreError> {
        let view = self.store.db.snapshot();
        let revision = self.revision_in(&view)?;
        let tasks = view.iterator_cf(self.store.cf(CF_TASKS), IteratorMode::Start);
        let selected = collect_tasks(&self.store, tasks, usize::MAX, |task| {
            selected(&task.info).then_some(task.info)
        })?;
        Ok((revision, selected))
    }

    /// D17's recentTask: every queued and running task, and the newest
    /// `completed` of the tasks that completed at `since` or later (ties in
    /// completion time: the higher task number first), in task-number order,
    /// with the revision they are current at, from one point-in-time view.
    /// Walks the state and completion indexes, so it costs the tasks it
    /// returns, not the table.
    pub fn recent(
        &self,
        since: Timestamp,
        completed: usize,
    ) -> Result<(u64, Vec<TaskInfo>), StoreError> {
        let view = self.store.db.snapshot();
        let revision = self.revision_in(&view)?;
        let unfinished = TaskFilterSpec {
            state: vec![State::Queued, State::Running],
            ..TaskFilterSpec::default()
        };
        let mut tasks = self.by_state(&view, 0, usize::MAX, &unfinished)?;
        // Newest completions first: back from the end of the `c` keys
        // (`d` sorts after every one of them and is no key itself).
        let oldest = time_key(b'c', since, 0);
        let mut numbers = Vec::new();
        let newest_first = view
            .iterator_cf(
                self.store.cf(CF_INDEX),
                IteratorMode::From(b"d", Direction::Reverse),
            )
            .take(completed);
        for item in newest_first {
            let (k, _) = item.map_err(|e| self.store.rocks(e))?;
            if k.first() != Some(&b'c') || k[..] < oldest[..] {
                break;
            }
            numbers.extend(k.get(9..).and_then(u64_from_key));
        }
        tasks.extend(self.tasks_in(&view, &numbers)?);
        tasks.sort_by_key(|task| task.info.key);
        Ok((revision, tasks.into_iter().map(|task| task.info).collect()))
    }

    /// The change revision as of `view`.
    fn revision_in(&self, view: &View<'_>) -> Result<u64, StoreError> {
        match view
            .get_cf(self.store.cf(CF_SM_META), b"revision")
            .map_err(|e| self.store.rocks(e))?
        {
            Some(bytes) => decode(CF_SM_META, &bytes),
            None => Ok(0),
        }
    }

    /// The unfinished tasks whose owner lease ran out at or before `now` (D26).
    /// Each comes with the lease's time to live in milliseconds.
    /// Walks the lease index up to `now`, so the leader's scan every half
    /// second costs the lapsed leases, not the table.
    pub fn lapsed_leases(&self, now: Timestamp) -> Result<Vec<(TaskKey, u64)>, StoreError> {
        let end = time_key(b'l', now, u64::MAX);
        let mut out = Vec::new();
        for item in self.store.db.iterator_cf(
            self.store.cf(CF_INDEX),
            IteratorMode::From(b"l", Direction::Forward),
        ) {
            let (k, _) = item.map_err(|e| self.store.rocks(e))?;
            if k.first() != Some(&b'l') || k[..] > end[..] {
                break;
            }
            let Some(number) = k.get(9..).and_then(u64_from_key) else {
                continue;
            };
            if let Some(task) = self.task(TaskKey(number))? {
                if let Some(lease) = task.lease.filter(|l| l.expires_at <= now) {
                    if !task.info.state.is_terminal() {
                        out.push((task.info.key, lease.ttl_millis));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Up to `limit` finished tasks that completed at or before `cutoff`,
    /// earliest first: the candidates for retention (D16).
    pub fn completed_before(
        &self,
        cutoff: Timestamp,
        limit: usize,
    ) -> Result<Vec<TaskKey>, StoreError> {
        let start = [b'c'];
        let end = time_key(b'c', cutoff, u64::MAX);
        let mut out = Vec::new();
        for item in self.store.db.iterator_cf(
            self.store.cf(CF_INDEX),
            IteratorMode::From(&start, Direction::Forward),
        ) {
            let (k, _) = item.map_err(|e| self.store.rocks(e))?;
            if k.first() != Some(&b'c') || k[..] > end[..] || out.len() >= limit {
                break;
            }
            if let Some(key) = k.get(9..).and_then(u64_from_key) {
                out.push(TaskKey(key));
            }
        }
        Ok(out)
    }

    /// One collector as the last apply left it.
    pub fn collector(&self, id: CollectorId) -> Result<Option<Collector>, StoreError> {
        self.store.get(CF_COLLECTORS, &u64_key(id.0))
    }

    /// Every collector.
    pub fn collectors(&self) -> Result<Vec<Collector>, StoreError> {
        let mut out = Vec::new();
        for item in self
            .store
            .db
            .iterator_cf(self.store.cf(CF_COLLECTORS), IteratorMode::Start)
        {
            let (_, value) = item.map_err(|e| self.store.rocks(e))?;
            out.push(decode(CF_COLLECTORS, &value)?);
        }
        Ok(out)
    }

    /// Changes with revision greater than `after`, oldest first, at most `limit`.
    /// `None` when changes after `after` were pruned with their removed task
    /// (D16): the caller cannot replay them and must start from the current
    /// state. Both answers come from one point-in-time view.
    pub fn changes_since(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Option<Vec<ChangeRecord>>, StoreError> {
        let view = self.store.db.snapshot();
        let pruned: u64 = match view
            .get_cf(self.store.cf(CF_SM_META), b"pruned_through")
            .map_err(|e| self.store.rocks(e))?
        {
            Some(bytes) => decode(CF_SM_META, &bytes)?,
            None => 0,
        };
        if after < pruned {
            return Ok(None);
        }
        let from = u64_key(after.saturating_add(1));
        let mut out = Vec::new();
        for item in view
            .iterator_cf(
                self.store.cf(CF_CHANGES),
                IteratorMode::From(&from, Direction::Forward),
            )
            .take(limit)
        {
            let (_, value) = item.map_err(|e| self.store.rocks(e))?;
            out.push(decode(CF_CHANGES, &value)?);
        }
        Ok(Some(out))
    }

    /// Every change of one task, oldest first (D23).
    pub fn history(&self, key: TaskKey) -> Result<Vec<ChangeRecord>, StoreError> {
        let mut out = Vec::new();
        for revision in task_revisions(&self.store, key)? {
            if let Some(record) = self.store.get(CF_CHANGES, &u64_key(revision))? {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// A hash of the whole state machine and the applied index it covers,
    /// both read from one point-in-time view. Replicas at the same applied
    /// index must have the same digest.
    pub fn digest(&self) -> Result<(u64, String), StoreError> {
        state_digest(&self.store)
    }

    /// Writes a backup of the applied state as of now (one point-in-time
    /// view) to `out`; returns its header. Blocking: call it off the
    /// async runtime.
    pub fn write_backup(
        &self,
        out: impl std::io::Write,
    ) -> Result<vtask_snapfile::Header, StoreError> {
        snapshot::write_backup(&self.store, out)
    }

    /// The id of the cluster this node belongs to, if it knows one.
    pub fn cluster_id(&self) -> Result<Option<String>, StoreError> {
        self.store.cluster_id()
    }

    /// Records the cluster id (synced).
    pub fn set_cluster_id(&self, id: &str) -> Result<(), StoreError> {
        self.store.set_cluster_id(id)
    }
}

/// Decodes the tasks `items` yields and keeps what `keep` returns, at most `limit`.
fn collect_tasks<T>(
    store: &Store,
    items: impl Iterator<Item = Result<(Box<[u8]>, Box<[u8]>), rocksdb::Error>>,
    limit: usize,
    mut keep: impl FnMut(Task) -> Option<T>,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for item in items {
        let (_, value) = item.map_err(|e| store.rocks(e))?;
        if let Some(kept) = keep(decode(CF_TASKS, &value)?) {
            out.push(kept);
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}

/// The SHA-256 over every state column family (name, then each key and value
/// with their lengths), from one RocksDB snapshot, and the applied index it
/// covers. Raft's own bookkeeping in `sm_meta` (`last_applied`,
/// `membership`) is left out: the index is reported beside the digest, and
/// a restored cluster (new members, new log ids) has the same state as the
/// backup it came from, so the same digest.
pub(crate) fn state_digest(store: &Store) -> Result<(u64, String), StoreError> {
    let view = store.db.snapshot();
    let last_applied: Option<LogId<NodeId>> = match view
        .get_cf(store.cf(CF_SM_META), b"last_applied")
        .map_err(|e| store.rocks(e))?
    {
        Some(bytes) => decode(CF_SM_META, &bytes)?,
        None => None,
    };
    let (hex, _) = view_digest(store, &view)?;
    Ok((last_applied.map_or(0, |id| id.index), hex))
}

/// The state digest of `view` (see [`state_digest`]) and its task count.
pub(crate) fn view_digest(store: &Store, view: &View<'_>) -> Result<(String, u64), StoreError> {
    let mut hasher = Sha256::new();
    let mut tasks = 0u64;
    for name in STATE_CFS {
        hasher.update((name.len() as u32).to_be_bytes());
        hasher.update(name.as_bytes());
        for item in view.iterator_cf(store.cf(name), IteratorMode::Start) {
            let (key, value) = item.map_err(|e| store.rocks(e))?;
            if name == CF_SM_META && matches!(&key[..], b"last_applied" | b"membership") {
                continue;
            }
            if name == CF_TASKS {
                tasks += 1;
            }
            hasher.update((key.len() as u32).to_be_bytes());
            hasher.update(&key);
            hasher.update((value.len() as u32).to_be_bytes());
            hasher.update(&value);
        }
    }
    let hex = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((hex, tasks))
}

/// A table without tasks: it lets the model word the not-found fault (D16).
struct Absent {
    counters: Counters,
}

impl TaskTable for Absent {
    fn task(&self, _: TaskKey) -> Option<Task> {
        None
    }

    fn counters(&self) -> Counters {
        self.counters
    }

    fn scan(&self, _: TaskKey, _: bool, _: &mut dyn FnMut(&Task) -> bool) {}

    fn collector(&self, _: CollectorId) -> Option<Collector> {
        None
    }

    fn collectors(&self) -> Vec<Collector> {
        Vec::new()
    }
}
