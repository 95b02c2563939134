import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from llmgw.identity.v1 import identity_pb2 as _identity_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BreakerState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BREAKER_STATE_UNSPECIFIED: _ClassVar[BreakerState]
    BREAKER_STATE_CLOSED: _ClassVar[BreakerState]
    BREAKER_STATE_OPEN: _ClassVar[BreakerState]
    BREAKER_STATE_HALF_OPEN: _ClassVar[BreakerState]
BREAKER_STATE_UNSPECIFIED: BreakerState
BREAKER_STATE_CLOSED: BreakerState
BREAKER_STATE_OPEN: BreakerState
BREAKER_STATE_HALF_OPEN: BreakerState

class ReloadCatalogRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReloadCatalogResponse(_message.Message):
    __slots__ = ("model_count", "deployment_count", "version")
    MODEL_COUNT_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    model_count: int
    deployment_count: int
    version: str
    def __init__(self, model_count: _Optional[int] = ..., deployment_count: _Optional[int] = ..., version: _Optional[str] = ...) -> None: ...

class DeploymentState(_message.Message):
    __slots__ = ("model", "deployment", "provider", "upstream_model", "weight", "max_concurrency", "in_flight", "breaker_state", "reopen_time", "latency_ms", "ttft_ms", "healthy")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_MODEL_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    BREAKER_STATE_FIELD_NUMBER: _ClassVar[int]
    REOPEN_TIME_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    TTFT_MS_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    model: str
    deployment: str
    provider: str
    upstream_model: str
    weight: int
    max_concurrency: int
    in_flight: int
    breaker_state: BreakerState
    reopen_time: _timestamp_pb2.Timestamp
    latency_ms: float
    ttft_ms: float
    healthy: bool
    def __init__(self, model: _Optional[str] = ..., deployment: _Optional[str] = ..., provider: _Optional[str] = ..., upstream_model: _Optional[str] = ..., weight: _Optional[int] = ..., max_concurrency: _Optional[int] = ..., in_flight: _Optional[int] = ..., breaker_state: _Optional[_Union[BreakerState, str]] = ..., reopen_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., latency_ms: _Optional[float] = ..., ttft_ms: _Optional[float] = ..., healthy: _Optional[bool] = ...) -> None: ...

class GetRoutingStateRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class GetRoutingStateResponse(_message.Message):
    __slots__ = ("deployments",)
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    deployments: _containers.RepeatedCompositeFieldContainer[DeploymentState]
    def __init__(self, deployments: _Optional[_Iterable[_Union[DeploymentState, _Mapping]]] = ...) -> None: ...

class UsageTotals(_message.Message):
    __slots__ = ("requests", "input_tokens", "output_tokens", "cached_input_tokens", "cost", "currency", "cache_hits")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    CACHE_HITS_FIELD_NUMBER: _ClassVar[int]
    requests: int
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cost: float
    currency: str
    cache_hits: int
    def __init__(self, requests: _Optional[int] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cached_input_tokens: _Optional[int] = ..., cost: _Optional[float] = ..., currency: _Optional[str] = ..., cache_hits: _Optional[int] = ...) -> None: ...

class DailyUsage(_message.Message):
    __slots__ = ("date", "totals")
    DATE_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    date: str
    totals: UsageTotals
    def __init__(self, date: _Optional[str] = ..., totals: _Optional[_Union[UsageTotals, _Mapping]] = ...) -> None: ...

class ModelUsage(_message.Message):
    __slots__ = ("model", "totals")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    model: str
    totals: UsageTotals
    def __init__(self, model: _Optional[str] = ..., totals: _Optional[_Union[UsageTotals, _Mapping]] = ...) -> None: ...

class GetUsageRequest(_message.Message):
    __slots__ = ("subject", "start_date", "end_date", "model")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    START_DATE_FIELD_NUMBER: _ClassVar[int]
    END_DATE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    subject: str
    start_date: str
    end_date: str
    model: str
    def __init__(self, subject: _Optional[str] = ..., start_date: _Optional[str] = ..., end_date: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class GetUsageResponse(_message.Message):
    __slots__ = ("totals", "daily", "by_model", "budget", "spent_today", "spent_this_month")
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    DAILY_FIELD_NUMBER: _ClassVar[int]
    BY_MODEL_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    SPENT_TODAY_FIELD_NUMBER: _ClassVar[int]
    SPENT_THIS_MONTH_FIELD_NUMBER: _ClassVar[int]
    totals: UsageTotals
    daily: _containers.RepeatedCompositeFieldContainer[DailyUsage]
    by_model: _containers.RepeatedCompositeFieldContainer[ModelUsage]
    budget: _identity_pb2.Budget
    spent_today: float
    spent_this_month: float
    def __init__(self, totals: _Optional[_Union[UsageTotals, _Mapping]] = ..., daily: _Optional[_Iterable[_Union[DailyUsage, _Mapping]]] = ..., by_model: _Optional[_Iterable[_Union[ModelUsage, _Mapping]]] = ..., budget: _Optional[_Union[_identity_pb2.Budget, _Mapping]] = ..., spent_today: _Optional[float] = ..., spent_this_month: _Optional[float] = ...) -> None: ...
