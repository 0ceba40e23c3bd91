"""pyVmomi itself (PyPI pyvmomi, pyVim.task.WaitForTask) against a real 3-node
vtask cluster over TLS with password logins: the vSphere door at /sdk on every
node's HTTP port (issue 16). scripts/soap-test.sh runs these.

Rulings cited: D5 (NotAuthenticated after ManagedObjectNotFound), D12 (entity
recursion 'self' only), D28 (OutOfBounds only for VI API 2.5)."""

from __future__ import annotations

import hashlib
import hmac
import ssl
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest
from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import SoapStubAdapter, vim, vmodl

VERSION = "vim.version.v8_0_3_0"


def tls(cluster) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cluster.ca))


def host_port(node):
    host, port = node.http.rsplit(":", 1)
    return host, int(port)


def connect(cluster, node=None, user="admin", password=None):
    host, port = host_port(node or cluster.nodes[1])
    return SmartConnect(
        host=host,
        port=port,
        user=user,
        pwd=cluster.passwords[user] if password is None else password,
        sslContext=tls(cluster),
    )


def attach(cluster, node, cookie):
    """A ServiceInstance on `node` that presents `cookie` (no Login)."""
    host, port = host_port(node)
    stub = SoapStubAdapter(host=host, port=port, version=VERSION, sslContext=tls(cluster))
    stub.cookie = cookie
    return vim.ServiceInstance("ServiceInstance", stub)


@pytest.fixture
def si(cluster):
    si = connect(cluster)
    yield si
    Disconnect(si)


def new_task(si, cancelable=True, activation_id=None, type_id="com.example.backup"):
    return si.content.taskManager.CreateTask(
        obj=si.content.rootFolder,
        taskTypeId=type_id,
        initiatedBy="admin",
        cancelable=cancelable,
        activationId=activation_id,
    )


def finish_retrying(task, *args, deadline=30.0):
    """SetTaskState from a second client, retried while the cluster elects."""
    end = time.monotonic() + deadline
    while True:
        try:
            return task.SetTaskState(*args)
        except (vmodl.fault.SystemError, OSError):
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


# -- sessions -----------------------------------------------------------------


def test_login_with_the_users_password_and_current_session(cluster, si):
    session = si.content.sessionManager.currentSession
    assert session.userName == "admin"
    about = si.content.about
    assert about.apiVersion.startswith("8.0") and about.apiType == "VirtualCenter"


@pytest.mark.parametrize("user,password", [("admin", "wrong"), ("nobody", "x"), ("admin", "")])
def test_a_wrong_password_or_user_is_invalid_login(cluster, user, password):
    with pytest.raises(vim.fault.InvalidLogin):
        connect(cluster, user=user, password=password)


def test_a_session_is_valid_on_every_node(cluster, si):
    key = new_task(si).key
    for node in cluster.nodes:
        other = attach(cluster, node, si._stub.cookie)
        assert other.content.sessionManager.currentSession.userName == "admin"
        assert vim.Task(key, other._stub).info.key == key


def _cookie(cluster, user: str, expiry: int, session_id: str) -> str:
    """A session cookie minted as vtaskd does (soap.rs): only the holder of
    the session key file can do this."""
    key = hashlib.sha256(cluster.session_key.read_text().strip().encode()).digest()
    user_hex = user.encode().hex()
    mac = hmac.new(key, f"vtask-soap-session-v1\n{user_hex}\n{expiry}\n{session_id}".encode(), hashlib.sha256)
    return f'vmware_soap_session="{user_hex}.{expiry}.{session_id}.{mac.hexdigest()}"'


def test_missing_forged_and_expired_sessions_are_not_authenticated(cluster, si):
    key = new_task(si).key
    node = cluster.nodes[0]
    good = _cookie(cluster, "admin", int(time.time()) + 600, "a" * 32)
    assert vim.Task(key, attach(cluster, node, good)._stub).info.key == key
    bad = [
        "",  # no session
        'vmware_soap_session="garbage"',
        _cookie(cluster, "admin", int(time.time()) - 1, "a" * 32),  # expired
        good[:-2] + ("0" if good[-2] != "0" else "1") + '"',  # MAC does not match
    ]
    for cookie in bad:
        stranger = attach(cluster, node, cookie)
        with pytest.raises(vim.fault.NotAuthenticated):
            vim.Task(key, stranger._stub).info
        with pytest.raises(vim.fault.NotAuthenticated):
            stranger.content.taskManager.CreateTask(stranger.content.rootFolder, "x.y", "admin", False)
    # D5: an unknown task is ManagedObjectNotFound even without a session.
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        vim.Task("task-999999", attach(cluster, node, "")._stub).info


# -- the task methods -----------------------------------------------------------


def test_create_run_progress_describe_and_recent_task(si):
    info = new_task(si)
    task = info.task
    assert (info.state, info.cancelable, info.descriptionId) == ("queued", True, "com.example.backup")
    task.SetTaskState("running")
    task.UpdateProgress(40)
    task.SetTaskDescription(vmodl.LocalizableMessage(key="k.copy", message="Copying"))
    info = task.info
    assert (info.state, info.progress, info.description.message) == ("running", 40, "Copying")
    assert info.startTime is not None and info.reason.userName == "admin"
    assert task in si.content.taskManager.recentTask


def test_progress_is_clamped_and_vi_api_2_5_gets_out_of_bounds(cluster, si):
    task = new_task(si).task
    task.SetTaskState("running")
    task.UpdateProgress(150)  # D28: the current API clamps
    assert task.info.progress == 100
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
        f'<soapenv:Body><UpdateProgress xmlns="urn:vim25"><_this type="Task">{task._moId}</_this>'
        "<percentDone>150</percentDone></UpdateProgress></soapenv:Body></soapenv:Envelope>"
    )
    status, text = post(cluster, cluster.nodes[0], body, cookie=si._stub.cookie, action="urn:vim25/2.5")
    assert status == 500
    assert "<OutOfBoundsFault" in text and "<argumentName>percentDone</argumentName>" in text, text


def test_wait_for_task_waits_while_another_client_finishes_it(cluster, si):
    task = new_task(si).task
    task.SetTaskState("running")
    other = connect(cluster, cluster.nodes[2])
    theirs = vim.Task(task._moId, other._stub)
    threading.Thread(target=lambda: (time.sleep(1.5), theirs.SetTaskState("success", "done"))).start()
    started = time.monotonic()
    assert WaitForTask(task) == "success"
    assert time.monotonic() - started >= 1.0
    assert task.info.result == "done"
    Disconnect(other)


def test_a_task_that_ends_in_a_fault_raises_it(si):
    task = new_task(si).task
    task.SetTaskState("running")
    task.CancelTask()
    assert task.info.cancelled
    task.SetTaskState("error", None, vmodl.fault.RequestCanceled(msg="stopped"))
    with pytest.raises(vmodl.fault.RequestCanceled):
        WaitForTask(task)
    assert isinstance(task.info.error, vmodl.fault.RequestCanceled)


def test_wait_for_task_survives_a_leader_kill(all_nodes, si):
    """WaitForTask on a node that stays up; the leader dies while it waits;
    another client finishes the task once a new leader is elected."""
    cluster = all_nodes
    leader = cluster.leader()
    waiter_node, finisher_node = [n for n in cluster.nodes if n is not leader]
    waiter = connect(cluster, waiter_node)
    task = new_task(waiter).task
    task.SetTaskState("running")
    outcome = {}

    def wait():
        try:
            outcome["state"] = WaitForTask(task)
        except Exception as e:  # reported below
            outcome["error"] = e

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(1.0)
    assert thread.is_alive(), outcome
    cluster.kill(leader)
    finisher = connect(cluster, finisher_node)
    finish_retrying(vim.Task(task._moId, finisher._stub), "success", "after the failover")
    thread.join(30)
    assert not thread.is_alive(), "WaitForTask did not return"
    assert outcome == {"state": "success"}
    assert task.info.result == "after the failover"


# -- collectors -----------------------------------------------------------------


def test_a_collector_pages_through_the_selected_tasks(si):
    activation = f"act-{uuid.uuid4().hex[:8]}"
    keys = [new_task(si, activation_id=activation).key for _ in range(5)]
    new_task(si)  # not selected
    tm = si.content.taskManager
    collector = tm.CreateCollectorForTasks(vim.TaskFilterSpec(activationId=[activation]))
    assert collector._wsdlName == "TaskHistoryCollector"
    collector.SetCollectorPageSize(3)
    assert [t.key for t in collector.latestPage] == list(reversed(keys))[:3]
    collector.RewindCollector()
    seen = []
    while True:
        page = collector.ReadNextTasks(2)
        if not page:
            break
        seen += [t.key for t in page]
    assert sorted(seen) == sorted(keys)
    collector.DestroyCollector()
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        collector.ReadNextTasks(1)


# -- faults -----------------------------------------------------------------------


def test_faults_are_typed(cluster, si):
    task = new_task(si, cancelable=False).task
    with pytest.raises(vmodl.fault.NotSupported):
        task.CancelTask()  # the task is not cancelable
    task.SetTaskState("success")
    with pytest.raises(vim.fault.InvalidState):
        task.SetTaskState("running")
    with pytest.raises(vmodl.fault.ManagedObjectNotFound) as e:
        vim.Task("task-999999", si._stub).info
    assert e.value.obj._moId == "task-999999"
    with pytest.raises(vmodl.fault.InvalidArgument):
        new_task(si, type_id="")
    with pytest.raises(vmodl.fault.NotSupported):  # D12: no inventory tree
        si.content.taskManager.CreateCollectorForTasks(
            vim.TaskFilterSpec(entity=vim.TaskFilterSpec.ByEntity(entity=si.content.rootFolder, recursion="all"))
        )


def test_no_permission_names_the_privilege(cluster, si):
    viewer = connect(cluster, user="viewer")
    with pytest.raises(vim.fault.NoPermission) as e:
        new_task(viewer)
    assert e.value.privilegeId == "Task.Create"
    reporter = connect(cluster, user="reporter")
    task = new_task(si).task
    with pytest.raises(vim.fault.NoPermission) as e:
        vim.Task(task._moId, reporter._stub).CancelTask()
    assert e.value.privilegeId == "Global.CancelTask"
    assert vim.Task(task._moId, viewer._stub).info.state == "queued"  # viewers read


# -- bad input: a fault, no change -------------------------------------------------


def post(cluster, node, body, cookie="", action="urn:vim25/8.0.3.0", scheme="https"):
    request = urllib.request.Request(
        f"{scheme}://{node.http}/sdk",
        data=body if isinstance(body, bytes) else body.encode(),
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": action, "Cookie": cookie},
    )
    context = tls(cluster) if scheme == "https" else None
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def applied(cluster):
    """Every node's last log index, once they agree (a follower may still be
    receiving what earlier tests wrote)."""
    import json

    deadline = time.monotonic() + 10
    while True:
        out = []
        for node in cluster.nodes:
            with urllib.request.urlopen(f"http://{node.http}/status", timeout=5) as r:
                out.append(json.load(r)["lastLogIndex"])
        if len(set(out)) == 1 or time.monotonic() > deadline:
            return out
        time.sleep(0.05)


def test_bad_requests_get_faults_and_change_nothing(cluster, si):
    cookie = si._stub.cookie
    envelope = '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>{}</soapenv:Body></soapenv:Envelope>'
    cases = [
        ("<soapenv:Envelope", "InvalidRequest"),  # malformed
        ("not xml at all \x00", "InvalidRequest"),
        (envelope.format(""), "InvalidRequest"),  # no method
        (envelope.format('<DestroyDatacenter xmlns="urn:vim25"><_this type="Folder">group-d1</_this></DestroyDatacenter>'), "InvalidRequest"),
        (envelope.format('<CancelTask xmlns="urn:vim25"><_this type="Folder">group-d1</_this></CancelTask>'), "MethodNotFound"),
        (envelope.format('<UpdateProgress xmlns="urn:vim25"><_this type="Task">task-1</_this><percentDone>lots</percentDone></UpdateProgress>'), "InvalidRequest"),
        (envelope.format('<CreateTask xmlns="urn:vim25"><_this type="TaskManager">TaskManager</_this></CreateTask>'), "InvalidRequest"),
        (envelope.format('<Fetch xmlns="urn:vim25"><_this type="HostSystem">host-1</_this><prop>name</prop></Fetch>'), "ManagedObjectNotFound"),
        (envelope.format('<Fetch xmlns="urn:vim25"><_this type="TaskManager">TaskManager</_this><prop>nothing</prop></Fetch>'), "InvalidProperty"),
        (b"<a>" * 400_000, "InvalidRequest"),  # over 1 MiB
        ("<!DOCTYPE x [<!ENTITY a 'aaaa'>]><x>&a;</x>", "InvalidRequest"),
    ]
    before = applied(cluster)
    for body, fault in cases:
        status, text = post(cluster, cluster.nodes[0], body, cookie=cookie)
        assert status == 500 and f"<{fault}Fault" in text, (body[:80], status, text[:300])
    assert applied(cluster) == before, "a bad request wrote a log entry"


def test_plain_http_to_a_tls_node_is_refused_with_a_reason(cluster):
    status, text = post(cluster, cluster.nodes[0], "<x/>", scheme="http")
    assert status == 403 and "TLS only" in text
