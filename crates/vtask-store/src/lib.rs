//! `vtask-store`: one RocksDB instance per node holding the Raft log and the
//! task state machine, behind openraft's storage traits (`storage-v2`).
//!
//! # On-disk format (value format version 4)
//!
//! Values are MessagePack with named fields ([`codec`]; the log entries and
//! the Raft wire payloads use the same encoding), except where noted.
//!
//! | column family | key | value |
//! |---|---|---|
//! | `raft_log` | log index, u64 big-endian | `openraft::Entry<TypeConfig>` |
//! | `raft_meta` | `vote`, `committed`, `last_purged`, `cluster_id` | the openraft value; `cluster_id`: the id of the cluster this node belongs to, a string |
//! | `tasks` | task number, u64 big-endian | [`vtask_model::Task`] |
//! | `index` | `s` + state byte + task number; `c` + completeTime, `l` + lease expiry (i64 µs, sign bit flipped, big-endian) + task number | empty (tasks by state, for ListTasks; finished tasks by completion, for retention; unfinished leased tasks by expiry, for lapses) |
//! | `sessions` | client id (UTF-8) | [`Session`]: last use and the sequence numbers with a stored reply, as runs `[first, last]` |
//! | `replies` | client id + 0 byte + seq, u64 big-endian | [`StoredReply`] (D27): the outcome, or for a reply that returns a task as one change of the request left it, the task number and revision of that change record (since version 4) |
//! | `collectors` | collector number, u64 big-endian | [`vtask_model::Collector`] (D24) |
//! | `changes` | revision, u64 big-endian | [`ChangeRecord`] (watch resume, audit, stored replies); a task's records go when retention removes it, except its REMOVED record |
//! | `history` | task number + revision, both u64 big-endian | empty (per-task history, D23) |
//! | `sm_meta` | `last_applied`, `membership`, `counters`, `revision`, `pruned_through`, `format` | the value (`pruned_through`: the newest revision deleted with a removed task); `format`: the value format version as decimal text, in every version |
//!
//! Versions 1 to 3 stored JSON. A node opening a format 3 directory upgrades
//! it in place before it serves (every family rewritten in batches, then
//! `sm_meta` with the new format in one synced write, so an upgrade cut
//! short is finished by the next start; its current snapshot is rebuilt); it
//! refuses any other format with what to do. Nodes of format 3 and 4 cannot
//! replicate to each other (the log entries on the wire changed too):
//! upgrade a cluster by stopping every node, then starting the new version.
//! A retry whose stored reply refers to a change record that retention has
//! since removed (with its task, D16) is answered `ManagedObjectNotFound`
//! (expired), as any call about that task now is.
//!
//! The state digest (`Cluster.Status.state_digest`, compared by the tests,
//! the chaos checker and the compose test) is the SHA-256 over every state
//! family: its name (u32 BE length, bytes), then each key and value (u32 BE
//! length, bytes), in key order, leaving out `sm_meta/last_applied` and
//! `sm_meta/membership` (Raft's bookkeeping: the applied index is reported
//! beside the digest, and a restored cluster has other members and log ids
//! but the same state).
//!
//! # Snapshot files and backups
//!
//! Raft snapshots (`snapshots/current.snap`) and backups (`vtask snapshot
//! save`) are one file format, defined in `vtask-snapfile` (version 2):
//! `"VTASKSNAP2\n"`, a u32 BE length and a JSON header, the records of every
//! state family (u8 family index into `STATE_CFS`, u32 BE key length, key,
//! u32 BE value length, value, in the value format above; a record that does
//! not decode as its key's type, a format 3 backup among them, is refused
//! before anything is written), an end byte 0xFF, and the SHA-256 of
//! everything before it. The header holds openraft's `SnapshotMeta`
//! (`meta`), `applied_index`, `cluster_id` (of origin), `digest` and `tasks`
//! (backups; Raft snapshots leave them out, they would cost a second pass),
//! `revision` and `created_unix_ms`. Version 1 (`"VTASKSNAP1\n"`, the header
//! was the bare `SnapshotMeta`) is still read.
//!
//! A backup is taken by `Cluster.SaveSnapshot`: a read barrier first (the
//! linearizable point), then one RocksDB point-in-time view that both the
//! digest pass and the record pass read, so the header describes exactly
//! the records. `vtaskd restore` ([`restore`]) verifies the whole file,
//! refuses a non-empty directory, writes the records into a new store in
//! one synced batch with `last_applied` = (term 0, the backup's index) and
//! the new members as the membership at that log id, records the new
//! cluster id in `raft_meta`, and checks that the restored digest equals the
//! header's; on any failure the directory is removed. The Raft log stays
//! empty: at first start openraft purges it up to `last_applied` and builds
//! a snapshot, and the first leader (term 1) appends right after the
//! backup's index. Counters, revisions and sessions come from the backup, so task
//! numbers and revisions go on and retries are still answered (D27).
//!
//! # Cluster ids
//!
//! The first member of a new cluster makes a random id before it
//! initializes; every Raft call carries the sender's id (gRPC metadata
//! `vtask-cluster-id`) and a node refuses a call with another id, or
//! without one once it has one (FAILED_PRECONDITION). A node without an id
//! adopts the caller's at its first call if it has no Raft state (a new
//! member, one that lost its data); a node with Raft state but no id (a
//! cluster initialized before ids) takes calls without an id only. A
//! restored cluster gets a new id, so it and the cluster it came from refuse
//! each other.
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
//! openraft stop the node: it never serves a half-written batch (and
//! `vtaskd` then exits with status 1). An append whose write or fsync
//! failed is never acknowledged, so a full disk (ENOSPC) loses nothing
//! acknowledged; RocksDB recovers the store to its last synced write at the
//! next open. A snapshot file cut short by a failed write is removed.
//!
//! **Architecture invariant:** the task rules live in `vtask-model`; this
//! crate only persists what `vtask_model::apply` decides.

pub mod codec;
mod db;
pub mod latency;
mod log_store;
#[cfg(debug_assertions)]
pub mod planted;
mod snapshot;
mod state_machine;
mod types;
mod values;

pub use db::{open, Store, StoreError};
pub use log_store::LogStore;
pub use snapshot::{restore, Restored};
pub use state_machine::{AppliedState, ReadView, StateMachine, SESSION_TTL_MILLIS};
pub use types::{
    Batch, BatchReply, ChangeKind, ChangeRecord, ClientRef, Request, Session, StoredReply,
    TypeConfig,
};
pub use vtask_snapfile as snapfile;

/// The node id type of the cluster.
pub type NodeId = u64;
