"""Small conversions between Python values and the ``vtask.v1`` messages.

The client returns the generated messages themselves (``vtask.v1.task_info_pb2.TaskInfo``
and friends); these helpers build their arguments from plain Python values
and read typed values back.
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

from google.protobuf import duration_pb2, timestamp_pb2

from vtask.v1 import filter_pb2, task_info_pb2, task_manager_pb2, types_pb2

__all__ = [
    "State",
    "WatchKind",
    "MoRefLike",
    "moref",
    "any_value",
    "value_of",
    "key_any_values",
    "localizable_message",
    "state_value",
    "timestamp",
    "to_datetime",
    "duration",
    "task_filter",
]

#: What the client accepts where a ``ManagedObjectReference`` is wanted:
#: the message, ``"VirtualMachine:vm-42"`` or ``("VirtualMachine", "vm-42")``.
MoRefLike = Union[types_pb2.ManagedObjectReference, str, Sequence[str]]


class State(enum.IntEnum):
    """``vim.TaskInfo.State``; the values are those of ``TaskInfo.state``,
    so ``State(info.state)`` names a task's state."""

    QUEUED = task_info_pb2.TASK_INFO_STATE_QUEUED
    RUNNING = task_info_pb2.TASK_INFO_STATE_RUNNING
    SUCCESS = task_info_pb2.TASK_INFO_STATE_SUCCESS
    ERROR = task_info_pb2.TASK_INFO_STATE_ERROR

    @property
    def terminal(self) -> bool:
        """Whether a task in this state has ended (SUCCESS or ERROR)."""
        return self in (State.SUCCESS, State.ERROR)

    def __str__(self) -> str:
        return self.name.lower()


class WatchKind(enum.IntEnum):
    """What one watch event says (``vtask.v1.ChangeKind``)."""

    CREATED = task_manager_pb2.CHANGE_KIND_CREATED
    UPDATED = task_manager_pb2.CHANGE_KIND_UPDATED
    #: Removed by retention (D16); the info is the task's last state.
    REMOVED = task_manager_pb2.CHANGE_KIND_REMOVED
    #: The state of a selected task, part of a snapshot at the event's revision.
    CURRENT = task_manager_pb2.CHANGE_KIND_CURRENT
    #: Forget what you know of the selected tasks: a snapshot follows.
    RESYNC = task_manager_pb2.CHANGE_KIND_RESYNC
    #: The snapshot is complete; live changes follow.
    SYNCED = task_manager_pb2.CHANGE_KIND_SYNCED


def state_value(state: Union[State, int, str]) -> int:
    """A ``TaskInfoState`` value from a :class:`State`, its number, or a name
    such as ``"running"``, ``"RUNNING"`` or ``"TASK_INFO_STATE_RUNNING"``."""
    if isinstance(state, str):
        name = state.strip().upper()
        if name.startswith("TASK_INFO_STATE_"):
            name = name[len("TASK_INFO_STATE_") :]
        try:
            return int(State[name])
        except KeyError:
            raise ValueError(
                f"{state!r} is not a task state (queued, running, success, error)"
            ) from None
    return int(State(int(state)))


def moref(value: MoRefLike) -> types_pb2.ManagedObjectReference:
    """A ``ManagedObjectReference`` from ``"Type:value"``, a pair or the message."""
    if isinstance(value, types_pb2.ManagedObjectReference):
        return value
    if isinstance(value, str):
        type_, sep, val = value.partition(":")
        if not sep or not type_ or not val:
            raise ValueError(f"{value!r} is not a managed object reference TYPE:VALUE")
        return types_pb2.ManagedObjectReference(type=type_, value=val)
    type_, val = value
    return types_pb2.ManagedObjectReference(type=type_, value=val)


def timestamp(value: Union[_dt.datetime, timestamp_pb2.Timestamp]) -> timestamp_pb2.Timestamp:
    """A ``google.protobuf.Timestamp`` from a datetime (naive means UTC)."""
    if isinstance(value, timestamp_pb2.Timestamp):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def to_datetime(value: timestamp_pb2.Timestamp) -> _dt.datetime:
    """A ``google.protobuf.Timestamp`` as an aware UTC datetime."""
    return value.ToDatetime(tzinfo=_dt.timezone.utc)


def duration(seconds: Union[float, _dt.timedelta, duration_pb2.Duration]) -> duration_pb2.Duration:
    """A ``google.protobuf.Duration`` from seconds or a timedelta."""
    if isinstance(seconds, duration_pb2.Duration):
        return seconds
    if isinstance(seconds, _dt.timedelta):
        seconds = seconds.total_seconds()
    if seconds < 0:
        seconds = 0.0
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(round(seconds * 1e9)))
    return d


def any_value(value: Any) -> types_pb2.AnyValue:
    """An ``AnyValue`` (vSphere's ``anyType``) from a Python value: ``str``,
    ``bool``, ``int`` (a long), ``float``, ``datetime``, a
    ``ManagedObjectReference``; anything else JSON-serialisable (dict, list,
    None) becomes ``json_value``. An ``AnyValue`` is returned as it is."""
    if isinstance(value, types_pb2.AnyValue):
        return value
    if isinstance(value, bool):
        return types_pb2.AnyValue(boolean_value=value)
    if isinstance(value, int):
        return types_pb2.AnyValue(long_value=value)
    if isinstance(value, float):
        return types_pb2.AnyValue(double_value=value)
    if isinstance(value, str):
        return types_pb2.AnyValue(string_value=value)
    if isinstance(value, _dt.datetime):
        return types_pb2.AnyValue(date_time_value=timestamp(value))
    if isinstance(value, types_pb2.ManagedObjectReference):
        return types_pb2.AnyValue(moref_value=value)
    return types_pb2.AnyValue(json_value=json.dumps(value, separators=(",", ":")))


def value_of(value: Optional[types_pb2.AnyValue]) -> Any:
    """The Python value of an ``AnyValue``: the inverse of :func:`any_value`
    (``json_value`` is parsed; a timestamp becomes an aware datetime). An
    empty or missing value is ``None``."""
    if value is None:
        return None
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "json_value":
        return json.loads(value.json_value)
    if which == "date_time_value":
        return to_datetime(value.date_time_value)
    return getattr(value, which)


def key_any_values(
    values: Union[Mapping[str, Any], Iterable[types_pb2.KeyAnyValue]],
) -> list[types_pb2.KeyAnyValue]:
    """``KeyAnyValue`` list from a mapping (values through :func:`any_value`)
    or from ``KeyAnyValue`` messages."""
    if isinstance(values, Mapping):
        return [types_pb2.KeyAnyValue(key=k, value=any_value(v)) for k, v in values.items()]
    return list(values)


def localizable_message(
    key: Union[str, types_pb2.LocalizableMessage],
    message: Optional[str] = None,
    args: Union[Mapping[str, Any], Iterable[types_pb2.KeyAnyValue], None] = None,
) -> types_pb2.LocalizableMessage:
    """A ``LocalizableMessage``: a catalog key, its arguments and the
    message as it should read (the server stores and returns it verbatim)."""
    if isinstance(key, types_pb2.LocalizableMessage):
        return key
    m = types_pb2.LocalizableMessage(key=key, arg=key_any_values(args or {}))
    if message is not None:
        m.message = message
    return m


def task_filter(
    *,
    states: Optional[Iterable[Union[State, int, str]]] = None,
    entity: Optional[MoRefLike] = None,
    users: Optional[Iterable[str]] = None,
    system_user: bool = False,
    time_type: Optional[str] = None,
    begin: Optional[_dt.datetime] = None,
    end: Optional[_dt.datetime] = None,
    activation_ids: Optional[Iterable[str]] = None,
    tags: Optional[Iterable[str]] = None,
    parent_task_keys: Optional[Iterable[str]] = None,
    root_task_keys: Optional[Iterable[str]] = None,
    event_chain_ids: Optional[Iterable[int]] = None,
) -> filter_pb2.TaskFilterSpec:
    """A ``TaskFilterSpec`` (``vim.TaskFilterSpec``): fields combine with AND,
    the values of one field with OR; what is left out adds no constraint.

    ``entity`` selects tasks on that entity (recursion SELF); ``users`` the
    user tasks started by those users (an empty list: every user task) and
    ``system_user`` the system's; ``time_type`` is ``"queued"``,
    ``"started"`` or ``"completed"`` with inclusive bounds ``begin``/``end``.
    """
    spec = filter_pb2.TaskFilterSpec()
    if states is not None:
        spec.state.extend(state_value(s) for s in states)
    if entity is not None:
        spec.entity.entity.CopyFrom(moref(entity))
        spec.entity.recursion = filter_pb2.TaskFilterSpec.RECURSION_OPTION_SELF
    if users is not None or system_user:
        spec.user_name.system_user = system_user
        spec.user_name.user_list.extend(users or ())
        spec.user_name.SetInParent()
    if time_type is not None or begin is not None or end is not None:
        options = {
            "queued": filter_pb2.TaskFilterSpec.TIME_OPTION_QUEUED_TIME,
            "started": filter_pb2.TaskFilterSpec.TIME_OPTION_STARTED_TIME,
            "completed": filter_pb2.TaskFilterSpec.TIME_OPTION_COMPLETED_TIME,
        }
        try:
            spec.time.time_type = options[(time_type or "queued").lower()]
        except KeyError:
            raise ValueError(f"time_type {time_type!r}: queued, started or completed") from None
        if begin is not None:
            spec.time.begin_time.CopyFrom(timestamp(begin))
        if end is not None:
            spec.time.end_time.CopyFrom(timestamp(end))
    spec.activation_id.extend(activation_ids or ())
    spec.tag.extend(tags or ())
    spec.parent_task_key.extend(parent_task_keys or ())
    spec.root_task_key.extend(root_task_keys or ())
    spec.event_chain_id.extend(event_chain_ids or ())
    return spec
