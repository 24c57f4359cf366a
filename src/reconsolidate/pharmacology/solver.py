"""Exact, vectorised solution of linear compartment models under piecewise-constant input.

For a state ``x`` (amounts in mg, effect-site concentrations in mg/L) with ``dx/dt = A x + b R``
and a rate ``R`` constant over an interval of length ``d``, the exact update is

``x(t + d) = e^{A d} x(t) + Gamma(d) R``, with
``expm([[A, b], [0, 0]] d) = [[e^{A d}, Gamma], [0, 1]]``

(pharmacology notes section 5.2; no ``A^-1``, no singularity when ke0 equals an exponent).
The union of the requested output times and all schedule events forms a grid; the propagator is
computed once per patient and per *distinct* step length (a 1-min output grid needs one), and the
state is stepped through the grid. Output values are therefore exact at the requested times, not
interpolated. The matrix exponential is a scaling-and-squaring Taylor series whose truncation
error (< 1e-22 after scaling the norm below 0.5, 18 terms) is far below double-precision
rounding.

The numba kernel takes patients in blocks of up to 64 (numba threads share the blocks; a call
with one block runs on the calling thread) and makes every loop over a block's patients the
innermost one, so the exponentials and the stepping run in SIMD lanes, one patient per lane.
Each lane does the same IEEE operations as a lone patient would (no cross-lane sums, no
fast-math; each lane's own number of squarings), so a patient's result is bit-identical
whichever patients share its call or block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from reconsolidate._threads import run_split
from reconsolidate.pharmacology.models import PKModel

__all__ = ["Schedule", "expm_augmented", "propagate", "system_matrices"]

#: Rounding of step lengths before grouping them (min): steps that differ by less than this are
#: floating-point renderings of the same length (e.g. 10-s TCI updates on a 1-min grid); the
#: resulting error (|dx/dt| * 1e-12 min) is far below double-precision noise in the output.
_STEP_ROUND_DECIMALS = 12


@dataclass(frozen=True)
class Schedule:
    """A resolved dosing schedule for N patients (amounts in mg, times in min).

    Attributes
    ----------
    edges_min
        Increasing segment edges, shape (K + 1,); segment k is ``[edges[k], edges[k+1])``.
    rates_mg_per_min
        Infusion rate of each segment and patient, shape (K, N); zero outside the segments.
    bolus_times_min
        Bolus times, shape (B,), strictly increasing (simultaneous boluses summed).
    bolus_doses_mg
        Bolus doses, shape (B, N).
    """

    edges_min: np.ndarray
    rates_mg_per_min: np.ndarray
    bolus_times_min: np.ndarray
    bolus_doses_mg: np.ndarray

    @property
    def n_patients(self) -> int:
        """Number of patients N."""
        return int(self.rates_mg_per_min.shape[1] if self.rates_mg_per_min.size
                   else self.bolus_doses_mg.shape[1])

    def total_dose_mg(self) -> np.ndarray:
        """Total dose per patient (mg), shape (N,)."""
        d = np.diff(self.edges_min)
        return (self.rates_mg_per_min * d[:, None]).sum(axis=0) + self.bolus_doses_mg.sum(axis=0)


def system_matrices(
    model: PKModel, params: dict[str, np.ndarray], ke0_per_min: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """System matrix, input vector and observation matrix for N patients.

    State order: parent compartments (mg), metabolite compartment (mg, if any), parent effect
    site (mg/L), metabolite effect site (mg/L, if any).

    Returns
    -------
    a : ndarray, shape (N, n, n)
        ``dx/dt = a x + b R`` in 1/min.
    b : ndarray, shape (n,)
        Input vector (infusions and boluses enter the central compartment).
    obs : ndarray, shape (N, n_obs, n)
        Rows map the state to concentrations in mg/L: plasma, effect site, and with a metabolite
        also metabolite plasma and metabolite effect site.
    """
    v1 = params["v1_l"]
    n_pat = v1.shape[0]
    nc = model.n_compartments
    met = model.has_metabolite
    n = model.n_states
    k10 = params["cl_l_per_min"] / v1
    a = np.zeros((n_pat, n, n))
    ks = [(params["q2_l_per_min"] / v1, params["q2_l_per_min"] / params["v2_l"])]
    if nc == 3:
        ks.append((params["q3_l_per_min"] / v1, params["q3_l_per_min"] / params["v3_l"]))
    a[:, 0, 0] = -k10
    for i, (k1i, ki1) in enumerate(ks, start=1):
        a[:, 0, 0] -= k1i
        a[:, 0, i] = ki1
        a[:, i, 0] = k1i
        a[:, i, i] = -ki1
    ke0 = np.broadcast_to(np.asarray(ke0_per_min, dtype=np.float64), (n_pat,))
    ce = nc + (1 if met else 0)
    a[:, ce, 0] = ke0 / v1
    a[:, ce, ce] = -ke0
    n_obs = 4 if met else 2
    obs = np.zeros((n_pat, n_obs, n))
    obs[:, 0, 0] = 1.0 / v1
    obs[:, 1, ce] = 1.0
    if met:
        im = nc
        vm = params["v_met_l"]
        # Metabolite formed from parent elimination; apparent parameters (CL/Fm, V/Fm) make the
        # formation fraction cancel (Flint 2017, nlmixr2lib transcription).
        a[:, im, 0] = k10
        a[:, im, im] = -params["cl_met_l_per_min"] / vm
        a[:, ce + 1, im] = ke0 / vm
        a[:, ce + 1, ce + 1] = -ke0
        obs[:, 2, im] = 1.0 / vm
        obs[:, 3, ce + 1] = 1.0
    b = np.zeros(n)
    b[0] = 1.0
    return a, b, obs


#: Patients per block of the propagation kernel. Every loop over a block's patients is an
#: innermost loop, so LLVM vectorises it across patients (SIMD lanes); 64 amortises the loop
#: overhead while a block's propagators (n x n x 64 doubles per step length) stay in L1/L2.
_LANES = 64

#: Taylor order of the matrix exponential once the 1-norm is scaled below 0.5: truncation error
#: below 0.5**19 / 19! < 2e-23, far below double-precision rounding.
_TAYLOR_ORDER = 18


@numba.njit(cache=True)
def _expm_lanes(  # pragma: no cover - compiled
    m: np.ndarray, e: np.ndarray, x: np.ndarray, t: np.ndarray, sq: np.ndarray,
    scale: np.ndarray,
) -> None:
    """``e <- expm`` of one augmented matrix per lane (scaling and squaring, Taylor order 18).

    ``m[:, :, l]`` holds the top ``n`` rows of lane ``l``'s ``(n + 1) x (n + 1)`` matrix
    ``[[A d, b d], [0, 0]]``; its last row is zero, so the exponential's last row is
    ``[0, ..., 0, 1]`` and is neither stored nor multiplied. Each lane is scaled and squared by
    its own count, so its result is bit-identical whatever the other lanes hold. ``x`` and ``t``
    are work arrays shaped like ``m``; ``sq`` (int64) and ``scale`` are work arrays of length L.
    """
    n, n1, lanes = m.shape
    for l in range(lanes):
        norm = 0.0
        for j in range(n1):
            s = 0.0
            for i in range(n):
                s += abs(m[i, j, l])
            norm = max(norm, s)
        k = 0
        while norm > 0.5:
            norm *= 0.5
            k += 1
        sq[l] = k
        scale[l] = 0.5**k
    max_sq = 0
    for l in range(lanes):
        max_sq = max(max_sq, sq[l])
    for i in range(n):
        for j in range(n1):
            for l in range(lanes):
                x[i, j, l] = m[i, j, l] * scale[l]
                e[i, j, l] = 1.0 if i == j else 0.0
    for k in range(_TAYLOR_ORDER, 0, -1):  # Horner: I + X/1 (I + X/2 (I + ... X/18))
        inv_k = 1.0 / k
        for i in range(n):
            for j in range(n1):
                for l in range(lanes):
                    t[i, j, l] = x[i, n, l] if j == n else 0.0  # X[i, n] * E[n, j]
                for q in range(n):
                    for l in range(lanes):
                        t[i, j, l] += x[i, q, l] * e[q, j, l]
        for i in range(n):
            for j in range(n1):
                one = 1.0 if i == j else 0.0
                for l in range(lanes):
                    e[i, j, l] = t[i, j, l] * inv_k + one
    for s_ in range(max_sq):
        for i in range(n):
            for j in range(n1):
                for l in range(lanes):
                    t[i, j, l] = e[i, n, l] if j == n else 0.0
                for q in range(n):
                    for l in range(lanes):
                        t[i, j, l] += e[i, q, l] * e[q, j, l]
        for i in range(n):
            for j in range(n1):
                for l in range(lanes):
                    if s_ < sq[l]:  # lanes that are done keep their value
                        e[i, j, l] = t[i, j, l]


def expm_augmented(top: np.ndarray) -> np.ndarray:
    """Matrix exponentials of augmented matrices ``[[A, b], [0, 0]]`` given by their top rows.

    Parameters
    ----------
    top
        (K, n, n + 1) top ``n`` rows of each (n + 1) x (n + 1) matrix (e.g. ``[A d | b d]``).

    Returns
    -------
    ndarray
        (K, n, n + 1) top rows of each exponential (its last row is ``[0, ..., 0, 1]``): the
        propagator ``e^{A d}`` and, in the last column, the state after a unit-rate input over
        ``d``. The same compiled scaling-and-squaring as the propagation kernel (each matrix
        bit-identical whatever the others), in lanes of 64.
    """
    t = np.ascontiguousarray(top, dtype=np.float64)
    if t.ndim != 3 or t.shape[2] != t.shape[1] + 1:
        raise ValueError(f"top must be (K, n, n + 1), got shape {t.shape}")
    return _expm_augmented_kernel(t)


@numba.njit(cache=True)
def _expm_augmented_kernel(top):  # pragma: no cover - compiled
    k_total, n, n1 = top.shape
    out = np.empty_like(top)
    m = np.zeros((n, n1, _LANES))
    e = np.empty((n, n1, _LANES))
    x = np.empty((n, n1, _LANES))
    t = np.empty((n, n1, _LANES))
    sq = np.empty(_LANES, np.int64)
    scale = np.empty(_LANES)
    for k0 in range(0, k_total, _LANES):
        kk = min(_LANES, k_total - k0)
        for i in range(n):
            for j in range(n1):
                for l in range(_LANES):
                    m[i, j, l] = top[k0 + l, i, j] if l < kk else 0.0
        _expm_lanes(m, e, x, t, sq, scale)
        for l in range(kk):
            for i in range(n):
                for j in range(n1):
                    out[k0 + l, i, j] = e[i, j, l]
    return out


@numba.njit(cache=True, nogil=True)
def _propagate_block(  # pragma: no cover - compiled
    p0, lanes, a, b, obs_state, obs_scale, deltas, step_u, step_seg, rates, bolus_idx, boluses,
    rec_col, out,
):
    """Step patients ``p0 .. p0 + lanes - 1`` through the grid; ``out[o, p, c]``: output o.

    Output o of patient p is ``obs_scale[p, o] * x[obs_state[o]]``.
    """
    n_pat = a.shape[0]
    n = a.shape[1]
    n_u = deltas.shape[0]
    n_grid = rec_col.shape[0]
    n_obs = obs_state.shape[0]
    n_seg = rates.shape[0]
    n_bol = boluses.shape[0]
    nl = min(lanes, n_pat - p0)
    # Lanes past the last patient repeat it: computed, never written.
    pat = np.empty(lanes, dtype=np.int64)
    for l in range(lanes):
        pat[l] = p0 + min(l, nl - 1)
    m = np.empty((n, n + 1, lanes))
    e = np.empty((n, n + 1, lanes))
    wx = np.empty((n, n + 1, lanes))
    wt = np.empty((n, n + 1, lanes))
    sq = np.empty(lanes, dtype=np.int64)
    scale = np.empty(lanes)
    phi = np.empty((n_u, n, n, lanes))
    gam = np.empty((n_u, n, lanes))
    for u in range(n_u):
        for i in range(n):
            for j in range(n):
                for l in range(lanes):
                    m[i, j, l] = a[pat[l], i, j] * deltas[u]
            for l in range(lanes):
                m[i, n, l] = b[i] * deltas[u]
        _expm_lanes(m, e, wx, wt, sq, scale)
        for i in range(n):
            for j in range(n):
                for l in range(lanes):
                    phi[u, i, j, l] = e[i, j, l]
            for l in range(lanes):
                gam[u, i, l] = e[i, n, l]
    ob = np.empty((n_obs, lanes))
    for o in range(n_obs):
        for l in range(lanes):
            ob[o, l] = obs_scale[pat[l], o]
    rb = np.empty((n_seg, lanes))
    for s in range(n_seg):
        for l in range(lanes):
            rb[s, l] = rates[s, pat[l]]
    bb = np.empty((n_bol, lanes))
    for s in range(n_bol):
        for l in range(lanes):
            bb[s, l] = boluses[s, pat[l]]
    x = np.zeros((n, lanes))
    xn = np.empty((n, lanes))
    for j in range(n_grid):
        bi = bolus_idx[j]
        if bi >= 0:
            for i in range(n):
                for l in range(lanes):
                    x[i, l] += b[i] * bb[bi, l]
        c = rec_col[j]
        if c >= 0:
            for o in range(n_obs):
                i = obs_state[o]
                for l in range(nl):
                    out[o, p0 + l, c] = ob[o, l] * x[i, l]
        if j < n_grid - 1:
            uu = step_u[j]
            sg = step_seg[j]
            for i in range(n):
                for l in range(lanes):
                    xn[i, l] = gam[uu, i, l] * rb[sg, l]
                for k in range(n):
                    for l in range(lanes):
                        xn[i, l] += phi[uu, i, k, l] * x[k, l]
            # Copy back rather than swap the two arrays: swapping array references inside
            # the block loop measured 1.5x slower.
            for i in range(n):
                for l in range(lanes):
                    x[i, l] = xn[i, l]



@numba.njit(cache=True, nogil=True)
def _propagate_blocks(  # pragma: no cover - compiled
    blk0, blk1, lanes, a, b, obs_state, obs_scale, deltas, step_u, step_seg, rates, bolus_idx,
    boluses, rec_col, out,
):
    """Blocks ``blk0 .. blk1 - 1`` of ``lanes`` patients each (the last one may be short)."""
    for blk in range(blk0, blk1):
        _propagate_block(blk * lanes, lanes, a, b, obs_state, obs_scale, deltas, step_u,
                         step_seg, rates, bolus_idx, boluses, rec_col, out)


def _run_blocks(n_pat: int, args: tuple) -> None:
    """All patients through :func:`_propagate_blocks`, the blocks split over threads
    (:func:`reconsolidate._threads.run_split`); every patient's arithmetic is the same whatever
    the split (no fastmath, no reduction)."""
    lanes = min(_LANES, n_pat)
    run_split(lambda lo, hi: _propagate_blocks(lo, hi, lanes, *args), -(-n_pat // lanes),
              "pk-propagate")


def propagate(
    a: np.ndarray,
    b: np.ndarray,
    obs: np.ndarray,
    schedule: Schedule,
    times_min: np.ndarray,
) -> np.ndarray:
    """Observed concentrations (mg/L) at ``times_min`` for N patients, exactly.

    Parameters
    ----------
    a, b, obs
        From :func:`system_matrices`. Each row of ``obs`` must select one state (a scaled unit
        row, the same state for every patient), as there.
    schedule
        The dosing schedule (same N).
    times_min
        Output times in minutes, shape (T,), any order; times before 0 give 0 (nothing given
        yet: time 0 is the start of the first administration).

    Returns
    -------
    ndarray, shape (N, n_obs, T)
        A transposed view of an (n_obs, N, T) C-ordered array: ``out[:, o]`` is contiguous.
    """
    times = np.asarray(times_min, dtype=np.float64)
    obs = np.asarray(obs, dtype=np.float64)
    n_pat, n_obs = obs.shape[0], obs.shape[1]
    # The kernel scales the selected state instead of multiplying by the whole row.
    selected = np.argmax(obs != 0.0, axis=2)  # (N, n_obs); an all-zero row selects state 0
    if np.any(np.count_nonzero(obs, axis=2) > 1) or np.any(selected != selected[:1]):
        raise ValueError("obs: each row must select one state (a scaled unit row), the same "
                         "state for every patient")
    obs_state = selected[0] if n_pat else np.zeros(n_obs, dtype=np.int64)
    obs_scale = np.take_along_axis(obs, selected[:, :, None], axis=2)[:, :, 0]
    edges = np.asarray(schedule.edges_min, dtype=np.float64)
    bt = np.asarray(schedule.bolus_times_min, dtype=np.float64)
    pos_times = times[times >= 0.0]
    grid = np.unique(np.concatenate([[0.0], edges, bt, pos_times]))
    grid = grid[grid >= 0.0]
    steps = np.diff(grid)
    deltas, step_u = np.unique(np.round(steps, _STEP_ROUND_DECIMALS), return_inverse=True)
    if deltas.size == 0:
        deltas = np.array([1.0])
    # Segment of each step: rate of the segment containing the step's start (index K = zero).
    k = edges.size - 1
    rates = np.zeros((k + 1, n_pat))
    if k > 0:
        rates[:k] = schedule.rates_mg_per_min
    seg = np.searchsorted(edges, grid[:-1], side="right") - 1
    seg = np.where((seg < 0) | (seg >= k), k, seg).astype(np.int64)
    bolus_idx = np.full(grid.size, -1, dtype=np.int64)
    if bt.size:
        bolus_idx[np.searchsorted(grid, bt)] = np.arange(bt.size)
    rec_grid = np.unique(pos_times)
    rec_col = np.full(grid.size, -1, dtype=np.int64)
    rec_col[np.searchsorted(grid, rec_grid)] = np.arange(rec_grid.size)
    # Output-major, so each output is a C-contiguous (N, T) array: simulate() hands the rows out
    # without copying. The kernel writes every element.
    out_grid = np.empty((n_obs, n_pat, rec_grid.size))
    boluses = np.ascontiguousarray(schedule.bolus_doses_mg, dtype=np.float64)
    boluses = boluses.reshape(bt.size, n_pat)
    args = (
        np.ascontiguousarray(a), np.ascontiguousarray(b, dtype=np.float64),
        obs_state.astype(np.int64), np.ascontiguousarray(obs_scale), deltas.astype(np.float64),
        step_u.astype(np.int64), seg, rates, bolus_idx,
        boluses if bt.size else np.zeros((1, n_pat)), rec_col, out_grid,
    )
    if n_pat > 0:
        _run_blocks(n_pat, args)
    if np.array_equal(times, rec_grid):  # sorted, distinct, none before 0: no re-indexing
        return out_grid.transpose(1, 0, 2)
    out = np.zeros((n_obs, n_pat, times.size))
    nonneg = times >= 0.0
    out[:, :, nonneg] = out_grid[:, :, np.searchsorted(rec_grid, times[nonneg])]
    return out.transpose(1, 0, 2)
