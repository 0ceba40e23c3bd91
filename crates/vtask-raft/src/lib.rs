//! `vtask-raft`: the node-to-node transport of openraft over tonic.
//!
//! [`Network`] is openraft's `RaftNetworkFactory`: one persistent gRPC channel
//! per peer, a deadline on every call from openraft's `RPCOption`, and message
//! size limits raised above the largest entry batch or snapshot chunk we send.
//! The payloads are openraft's own messages, serialized as JSON into opaque
//! `bytes` fields ([`codec`]), so openraft types never reach the public API.
//! Snapshot chunks carry their data as raw bytes, not JSON.

pub mod codec;
mod network;

pub use network::Network;

/// The leader's round trip of one AppendEntries call (heartbeats included).
pub static APPEND_ENTRIES: vtask_store::latency::Histogram = vtask_store::latency::Histogram::new(
    "vtask_raft_append_entries_seconds",
    "Round trip of one AppendEntries call to a follower, as its leader sees it (heartbeats included).",
);

/// The largest gRPC message a node sends or accepts on the Raft service.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// The size of one snapshot chunk: far below [`MAX_MESSAGE_BYTES`].
pub const SNAPSHOT_CHUNK_BYTES: u64 = 1024 * 1024;
