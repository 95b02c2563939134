"""free_port: a port is never handed out twice."""

from __future__ import annotations

from services.launcher.processes import free_port


def test_ports_handed_out_are_never_handed_out_again() -> None:
    # 600 picks from ~22,000 ports would repeat one with near certainty by chance alone
    # (the birthday bound is about 1 - e^-8); a stack binds its ports only later.
    ports = [free_port() for _ in range(600)]
    assert len(set(ports)) == len(ports)
