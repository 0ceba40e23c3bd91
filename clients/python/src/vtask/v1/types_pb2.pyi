import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReadConsistency(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    READ_CONSISTENCY_UNSPECIFIED: _ClassVar[ReadConsistency]
    READ_CONSISTENCY_LINEARIZABLE: _ClassVar[ReadConsistency]
    READ_CONSISTENCY_STALE: _ClassVar[ReadConsistency]
READ_CONSISTENCY_UNSPECIFIED: ReadConsistency
READ_CONSISTENCY_LINEARIZABLE: ReadConsistency
READ_CONSISTENCY_STALE: ReadConsistency

class RequestHeader(_message.Message):
    __slots__ = ("client_id", "seq")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    seq: int
    def __init__(self, client_id: _Optional[str] = ..., seq: _Optional[int] = ...) -> None: ...

class ManagedObjectReference(_message.Message):
    __slots__ = ("type", "value")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    type: str
    value: str
    def __init__(self, type: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class AnyValue(_message.Message):
    __slots__ = ("string_value", "long_value", "boolean_value", "double_value", "date_time_value", "moref_value", "json_value")
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    LONG_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOLEAN_VALUE_FIELD_NUMBER: _ClassVar[int]
    DOUBLE_VALUE_FIELD_NUMBER: _ClassVar[int]
    DATE_TIME_VALUE_FIELD_NUMBER: _ClassVar[int]
    MOREF_VALUE_FIELD_NUMBER: _ClassVar[int]
    JSON_VALUE_FIELD_NUMBER: _ClassVar[int]
    string_value: str
    long_value: int
    boolean_value: bool
    double_value: float
    date_time_value: _timestamp_pb2.Timestamp
    moref_value: ManagedObjectReference
    json_value: str
    def __init__(self, string_value: _Optional[str] = ..., long_value: _Optional[int] = ..., boolean_value: _Optional[bool] = ..., double_value: _Optional[float] = ..., date_time_value: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., moref_value: _Optional[_Union[ManagedObjectReference, _Mapping]] = ..., json_value: _Optional[str] = ...) -> None: ...

class KeyAnyValue(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: AnyValue
    def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[AnyValue, _Mapping]] = ...) -> None: ...

class LocalizableMessage(_message.Message):
    __slots__ = ("key", "arg", "message")
    KEY_FIELD_NUMBER: _ClassVar[int]
    ARG_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    key: str
    arg: _containers.RepeatedCompositeFieldContainer[KeyAnyValue]
    message: str
    def __init__(self, key: _Optional[str] = ..., arg: _Optional[_Iterable[_Union[KeyAnyValue, _Mapping]]] = ..., message: _Optional[str] = ...) -> None: ...
