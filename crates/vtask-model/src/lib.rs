//! `vtask-model`: the vSphere `vim.Task` rules as a pure function.
//!
//! [`apply`] takes the current state (through [`TaskTable`]), the caller, a
//! [`Command`] and the log entry's context, and returns the reply and the
//! changes to write. Everything else in vtask (the RocksDB state machine, the
//! linearizability checker) calls this one function, so the rules live here
//! and nowhere else.
//!
//! **Architecture invariant:** this crate does no I/O, reads no clock and no
//! random numbers, and knows nothing of Raft, RocksDB, protobuf or tokio.
//! `cargo tree -p vtask-model` shows serde, serde_json and thiserror only.

mod apply;
mod collector;
mod command;
mod filter;
mod memtable;
mod types;
pub mod validate;

pub use apply::{
    apply, authorize, lookup, MAX_LEASE_MILLIS, MIN_LEASE_MILLIS, MIN_RETENTION_MILLIS,
};
pub use collector::{
    collector_for, Collector, CollectorId, COLLECTOR_TYPE, DEFAULT_COLLECTOR_IDLE_MILLIS,
    DEFAULT_MAX_COLLECTORS, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE,
};
pub use command::{
    ApiVersion, Applied, Caller, Change, Command, Counters, CreateTask, EntryContext, Outcome,
    OwnerLease, Privilege, Privileges, Reply, Task, TaskTable,
};
pub use filter::{
    FilterByEntity, FilterByTime, FilterByUsername, RecursionOption, TaskFilterSpec, TimeOption,
};
pub use memtable::MemTable;
pub use types::{
    AnyValue, FaultKind, KeyAnyValue, LocalizableMessage, MethodFault, MoRef, State, TaskInfo,
    TaskKey, TaskReason, Timestamp,
};
