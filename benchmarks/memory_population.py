"""Benchmark: population memory model cue-exposure updates per second on one core.

1,000,000 patients x 6 cue classes (float64 struct-of-arrays, numba kernel, single thread).
Each repetition exposes every (patient, cue) pair once (half rewarded), advancing the clock
by 1 h between repetitions; an "update" is one (patient, cue) exposure processed by
:func:`reconsolidate.memory.population.expose`. A sparse pass (10% of pairs exposed, as in
daily life) is also timed, counting only the exposures made.

The original (pre-optimisation) kernel, kept in the module as the fast kernel's oracle, is timed
on the same data interleaved with the current ``expose`` (same machine load) for an A/B ratio.

Run: ``python benchmarks/memory_population.py`` (add ``--patients N`` to change the size).
Timings on a shared machine are noisy; the best of the repetitions is reported.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numba
import numpy as np

from reconsolidate.memory import population as pop
from reconsolidate.memory.params import MemoryParams


def _fields(s: pop.PopulationState) -> tuple:
    return (s.time_h, s.w0, s.n0, s.tmean0_h, s.tlast0_h, s.ctx0, s.lab0, s.w1, s.n1,
            s.tmean1_h, s.tlast1_h, s.ctx1, s.lab1, s.lab_time_h)


@numba.njit(cache=True, boundscheck=False)
def _traffic_only(blk, n_pairs):
    """The expose kernel's memory traffic without its arithmetic: every pair's state fields
    gathered into a lane buffer and written back, pair by pair, as ``expose`` does on a full
    pass: the ceiling of the lane-buffer design on this machine, whatever its arithmetic."""
    rows = pop._N_STATE_ROWS
    lanes = pop._LANE_PAIRS
    b = np.zeros(rows * lanes)
    for base in range(0, n_pairs, lanes):
        m = min(lanes, n_pairs - base)
        for j in range(m):
            for f in range(rows):
                b[f * lanes + j] = blk[f, base + j]
        for j in range(m):
            for f in range(rows):
                blk[f, base + j] = b[f * lanes + j]


@numba.njit(cache=True, fastmath=True, error_model="numpy", boundscheck=False)
def _arithmetic_only(blk, time_h, cc, n_rounds, alpha, off, g, sx, half_d, eta, sr, n_iter,
                     pe_thr, tau_h, consolidating_h, beta):
    """The expose kernel's arithmetic without its memory traffic: one lane buffer's pairs (the
    first ``_LANE_PAIRS // cc`` patients) gathered once, then ``n_rounds`` exposures of all of
    them (half rewarded, the clock 1 h on each round) by the same lane passes, the state staying
    in the L1 cache: the ceiling of these passes, whatever the layout of the state."""
    lanes = pop._LANE_PAIRS
    rows = pop._N_STATE_ROWS
    m = (lanes // cc) * cc
    b = np.zeros(pop._L_ROWS * lanes)
    for j in range(m):
        for f in range(rows):
            b[f * lanes + j] = blk[f, j]
    f_new, x_new = pop._new_cause_terms(alpha, sx, half_d)
    mp = pop._lanes_padded(m)
    for r in range(n_rounds):
        for j in range(m):
            b[pop._L_T + j] = time_h[j // cc] + r
            b[pop._L_CTX + j] = 0.0
            b[pop._L_FREE + j] = 1.0
            b[pop._L_MASK + j] = 1.0
            b[pop._L_R + j] = 1.0 if (j + r) % 2 == 0 else 0.0
        # the kernels' loop for the default kernel shape (exponent 1, two contexts: main()
        # checks), constants spelled out as the kernels spell them
        pop._lane_posterior(b, mp, off, 1.0, sx, 1.5, f_new, x_new, beta, 1.0 / tau_h)
        pop._lane_update(b, mp, n_iter, 0.5 / sr, eta, pe_thr, consolidating_h)
    return m * n_rounds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=1_000_000)
    ap.add_argument("--cues", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    n, c = args.patients, args.cues
    p = MemoryParams()
    rng = np.random.default_rng(0)
    state = pop.new_state(rng.uniform(0.3, 0.95, (n, c)), p)
    full = np.ones((n, c), dtype=bool)
    rewarded = rng.random((n, c)) < 0.5
    sparse = rng.random((n, c)) < 0.1
    # warm-up: compile the kernels
    small = state.copy()
    pop.expose(small, full, rewarded, p)
    pop.response(small, p)

    best_full = np.inf
    for _ in range(args.repeats):
        pop.advance(state, 1.0)
        t0 = time.perf_counter()
        done = pop.expose(state, full, rewarded, p)
        best_full = min(best_full, time.perf_counter() - t0)
    best_sparse = np.inf
    n_sparse = 0
    for _ in range(args.repeats):
        pop.advance(state, 1.0)
        t0 = time.perf_counter()
        n_sparse = pop.expose(state, sparse, rewarded, p)
        best_sparse = min(best_sparse, time.perf_counter() - t0)
    # the original (pre-optimisation) kernel on the same data, timed interleaved with the
    # current one so that both see the same machine load (not part of the public API)
    best_fast = best_orig = np.inf
    kargs = (p.new_cause_concentration_per_h, p.kernel_offset_h, p.kernel_exponent,
            p.feature_variance, 0.5 * (1.0 + p.n_context_features), p.learning_rate,
            p.us_variance, p.max_em_iterations, p.destabilization_pe_threshold,
            p.destabilization_block_occupancy50, p.destabilization_block_hill,
            p.lability_tau_min / 60.0, pop._consolidating_h(p), p.lability_prior_boost_per_h,
            *pop._exp_table(p))
    zeros = np.zeros(n)
    orig_state = state.copy()
    s_small = small.copy()
    pop._expose_kernel_reference(full[: small.shape[0]], rewarded[: small.shape[0]] * 1.0,
                                 zeros[: small.shape[0]], zeros[: small.shape[0]],
                                 *_fields(s_small), *kargs)  # compile
    for _ in range(args.repeats):
        pop.advance(state, 1.0)
        t0 = time.perf_counter()
        pop.expose(state, full, rewarded, p)
        best_fast = min(best_fast, time.perf_counter() - t0)
        pop.advance(orig_state, 1.0)
        t0 = time.perf_counter()
        pop._expose_kernel_reference(full, np.asarray(rewarded, dtype=np.float64), zeros, zeros,
                                     *_fields(orig_state), *kargs)
        best_orig = min(best_orig, time.perf_counter() - t0)
    t0 = time.perf_counter()
    pop.response(state, p)
    t_resp = time.perf_counter() - t0
    blk = pop._block_of(state)
    _traffic_only(blk, 1000)  # compile
    best_traffic = np.inf
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        _traffic_only(blk, n * c)
        best_traffic = min(best_traffic, time.perf_counter() - t0)
    assert pop._general_shape(p) is None  # _arithmetic_only runs the default-shape loop
    arith_args = (p.new_cause_concentration_per_h, p.kernel_offset_h, p.kernel_exponent,
                  p.feature_variance, 0.5 * (1.0 + p.n_context_features), p.learning_rate,
                  p.us_variance, p.max_em_iterations, p.destabilization_pe_threshold,
                  p.lability_tau_min / 60.0, pop._consolidating_h(p),
                  p.lability_prior_boost_per_h)
    _arithmetic_only(blk, state.time_h, c, 2, *arith_args)  # compile
    best_arith = np.inf
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        n_arith = _arithmetic_only(blk, state.time_h, c, 20_000, *arith_args)
        best_arith = min(best_arith, time.perf_counter() - t0)
    # machine-load indicator: numpy's vectorised exp over the same number of elements
    # (about 1-2 ns per element on an idle modern core)
    x = rng.random(n * c)
    t0 = time.perf_counter()
    np.exp(x, out=x)
    t_exp = time.perf_counter() - t0
    print(f"patients x cues: {n:,} x {c} = {n * c:,} (float64 struct-of-arrays, 1 thread)")
    print(f"full exposure pass: {done:,} updates in {best_full * 1e3:.1f} ms -> "
          f"{done / best_full / 1e6:.1f} million cue-exposure updates per second")
    print(f"sparse pass (10% exposed): {n_sparse:,} updates in {best_sparse * 1e3:.1f} ms -> "
          f"{n_sparse / best_sparse / 1e6:.1f} million updates per second "
          f"(scan of all {n * c:,} pairs included)")
    print(f"interleaved A/B, full pass: current expose {n * c / best_fast / 1e6:.1f} M/s, "
          f"original kernel {n * c / best_orig / 1e6:.1f} M/s "
          f"(x{best_orig / best_fast:.2f})")
    print(f"state traffic alone (gather + write-back of the {pop._N_STATE_ROWS} float64 fields, "
          f"no arithmetic): {best_traffic / (n * c) * 1e9:.1f} ns per pair -> ceiling "
          f"{n * c / best_traffic / 1e6:.0f} M updates/s")
    print(f"arithmetic alone (the same lane passes on pairs resident in the L1 cache, no "
          f"gather): {best_arith / n_arith * 1e9:.1f} ns per pair -> ceiling "
          f"{n_arith / best_arith / 1e6:.0f} M updates/s")
    print(f"response read-out: {n * c / t_resp / 1e6:.1f} million (patient, cue) per second")
    print(f"load indicator: numpy exp {t_exp / (n * c) * 1e9:.1f} ns per element "
          f"(about 1-2 ns on an idle core; larger values mean a contended machine)")


if __name__ == "__main__":
    main()
