"""Trial-engine throughput: patient-days per second and peak memory.

Default: the Das 2019 example (3 arms) with 20,000 patients per arm and its 270-day follow-up
(plus the 28 baseline and 120 burn-in days, which are simulated too and counted). Prints the
simulation throughput (excluding Parquet writing, which is timed separately) and the peak resident
memory of this process and its workers.

    python benchmarks/trial_throughput.py                       # 3 x 20,000 x 270 days
    python benchmarks/trial_throughput.py --patients-per-arm 2000 --workers 2
    python benchmarks/trial_throughput.py --spec examples/trials/placebo-natural-history.toml \\
        --patients-per-arm 500000 --follow-up-days 14 --no-write   # memory with 1,000,000 patients

Goal (issue 4): >= 20 million patient-days per second on one core; < 4 GB peak for 1,000,000
patients (streamed in chunks).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _peak_rss_mb() -> tuple[float, float]:
    """Peak resident set size (MB) of this process and of its (finished) children (Linux: KB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return own, kids


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=str(ROOT / "examples" / "trials" / "das2019.toml"))
    ap.add_argument("--patients-per-arm", type=int, default=20_000)
    ap.add_argument("--follow-up-days", type=int, default=None)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--chunk-size", type=int, default=5000)
    ap.add_argument("--no-write", action="store_true", help="summarise only, write no run dir")
    args = ap.parse_args(argv)

    from reconsolidate.trial import TrialSpec, load_trial_spec, make_plan, run_trial

    spec = load_trial_spec(args.spec)
    if args.follow_up_days is not None:
        data = spec.model_dump()
        data["follow_up_days"] = args.follow_up_days
        data["assessment"] = {**data["assessment"], "visit_days": None}
        spec = TrialSpec.model_validate(data)
    plan = make_plan(spec, Path(args.spec).parent, args.patients_per_arm)
    # warm-up (numba caches, imports) outside the timing
    run_trial(make_plan(spec, Path(args.spec).parent, 8), out_dir=None)

    t0 = time.perf_counter()
    c0 = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        res = run_trial(
            plan,
            out_dir=None if args.no_write else Path(tmp) / "run",
            workers=args.workers,
            chunk_size=args.chunk_size,
        )
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    pd = res.timings["patient_days"]
    sim = res.timings["simulate_seconds"]
    own, kids = _peak_rss_mb()
    n = sum(a.n_patients for a in plan.arms)
    days = spec.burn_in_days + spec.n_observed_days
    print(f"spec: {spec.name}; {len(plan.arms)} arms x {args.patients_per_arm:,} patients "
          f"= {n:,} patients x {days} simulated days (follow-up {spec.follow_up_days} d); "
          f"workers {args.workers}, chunk {args.chunk_size}")
    sim_pd = res.timings["simulated_patient_days"]
    print(f"patient-days: {pd:,.0f}, of which {sim_pd:,.0f} simulated, as counted (the arms' "
          "common history before randomisation once: trial.engine.prefix_groups)")
    print(f"simulate: {sim:.2f} s -> {pd / sim:,.0f} patient-days of the trial per second "
          f"({sim_pd / sim:,.0f} simulated patient-days per second)")
    print(f"write: {res.timings['write_seconds']:.2f} s; warm-up (the kernels on a few patients "
          f"per arm, before the simulation): {res.timings['warm_up_seconds']:.2f} s; wall total "
          f"{wall:.2f} s")
    if args.workers == 1:
        # CPU time of this process (simulation + writing): less sensitive to other load on the
        # machine than wall time.
        print(f"CPU time: {cpu:.2f} s -> {pd / cpu:,.0f} patient-days per CPU-second "
              "(including writing)")
    peak = f"peak RSS: {own:,.0f} MB (this process)"
    if args.workers > 1:
        peak += f", {kids:,.0f} MB (largest worker)"
    print(peak)
    for arm, row in res.summary.items():
        print(f"  {arm}: PDA {row['percent_days_abstinent']:.1f}%, drinks/week change "
              f"{row['drinks_per_week_change_pct']:+.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
