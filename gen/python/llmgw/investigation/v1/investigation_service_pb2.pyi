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

class Completeness(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMPLETENESS_UNSPECIFIED: _ClassVar[Completeness]
    COMPLETENESS_COMPLETE: _ClassVar[Completeness]
    COMPLETENESS_PARTIAL: _ClassVar[Completeness]

class PartialReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PARTIAL_REASON_UNSPECIFIED: _ClassVar[PartialReason]
    PARTIAL_REASON_STEP_LIMIT: _ClassVar[PartialReason]
    PARTIAL_REASON_TIME_LIMIT: _ClassVar[PartialReason]
    PARTIAL_REASON_TOKEN_BUDGET: _ClassVar[PartialReason]
    PARTIAL_REASON_COST_BUDGET: _ClassVar[PartialReason]
    PARTIAL_REASON_MODEL_UNAVAILABLE: _ClassVar[PartialReason]
    PARTIAL_REASON_CANCELLED: _ClassVar[PartialReason]

class RootCauseSupport(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROOT_CAUSE_SUPPORT_UNSPECIFIED: _ClassVar[RootCauseSupport]
    ROOT_CAUSE_SUPPORT_ANALYZER: _ClassVar[RootCauseSupport]
    ROOT_CAUSE_SUPPORT_CORROBORATED: _ClassVar[RootCauseSupport]
    ROOT_CAUSE_SUPPORT_UNCORROBORATED: _ClassVar[RootCauseSupport]
    ROOT_CAUSE_SUPPORT_CONTRADICTED: _ClassVar[RootCauseSupport]

class WebhookOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WEBHOOK_OUTCOME_UNSPECIFIED: _ClassVar[WebhookOutcome]
    WEBHOOK_OUTCOME_OPENED: _ClassVar[WebhookOutcome]
    WEBHOOK_OUTCOME_DEDUPLICATED: _ClassVar[WebhookOutcome]
    WEBHOOK_OUTCOME_RESOLVED: _ClassVar[WebhookOutcome]
    WEBHOOK_OUTCOME_IGNORED: _ClassVar[WebhookOutcome]
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
COMPLETENESS_UNSPECIFIED: Completeness
COMPLETENESS_COMPLETE: Completeness
COMPLETENESS_PARTIAL: Completeness
PARTIAL_REASON_UNSPECIFIED: PartialReason
PARTIAL_REASON_STEP_LIMIT: PartialReason
PARTIAL_REASON_TIME_LIMIT: PartialReason
PARTIAL_REASON_TOKEN_BUDGET: PartialReason
PARTIAL_REASON_COST_BUDGET: PartialReason
PARTIAL_REASON_MODEL_UNAVAILABLE: PartialReason
PARTIAL_REASON_CANCELLED: PartialReason
ROOT_CAUSE_SUPPORT_UNSPECIFIED: RootCauseSupport
ROOT_CAUSE_SUPPORT_ANALYZER: RootCauseSupport
ROOT_CAUSE_SUPPORT_CORROBORATED: RootCauseSupport
ROOT_CAUSE_SUPPORT_UNCORROBORATED: RootCauseSupport
ROOT_CAUSE_SUPPORT_CONTRADICTED: RootCauseSupport
WEBHOOK_OUTCOME_UNSPECIFIED: WebhookOutcome
WEBHOOK_OUTCOME_OPENED: WebhookOutcome
WEBHOOK_OUTCOME_DEDUPLICATED: WebhookOutcome
WEBHOOK_OUTCOME_RESOLVED: WebhookOutcome
WEBHOOK_OUTCOME_IGNORED: WebhookOutcome

class Alert(_message.Message):
    __slots__ = ("alert_name", "namespace", "labels", "annotations", "priority", "source", "starts_at", "fingerprint", "generator_url", "resolved_at")
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
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    alert_name: str
    namespace: str
    labels: _containers.ScalarMap[str, str]
    annotations: _containers.ScalarMap[str, str]
    priority: Priority
    source: str
    starts_at: _timestamp_pb2.Timestamp
    fingerprint: str
    generator_url: str
    resolved_at: _timestamp_pb2.Timestamp
    def __init__(self, alert_name: _Optional[str] = ..., namespace: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., annotations: _Optional[_Mapping[str, str]] = ..., priority: _Optional[_Union[Priority, str]] = ..., source: _Optional[str] = ..., starts_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., fingerprint: _Optional[str] = ..., generator_url: _Optional[str] = ..., resolved_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class InvestigationLimits(_message.Message):
    __slots__ = ("max_steps", "time_limit", "max_tokens", "max_cost")
    MAX_STEPS_FIELD_NUMBER: _ClassVar[int]
    TIME_LIMIT_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_FIELD_NUMBER: _ClassVar[int]
    max_steps: int
    time_limit: _duration_pb2.Duration
    max_tokens: int
    max_cost: float
    def __init__(self, max_steps: _Optional[int] = ..., time_limit: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_tokens: _Optional[int] = ..., max_cost: _Optional[float] = ...) -> None: ...

class ToolInvocation(_message.Message):
    __slots__ = ("id", "toolset", "tool", "arguments", "output", "truncated", "duration", "status", "requested_by", "step")
    ID_FIELD_NUMBER: _ClassVar[int]
    TOOLSET_FIELD_NUMBER: _ClassVar[int]
    TOOL_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    id: str
    toolset: str
    tool: str
    arguments: _struct_pb2.Struct
    output: str
    truncated: bool
    duration: _duration_pb2.Duration
    status: _status_pb2.Status
    requested_by: str
    step: int
    def __init__(self, id: _Optional[str] = ..., toolset: _Optional[str] = ..., tool: _Optional[str] = ..., arguments: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., output: _Optional[str] = ..., truncated: _Optional[bool] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., requested_by: _Optional[str] = ..., step: _Optional[int] = ...) -> None: ...

class Evidence(_message.Message):
    __slots__ = ("tool_call_id", "excerpt")
    TOOL_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    EXCERPT_FIELD_NUMBER: _ClassVar[int]
    tool_call_id: str
    excerpt: str
    def __init__(self, tool_call_id: _Optional[str] = ..., excerpt: _Optional[str] = ...) -> None: ...

class Finding(_message.Message):
    __slots__ = ("title", "detail", "source", "evidence", "origin", "kind", "subject")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    title: str
    detail: str
    source: str
    evidence: _containers.RepeatedCompositeFieldContainer[Evidence]
    origin: str
    kind: str
    subject: str
    def __init__(self, title: _Optional[str] = ..., detail: _Optional[str] = ..., source: _Optional[str] = ..., evidence: _Optional[_Iterable[_Union[Evidence, _Mapping]]] = ..., origin: _Optional[str] = ..., kind: _Optional[str] = ..., subject: _Optional[str] = ...) -> None: ...

class RejectedClaim(_message.Message):
    __slots__ = ("title", "reason")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    title: str
    reason: str
    def __init__(self, title: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class InvestigationResult(_message.Message):
    __slots__ = ("summary", "root_cause", "findings", "recommendations", "confidence", "tool_calls", "completeness", "partial_reason", "partial_detail", "root_cause_evidence", "rejected_claims", "steps", "model", "root_cause_support", "root_cause_analyzer")
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    ROOT_CAUSE_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATIONS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    COMPLETENESS_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_REASON_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_DETAIL_FIELD_NUMBER: _ClassVar[int]
    ROOT_CAUSE_EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    REJECTED_CLAIMS_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ROOT_CAUSE_SUPPORT_FIELD_NUMBER: _ClassVar[int]
    ROOT_CAUSE_ANALYZER_FIELD_NUMBER: _ClassVar[int]
    summary: str
    root_cause: str
    findings: _containers.RepeatedCompositeFieldContainer[Finding]
    recommendations: _containers.RepeatedScalarFieldContainer[str]
    confidence: float
    tool_calls: _containers.RepeatedCompositeFieldContainer[ToolInvocation]
    completeness: Completeness
    partial_reason: PartialReason
    partial_detail: str
    root_cause_evidence: _containers.RepeatedCompositeFieldContainer[Evidence]
    rejected_claims: _containers.RepeatedCompositeFieldContainer[RejectedClaim]
    steps: int
    model: str
    root_cause_support: RootCauseSupport
    root_cause_analyzer: str
    def __init__(self, summary: _Optional[str] = ..., root_cause: _Optional[str] = ..., findings: _Optional[_Iterable[_Union[Finding, _Mapping]]] = ..., recommendations: _Optional[_Iterable[str]] = ..., confidence: _Optional[float] = ..., tool_calls: _Optional[_Iterable[_Union[ToolInvocation, _Mapping]]] = ..., completeness: _Optional[_Union[Completeness, str]] = ..., partial_reason: _Optional[_Union[PartialReason, str]] = ..., partial_detail: _Optional[str] = ..., root_cause_evidence: _Optional[_Iterable[_Union[Evidence, _Mapping]]] = ..., rejected_claims: _Optional[_Iterable[_Union[RejectedClaim, _Mapping]]] = ..., steps: _Optional[int] = ..., model: _Optional[str] = ..., root_cause_support: _Optional[_Union[RootCauseSupport, str]] = ..., root_cause_analyzer: _Optional[str] = ...) -> None: ...

class Investigation(_message.Message):
    __slots__ = ("name", "alert", "toolsets", "model", "state", "result", "error", "usage", "progress_percent", "owner", "create_time", "start_time", "end_time", "limits", "cost", "attempts", "duplicate_alerts", "session")
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
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_ALERTS_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
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
    limits: InvestigationLimits
    cost: float
    attempts: int
    duplicate_alerts: int
    session: str
    def __init__(self, name: _Optional[str] = ..., alert: _Optional[_Union[Alert, _Mapping]] = ..., toolsets: _Optional[_Iterable[str]] = ..., model: _Optional[str] = ..., state: _Optional[_Union[InvestigationState, str]] = ..., result: _Optional[_Union[InvestigationResult, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., usage: _Optional[_Union[_chat_pb2.Usage, _Mapping]] = ..., progress_percent: _Optional[int] = ..., owner: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., limits: _Optional[_Union[InvestigationLimits, _Mapping]] = ..., cost: _Optional[float] = ..., attempts: _Optional[int] = ..., duplicate_alerts: _Optional[int] = ..., session: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("page_size", "page_token", "state", "alert_name", "fingerprint")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ALERT_NAME_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    state: InvestigationState
    alert_name: str
    fingerprint: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[_Union[InvestigationState, str]] = ..., alert_name: _Optional[str] = ..., fingerprint: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("investigation", "investigation_id")
    INVESTIGATION_FIELD_NUMBER: _ClassVar[int]
    INVESTIGATION_ID_FIELD_NUMBER: _ClassVar[int]
    investigation: Investigation
    investigation_id: str
    def __init__(self, investigation: _Optional[_Union[Investigation, _Mapping]] = ..., investigation_id: _Optional[str] = ...) -> None: ...

class RunInvestigationResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: InvestigationEvent
    def __init__(self, event: _Optional[_Union[InvestigationEvent, _Mapping]] = ...) -> None: ...

class ChatInvestigationRequest(_message.Message):
    __slots__ = ("name", "message", "model", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    message: str
    model: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., message: _Optional[str] = ..., model: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class ChatInvestigationResponse(_message.Message):
    __slots__ = ("answer", "usage", "session")
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    answer: str
    usage: _chat_pb2.Usage
    session: str
    def __init__(self, answer: _Optional[str] = ..., usage: _Optional[_Union[_chat_pb2.Usage, _Mapping]] = ..., session: _Optional[str] = ...) -> None: ...

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

class WebhookAlertResult(_message.Message):
    __slots__ = ("fingerprint", "outcome", "investigation")
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    INVESTIGATION_FIELD_NUMBER: _ClassVar[int]
    fingerprint: str
    outcome: WebhookOutcome
    investigation: str
    def __init__(self, fingerprint: _Optional[str] = ..., outcome: _Optional[_Union[WebhookOutcome, str]] = ..., investigation: _Optional[str] = ...) -> None: ...

class ReceiveAlertmanagerWebhookResponse(_message.Message):
    __slots__ = ("investigations", "skipped", "results")
    INVESTIGATIONS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    investigations: _containers.RepeatedCompositeFieldContainer[Investigation]
    skipped: int
    results: _containers.RepeatedCompositeFieldContainer[WebhookAlertResult]
    def __init__(self, investigations: _Optional[_Iterable[_Union[Investigation, _Mapping]]] = ..., skipped: _Optional[int] = ..., results: _Optional[_Iterable[_Union[WebhookAlertResult, _Mapping]]] = ...) -> None: ...
