"""Benchmark: every per-participant endpoint for 100,000 participants x 365 days.

Prints participant-days (rows) per second of :func:`reconsolidate.endpoints.compute_endpoints`
(the fused numba kernel plus the per-participant post-processing), best of several repeats after
a warm-up call (JIT compilation excluded). Goal: >= 20 million participant-days per second.

Run: ``python benchmarks/endpoints.py [--participants 100000] [--days 365] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from reconsolidate.endpoints import MissingDataHandling, compute_endpoints

GOAL_ROWS_PER_S = 20e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--missing", default="heavy", help="heavy, abstinent, exclude")
    args = ap.parse_args()
    n, d = args.participants, args.days
    rng = np.random.default_rng(20261125)
    # synthetic diaries: 40% drinking days, Poisson(4) drinks, 5% missing days
    drinks = np.where(rng.random((n, d)) < 0.4, rng.poisson(4.0, (n, d)), 0).astype(np.float64)
    drinks[rng.random((n, d)) < 0.05] = np.nan
    is_female = rng.random(n) < 0.4
    base = rng.gamma(4.0, 8.0, n)
    handling = MissingDataHandling("itt", args.missing)
    kw = dict(handling=handling, grace_days=28, abstinent_last_days=28)
    # JIT warm-up (compiled once, cached on disk)
    compute_endpoints(drinks[:100], is_female[:100], baseline_drinks_per_week=base[:100], **kw)
    kw["baseline_drinks_per_week"] = base
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ep = compute_endpoints(drinks, is_female, **kw)
        times.append(time.perf_counter() - t0)
    best = min(times)
    rows = n * d
    print(f"participants x days: {n} x {d} = {rows:,} participant-days")
    print(f"missing-day handling: {handling.label}")
    print(f"best of {args.repeats}: {best * 1e3:.1f} ms; median {np.median(times) * 1e3:.1f} ms")
    print(f"rows/s: {rows / best:,.0f} (goal {GOAL_ROWS_PER_S:,.0f}: "
          f"{'met' if rows / best >= GOAL_ROWS_PER_S else 'NOT met'})")
    print(f"check: mean PDA {np.nanmean(ep.percent_days_abstinent):.2f}%, "
          f"mean PHDD {np.nanmean(ep.percent_heavy_drinking_days):.2f}%")


if __name__ == "__main__":
    main()
