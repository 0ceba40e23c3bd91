//! The binary format of everything vtask writes on the write path: log
//! entries, the Raft wire payloads (`vtask-raft` uses this module) and the
//! values of every column family (value format 4).
//!
//! It is MessagePack with named fields (`rmp_serde::to_vec_named`). The
//! model types are shaped for JSON (internally tagged enums, optional fields
//! left out, flattened structs), and a positional format cannot carry
//! those; MessagePack with names can, so the derived serde code is the
//! schema and evolves as it does in JSON: a new field needs a
//! `#[serde(default)]`, a removed one is ignored. It is self-describing,
//! which the tagged enums need, and cheaper than JSON to write and to read
//! (no number formatting, no string escaping, lengths up front).

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A value that is not what its reader expected.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DecodeError(#[from] rmp_serde::decode::Error);

/// Encodes one value.
pub fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    // Writing into a Vec fails only for a type whose Serialize impl fails,
    // and none of ours does: every map key and value has a MessagePack form.
    rmp_serde::to_vec_named(value).expect("vtask values encode to MessagePack")
}

/// Decodes one value.
pub fn from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    Ok(rmp_serde::from_slice(bytes)?)
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload, LogId, Membership, Vote};
    use vtask_model::{Caller, Command, Outcome, Reply, Timestamp};

    use super::*;
    use crate::{Batch, ClientRef, Request, Session, TypeConfig};

    type Entry = openraft::Entry<TypeConfig>;

    fn round_trip<T>(value: &T)
    where
        T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let bytes = to_bytes(value);
        assert_eq!(&from_bytes::<T>(&bytes).unwrap(), value);
        assert_eq!(to_bytes(&from_bytes::<T>(&bytes).unwrap()), bytes);
    }

    fn log_id(index: u64) -> LogId<u64> {
        LogId::new(CommittedLeaderId::new(3, 1), index)
    }

    #[test]
    fn log_entries_round_trip() {
        let batch = Batch {
            time: Timestamp::from_micros(1_700_000_000_000_000),
            requests: vec![Request {
                client: Some(ClientRef {
                    id: "client-1".into(),
                    seq: 7,
                }),
                caller: Caller::Anonymous,
                command: Command::CancelTask {
                    task: "task-42".into(),
                },
            }]
            .into(),
        };
        let nodes = [(1u64, openraft::BasicNode::new("127.0.0.1:7001"))];
        let membership =
            Membership::new(vec![[1u64].into()], std::collections::BTreeMap::from(nodes));
        let entries = [
            Entry {
                log_id: log_id(1),
                payload: EntryPayload::Blank,
            },
            Entry {
                log_id: log_id(2),
                payload: EntryPayload::Normal(batch),
            },
            Entry {
                log_id: log_id(3),
                payload: EntryPayload::Membership(membership),
            },
        ];
        for entry in &entries {
            let bytes = to_bytes(entry);
            let back: Entry = from_bytes(&bytes).unwrap();
            assert_eq!(back.log_id, entry.log_id);
            assert_eq!(to_bytes(&back), bytes);
        }
        let Entry {
            payload: EntryPayload::Normal(back),
            ..
        } = from_bytes(&to_bytes(&entries[1])).unwrap()
        else {
            panic!("a normal entry decodes as one");
        };
        let EntryPayload::Normal(sent) = &entries[1].payload else {
            unreachable!()
        };
        assert_eq!(&back, sent);
    }

    #[test]
    fn raft_bookkeeping_and_state_values_round_trip() {
        round_trip(&Vote::new_committed(4, 2));
        round_trip(&Some(log_id(9)));
        round_trip(&None::<LogId<u64>>);
        round_trip(&Session {
            seqs: [1, 2, 3, 9].into(),
            last_seen: Timestamp::from_micros(5),
        });
        round_trip(&Outcome::Ok(Reply::Done));
        round_trip(&u64::MAX);
        round_trip(&"cluster-id".to_string());
    }

    #[test]
    fn a_nan_is_stored_as_it_is() {
        let bytes = to_bytes(&f64::NAN);
        assert!(from_bytes::<f64>(&bytes).unwrap().is_nan());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [&b""[..], b"\xc1", b"{\"a\":1}", b"\x92\x01"] {
            assert!(from_bytes::<Session>(bytes).is_err(), "{bytes:?}");
        }
    }
}
