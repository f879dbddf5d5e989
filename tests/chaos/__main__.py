"""python -m tests.chaos [--small] [--only a,b] [--output F]: run the chaos scenarios and print
one table (events in, suggestions out, dead letters, lost, duplicates, crashes, and seconds from
each restart to the first committed batch). Exits 1 when any event was lost or a worker
crashed."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from tests.chaos.scenarios import DEFAULT, SCENARIOS, SMALL


def table(rows: list[dict[str, object]]) -> str:
    columns = list(rows[0])
    cells = [[("-" if row[c] is None else str(row[c])) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--small", action="store_true", help="the sizes the tests run")
    parser.add_argument("--only", help=f"comma-separated, of: {', '.join(SCENARIOS)}")
    parser.add_argument("--output", type=Path, help="write the rows as JSON here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    size = SMALL if args.small else DEFAULT
    chosen = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {', '.join(SCENARIOS)}")
    rows = []
    for name in chosen:
        started = time.monotonic()
        print(f"{name} ...", flush=True)
        row = SCENARIOS[name](size).as_row()
        row["seconds"] = round(time.monotonic() - started)
        print(json.dumps(row), flush=True)
        rows.append(row)
    print(table(rows))
    if args.output:
        args.output.write_text(json.dumps(rows, indent=2) + "\n")
    failed = any(row["lost"] or row["crashes"] for row in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
