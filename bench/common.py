"""Timing helpers shared by every benchmark module."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable


@dataclass
class Row:
    section: str
    name: str
    value: float | None   # None: skipped
    unit: str
    note: str = ""


def median_time(fn: Callable[[], object], repeats: int = 7, warmup: int = 1, sync: Callable[[], None] | None = None,
                clock: Callable[[], float] = time.perf_counter) -> float:
    """Median time of `fn` in seconds over `repeats` runs after `warmup` runs.

    `clock` defaults to wall time; single-threaded CPU benchmarks may pass
    time.process_time so that time spent descheduled on a shared machine is not counted.
    """
    for _ in range(warmup):
        fn()
        if sync:
            sync()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        if sync:
            sync()
        times.append(clock() - start)
    return statistics.median(times)


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
