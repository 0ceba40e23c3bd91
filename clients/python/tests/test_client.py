"""The Python client end to end against the real three-node TLS cluster of
conftest.py: task lifecycle, faults, retries, waits and watches, with the
leader killed under a wait and a watch's node killed under the watch."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

import vtask
from vtask import State, WatchKind
from vtask.v1 import task_pb2


def entity() -> str:
    """A VirtualMachine of this test alone, so filters see only its tasks."""
    return f"VirtualMachine:vm-py-{uuid.uuid4().hex[:12]}"


def methods(history) -> list[str]:
    return [change.method for change in history]


# ----------------------------------------------------------------------
# The lifecycle


def test_create_run_progress_describe_and_succeed(client: vtask.Client) -> None:
    vm = entity()
    task = client.create_task(
        "com.example.backup", vm, cancelable=True, entity_name="web-01", change_tag="nightly"
    )
    assert task.key.startswith("task-")
    assert State(task.state) is State.QUEUED
    assert (task.entity.type, task.entity.value) == tuple(vm.split(":"))
    assert task.entity_name == "web-01"
    assert task.description_id == "com.example.backup"
    assert task.cancelable and not task.cancelled
    assert task.reason.user.user_name == "admin"
    assert task.task.type == "Task" and task.task.value == task.key

    running = client.set_task_state(task.key, "running")
    assert State(running.state) is State.RUNNING
    assert running.HasField("start_time")

    progressed = client.update_progress(task.key, 60, progress_details={"disk": "scsi0:0", "done": 3})
    assert progressed.progress == 60
    assert {d.key: vtask.value_of(d.value) for d in progressed.progress_details} == {
        "disk": "scsi0:0",
        "done": 3,
    }
    # Clamped to 0..100 (D28), details kept when not given.
    assert client.update_progress(task.key, 250).progress == 100
    assert len(client.get_task(task.key).progress_details) == 2

    described = client.set_task_description(
        task.key, "com.example.backup.copying", "Copying disks", {"disk": "scsi0:0"}
    )
    assert described.description.key == "com.example.backup.copying"
    assert described.description.message == "Copying disks"

    done = client.set_task_state(task.key, State.SUCCESS, result={"backup": "b-7", "bytes": 1024})
    assert State(done.state) is State.SUCCESS
    assert vtask.value_of(done.result) == {"backup": "b-7", "bytes": 1024}
    assert done.HasField("complete_time") and not done.HasField("error")

    assert client.get_task(task.key) == done
    assert client.get_task(task.key, stale=True).key == task.key
    assert client.wait(task.key, timeout=5) == done

    history = client.task_history(task.key)
    assert methods(history) == [
        "CreateTask",
        "SetTaskState",
        "UpdateProgress",
        "UpdateProgress",
        "SetTaskDescription",
        "SetTaskState",
    ]
    assert {change.actor for change in history} == {"admin"}
    assert [c.revision for c in history] == sorted(c.revision for c in history)
    assert history[-1].info == done


def test_results_of_every_value_type(client: vtask.Client) -> None:
    import datetime as dt

    when = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc)
    for value in ("text", 42, True, 2.5, when, vtask.moref("Datastore:ds-1"), [1, "two"]):
        key = client.create_task("com.example.values", entity()).key
        client.set_task_state(key, "running")
        done = client.set_task_state(key, "success", result=value)
        assert vtask.value_of(done.result) == value
    key = client.create_task("com.example.values", entity()).key
    client.set_task_state(key, "running")
    assert not client.set_task_state(key, "success").HasField("result")


def test_finish_with_a_fault(client: vtask.Client) -> None:
    key = client.create_task("com.example.backup", entity()).key
    client.set_task_state(key, "running")
    cause = vtask.OtherFault("FileNotFound", "disk.vmdk is gone")
    failed = client.set_task_state(
        key, "error", fault=vtask.InvalidState("the disk is busy", fault_cause=cause)
    )
    assert State(failed.state) is State.ERROR
    assert not failed.HasField("result")
    fault = vtask.fault_from_proto(failed.error)
    assert type(fault) is vtask.InvalidState
    assert fault.message == "the disk is busy"
    assert type(fault.fault_cause) is vtask.OtherFault
    assert fault.fault_cause.type_name == "FileNotFound"
    assert str(fault.fault_cause) == "FileNotFound: disk.vmdk is gone"
    assert State(client.wait(key, timeout=5).state) is State.ERROR


def test_a_fault_without_a_message_gets_the_standard_one(client: vtask.Client) -> None:
    key = client.create_task("com.example.backup", entity()).key
    client.set_task_state(key, "running")
    failed = client.set_task_state(key, "error", fault=vtask.RequestCanceled())
    fault = vtask.fault_from_proto(failed.error)
    assert type(fault) is vtask.RequestCanceled
    assert fault.message  # the server filled in the kind's message (D3)


@pytest.mark.parametrize(
    "fault",
    [
        vtask.NotSupported("no"),
        vtask.RequestCanceled("stopped by the user"),
        vtask.ManagedObjectNotFound("gone", obj="VirtualMachine:vm-1"),
        vtask.InvalidArgument("bad", invalid_property="spec.disk"),
        vtask.SystemError("boom", reason="the disk controller failed"),
        vtask.SecurityError("no"),
        vtask.NoPermission("no", object="Folder:group-v3", privilege_id="VirtualMachine.Interact"),
        vtask.NotAuthenticated("who are you"),
        vtask.InvalidState("busy"),
        vtask.OutOfBounds("too far", argument_name="sizeMb"),
        vtask.OtherFault("FileNotFound", "missing"),
    ],
    ids=lambda f: f.kind,
)
def test_every_fault_kind_round_trips_through_a_task(client: vtask.Client, fault) -> None:
    key = client.create_task("com.example.faults", entity()).key
    client.set_task_state(key, "running")
    back = vtask.fault_from_proto(client.set_task_state(key, "error", fault=fault).error)
    assert type(back) is type(fault)
    assert repr(back) == repr(fault)


def test_cancel_a_running_and_a_queued_task(client: vtask.Client) -> None:
    key = client.create_task("com.example.backup", entity(), cancelable=True).key
    client.set_task_state(key, "running")
    cancelled = client.cancel_task(key)
    # Running: only flagged; the owner ends it (D4).
    assert cancelled.cancelled and State(cancelled.state) is State.RUNNING
    ended = client.set_task_state(key, "error", fault=vtask.RequestCanceled("stopped by the user"))
    assert State(ended.state) is State.ERROR and ended.cancelled

    queued = client.create_task("com.example.backup", entity(), cancelable=True).key
    gone = client.cancel_task(queued)
    assert State(gone.state) is State.ERROR and gone.cancelled
    assert type(vtask.fault_from_proto(gone.error)) is vtask.RequestCanceled
    assert "CancelTask" in methods(client.task_history(queued))


def test_list_recent_and_page(client: vtask.Client) -> None:
    vm = entity()
    keys = [client.create_task("com.example.list", vm).key for _ in range(5)]
    client.set_task_state(keys[0], "running")
    everything, token = client.list_tasks(vtask.task_filter(entity=vm))
    assert [t.key for t in everything] == keys and token == ""

    page, token = client.list_tasks(vtask.task_filter(entity=vm), page_size=2)
    assert [t.key for t in page] == keys[:2] and token
    assert [t.key for t in client.iter_tasks(vtask.task_filter(entity=vm), page_size=2)] == keys

    running, _ = client.list_tasks(vtask.task_filter(entity=vm, states=["running"]))
    assert [t.key for t in running] == keys[:1]
    mine, _ = client.list_tasks(vtask.task_filter(entity=vm, users=["admin"], states=[State.QUEUED]))
    assert [t.key for t in mine] == keys[1:]
    assert set(keys) <= {t.key for t in client.recent_tasks()}


def test_collectors(client: vtask.Client) -> None:
    vm = entity()
    keys = [client.create_task("com.example.collect", vm).key for _ in range(3)]
    name, latest = client.create_collector(vtask.task_filter(entity=vm))
    assert name.startswith("collector-")
    assert [t.key for t in latest] == keys[::-1]
    client.rewind_collector(name)
    assert [t.key for t in client.read_next_tasks(name, 2)] == keys[:2]
    assert [t.key for t in client.read_next_tasks(name, 2)] == keys[2:]
    assert client.read_next_tasks(name, 2) == []
    assert [t.key for t in client.set_collector_page_size(name, 1)] == keys[-1:]
    assert [t.key for t in client.latest_page(name)] == keys[-1:]
    client.destroy_collector(name)
    with pytest.raises(vtask.ManagedObjectNotFound):
        client.latest_page(name)


# ----------------------------------------------------------------------
# Faults of calls


def test_managed_object_not_found(client: vtask.Client) -> None:
    with pytest.raises(vtask.ManagedObjectNotFound) as caught:
        client.get_task("task-987654321")
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert (caught.value.obj.type, caught.value.obj.value) == ("Task", "task-987654321")
    assert caught.value.message
    with pytest.raises(vtask.ManagedObjectNotFound):
        client.update_progress("task-987654321", 5)
    with pytest.raises(vtask.ManagedObjectNotFound):
        client.wait("task-987654321", timeout=1)


def test_invalid_state(client: vtask.Client) -> None:
    key = client.create_task("com.example.backup", entity()).key
    with pytest.raises(vtask.InvalidState) as caught:
        client.update_progress(key, 10)  # still queued
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
    client.set_task_state(key, "running")
    client.set_task_state(key, "success")
    with pytest.raises(vtask.InvalidState):
        client.set_task_state(key, "running")
    other = client.create_task("com.example.backup", entity()).key
    with pytest.raises(vtask.InvalidState):
        client.set_task_state(other, "error")  # ERROR needs a fault (spec 3.4)


def test_not_supported(client: vtask.Client) -> None:
    key = client.create_task("com.example.backup", entity(), cancelable=False).key
    client.set_task_state(key, "running")
    with pytest.raises(vtask.NotSupported) as caught:
        client.cancel_task(key)
    assert caught.value.code == grpc.StatusCode.UNIMPLEMENTED


def test_invalid_argument(client: vtask.Client) -> None:
    with pytest.raises(vtask.InvalidArgument) as caught:
        client.create_task("not a type id!", entity())
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.invalid_property == "taskTypeId"
    with pytest.raises(vtask.InvalidArgument) as caught:
        client.create_task("com.example.backup", "VirtualMachine:vm-1", lease=0.001)
    assert caught.value.invalid_property == "lease"


def test_out_of_bounds(client: vtask.Client) -> None:
    key = client.create_task("com.example.backup", entity()).key
    client.set_task_state(key, "running")
    with pytest.raises(vtask.OutOfBounds) as caught:
        client.update_progress(key, 150, api_version=task_pb2.API_VERSION_VIM_2_5)
    assert caught.value.code == grpc.StatusCode.OUT_OF_RANGE
    assert caught.value.argument_name == "percentDone"


def test_no_permission(cluster, client: vtask.Client) -> None:
    key = client.create_task("com.example.backup", entity(), cancelable=True).key
    client.set_task_state(key, "running")
    with cluster.client("viewer") as viewer:
        assert viewer.get_task(key).key == key  # System.View reads
        with pytest.raises(vtask.NoPermission) as caught:
            viewer.create_task("com.example.backup", entity())
        assert type(caught.value) is vtask.NoPermission
        assert caught.value.code == grpc.StatusCode.PERMISSION_DENIED
        assert caught.value.privilege_id == "Task.Create"
        with pytest.raises(vtask.NoPermission) as caught:
            viewer.update_progress(key, 5)
        assert caught.value.privilege_id == "Task.Update"
    with cluster.client("reporter") as reporter:
        with pytest.raises(vtask.NoPermission) as caught:
            reporter.cancel_task(key)
        assert caught.value.privilege_id == "Global.CancelTask"
    assert not client.get_task(key).cancelled


def test_not_authenticated(cluster) -> None:
    for token in (None, "not-a-token-of-this-cluster"):
        with cluster.client(token=token) as anonymous:
            with pytest.raises(vtask.NotAuthenticated) as caught:
                anonymous.create_task("com.example.backup", entity())
            assert caught.value.code == grpc.StatusCode.UNAUTHENTICATED
            assert isinstance(caught.value, vtask.NoPermission)  # as in vSphere


def test_plain_text_to_a_tls_cluster_is_unavailable(cluster) -> None:
    with vtask.Client(cluster.endpoints, token=cluster.tokens["admin"], retry_for=1) as plain:
        start = time.monotonic()
        with pytest.raises(vtask.Unavailable):
            plain.get_task("task-1")
        assert time.monotonic() - start < 10


# ----------------------------------------------------------------------
# Retries (D27)


def test_a_retried_request_is_applied_once(cluster, client: vtask.Client) -> None:
    key = client.create_task("com.example.backup", entity()).key
    client.set_task_state(key, "running")
    request = task_pb2.UpdateProgressRequest(
        header=client.next_header(), task=key, percent_done=30
    )
    first = client.invoke("Task", "UpdateProgress", request)
    # The same client id and seq again, through the client and through every
    # node directly (followers forward it): answered, never applied again.
    again = client.invoke("Task", "UpdateProgress", request)
    direct = [
        client.stubs(node.endpoint).Task.UpdateProgress(request, metadata=client.metadata(), timeout=10)
        for node in cluster.nodes
    ]
    assert again.info == first.info
    assert all(reply.info == first.info for reply in direct)
    assert methods(client.task_history(key)).count("UpdateProgress") == 1
    # A new sequence number is a new call.
    client.update_progress(key, 40)
    assert methods(client.task_history(key)).count("UpdateProgress") == 2


def test_a_retried_create_makes_one_task(client: vtask.Client) -> None:
    from vtask.v1 import task_manager_pb2

    vm = entity()
    request = task_manager_pb2.CreateTaskRequest(
        header=client.next_header(), obj=vtask.moref(vm), task_type_id="com.example.once"
    )
    keys = {client.invoke("TaskManager", "CreateTask", request).info.key for _ in range(3)}
    assert len(keys) == 1
    assert len(client.list_tasks(vtask.task_filter(entity=vm))[0]) == 1


def test_calls_go_to_the_leader_once_a_reply_named_it(cluster, client: vtask.Client) -> None:
    client.create_task("com.example.backup", entity())
    assert client.preferred_endpoint == cluster.leader().endpoint


def test_the_client_is_safe_to_share_between_threads(client: vtask.Client) -> None:
    key = client.create_task("com.example.backup", entity()).key
    client.set_task_state(key, "running")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda p: client.update_progress(key, p), range(1, 41)))
    assert methods(client.task_history(key)).count("UpdateProgress") == 40


# ----------------------------------------------------------------------
# wait()


def finish_later(client: vtask.Client, key: str, delay: float, **state) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        client.set_task_state(key, **state)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_wait_returns_when_another_thread_finishes_the_task(client: vtask.Client) -> None:
    key = client.create_task("com.example.backup", entity()).key
    client.set_task_state(key, "running")
    finisher = finish_later(client, key, 1.0, state="success", result="ok")
    start = time.monotonic()
    done = client.wait(key, timeout=30)
    assert 0.8 < time.monotonic() - start < 10
    assert State(done.state) is State.SUCCESS and vtask.value_of(done.result) == "ok"
    finisher.join()


def test_wait_times_out_with_the_task_as_it_is(client: vtask.Client) -> None:
    key = client.create_task("com.example.backup", entity()).key
    start = time.monotonic()
    info = client.wait(key, timeout=1.0)
    assert 0.9 < time.monotonic() - start < 5
    assert State(info.state) is State.QUEUED


def test_a_wait_may_outlast_the_per_call_timeout(cluster) -> None:
    # The deadline of a WaitTask attempt is the wait plus the call timeout,
    # so a wait longer than `timeout` is no error.
    with cluster.client(timeout=1.0) as c:
        key = c.create_task("com.example.backup", entity()).key
        start = time.monotonic()
        assert State(c.wait(key, timeout=2.5).state) is State.QUEUED
        assert 2.4 < time.monotonic() - start < 6


def test_wait_survives_a_leader_kill(all_nodes) -> None:
    cluster = all_nodes
    with cluster.client() as owner, cluster.client() as waiter:
        key = owner.create_task("com.example.backup", entity()).key
        owner.set_task_state(key, "running")
        waiter.get_task(key)
        leader = cluster.leader()
        # The waiter's wait goes to the leader, which is killed under it.
        waiter._preferred = waiter.endpoints.index(leader.endpoint)
        result: dict = {}

        def wait() -> None:
            try:
                result["info"] = waiter.wait(key, timeout=60)
            except BaseException as e:  # reported below
                result["error"] = e

        thread = threading.Thread(target=wait, daemon=True)
        thread.start()
        time.sleep(1.0)
        assert thread.is_alive()
        cluster.kill(leader)
        # The owner finishes it through whichever node leads next.
        owner.update_progress(key, 90)
        owner.set_task_state(key, "error", fault=vtask.SystemError("power loss", reason="psu"))
        thread.join(60)
        assert not thread.is_alive()
        assert "error" not in result, result.get("error")
        info = result["info"]
        assert State(info.state) is State.ERROR and info.progress == 90
        assert type(vtask.fault_from_proto(info.error)) is vtask.SystemError
        assert waiter.preferred_endpoint != leader.endpoint
        assert cluster.leader() is not leader


# ----------------------------------------------------------------------
# watch()


def test_watch_a_task_from_its_current_state(client: vtask.Client) -> None:
    key = client.create_task("com.example.backup", entity()).key
    with client.watch(key) as watch:
        first = watch.next(timeout=10)
        assert first.kind is WatchKind.CURRENT and first.info.key == key
        synced = watch.next(timeout=10)
        assert synced.kind is WatchKind.SYNCED and synced.info is None
        assert watch.resume_revision == synced.revision + 1
        client.set_task_state(key, "running")
        client.update_progress(key, 50)
        client.set_task_state(key, "success")
        events = [watch.next(timeout=10) for _ in range(3)]
    assert [e.kind for e in events] == [WatchKind.UPDATED] * 3
    assert [State(e.info.state) for e in events] == [State.RUNNING, State.RUNNING, State.SUCCESS]
    assert events[1].info.progress == 50
    assert [e.revision for e in events] == sorted({e.revision for e in events})
    assert [e.revision for e in events] == [c.revision for c in client.task_history(key)[1:]]


def test_watch_a_filter_from_a_revision(client: vtask.Client) -> None:
    vm = entity()
    before = client.create_task("com.example.backup", vm)
    revision = client.task_history(before.key)[0].revision
    with client.watch(filter=vtask.task_filter(entity=vm), start_revision=revision + 1) as watch:
        other = client.create_task("com.example.backup", entity())  # not selected
        created = client.create_task("com.example.backup", vm)
        event = watch.next(timeout=10)
        assert (event.kind, event.info.key) == (WatchKind.CREATED, created.key)
        with pytest.raises(TimeoutError):
            watch.next(timeout=0.5)
    assert other.key != created.key


def test_watch_of_an_unknown_task_raises_the_fault(client: vtask.Client) -> None:
    with client.watch("task-987654321") as watch:
        with pytest.raises(vtask.ManagedObjectNotFound):
            watch.next(timeout=20)


def test_watch_resumes_on_another_node_when_its_node_is_killed(all_nodes) -> None:
    cluster = all_nodes
    with cluster.client() as owner, cluster.client() as watcher:
        key = owner.create_task("com.example.backup", entity()).key
        watch = watcher.watch(key)
        assert watch.next(timeout=10).kind is WatchKind.CURRENT
        assert watch.next(timeout=10).kind is WatchKind.SYNCED
        owner.set_task_state(key, "running")
        for percent in (10, 20):
            owner.update_progress(key, percent)
        seen = [watch.next(timeout=10) for _ in range(3)]
        assert [e.info.progress for e in seen[1:]] == [10, 20]
        node = cluster.node(watch.endpoint)
        cluster.kill(node)
        for percent in (30, 40, 50):
            owner.update_progress(key, percent)
        owner.set_task_state(key, "success")
        later = [watch.next(timeout=30) for _ in range(4)]
        watch.close()
        assert watch.endpoint != node.endpoint
        assert [e.kind for e in later] == [WatchKind.UPDATED] * 4
        assert [e.info.progress for e in later[:3]] == [30, 40, 50]
        assert State(later[-1].info.state) is State.SUCCESS
        # Nothing missed, nothing twice: the revisions are those of the history.
        history = owner.task_history(key)
        assert [e.revision for e in seen + later] == [c.revision for c in history[1:]]


# ----------------------------------------------------------------------
# Endpoints that do not answer


def dead_endpoint() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def test_an_endpoint_that_does_not_answer_is_skipped(cluster) -> None:
    with vtask.Client(
        [dead_endpoint()] + cluster.endpoints, token=cluster.tokens["admin"], ca=str(cluster.ca)
    ) as c:
        key = c.create_task("com.example.backup", entity()).key
        assert c.preferred_endpoint in cluster.endpoints
        c._preferred = 0  # the dead one first again
        assert c.get_task(key).key == key
        c._preferred = 0
        with c.watch(key) as watch:
            assert watch.next(timeout=10).kind is WatchKind.CURRENT
            assert watch.endpoint in cluster.endpoints
        c._preferred = 0
        assert State(c.wait(key, timeout=0.5).state) is State.QUEUED


def test_no_node_answering_is_unavailable_after_the_retry_window() -> None:
    with vtask.Client([dead_endpoint(), dead_endpoint()], retry_for=1.0) as c:
        start = time.monotonic()
        with pytest.raises(vtask.Unavailable) as caught:
            c.create_task("com.example.backup", entity())
        assert 1.0 <= time.monotonic() - start < 5
        assert caught.value.code == grpc.StatusCode.UNAVAILABLE
        start = time.monotonic()
        with c.watch() as watch, pytest.raises(vtask.Unavailable):
            watch.next(timeout=10)
        assert time.monotonic() - start < 5
