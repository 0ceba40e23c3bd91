//! `vtask-store`: one RocksDB instance per node holding the Raft log and the
//! task state machine, behind openraft's storage traits (`storage-v2`).
//!
//! # On-disk format (value format version 3)
//!
//! | column family | key | value (JSON unless noted) |
//! |---|---|---|
//! | `raft_log` | log index, u64 big-endian | `openraft::Entry<TypeConfig>` |
//! | `raft_meta` | `vote`, `committed`, `last_purged` | the openraft value |
//! | `tasks` | task number, u64 big-endian | [`vtask_model::Task`] |
//! | `index` | `s` + state byte + task number; `c` + completeTime, `l` + lease expiry (i64 µs, sign bit flipped, big-endian) + task number | empty (tasks by state, for ListTasks; finished tasks by completion, for retention; unfinished leased tasks by expiry, for lapses) |
//! | `sessions` | client id (UTF-8) | [`Session`]: last use and the sequence numbers with a stored reply, as runs `[first, last]` (since version 3) |
//! | `replies` | client id + 0 byte + seq, u64 big-endian | the `Outcome` of that request (D27) |
//! | `collectors` | collector number, u64 big-endian | [`vtask_model::Collector`] (D24) |
//! | `changes` | revision, u64 big-endian | [`ChangeRecord`] (watch resume, audit); a task's records go when retention removes it, except its REMOVED record |
//! | `history` | task number + revision, both u64 big-endian | empty (per-task history, D23) |
//! | `sm_meta` | `last_applied`, `membership`, `counters`, `revision`, `pruned_through`, `format` | the value (`pruned_through`: the newest revision deleted with a removed task) |
//!
//! # Durability
//!
//! Log appends are written to RocksDB and acknowledged to openraft only after
//! the write-ahead log is fsynced ([`log_store`]); votes are written with sync
//! before `save_vote` returns. The state machine writes without sync: RocksDB
//! has one WAL per instance, so the next log fsync also makes every earlier
//! state-machine write durable, and after a crash the state machine resumes
//! from its own `last_applied`, which always changes in the same
//! `WriteBatch` as the data it covers.
//!
//! If a RocksDB write fails the store returns a `StorageError`, which makes
//! openraft stop the node: it never serves a half-written batch.
//!
//! **Architecture invariant:** the task rules live in `vtask-model`; this
//! crate only persists what `vtask_model::apply` decides.

mod db;
pub mod latency;
mod log_store;
#[cfg(debug_assertions)]
pub mod planted;
mod snapshot;
mod state_machine;
mod types;

pub use db::{open, Store, StoreError};
pub use log_store::LogStore;
pub use snapshot::{restore, Restored};
pub use vtask_snapfile as snapfile;
pub use state_machine::{AppliedState, ReadView, StateMachine, SESSION_TTL_MILLIS};
pub use types::{
    Batch, BatchReply, ChangeKind, ChangeRecord, ClientRef, Request, Session, TypeConfig,
};

/// The node id type of the cluster.
pub type NodeId = u64;
