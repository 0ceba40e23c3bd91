//! Opening the RocksDB instance, its column families and key encodings.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Options, DB,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

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

/// The `raft_meta` key of the cluster id (a JSON string): which cluster
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
/// their session.
pub(crate) const FORMAT_VERSION: u32 = 3;

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
        "data directory {path} holds value format {found}, this vtaskd writes {FORMAT_VERSION}"
    )]
    Format { path: PathBuf, found: u32 },
    #[error("restore: {0}")]
    Restore(String),
    #[error("missing from the store: {0}")]
    Missing(String),
    #[error("corrupt value in column family {cf}: {source}")]
    Decode {
        cf: &'static str,
        source: serde_json::Error,
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
        let store = Store {
            db: Arc::new(db),
            dir: dir.to_path_buf(),
        };
        store.check_format()?;
        Ok(store)
    }

    pub(crate) fn check_format(&self) -> Result<(), StoreError> {
        match self.get::<u32>(CF_SM_META, b"format")? {
            Some(FORMAT_VERSION) => Ok(()),
            Some(found) => Err(StoreError::Format {
                path: self.dir.clone(),
                found,
            }),
            None => {
                let mut opts = rocksdb::WriteOptions::default();
                opts.set_sync(true);
                let mut batch = rocksdb::WriteBatch::default();
                batch.put_cf(self.cf(CF_SM_META), b"format", encode(&FORMAT_VERSION));
                self.db.write_opt(batch, &opts).map_err(|e| self.rocks(e))
            }
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

    /// Reads and decodes one JSON value.
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
        let mut opts = rocksdb::WriteOptions::default();
        opts.set_sync(true);
        let mut batch = rocksdb::WriteBatch::default();
        batch.put_cf(self.cf(CF_RAFT_META), CLUSTER_ID_KEY, encode(&id));
        self.db.write_opt(batch, &opts).map_err(|e| self.rocks(e))
    }

    pub(crate) fn snapshot_dir(&self) -> PathBuf {
        self.dir.join("snapshots")
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Our types serialize to JSON without fail: no maps with non-string keys
    // except u64 keys, which serde_json writes as strings.
    serde_json::to_vec(value).expect("vtask values serialize to JSON")
}

pub(crate) fn decode<T: DeserializeOwned>(cf: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Decode { cf, source })
}

pub(crate) fn u64_key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

pub(crate) fn u64_from_key(key: &[u8]) -> Option<u64> {
    key.get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
}
