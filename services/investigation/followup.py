"""Follow-up questions on a finished investigation, answered through the Router with the
result, the findings and the tool outputs as context, in a Session that keeps the
conversation (one session per investigation and owner, created on the first question)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from llmgw.investigation.v1 import investigation_service_pb2 as inv_pb2
from llmgw.router.v1 import chat_pb2 as router_chat_pb2
from llmgw.session.v1 import session_service_pb2 as session_pb2
from services.common.errors import FailedPrecondition
from services.common.owners import current_owner
from services.common.session_client import SessionClient
from services.investigation.chat_client import ChatClient, message

# The most bytes of context the session's system prompt holds (sessions cap it at 256 KiB).
MAX_CONTEXT_BYTES = 200_000
# Time allowed for one follow-up answer.
ANSWER_SECONDS = 120.0
_FINISHED = (inv_pb2.INVESTIGATION_STATE_SUCCEEDED, inv_pb2.INVESTIGATION_STATE_CANCELLED)

PREAMBLE = (
    "You answer follow-up questions about a finished alert investigation. Base every "
    "answer on the investigation below; quote tool outputs by their call id ([c3]) when you "
    "use them, and say plainly when the investigation did not establish something."
)


def session_id(investigation: inv_pb2.Investigation, owner: str) -> str:
    """The follow-up session's id: derived from the investigation's name and the asking
    owner (ids are bounded to 64 characters, names to more), so an operator who may read
    every investigation gets a conversation of their own instead of taking the owner's id."""
    digest = hashlib.sha256(f"{investigation.name}\0{owner}".encode()).hexdigest()
    return "inv-" + digest[:32]


def context_text(investigation: inv_pb2.Investigation) -> str:
    """The system prompt: the result, the findings with evidence, then the tool outputs
    (newest cut first when over MAX_CONTEXT_BYTES)."""
    result = investigation.result
    lines = [
        PREAMBLE,
        "",
        f"Alert: {investigation.alert.alert_name}",
        f"Namespace: {investigation.alert.namespace or '-'}",
        f"Summary: {result.summary}",
        f"Root cause: {result.root_cause or 'not established'}",
        f"Confidence: {result.confidence:.2f}",
    ]
    if result.completeness == inv_pb2.COMPLETENESS_PARTIAL:
        lines.append(f"Partial: {result.partial_detail}")
    for finding in result.findings:
        cited = "; ".join(f"[{e.tool_call_id}] {e.excerpt!r}" for e in finding.evidence)
        lines.append(f"Finding: {finding.title}: {finding.detail} Evidence: {cited}")
    for text in result.recommendations:
        lines.append(f"Recommendation: {text}")
    head = "\n".join(lines)
    budget = MAX_CONTEXT_BYTES - len(head.encode())
    blocks = []
    for call in result.tool_calls:
        block = f"\n[{call.id}] {call.tool}\n{call.output}"
        size = len(block.encode())
        if size > budget:
            blocks.append(f"\n[{call.id}] {call.tool} (output not kept: over the context size)")
            continue
        budget -= size
        blocks.append(block)
    return (head + "".join(blocks))[:MAX_CONTEXT_BYTES]


class FollowUp:
    def __init__(
        self, sessions: SessionClient, chat: ChatClient, default_model: Callable[[], str | None]
    ) -> None:
        self._sessions = sessions
        self._chat = chat
        self._default_model = default_model

    async def ask(
        self, investigation: inv_pb2.Investigation, question: str, model: str
    ) -> inv_pb2.ChatInvestigationResponse:
        if investigation.state not in _FINISHED or not investigation.HasField("result"):
            raise FailedPrecondition(
                f"{investigation.name} has no result yet; ask once it has finished"
            )
        chosen = model or investigation.result.model or self._default_model() or ""
        if not chosen or chosen == "none":
            raise FailedPrecondition(
                "no model to answer with: name one in `model` (the investigation used none)"
            )
        name = await self._open_session(investigation)
        request = router_chat_pb2.CreateChatCompletionRequest(
            model=chosen, messages=[message("user", question)]
        )
        request.gateway.session = name
        request.gateway.cache = "bypass"
        answer = await self._chat.complete(
            request, ANSWER_SECONDS, investigation=investigation.name
        )
        reply = inv_pb2.ChatInvestigationResponse(answer=answer.content, session=name)
        reply.usage.input_tokens = answer.input_tokens
        reply.usage.output_tokens = answer.output_tokens
        reply.usage.total_tokens = answer.input_tokens + answer.output_tokens
        return reply

    async def _open_session(self, investigation: inv_pb2.Investigation) -> str:
        """The caller's follow-up session, created with the investigation as its system
        prompt on the first question and found again on the next ones (its id is derived,
        so a race between two first questions ends in the same session)."""
        spec = session_pb2.Session(system_prompt=context_text(investigation))
        spec.labels["investigation"] = investigation.name.removeprefix("investigations/")
        sid = session_id(investigation, current_owner())
        return await self._sessions.create(sid, spec, ANSWER_SECONDS)
