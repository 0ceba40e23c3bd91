import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from vtask.v1 import filter_pb2 as _filter_pb2
from vtask.v1 import task_info_pb2 as _task_info_pb2
from vtask.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChangeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANGE_KIND_UNSPECIFIED: _ClassVar[ChangeKind]
    CHANGE_KIND_CREATED: _ClassVar[ChangeKind]
    CHANGE_KIND_UPDATED: _ClassVar[ChangeKind]
    CHANGE_KIND_REMOVED: _ClassVar[ChangeKind]
    CHANGE_KIND_CURRENT: _ClassVar[ChangeKind]
    CHANGE_KIND_RESYNC: _ClassVar[ChangeKind]
    CHANGE_KIND_SYNCED: _ClassVar[ChangeKind]
CHANGE_KIND_UNSPECIFIED: ChangeKind
CHANGE_KIND_CREATED: ChangeKind
CHANGE_KIND_UPDATED: ChangeKind
CHANGE_KIND_REMOVED: ChangeKind
CHANGE_KIND_CURRENT: ChangeKind
CHANGE_KIND_RESYNC: ChangeKind
CHANGE_KIND_SYNCED: ChangeKind

class CreateTaskRequest(_message.Message):
    __slots__ = ("header", "obj", "entity_name", "task_type_id", "initiated_by", "cancelable", "parent_task_key", "activation_id", "change_tag", "lease")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    OBJ_FIELD_NUMBER: _ClassVar[int]
    ENTITY_NAME_FIELD_NUMBER: _ClassVar[int]
    TASK_TYPE_ID_FIELD_NUMBER: _ClassVar[int]
    INITIATED_BY_FIELD_NUMBER: _ClassVar[int]
    CANCELABLE_FIELD_NUMBER: _ClassVar[int]
    PARENT_TASK_KEY_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_ID_FIELD_NUMBER: _ClassVar[int]
    CHANGE_TAG_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    header: _types_pb2.RequestHeader
    obj: _types_pb2.ManagedObjectReference
    entity_name: str
    task_type_id: str
    initiated_by: str
    cancelable: bool
    parent_task_key: str
    activation_id: str
    change_tag: str
    lease: _duration_pb2.Duration
    def __init__(self, header: _Optional[_Union[_types_pb2.RequestHeader, _Mapping]] = ..., obj: _Optional[_Union[_types_pb2.ManagedObjectReference, _Mapping]] = ..., entity_name: _Optional[str] = ..., task_type_id: _Optional[str] = ..., initiated_by: _Optional[str] = ..., cancelable: _Optional[bool] = ..., parent_task_key: _Optional[str] = ..., activation_id: _Optional[str] = ..., change_tag: _Optional[str] = ..., lease: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class CreateTaskResponse(_message.Message):
    __slots__ = ("info", "leader_hint")
    INFO_FIELD_NUMBER: _ClassVar[int]
    LEADER_HINT_FIELD_NUMBER: _ClassVar[int]
    info: _task_info_pb2.TaskInfo
    leader_hint: str
    def __init__(self, info: _Optional[_Union[_task_info_pb2.TaskInfo, _Mapping]] = ..., leader_hint: _Optional[str] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("key", "consistency")
    KEY_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    key: str
    consistency: _types_pb2.ReadConsistency
    def __init__(self, key: _Optional[str] = ..., consistency: _Optional[_Union[_types_pb2.ReadConsistency, str]] = ...) -> None: ...

class GetTaskResponse(_message.Message):
    __slots__ = ("info", "revision")
    INFO_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    info: _task_info_pb2.TaskInfo
    revision: int
    def __init__(self, info: _Optional[_Union[_task_info_pb2.TaskInfo, _Mapping]] = ..., revision: _Optional[int] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("filter", "page_size", "page_token", "consistency")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    filter: _filter_pb2.TaskFilterSpec
    page_size: int
    page_token: str
    consistency: _types_pb2.ReadConsistency
    def __init__(self, filter: _Optional[_Union[_filter_pb2.TaskFilterSpec, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., consistency: _Optional[_Union[_types_pb2.ReadConsistency, str]] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks", "next_page_token", "revision")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[_task_info_pb2.TaskInfo]
    next_page_token: str
    revision: int
    def __init__(self, tasks: _Optional[_Iterable[_Union[_task_info_pb2.TaskInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., revision: _Optional[int] = ...) -> None: ...

class RecentTasksRequest(_message.Message):
    __slots__ = ("consistency",)
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    consistency: _types_pb2.ReadConsistency
    def __init__(self, consistency: _Optional[_Union[_types_pb2.ReadConsistency, str]] = ...) -> None: ...

class RecentTasksResponse(_message.Message):
    __slots__ = ("tasks", "revision")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[_task_info_pb2.TaskInfo]
    revision: int
    def __init__(self, tasks: _Optional[_Iterable[_Union[_task_info_pb2.TaskInfo, _Mapping]]] = ..., revision: _Optional[int] = ...) -> None: ...

class WatchTasksRequest(_message.Message):
    __slots__ = ("task", "filter", "all", "start_revision")
    TASK_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    START_REVISION_FIELD_NUMBER: _ClassVar[int]
    task: str
    filter: _filter_pb2.TaskFilterSpec
    all: _empty_pb2.Empty
    start_revision: int
    def __init__(self, task: _Optional[str] = ..., filter: _Optional[_Union[_filter_pb2.TaskFilterSpec, _Mapping]] = ..., all: _Optional[_Union[_empty_pb2.Empty, _Mapping]] = ..., start_revision: _Optional[int] = ...) -> None: ...

class WatchTasksResponse(_message.Message):
    __slots__ = ("revision", "kind", "info")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    revision: int
    kind: ChangeKind
    info: _task_info_pb2.TaskInfo
    def __init__(self, revision: _Optional[int] = ..., kind: _Optional[_Union[ChangeKind, str]] = ..., info: _Optional[_Union[_task_info_pb2.TaskInfo, _Mapping]] = ...) -> None: ...

class GetTaskHistoryRequest(_message.Message):
    __slots__ = ("key", "consistency")
    KEY_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    key: str
    consistency: _types_pb2.ReadConsistency
    def __init__(self, key: _Optional[str] = ..., consistency: _Optional[_Union[_types_pb2.ReadConsistency, str]] = ...) -> None: ...

class TaskChange(_message.Message):
    __slots__ = ("revision", "kind", "method", "actor", "time", "term", "index", "info")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    revision: int
    kind: ChangeKind
    method: str
    actor: str
    time: _timestamp_pb2.Timestamp
    term: int
    index: int
    info: _task_info_pb2.TaskInfo
    def __init__(self, revision: _Optional[int] = ..., kind: _Optional[_Union[ChangeKind, str]] = ..., method: _Optional[str] = ..., actor: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., term: _Optional[int] = ..., index: _Optional[int] = ..., info: _Optional[_Union[_task_info_pb2.TaskInfo, _Mapping]] = ...) -> None: ...

class GetTaskHistoryResponse(_message.Message):
    __slots__ = ("changes",)
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[TaskChange]
    def __init__(self, changes: _Optional[_Iterable[_Union[TaskChange, _Mapping]]] = ...) -> None: ...

class WaitTaskRequest(_message.Message):
    __slots__ = ("key", "timeout")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    key: str
    timeout: _duration_pb2.Duration
    def __init__(self, key: _Optional[str] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class WaitTaskResponse(_message.Message):
    __slots__ = ("info", "revision")
    INFO_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    info: _task_info_pb2.TaskInfo
    revision: int
    def __init__(self, info: _Optional[_Union[_task_info_pb2.TaskInfo, _Mapping]] = ..., revision: _Optional[int] = ...) -> None: ...

class CreateCollectorForTasksRequest(_message.Message):
    __slots__ = ("header", "filter")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    header: _types_pb2.RequestHeader
    filter: _filter_pb2.TaskFilterSpec
    def __init__(self, header: _Optional[_Union[_types_pb2.RequestHeader, _Mapping]] = ..., filter: _Optional[_Union[_filter_pb2.TaskFilterSpec, _Mapping]] = ...) -> None: ...

class CreateCollectorForTasksResponse(_message.Message):
    __slots__ = ("collector", "latest_page", "leader_hint")
    COLLECTOR_FIELD_NUMBER: _ClassVar[int]
    LATEST_PAGE_FIELD_NUMBER: _ClassVar[int]
    LEADER_HINT_FIELD_NUMBER: _ClassVar[int]
    collector: str
    latest_page: _containers.RepeatedCompositeFieldContainer[_task_info_pb2.TaskInfo]
    leader_hint: str
    def __init__(self, collector: _Optional[str] = ..., latest_page: _Optional[_Iterable[_Union[_task_info_pb2.TaskInfo, _Mapping]]] = ..., leader_hint: _Optional[str] = ...) -> None: ...

class ReadNextTasksRequest(_message.Message):
    __slots__ = ("header", "collector", "max_count")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    COLLECTOR_FIELD_NUMBER: _ClassVar[int]
    MAX_COUNT_FIELD_NUMBER: _ClassVar[int]
    header: _types_pb2.RequestHeader
    collector: str
    max_count: int
    def __init__(self, header: _Optional[_Union[_types_pb2.RequestHeader, _Mapping]] = ..., collector: _Optional[str] = ..., max_count: _Optional[int] = ...) -> None: ...

class ReadNextTasksResponse(_message.Message):
    __slots__ = ("tasks", "leader_hint")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    LEADER_HINT_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[_task_info_pb2.TaskInfo]
    leader_hint: str
    def __init__(self, tasks: _Optional[_Iterable[_Union[_task_info_pb2.TaskInfo, _Mapping]]] = ..., leader_hint: _Optional[str] = ...) -> None: ...

class ReadPreviousTasksRequest(_message.Message):
    __slots__ = ("header", "collector", "max_count")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    COLLECTOR_FIELD_NUMBER: _ClassVar[int]
    MAX_COUNT_FIELD_NUMBER: _ClassVar[int]
    header: _types_pb2.RequestHeader
    collector: str
    max_count: int
    def __init__(self, header: _Optional[_Union[_types_pb2.RequestHeader, _Mapping]] = ..., collector: _Optional[str] = ..., max_count: _Optional[int] = ...) -> None: ...

class ReadPreviousTasksResponse(_message.Message):
    __slots__ = ("tasks", "leader_hint")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    LEADER_HINT_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[_task_info_pb2.TaskInfo]
    leader_hint: str
    def __init__(self, tasks: _Optional[_Iterable[_Union[_task_info_pb2.TaskInfo, _Mapping]]] = ..., leader_hint: _Optional[str] = ...) -> None: ...

class RewindCollectorRequest(_message.Message):
    __slots__ = ("header", "collector")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    COLLECTOR_FIELD_NUMBER: _ClassVar[int]
    header: _types_pb2.RequestHeader
    collector: str
    def __init__(self, header: _Optional[_Union[_types_pb2.RequestHeader, _Mapping]] = ..., collector: _Optional[str] = ...) -> None: ...

class RewindCollectorResponse(_message.Message):
    __slots__ = ("leader_hint",)
    LEADER_HINT_FIELD_NUMBER: _ClassVar[int]
    leader_hint: str
    def __init__(self, leader_hint: _Optional[str] = ...) -> None: ...

class ResetCollectorRequest(_message.Message):
    __slots__ = ("header", "collector")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    COLLECTOR_FIELD_NUMBER: _ClassVar[int]
    header: _types_pb2.RequestHeader
    collector: str
    def __init__(self, header: _Optional[_Union[_types_pb2.RequestHeader, _Mapping]] = ..., collector: _Optional[str] = ...) -> None: ...

class ResetCollectorResponse(_message.Message):
    __slots__ = ("leader_hint",)
    LEADER_HINT_FIELD_NUMBER: _ClassVar[int]
    leader_hint: str
    def __init__(self, leader_hint: _Optional[str] = ...) -> None: ...

class SetCollectorPageSizeRequest(_message.Message):
    __slots__ = ("header", "collector", "max_count")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    COLLECTOR_FIELD_NUMBER: _ClassVar[int]
    MAX_COUNT_FIELD_NUMBER: _ClassVar[int]
    header: _types_pb2.RequestHeader
    collector: str
    max_count: int
    def __init__(self, header: _Optional[_Union[_types_pb2.RequestHeader, _Mapping]] = ..., collector: _Optional[str] = ..., max_count: _Optional[int] = ...) -> None: ...

class SetCollectorPageSizeResponse(_message.Message):
    __slots__ = ("latest_page", "leader_hint")
    LATEST_PAGE_FIELD_NUMBER: _ClassVar[int]
    LEADER_HINT_FIELD_NUMBER: _ClassVar[int]
    latest_page: _containers.RepeatedCompositeFieldContainer[_task_info_pb2.TaskInfo]
    leader_hint: str
    def __init__(self, latest_page: _Optional[_Iterable[_Union[_task_info_pb2.TaskInfo, _Mapping]]] = ..., leader_hint: _Optional[str] = ...) -> None: ...

class DestroyCollectorRequest(_message.Message):
    __slots__ = ("header", "collector")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    COLLECTOR_FIELD_NUMBER: _ClassVar[int]
    header: _types_pb2.RequestHeader
    collector: str
    def __init__(self, header: _Optional[_Union[_types_pb2.RequestHeader, _Mapping]] = ..., collector: _Optional[str] = ...) -> None: ...

class DestroyCollectorResponse(_message.Message):
    __slots__ = ("leader_hint",)
    LEADER_HINT_FIELD_NUMBER: _ClassVar[int]
    leader_hint: str
    def __init__(self, leader_hint: _Optional[str] = ...) -> None: ...

class GetLatestPageRequest(_message.Message):
    __slots__ = ("collector", "consistency")
    COLLECTOR_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    collector: str
    consistency: _types_pb2.ReadConsistency
    def __init__(self, collector: _Optional[str] = ..., consistency: _Optional[_Union[_types_pb2.ReadConsistency, str]] = ...) -> None: ...

class GetLatestPageResponse(_message.Message):
    __slots__ = ("latest_page", "filter")
    LATEST_PAGE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    latest_page: _containers.RepeatedCompositeFieldContainer[_task_info_pb2.TaskInfo]
    filter: _filter_pb2.TaskFilterSpec
    def __init__(self, latest_page: _Optional[_Iterable[_Union[_task_info_pb2.TaskInfo, _Mapping]]] = ..., filter: _Optional[_Union[_filter_pb2.TaskFilterSpec, _Mapping]] = ...) -> None: ...
