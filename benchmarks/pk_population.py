"""Benchmark: exact population PK (Dakwar regimen, 6 h at 1-min output) vs the ODE oracle.

Prints patients/s for the fast path on 100,000 patients (between-subject variability on, so
every patient has different parameters; computed in chunks of 20,000 via patient_offset), for
the scipy solve_ivp oracle (LSODA, rtol 1e-10) on 1,000 patients, their ratio, and the largest
relative difference between the two on the oracle's patients. Timings are wall-clock.
"""

from __future__ import annotations

import time

import numpy as np

from reconsolidate.pharmacology import get_model, load_regimen, simulate
from reconsolidate.pharmacology.dosing import build_schedule
from reconsolidate.pharmacology.oracle import propagate_ode
from reconsolidate.pharmacology.simulate import draw_eta
from reconsolidate.pharmacology.solver import system_matrices

N_FAST, N_ORACLE, CHUNK, SEED = 100_000, 1_000, 20_000, 2026
TIMES = np.arange(0.0, 361.0, 1.0)


def main() -> None:
    regimen = load_regimen("examples/regimens/dakwar2020.toml")
    rng = np.random.default_rng(SEED)
    weights = rng.uniform(50.0, 110.0, N_FAST)
    simulate("domino", regimen, weights[:10], TIMES, variability=True, seed=SEED)  # JIT warm-up
    t0 = time.perf_counter()
    for a in range(0, N_FAST, CHUNK):
        res = simulate("domino", regimen, weights[a:a + CHUNK], TIMES, variability=True,
                       seed=SEED, patient_offset=a)
    fast_s = time.perf_counter() - t0
    fast_rate = N_FAST / fast_s

    m = get_model("domino")
    w = weights[:N_ORACLE]
    params = m.individual_parameters(w, eta=draw_eta(m, SEED, 0, N_ORACLE))
    a_, b_, obs = system_matrices(m, params, np.full(N_ORACLE, m.ke0_per_min))
    sched = build_schedule(regimen, m, w, m.ke0_per_min)
    t0 = time.perf_counter()
    slow = propagate_ode(a_, b_, obs, sched, TIMES, method="LSODA", rtol=1e-10, atol=1e-14)
    oracle_s = time.perf_counter() - t0
    oracle_rate = N_ORACLE / oracle_s
    fast = simulate("domino", regimen, w, TIMES, variability=True, seed=SEED)
    cp_fast = fast.plasma_ng_ml[:, 1:]
    cp_slow = slow[:, 0, 1:] * 1000.0
    rel = float(np.max(np.abs(cp_fast - cp_slow) / cp_slow))
    del res
    print(f"fast path (exact expm, numba): {N_FAST} patients in {fast_s:.2f} s = "
          f"{fast_rate:,.0f} patients/s")
    print(f"ODE oracle (solve_ivp LSODA rtol 1e-10): {N_ORACLE} patients in {oracle_s:.2f} s = "
          f"{oracle_rate:,.1f} patients/s")
    print(f"speed-up per patient: {fast_rate / oracle_rate:,.0f}x; "
          f"max relative difference in plasma (t > 0): {rel:.2e}")


if __name__ == "__main__":
    main()
