"""Run every benchmark module and print one table.

Each module in MODULES has `rows() -> list[Row]`. Numbers are medians of repeated
runs; the machines are shared, so compare ratios rather than absolute figures.
"""
from __future__ import annotations

import importlib
import sys

MODULES = ("bench.deform", "bench.render", "bench.services", "bench.live", "bench.quaternion", "bench.viewport",
           "bench.native", "bench.animate", "bench.serve_scaling")


def main(argv: list[str]) -> int:
    only = set(argv)
    rows = []
    for name in MODULES:
        if only and name.split(".")[-1] not in only:
            continue
        module = importlib.import_module(name)
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        rows.extend(module.rows())
    width = max((len(r.name) for r in rows), default=10)
    print(f"\n{'section':<10} {'benchmark':<{width}} {'value':>12} unit   note")
    print("-" * (width + 44))
    for r in rows:
        value = "skipped" if r.value is None else f"{r.value:12.3f}"
        print(f"{r.section:<10} {r.name:<{width}} {value:>12} {r.unit:<6} {r.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
