//! The fuzz targets in the ordinary test suite: every file of
//! `corpus/<target>/` is replayed (crashes that were found stay there as
//! regression inputs), then a bounded number of random inputs, from a fixed
//! seed (`VTASK_FUZZ_SEED` picks another; `VTASK_FUZZ_RUNS` sets the count).

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files
        .into_iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect()
}

/// xorshift64*: enough to spread inputs, and reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let seed = std::env::var("VTASK_FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x5eed_7a5c);
        eprintln!("seed {seed} (VTASK_FUZZ_SEED)");
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Random bytes, or a corpus input with a few bytes changed, cut or added.
    fn input(&mut self, seeds: &[Vec<u8>]) -> Vec<u8> {
        let len = (self.next() % 512) as usize;
        if self.next().is_multiple_of(2) {
            return (0..len).map(|_| self.next() as u8).collect();
        }
        let mut bytes = seeds[(self.next() as usize) % seeds.len()].clone();
        for _ in 0..1 + self.next() % 8 {
            match self.next() % 4 {
                0 if !bytes.is_empty() => {
                    let at = (self.next() as usize) % bytes.len();
                    bytes[at] ^= self.next() as u8 | 1;
                }
                1 if !bytes.is_empty() => {
                    let at = (self.next() as usize) % bytes.len();
                    bytes.truncate(at.max(1));
                }
                2 => {
                    let at = (self.next() as usize) % (bytes.len() + 1);
                    bytes.insert(at, self.next() as u8);
                }
                _ if bytes.len() > 1 => {
                    // Keep the selector byte, so the input stays aimed at one type.
                    let at = 1 + (self.next() as usize) % (bytes.len() - 1);
                    bytes[at] = self.next() as u8;
                }
                _ => {}
            }
        }
        bytes
    }
}

fn runs(default: usize) -> usize {
    std::env::var("VTASK_FUZZ_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn exercise(target: &str, default_runs: usize, mut run: impl FnMut(&[u8])) {
    let seeds = corpus(target);
    for input in &seeds {
        run(input);
    }
    let mut rng = Rng::seeded();
    let n = runs(default_runs);
    for _ in 0..n {
        run(&rng.input(&seeds));
    }
    eprintln!("{target}: {} corpus inputs, {n} random inputs", seeds.len());
}

#[test]
fn public_request() {
    exercise("public_request", 200_000, vtask_fuzz::public_request);
}

#[test]
fn apply_commands() {
    exercise("apply_commands", 50_000, vtask_fuzz::apply_commands);
}

#[test]
fn internal_request() {
    exercise("internal_request", 200_000, vtask_fuzz::internal_request);
}

#[test]
fn snapshot() {
    let mut target = vtask_fuzz::SnapshotTarget::new();
    // Every install goes through RocksDB with an fsync: fewer runs.
    exercise("snapshot", 300, |data| target.run(data));
}

/// Found by this target: a snapshot whose checksum is right but whose
/// records do not decode was written to the store before
/// `StateMachine::install_snapshot` found out (in its reload), leaving
/// corrupt state behind. The reader now decodes every record before the
/// write, and a refused snapshot changes nothing.
#[test]
fn snapshot_with_a_valid_checksum_and_corrupt_records() {
    let mut target = vtask_fuzz::SnapshotTarget::new().with_rehash();
    // Before the fix, the default seed failed within the first 300 inputs.
    exercise("snapshot", 300, |data| target.run(data));
}

/// Writes the seed corpus (valid inputs of every type); run with
/// `--ignored` after a wire change. Found crashes are added by hand.
#[test]
#[ignore]
fn write_seed_corpus() {
    use prost::Message;
    use vtask_proto::v1;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let write = |target: &str, name: &str, bytes: Vec<u8>| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    let tagged = |tag: u8, body: Vec<u8>| [vec![tag], body].concat();
    let moref = Some(v1::ManagedObjectReference {
        r#type: "VirtualMachine".into(),
        value: "vm-1".into(),
    });
    let header = Some(v1::RequestHeader {
        client_id: "fuzz".into(),
        seq: 1,
    });
    let filter = Some(v1::TaskFilterSpec {
        tag: vec!["a".into()],
        parent_task_key: vec!["task-1".into()],
        ..Default::default()
    });
    let public: Vec<(u8, Vec<u8>)> = vec![
        (
            0,
            v1::CreateTaskRequest {
                header: header.clone(),
                obj: moref.clone(),
                task_type_id: "com.example.x".into(),
                cancelable: true,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            1,
            v1::CancelTaskRequest {
                header: header.clone(),
                task: "task-1".into(),
            }
            .encode_to_vec(),
        ),
        (
            2,
            v1::UpdateProgressRequest {
                header: header.clone(),
                task: "task-1".into(),
                percent_done: 50,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            3,
            v1::SetTaskStateRequest {
                header: header.clone(),
                task: "task-1".into(),
                state: 2,
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            4,
            v1::SetTaskDescriptionRequest {
                header: header.clone(),
                task: "task-1".into(),
                description: Some(v1::LocalizableMessage {
                    key: "k".into(),
                    ..Default::default()
                }),
            }
            .encode_to_vec(),
        ),
        (
            5,
            v1::GetTaskRequest {
                key: "task-1".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            6,
            v1::ListTasksRequest {
                filter: filter.clone(),
                page_size: 10,
                page_token: "task-3".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
        (
            8,
            v1::WatchTasksRequest {
                selector: Some(v1::watch_tasks_request::Selector::Filter(
                    filter.clone().unwrap(),
                )),
                start_revision: 3,
            }
            .encode_to_vec(),
        ),
        (
            9,
            v1::WaitTaskRequest {
                key: "task-1".into(),
                timeout: Some(prost_types::Duration {
                    seconds: 1,
                    nanos: 5,
                }),
            }
            .encode_to_vec(),
        ),
        (
            11,
            v1::CreateCollectorForTasksRequest {
                header: header.clone(),
                filter: filter.clone(),
            }
            .encode_to_vec(),
        ),
        (
            12,
            v1::ReadNextTasksRequest {
                header: header.clone(),
                collector: "collector-1".into(),
                max_count: 5,
            }
            .encode_to_vec(),
        ),
        (
            16,
            v1::SetCollectorPageSizeRequest {
                header,
                collector: "collector-1".into(),
                max_count: 5,
            }
            .encode_to_vec(),
        ),
    ];
    for (tag, body) in public {
        write(
            "public_request",
            &format!("seed-{tag:02}"),
            tagged(tag, body),
        );
    }
    for (i, seed) in [[0u8; 64], [0x11; 64], [0x5a; 64], [0xff; 64]]
        .iter()
        .enumerate()
    {
        let mut bytes = seed.to_vec();
        for (j, b) in bytes.iter_mut().enumerate() {
            *b = b.wrapping_add((j * (i + 3)) as u8);
        }
        write("apply_commands", &format!("seed-{i}"), bytes);
    }
    let request = vtask_store::Request {
        client: Some(vtask_store::ClientRef {
            id: "c".into(),
            seq: 1,
        }),
        caller: vtask_model::Caller::user("alice", vtask_model::Privileges::ALL),
        command: vtask_model::Command::CancelTask {
            task: "task-1".into(),
        },
    };
    let request_json = vtask_raft::codec::encode(&request);
    let forward = format!(
        "{{\"Propose\":{}}}",
        String::from_utf8(request_json.clone()).unwrap()
    );
    let vote = openraft::raft::VoteRequest::<vtask_store::NodeId>::new(
        openraft::Vote::new(2, 1),
        Some(openraft::LogId::new(
            openraft::CommittedLeaderId::new(1, 1),
            3,
        )),
    );
    write(
        "internal_request",
        "seed-vote",
        tagged(
            1,
            vtask_proto::raft::v1::RaftRequest {
                payload: vtask_raft::codec::encode(&vote),
            }
            .encode_to_vec(),
        ),
    );
    write(
        "internal_request",
        "seed-forward",
        tagged(
            3,
            vtask_proto::raft::v1::ForwardRequest {
                proposal: forward.into_bytes(),
            }
            .encode_to_vec(),
        ),
    );
    write("internal_request", "seed-request", request_json);
    write(
        "internal_request",
        "seed-chunk",
        tagged(
            2,
            vtask_proto::raft::v1::SnapshotChunk {
                meta: b"{}".to_vec(),
                offset: 0,
                data: vec![1, 2, 3],
                done: true,
            }
            .encode_to_vec(),
        ),
    );
    let target = vtask_fuzz::SnapshotTarget::new();
    write("snapshot", "seed-valid", tagged(0, target.valid().to_vec()));
    write("snapshot", "seed-flip", vec![1, 0, 40, 0x20, 0, 90, 0x01]);
    write(
        "snapshot",
        "seed-flip-rehashed",
        vec![2, 0, 60, 0x08, 0, 120, 0x40],
    );
    write("snapshot", "seed-truncated", vec![1, 128]);
}
