import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from llmgw.common.v1 import chat_pb2 as _chat_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    PRIORITY_LOW: _ClassVar[Priority]
    PRIORITY_MEDIUM: _ClassVar[Priority]
    PRIORITY_HIGH: _ClassVar[Priority]
    PRIORITY_CRITICAL: _ClassVar[Priority]

class InvestigationState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INVESTIGATION_STATE_UNSPECIFIED: _ClassVar[InvestigationState]
    INVESTIGATION_STATE_QUEUED: _ClassVar[InvestigationState]
    INVESTIGATION_STATE_RUNNING: _ClassVar[InvestigationState]
    INVESTIGATION_STATE_SUCCEEDED: _ClassVar[InvestigationState]
    INVESTIGATION_STATE_FAILED: _ClassVar[InvestigationState]
    INVESTIGATION_STATE_CANCELLED: _ClassVar[InvestigationState]
PRIORITY_UNSPECIFIED: Priority
PRIORITY_LOW: Priority
PRIORITY_MEDIUM: Priority
PRIORITY_HIGH: Priority
PRIORITY_CRITICAL: Priority
INVESTIGATION_STATE_UNSPECIFIED: InvestigationState
INVESTIGATION_STATE_QUEUED: InvestigationState
INVESTIGATION_STATE_RUNNING: InvestigationState
INVESTIGATION_STATE_SUCCEEDED: InvestigationState
INVESTIGATION_STATE_FAILED: InvestigationState
INVESTIGATION_STATE_CANCELLED: InvestigationState

class Alert(_message.Message):
    __slots__ = ("alert_name", "namespace", "labels", "annotations", "priority", "source", "starts_at", "fingerprint", "generator_url")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class AnnotationsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ALERT_NAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    GENERATOR_URL_FIELD_NUMBER: _ClassVar[int]
    alert_name: str
    namespace: str
    labels: _containers.ScalarMap[str, str]
    annotations: _containers.ScalarMap[str, str]
    priority: Priority
    source: str
    starts_at: _timestamp_pb2.Timestamp
    fingerprint: str
    generator_url: str
    def __init__(self, alert_name: _Optional[str] = ..., namespace: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., annotations: _Optional[_Mapping[str, str]] = ..., priority: _Optional[_Union[Priority, str]] = ..., source: _Optional[str] = ..., starts_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., fingerprint: _Optional[str] = ..., generator_url: _Optional[str] = ...) -> None: ...

class ToolInvocation(_message.Message):
    __slots__ = ("toolset", "tool", "arguments", "result_summary", "duration", "status")
    TOOLSET_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    RESULT_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    toolset: str
    tool: str
    arguments: _struct_pb2.Struct
    result_summary: str
    duration: _duration_pb2.Duration
    status: _status_pb2.Status
    def __init__(self, toolset: _Optional[str] = ..., tool: _Optional[str] = ..., arguments: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., result_summary: _Optional[str] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class Finding(_message.Message):
    __slots__ = ("title", "detail", "source", "evidence")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    title: str
    detail: str
    source: str
    evidence: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, title: _Optional[str] = ..., detail: _Optional[str] = ..., source: _Optional[str] = ..., evidence: _Optional[_Iterable[str]] = ...) -> None: ...

class InvestigationResult(_message.Message):
    __slots__ = ("summary", "root_cause", "findings", "recommendations", "confidence", "tool_calls")
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    ROOT_CAUSE_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATIONS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    summary: str
    root_cause: str
    findings: _containers.RepeatedCompositeFieldContainer[Finding]
    recommendations: _containers.RepeatedScalarFieldContainer[str]
    confidence: float
    tool_calls: _containers.RepeatedCompositeFieldContainer[ToolInvocation]
    def __init__(self, summary: _Optional[str] = ..., root_cause: _Optional[str] = ..., findings: _Optional[_Iterable[_Union[Finding, _Mapping]]] = ..., recommendations: _Optional[_Iterable[str]] = ..., confidence: _Optional[float] = ..., tool_calls: _Optional[_Iterable[_Union[ToolInvocation, _Mapping]]] = ...) -> None: ...

class Investigation(_message.Message):
    __slots__ = ("name", "alert", "toolsets", "model", "state", "result", "error", "usage", "progress_percent", "owner", "create_time", "start_time", "end_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALERT_FIELD_NUMBER: _ClassVar[int]
    TOOLSETS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_PERCENT_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    alert: Alert
    toolsets: _containers.RepeatedScalarFieldContainer[str]
    model: str
    state: InvestigationState
    result: InvestigationResult
    error: _status_pb2.Status
    usage: _chat_pb2.Usage
    progress_percent: int
    owner: str
    create_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., alert: _Optional[_Union[Alert, _Mapping]] = ..., toolsets: _Optional[_Iterable[str]] = ..., model: _Optional[str] = ..., state: _Optional[_Union[InvestigationState, str]] = ..., result: _Optional[_Union[InvestigationResult, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., usage: _Optional[_Union[_chat_pb2.Usage, _Mapping]] = ..., progress_percent: _Optional[int] = ..., owner: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("stage", "message", "percent")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    stage: str
    message: str
    percent: int
    def __init__(self, stage: _Optional[str] = ..., message: _Optional[str] = ..., percent: _Optional[int] = ...) -> None: ...

class InvestigationEvent(_message.Message):
    __slots__ = ("investigation", "sequence", "time", "progress", "tool_call", "finding", "result", "state")
    INVESTIGATION_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_FIELD_NUMBER: _ClassVar[int]
    FINDING_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    investigation: str
    sequence: int
    time: _timestamp_pb2.Timestamp
    progress: Progress
    tool_call: ToolInvocation
    finding: Finding
    result: InvestigationResult
    state: InvestigationState
    def __init__(self, investigation: _Optional[str] = ..., sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., tool_call: _Optional[_Union[ToolInvocation, _Mapping]] = ..., finding: _Optional[_Union[Finding, _Mapping]] = ..., result: _Optional[_Union[InvestigationResult, _Mapping]] = ..., state: _Optional[_Union[InvestigationState, str]] = ...) -> None: ...

class CreateInvestigationRequest(_message.Message):
    __slots__ = ("investigation", "investigation_id", "request_id")
    INVESTIGATION_FIELD_NUMBER: _ClassVar[int]
    INVESTIGATION_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    investigation: Investigation
    investigation_id: str
    request_id: str
    def __init__(self, investigation: _Optional[_Union[Investigation, _Mapping]] = ..., investigation_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateInvestigationResponse(_message.Message):
    __slots__ = ("investigation",)
    INVESTIGATION_FIELD_NUMBER: _ClassVar[int]
    investigation: Investigation
    def __init__(self, investigation: _Optional[_Union[Investigation, _Mapping]] = ...) -> None: ...

class GetInvestigationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetInvestigationResponse(_message.Message):
    __slots__ = ("investigation",)
    INVESTIGATION_FIELD_NUMBER: _ClassVar[int]
    investigation: Investigation
    def __init__(self, investigation: _Optional[_Union[Investigation, _Mapping]] = ...) -> None: ...

class ListInvestigationsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "state")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    state: InvestigationState
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[_Union[InvestigationState, str]] = ...) -> None: ...

class ListInvestigationsResponse(_message.Message):
    __slots__ = ("investigations", "next_page_token")
    INVESTIGATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    investigations: _containers.RepeatedCompositeFieldContainer[Investigation]
    next_page_token: str
    def __init__(self, investigations: _Optional[_Iterable[_Union[Investigation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelInvestigationRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CancelInvestigationResponse(_message.Message):
    __slots__ = ("investigation",)
    INVESTIGATION_FIELD_NUMBER: _ClassVar[int]
    investigation: Investigation
    def __init__(self, investigation: _Optional[_Union[Investigation, _Mapping]] = ...) -> None: ...

class StreamInvestigationEventsRequest(_message.Message):
    __slots__ = ("name", "after_sequence")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    after_sequence: int
    def __init__(self, name: _Optional[str] = ..., after_sequence: _Optional[int] = ...) -> None: ...

class StreamInvestigationEventsResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: InvestigationEvent
    def __init__(self, event: _Optional[_Union[InvestigationEvent, _Mapping]] = ...) -> None: ...

class RunInvestigationRequest(_message.Message):
    __slots__ = ("investigation",)
    INVESTIGATION_FIELD_NUMBER: _ClassVar[int]
    investigation: Investigation
    def __init__(self, investigation: _Optional[_Union[Investigation, _Mapping]] = ...) -> None: ...

class RunInvestigationResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: InvestigationEvent
    def __init__(self, event: _Optional[_Union[InvestigationEvent, _Mapping]] = ...) -> None: ...

class ChatInvestigationRequest(_message.Message):
    __slots__ = ("name", "message", "history")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    name: str
    message: str
    history: _containers.RepeatedCompositeFieldContainer[_chat_pb2.Message]
    def __init__(self, name: _Optional[str] = ..., message: _Optional[str] = ..., history: _Optional[_Iterable[_Union[_chat_pb2.Message, _Mapping]]] = ...) -> None: ...

class ChatInvestigationResponse(_message.Message):
    __slots__ = ("answer", "usage")
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    answer: str
    usage: _chat_pb2.Usage
    def __init__(self, answer: _Optional[str] = ..., usage: _Optional[_Union[_chat_pb2.Usage, _Mapping]] = ...) -> None: ...

class AlertmanagerAlert(_message.Message):
    __slots__ = ("status", "labels", "annotations", "starts_at", "ends_at", "generator_url", "fingerprint")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class AnnotationsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    GENERATOR_URL_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    status: str
    labels: _containers.ScalarMap[str, str]
    annotations: _containers.ScalarMap[str, str]
    starts_at: _timestamp_pb2.Timestamp
    ends_at: _timestamp_pb2.Timestamp
    generator_url: str
    fingerprint: str
    def __init__(self, status: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., annotations: _Optional[_Mapping[str, str]] = ..., starts_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ends_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., generator_url: _Optional[str] = ..., fingerprint: _Optional[str] = ...) -> None: ...

class ReceiveAlertmanagerWebhookRequest(_message.Message):
    __slots__ = ("version", "group_key", "truncated_alerts", "status", "receiver", "group_labels", "common_labels", "common_annotations", "external_url", "alerts")
    class GroupLabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class CommonLabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class CommonAnnotationsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    GROUP_KEY_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_ALERTS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RECEIVER_FIELD_NUMBER: _ClassVar[int]
    GROUP_LABELS_FIELD_NUMBER: _ClassVar[int]
    COMMON_LABELS_FIELD_NUMBER: _ClassVar[int]
    COMMON_ANNOTATIONS_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_URL_FIELD_NUMBER: _ClassVar[int]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    version: str
    group_key: str
    truncated_alerts: int
    status: str
    receiver: str
    group_labels: _containers.ScalarMap[str, str]
    common_labels: _containers.ScalarMap[str, str]
    common_annotations: _containers.ScalarMap[str, str]
    external_url: str
    alerts: _containers.RepeatedCompositeFieldContainer[AlertmanagerAlert]
    def __init__(self, version: _Optional[str] = ..., group_key: _Optional[str] = ..., truncated_alerts: _Optional[int] = ..., status: _Optional[str] = ..., receiver: _Optional[str] = ..., group_labels: _Optional[_Mapping[str, str]] = ..., common_labels: _Optional[_Mapping[str, str]] = ..., common_annotations: _Optional[_Mapping[str, str]] = ..., external_url: _Optional[str] = ..., alerts: _Optional[_Iterable[_Union[AlertmanagerAlert, _Mapping]]] = ...) -> None: ...

class ReceiveAlertmanagerWebhookResponse(_message.Message):
    __slots__ = ("investigations", "skipped")
    INVESTIGATIONS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    investigations: _containers.RepeatedCompositeFieldContainer[Investigation]
    skipped: int
    def __init__(self, investigations: _Optional[_Iterable[_Union[Investigation, _Mapping]]] = ..., skipped: _Optional[int] = ...) -> None: ...
