"""vtask: a Python client of the vtask cluster (the vSphere ``vim.Task`` API,
replicated with Raft).

    import vtask

    client = vtask.Client("127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003",
                          token=open(".dev/admin.token").read().strip(),
                          ca=".dev/certs/ca.pem")
    task = client.create_task("com.example.backup", "VirtualMachine:vm-42", cancelable=True)
    client.set_task_state(task.key, "running")
    client.update_progress(task.key, 60)
    client.set_task_state(task.key, "success", result="backup-7")
    done = client.wait(task.key, timeout=60)
    assert vtask.State(done.state) is vtask.State.SUCCESS

Calls return the generated ``vtask.v1`` messages (``TaskInfo`` etc.); faults
are raised as :class:`MethodFault` subclasses named after the vSphere fault.
The generated modules are ``vtask.v1.*_pb2`` and ``vtask.v1.*_pb2_grpc``.
"""

from vtask import faults as _faults
from vtask.client import DEFAULT_RETRY_FOR, DEFAULT_TIMEOUT, Client, Watch, WatchEvent
from vtask.faults import (
    FAULT_CLASSES,
    METHOD_FAULT_TYPE_URL,
    InvalidArgument,
    InvalidState,
    ManagedObjectNotFound,
    MethodFault,
    NoPermission,
    NotAuthenticated,
    NotSupported,
    OtherFault,
    OutOfBounds,
    ProtocolError,
    RequestCanceled,
    SecurityError,
    SystemError,
    Unavailable,
    VimSystemError,
    VtaskError,
    fault_from_proto,
    fault_from_rpc_status,
    fault_from_status,
)
from vtask.values import (
    State,
    WatchKind,
    any_value,
    duration,
    key_any_values,
    localizable_message,
    moref,
    state_value,
    task_filter,
    timestamp,
    to_datetime,
    value_of,
)

__version__ = "0.1.0"

__all__ = [
    "Client",
    "Watch",
    "WatchEvent",
    "DEFAULT_RETRY_FOR",
    "DEFAULT_TIMEOUT",
    "State",
    "WatchKind",
    *_faults.__all__,
    "any_value",
    "value_of",
    "duration",
    "key_any_values",
    "localizable_message",
    "moref",
    "state_value",
    "task_filter",
    "timestamp",
    "to_datetime",
]
