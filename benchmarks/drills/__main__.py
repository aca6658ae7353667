"""`make drills`: every drill at full size (or --short), one table row each.

Run: make drills   (or: python -m benchmarks.drills [--short] [--only NAME ...])
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.drills import DRILLS
from benchmarks.drills.harness import FULL, SHORT, DrillResult


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="the test suite's small counts")
    parser.add_argument("--only", nargs="+", choices=DRILLS, help="run only these drills")
    args = parser.parse_args()
    scale = SHORT if args.short else FULL
    results: list[DrillResult] = []
    for name in args.only or DRILLS:
        began = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"tower-drill-{name}-") as workdir:
            result = DRILLS[name](Path(workdir), scale)
        print(f"{name}: {result} ({time.monotonic() - began:.0f} s)", file=sys.stderr, flush=True)
        results.append(result)
    print(table(results))
    return 0 if all(r.lost == 0 and r.duplicated == 0 for r in results) else 1


def table(results: list[DrillResult]) -> str:
    lines = [
        "| drill | published | acknowledged | stored | lost | duplicated | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        counts = [f"{n:,}" for n in (r.published, r.acknowledged, r.stored, r.lost, r.duplicated)]
        lines.append(f"| {r.drill} | " + " | ".join(counts) + f" | {r.detail} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
