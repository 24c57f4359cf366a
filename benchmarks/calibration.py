"""Wall time of a fixed small calibration, locally and on 2 Dask workers (127.0.0.1).

Fixed problem: all the shipped targets (19 now), 100 virtual patients per arm, budget 8 trials in
batches of 4, sampler seed 0. Prints the wall time of each run, the cluster start-up time and
whether the two trial histories are identical (they must be).

    python benchmarks/calibration.py [--budget 8] [--patients-per-arm 100]

The machine has 2 cores shared with other work: timings are noisy; a warm-up evaluation runs
first so numba compilation/caching is not timed in the local run (workers load the on-disk
numba cache when they start).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from reconsolidate.calibration.fit import calibrate
from reconsolidate.calibration.predict import evaluate
from reconsolidate.calibration.targets import DEFAULT_TARGETS_PATH, load_targets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--patients-per-arm", type=int, default=100)
    args = ap.parse_args()
    kw = dict(budget=args.budget, batch_size=args.batch_size, seed=0,
              patients_per_arm=args.patients_per_arm)

    evaluate({}, str(DEFAULT_TARGETS_PATH), None, 4)  # warm-up (numba, imports)
    t0 = time.perf_counter()
    local = calibrate(**kw)
    t_local = time.perf_counter() - t0

    from dask.distributed import Client, LocalCluster

    t0 = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        client.wait_for_workers(2)
        t_start = time.perf_counter() - t0
        t0 = time.perf_counter()
        remote = calibrate(**kw, scheduler=client)
        t_dask = time.perf_counter() - t0
    same = [h["loss"] for h in local.history] == [h["loss"] for h in remote.history] and [
        h["params"] for h in local.history] == [h["params"] for h in remote.history]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}")
    n_targets = len(load_targets(DEFAULT_TARGETS_PATH).targets)
    print(f"fixed calibration: {n_targets} targets, {args.patients_per_arm} patients/arm, "
          f"budget {args.budget}, batch {args.batch_size}")
    print(f"local (1 process):         {t_local:8.1f} s  ({t_local / args.budget:.2f} s/trial)")
    print(f"Dask, 2 workers:           {t_dask:8.1f} s  ({t_dask / args.budget:.2f} s/trial); "
          f"cluster start-up {t_start:.1f} s")
    print(f"speed-up: {t_local / t_dask:.2f}x; identical histories: {same}; "
          f"best loss {local.best_loss:.4g}")


if __name__ == "__main__":
    main()
