"""The vtask client: what ``crates/vtask-client`` does, for Python.

A :class:`Client` knows several endpoints. Every node accepts every call (a
follower forwards writes to the leader), so the client tries the endpoints
in turn while they answer ``UNAVAILABLE`` (or ``DEADLINE_EXCEEDED``,
``CANCELLED``, or ``UNKNOWN`` without a fault) or do not answer at all, for at most
``retry_for`` seconds. The endpoint it tries first is the leader once a
reply's ``leader_hint`` named it, else the last one that answered.

Each mutating call gets one sequence number in its ``RequestHeader``, and
every retry of that call re-sends the same client id and number, so the
cluster answers a retry with the first reply and never applies it twice
(D27). A vSphere fault is raised as the :class:`~vtask.faults.MethodFault`
subclass of its kind; trouble that outlasts the retry window is
:class:`~vtask.faults.Unavailable`.

Results are the generated messages of ``proto/vtask/v1`` (``TaskInfo`` of
``vtask.v1.task_info_pb2`` and so on): read ``info.key``, ``State(info.state)``,
``info.progress``, ``value_of(info.result)``, ``fault_from_proto(info.error)``.

A client is safe to share between threads.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence, TypeVar, Union

import grpc
from google.protobuf import empty_pb2

from vtask.faults import MethodFault, ProtocolError, Unavailable, VtaskError, fault_from_status
from vtask.v1 import (
    cluster_pb2,
    cluster_pb2_grpc,
    fault_pb2,
    filter_pb2,
    task_info_pb2,
    task_manager_pb2,
    task_manager_pb2_grpc,
    task_pb2,
    task_pb2_grpc,
    types_pb2,
)
from vtask.values import (
    MoRefLike,
    State,
    WatchKind,
    any_value,
    duration,
    key_any_values,
    localizable_message,
    moref,
    state_value,
)

__all__ = ["Client", "Watch", "WatchEvent", "DEFAULT_RETRY_FOR", "DEFAULT_TIMEOUT"]

T = TypeVar("T")
TaskInfo = task_info_pb2.TaskInfo

#: How long a call keeps trying while no node answers, in seconds.
DEFAULT_RETRY_FOR = 15.0
#: The deadline of one attempt of one call, in seconds.
DEFAULT_TIMEOUT = 30.0
#: The longest WaitTask a node serves (the server caps a wait at 10 minutes).
_MAX_SERVER_WAIT = 600.0
#: The pause after every endpoint failed once, before the next round.
_ROUND_PAUSE = 0.2

#: Codes that mean "this node could not serve the call now": try the next.
#: CANCELLED: a stopping node closed the connection under the call.
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
    }
)

_SERVICES = ("Task", "TaskManager", "Cluster")


class _Stubs:
    """The three services of one node, over one channel."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.channel = channel
        self.Task = task_pb2_grpc.TaskStub(channel)
        self.TaskManager = task_manager_pb2_grpc.TaskManagerStub(channel)
        self.Cluster = cluster_pb2_grpc.ClusterStub(channel)


def _read_ca(ca: Union[str, bytes, os.PathLike, None]) -> Optional[bytes]:
    if ca is None:
        return None
    if isinstance(ca, bytes):
        return ca
    with open(ca, "rb") as f:
        return f.read()


class Client:
    """A connection to a vtask cluster.

    Args:
        endpoints: the nodes' gRPC addresses, ``HOST:PORT``, as a list or a
            comma separated string (as ``VTASK_ENDPOINTS``).
        token: a bearer token; every call carries ``authorization: Bearer <token>``.
        ca: the cluster CA's certificate (a PEM file's path, or its bytes):
            talk TLS and trust only that CA. Without it the client talks
            plain text.
        user: names the caller (``x-vtask-user``) on a cluster that runs
            without authentication (``vtaskd --insecure``).
        client_id: the ``RequestHeader.client_id``; by default a fresh one.
            Give an earlier one (with ``first_seq`` past its last sequence
            number) to resume that identity so its retries are still recognised.
        retry_for: how long (seconds) a call keeps trying while no node answers.
        timeout: the deadline (seconds) of one attempt of a call.
        tls_server_name: the name to check the nodes' certificates for, when
            it is not the endpoint's host.
        channel_options: extra gRPC channel arguments.
    """

    def __init__(
        self,
        endpoints: Union[str, Sequence[str]],
        *,
        token: Optional[str] = None,
        ca: Union[str, bytes, os.PathLike, None] = None,
        user: Optional[str] = None,
        client_id: Optional[str] = None,
        first_seq: int = 1,
        retry_for: float = DEFAULT_RETRY_FOR,
        timeout: float = DEFAULT_TIMEOUT,
        tls_server_name: Optional[str] = None,
        channel_options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        if isinstance(endpoints, str):
            endpoints = [e.strip() for e in endpoints.split(",") if e.strip()]
        if not endpoints:
            raise ValueError("a client needs at least one endpoint")
        self._endpoints = list(endpoints)
        self._client_id = client_id or f"vtask-py-{os.getpid()}-{time.time_ns():x}"
        self._seq = first_seq
        self._seq_lock = threading.Lock()
        #: Index of the endpoint tried first: the leader once a reply named it.
        self._preferred = 0
        self._token = token
        self._user = user
        self._ca = _read_ca(ca)
        self.retry_for = float(retry_for)
        self.timeout = float(timeout)
        self._options = [
            # A node that went away is dialled again soon after it is back,
            # not after gRPC's default backoff of up to two minutes.
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.min_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2000),
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ]
        if tls_server_name:
            self._options.append(("grpc.ssl_target_name_override", tls_server_name))
        self._options.extend(channel_options)
        self._stubs: dict[str, _Stubs] = {}
        self._stubs_lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_env(cls, **kwargs: Any) -> "Client":
        """A client configured like the ``vtask`` CLI: ``VTASK_ENDPOINTS``
        (default the dev cluster), ``VTASK_TOKEN``, ``VTASK_CA``,
        ``VTASK_USER``; keyword arguments win."""
        env = os.environ
        kwargs.setdefault(
            "endpoints", env.get("VTASK_ENDPOINTS", "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003")
        )
        for name, var in (("token", "VTASK_TOKEN"), ("ca", "VTASK_CA"), ("user", "VTASK_USER")):
            if env.get(var):
                kwargs.setdefault(name, env[var])
        endpoints = kwargs.pop("endpoints")
        return cls(endpoints, **kwargs)

    # ------------------------------------------------------------------
    # Plumbing

    @property
    def endpoints(self) -> list[str]:
        return list(self._endpoints)

    @property
    def client_id(self) -> str:
        return self._client_id

    @property
    def preferred_endpoint(self) -> str:
        """The endpoint tried first: the leader, once a reply named it."""
        return self._endpoints[self._preferred]

    def next_header(self) -> types_pb2.RequestHeader:
        """A ``RequestHeader`` with the next sequence number: one per logical call."""
        with self._seq_lock:
            seq = self._seq
            self._seq += 1
        return types_pb2.RequestHeader(client_id=self._client_id, seq=seq)

    def metadata(self) -> list[tuple[str, str]]:
        """The metadata every call carries (token, user)."""
        md = []
        if self._user:
            md.append(("x-vtask-user", self._user))
        if self._token:
            md.append(("authorization", f"Bearer {self._token}"))
        return md

    def stubs(self, endpoint: str) -> _Stubs:
        """The ``Task``, ``TaskManager`` and ``Cluster`` stubs of one node
        (attributes of those names), over a channel kept for the client's
        life; call them with ``metadata=client.metadata()``."""
        with self._stubs_lock:
            if self._closed:
                raise VtaskError("the client is closed")
            stubs = self._stubs.get(endpoint)
            if stubs is None:
                if self._ca is not None:
                    creds = grpc.ssl_channel_credentials(root_certificates=self._ca)
                    channel = grpc.secure_channel(endpoint, creds, options=self._options)
                else:
                    channel = grpc.insecure_channel(endpoint, options=self._options)
                stubs = self._stubs[endpoint] = _Stubs(channel)
            return stubs

    def close(self) -> None:
        """Closes every channel; calls in flight fail, and later calls raise
        :class:`VtaskError`."""
        with self._stubs_lock:
            stubs, self._stubs = self._stubs, {}
            self._closed = True
        for s in stubs.values():
            s.channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def call(self, attempt: Callable[[_Stubs, str], T]) -> T:
        """Runs ``attempt(stubs, endpoint)`` against the endpoints in turn
        until one answers with something other than "unavailable", for at
        most the retry window. A fault is raised at once as its
        :class:`MethodFault`; any other error that is not worth retrying as
        :class:`Unavailable` with its code, as the Rust client does."""
        deadline = time.monotonic() + self.retry_for
        last = "no endpoint given"
        n = len(self._endpoints)
        while True:
            first = self._preferred
            for i in range(n):
                at = (first + i) % n
                addr = self._endpoints[at]
                try:
                    value = attempt(self.stubs(addr), addr)
                except grpc.RpcError as error:
                    fault = fault_from_status(error)
                    if fault is not None:
                        raise fault from None
                    code = error.code() if hasattr(error, "code") else None
                    details = error.details() if hasattr(error, "details") else str(error)
                    if code in RETRYABLE:
                        last = f"{addr}: {code.name if code else '?'}: {details}"
                        continue
                    raise Unavailable(f"{addr}: {details}", code) from None
                self._preferred = at
                return value
            if time.monotonic() >= deadline:
                raise Unavailable(
                    f"no node answered within {self.retry_for:g}s (last: {last})",
                    grpc.StatusCode.UNAVAILABLE,
                )
            time.sleep(_ROUND_PAUSE)

    def invoke(
        self,
        service: str,
        method: str,
        request: Any,
        *,
        timeout: Optional[float] = None,
    ) -> Any:
        """One unary call of ``service.method`` (``"Task"``, ``"TaskManager"``
        or ``"Cluster"``) through :meth:`call`: ``request`` goes out
        unchanged on every retry (so a mutation keeps its header), with
        this client's metadata. The reply is returned as it is; its
        ``leader_hint``, when it names one of the endpoints, becomes the
        endpoint tried first."""
        if service not in _SERVICES:
            raise ValueError(f"service {service!r}: one of {', '.join(_SERVICES)}")
        per_attempt = self.timeout if timeout is None else timeout

        def attempt(stubs: _Stubs, addr: str) -> Any:
            rpc = getattr(getattr(stubs, service), method)
            return rpc(request, metadata=self.metadata(), timeout=per_attempt)

        reply = self.call(attempt)
        self._note_leader(reply)
        return reply

    def _note_leader(self, reply: Any) -> None:
        hint = getattr(reply, "leader_hint", "")
        if hint and hint in self._endpoints:
            self._preferred = self._endpoints.index(hint)

    @staticmethod
    def _info(reply: Any) -> TaskInfo:
        if not reply.HasField("info"):
            raise ProtocolError("the server sent no TaskInfo")
        return reply.info

    # ------------------------------------------------------------------
    # vim.TaskManager

    def create_task(
        self,
        task_type_id: str,
        entity: MoRefLike,
        *,
        cancelable: bool = False,
        entity_name: Optional[str] = None,
        initiated_by: Optional[str] = None,
        parent_task_key: Optional[str] = None,
        activation_id: Optional[str] = None,
        change_tag: Optional[str] = None,
        lease: Optional[float] = None,
    ) -> TaskInfo:
        """``TaskManager.CreateTask``: the new task, queued.

        Args:
            task_type_id: becomes ``descriptionId``, e.g. ``"com.example.backup"``.
            entity: the object the task acts on, ``"VirtualMachine:vm-42"``.
            cancelable: whether ``CancelTask`` may cancel it.
            initiated_by: the user the task is shown as started by (default: the caller).
            lease: seconds (or a timedelta): the owner must call a ``Task``
                method within each such period, or the task fails (D26).
        """
        request = task_manager_pb2.CreateTaskRequest(
            header=self.next_header(),
            obj=moref(entity),
            task_type_id=task_type_id,
            cancelable=cancelable,
        )
        for field, value in (
            ("entity_name", entity_name),
            ("initiated_by", initiated_by),
            ("parent_task_key", parent_task_key),
            ("activation_id", activation_id),
            ("change_tag", change_tag),
        ):
            if value is not None:
                setattr(request, field, value)
        if lease is not None:
            request.lease.CopyFrom(duration(lease))
        return self._info(self.invoke("TaskManager", "CreateTask", request))

    def get_task(self, key: str, *, stale: bool = False) -> TaskInfo:
        """``TaskManager.GetTask``: linearizable unless ``stale`` (then the
        answering node's state, which may lag the leader)."""
        request = task_manager_pb2.GetTaskRequest(key=key, consistency=_consistency(stale))
        return self._info(self.invoke("TaskManager", "GetTask", request))

    def list_tasks(
        self,
        filter: Optional[filter_pb2.TaskFilterSpec] = None,  # noqa: A002 - the API's name
        page_size: int = 0,
        page_token: str = "",
        *,
        stale: bool = False,
    ) -> tuple[list[TaskInfo], str]:
        """``TaskManager.ListTasks``, one page in ascending key order: the
        tasks and the next page's token (empty on the last page). Build the
        filter with :func:`vtask.task_filter`; ``page_size`` 0 is the
        server's default (at most 1000)."""
        request = task_manager_pb2.ListTasksRequest(
            filter=filter or filter_pb2.TaskFilterSpec(),
            page_size=page_size,
            page_token=page_token,
            consistency=_consistency(stale),
        )
        reply = self.invoke("TaskManager", "ListTasks", request)
        return list(reply.tasks), reply.next_page_token

    def iter_tasks(
        self,
        filter: Optional[filter_pb2.TaskFilterSpec] = None,  # noqa: A002
        page_size: int = 0,
    ) -> Iterator[TaskInfo]:
        """Every task the filter selects, page after page."""
        token = ""
        while True:
            tasks, token = self.list_tasks(filter, page_size, token)
            yield from tasks
            if not token:
                return

    def recent_tasks(self) -> list[TaskInfo]:
        """``TaskManager.RecentTasks`` (D17): queued, running, and those
        completed in the last 10 minutes."""
        request = task_manager_pb2.RecentTasksRequest(
            consistency=types_pb2.READ_CONSISTENCY_LINEARIZABLE
        )
        return list(self.invoke("TaskManager", "RecentTasks", request).tasks)

    def task_history(self, key: str) -> list[task_manager_pb2.TaskChange]:
        """``TaskManager.GetTaskHistory`` (D23): every change of the task,
        oldest first, with method, actor, time, Raft term and index."""
        request = task_manager_pb2.GetTaskHistoryRequest(
            key=key, consistency=types_pb2.READ_CONSISTENCY_LINEARIZABLE
        )
        return list(self.invoke("TaskManager", "GetTaskHistory", request).changes)

    def wait(self, key: str, timeout: float) -> TaskInfo:
        """Waits (``TaskManager.WaitTask``) until the task ends or ``timeout``
        seconds pass, and returns the task as it is then: check
        ``State(info.state).terminal`` to tell a timeout. If the node it
        waits on goes away (even the leader, killed), the wait goes on at
        another node, for the time that is left."""
        deadline = time.monotonic() + timeout
        while True:

            def attempt(stubs: _Stubs, addr: str) -> Any:
                left = max(0.0, deadline - time.monotonic())
                chunk = min(left, _MAX_SERVER_WAIT)
                request = task_manager_pb2.WaitTaskRequest(key=key, timeout=duration(chunk))
                return stubs.TaskManager.WaitTask(
                    request, metadata=self.metadata(), timeout=chunk + self.timeout
                )

            info = self._info(self.call(attempt))
            if State(info.state).terminal or time.monotonic() >= deadline:
                return info

    def watch(
        self,
        task: Optional[str] = None,
        *,
        filter: Optional[filter_pb2.TaskFilterSpec] = None,  # noqa: A002
        start_revision: int = 0,
        buffer: int = 1024,
    ) -> "Watch":
        """Follows one task (``task``), the tasks a filter selects, or every
        task (neither): ``TaskManager.WatchTasks`` from ``start_revision``
        (0: their current state first, as CURRENT events and a SYNCED).
        See :class:`Watch`: it resumes on another node after the last
        change it received when the node it reads from goes away."""
        if task is not None and filter is not None:
            raise ValueError("watch a task or a filter, not both")
        if task is not None:
            selector: dict[str, Any] = {"task": task}
        elif filter is not None:
            selector = {"filter": filter}
        else:
            selector = {"all": empty_pb2.Empty()}
        return Watch(self, selector, start_revision, buffer)

    # ------------------------------------------------------------------
    # vim.Task

    def cancel_task(self, key: str) -> TaskInfo:
        """``Task.CancelTask``: a queued task ends at once (in error, with
        RequestCanceled); a running one gets ``cancelled = True`` and its
        owner ends it. NotSupported when the task is not cancelable."""
        request = task_pb2.CancelTaskRequest(header=self.next_header(), task=key)
        return self._info(self.invoke("Task", "CancelTask", request))

    def update_progress(
        self,
        key: str,
        percent_done: int,
        *,
        progress_details: Union[Mapping[str, Any], Iterable[types_pb2.KeyAnyValue], None] = None,
        api_version: int = task_pb2.API_VERSION_CURRENT,
    ) -> TaskInfo:
        """``Task.UpdateProgress`` of a running task; ``percent_done`` is
        clamped to 0..100 (OutOfBounds outside it with
        ``api_version=API_VERSION_VIM_2_5``). ``progress_details`` (a dict of
        values, or ``KeyAnyValue``s) replaces the stored details; ``None``
        keeps them and an empty dict clears them."""
        request = task_pb2.UpdateProgressRequest(
            header=self.next_header(),
            task=key,
            percent_done=percent_done,
            api_version=api_version,
        )
        if progress_details is not None:
            request.progress_details.details.extend(key_any_values(progress_details))
            request.progress_details.SetInParent()
        return self._info(self.invoke("Task", "UpdateProgress", request))

    def set_task_state(
        self,
        key: str,
        state: Union[State, int, str],
        *,
        result: Any = None,
        fault: Union[MethodFault, fault_pb2.MethodFault, None] = None,
    ) -> TaskInfo:
        """``Task.SetTaskState``: ``"running"``, ``"success"`` (with an
        optional ``result``: any value :func:`vtask.any_value` takes) or
        ``"error"`` (with a ``fault``: a :class:`MethodFault` instance such as
        ``vtask.InvalidState("disk busy")``, or the message)."""
        request = task_pb2.SetTaskStateRequest(
            header=self.next_header(), task=key, state=state_value(state)
        )
        if result is not None:
            request.result.CopyFrom(any_value(result))
        if fault is not None:
            if isinstance(fault, MethodFault):
                fault = fault.to_proto()
            request.fault.CopyFrom(fault)
        return self._info(self.invoke("Task", "SetTaskState", request))

    def set_task_description(
        self,
        key: str,
        description: Union[str, types_pb2.LocalizableMessage],
        message: Optional[str] = None,
        args: Union[Mapping[str, Any], Iterable[types_pb2.KeyAnyValue], None] = None,
    ) -> TaskInfo:
        """``Task.SetTaskDescription``: ``description`` is a catalog key (with
        ``message``, the text as it should read, and ``args``) or a
        ``LocalizableMessage``."""
        request = task_pb2.SetTaskDescriptionRequest(
            header=self.next_header(),
            task=key,
            description=localizable_message(description, message, args),
        )
        return self._info(self.invoke("Task", "SetTaskDescription", request))

    # ------------------------------------------------------------------
    # vim.TaskHistoryCollector (D18-D24)

    def create_collector(
        self, filter: Optional[filter_pb2.TaskFilterSpec] = None  # noqa: A002
    ) -> tuple[str, list[TaskInfo]]:
        """``TaskManager.CreateCollectorForTasks``: the collector's name and
        its first latest page (newest first)."""
        request = task_manager_pb2.CreateCollectorForTasksRequest(
            header=self.next_header(), filter=filter or filter_pb2.TaskFilterSpec()
        )
        reply = self.invoke("TaskManager", "CreateCollectorForTasks", request)
        return reply.collector, list(reply.latest_page)

    def read_next_tasks(self, collector: str, max_count: int) -> list[TaskInfo]:
        """``ReadNextTasks``: up to ``max_count`` tasks after the cursor,
        oldest first; empty at the end."""
        request = task_manager_pb2.ReadNextTasksRequest(
            header=self.next_header(), collector=collector, max_count=max_count
        )
        return list(self.invoke("TaskManager", "ReadNextTasks", request).tasks)

    def read_previous_tasks(self, collector: str, max_count: int) -> list[TaskInfo]:
        """``ReadPreviousTasks``: up to ``max_count`` tasks before the
        cursor, newest first; empty at the head."""
        request = task_manager_pb2.ReadPreviousTasksRequest(
            header=self.next_header(), collector=collector, max_count=max_count
        )
        return list(self.invoke("TaskManager", "ReadPreviousTasks", request).tasks)

    def rewind_collector(self, collector: str) -> None:
        """``RewindCollector``: the cursor goes before the oldest task."""
        request = task_manager_pb2.RewindCollectorRequest(
            header=self.next_header(), collector=collector
        )
        self.invoke("TaskManager", "RewindCollector", request)

    def reset_collector(self, collector: str) -> None:
        """``ResetCollector``: the cursor goes just before the latest page (D20)."""
        request = task_manager_pb2.ResetCollectorRequest(
            header=self.next_header(), collector=collector
        )
        self.invoke("TaskManager", "ResetCollector", request)

    def set_collector_page_size(self, collector: str, max_count: int) -> list[TaskInfo]:
        """``SetCollectorPageSize`` (1..1000, 0 = 10; D19): the rebuilt latest page."""
        request = task_manager_pb2.SetCollectorPageSizeRequest(
            header=self.next_header(), collector=collector, max_count=max_count
        )
        return list(self.invoke("TaskManager", "SetCollectorPageSize", request).latest_page)

    def destroy_collector(self, collector: str) -> None:
        """``DestroyCollector``."""
        request = task_manager_pb2.DestroyCollectorRequest(
            header=self.next_header(), collector=collector
        )
        self.invoke("TaskManager", "DestroyCollector", request)

    def latest_page(self, collector: str) -> list[TaskInfo]:
        """A collector's ``latestPage`` (newest first), read linearizably."""
        request = task_manager_pb2.GetLatestPageRequest(
            collector=collector, consistency=types_pb2.READ_CONSISTENCY_LINEARIZABLE
        )
        return list(self.invoke("TaskManager", "GetLatestPage", request).latest_page)

    # ------------------------------------------------------------------
    # Cluster

    def cluster_status(self, endpoint: Optional[str] = None) -> cluster_pb2.StatusResponse:
        """``Cluster.Status`` of one node: ``endpoint``'s (no retries), or
        the first that answers."""
        request = cluster_pb2.StatusRequest()
        if endpoint is not None:
            return self.stubs(endpoint).Cluster.Status(
                request, metadata=self.metadata(), timeout=self.timeout
            )
        return self.invoke("Cluster", "Status", request)

    def leader(self) -> Optional[str]:
        """The leader's address as the first node that knows one says, or ``None``."""
        for endpoint in self._endpoints:
            try:
                status = self.cluster_status(endpoint)
            except grpc.RpcError:
                continue
            if status.HasField("leader_id"):
                for member in status.members:
                    if member.node_id == status.leader_id:
                        return member.address
        return None


def _consistency(stale: bool) -> int:
    return types_pb2.READ_CONSISTENCY_STALE if stale else types_pb2.READ_CONSISTENCY_LINEARIZABLE


# ----------------------------------------------------------------------
# Watches


@dataclasses.dataclass(frozen=True)
class WatchEvent:
    """One event of a :class:`Watch`."""

    #: The log index of the change (of the snapshot, for CURRENT and SYNCED).
    revision: int
    kind: WatchKind
    #: The task as the change left it; ``None`` for RESYNC and SYNCED.
    info: Optional[TaskInfo]


_END = object()


@dataclasses.dataclass
class _Item:
    value: Any
    resume: int


class Watch:
    """A ``WatchTasks`` stream that survives the loss of the node it reads
    from: it reconnects to the next endpoint and resumes with
    ``start_revision`` = the last change's revision + 1, so the caller misses
    nothing and sees nothing twice. A snapshot (CURRENT events) cut off
    before its SYNCED cannot be resumed half way; the watch then starts the
    snapshot over and says so with a RESYNC event first.

    Iterate over it (``for event in watch``), or call :meth:`next` with a
    timeout. A background thread reads the stream into a bounded buffer.
    While no node serves the watch it keeps trying for the client's retry
    window, then raises :class:`Unavailable`; a fault (e.g. the task does not
    exist) is raised as such. :meth:`close` (or leaving a ``with`` block)
    ends it.
    """

    def __init__(
        self, client: Client, selector: dict[str, Any], start_revision: int, buffer: int
    ) -> None:
        self._client = client
        self._selector = selector
        self._next = start_revision
        self._in_snapshot = False
        self._pending_resync = False
        self._endpoint = client._preferred
        self._queue: "queue.Queue[_Item]" = queue.Queue(maxsize=max(1, buffer))
        self._closed = threading.Event()
        self._finished = False
        self._resume = start_revision
        self._call: Any = None
        self._call_lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        #: The endpoint of the stream being read (for tests and logs).
        self.endpoint: Optional[str] = None

    @property
    def resume_revision(self) -> int:
        """The revision a new watch would start from to continue after the
        last event this one delivered."""
        return self._resume

    def __iter__(self) -> "Watch":
        return self

    def __next__(self) -> WatchEvent:
        return self.next()

    def next(self, timeout: Optional[float] = None) -> WatchEvent:
        """The next event; waits as long as it takes, or ``timeout`` seconds
        (then :class:`TimeoutError`). :class:`StopIteration` once closed."""
        if self._finished:
            raise StopIteration
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="vtask-watch", daemon=True)
            self._thread.start()
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no watch event within {timeout}s") from None
        if item.value is _END:
            self._finished = True
            raise StopIteration
        if isinstance(item.value, BaseException):
            self._finished = True
            raise item.value
        self._resume = item.resume
        return item.value

    def close(self) -> None:
        """Ends the watch; the node frees its stream."""
        self._closed.set()
        with self._call_lock:
            if self._call is not None:
                self._call.cancel()
        self._finished = True

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # The reader thread.

    def _put(self, value: Any) -> bool:
        item = _Item(value, self._next)
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            self._read()
        except BaseException as error:  # handed to the consumer
            self._put(error)
        finally:
            self._put(_END)

    def _read(self) -> None:
        client = self._client
        n = len(client._endpoints)
        failing_since: Optional[float] = None
        failures = 0
        last = ""
        while not self._closed.is_set():
            if self._pending_resync:
                self._pending_resync = False
                if not self._put(WatchEvent(self._next, WatchKind.RESYNC, None)):
                    return
            addr = client._endpoints[self._endpoint % n]
            request = task_manager_pb2.WatchTasksRequest(
                start_revision=self._next, **self._selector
            )
            call = client.stubs(addr).TaskManager.WatchTasks(request, metadata=client.metadata())
            with self._call_lock:
                self._call = call
            if self._closed.is_set():
                call.cancel()
                return
            # The node answers with headers once the watch is set up, or ends
            # the call with an error (a fault, "unavailable", no connection).
            call.initial_metadata()
            established = not call.done()
            if established:
                self.endpoint = addr
                failing_since, failures = None, 0
            try:
                for response in call:
                    event = self._accept(response)
                    failing_since, failures = None, 0
                    if not self._put(event):
                        return
                last = f"{addr}: the stream ended"
            except grpc.RpcError as error:
                if self._closed.is_set():
                    return
                fault = fault_from_status(error)
                if fault is not None:
                    raise fault from None
                last = f"{addr}: {error.code().name}: {error.details()}"
            self._lost()
            if failing_since is None:
                failing_since = time.monotonic()
            elif time.monotonic() - failing_since >= client.retry_for:
                raise Unavailable(
                    f"no node serves the watch (last: {last})", grpc.StatusCode.UNAVAILABLE
                )
            failures += 1
            if failures % n == 0:
                time.sleep(_ROUND_PAUSE)

    def _lost(self) -> None:
        """The stream broke: resume at the next endpoint."""
        self.endpoint = None
        self._endpoint += 1
        if self._in_snapshot:
            # Start a fresh snapshot: 0 asks for the current state.
            self._in_snapshot = False
            self._next = 0
            self._pending_resync = True

    def _accept(self, response: task_manager_pb2.WatchTasksResponse) -> WatchEvent:
        try:
            kind = WatchKind(response.kind)
        except ValueError:
            raise ProtocolError(f"unknown watch event kind {response.kind}") from None
        if kind in (WatchKind.CURRENT, WatchKind.RESYNC):
            self._in_snapshot = True
        elif kind is WatchKind.SYNCED:
            self._in_snapshot = False
            self._next = response.revision + 1
        else:
            self._next = response.revision + 1
        info = response.info if response.HasField("info") else None
        return WatchEvent(response.revision, kind, info)
