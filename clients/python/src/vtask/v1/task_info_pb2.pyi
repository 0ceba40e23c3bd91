import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from vtask.v1 import fault_pb2 as _fault_pb2
from vtask.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskInfoState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_INFO_STATE_UNSPECIFIED: _ClassVar[TaskInfoState]
    TASK_INFO_STATE_QUEUED: _ClassVar[TaskInfoState]
    TASK_INFO_STATE_RUNNING: _ClassVar[TaskInfoState]
    TASK_INFO_STATE_SUCCESS: _ClassVar[TaskInfoState]
    TASK_INFO_STATE_ERROR: _ClassVar[TaskInfoState]
TASK_INFO_STATE_UNSPECIFIED: TaskInfoState
TASK_INFO_STATE_QUEUED: TaskInfoState
TASK_INFO_STATE_RUNNING: TaskInfoState
TASK_INFO_STATE_SUCCESS: TaskInfoState
TASK_INFO_STATE_ERROR: TaskInfoState

class TaskReasonUser(_message.Message):
    __slots__ = ("user_name",)
    USER_NAME_FIELD_NUMBER: _ClassVar[int]
    user_name: str
    def __init__(self, user_name: _Optional[str] = ...) -> None: ...

class TaskReasonSystem(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TaskReasonAlarm(_message.Message):
    __slots__ = ("alarm_name", "alarm", "entity_name", "entity")
    ALARM_NAME_FIELD_NUMBER: _ClassVar[int]
    ALARM_FIELD_NUMBER: _ClassVar[int]
    ENTITY_NAME_FIELD_NUMBER: _ClassVar[int]
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    alarm_name: str
    alarm: _types_pb2.ManagedObjectReference
    entity_name: str
    entity: _types_pb2.ManagedObjectReference
    def __init__(self, alarm_name: _Optional[str] = ..., alarm: _Optional[_Union[_types_pb2.ManagedObjectReference, _Mapping]] = ..., entity_name: _Optional[str] = ..., entity: _Optional[_Union[_types_pb2.ManagedObjectReference, _Mapping]] = ...) -> None: ...

class TaskReasonSchedule(_message.Message):
    __slots__ = ("name", "scheduled_task")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_TASK_FIELD_NUMBER: _ClassVar[int]
    name: str
    scheduled_task: _types_pb2.ManagedObjectReference
    def __init__(self, name: _Optional[str] = ..., scheduled_task: _Optional[_Union[_types_pb2.ManagedObjectReference, _Mapping]] = ...) -> None: ...

class TaskReason(_message.Message):
    __slots__ = ("user", "system", "alarm", "schedule")
    USER_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_FIELD_NUMBER: _ClassVar[int]
    ALARM_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    user: TaskReasonUser
    system: TaskReasonSystem
    alarm: TaskReasonAlarm
    schedule: TaskReasonSchedule
    def __init__(self, user: _Optional[_Union[TaskReasonUser, _Mapping]] = ..., system: _Optional[_Union[TaskReasonSystem, _Mapping]] = ..., alarm: _Optional[_Union[TaskReasonAlarm, _Mapping]] = ..., schedule: _Optional[_Union[TaskReasonSchedule, _Mapping]] = ...) -> None: ...

class TaskInfo(_message.Message):
    __slots__ = ("key", "task", "description", "name", "description_id", "entity", "entity_name", "locked", "state", "cancelled", "cancelable", "error", "result", "progress", "progress_details", "reason", "queue_time", "start_time", "complete_time", "event_chain_id", "change_tag", "parent_task_key", "root_task_key", "activation_id")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_ID_FIELD_NUMBER: _ClassVar[int]
    ENTITY_FIELD_NUMBER: _ClassVar[int]
    ENTITY_NAME_FIELD_NUMBER: _ClassVar[int]
    LOCKED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    CANCELABLE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_DETAILS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    QUEUE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_TIME_FIELD_NUMBER: _ClassVar[int]
    EVENT_CHAIN_ID_FIELD_NUMBER: _ClassVar[int]
    CHANGE_TAG_FIELD_NUMBER: _ClassVar[int]
    PARENT_TASK_KEY_FIELD_NUMBER: _ClassVar[int]
    ROOT_TASK_KEY_FIELD_NUMBER: _ClassVar[int]
    ACTIVATION_ID_FIELD_NUMBER: _ClassVar[int]
    key: str
    task: _types_pb2.ManagedObjectReference
    description: _types_pb2.LocalizableMessage
    name: str
    description_id: str
    entity: _types_pb2.ManagedObjectReference
    entity_name: str
    locked: _containers.RepeatedCompositeFieldContainer[_types_pb2.ManagedObjectReference]
    state: TaskInfoState
    cancelled: bool
    cancelable: bool
    error: _fault_pb2.MethodFault
    result: _types_pb2.AnyValue
    progress: int
    progress_details: _containers.RepeatedCompositeFieldContainer[_types_pb2.KeyAnyValue]
    reason: TaskReason
    queue_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    complete_time: _timestamp_pb2.Timestamp
    event_chain_id: int
    change_tag: str
    parent_task_key: str
    root_task_key: str
    activation_id: str
    def __init__(self, key: _Optional[str] = ..., task: _Optional[_Union[_types_pb2.ManagedObjectReference, _Mapping]] = ..., description: _Optional[_Union[_types_pb2.LocalizableMessage, _Mapping]] = ..., name: _Optional[str] = ..., description_id: _Optional[str] = ..., entity: _Optional[_Union[_types_pb2.ManagedObjectReference, _Mapping]] = ..., entity_name: _Optional[str] = ..., locked: _Optional[_Iterable[_Union[_types_pb2.ManagedObjectReference, _Mapping]]] = ..., state: _Optional[_Union[TaskInfoState, str]] = ..., cancelled: _Optional[bool] = ..., cancelable: _Optional[bool] = ..., error: _Optional[_Union[_fault_pb2.MethodFault, _Mapping]] = ..., result: _Optional[_Union[_types_pb2.AnyValue, _Mapping]] = ..., progress: _Optional[int] = ..., progress_details: _Optional[_Iterable[_Union[_types_pb2.KeyAnyValue, _Mapping]]] = ..., reason: _Optional[_Union[TaskReason, _Mapping]] = ..., queue_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., complete_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., event_chain_id: _Optional[int] = ..., change_tag: _Optional[str] = ..., parent_task_key: _Optional[str] = ..., root_task_key: _Optional[str] = ..., activation_id: _Optional[str] = ...) -> None: ...
