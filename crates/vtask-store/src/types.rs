//! What a log entry carries and what applying it returns.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use vtask_model::{Caller, Command, Outcome, TaskInfo, Timestamp};

openraft::declare_raft_types!(
    /// The openraft type configuration of vtask.
    pub TypeConfig:
        D = Batch,
        R = BatchReply,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
);

/// One Raft entry's payload: the commands the leader's proposer gathered,
/// stamped with the leader's clock. This is our own message, never a public
/// request reused, so the API can change without changing the log.
///
/// The requests are shared: the log keeps recent entries in memory and hands
/// out copies to the replication streams and the state machine, and a copy
/// must not cost a deep clone of every request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub time: Timestamp,
    #[serde(with = "shared_requests")]
    pub requests: Arc<[Request]>,
}

/// `Arc<[Request]>` in the same form as `Vec<Request>` (serde's `rc` feature
/// would do it for every crate of the workspace).
mod shared_requests {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Request;

    pub fn serialize<S: Serializer>(requests: &Arc<[Request]>, s: S) -> Result<S::Ok, S::Error> {
        requests[..].serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<[Request]>, D::Error> {
        Vec::<Request>::deserialize(d).map(Arc::from)
    }
}

/// One command with who sent it and its exactly-once identity (D27).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientRef>,
    pub caller: Caller,
    pub command: Command,
}

/// A client's identity and the sequence number of one of its requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRef {
    pub id: String,
    pub seq: u64,
}

/// The replies to a batch, in the order of its requests.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BatchReply {
    pub outcomes: Vec<Outcome>,
}

/// A client session: which of its recent sequence numbers have a stored
/// reply (in the `replies` family, one key each), so that a retry is answered
/// from there and not applied again. The replies live apart so that a request
/// rewrites this small record, not every reply the session keeps.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub seqs: std::collections::BTreeSet<u64>,
    pub last_seen: Timestamp,
}

/// One change of one task, in revision order (D23).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeRecord {
    pub revision: u64,
    pub kind: ChangeKind,
    /// The task after the change; for a removal, its last state.
    pub info: TaskInfo,
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    pub time: Timestamp,
    pub term: u64,
    pub index: u64,
}

/// What a change did to its task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChangeKind {
    Created,
    Updated,
    /// Removed by retention (D16).
    Removed,
}
