"""Writes the gateway's Grafana dashboards (boards.py) as the JSON Grafana provisions
from dashboards/; `--check` only compares and fails when the committed JSON is stale.

    python deploy/grafana/generate.py          # write dashboards/*.json
    python deploy/grafana/generate.py --check  # exit 1 if they differ
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from boards import BOARDS
from grafana_foundation_sdk.cog.encoder import JSONEncoder

OUT = Path(__file__).resolve().parent / "dashboards"


def render() -> dict[str, str]:
    """File name -> the JSON text of each dashboard (stable: sorted keys, 2-space indent)."""
    rendered = {}
    for name, build in BOARDS.items():
        model = json.loads(json.dumps(build().build(), cls=JSONEncoder))
        rendered[name] = json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return rendered


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on drift")
    parser.add_argument("--out", type=Path, default=OUT, help="the dashboards folder")
    args = parser.parse_args()
    out: Path = args.out
    rendered = render()
    stale = sorted(
        name
        for name, text in rendered.items()
        if not (out / name).is_file() or (out / name).read_text() != text
    )
    extra = sorted(path.name for path in out.glob("*.json") if path.name not in rendered)
    if args.check:
        for name in stale + extra:
            print(f"stale: {out / name} (run: python deploy/grafana/generate.py)", file=sys.stderr)
        return 1 if stale or extra else 0
    out.mkdir(exist_ok=True)
    for name in stale:
        (out / name).write_text(rendered[name])
        print(f"wrote {out / name}")
    for name in extra:
        (out / name).unlink()
        print(f"removed {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
