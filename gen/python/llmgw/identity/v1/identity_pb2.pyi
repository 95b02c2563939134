import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RateLimit(_message.Message):
    __slots__ = ("unit", "window", "limit")
    class Unit(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UNIT_UNSPECIFIED: _ClassVar[RateLimit.Unit]
        UNIT_REQUESTS: _ClassVar[RateLimit.Unit]
        UNIT_TOKENS: _ClassVar[RateLimit.Unit]
    UNIT_UNSPECIFIED: RateLimit.Unit
    UNIT_REQUESTS: RateLimit.Unit
    UNIT_TOKENS: RateLimit.Unit
    class Window(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        WINDOW_UNSPECIFIED: _ClassVar[RateLimit.Window]
        WINDOW_MINUTE: _ClassVar[RateLimit.Window]
        WINDOW_HOUR: _ClassVar[RateLimit.Window]
        WINDOW_DAY: _ClassVar[RateLimit.Window]
    WINDOW_UNSPECIFIED: RateLimit.Window
    WINDOW_MINUTE: RateLimit.Window
    WINDOW_HOUR: RateLimit.Window
    WINDOW_DAY: RateLimit.Window
    UNIT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    unit: RateLimit.Unit
    window: RateLimit.Window
    limit: int
    def __init__(self, unit: _Optional[_Union[RateLimit.Unit, str]] = ..., window: _Optional[_Union[RateLimit.Window, str]] = ..., limit: _Optional[int] = ...) -> None: ...

class Budget(_message.Message):
    __slots__ = ("daily_limit", "monthly_limit", "soft_threshold", "currency")
    DAILY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    SOFT_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    daily_limit: float
    monthly_limit: float
    soft_threshold: float
    currency: str
    def __init__(self, daily_limit: _Optional[float] = ..., monthly_limit: _Optional[float] = ..., soft_threshold: _Optional[float] = ..., currency: _Optional[str] = ...) -> None: ...

class Consumer(_message.Message):
    __slots__ = ("name", "display_name", "groups", "ip_allowlist", "limits", "budget", "disabled", "create_time", "update_time", "etag")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    IP_ALLOWLIST_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    groups: _containers.RepeatedScalarFieldContainer[str]
    ip_allowlist: _containers.RepeatedScalarFieldContainer[str]
    limits: _containers.RepeatedCompositeFieldContainer[RateLimit]
    budget: Budget
    disabled: bool
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., groups: _Optional[_Iterable[str]] = ..., ip_allowlist: _Optional[_Iterable[str]] = ..., limits: _Optional[_Iterable[_Union[RateLimit, _Mapping]]] = ..., budget: _Optional[_Union[Budget, _Mapping]] = ..., disabled: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class Group(_message.Message):
    __slots__ = ("name", "display_name", "allowed_models", "allowed_providers", "allowed_tools", "allowed_services", "ip_allowlist", "limits", "budget", "admin", "shared_cache", "create_time", "update_time", "etag")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_MODELS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_TOOLS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_SERVICES_FIELD_NUMBER: _ClassVar[int]
    IP_ALLOWLIST_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    SHARED_CACHE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    allowed_models: _containers.RepeatedScalarFieldContainer[str]
    allowed_providers: _containers.RepeatedScalarFieldContainer[str]
    allowed_tools: _containers.RepeatedScalarFieldContainer[str]
    allowed_services: _containers.RepeatedScalarFieldContainer[str]
    ip_allowlist: _containers.RepeatedScalarFieldContainer[str]
    limits: _containers.RepeatedCompositeFieldContainer[RateLimit]
    budget: Budget
    admin: bool
    shared_cache: bool
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., allowed_models: _Optional[_Iterable[str]] = ..., allowed_providers: _Optional[_Iterable[str]] = ..., allowed_tools: _Optional[_Iterable[str]] = ..., allowed_services: _Optional[_Iterable[str]] = ..., ip_allowlist: _Optional[_Iterable[str]] = ..., limits: _Optional[_Iterable[_Union[RateLimit, _Mapping]]] = ..., budget: _Optional[_Union[Budget, _Mapping]] = ..., admin: _Optional[bool] = ..., shared_cache: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class ApiKey(_message.Message):
    __slots__ = ("name", "prefix", "create_time", "expire_time", "revoke_time", "active")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    REVOKE_TIME_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    name: str
    prefix: str
    create_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    revoke_time: _timestamp_pb2.Timestamp
    active: bool
    def __init__(self, name: _Optional[str] = ..., prefix: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoke_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., active: _Optional[bool] = ...) -> None: ...
