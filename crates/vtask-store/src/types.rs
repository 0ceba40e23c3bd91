//! What a log entry carries and what applying it returns.

use std::collections::BTreeSet;
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
    /// Stored as runs of consecutive numbers (`[[first, last], ...]`): a
    /// client numbers its calls 1, 2, 3, ..., so a full window is one pair,
    /// not 128 numbers to write on every request.
    #[serde(with = "seq_runs")]
    pub seqs: BTreeSet<u64>,
    pub last_seen: Timestamp,
}

/// What the `replies` family holds for one request (D27). A reply that
/// returns a task as one change of this request left it refers to that
/// change record instead of repeating the task: the record already holds it,
/// and a progress update is then one `TaskInfo` encoding smaller.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StoredReply {
    /// The outcome itself: a fault, or a reply that is no one change's task.
    Outcome(Outcome),
    /// `Ok(Reply::Task { info })` where `info` is the task of the change
    /// record at `revision` (a change of task number `task`).
    Change { task: u64, revision: u64 },
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

mod seq_runs {
    use std::collections::BTreeSet;

    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// More numbers than any session keeps: a stored session claiming more is
    /// corrupt, and expanding it could exhaust memory.
    const MAX_SEQS: u64 = 4 * crate::state_machine::SESSION_WINDOW as u64;

    pub fn serialize<S: Serializer>(seqs: &BTreeSet<u64>, s: S) -> Result<S::Ok, S::Error> {
        let mut runs: Vec<[u64; 2]> = Vec::new();
        for &seq in seqs {
            match runs.last_mut() {
                Some(run) if run[1].checked_add(1) == Some(seq) => run[1] = seq,
                _ => runs.push([seq, seq]),
            }
        }
        runs.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<u64>, D::Error> {
        let runs = Vec::<[u64; 2]>::deserialize(d)?;
        let mut total = 0u64;
        let mut seqs = BTreeSet::new();
        for [first, last] in runs {
            let len = last
                .checked_sub(first)
                .and_then(|n| n.checked_add(1))
                .ok_or_else(|| {
                    D::Error::custom(format!("sequence run {first}..{last} is empty"))
                })?;
            total = total.saturating_add(len);
            if total > MAX_SEQS {
                return Err(D::Error::custom(format!(
                    "a session holds more than {MAX_SEQS} sequence numbers"
                )));
            }
            seqs.extend(first..=last);
        }
        Ok(seqs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_stores_its_sequence_numbers_as_runs() {
        let cases: &[(&[u64], &str)] = &[
            (&[], "[]"),
            (&[7], "[[7,7]]"),
            (&[1, 2, 3, 4], "[[1,4]]"),
            (&[1, 2, 5, 6, 9], "[[1,2],[5,6],[9,9]]"),
            (
                &[u64::MAX - 1, u64::MAX],
                "[[18446744073709551614,18446744073709551615]]",
            ),
        ];
        for (seqs, runs) in cases {
            let session = Session {
                seqs: seqs.iter().copied().collect(),
                last_seen: Timestamp::from_micros(5),
            };
            let json = serde_json::to_string(&session).unwrap();
            assert!(json.contains(&format!("\"seqs\":{runs}")), "{json}");
            assert_eq!(serde_json::from_str::<Session>(&json).unwrap(), session);
        }
    }

    #[test]
    fn a_corrupt_session_is_refused_not_expanded() {
        let good = serde_json::to_string(&Session {
            seqs: [1].into(),
            last_seen: Timestamp::from_micros(5),
        })
        .unwrap();
        assert!(serde_json::from_str::<Session>(&good).is_ok(), "{good}");
        for runs in [
            "[[5,4]]",
            "[[0,18446744073709551615]]",
            "[[1,300],[400,700]]",
        ] {
            let bad = good.replace("[[1,1]]", runs);
            assert_ne!(bad, good);
            assert!(serde_json::from_str::<Session>(&bad).is_err(), "{bad}");
        }
    }
}
