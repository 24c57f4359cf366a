"""Large inputs split over Python threads that run one compiled (nogil) kernel.

Used instead of numba ``parallel=True`` kernels, whose compilation cost ~6 s each on a first
run; the thread count follows ``numba.get_num_threads()``, so processes that set one numba
thread (the trial's worker processes) stay on one core.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numba

__all__ = ["run_split"]

T = TypeVar("T")


def run_split(fn: Callable[[int, int], T], n_items: int, name: str) -> list[T]:
    """``fn(lo, hi)`` on contiguous ranges covering ``0 .. n_items - 1``, one per thread (at
    most ``numba.get_num_threads()``, at most ``n_items``), in order; on the calling thread
    when there is one range. ``fn`` must release the GIL to run in parallel and must give each
    item the same result whatever its range (no cross-item reduction)."""
    n_threads = max(1, min(numba.get_num_threads(), n_items))
    if n_threads == 1:
        return [fn(0, n_items)]
    edges = [n_items * k // n_threads for k in range(n_threads + 1)]
    with ThreadPoolExecutor(n_threads, thread_name_prefix=name) as pool:
        futures = [pool.submit(fn, lo, hi) for lo, hi in itertools.pairwise(edges)]
        return [f.result() for f in futures]
