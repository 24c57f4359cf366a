"""Benchmark: exact population PK (Dakwar regimen, 6 h at 1-min output) vs the ODE oracles.

The fast path is the whole of ``simulate()`` (random effects, schedule, propagation, occupancy)
on 100,000 patients with between-subject variability on, so every patient has different
parameters, in chunks of 20,000 via ``patient_offset``. The oracles integrate the same patients'
ODEs with scipy ``solve_ivp`` at rtol 1e-10, atol 1e-14 mg, restarted at every rate change:

- LSODA on 1,000 patients: the faster oracle, so the speed-up against it is the conservative
  one (the issue's goal is judged against it); LSODA was seen to stall on some generated
  schedules in the property test, never on this fixed one;
- Radau (implicit, order 5; the oracle of the tests) on 100 patients: robust and more accurate,
  about 25 times slower than LSODA here.

Each figure is given per wall-clock second and per CPU second (``time.process_time``, all
threads): the fast path runs in parallel over blocks of patients (numba threads), the oracles on
one thread, and the machine may be shared. Accuracy is the largest relative difference between
the fast path and each oracle over plasma and effect-site concentrations at t > 0.

Warm-up (untimed, its time printed): JIT compilation and one full chunk. The chunk makes the
timed chunks reuse memory the process has already touched: on a VM, first touch of fresh memory
can cost far more than the computation (measured here: ~0.4 s per 170 MB result, then ~0.02 s).

    python benchmarks/pk_population.py
    python benchmarks/pk_population.py --patients 20000 --lsoda-patients 200 --radau-patients 20
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from reconsolidate.pharmacology import PKResult, get_model, load_regimen, simulate
from reconsolidate.pharmacology.dosing import build_schedule
from reconsolidate.pharmacology.oracle import propagate_ode
from reconsolidate.pharmacology.simulate import draw_eta
from reconsolidate.pharmacology.solver import Schedule, system_matrices

CHUNK, SEED, MODEL = 20_000, 2026, "domino"
TIMES_MIN = np.arange(0.0, 361.0, 1.0)
ORACLE_RTOL, ORACLE_ATOL_MG = 1e-10, 1e-14


T = TypeVar("T")


def _timed(fn: Callable[[], T]) -> tuple[T, float, float]:
    """``fn()``, its wall-clock seconds and its CPU seconds (all threads of this process)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--lsoda-patients", type=int, default=1_000)
    ap.add_argument("--radau-patients", type=int, default=100)
    args = ap.parse_args(argv)
    regimen = load_regimen("examples/regimens/dakwar2020.toml")
    weights_kg = np.random.default_rng(SEED).uniform(50.0, 110.0, args.patients)

    def fast(a: int, b: int) -> PKResult:
        return simulate(MODEL, regimen, weights_kg[a:b], TIMES_MIN, variability=True,
                        seed=SEED, patient_offset=a)

    _, warm_s, _ = _timed(lambda: fast(0, min(CHUNK, args.patients)))

    def fast_all() -> None:
        for a in range(0, args.patients, CHUNK):
            fast(a, min(a + CHUNK, args.patients))

    _, fast_wall_s, fast_cpu_s = _timed(fast_all)

    print(f"fast path (simulate: exact expm, numba): {args.patients:,} patients, "
          f"{fast_wall_s:.2f} s wall = {args.patients / fast_wall_s:,.0f} patients/s; "
          f"{fast_cpu_s:.2f} s CPU = {args.patients / fast_cpu_s:,.0f} patients/CPU-s "
          f"(warm-up chunk {warm_s:.2f} s)")
    n_check = max(args.lsoda_patients, args.radau_patients)
    if n_check <= 0:
        return 0
    m = get_model(MODEL)
    w = weights_kg[:n_check]
    params = m.individual_parameters(w, eta=draw_eta(m, SEED, 0, n_check))
    a_, b_, obs = system_matrices(m, params, np.full(n_check, m.ke0_per_min))
    sched = build_schedule(regimen, m, w, m.ke0_per_min)
    ref = fast(0, n_check)
    fast_conc = np.stack([ref.plasma_ng_ml, ref.effect_site_ng_ml], axis=1)[:, :, 1:]
    for method, n_o in (("LSODA", args.lsoda_patients), ("Radau", args.radau_patients)):
        if n_o <= 0:
            continue
        sub = Schedule(sched.edges_min, sched.rates_mg_per_min[:, :n_o],
                          sched.bolus_times_min, sched.bolus_doses_mg[:, :n_o])
        slow, wall_s, cpu_s = _timed(lambda method=method, n_o=n_o, sub=sub: propagate_ode(
            a_[:n_o], b_, obs[:n_o], sub, TIMES_MIN, method=method, rtol=ORACLE_RTOL,
            atol=ORACLE_ATOL_MG))
        slow_conc = slow[:, :2, 1:] * 1000.0  # mg/L -> ng/mL
        rel = float(np.max(np.abs(fast_conc[:n_o] - slow_conc) / slow_conc))
        speed_wall = (args.patients / fast_wall_s) / (n_o / wall_s)
        speed_cpu = (args.patients / fast_cpu_s) / (n_o / cpu_s)
        print(f"ODE oracle (solve_ivp {method}, rtol {ORACLE_RTOL:g}, atol {ORACLE_ATOL_MG:g} mg): "
              f"{n_o:,} patients, {wall_s:.2f} s wall = {n_o / wall_s:,.1f} patients/s; "
              f"{cpu_s:.2f} s CPU = {n_o / cpu_s:,.1f} patients/CPU-s")
        print(f"  speed-up per patient vs {method}: {speed_wall:,.0f}x wall, "
              f"{speed_cpu:,.0f}x CPU; max relative difference (plasma and effect site, "
              f"t > 0): {rel:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
