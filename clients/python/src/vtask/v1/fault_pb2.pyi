from vtask.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MethodFault(_message.Message):
    __slots__ = ("not_supported", "request_canceled", "managed_object_not_found", "invalid_argument", "system_error", "security_error", "no_permission", "not_authenticated", "invalid_state", "out_of_bounds", "other", "localized_message", "fault_cause", "fault_message")
    class NotSupported(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    class RequestCanceled(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    class ManagedObjectNotFound(_message.Message):
        __slots__ = ("obj",)
        OBJ_FIELD_NUMBER: _ClassVar[int]
        obj: _types_pb2.ManagedObjectReference
        def __init__(self, obj: _Optional[_Union[_types_pb2.ManagedObjectReference, _Mapping]] = ...) -> None: ...
    class InvalidArgument(_message.Message):
        __slots__ = ("invalid_property",)
        INVALID_PROPERTY_FIELD_NUMBER: _ClassVar[int]
        invalid_property: str
        def __init__(self, invalid_property: _Optional[str] = ...) -> None: ...
    class SystemError(_message.Message):
        __slots__ = ("reason",)
        REASON_FIELD_NUMBER: _ClassVar[int]
        reason: str
        def __init__(self, reason: _Optional[str] = ...) -> None: ...
    class SecurityError(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    class NoPermission(_message.Message):
        __slots__ = ("object", "privilege_id")
        OBJECT_FIELD_NUMBER: _ClassVar[int]
        PRIVILEGE_ID_FIELD_NUMBER: _ClassVar[int]
        object: _types_pb2.ManagedObjectReference
        privilege_id: str
        def __init__(self, object: _Optional[_Union[_types_pb2.ManagedObjectReference, _Mapping]] = ..., privilege_id: _Optional[str] = ...) -> None: ...
    class NotAuthenticated(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    class InvalidState(_message.Message):
        __slots__ = ()
        def __init__(self) -> None: ...
    class OutOfBounds(_message.Message):
        __slots__ = ("argument_name",)
        ARGUMENT_NAME_FIELD_NUMBER: _ClassVar[int]
        argument_name: str
        def __init__(self, argument_name: _Optional[str] = ...) -> None: ...
    class Other(_message.Message):
        __slots__ = ("type_name",)
        TYPE_NAME_FIELD_NUMBER: _ClassVar[int]
        type_name: str
        def __init__(self, type_name: _Optional[str] = ...) -> None: ...
    NOT_SUPPORTED_FIELD_NUMBER: _ClassVar[int]
    REQUEST_CANCELED_FIELD_NUMBER: _ClassVar[int]
    MANAGED_OBJECT_NOT_FOUND_FIELD_NUMBER: _ClassVar[int]
    INVALID_ARGUMENT_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_ERROR_FIELD_NUMBER: _ClassVar[int]
    SECURITY_ERROR_FIELD_NUMBER: _ClassVar[int]
    NO_PERMISSION_FIELD_NUMBER: _ClassVar[int]
    NOT_AUTHENTICATED_FIELD_NUMBER: _ClassVar[int]
    INVALID_STATE_FIELD_NUMBER: _ClassVar[int]
    OUT_OF_BOUNDS_FIELD_NUMBER: _ClassVar[int]
    OTHER_FIELD_NUMBER: _ClassVar[int]
    LOCALIZED_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FAULT_CAUSE_FIELD_NUMBER: _ClassVar[int]
    FAULT_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    not_supported: MethodFault.NotSupported
    request_canceled: MethodFault.RequestCanceled
    managed_object_not_found: MethodFault.ManagedObjectNotFound
    invalid_argument: MethodFault.InvalidArgument
    system_error: MethodFault.SystemError
    security_error: MethodFault.SecurityError
    no_permission: MethodFault.NoPermission
    not_authenticated: MethodFault.NotAuthenticated
    invalid_state: MethodFault.InvalidState
    out_of_bounds: MethodFault.OutOfBounds
    other: MethodFault.Other
    localized_message: str
    fault_cause: MethodFault
    fault_message: _containers.RepeatedCompositeFieldContainer[_types_pb2.LocalizableMessage]
    def __init__(self, not_supported: _Optional[_Union[MethodFault.NotSupported, _Mapping]] = ..., request_canceled: _Optional[_Union[MethodFault.RequestCanceled, _Mapping]] = ..., managed_object_not_found: _Optional[_Union[MethodFault.ManagedObjectNotFound, _Mapping]] = ..., invalid_argument: _Optional[_Union[MethodFault.InvalidArgument, _Mapping]] = ..., system_error: _Optional[_Union[MethodFault.SystemError, _Mapping]] = ..., security_error: _Optional[_Union[MethodFault.SecurityError, _Mapping]] = ..., no_permission: _Optional[_Union[MethodFault.NoPermission, _Mapping]] = ..., not_authenticated: _Optional[_Union[MethodFault.NotAuthenticated, _Mapping]] = ..., invalid_state: _Optional[_Union[MethodFault.InvalidState, _Mapping]] = ..., out_of_bounds: _Optional[_Union[MethodFault.OutOfBounds, _Mapping]] = ..., other: _Optional[_Union[MethodFault.Other, _Mapping]] = ..., localized_message: _Optional[str] = ..., fault_cause: _Optional[_Union[MethodFault, _Mapping]] = ..., fault_message: _Optional[_Iterable[_Union[_types_pb2.LocalizableMessage, _Mapping]]] = ...) -> None: ...
