//! The Raft log: openraft's `RaftLogStorage` over the `raft_log` and
//! `raft_meta` column families.
//!
//! An append is written to RocksDB at once (so readers see it when `append`
//! returns) and acknowledged to openraft only after a WAL fsync. The fsyncs
//! happen on one thread of their own, which serves every append that arrived
//! while the previous fsync ran with a single `fsync`: group commit at the
//! disk, without holding an async worker thread.
//!
//! The newest entries are also kept in memory, decoded ([`RecentEntries`]):
//! every entry is read back soon after its append (by the leader's
//! replication stream to each follower and by the state machine on every
//! node), and decoding it from RocksDB each time cost more CPU than writing it.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{
    AnyError, Entry, LogId, OptionalSend, RaftLogId, StorageError, StorageIOError, Vote,
};
use rocksdb::{Direction, IteratorMode, WriteBatch, WriteOptions};

use crate::db::{
    decode, encode, u64_from_key, u64_key, Store, StoreError, CF_RAFT_LOG, CF_RAFT_META,
};
use crate::{NodeId, TypeConfig};

type StorageResult<T> = Result<T, StorageError<NodeId>>;

/// How many of the newest entries [`RecentEntries`] keeps. A reader that
/// lags further behind (a follower catching up) reads from RocksDB.
const RECENT_ENTRIES: usize = 512;

/// The log half of the store. Cloning it gives another reader of the same log.
#[derive(Clone)]
pub struct LogStore {
    store: Store,
    syncer: Arc<Syncer>,
    recent: Arc<Mutex<RecentEntries>>,
}

/// The newest entries of the log, contiguous, exactly as RocksDB holds them.
///
/// Every change of the `raft_log` family (append, truncate, purge) happens
/// with this lock held and updates both, so a reader never sees the two
/// disagree. Empty after a restart until the next append.
#[derive(Default)]
struct RecentEntries {
    entries: VecDeque<Entry<TypeConfig>>,
}

impl RecentEntries {
    fn first_index(&self) -> Option<u64> {
        self.entries.front().map(|e| e.log_id.index)
    }

    fn push(&mut self, entry: Entry<TypeConfig>) {
        // An append always continues the log (openraft truncates first), so
        // a gap means the memory no longer mirrors the log's tail: start over.
        if let Some(last) = self.entries.back() {
            if last.log_id.index + 1 != entry.log_id.index {
                self.entries.clear();
            }
        }
        if self.entries.len() == RECENT_ENTRIES {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    /// Forgets the entries from `index` on.
    fn truncate(&mut self, index: u64) {
        while self.entries.back().is_some_and(|e| e.log_id.index >= index) {
            self.entries.pop_back();
        }
    }

    /// Forgets the entries up to and including `index`.
    fn purge(&mut self, index: u64) {
        while self
            .entries
            .front()
            .is_some_and(|e| e.log_id.index <= index)
        {
            self.entries.pop_front();
        }
    }

    /// Copies of the kept entries from `start` on that `range` contains.
    fn copy(&self, start: u64, range: &impl RangeBounds<u64>) -> Vec<Entry<TypeConfig>> {
        let Some(first) = self.first_index() else {
            return Vec::new();
        };
        let skip = usize::try_from(start.saturating_sub(first)).unwrap_or(usize::MAX);
        self.entries
            .iter()
            .skip(skip)
            .take_while(|e| range.contains(&e.log_id.index))
            .cloned()
            .collect()
    }
}

impl LogStore {
    pub(crate) fn new(store: Store) -> Result<LogStore, StoreError> {
        let syncer = Arc::new(Syncer::start(store.clone()));
        Ok(LogStore {
            store,
            syncer,
            recent: Arc::default(),
        })
    }

    fn recent(&self) -> MutexGuard<'_, RecentEntries> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Entries of `range` from `start` on, read from RocksDB; it stops before
    /// `stop`, where the entries in memory take over.
    fn read_stored(
        &self,
        start: u64,
        stop: Option<u64>,
        range: &impl RangeBounds<u64>,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        let cf = self.store.cf(CF_RAFT_LOG);
        let mut entries = Vec::new();
        let from = u64_key(start);
        for item in self
            .store
            .db
            .iterator_cf(cf, IteratorMode::From(&from, Direction::Forward))
        {
            let (key, value) = item.map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))?;
            let index = u64_from_key(&key).unwrap_or(u64::MAX);
            if !range.contains(&index) || stop.is_some_and(|stop| index >= stop) {
                break;
            }
            let entry: Entry<TypeConfig> = decode(CF_RAFT_LOG, &value)
                .map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))?;
            entries.push(entry);
        }
        Ok(entries)
    }

    fn meta<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        self.store.get(CF_RAFT_META, key)
    }

    fn last_purged(&self) -> StorageResult<Option<LogId<NodeId>>> {
        self.meta(b"last_purged")
            .map_err(|e| StorageIOError::read_logs(AnyError::new(&e)).into())
    }

    /// Writes `batch` and waits for it to be on disk, off the async threads.
    async fn write_synced(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.write_synced(batch))
            .await
            .unwrap_or_else(|join| panic!("log write task panicked: {join}"))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        let start = match range.start_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n + 1,
            Bound::Unbounded => 0,
        };
        let recent = self.recent();
        // What precedes the entries in memory (all of it after a restart)
        // comes from RocksDB.
        let mut entries = match recent.first_index() {
            Some(first) if first <= start => Vec::new(),
            first => self.read_stored(start, first, &range)?,
        };
        entries.extend(recent.copy(start, &range));
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let last_purged_log_id = self.last_purged()?;
        let cf = self.store.cf(CF_RAFT_LOG);
        let last = match self.store.db.iterator_cf(cf, IteratorMode::End).next() {
            Some(item) => {
                let (_, value) = item.map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))?;
                let entry: Entry<TypeConfig> = decode(CF_RAFT_LOG, &value)
                    .map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))?;
                Some(*entry.get_log_id())
            }
            None => None,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last.or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StorageResult<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.store.cf(CF_RAFT_META), b"vote", encode(vote));
        self.write_synced(batch)
            .await
            .map_err(|e| StorageIOError::write_vote(AnyError::new(&e)).into())
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
        self.meta(b"vote")
            .map_err(|e| StorageIOError::read_vote(AnyError::new(&e)).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StorageResult<()> {
        // Not synced: a lost `committed` only means re-learning it from the leader.
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.store.cf(CF_RAFT_META),
            b"committed",
            encode(&committed),
        );
        self.store
            .db
            .write(batch)
            .map_err(|e| StorageIOError::write_logs(AnyError::new(&e)).into())
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<NodeId>>> {
        Ok(self
            .meta::<Option<LogId<NodeId>>>(b"committed")
            .map_err(|e| StorageIOError::read_logs(AnyError::new(&e)))?
            .flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let cf = self.store.cf(CF_RAFT_LOG);
        let mut batch = WriteBatch::default();
        let entries: Vec<_> = entries.into_iter().collect();
        for entry in &entries {
            batch.put_cf(cf, u64_key(entry.get_log_id().index), encode(entry));
        }
        let mut recent = self.recent();
        #[cfg(debug_assertions)]
        if crate::planted::active(crate::planted::Bug::AckBeforeFsync) {
            let mut unsafe_write = WriteOptions::default();
            unsafe_write.disable_wal(true);
            self.store
                .db
                .write_opt(batch, &unsafe_write)
                .map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
            entries.into_iter().for_each(|e| recent.push(e));
            callback.log_io_completed(Ok(()));
            return Ok(());
        }
        // Written now, so readers see the entries when this returns; durable
        // (and acknowledged through `callback`) once the syncer's fsync is done.
        self.store
            .db
            .write(batch)
            .map_err(|e| StorageIOError::write_logs(AnyError::new(&e)))?;
        entries.into_iter().for_each(|e| recent.push(e));
        drop(recent);
        self.syncer.sync_then(callback);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        let cf = self.store.cf(CF_RAFT_LOG);
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(cf, u64_key(log_id.index), u64_key(u64::MAX));
        batch.delete_cf(cf, u64_key(u64::MAX));
        // Forgotten before the write: if the write fails, the memory holds
        // less than RocksDB, never more.
        self.recent().truncate(log_id.index);
        self.write_synced(batch)
            .await
            .map_err(|e| StorageIOError::write_logs(AnyError::new(&e)).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        // One batch: the new `last_purged` and the deletion land together, so
        // a crash leaves either the old log or the purged one, never a hole.
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.store.cf(CF_RAFT_META),
            b"last_purged",
            encode(&Some(log_id)),
        );
        batch.delete_range_cf(
            self.store.cf(CF_RAFT_LOG),
            u64_key(0),
            u64_key(log_id.index + 1),
        );
        self.recent().purge(log_id.index);
        self.write_synced(batch)
            .await
            .map_err(|e| StorageIOError::write_logs(AnyError::new(&e)).into())
    }
}

/// An fsync at least this slow is logged: a disk stall that every write on
/// this node waits out.
const SLOW_SYNC: std::time::Duration = std::time::Duration::from_millis(100);

/// The thread that fsyncs the WAL for appends and then acknowledges them.
///
/// Dropping the last `LogStore` stops the thread and waits for it, so that
/// its handle on the database is gone before the caller goes on: RocksDB
/// must not still be open in a thread while the process exits.
struct Syncer {
    queue: std::sync::Mutex<Option<mpsc::Sender<LogFlushed<TypeConfig>>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Syncer {
    fn start(store: Store) -> Syncer {
        let (tx, rx) = mpsc::channel::<LogFlushed<TypeConfig>>();
        let thread = std::thread::Builder::new()
            .name("raft-log-sync".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut waiting = vec![first];
                    waiting.extend(rx.try_iter());
                    let started = std::time::Instant::now();
                    let result = store
                        .db
                        .flush_wal(true)
                        .map_err(|e| std::io::Error::other(store.rocks(e)));
                    let took = started.elapsed();
                    crate::latency::LOG_SYNC.record(took);
                    if took >= SLOW_SYNC {
                        // Every write waiting on this node stalls as long.
                        tracing::warn!(
                            millis = took.as_millis() as u64,
                            appends = waiting.len(),
                            "slow fsync of the write-ahead log"
                        );
                    }
                    for callback in waiting {
                        callback.log_io_completed(
                            result
                                .as_ref()
                                .map(|_| ())
                                .map_err(|e| std::io::Error::other(e.to_string())),
                        );
                    }
                }
            })
            .expect("spawn the raft-log-sync thread");
        Syncer {
            queue: std::sync::Mutex::new(Some(tx)),
            thread: Some(thread),
        }
    }

    fn sync_then(&self, callback: LogFlushed<TypeConfig>) {
        let queue = self
            .queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let sent = match queue.as_ref() {
            Some(queue) => queue.send(callback),
            None => Err(mpsc::SendError(callback)),
        };
        if let Err(mpsc::SendError(callback)) = sent {
            callback.log_io_completed(Err(std::io::Error::other(
                "the raft-log-sync thread has stopped",
            )));
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        // Closing the channel ends the thread once it has acknowledged
        // everything queued.
        drop(
            self.queue
                .get_mut()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;

    fn entry(term: u64, index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Blank,
        }
    }

    fn ids(entries: &[Entry<TypeConfig>]) -> Vec<(u64, u64)> {
        entries
            .iter()
            .map(|e| (e.log_id.leader_id.term, e.log_id.index))
            .collect()
    }

    #[test]
    fn recent_entries_mirror_the_tail_of_the_log() {
        let mut recent = RecentEntries::default();
        assert_eq!(recent.copy(0, &(0..10)), vec![]);
        (1..=5).for_each(|i| recent.push(entry(1, i)));
        assert_eq!(recent.first_index(), Some(1));
        assert_eq!(ids(&recent.copy(2, &(2..4))), [(1, 2), (1, 3)]);
        assert_eq!(ids(&recent.copy(4, &(4..))), [(1, 4), (1, 5)]);
        assert_eq!(recent.copy(6, &(6..)), vec![]);

        // A new leader's entries replace a truncated tail.
        recent.truncate(4);
        (4..=6).for_each(|i| recent.push(entry(2, i)));
        assert_eq!(
            ids(&recent.copy(3, &(3..=6))),
            [(1, 3), (2, 4), (2, 5), (2, 6)]
        );

        recent.purge(4);
        assert_eq!(recent.first_index(), Some(5));
        assert_eq!(ids(&recent.copy(5, &(..))), [(2, 5), (2, 6)]);

        // An append that does not continue the kept entries (after a
        // snapshot install, say) starts them over rather than leave a gap.
        recent.push(entry(3, 100));
        assert_eq!(recent.first_index(), Some(100));
        assert_eq!(ids(&recent.copy(100, &(..))), [(3, 100)]);
    }

    #[test]
    fn recent_entries_keep_a_bounded_tail() {
        let mut recent = RecentEntries::default();
        let last = RECENT_ENTRIES as u64 + 10;
        (1..=last).for_each(|i| recent.push(entry(1, i)));
        assert_eq!(recent.entries.len(), RECENT_ENTRIES);
        assert_eq!(recent.first_index(), Some(11));
        assert_eq!(ids(&recent.copy(last, &(last..))), [(1, last)]);
    }
}
