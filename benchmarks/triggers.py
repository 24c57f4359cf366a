"""Benchmark: personal trigger profiles per second for 10,000 participants x 8 weeks of EMA.

Run: ``python benchmarks/triggers.py [--participants N] [--weeks W]``.

The diary is synthetic (stand-in generator, 5 prompts a day, 10% missed; about 2.5 million
entries for 10,000 x 8 weeks) and built in memory; its generation is not timed. Timed, in turn:

1. validation of the diary columns into an ``EMADiary`` (what ``read_ema`` does after parsing);
2. the profiles: collapsing entries into person x cue-pattern cells, the craving mixed model
   (ML-EM), the logistic drinking mixed model (Laplace-EM), ranking and recommendation.

It prints entries, the seconds of each step and profiles per second (step 2, and steps 1+2),
by wall clock and by CPU time of this process (CPU time is the steadier figure on a shared
machine; numpy's BLAS may use more than one thread, so CPU can exceed wall).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from reconsolidate.triggers import TriggerModel, build_diary, simulate_diary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=10_000)
    ap.add_argument("--weeks", type=float, default=8.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    syn = simulate_diary(args.participants, args.weeks, seed=args.seed)
    n_entries = len(syn.columns["participant_id"])

    c0, t0 = time.process_time(), time.perf_counter()
    diary = build_diary(syn.columns, source="benchmark")
    c1, t1 = time.process_time(), time.perf_counter()
    profiles = TriggerModel().fit(diary)
    c2, t2 = time.process_time(), time.perf_counter()

    order = [profiles.cues.index(c) for c in syn.cues]
    top = np.asarray(profiles.cues)[profiles.rank[:, 0]]
    recovered = float(np.mean(top == np.asarray(syn.cues)[syn.strongest]))
    p = args.participants
    print(f"participants: {p}, weeks: {args.weeks:g}, entries: {n_entries}")
    print(f"validation: {t1 - t0:.2f} s wall, {c1 - c0:.2f} s CPU")
    print(
        f"profiles: {t2 - t1:.2f} s wall, {c2 - c1:.2f} s CPU (craving EM "
        f"{profiles.craving.n_iter} steps, drinking Laplace-EM "
        f"{profiles.drinking.n_iter if profiles.drinking else 0} steps)"
    )
    print(f"profiles per second (fit): {p / (t2 - t1):,.0f} wall, {p / (c2 - c1):,.0f} CPU")
    print(
        f"profiles per second (validation + fit): {p / (t2 - t0):,.0f} wall, "
        f"{p / (c2 - c0):,.0f} CPU"
    )
    print(f"top-ranked cue = planted strongest: {100 * recovered:.1f}% of participants")
    lo, hi = profiles.craving_interval()
    cover = np.mean(
        (lo[:, order] <= syn.craving_effect) & (syn.craving_effect <= hi[:, order])
    )
    print(f"95% interval coverage of planted craving effects: {100 * cover:.1f}%")


if __name__ == "__main__":
    main()
