"""vSphere faults as Python exceptions.

A call the cluster refuses fails with a gRPC status whose
``grpc-status-details-bin`` trailer is a ``google.rpc.Status``; its details
hold one ``google.protobuf.Any`` of type
``type.googleapis.com/vtask.v1.MethodFault`` (see ``proto/vtask/v1/fault.proto``).
:func:`fault_from_status` turns that into an instance of the
:class:`MethodFault` subclass named after the fault kind, e.g.
:class:`InvalidState` or :class:`NoPermission` (with its ``privilege_id``).

The classes follow vSphere's own hierarchy where vtask models both ends of
it: :class:`NoPermission` is a :class:`SecurityError`, and
:class:`NotAuthenticated` is a :class:`NoPermission`. So ``except
NoPermission`` also catches NotAuthenticated, as it does in pyVmomi; compare
``type(fault)`` or :attr:`MethodFault.kind` to tell them apart.

The same classes describe the fault a task ends with: pass one to
``Client.set_task_state(key, "error", fault=InvalidState("disk busy"))``, and
read ``TaskInfo.error`` back with :func:`fault_from_proto`.

Besides the faults, a call can fail with :class:`Unavailable` (no node
answered within the retry window, or a gRPC error that carries no fault) and
:class:`ProtocolError` (the reply is not what the API promises). All of them
are :class:`VtaskError`.
"""

from __future__ import annotations

import builtins
from typing import Any, ClassVar, Iterable, Optional

import grpc
from google.rpc import status_pb2

from vtask.v1 import fault_pb2, types_pb2
from vtask.values import moref

#: The type URL of a ``vtask.v1.MethodFault`` inside a ``google.protobuf.Any``.
METHOD_FAULT_TYPE_URL = "type.googleapis.com/vtask.v1.MethodFault"
_METHOD_FAULT_NAME = METHOD_FAULT_TYPE_URL.rsplit("/", 1)[-1]
#: The trailer that carries the ``google.rpc.Status`` of gRPC's richer error model.
STATUS_DETAILS_KEY = "grpc-status-details-bin"

__all__ = [
    "VtaskError",
    "Unavailable",
    "ProtocolError",
    "MethodFault",
    "NotSupported",
    "RequestCanceled",
    "ManagedObjectNotFound",
    "InvalidArgument",
    "SystemError",
    "VimSystemError",
    "SecurityError",
    "NoPermission",
    "NotAuthenticated",
    "InvalidState",
    "OutOfBounds",
    "OtherFault",
    "FAULT_CLASSES",
    "METHOD_FAULT_TYPE_URL",
    "fault_from_proto",
    "fault_from_rpc_status",
    "fault_from_status",
]


class VtaskError(Exception):
    """Anything a :class:`vtask.Client` call raises."""


class Unavailable(VtaskError):
    """No node answered within the client's retry window, or a node answered
    with a gRPC error that carries no fault and is not worth retrying
    (``code`` says which). For a write the outcome is unknown; retrying it
    through the same client (same client id, a new call) is safe."""

    def __init__(self, message: str, code: Optional[grpc.StatusCode] = None) -> None:
        super().__init__(message)
        #: The gRPC code of the last answer, if there was one.
        self.code = code


class ProtocolError(VtaskError):
    """The server sent something this client cannot read."""


def _moref(value: Any) -> Optional[types_pb2.ManagedObjectReference]:
    """A ``ManagedObjectReference`` from a message, ``"Type:value"`` or a pair."""
    return None if value is None else moref(value)


class MethodFault(VtaskError):
    """``vmodl.MethodFault``: the base of every vSphere fault.

    Attributes:
        message: the fault's localized message (``localizedMessage``); when
            you build a fault yourself you may leave it out and the server
            fills in the standard message of the kind.
        code: the gRPC status code the fault came with (``None`` for a fault
            built here or read from a ``TaskInfo``).
        fault_cause: the fault that caused this one, a :class:`MethodFault`.
        fault_message: the ``faultMessage`` list (``LocalizableMessage``).
        kind: the fault's vSphere type name, e.g. ``"InvalidState"``.
    """

    #: The vSphere type name of the fault (without ``vim.fault.``/``vmodl.fault.``).
    kind: str = "MethodFault"
    #: The field of the ``MethodFault.kind`` oneof that holds this fault.
    _field: ClassVar[Optional[str]] = None

    def __init__(
        self,
        message: Optional[str] = None,
        *,
        fault_cause: Optional["MethodFault"] = None,
        fault_message: Iterable[types_pb2.LocalizableMessage] = (),
        code: Optional[grpc.StatusCode] = None,
    ) -> None:
        super().__init__(message or self.kind)
        self.message = message
        self.fault_cause = fault_cause
        self.fault_message = list(fault_message)
        self.code = code

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}" if self.message else self.kind

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._fields().items())
        return f"{type(self).__name__}({self.message!r}{', ' + fields if fields else ''})"

    def _fields(self) -> dict[str, Any]:
        """The fault kind's own fields, for ``repr``."""
        return {}

    def _kind_message(self) -> Any:
        """The message of this fault kind for the ``kind`` oneof."""
        raise NotImplementedError(f"{type(self).__name__} is abstract: raise a fault kind")

    def to_proto(self) -> fault_pb2.MethodFault:
        """This fault as a ``vtask.v1.MethodFault`` (for ``SetTaskState``)."""
        if self._field is None:
            self._kind_message()
        fault = fault_pb2.MethodFault()
        getattr(fault, self._field).CopyFrom(self._kind_message())
        if self.message is not None:
            fault.localized_message = self.message
        if self.fault_cause is not None:
            fault.fault_cause.CopyFrom(self.fault_cause.to_proto())
        fault.fault_message.extend(self.fault_message)
        return fault

    @classmethod
    def _from_kind(cls, kind_message: Any, **common: Any) -> "MethodFault":
        return cls(**common)


class NotSupported(MethodFault):
    """``vmodl.fault.NotSupported`` (gRPC UNIMPLEMENTED): e.g. cancelling a
    task that is not cancelable, or a recursive entity filter."""

    kind = "NotSupported"
    _field = "not_supported"

    def _kind_message(self) -> Any:
        return fault_pb2.MethodFault.NotSupported()


class RequestCanceled(MethodFault):
    """``vmodl.fault.RequestCanceled`` (gRPC CANCELLED): the usual fault of a
    task that ended because it was cancelled."""

    kind = "RequestCanceled"
    _field = "request_canceled"

    def _kind_message(self) -> Any:
        return fault_pb2.MethodFault.RequestCanceled()


class ManagedObjectNotFound(MethodFault):
    """``vmodl.fault.ManagedObjectNotFound`` (gRPC NOT_FOUND): no such task
    (never issued, or removed by retention) or collector. ``obj`` is the
    reference that was not found."""

    kind = "ManagedObjectNotFound"
    _field = "managed_object_not_found"

    def __init__(self, message: Optional[str] = None, *, obj: Any = None, **common: Any) -> None:
        super().__init__(message, **common)
        #: The ``ManagedObjectReference`` not found (``Task:task-7``).
        self.obj = _moref(obj) or types_pb2.ManagedObjectReference()

    def _fields(self) -> dict[str, Any]:
        return {"obj": f"{self.obj.type}:{self.obj.value}"}

    def _kind_message(self) -> Any:
        return fault_pb2.MethodFault.ManagedObjectNotFound(obj=self.obj)

    @classmethod
    def _from_kind(cls, kind_message: Any, **common: Any) -> "MethodFault":
        return cls(obj=kind_message.obj, **common)


class InvalidArgument(MethodFault):
    """``vmodl.fault.InvalidArgument`` (gRPC INVALID_ARGUMENT).
    ``invalid_property`` names the offending request field, e.g. ``"taskTypeId"``."""

    kind = "InvalidArgument"
    _field = "invalid_argument"

    def __init__(
        self, message: Optional[str] = None, *, invalid_property: Optional[str] = None, **common: Any
    ) -> None:
        super().__init__(message, **common)
        self.invalid_property = invalid_property

    def _fields(self) -> dict[str, Any]:
        return {"invalid_property": self.invalid_property}

    def _kind_message(self) -> Any:
        m = fault_pb2.MethodFault.InvalidArgument()
        if self.invalid_property is not None:
            m.invalid_property = self.invalid_property
        return m

    @classmethod
    def _from_kind(cls, kind_message: Any, **common: Any) -> "MethodFault":
        prop = kind_message.invalid_property if kind_message.HasField("invalid_property") else None
        return cls(invalid_property=prop, **common)


class SystemError(MethodFault):  # noqa: A001 - vSphere's name; the builtin is builtins.SystemError
    """``vmodl.fault.SystemError`` (gRPC INTERNAL), with its ``reason``.
    Also importable as :class:`VimSystemError`, which does not shadow
    Python's builtin ``SystemError``."""

    kind = "SystemError"
    _field = "system_error"

    def __init__(self, message: Optional[str] = None, *, reason: str = "", **common: Any) -> None:
        super().__init__(message, **common)
        self.reason = reason

    def _fields(self) -> dict[str, Any]:
        return {"reason": self.reason}

    def _kind_message(self) -> Any:
        return fault_pb2.MethodFault.SystemError(reason=self.reason)

    @classmethod
    def _from_kind(cls, kind_message: Any, **common: Any) -> "MethodFault":
        return cls(reason=kind_message.reason, **common)


VimSystemError = SystemError
assert builtins.SystemError is not SystemError


class SecurityError(MethodFault):
    """``vmodl.fault.SecurityError`` (gRPC PERMISSION_DENIED)."""

    kind = "SecurityError"
    _field = "security_error"

    def _kind_message(self) -> Any:
        return fault_pb2.MethodFault.SecurityError()


class NoPermission(SecurityError):
    """``vim.fault.NoPermission`` (gRPC PERMISSION_DENIED): the caller lacks
    ``privilege_id`` (e.g. ``"Task.Create"``) on ``object``."""

    kind = "NoPermission"
    _field = "no_permission"

    def __init__(
        self,
        message: Optional[str] = None,
        *,
        object: Any = None,  # noqa: A002 - vSphere's field name
        privilege_id: Optional[str] = None,
        **common: Any,
    ) -> None:
        super().__init__(message, **common)
        #: The ``ManagedObjectReference`` the privilege was missing on, or ``None``.
        self.object = _moref(object)
        self.privilege_id = privilege_id

    def _fields(self) -> dict[str, Any]:
        obj = f"{self.object.type}:{self.object.value}" if self.object is not None else None
        return {"object": obj, "privilege_id": self.privilege_id}

    def _kind_message(self) -> Any:
        m = fault_pb2.MethodFault.NoPermission()
        if self.object is not None:
            m.object.CopyFrom(self.object)
        if self.privilege_id is not None:
            m.privilege_id = self.privilege_id
        return m

    @classmethod
    def _from_kind(cls, kind_message: Any, **common: Any) -> "MethodFault":
        return cls(
            object=kind_message.object if kind_message.HasField("object") else None,
            privilege_id=(
                kind_message.privilege_id if kind_message.HasField("privilege_id") else None
            ),
            **common,
        )


class NotAuthenticated(NoPermission):
    """``vim.fault.NotAuthenticated`` (gRPC UNAUTHENTICATED): no token, or
    one the cluster does not know."""

    kind = "NotAuthenticated"
    _field = "not_authenticated"

    def __init__(self, message: Optional[str] = None, **common: Any) -> None:
        super().__init__(message, **common)

    def _fields(self) -> dict[str, Any]:
        return {}

    def _kind_message(self) -> Any:
        return fault_pb2.MethodFault.NotAuthenticated()

    @classmethod
    def _from_kind(cls, kind_message: Any, **common: Any) -> "MethodFault":
        return cls(**common)


class InvalidState(MethodFault):
    """``vim.fault.InvalidState`` (gRPC FAILED_PRECONDITION): the task's
    state does not allow the call, e.g. a change to a finished task."""

    kind = "InvalidState"
    _field = "invalid_state"

    def _kind_message(self) -> Any:
        return fault_pb2.MethodFault.InvalidState()


class OutOfBounds(MethodFault):
    """``vim.fault.OutOfBounds`` (gRPC OUT_OF_RANGE): ``argument_name`` is
    out of its range (UpdateProgress outside 0..100 with the VI API 2.5
    behaviour, a collector page size beyond 1000)."""

    kind = "OutOfBounds"
    _field = "out_of_bounds"

    def __init__(self, message: Optional[str] = None, *, argument_name: str = "", **common: Any) -> None:
        super().__init__(message, **common)
        self.argument_name = argument_name

    def _fields(self) -> dict[str, Any]:
        return {"argument_name": self.argument_name}

    def _kind_message(self) -> Any:
        return fault_pb2.MethodFault.OutOfBounds(argument_name=self.argument_name)

    @classmethod
    def _from_kind(cls, kind_message: Any, **common: Any) -> "MethodFault":
        return cls(argument_name=kind_message.argument_name, **common)


class OtherFault(MethodFault):
    """A fault type vtask does not model (gRPC UNKNOWN), kept by name only:
    ``OtherFault("FileNotFound", "no such file")``. Its :attr:`kind` is
    that type name."""

    _field = "other"

    def __init__(self, type_name: str, message: Optional[str] = None, **common: Any) -> None:
        #: The vSphere type name, without the ``vim.fault.`` prefix.
        self.type_name = type_name
        self.kind = type_name
        super().__init__(message, **common)

    def __repr__(self) -> str:
        return f"OtherFault({self.type_name!r}, {self.message!r})"

    def _kind_message(self) -> Any:
        return fault_pb2.MethodFault.Other(type_name=self.type_name)

    @classmethod
    def _from_kind(cls, kind_message: Any, **common: Any) -> "MethodFault":
        return cls(kind_message.type_name, **common)


#: The exception class of each ``MethodFault.kind`` oneof field.
FAULT_CLASSES: dict[str, type[MethodFault]] = {
    cls._field: cls  # type: ignore[misc]
    for cls in (
        NotSupported,
        RequestCanceled,
        ManagedObjectNotFound,
        InvalidArgument,
        SystemError,
        SecurityError,
        NoPermission,
        NotAuthenticated,
        InvalidState,
        OutOfBounds,
        OtherFault,
    )
}


def fault_from_proto(
    fault: fault_pb2.MethodFault, code: Optional[grpc.StatusCode] = None
) -> Optional[MethodFault]:
    """The exception for a ``vtask.v1.MethodFault`` (e.g. ``TaskInfo.error``),
    or ``None`` when it names no fault kind."""
    field = fault.WhichOneof("kind")
    if field is None:
        return None
    cause = fault_from_proto(fault.fault_cause) if fault.HasField("fault_cause") else None
    message = fault.localized_message if fault.HasField("localized_message") else None
    return FAULT_CLASSES[field]._from_kind(
        getattr(fault, field),
        message=message,
        fault_cause=cause,
        fault_message=list(fault.fault_message),
        code=code,
    )


def fault_from_rpc_status(
    status: status_pb2.Status, code: Optional[grpc.StatusCode] = None
) -> Optional[MethodFault]:
    """The fault a ``google.rpc.Status`` carries in its details (as a failed
    ``google.longrunning.Operation``'s ``error`` does), or ``None``."""
    if code is None:
        code = _CODES.get(status.code)
    for any_ in status.details:
        if any_.type_url.rsplit("/", 1)[-1] != _METHOD_FAULT_NAME:
            continue
        fault = fault_pb2.MethodFault()
        try:
            fault.ParseFromString(any_.value)
        except Exception:  # a DecodeError: not a fault we can read
            continue
        decoded = fault_from_proto(fault, code)
        if decoded is not None:
            return decoded
    return None


_CODES = {c.value[0]: c for c in grpc.StatusCode}


def fault_from_status(error: grpc.RpcError) -> Optional[MethodFault]:
    """The fault of a failed gRPC call: decoded from the
    ``grpc-status-details-bin`` trailer, or ``None`` when the status carries
    none (a transport error, a deadline, a limit)."""
    trailers = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    code = error.code() if hasattr(error, "code") else None
    for key, value in trailers or ():
        if key != STATUS_DETAILS_KEY:
            continue
        status = status_pb2.Status()
        try:
            status.ParseFromString(value)
        except Exception:
            return None
        return fault_from_rpc_status(status, code)
    return None
