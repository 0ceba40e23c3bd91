from vtask.v1 import task_info_pb2 as _task_info_pb2
from vtask.v1 import types_pb2 as _types_pb2
from vtask.v1 import fault_pb2 as _fault_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ApiVersion(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    API_VERSION_UNSPECIFIED: _ClassVar[ApiVersion]
    API_VERSION_CURRENT: _ClassVar[ApiVersion]
    API_VERSION_VIM_2_5: _ClassVar[ApiVersion]
API_VERSION_UNSPECIFIED: ApiVersion
API_VERSION_CURRENT: ApiVersion
API_VERSION_VIM_2_5: ApiVersion

class CancelTaskRequest(_message.Message):
    __slots__ = ("header", "task")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    header: _types_pb2.RequestHeader
    task: str
    def __init__(self, header: _Optional[_Union[_types_pb2.RequestHeader, _Mapping]] = ..., task: _Optional[str] = ...) -> None: ...

class CancelTaskResponse(_message.Message):
    __slots__ = ("info", "leader_hint")
    INFO_FIELD_NUMBER: _ClassVar[int]
    LEADER_HINT_FIELD_NUMBER: _ClassVar[int]
    info: _task_info_pb2.TaskInfo
    leader_hint: str
    def __init__(self, info: _Optional[_Union[_task_info_pb2.TaskInfo, _Mapping]] = ..., leader_hint: _Optional[str] = ...) -> None: ...

class ProgressDetails(_message.Message):
    __slots__ = ("details",)
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    details: _containers.RepeatedCompositeFieldContainer[_types_pb2.KeyAnyValue]
    def __init__(self, details: _Optional[_Iterable[_Union[_types_pb2.KeyAnyValue, _Mapping]]] = ...) -> None: ...

class UpdateProgressRequest(_message.Message):
    __slots__ = ("header", "task", "percent_done", "progress_details", "api_version")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    PERCENT_DONE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_DETAILS_FIELD_NUMBER: _ClassVar[int]
    API_VERSION_FIELD_NUMBER: _ClassVar[int]
    header: _types_pb2.RequestHeader
    task: str
    percent_done: int
    progress_details: ProgressDetails
    api_version: ApiVersion
    def __init__(self, header: _Optional[_Union[_types_pb2.RequestHeader, _Mapping]] = ..., task: _Optional[str] = ..., percent_done: _Optional[int] = ..., progress_details: _Optional[_Union[ProgressDetails, _Mapping]] = ..., api_version: _Optional[_Union[ApiVersion, str]] = ...) -> None: ...

class UpdateProgressResponse(_message.Message):
    __slots__ = ("info", "leader_hint")
    INFO_FIELD_NUMBER: _ClassVar[int]
    LEADER_HINT_FIELD_NUMBER: _ClassVar[int]
    info: _task_info_pb2.TaskInfo
    leader_hint: str
    def __init__(self, info: _Optional[_Union[_task_info_pb2.TaskInfo, _Mapping]] = ..., leader_hint: _Optional[str] = ...) -> None: ...

class SetTaskStateRequest(_message.Message):
    __slots__ = ("header", "task", "state", "result", "fault")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    FAULT_FIELD_NUMBER: _ClassVar[int]
    header: _types_pb2.RequestHeader
    task: str
    state: _task_info_pb2.TaskInfoState
    result: _types_pb2.AnyValue
    fault: _fault_pb2.MethodFault
    def __init__(self, header: _Optional[_Union[_types_pb2.RequestHeader, _Mapping]] = ..., task: _Optional[str] = ..., state: _Optional[_Union[_task_info_pb2.TaskInfoState, str]] = ..., result: _Optional[_Union[_types_pb2.AnyValue, _Mapping]] = ..., fault: _Optional[_Union[_fault_pb2.MethodFault, _Mapping]] = ...) -> None: ...

class SetTaskStateResponse(_message.Message):
    __slots__ = ("info", "leader_hint")
    INFO_FIELD_NUMBER: _ClassVar[int]
    LEADER_HINT_FIELD_NUMBER: _ClassVar[int]
    info: _task_info_pb2.TaskInfo
    leader_hint: str
    def __init__(self, info: _Optional[_Union[_task_info_pb2.TaskInfo, _Mapping]] = ..., leader_hint: _Optional[str] = ...) -> None: ...

class SetTaskDescriptionRequest(_message.Message):
    __slots__ = ("header", "task", "description")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    header: _types_pb2.RequestHeader
    task: str
    description: _types_pb2.LocalizableMessage
    def __init__(self, header: _Optional[_Union[_types_pb2.RequestHeader, _Mapping]] = ..., task: _Optional[str] = ..., description: _Optional[_Union[_types_pb2.LocalizableMessage, _Mapping]] = ...) -> None: ...

class SetTaskDescriptionResponse(_message.Message):
    __slots__ = ("info", "leader_hint")
    INFO_FIELD_NUMBER: _ClassVar[int]
    LEADER_HINT_FIELD_NUMBER: _ClassVar[int]
    info: _task_info_pb2.TaskInfo
    leader_hint: str
    def __init__(self, info: _Optional[_Union[_task_info_pb2.TaskInfo, _Mapping]] = ..., leader_hint: _Optional[str] = ...) -> None: ...
