"""pyVmomi itself against a real 3-node vtask cluster (scripts/soap-test.sh starts it).

VTASK_SOAP_PORTS names the nodes' HTTP ports; the tests talk to a follower-or-any node."""
import os
import threading
import time

import pytest
from pyVim.connect import SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl

PORTS = [int(p) for p in os.environ["VTASK_SOAP_PORTS"].split(",")]


def connect(port=None):
    return SmartConnect(protocol="http", host="127.0.0.1", port=port or PORTS[1], user="alice", pwd="x")


@pytest.fixture
def si():
    return connect()


def new_task(si, cancelable=True):
    return si.content.taskManager.CreateTask(si.content.rootFolder, "com.example.x", "alice", cancelable)


def test_create_run_progress_describe(si):
    info = new_task(si)
    task = info.task
    assert info.state == "queued"
    task.SetTaskState("running")
    task.UpdateProgress(40)
    task.SetTaskDescription(vmodl.LocalizableMessage(key="k.copy", message="Copying"))
    info = task.info
    assert (info.state, info.progress, info.description.message) == ("running", 40, "Copying")
    assert task in si.content.taskManager.recentTask


def test_wait_for_task_waits_while_another_client_finishes_it(si):
    task = new_task(si).task
    task.SetTaskState("running")
    other = vim.Task(task._moId, connect(PORTS[2])._stub)
    threading.Thread(target=lambda: (time.sleep(1.5), other.SetTaskState("success", "done"))).start()
    started = time.time()
    assert WaitForTask(task) == "success"
    assert time.time() - started >= 1.0
    assert task.info.result == "done"


def test_a_task_that_ends_in_a_fault_raises_it(si):
    task = new_task(si).task
    task.SetTaskState("running")
    task.CancelTask()
    assert task.info.cancelled
    task.SetTaskState("error", None, vmodl.fault.RequestCanceled(msg="stopped"))
    with pytest.raises(vmodl.fault.RequestCanceled):
        WaitForTask(task)


def test_faults_are_typed(si):
    task = new_task(si, cancelable=False).task
    task.SetTaskState("success")
    with pytest.raises(vim.fault.InvalidState):
        task.SetTaskState("running")
    with pytest.raises(vmodl.fault.ManagedObjectNotFound):
        vim.Task("task-999999", si._stub).info
