"""Fused daily-life kernel: patient-days per second of ``reconsolidate.behavior.days.live_days``.

The kernel alone (cue exposure -> craving -> drinking -> memory learning -> habit, for every
patient and day), without the rest of the trial engine (cohort sampling, PK sessions, the
observation model, endpoints, output). Das 2019 cohort, 10,000 patients x 319 days (21 burn-in
+ 28 baseline + 270 follow-up days; the engine's default burn-in is now 120 days), code-default
parameters; once without memory snapshots and once with weekly ones (as the engine records
them). Also prints the intercept calibration rate (patients/s), which the engine runs once per
patient plus once per burn-in round (5 times by default). The burn-in rounds' per-cue averaging
(``DayPlan.accumulate``) is not in these figures: a burn-in day, which evaluates every
cue's response, costs about 280 ns per patient instead of 200 (measured with every day marked).

    python benchmarks/daily_kernel.py [--patients N] [--repeats R]

Figures are per CPU-second (time.process_time), best of R repeats after a warm-up, so that a
busy shared machine disturbs them less.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from reconsolidate._random import CounterStream
from reconsolidate.behavior import (
    BehaviorParams,
    BehaviorState,
    calibrate_intercept,
    drinking_probability_target,
)
from reconsolidate.behavior.days import DAY_STREAM, DayPlan, live_days
from reconsolidate.memory import population as mem
from reconsolidate.memory.params import MemoryParams
from reconsolidate.population import CueEnvironment, get_cohort, sample_patients

N_DAYS = 319


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    n = args.patients
    mp, bp = MemoryParams(), BehaviorParams()
    patients = sample_patients(get_cohort("das2019"), CueEnvironment(), 5, 0, n)
    memory = mem.new_state(patients.acquisition_strength, mp)
    cr = mem.response(memory, mp)
    calibrate_intercept(patients, cr, bp)  # JIT warm-up
    best = 0.0
    for _ in range(args.repeats):
        c0 = time.process_time()
        alpha, kref = calibrate_intercept(patients, cr, bp)
        best = max(best, n / (time.process_time() - c0))
    print(f"intercept calibration: {best:,.0f} patients per CPU-second")

    state = BehaviorState.start(alpha, kref, drinking_probability_target(patients, bp))
    stream = CounterStream(7, DAY_STREAM, 0)
    days = np.arange(-49, -49 + N_DAYS)
    weekly = days % 7 == 0
    skill_half_life = np.full(n, 180.0)
    for label, snap in (("no snapshots", np.full(N_DAYS, -1)),
                        ("weekly memory snapshots", np.where(weekly, np.cumsum(weekly) - 1, -1))):
        plan = DayPlan(days, (days % 7) >= 5, np.zeros(N_DAYS, bool), np.arange(N_DAYS), snap)
        drinks = np.zeros((n, N_DAYS))
        snaps = (np.zeros((n, int(weekly.sum()))), np.zeros((n, int(weekly.sum()))))
        best = 0.0
        for rep in range(args.repeats + 1):  # the first run compiles
            m, s = memory.copy(), state.copy()
            c0 = time.process_time()
            live_days(m, s, patients, bp, mp, stream, plan, skill_half_life, drinks, snaps)
            if rep:
                best = max(best, n * N_DAYS / (time.process_time() - c0))
        print(f"daily kernel, {label}: {best / 1e6:.2f} M patient-days per CPU-second "
              f"({1e9 / best:.0f} ns per patient-day; {n:,} patients x {N_DAYS} days, "
              f"drinking on {np.mean(drinks > 0):.0%} of days)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
