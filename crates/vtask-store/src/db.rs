//! Opening the RocksDB instance, its column families and key encodings.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Options, DB,
};
use serde::de::DeserializeOwned;

use crate::codec::{self, DecodeError};
use crate::log_store::LogStore;
use crate::state_machine::StateMachine;

pub(crate) const CF_RAFT_LOG: &str = "raft_log";
pub(crate) const CF_RAFT_META: &str = "raft_meta";
pub(crate) const CF_TASKS: &str = "tasks";
pub(crate) const CF_INDEX: &str = "index";
pub(crate) const CF_SESSIONS: &str = "sessions";
pub(crate) const CF_CHANGES: &str = "changes";
pub(crate) const CF_HISTORY: &str = "history";
pub(crate) const CF_SM_META: &str = "sm_meta";
pub(crate) const CF_COLLECTORS: &str = "collectors";
pub(crate) const CF_REPLIES: &str = "replies";

/// The column families that make up the state machine: what a snapshot holds
/// and what the state digest covers.
/// Snapshots name a family by its position here, so new ones go last.
pub(crate) const STATE_CFS: [&str; 8] = [
    CF_TASKS,
    CF_INDEX,
    CF_SESSIONS,
    CF_CHANGES,
    CF_HISTORY,
    CF_SM_META,
    CF_COLLECTORS,
    CF_REPLIES,
];

/// The `raft_meta` key of the cluster id (a string): which cluster
/// this node's Raft state belongs to. Not part of the state machine, so not
/// in snapshots' records nor in the state digest.
pub(crate) const CLUSTER_ID_KEY: &[u8] = b"cluster_id";

/// The most WAL a node keeps before memtables are flushed.
const MAX_TOTAL_WAL_BYTES: u64 = 64 << 20;
/// The block cache shared by every column family.
const BLOCK_CACHE_BYTES: usize = 128 << 20;
/// The most flushes and compactions may write per second; the auto-tuned
/// limiter allows a twentieth of it when they are idle and more as they need.
const BACKGROUND_WRITE_BYTES_PER_SEC: i64 = 64 << 20;

/// The value format written by this version (`sm_meta/format`). 2 added the
/// completion-time index, the collectors family and replies kept apart from
/// their session; 3 stored a session's sequence numbers as runs; 4 replaced
/// JSON with MessagePack ([`codec`]) and made a stored reply that returns a
/// task refer to its change record.
pub(crate) const FORMAT_VERSION: u32 = 4;

/// The one older format that [`Store::open`] upgrades in place.
pub(crate) const UPGRADABLE_FORMAT: u32 = 3;

/// Why the store could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("RocksDB at {path}: {source}")]
    Rocks {
        path: PathBuf,
        source: rocksdb::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "data directory {path} holds value format {found}; this vtaskd reads format {FORMAT_VERSION} and upgrades only format {UPGRADABLE_FORMAT}: start it with the vtaskd that wrote the directory, or give it an empty one to rejoin its cluster"
    )]
    Format { path: PathBuf, found: u32 },
    #[error("data directory {path}: sm_meta/format is {text:?}, not a format version")]
    FormatText { path: PathBuf, text: String },
    #[error("upgrading {path} from value format {UPGRADABLE_FORMAT}: {why}")]
    Migrate { path: PathBuf, why: String },
    #[error("restore: {0}")]
    Restore(String),
    #[error("missing from the store: {0}")]
    Missing(String),
    #[error("corrupt value in column family {cf}: {source}")]
    Decode {
        cf: &'static str,
        source: DecodeError,
    },
}

/// The node's RocksDB instance, shared by the log store and the state machine.
#[derive(Clone)]
pub struct Store {
    pub(crate) db: Arc<DB>,
    pub(crate) dir: PathBuf,
}

/// Opens (or creates) the store in `dir` and returns the two halves openraft
/// drives: the log store and the state machine.
pub fn open(dir: &Path) -> Result<(LogStore, StateMachine), StoreError> {
    let store = Store::open(dir)?;
    let log = LogStore::new(store.clone())?;
    let sm = StateMachine::new(store)?;
    Ok((log, sm))
}

impl Store {
    pub(crate) fn open(dir: &Path) -> Result<Store, StoreError> {
        let store = Store::open_unchecked(dir)?;
        store.check_format()?;
        Ok(store)
    }

    /// Opens the store without looking at its value format.
    pub(crate) fn open_unchecked(dir: &Path) -> Result<Store, StoreError> {
        let db_path = dir.join("db");
        std::fs::create_dir_all(dir.join("snapshots")).map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        // Memtables are flushed once the WAL holds this much, so a restart
        // replays at most this (issue #6: serving again within seconds).
        opts.set_max_total_wal_size(MAX_TOTAL_WAL_BYTES);
        // Every node flushes all its column families at once when the WAL
        // reaches its cap: tens of MB written in a fraction of a second,
        // which held the WAL fsyncs that every write waits on for 100-400 ms.
        // Paced (the limiter rises with demand, up to its rate) and synced
        // as they go, background writes leave the fsyncs alone.
        opts.set_auto_tuned_ratelimiter(BACKGROUND_WRITE_BYTES_PER_SEC, 100_000, 10);
        opts.set_bytes_per_sync(1 << 20);
        // Point reads (tasks by key, replies, sessions) skip the files that
        // cannot hold the key; one block cache serves every family.
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let mut table = BlockBasedOptions::default();
        table.set_bloom_filter(10.0, false);
        table.set_block_cache(&cache);
        let cfs = [CF_RAFT_LOG, CF_RAFT_META]
            .into_iter()
            .chain(STATE_CFS)
            .map(|name| {
                let mut cf_opts = Options::default();
                // No codec is compiled in (see the workspace manifest).
                cf_opts.set_compression_type(DBCompressionType::None);
                cf_opts.set_block_based_table_factory(&table);
                ColumnFamilyDescriptor::new(name, cf_opts)
            });
        let db =
            DB::open_cf_descriptors(&opts, &db_path, cfs).map_err(|source| StoreError::Rocks {
                path: db_path.clone(),
                source,
            })?;
        Ok(Store {
            db: Arc::new(db),
            dir: dir.to_path_buf(),
        })
    }

    /// Checks the value format of an opened store: records it in a new one,
    /// upgrades format 3 in place and refuses any other.
    pub(crate) fn check_format(&self) -> Result<(), StoreError> {
        let stored = self
            .db
            .get_pinned_cf(self.cf(CF_SM_META), b"format")
            .map_err(|e| self.rocks(e))?;
        let Some(bytes) = stored else {
            let mut batch = rocksdb::WriteBatch::default();
            batch.put_cf(self.cf(CF_SM_META), b"format", format_bytes(FORMAT_VERSION));
            return self.write_synced(batch);
        };
        match parse_format(&bytes) {
            Some(FORMAT_VERSION) => Ok(()),
            Some(UPGRADABLE_FORMAT) => {
                drop(bytes);
                let started = std::time::Instant::now();
                tracing::info!(dir = %self.dir.display(), "upgrading the data directory from value format {UPGRADABLE_FORMAT} (JSON) to {FORMAT_VERSION}");
                let rewritten = crate::values::migrate_from_json(self)?;
                tracing::info!(dir = %self.dir.display(), rewritten, elapsed_ms = started.elapsed().as_millis() as u64, "data directory upgraded to value format {FORMAT_VERSION}");
                Ok(())
            }
            Some(found) => Err(StoreError::Format {
                path: self.dir.clone(),
                found,
            }),
            None => Err(StoreError::FormatText {
                path: self.dir.clone(),
                text: String::from_utf8_lossy(&bytes).into_owned(),
            }),
        }
    }

    pub(crate) fn cf(&self, name: &str) -> &ColumnFamily {
        // Every family is created at open, so a missing one is a programming error.
        self.db
            .cf_handle(name)
            .unwrap_or_else(|| panic!("column family {name} was opened"))
    }

    pub(crate) fn rocks(&self, source: rocksdb::Error) -> StoreError {
        StoreError::Rocks {
            path: self.dir.join("db"),
            source,
        }
    }

    /// Reads and decodes one value.
    pub(crate) fn get<T: DeserializeOwned>(
        &self,
        cf: &'static str,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match self
            .db
            .get_pinned_cf(self.cf(cf), key)
            .map_err(|e| self.rocks(e))?
        {
            Some(bytes) => decode(cf, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The id of the cluster this node belongs to, if it knows one.
    pub fn cluster_id(&self) -> Result<Option<String>, StoreError> {
        self.get(CF_RAFT_META, CLUSTER_ID_KEY)
    }

    /// Records the cluster id, synced before it returns.
    pub fn set_cluster_id(&self, id: &str) -> Result<(), StoreError> {
        let mut batch = rocksdb::WriteBatch::default();
        batch.put_cf(self.cf(CF_RAFT_META), CLUSTER_ID_KEY, encode(&id));
        self.write_synced(batch)
    }

    /// Writes `batch` and fsyncs the write-ahead log before it returns.
    pub(crate) fn write_synced(&self, batch: rocksdb::WriteBatch) -> Result<(), StoreError> {
        let mut opts = rocksdb::WriteOptions::default();
        opts.set_sync(true);
        self.db.write_opt(batch, &opts).map_err(|e| self.rocks(e))
    }

    pub(crate) fn snapshot_dir(&self) -> PathBuf {
        self.dir.join("snapshots")
    }
}

pub(crate) use codec::to_bytes as encode;

pub(crate) fn decode<T: DeserializeOwned>(cf: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    codec::from_bytes(bytes).map_err(|source| StoreError::Decode { cf, source })
}

/// `sm_meta/format` is decimal text in every format (in the JSON formats a
/// number's JSON is its decimal text), so any version can read any other's.
pub(crate) fn format_bytes(version: u32) -> Vec<u8> {
    version.to_string().into_bytes()
}

pub(crate) fn parse_format(bytes: &[u8]) -> Option<u32> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

pub(crate) fn u64_key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

pub(crate) fn u64_from_key(key: &[u8]) -> Option<u64> {
    key.get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
}
