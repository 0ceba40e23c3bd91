//! Hostile input on a live cluster: malformed, truncated and oversized
//! requests on the public API and on the internal Raft service, overlong
//! names and filters, and more open watches than a user may hold. Each gets
//! a clear error naming what was wrong, the node keeps serving, and the
//! replicated state does not change.

use std::time::Duration;

use prost::bytes::{Buf, BufMut};
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status};
use vtask_client::{Client, Error, WatchSelector};
use vtask_model::{CreateTask, FaultKind, MoRef, TaskFilterSpec};
use vtask_proto::v1;
use vtask_tests::{Cluster, ClusterConfig};

/// Sends and receives bytes as they are, so a test can put anything on the wire.
#[derive(Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

async fn raw_call(cluster: &Cluster, id: u64, path: &'static str, body: Vec<u8>) -> Status {
    // Sent as a member of this cluster would (its id in the metadata), so
    // the payload itself is what the node judges.
    let cluster_id = cluster.status(id).await.unwrap().cluster_id;
    let mut request = tonic::Request::new(body);
    request
        .metadata_mut()
        .insert("vtask-cluster-id", cluster_id.parse().unwrap());
    let channel = cluster.channel(id).await.unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    match grpc
        .unary(
            request,
            tonic::codegen::http::uri::PathAndQuery::from_static(path),
            Raw,
        )
        .await
    {
        Ok(_) => Status::ok("accepted"),
        Err(status) => status,
    }
}

fn args(vm: &str) -> CreateTask {
    CreateTask {
        obj: MoRef::new("VirtualMachine", vm),
        task_type_id: "com.example.limits".into(),
        ..Default::default()
    }
}

fn invalid_argument(error: Error) -> String {
    match error {
        Error::Fault(fault) if matches!(fault.kind, FaultKind::InvalidArgument { .. }) => {
            fault.localized_message.unwrap_or_default()
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_clear_errors_and_change_nothing() {
    let cluster = Cluster::start(ClusterConfig {
        extra_args: vec!["--max-watches-per-user".into(), "2".into()],
        ..ClusterConfig::default()
    })
    .await
    .unwrap();
    let client = Client::new(cluster.endpoints().split(',').map(String::from).collect())
        .retry_for(Duration::from_secs(10))
        .user("mallory");
    let task = client.create_task(args("vm-1")).await.unwrap();
    let key = task.key.to_string();
    // Arguments of a task method are checked by the model at apply: the
    // refusal is the entry's reply (remembered for retries, D27), and the
    // task table does not change. Everything below is refused before the log.
    let long = "x".repeat(300);
    let message = invalid_argument(
        client
            .create_task(CreateTask {
                task_type_id: long.clone(),
                ..args("vm-2")
            })
            .await
            .unwrap_err(),
    );
    assert!(message.contains("taskTypeId must be 1 to 256"), "{message}");
    let before = cluster.converged(Duration::from_secs(10)).await.unwrap();
    let leader = cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .unwrap();
    let applied_before = cluster.status(leader).await.unwrap().applied_index;

    let valid = v1::CreateTaskRequest {
        obj: Some(v1::ManagedObjectReference {
            r#type: "VirtualMachine".into(),
            value: "vm-raw".into(),
        }),
        task_type_id: "com.example.raw".into(),
        ..Default::default()
    }
    .encode_to_vec();
    let create = "/vtask.v1.TaskManager/CreateTask";
    let forward = "/vtask.raft.v1.RaftService/Forward";
    let append = "/vtask.raft.v1.RaftService/AppendEntries";
    let mut cases: Vec<(&str, &'static str, Vec<u8>, Code, &str)> = vec![
        ("garbage", create, vec![0xff; 64], Code::Internal, "decode"),
        (
            "truncated",
            create,
            valid[..valid.len() - 3].to_vec(),
            Code::Internal,
            "decode",
        ),
        (
            "oversized",
            create,
            vec![0x0a; 2 * 1024 * 1024],
            Code::OutOfRange,
            "the limit is: 1048576 bytes",
        ),
        (
            "garbage, internal",
            append,
            vec![0xff; 64],
            Code::Internal,
            "decode",
        ),
        (
            "truncated, internal",
            forward,
            vtask_proto::raft::v1::ForwardRequest {
                proposal: b"{\"Propose\":{}}".to_vec(),
            }
            .encode_to_vec()[..6]
                .to_vec(),
            Code::Internal,
            "decode",
        ),
    ];
    for (bytes, label) in [
        (b"not json".to_vec(), "bad payload, internal"),
        (
            b"{\"Propose\":{\"caller\":1}}".to_vec(),
            "wrong shape, internal",
        ),
    ] {
        cases.push((
            label,
            forward,
            vtask_proto::raft::v1::ForwardRequest { proposal: bytes }.encode_to_vec(),
            Code::InvalidArgument,
            "undecodable Raft payload",
        ));
    }
    for (label, path, body, code, message) in cases {
        for id in cluster.ids() {
            let status = raw_call(&cluster, id, path, body.clone()).await;
            assert_eq!(status.code(), code, "{label} on node {id}: {status:?}");
            assert!(
                status.message().contains(message),
                "{label} on node {id}: {:?} does not say {message:?}",
                status.message()
            );
        }
    }

    // Names and filters beyond their bounds are refused before the log.
    let message = invalid_argument(client.get_task(&long, false).await.unwrap_err());
    assert!(
        message.contains("key is longer than 256 characters"),
        "{message}"
    );
    let message = invalid_argument(client.update_progress(&long, 5).await.unwrap_err());
    assert!(
        message.contains("task is longer than 256 characters"),
        "{message}"
    );
    let wide = TaskFilterSpec {
        tag: (0..300).map(|i| format!("tag-{i}")).collect(),
        ..TaskFilterSpec::default()
    };
    for result in [
        client.list_tasks(wide.clone(), 10, "").await.map(|_| ()),
        client.create_collector(wide.clone()).await.map(|_| ()),
    ] {
        let message = invalid_argument(result.unwrap_err());
        assert!(
            message.contains("filter.tag has 300 entries, at most 256 are allowed"),
            "{message}"
        );
    }

    // Two watches per user per node; a third is refused with the limit's
    // name, a closed one frees its slot, and another user is not affected.
    let one_node = |user: &str| {
        Client::new(vec![cluster.nodes[&leader].grpc.clone()])
            .retry_for(Duration::from_secs(5))
            .user(user)
    };
    let mallory = one_node("mallory");
    let mut first = mallory.watch(WatchSelector::Task(key.clone()), 0);
    let mut second = mallory.watch(WatchSelector::All, 0);
    first.next().await.unwrap();
    second.next().await.unwrap();
    let mut third = mallory.watch(WatchSelector::All, 0);
    match third.next().await {
        Err(Error::Unavailable(message)) => assert!(
            message.contains("the limit is 2 (max_watches_per_user)"),
            "{message}"
        ),
        other => panic!(
            "a third watch was not refused: {:?}",
            other.map(|e| e.revision)
        ),
    }
    let trent = one_node("trent");
    trent
        .watch(WatchSelector::All, 0)
        .next()
        .await
        .expect("another user has slots of their own");
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut again = mallory.watch(WatchSelector::All, 0);
        match again.next().await {
            Ok(_) => break,
            Err(e) => assert!(
                std::time::Instant::now() < deadline,
                "the closed watch's slot was not freed: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(second);

    // Every node still serves, and nothing reached the replicated state.
    for id in cluster.ids() {
        let node = Client::new(vec![cluster.nodes[&id].grpc.clone()]).user("mallory");
        assert_eq!(node.get_task(&key, false).await.unwrap().key, task.key);
    }
    assert_eq!(
        cluster.converged(Duration::from_secs(10)).await.unwrap(),
        before
    );
    assert_eq!(
        cluster.status(leader).await.unwrap().applied_index,
        applied_before,
        "a refused request was written to the log"
    );
}
