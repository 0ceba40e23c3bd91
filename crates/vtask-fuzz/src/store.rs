//! The targets that need the store: the internal service's requests and
//! the snapshot reader.

use std::io::SeekFrom;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, SnapshotMeta};
use tokio::io::AsyncSeekExt;
use vtask_model::{Caller, Command, CreateTask, MoRef, Privileges, TaskFilterSpec, Timestamp};
use vtask_proto::raft::v1::{ForwardRequest, RaftRequest, SnapshotChunk};
use vtask_raft::codec::{decode, install_snapshot_request};
use vtask_store::{Batch, NodeId, Request, StateMachine, TypeConfig};

use crate::roundtrip;

/// The shape of a follower's `Forward` call (vtaskd's `Forwarded`): a
/// proposal carries a whole log request, caller included.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
enum Forwarded {
    Propose(Request),
    ReadIndex,
}

/// Every internal request type: the first byte picks the RPC, the rest is
/// its protobuf encoding; payloads that decode are decoded further exactly
/// as `RaftService` does.
pub fn internal_request(data: &[u8]) {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 => {
            if let Some(r) = roundtrip::<RaftRequest>(bytes) {
                let _ = decode::<openraft::raft::AppendEntriesRequest<TypeConfig>>(&r.payload);
            }
        }
        1 => {
            if let Some(r) = roundtrip::<RaftRequest>(bytes) {
                let _ = decode::<openraft::raft::VoteRequest<NodeId>>(&r.payload);
            }
        }
        2 => {
            if let Some(chunk) = roundtrip::<SnapshotChunk>(bytes) {
                let _ = install_snapshot_request(chunk);
            }
        }
        _ => {
            if let Some(r) = roundtrip::<ForwardRequest>(bytes) {
                let _ = decode::<Forwarded>(&r.proposal);
            }
        }
    }
    // Feed the raw bytes to the request decoder too, so the fuzzer reaches
    // it without having to find the protobuf framing. Compared as bytes: a
    // request may hold a NaN, which is not equal to itself.
    if let Ok(request) = decode::<Request>(bytes) {
        let encoded = vtask_raft::codec::encode(&request);
        let again: Request = decode(&encoded).expect("re-decodes");
        assert_eq!(
            vtask_raft::codec::encode(&again),
            encoded,
            "re-encoding changed the request"
        );
    }
}

type Meta = SnapshotMeta<NodeId, openraft::BasicNode>;

/// The snapshot reader (`StateMachine::install_snapshot`) against a real
/// store: the first input byte picks raw bytes, a mutated real snapshot, or
/// a mutated real snapshot with its checksum made right again (so the
/// mutation reaches the record decoder and the reads after it).
pub struct SnapshotTarget {
    _dir: tempfile::TempDir,
    sm: StateMachine,
    runtime: tokio::runtime::Runtime,
    valid: Vec<u8>,
    meta: Meta,
    rehash: bool,
}

impl SnapshotTarget {
    /// A store with a few tasks and a collector, and a snapshot of it.
    pub fn new() -> SnapshotTarget {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (_, mut sm) = vtask_store::open(dir.path()).expect("a store");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let caller = Caller::user("alice", Privileges::ALL);
        let requests: Vec<Request> = (1..=4)
            .map(|i| Request {
                client: None,
                caller: caller.clone(),
                command: Command::CreateTask(CreateTask {
                    obj: MoRef::new("VirtualMachine", format!("vm-{i}")),
                    task_type_id: "com.example.fuzz".into(),
                    ..Default::default()
                }),
            })
            .chain([Request {
                client: None,
                caller: caller.clone(),
                command: Command::CreateCollector {
                    filter: TaskFilterSpec::default(),
                    max_per_owner: 8,
                },
            }])
            .collect();
        let entry: Entry<TypeConfig> = Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), 1),
            payload: EntryPayload::Normal(Batch {
                time: Timestamp(1_700_000_000_000_000),
                requests: requests.into(),
            }),
        };
        let (valid, meta) = runtime.block_on(async {
            sm.apply(vec![entry]).await.expect("apply");
            let mut snapshot = sm
                .get_snapshot_builder()
                .await
                .build_snapshot()
                .await
                .expect("a snapshot");
            let mut bytes = Vec::new();
            snapshot
                .snapshot
                .seek(SeekFrom::Start(0))
                .await
                .expect("seek");
            tokio::io::AsyncReadExt::read_to_end(&mut snapshot.snapshot, &mut bytes)
                .await
                .expect("read the snapshot");
            (bytes, snapshot.meta)
        });
        SnapshotTarget {
            _dir: dir,
            sm,
            runtime,
            valid,
            meta,
            rehash: false,
        }
    }

    /// Also tries mutated snapshots whose checksum is made right again, so
    /// that mutations reach the record decoder (this mode found records
    /// that were written before they were known to decode; see
    /// `snapshot_with_a_valid_checksum_and_corrupt_records`).
    pub fn with_rehash(mut self) -> SnapshotTarget {
        self.rehash = true;
        self
    }

    /// A real snapshot's bytes, for the corpus.
    pub fn valid(&self) -> &[u8] {
        &self.valid
    }

    pub fn run(&mut self, data: &[u8]) {
        let Some((&mode, rest)) = data.split_first() else {
            return;
        };
        let modes = if self.rehash { 3 } else { 2 };
        let bytes = match mode % modes {
            0 => rest.to_vec(),
            mode => {
                let mut bytes = self.valid.clone();
                // Pairs of (position, xor); a short tail truncates.
                for pair in rest.chunks(3) {
                    match pair {
                        [hi, lo, x] => {
                            let at = usize::from(u16::from_le_bytes([*lo, *hi])) % bytes.len();
                            bytes[at] ^= x;
                        }
                        [cut, ..] => bytes.truncate(bytes.len() * usize::from(*cut) / 256),
                        [] => {}
                    }
                }
                if mode == 2 && bytes.len() > 32 {
                    let body = bytes.len() - 32;
                    let digest = <sha2::Sha256 as sha2::Digest>::digest(&bytes[..body]);
                    bytes[body..].copy_from_slice(&digest);
                }
                bytes
            }
        };
        let read = self.sm.read_view();
        let before = read.digest().expect("digest before");
        let installed = self.install(&bytes);
        // Whatever was installed, every read answers without panicking.
        let after = read.digest();
        if let Err(why) = &installed {
            assert_eq!(
                after.expect("digest after a refused snapshot"),
                before,
                "a refused snapshot changed the state (mode {mode}, {} bytes): {why}",
                bytes.len()
            );
        }
        for key in ["task-1", "task-3", "task-9"] {
            let _ = read.lookup(key);
        }
        let _ = read.scan(0, 10, &TaskFilterSpec::default());
        let _ = read.changes_since(0, 10);
        let _ = read.collector(vtask_model::CollectorId(1));
        let _ = read.current(|_| true);
        // Back to the real snapshot, so each input starts from the same state.
        if installed.is_ok() {
            let valid = self.valid.clone();
            self.install(&valid).expect("the real snapshot installs");
        }
    }

    fn install(&mut self, bytes: &[u8]) -> Result<(), String> {
        use tokio::io::AsyncWriteExt;
        let meta = self.meta.clone();
        let sm = &mut self.sm;
        self.runtime.block_on(async {
            let mut file = sm
                .begin_receiving_snapshot()
                .await
                .map_err(|e| e.to_string())?;
            file.write_all(bytes).await.map_err(|e| e.to_string())?;
            file.flush().await.map_err(|e| e.to_string())?;
            file.seek(SeekFrom::Start(0))
                .await
                .map_err(|e| e.to_string())?;
            sm.install_snapshot(&meta, file)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

impl Default for SnapshotTarget {
    fn default() -> Self {
        SnapshotTarget::new()
    }
}
