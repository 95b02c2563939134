"""`python -m eval.run [--modes analyzers,scripted,real] [--output eval/RESULTS.md]`:
every scenario investigated in each mode, scored, and written to RESULTS.md.

Modes: `analyzers` (`model: none`), `scripted` (the fake OpenAI upstream plays one
conversation per scenario, eval/scripts.py), `real` (the embedded SmolLM2 through
llama-server, which `make model` / `llmgw prepare-model` builds; limits: 1 step, no tools
offered (see eval/harness.py), 90 s).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.machine import machine
from eval import report, scripts
from eval.harness import REAL_LIMITS, REAL_MODEL, SCRIPTED_MODEL, Environment
from eval.harness import environment as start_environment
from eval.scenarios import SCENARIOS, Scenario
from eval.scoring import Score, score

MODES = ("analyzers", "scripted", "real")
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
NOTES = {
    "scripted": "Scripted model: the fake OpenAI upstream counts tokens as words; its "
    "conversations are eval/scripts.py, written knowing the scenarios (a check of the "
    "pipeline and of evidence verification, not of a model).",
    "real": "Real model: SmolLM2-135M-Instruct (Q4_1 GGUF) on llama-server, CPU only, "
    f"limits {REAL_LIMITS['max_steps']} steps and {REAL_LIMITS['time_limit']} per "
    "investigation; its tokens are llama-server's counts.",
}


async def run_mode(
    env: Environment, mode: str, scenarios: Sequence[Scenario], progress: Callable[[str], None]
) -> list[Score]:
    scores = []
    for scenario in scenarios:
        if mode == "analyzers":
            run = await env.investigate(scenario, "none")
        elif mode == "scripted":
            await env.script(scripts.conversation(scenario))
            run = await env.investigate(scenario, SCRIPTED_MODEL)
        else:
            run = await env.investigate(scenario, REAL_MODEL, REAL_LIMITS)
        scored = score(scenario, run.investigation, run.seconds, with_model=mode != "analyzers")
        progress(
            f"{mode:9} {scenario.name:23} token={scored.correct!s:5} "
            f"model_root={scored.model_root or '-'} "
            f"evidence={scored.evidence_valid}/{scored.evidence_invalid} "
            f"rejected={len(scored.rejected_claims)} {scored.seconds:.1f}s"
        )
        scores.append(scored)
    return scores


async def evaluate(
    modes: Sequence[str],
    run_dir: Path,
    scenarios: Sequence[Scenario] = SCENARIOS,
    progress: Callable[[str], None] = print,
) -> tuple[dict[str, list[Score]], Environment]:
    """Each mode over `scenarios` on one environment; the scores and the environment's
    figures (the environment itself is stopped on return)."""
    results: dict[str, list[Score]] = {}
    async with start_environment(run_dir, real_model="real" in modes, progress=progress) as env:
        for mode in modes:
            results[mode] = await run_mode(env, mode, scenarios, progress)
    return results, env


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.run", description=__doc__)
    parser.add_argument(
        "--modes", default=",".join(MODES), help="comma-separated: " + ", ".join(MODES)
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--run-dir", type=Path, default=None, help="logs and state (default: a temporary directory)"
    )
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = sorted(set(modes) - set(MODES))
    if unknown or not modes:
        parser.error(f"unknown mode(s) {unknown}; choose from {', '.join(MODES)}")
    command = "python -m eval.run " + " ".join(sys.argv[1:] if argv is None else argv)
    if os.environ.get("MAKELEVEL"):
        command = f"make eval ({command.strip()})"
    with tempfile.TemporaryDirectory(prefix="llmgw-eval-") as scratch:
        run_dir = args.run_dir or Path(scratch)
        results, env = asyncio.run(evaluate(modes, run_dir))
    setup = report.Setup(
        machine=machine(),
        date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        command=command.strip(),
        kube_start_seconds=env.kube_start_seconds,
        switch_ms=env.switch_ms,
        prometheus_start_seconds=env.prometheus_start_seconds,
        notes=[NOTES[mode] for mode in modes if mode in NOTES],
    )
    args.output.write_text(report.render(setup, results))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
