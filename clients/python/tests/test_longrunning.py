"""vtask's tasks as google.longrunning Operations (AIP-151), read with
Google's own generated client (googleapis-common-protos'
``google.longrunning.operations_pb2_grpc.OperationsStub``), on the same
port, with the same TLS and bearer token as ``vtask.v1``.

The contract: an operation is named ``operations/<task key>``; its
``metadata`` packs the ``vtask.v1.TaskInfo``; ``done`` iff the task is in
SUCCESS or ERROR; on success ``response`` packs a ``vtask.v1.AnyValue`` (the
result, empty without one); on error ``error`` is a ``google.rpc.Status``
with the fault's code and message and the ``vtask.v1.MethodFault`` in its
details. ListOperations filters with an AIP-160 subset (terms joined by
AND: ``state``, ``done``, ``entity``, ``initiator``, ``queue_time`` with
inclusive bounds ``>=``/``<=``; OR joins values of one field).
CancelOperation is CancelTask; DeleteOperation of a running task is
FAILED_PRECONDITION (InvalidState), of a finished one UNIMPLEMENTED
(NotSupported).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from typing import Any, Iterator

import grpc
import pytest
from google.longrunning import operations_pb2_grpc, operations_proto_pb2 as ops_pb2
from google.protobuf import duration_pb2

import vtask
from vtask import State
from vtask.v1 import task_info_pb2, types_pb2

TASK_INFO_TYPE_URL = "type.googleapis.com/vtask.v1.TaskInfo"
ANY_VALUE_TYPE_URL = "type.googleapis.com/vtask.v1.AnyValue"


def entity() -> str:
    return f"VirtualMachine:vm-lro-{uuid.uuid4().hex[:12]}"


class Operations:
    """The Operations service through a vtask client's endpoints, retries
    and fault decoding: a refused call raises the fault's exception (its
    ``code`` is the gRPC code), or Unavailable with the code when the status
    carries no fault."""

    def __init__(self, client: vtask.Client) -> None:
        self.client = client

    def __getattr__(self, method: str) -> Any:
        def call(request: Any, timeout: float | None = None, metadata: tuple = ()) -> Any:
            def attempt(stubs, endpoint: str) -> Any:
                stub = operations_pb2_grpc.OperationsStub(stubs.channel)
                return getattr(stub, method)(
                    request,
                    metadata=self.client.metadata() + list(metadata),
                    timeout=timeout or self.client.timeout,
                )

            return self.client.call(attempt)

        return call


@pytest.fixture
def ops(client: vtask.Client) -> Operations:
    return Operations(client)


def name(key: str) -> str:
    return f"operations/{key}"


def task_of(op: ops_pb2.Operation) -> task_info_pb2.TaskInfo:
    assert op.metadata.type_url == TASK_INFO_TYPE_URL
    info = task_info_pb2.TaskInfo()
    assert op.metadata.Unpack(info)
    return info


def response_of(op: ops_pb2.Operation) -> types_pb2.AnyValue:
    assert op.WhichOneof("result") == "response"
    assert op.response.type_url == ANY_VALUE_TYPE_URL
    value = types_pb2.AnyValue()
    assert op.response.Unpack(value)
    return value


def finish_later(client: vtask.Client, key: str, delay: float, **state: Any) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        client.set_task_state(key, **state)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_poll_get_operation_until_another_thread_finishes_the_task(client, ops) -> None:
    key = client.create_task("com.example.backup", entity()).key
    client.set_task_state(key, "running")
    client.update_progress(key, 40)
    op = ops.GetOperation(ops_pb2.GetOperationRequest(name=name(key)))
    assert op.name == name(key) and not op.done
    assert op.WhichOneof("result") is None
    assert task_of(op).progress == 40 and State(task_of(op).state) is State.RUNNING

    finisher = finish_later(client, key, 1.0, state="success", result="backup-7")
    deadline = time.monotonic() + 30
    while not op.done:
        assert time.monotonic() < deadline, "the operation never became done"
        time.sleep(0.1)
        op = ops.GetOperation(ops_pb2.GetOperationRequest(name=name(key)))
    finisher.join()
    assert State(task_of(op).state) is State.SUCCESS
    assert vtask.value_of(response_of(op)) == "backup-7"
    assert task_of(op) == client.get_task(key)


def test_success_without_a_result_is_an_empty_any_value(client, ops) -> None:
    key = client.create_task("com.example.backup", entity()).key
    client.set_task_state(key, "running")
    client.set_task_state(key, "success")
    op = ops.GetOperation(ops_pb2.GetOperationRequest(name=name(key)))
    assert op.done
    assert response_of(op) == types_pb2.AnyValue()


def test_a_failed_task_is_an_operation_error_with_the_fault(client, ops) -> None:
    key = client.create_task("com.example.backup", entity()).key
    client.set_task_state(key, "running")
    client.set_task_state(key, "error", fault=vtask.InvalidState("the disk is busy"))
    op = ops.GetOperation(ops_pb2.GetOperationRequest(name=name(key)))
    assert op.done and op.WhichOneof("result") == "error"
    assert op.error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert "the disk is busy" in op.error.message
    assert [d.type_url for d in op.error.details] == [vtask.METHOD_FAULT_TYPE_URL]
    fault = vtask.fault_from_rpc_status(op.error)
    assert type(fault) is vtask.InvalidState and fault.message == "the disk is busy"

    key = client.create_task("com.example.backup", entity()).key
    client.set_task_state(key, "running")
    client.set_task_state(key, "error", fault=vtask.OtherFault("FileNotFound", "gone"))
    op = ops.GetOperation(ops_pb2.GetOperationRequest(name=name(key)))
    assert op.error.code == grpc.StatusCode.UNKNOWN.value[0]
    assert vtask.fault_from_rpc_status(op.error).type_name == "FileNotFound"


def test_wait_operation(client, ops) -> None:
    key = client.create_task("com.example.backup", entity()).key
    client.set_task_state(key, "running")
    start = time.monotonic()
    op = ops.WaitOperation(
        ops_pb2.WaitOperationRequest(name=name(key), timeout=duration_pb2.Duration(seconds=1))
    )
    assert not op.done and 0.8 < time.monotonic() - start < 10

    finisher = finish_later(client, key, 1.0, state="error", fault=vtask.RequestCanceled("stop"))
    op = ops.WaitOperation(
        ops_pb2.WaitOperationRequest(name=name(key), timeout=duration_pb2.Duration(seconds=30))
    )
    finisher.join()
    assert op.done and State(task_of(op).state) is State.ERROR
    assert op.error.code == grpc.StatusCode.CANCELLED.value[0]


def list_all(ops: Operations, filter: str, page_size: int = 0) -> Iterator[ops_pb2.Operation]:
    token = ""
    while True:
        page = ops.ListOperations(
            ops_pb2.ListOperationsRequest(
                name="operations", filter=filter, page_size=page_size, page_token=token
            )
        )
        if page_size:
            assert len(page.operations) <= page_size
        yield from page.operations
        token = page.next_page_token
        if not token:
            return


def rfc3339(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_list_operations_filters_and_pages(client, ops) -> None:
    vm = entity()
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=60)
    keys = [client.create_task("com.example.lro", vm).key for _ in range(5)]
    for key in keys[:3]:
        client.set_task_state(key, "running")
    client.set_task_state(keys[0], "success")
    on_vm = f'entity = "{vm}"'

    assert [op.name for op in list_all(ops, on_vm)] == [name(k) for k in keys]
    assert [op.name for op in list_all(ops, on_vm, page_size=2)] == [name(k) for k in keys]
    first = ops.ListOperations(ops_pb2.ListOperationsRequest(name="operations", filter=on_vm, page_size=2))
    assert len(first.operations) == 2 and first.next_page_token

    def names(filter: str) -> list[str]:
        return [op.name for op in list_all(ops, filter)]

    assert names(f"{on_vm} AND state = RUNNING") == [name(k) for k in keys[1:3]]
    assert names(f"{on_vm} AND state = QUEUED") == [name(k) for k in keys[3:]]
    assert names(f"{on_vm} AND done = true") == [name(keys[0])]
    assert names(f"{on_vm} AND done = false") == [name(k) for k in keys[1:]]
    assert names(f'{on_vm} AND initiator = "admin"') == [name(k) for k in keys]
    assert names(f'{on_vm} AND initiator = "nobody"') == []
    assert names(f'{on_vm} AND queue_time >= "{rfc3339(before)}"') == [name(k) for k in keys]
    assert names(f'{on_vm} AND queue_time <= "{rfc3339(before)}"') == []
    assert names(f"{on_vm} AND (state = QUEUED OR state = SUCCESS)") == [
        name(k) for k in keys[:1] + keys[3:]
    ]
    assert all(op.done == (State(task_of(op).state).terminal) for op in list_all(ops, on_vm))

    for bad in ("colour = blue", "state = SLEEPING", f"{on_vm} OR done = true"):
        with pytest.raises(vtask.VtaskError) as caught:
            names(bad)
        assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT, bad


def test_cancel_operation(cluster, client, ops) -> None:
    key = client.create_task("com.example.backup", entity(), cancelable=True).key
    client.set_task_state(key, "running")
    ops.CancelOperation(ops_pb2.CancelOperationRequest(name=name(key)))
    op = ops.GetOperation(ops_pb2.GetOperationRequest(name=name(key)))
    assert task_of(op).cancelled and not op.done  # running: the owner ends it (D4)
    assert client.get_task(key).cancelled
    # A cancel sent again with the same retry identity (vtask-client-id and
    # vtask-seq metadata, as a vtask.v1 RequestHeader) is applied once (D27).
    again = client.create_task("com.example.backup", entity(), cancelable=True).key
    client.set_task_state(again, "running")
    header = client.next_header()
    identity = (("vtask-client-id", header.client_id), ("vtask-seq", str(header.seq)))
    for _ in range(3):
        ops.CancelOperation(ops_pb2.CancelOperationRequest(name=name(again)), metadata=identity)
    assert [c.method for c in client.task_history(again)].count("CancelTask") == 1

    stuck = client.create_task("com.example.backup", entity(), cancelable=False).key
    client.set_task_state(stuck, "running")
    with pytest.raises(vtask.NotSupported) as caught:
        ops.CancelOperation(ops_pb2.CancelOperationRequest(name=name(stuck)))
    assert caught.value.code == grpc.StatusCode.UNIMPLEMENTED

    other = client.create_task("com.example.backup", entity(), cancelable=True).key
    client.set_task_state(other, "running")
    with cluster.client("reporter") as reporter:
        with pytest.raises(vtask.NoPermission) as caught:
            Operations(reporter).CancelOperation(ops_pb2.CancelOperationRequest(name=name(other)))
        assert caught.value.privilege_id == "Global.CancelTask"
    assert not client.get_task(other).cancelled


def test_unknown_operation_is_not_found(ops) -> None:
    with pytest.raises(vtask.ManagedObjectNotFound) as caught:
        ops.GetOperation(ops_pb2.GetOperationRequest(name="operations/task-987654321"))
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert caught.value.obj.value == "task-987654321"


def test_delete_operation(client, ops) -> None:
    key = client.create_task("com.example.backup", entity()).key
    client.set_task_state(key, "running")
    with pytest.raises(vtask.InvalidState) as caught:
        ops.DeleteOperation(ops_pb2.DeleteOperationRequest(name=name(key)))
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
    client.set_task_state(key, "success")
    with pytest.raises(vtask.NotSupported) as caught:
        ops.DeleteOperation(ops_pb2.DeleteOperationRequest(name=name(key)))
    assert caught.value.code == grpc.StatusCode.UNIMPLEMENTED
    assert ops.GetOperation(ops_pb2.GetOperationRequest(name=name(key))).done


def test_operations_need_a_token(cluster, client) -> None:
    key = client.create_task("com.example.backup", entity()).key
    with cluster.client(token=None) as anonymous:
        with pytest.raises(vtask.NotAuthenticated) as caught:
            Operations(anonymous).GetOperation(ops_pb2.GetOperationRequest(name=name(key)))
        assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED
