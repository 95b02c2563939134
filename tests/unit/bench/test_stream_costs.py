"""The stream-cost split: per-chunk CPU from the difference of two runs, setup from the rest."""

from __future__ import annotations

import pytest

from bench.stream_costs import Costs, Run
from bench.streams import StreamsResult


def _run(chunks: int, cpu_s: float, rss_kib: float) -> Run:
    return Run(
        chunks=chunks,
        result=StreamsResult(streams=100, completed=100),
        cpu_s={"router": cpu_s, "envoy": cpu_s},
        rss_kib_per_stream={"router": rss_kib, "envoy": rss_kib},
        envoy_heap_kib_per_stream=50.0,
    )


def test_chunk_and_setup_costs_are_separated() -> None:
    # 100 streams; setup 2 ms each (0.2 s), 80 us per chunk.
    few = [_run(1_000, 0.2 + 1_000 * 80e-6, 40.0), _run(1_000, 0.2 + 1_000 * 80e-6, 5.0)]
    many = [_run(5_000, 0.2 + 5_000 * 80e-6, 3.0), _run(5_000, 0.2 + 5_000 * 80e-6, 2.0)]
    costs = Costs(streams=100, few=few, many=many)
    assert costs.chunk_us("router") == pytest.approx(80.0)
    assert costs.setup_us("router") == pytest.approx(2_000.0)
    # 100 streams of 10 and 50 pieces: every piece arrived as a chunk of its own.
    assert costs.piece_us("router") == pytest.approx(80.0)
    assert costs.delivered_share() == pytest.approx(1.0)
    # Memory from the first run: later runs reuse what it grew the process to.
    assert costs.rss_kib("router") == 40.0
    assert costs.envoy_heap_kib() == 50.0
    assert costs.failures() == 0


def test_coalesced_pieces_share_a_chunks_cost() -> None:
    # The 50-piece runs delivered 4,000 chunks for 5,000 pieces.
    few = [_run(1_000, 0.2 + 1_000 * 80e-6, 40.0)]
    many = [_run(4_000, 0.2 + 5_000 * 80e-6, 3.0)]
    costs = Costs(streams=100, few=few, many=many)
    assert costs.delivered_share() == pytest.approx(0.8)
    assert costs.piece_us("router") == pytest.approx(80.0)
    assert costs.chunk_us("router") == pytest.approx(0.32 / 3_000 * 1e6)
