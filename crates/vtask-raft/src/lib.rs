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

/// The gRPC metadata key that carries the caller's cluster id on every call
/// of the internal Raft service; a node of another cluster refuses the call.
pub const CLUSTER_ID_HEADER: &str = "vtask-cluster-id";

/// A node's cluster id, shared between its network (which sends it) and its
/// Raft service (which compares it); `None` until the node knows one.
pub type SharedClusterId = std::sync::Arc<std::sync::RwLock<Option<String>>>;

/// Puts the cluster id, if there is one, into a request's metadata.
pub fn add_cluster_id<T>(request: &mut tonic::Request<T>, cluster_id: &SharedClusterId) {
    let id = cluster_id.read().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(value) = id.and_then(|id| id.parse().ok()) {
        request.metadata_mut().insert(CLUSTER_ID_HEADER, value);
    }
}

/// The leader's round trip of one AppendEntries call (heartbeats included).
pub static APPEND_ENTRIES: vtask_store::latency::Histogram = vtask_store::latency::Histogram::new(
    "vtask_raft_append_entries_seconds",
    "Round trip of one AppendEntries call to a follower, as its leader sees it (heartbeats included).",
);

/// The largest gRPC message a node sends or accepts on the Raft service.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// The size of one snapshot chunk: far below [`MAX_MESSAGE_BYTES`].
pub const SNAPSHOT_CHUNK_BYTES: u64 = 1024 * 1024;
