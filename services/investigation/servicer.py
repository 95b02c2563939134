"""InvestigationService: investigations as owned, resumable jobs.

Create stores the investigation QUEUED and a worker of any replica takes it up; Run
does the same and follows its events until it ends. Every read is owner-scoped like
sessions: another consumer's investigation is NOT_FOUND (admins, and every caller while
authentication is off, see all). The webhook opens one investigation per firing alert,
deduplicated by fingerprint (services/investigation/jobs.py does it atomically).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc
from google.protobuf import timestamp_pb2

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from llmgw.investigation.v1 import investigation_service_pb2_grpc as inv_grpc
from services.common.caller import current_caller
from services.common.enum_checks import check_enum
from services.common.idempotency.run import once, request_scope
from services.common.idempotency.store import IdempotencyStore
from services.common.investigation_config import InvestigationConfig
from services.common.owners import current_owner, required_owner
from services.common.redis_errors import redis_errors_as_unavailable
from services.common.text_checks import check_text
from services.common.validation import Violations
from services.investigation import checks, metrics, webhook
from services.investigation.followup import FollowUp
from services.investigation.jobs import JobStore

# What a Redis failure is reported as.
STORE = "the investigation store"


def _store_errors() -> contextlib.AbstractAsyncContextManager[None]:
    return redis_errors_as_unavailable(STORE)


class InvestigationServicer(inv_grpc.InvestigationServiceServicer):
    def __init__(
        self,
        store: JobStore,
        config: InvestigationConfig,
        followup: FollowUp,
        *,
        once_store: IdempotencyStore | None = None,
    ) -> None:
        self._store = store
        self.config = config
        self._followup = followup
        self._once = once_store

    def _new(
        self, violations: Violations, spec: inv_pb2.Investigation, investigation_id: str
    ) -> inv_pb2.Investigation:
        checks.check_investigation(violations, "investigation", spec, self.config)
        checks.check_id(violations, "investigation_id", investigation_id)
        fresh = checks.fresh(spec)
        if not fresh.alert.priority:
            fresh.alert.priority = webhook.priority_of(dict(fresh.alert.labels))
        if not fresh.alert.source:
            fresh.alert.source = "manual"
        return fresh

    async def _create(
        self, spec: inv_pb2.Investigation, investigation_id: str
    ) -> inv_pb2.Investigation:
        caller = current_caller()
        async with _store_errors():
            return await self._store.create(
                spec,
                investigation_id=investigation_id or checks.new_investigation_id(),
                owner=current_owner(),
                key_name=caller.key_name,
            )

    async def CreateInvestigation(
        self, request: inv_pb2.CreateInvestigationRequest, context: grpc.aio.ServicerContext
    ) -> inv_pb2.CreateInvestigationResponse:
        violations = Violations()
        spec = self._new(violations, request.investigation, request.investigation_id)
        where = request_scope(violations, "investigation.Create", request, context)
        violations.raise_if_any()

        async def work(_: grpc.aio.ServicerContext) -> inv_pb2.CreateInvestigationResponse:
            created = await self._create(spec, request.investigation_id)
            return inv_pb2.CreateInvestigationResponse(investigation=created)

        return await once(self._once, where, context, inv_pb2.CreateInvestigationResponse, work)

    def _id(self, name: str) -> str:
        violations = Violations()
        investigation_id = checks.NAMES.parse(violations, "name", name)
        violations.raise_if_any()
        return investigation_id

    async def GetInvestigation(
        self, request: inv_pb2.GetInvestigationRequest, context: grpc.aio.ServicerContext
    ) -> inv_pb2.GetInvestigationResponse:
        investigation_id = self._id(request.name)
        async with _store_errors():
            found = await self._store.get(investigation_id, required_owner())
        return inv_pb2.GetInvestigationResponse(investigation=found)

    async def ListInvestigations(
        self, request: inv_pb2.ListInvestigationsRequest, context: grpc.aio.ServicerContext
    ) -> inv_pb2.ListInvestigationsResponse:
        violations = Violations()
        size = checks.page_size(violations, request.page_size)
        check_enum(violations, "state", request.state, inv_pb2.InvestigationState)
        check_text(violations, "alert_name", request.alert_name, checks.MAX_ALERT_NAME)
        check_text(violations, "fingerprint", request.fingerprint, 128, single_line=True)
        check_text(violations, "page_token", request.page_token, 1024, single_line=True)
        violations.raise_if_any()
        async with _store_errors():
            found, token = await self._store.list(
                required_owner(),
                page_size=size,
                page_token=request.page_token,
                state=request.state,
                alert_name=request.alert_name,
                fingerprint=request.fingerprint,
            )
        return inv_pb2.ListInvestigationsResponse(investigations=found, next_page_token=token)

    async def CancelInvestigation(
        self, request: inv_pb2.CancelInvestigationRequest, context: grpc.aio.ServicerContext
    ) -> inv_pb2.CancelInvestigationResponse:
        investigation_id = self._id(request.name)
        async with _store_errors():
            found = await self._store.cancel(investigation_id, required_owner())
        return inv_pb2.CancelInvestigationResponse(investigation=found)

    async def StreamInvestigationEvents(
        self, request: inv_pb2.StreamInvestigationEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[inv_pb2.StreamInvestigationEventsResponse]:
        investigation_id = self._id(request.name)
        if request.after_sequence < 0:
            violations = Violations()
            violations.add("after_sequence", "must not be negative")
            violations.raise_if_any()
        owner = required_owner()
        async with _store_errors():
            # NOT_FOUND before the stream starts, as a status rather than a broken stream.
            await self._store.get(investigation_id, owner)
            events = self._store.events(investigation_id, owner, request.after_sequence)
            async for event in events:
                yield inv_pb2.StreamInvestigationEventsResponse(event=event)

    async def RunInvestigation(
        self, request: inv_pb2.RunInvestigationRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[inv_pb2.RunInvestigationResponse]:
        violations = Violations()
        spec = self._new(violations, request.investigation, request.investigation_id)
        violations.raise_if_any()
        created = await self._create(spec, request.investigation_id)
        investigation_id = checks.NAMES.parse(Violations(), "name", created.name)
        async with _store_errors():
            async for event in self._store.events(investigation_id, required_owner(), 0):
                yield inv_pb2.RunInvestigationResponse(event=event)

    async def ChatInvestigation(
        self, request: inv_pb2.ChatInvestigationRequest, context: grpc.aio.ServicerContext
    ) -> inv_pb2.ChatInvestigationResponse:
        violations = Violations()
        investigation_id = checks.NAMES.parse(violations, "name", request.name)
        checks.check_question(violations, "message", request.message)
        check_text(violations, "model", request.model, 256, single_line=True)
        where = request_scope(violations, "investigation.Chat", request, context)
        violations.raise_if_any()

        async def work(_: grpc.aio.ServicerContext) -> inv_pb2.ChatInvestigationResponse:
            async with _store_errors():
                found = await self._store.get(investigation_id, required_owner())
            reply = await self._followup.ask(found, request.message, request.model)
            if reply.session != found.session:
                async with _store_errors():
                    await self._store.record_session(
                        investigation_id, current_owner(), reply.session
                    )
            return reply

        return await once(self._once, where, context, inv_pb2.ChatInvestigationResponse, work)

    async def ReceiveAlertmanagerWebhook(
        self,
        request: inv_pb2.ReceiveAlertmanagerWebhookRequest,
        context: grpc.aio.ServicerContext,
    ) -> inv_pb2.ReceiveAlertmanagerWebhookResponse:
        violations = Violations()
        webhook.check_payload(violations, request)
        violations.raise_if_any()
        reply = inv_pb2.ReceiveAlertmanagerWebhookResponse()
        owner, key_name = current_owner(), current_caller().key_name
        async with _store_errors():
            for received in request.alerts:
                await self._receive(reply, received, owner, key_name)
        return reply

    async def _receive(
        self,
        reply: inv_pb2.ReceiveAlertmanagerWebhookResponse,
        received: inv_pb2.AlertmanagerAlert,
        owner: str,
        key_name: str,
    ) -> None:
        alert = webhook.to_alert(received)
        result = reply.results.add(fingerprint=alert.fingerprint)
        if received.status == webhook.RESOLVED:
            resolved_at = timestamp_pb2.Timestamp()
            if received.HasField("ends_at"):
                resolved_at.CopyFrom(received.ends_at)
            else:
                resolved_at.GetCurrentTime()
            found = await self._store.record_resolved(alert.fingerprint, owner, resolved_at)
            result.outcome = (
                inv_pb2.WEBHOOK_OUTCOME_RESOLVED if found else inv_pb2.WEBHOOK_OUTCOME_IGNORED
            )
            result.investigation = found.name if found else ""
        else:
            spec = checks.fresh(inv_pb2.Investigation(alert=alert))
            opened, is_new = await self._store.open_for_alert(
                spec,
                investigation_id=checks.new_investigation_id(),
                owner=owner,
                key_name=key_name,
            )
            result.investigation = opened.name
            if is_new:
                result.outcome = inv_pb2.WEBHOOK_OUTCOME_OPENED
                reply.investigations.append(opened)
            else:
                result.outcome = inv_pb2.WEBHOOK_OUTCOME_DEDUPLICATED
        if result.outcome != inv_pb2.WEBHOOK_OUTCOME_OPENED:
            reply.skipped += 1
        metrics.observe_webhook(result.outcome)
