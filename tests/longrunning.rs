//! The google.longrunning.Operations door over a live three-node cluster:
//! the same tasks, rules and faults as vtask.v1, seen as AIP-151 Operations.
//! (clients/python/tests run Google's own Python stubs against it too.)

use std::time::{Duration, Instant};

use prost::Message;
use tonic::transport::Channel;
use tonic::Code;
use vtask_model::{AnyValue, CreateTask, FaultKind, MethodFault, MoRef, State};
use vtask_proto::convert::status_to_fault;
use vtask_proto::google::longrunning::{
    operation, operations_client::OperationsClient, CancelOperationRequest, DeleteOperationRequest,
    GetOperationRequest, ListOperationsRequest, Operation, WaitOperationRequest,
};
use vtask_proto::{v1, ANY_VALUE_TYPE_URL, METHOD_FAULT_TYPE_URL, TASK_INFO_TYPE_URL};
use vtask_tests::{Cluster, ClusterConfig};

fn args(vm: &str, cancelable: bool) -> CreateTask {
    CreateTask {
        obj: MoRef::new("VirtualMachine", vm),
        task_type_id: "com.example.lro".into(),
        cancelable,
        ..Default::default()
    }
}

async fn operations(cluster: &Cluster, node: u64) -> OperationsClient<Channel> {
    OperationsClient::new(cluster.channel(node).await.unwrap())
}

fn request<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("x-vtask-user", "alice".parse().unwrap());
    request
}

fn name(key: &str) -> String {
    format!("operations/{key}")
}

async fn get(client: &mut OperationsClient<Channel>, key: &str) -> Operation {
    client
        .get_operation(request(GetOperationRequest { name: name(key) }))
        .await
        .unwrap()
        .into_inner()
}

fn metadata(op: &Operation) -> v1::TaskInfo {
    let any = op.metadata.as_ref().expect("metadata");
    assert_eq!(any.type_url, TASK_INFO_TYPE_URL);
    v1::TaskInfo::decode(any.value.as_slice()).unwrap()
}

fn fault_of(status: &tonic::Status) -> FaultKind {
    status_to_fault(status)
        .unwrap_or_else(|| panic!("no fault in {status:?}"))
        .kind
}

/// An Operation follows its task: not done while it runs, done with the
/// result as `response` or the fault as `error`, on whichever node is
/// asked; WaitOperation returns when another client finishes the task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_follow_their_tasks_on_every_node() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let client =
        vtask_client::Client::new(cluster.endpoints().split(',').map(String::from).collect())
            .user("alice");
    let task = client.create_task(args("vm-1", true)).await.unwrap();
    let key = task.key.to_string();

    let mut node2 = operations(&cluster, 2).await;
    let op = get(&mut node2, &key).await;
    assert_eq!(op.name, format!("operations/{key}"));
    assert!(!op.done);
    assert!(op.result.is_none());
    assert_eq!(metadata(&op).key, key);

    // A short wait on a running task returns it not done, after the timeout.
    client
        .set_task_state(&key, State::Running, None, None)
        .await
        .unwrap();
    let mut node3 = operations(&cluster, 3).await;
    let started = Instant::now();
    let op = node3
        .wait_operation(request(WaitOperationRequest {
            name: name(&key),
            timeout: Some(prost_types::Duration {
                seconds: 0,
                nanos: 300_000_000,
            }),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(!op.done);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(metadata(&op).state, v1::TaskInfoState::Running as i32);

    // A long wait returns as soon as another client finishes the task.
    let waiter = tokio::spawn({
        let mut node3 = node3.clone();
        let name = name(&key);
        async move {
            node3
                .wait_operation(request(WaitOperationRequest {
                    name,
                    timeout: Some(prost_types::Duration {
                        seconds: 30,
                        nanos: 0,
                    }),
                }))
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "WaitOperation returned early");
    client
        .set_task_state(
            &key,
            State::Success,
            Some(AnyValue::String("vm-1 backed up".into())),
            None,
        )
        .await
        .unwrap();
    let op = waiter.await.unwrap().unwrap().into_inner();
    assert!(op.done);
    let Some(operation::Result::Response(any)) = &op.result else {
        panic!("no response in {op:?}");
    };
    assert_eq!(any.type_url, ANY_VALUE_TYPE_URL);
    let result = v1::AnyValue::decode(any.value.as_slice()).unwrap();
    assert_eq!(
        result.value,
        Some(v1::any_value::Value::StringValue("vm-1 backed up".into()))
    );

    // A task that ends in error is an Operation with the fault as its error.
    let failed = client.create_task(args("vm-2", false)).await.unwrap();
    let failed_key = failed.key.to_string();
    client
        .set_task_state(&failed_key, State::Running, None, None)
        .await
        .unwrap();
    client
        .set_task_state(
            &failed_key,
            State::Error,
            None,
            Some(MethodFault::not_supported("the datastore is read-only")),
        )
        .await
        .unwrap();
    let op = get(&mut node2, &failed_key).await;
    assert!(op.done);
    let Some(operation::Result::Error(error)) = &op.result else {
        panic!("no error in {op:?}");
    };
    assert_eq!(
        error.code,
        Code::Unimplemented as i32,
        "NotSupported's code"
    );
    assert!(error.message.contains("read-only"), "{}", error.message);
    assert_eq!(error.details.len(), 1);
    assert_eq!(error.details[0].type_url, METHOD_FAULT_TYPE_URL);

    // Unknown operations and malformed names.
    let missing = node2
        .get_operation(request(GetOperationRequest {
            name: name("task-999"),
        }))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert!(matches!(
        fault_of(&missing),
        FaultKind::ManagedObjectNotFound { .. }
    ));
    let malformed = node2
        .get_operation(request(GetOperationRequest { name: key.clone() }))
        .await
        .unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument);
}

/// CancelOperation is CancelTask: the same rules (not cancelable:
/// NotSupported; asked twice: InvalidState) unless a retry carries the
/// same identity, which is applied once (D27). DeleteOperation deletes
/// nothing and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_and_delete_follow_the_task_rules() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let client =
        vtask_client::Client::new(cluster.endpoints().split(',').map(String::from).collect())
            .user("alice");
    let mut ops = operations(&cluster, 1).await;

    let fixed = client.create_task(args("vm-f", false)).await.unwrap();
    let refused = ops
        .cancel_operation(request(CancelOperationRequest {
            name: name(&fixed.key.to_string()),
        }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unimplemented);
    assert_eq!(fault_of(&refused), FaultKind::NotSupported);

    let task = client.create_task(args("vm-c", true)).await.unwrap();
    let key = task.key.to_string();
    client
        .set_task_state(&key, State::Running, None, None)
        .await
        .unwrap();
    let cancel = |seq: &str| {
        let mut r = request(CancelOperationRequest { name: name(&key) });
        r.metadata_mut()
            .insert("vtask-client-id", "lro-test".parse().unwrap());
        r.metadata_mut().insert("vtask-seq", seq.parse().unwrap());
        r
    };
    ops.cancel_operation(cancel("1")).await.unwrap();
    // The same identity again is the same request: answered, not re-applied.
    ops.cancel_operation(cancel("1")).await.unwrap();
    let op = get(&mut ops, &key).await;
    assert!(metadata(&op).cancelled);
    assert!(
        !op.done,
        "a running task ends when its owner sees the cancel"
    );
    let history = client.task_history(&key).await.unwrap();
    assert_eq!(
        history.iter().filter(|c| c.method == "CancelTask").count(),
        1
    );
    // Without an identity a second cancel is a second request.
    let again = ops
        .cancel_operation(request(CancelOperationRequest { name: name(&key) }))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert_eq!(fault_of(&again), FaultKind::InvalidState);

    let running = ops
        .delete_operation(request(DeleteOperationRequest { name: name(&key) }))
        .await
        .unwrap_err();
    assert_eq!(running.code(), Code::FailedPrecondition);
    client
        .set_task_state(&key, State::Success, None, None)
        .await
        .unwrap();
    let finished = ops
        .delete_operation(request(DeleteOperationRequest { name: name(&key) }))
        .await
        .unwrap_err();
    assert_eq!(finished.code(), Code::Unimplemented);
    assert!(get(&mut ops, &key).await.done, "nothing was deleted");
    let unknown = ops
        .delete_operation(request(DeleteOperationRequest {
            name: name("task-999"),
        }))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

/// ListOperations: an AIP-160 filter mapped onto TaskFilterSpec, pages
/// that walk every match once, and a clear refusal of what is not served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_operations_filters_and_pages() {
    let cluster = Cluster::start(ClusterConfig::default()).await.unwrap();
    let client =
        vtask_client::Client::new(cluster.endpoints().split(',').map(String::from).collect())
            .user("alice");
    let mut keys = Vec::new();
    for i in 0..7 {
        let task = client
            .create_task(args(if i % 2 == 0 { "vm-even" } else { "vm-odd" }, true))
            .await
            .unwrap();
        keys.push(task.key.to_string());
    }
    for key in &keys[..3] {
        client
            .set_task_state(key, State::Running, None, None)
            .await
            .unwrap();
        client
            .set_task_state(key, State::Success, None, None)
            .await
            .unwrap();
    }
    let mut ops = operations(&cluster, 2).await;
    let list = |filter: &str, page_size: i32, page_token: String| {
        request(ListOperationsRequest {
            name: "operations".into(),
            filter: filter.into(),
            page_size,
            page_token,
            ..Default::default()
        })
    };
    let names = |ops: &[Operation]| -> Vec<String> { ops.iter().map(|o| o.name.clone()).collect() };

    let done = ops
        .list_operations(list("done = true", 0, String::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        names(&done.operations),
        keys[..3].iter().map(|k| name(k)).collect::<Vec<_>>()
    );
    assert!(done.operations.iter().all(|o| o.done));

    let filter = r#"entity = "VirtualMachine:vm-even" AND (state = QUEUED OR state = SUCCESS)"#;
    let mut walked = Vec::new();
    let mut token = String::new();
    loop {
        let page = ops
            .list_operations(list(filter, 1, token))
            .await
            .unwrap()
            .into_inner();
        assert!(page.operations.len() <= 1);
        walked.extend(names(&page.operations));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let even: Vec<String> = keys.iter().step_by(2).map(|k| name(k)).collect();
    assert_eq!(walked, even);

    for bad in ["progress = 50", "state = DONE", "state = RUNNING AND"] {
        let refused = ops
            .list_operations(list(bad, 0, String::new()))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{bad}");
        assert!(
            matches!(fault_of(&refused), FaultKind::InvalidArgument { .. }),
            "{bad}"
        );
    }
    let other = ops
        .list_operations(request(ListOperationsRequest {
            name: "projects/p/operations".into(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::InvalidArgument);
}
