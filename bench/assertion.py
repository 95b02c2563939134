"""What the trust boundary costs per request: CPU of minting and verifying one principal
assertion, of checking the edge token, and of a whole vouched admission by the gate.

    python -m bench.assertion [--calls N]

Each figure is CPU microseconds of one operation in this process (`time.process_time`
over N calls after a warm-up), so it is what every hop adds, without the network. A
request through the gateway pays: one edge-token check at the router; one mint per call
the router makes (provider; session and tool when the request uses them); one verify
and, for the session and tool services, one cached principal lookup per such call.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence

from services.common import context
from services.common.identity.assertion import (
    ASSERTION_HEADER,
    EDGE_TOKEN_HEADER,
    InternalKeys,
    edge_token,
)
from services.common.identity.gate import Gate

SECRET = "bench-internal-secret-0123456789abcdef"
DEFAULT_CALLS = 20_000
_WARM_UP = 500


def _cpu_us(step: Callable[[], object], calls: int) -> float:
    for _ in range(_WARM_UP):
        step()
    started = time.process_time()
    for _ in range(calls):
        step()
    return (time.process_time() - started) / calls * 1e6


async def _async_cpu_us(step: Callable[[], Awaitable[object]], calls: int) -> float:
    for _ in range(_WARM_UP):
        await step()
    started = time.process_time()
    for _ in range(calls):
        await step()
    return (time.process_time() - started) / calls * 1e6


def assertion_costs(calls: int = DEFAULT_CALLS) -> dict[str, float]:
    """CPU microseconds of each step, by name."""
    router = InternalKeys(SECRET, "router-1")
    session = InternalKeys(SECRET, "session-1")
    fields = {
        "consumer": "consumers/bench-probe",
        "key_name": "consumers/bench-probe/keys/abcdefghijkl",
        "address": "203.0.113.10",
        "request_id": context.new_request_id(),
        "timeout": 30.0,
    }
    token = router.mint(**fields)  # type: ignore[arg-type]
    edge = edge_token(SECRET)
    # The provider's gate: verifies the assertion and its request id, loads nothing.
    provider_gate = Gate(session, None, load_principals=False)
    vouched = ((context.REQUEST_ID_HEADER, str(fields["request_id"])), (ASSERTION_HEADER, token))
    edged = ((EDGE_TOKEN_HEADER, edge),)
    open_gate = Gate(session, None)

    def mint() -> object:
        return router.mint(**fields)  # type: ignore[arg-type]

    def mint_and_verify() -> object:
        return session.verify(router.mint(**fields))  # type: ignore[arg-type]

    costs = {
        "principal assertion: mint": _cpu_us(mint, calls),
        "principal assertion: verify": _cpu_us(lambda: session.verify(token), calls),
        "principal assertion: mint + verify": _cpu_us(mint_and_verify, calls),
        "edge token check": _cpu_us(lambda: session.edge_token_matches(edge), calls),
    }
    costs["gate admitting a vouched call (provider, no principal load)"] = asyncio.run(
        _async_cpu_us(lambda: provider_gate.admit("provider", vouched, ""), calls)
    )
    costs["gate admitting an edge-token call (auth off)"] = asyncio.run(
        _async_cpu_us(lambda: open_gate.admit("router", edged, ""), calls)
    )
    return costs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.assertion", description=__doc__)
    parser.add_argument("--calls", type=int, default=DEFAULT_CALLS)
    args = parser.parse_args(argv)
    for name, us in assertion_costs(args.calls).items():
        print(f"{name}: {us:.1f} us CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
