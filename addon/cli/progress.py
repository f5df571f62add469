"""Stage-by-stage progress with timings, printed to stderr."""
from __future__ import annotations

import contextlib
import sys
import time


class Progress:
    def __init__(self, quiet: bool = False, stream=None) -> None:
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str):
        if not self.quiet:
            print(f"[uplift] {name} ...", file=self.stream, flush=True)
        start = time.perf_counter()
        yield
        elapsed = time.perf_counter() - start
        self.timings[name] = elapsed
        if not self.quiet:
            print(f"[uplift] {name}: {elapsed * 1000:.0f} ms", file=self.stream, flush=True)
