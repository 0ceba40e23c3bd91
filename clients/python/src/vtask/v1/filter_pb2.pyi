import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from vtask.v1 import task_info_pb2 as _task_info_pb2
from vtask.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskFilterSpec(_message.Message):
    __slots__ = ("entity", "time", "user_name", "activation_id", "state", "alarm", "scheduled_task", "event_chain_id", "tag", "parent_task_key", "root_task_key")
    class RecursionOption(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        RECURSION_OPTION_UNSPECIFIED: _ClassVar[TaskFilterSpec.RecursionOption]
        RECURSION_OPTION_SELF: _ClassVar[TaskFilterSpec.RecursionOption]
        RECURSION_OPTION_CHILDREN: _ClassVar[TaskFilterSpec.RecursionOption]
        RECURSION_OPTION_ALL: _ClassVar[TaskFilterSpec.RecursionOption]
    RECURSION_OPTION_UNSPECIFIED: TaskFilterSpec.RecursionOption
    RECURSION_OPTION_SELF: TaskFilterSpec.RecursionOption
    RECURSION_OPTION_CHILDREN: TaskFilterSpec.RecursionOption
    RECURSION_OPTION_ALL: TaskFilterSpec.RecursionOption
    class TimeOption(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        TIME_OPTION_UNSPECIFIED: _ClassVar[TaskFilterSpec.TimeOption]
        TIME_OPTION_QUEUED_TIME: _ClassVar[TaskFilterSpec.TimeOption]
        TIME_OPTION_STARTED_TIME: _ClassVar[TaskFilterSpec.TimeOption]
        TIME_OPTION_COMPLETED_TIME: _ClassVar[TaskFilterSpec.TimeOption]
    TIME_OPTION_UNSPECIFIED: TaskFilterSpec.TimeOption
    TIME_OPTION_QUEUED_TIME: TaskFilterSpec.TimeOption
    TIME_OPTION_STARTED_TIME: TaskFilterSpec.TimeOption
    TIME_OPTION_COMPLETED_TIME: TaskFilterSpec.TimeOption
    class ByEntity(_message.Message):
        __slots__ = ("entity", "recursion")
        ENTITY_FIELD_NUMBER: _ClassVar[int]
        RECURSION_FIELD_NUMBER: _ClassVar[int]
        entity: _types_pb2.ManagedObjectReference
        recursion: TaskFilterSpec.RecursionOption
        def __init__(self, entity: _Optional[_Union[_types_pb2.ManagedObjectReference, _Mapping]] = ..., recursion: _Optional[_Union[TaskFilterSpec.RecursionOption, str]] = ...) -> None: ...
    class ByTime(_message.Message):
        __slots__ = ("time_type", "begin_time", "end_time")
        TIME_TYPE_FIELD_NUMBER: _ClassVar[int]
        BEGIN_TIME_FIELD_NUMBER: _ClassVar[int]
        END_TIME_FIELD_NUMBER: _ClassVar[int]
        time_type: TaskFilterSpec.TimeOption
        begin_time: _timestamp_pb2.Timestamp
        end_time: _timestamp_pb2.Timestamp
        def __init__(self, time_type: _Optional[_Union[TaskFilterSpec.TimeOption, str]] = ..., begin_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
    class ByUsername(_message.Message):
        __slots__ = ("system_user", "user_list")
        SYSTEM_USER_FIELD_NUMBER: _ClassVar[int]
        USER_LIST_FIELD_NUMBER: _ClassVar[int]
        system_user: bool
        user_list: _containers.RepeatedScalarFieldContainer[str]
        def __init__(self, system_user: _Optional[bool] = ..., user_list: _Optional[_Iterable[str]] = ...) -> None: ...
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    USER_NAME_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ALARM_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_TASK_FIELD_NUMBER: _ClassVar[int]
    EVENT_CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    PARENT_TASK_KEY_FIELD_NUMBER: _ClassVar[int]
    ROOT_TASK_KEY_FIELD_NUMBER: _ClassVar[int]
    entity: TaskFilterSpec.ByEntity
    time: TaskFilterSpec.ByTime
    user_name: TaskFilterSpec.ByUsername
    activation_id: _containers.RepeatedScalarFieldContainer[str]
    state: _containers.RepeatedScalarFieldContainer[_task_info_pb2.TaskInfoState]
    alarm: _types_pb2.ManagedObjectReference
    scheduled_task: _types_pb2.ManagedObjectReference
    event_chain_id: _containers.RepeatedScalarFieldContainer[int]
    tag: _containers.RepeatedScalarFieldContainer[str]
    parent_task_key: _containers.RepeatedScalarFieldContainer[str]
    root_task_key: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, entity: _Optional[_Union[TaskFilterSpec.ByEntity, _Mapping]] = ..., time: _Optional[_Union[TaskFilterSpec.ByTime, _Mapping]] = ..., user_name: _Optional[_Union[TaskFilterSpec.ByUsername, _Mapping]] = ..., activation_id: _Optional[_Iterable[str]] = ..., state: _Optional[_Iterable[_Union[_task_info_pb2.TaskInfoState, str]]] = ..., alarm: _Optional[_Union[_types_pb2.ManagedObjectReference, _Mapping]] = ..., scheduled_task: _Optional[_Union[_types_pb2.ManagedObjectReference, _Mapping]] = ..., event_chain_id: _Optional[_Iterable[int]] = ..., tag: _Optional[_Iterable[str]] = ..., parent_task_key: _Optional[_Iterable[str]] = ..., root_task_key: _Optional[_Iterable[str]] = ...) -> None: ...
