"""Population memory model: a reduced LC-RW state per patient and per cue class.

Derived from the reference model (:mod:`reconsolidate.memory.reference`) by keeping, for each
(patient, cue class), at most two latent causes: the *acquisition* cause (cue -> alcohol; index 0)
and the *extinction* cause (index 1; later new causes are folded into it). Each cause keeps

- ``w``: its prediction of the alcohol reward for the cue (the reference model's cue weight),
- ``n``: its effective trial count (sufficient statistic of the feature likelihood and of the
  prior mass),
- ``tmean_h`` / ``tlast_h``: the mean and last time of its trials; the power-law CRP prior
  ``sum_i K(t - t_i)`` is approximated by ``(n - 1) K(t - tmean) + K(t - tlast)``,
- ``ctx``: the context it was formed in,
- ``lab``: its lability at ``lab_time_h`` (decays with ``lability_tau_min``); the lability of
  the acquisition cause also raises its prior (a destabilised memory stays the active one and
  absorbs new trials). The reference model does this for every cause that existed before the
  destabilising trial; here only the acquisition cause can re-open (the extinction cause's
  lability is its consolidation, which a drug can block but which does not attract trials).

Time is explicit: ``state.time_h`` (N,) is each patient's clock in hours. All arrays are float64,
struct-of-arrays, updated in place by numba kernels.

Implementation of :func:`expose` (performance; the model is unchanged):

- ``_expose_kernel`` (used when ``0.5 / us_variance <= 8``) processes 256 patients at a time:
  the exposed pairs are compacted into scratch rows, then the EM iterations run as the inner
  loop over those pairs (vectorised, AVX2) and the results are written back. The E-step
  exponentials use a polynomial exp (relative error < 3e-14) instead of the exp table (2e-7):
  this is closer to the reference model than the previous kernel, never further.
- ``_expose_kernel_reference`` is the previous one-pass kernel, kept as the oracle of the fast
  one (``tests/memory/test_memory_population_fast.py``: weights within 1e-6, counts, times and
  contexts equal) and used for ``us_variance < 1/16``.
- The 13 (N, C) fields of a state are views into one memory block, each at a different offset
  within a 4 KiB page (:func:`_alloc_state`), so that a kernel streaming all of them does not
  suffer cache-set aliasing; each field is still an ordinary C-contiguous float64 array.

Measured (``python benchmarks/memory_population.py``, 10^6 x 6, one thread, shared 2-core VM
whose numpy exp costs 5-10 ns per element): ~10-12 M updates/s before, ~13-18 M/s after
(interleaved A/B ratio 1.15-1.4). The goal of 100 M/s is NOT met: the per-pair prior and
likelihood (~6 divisions and a square root), the data-dependent MAP assignment and the traffic
over 13 float64 fields dominate.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from reconsolidate.exceptions import InputError
from reconsolidate.memory.params import MemoryParams
from reconsolidate.memory.window import damage_fraction, window_mean_weight

__all__ = [
    "PopulationParams",
    "PopulationState",
    "advance",
    "expose",
    "new_state",
    "response",
    "restabilise",
    "restabilise_weighted",
    "retrieve",
    "us_alone",
]

#: The population model uses the same parameter set as the reference model.
PopulationParams = MemoryParams



@dataclass
class PopulationState:
    """Struct-of-arrays memory state; every field is float64, shape (N, C) unless noted."""

    time_h: NDArray[np.float64]  # (N,) clock of each patient, hours
    w0: NDArray[np.float64]
    n0: NDArray[np.float64]
    tmean0_h: NDArray[np.float64]
    tlast0_h: NDArray[np.float64]
    ctx0: NDArray[np.float64]
    lab0: NDArray[np.float64]
    w1: NDArray[np.float64]
    n1: NDArray[np.float64]
    tmean1_h: NDArray[np.float64]
    tlast1_h: NDArray[np.float64]
    ctx1: NDArray[np.float64]
    lab1: NDArray[np.float64]
    lab_time_h: NDArray[np.float64]

    @property
    def shape(self) -> tuple[int, int]:
        """(n_patients, n_cues)."""
        return self.w0.shape  # type: ignore[return-value]

    def copy(self) -> PopulationState:
        """Deep copy (for branching arms from a common history), in a fresh staggered block."""
        n, c = self.shape
        out = _alloc_state(n, c)
        for f in fields(self):
            np.copyto(getattr(out, f.name), getattr(self, f.name))
        return out

    @property
    def acquisition_strength(self) -> NDArray[np.float64]:
        """Reward prediction of the acquisition memory, (N, C) (a view, do not write)."""
        return self.w0

    @property
    def extinction_count(self) -> NDArray[np.float64]:
        """Effective number of extinction trials (N, C) (0 = no extinction memory)."""
        return self.n1


#: (N, C) fields of PopulationState, in the order they sit in the shared memory block.
_CUE_FIELDS = ("w0", "n0", "tmean0_h", "tlast0_h", "ctx0", "lab0", "w1", "n1", "tmean1_h",
               "tlast1_h", "ctx1", "lab1", "lab_time_h")
#: Stagger between consecutive fields, bytes (a cache-line multiple, 5 lines).
_FIELD_STAGGER_BYTES = 320


def _alloc_state(n: int, c: int) -> PopulationState:
    """Zeroed state whose fields are views into ONE block, each starting at a different
    offset modulo the 4 KiB page.

    Why: the expose kernel streams through all 13 (N, C) fields at once. Separately allocated
    large arrays all start at the same offset within a page (fresh ``mmap`` blocks), so the
    13 streams fall into the same L1 cache sets and alias at 4 KiB: on the benchmark machine
    that made the kernel ~10x slower than its memory traffic (~75 vs ~7 ns per pair). Fields
    stay ordinary C-contiguous float64 (N, C) arrays, so the public layout is unchanged.
    """
    nbytes = n * c * 8
    page = 4096
    per = (nbytes + page - 1) // page * page + _FIELD_STAGGER_BYTES
    block = np.zeros(len(_CUE_FIELDS) * per + 64, dtype=np.uint8)
    base = (-block.ctypes.data) % 64  # cache-line aligned start
    views = {
        name: block[base + k * per: base + k * per + nbytes].view(np.float64).reshape(n, c)
        for k, name in enumerate(_CUE_FIELDS)
    }
    return PopulationState(time_h=np.zeros(n), **views)


def new_state(
    acquisition_strength: ArrayLike,
    params: MemoryParams | None = None,
    *,
    memory_age_h: float | ArrayLike = 24.0,
    context: int = 0,
    acquisition_trials: float | None = None,
) -> PopulationState:
    """Create a state whose acquisition memory has the given strength.

    Parameters
    ----------
    acquisition_strength
        (N, C) reward prediction of each cue class, in [0, 1].
    params
        Model parameters (``acquisition_trials`` sets the effective trial count).
    memory_age_h
        Hours since the (mean) acquisition trial, scalar or (N,) or (N, C); the patients'
        clocks start at 0 and the acquisition trials lie in the past.
    context
        Context id (0 .. n_context_features-1) the memory was acquired in.
    acquisition_trials
        Effective number of acquisition trials (default ``params.acquisition_trials``); 0 gives
        a naive state (no memory yet) whatever the strength.
    """
    p = params or MemoryParams()
    a = np.array(acquisition_strength, dtype=np.float64, ndmin=2)
    if a.ndim != 2:
        raise InputError(f"acquisition_strength must be (N, C), got shape {a.shape}")
    if not np.all(np.isfinite(a)) or np.any((a < 0) | (a > 1)):
        raise InputError("acquisition_strength must lie in [0, 1]")
    age_in = np.asarray(memory_age_h, dtype=np.float64)
    if age_in.ndim == 1:
        age_in = age_in[:, None]
    try:
        age = np.broadcast_to(age_in, a.shape)
    except ValueError:
        raise InputError(f"memory_age_h must broadcast to {a.shape}") from None
    if np.any(age < 0):
        raise InputError("memory_age_h must be >= 0")
    _check_context(context, p)
    n, c = a.shape
    ntr = p.acquisition_trials if acquisition_trials is None else float(acquisition_trials)
    if ntr < 0:
        raise InputError(f"acquisition_trials = {ntr}: must be >= 0")
    s = _alloc_state(n, c)
    if ntr > 0:
        s.w0[...] = a
    s.n0[...] = ntr
    s.tmean0_h[...] = -age
    s.tlast0_h[...] = -age
    s.ctx0[...] = float(context)
    s.ctx1[...] = -1.0
    return s


def _check_context(context: int, p: MemoryParams) -> None:
    if int(context) != context or not 0 <= context < p.n_context_features:
        raise InputError(
            f"context = {context!r}: must be an integer in 0..{p.n_context_features - 1}"
        )


# ----------------------------------------------------------------------------- kernels
@numba.njit(cache=True, inline="always", fastmath=True)
def _kernel(dt_h: float, offset_h: float, g: float) -> float:
    d = dt_h + offset_h
    if d < offset_h:
        d = offset_h
    return 1.0 / d if g == 1.0 else d ** (-g)


@numba.njit(cache=True, inline="always", fastmath=True)
def _prior(n: float, tmean: float, tlast: float, t: float, off: float, g: float) -> float:
    if n <= 0.0:
        return 0.0
    rest = n - 1.0 if n > 1.0 else 0.0
    first = n if n < 1.0 else 1.0
    return rest * _kernel(t - tmean, off, g) + first * _kernel(t - tlast, off, g)


_EXP_TABLE_INTERVALS = 4096


def _exp_table(p: MemoryParams) -> tuple[NDArray[np.float64], float, float]:
    return _exp_table_cached(p.us_variance, p.feature_variance)


@functools.lru_cache(maxsize=32)
def _exp_table_cached(us_variance: float, feature_variance: float
                      ) -> tuple[NDArray[np.float64], float, float]:
    """exp on [-A, A] for linear interpolation in the kernels (relative error < 2e-7).

    The bounded exponentials of the hot path (E-step reward likelihood ratios, within
    [-0.5/sr, 0.5/sr] because predictions and rewards lie in [0, 1]; feature likelihoods, within
    [-1/sx, 0]) are read from this table instead of calling libm ``exp``, several times faster.
    """
    a = 1.0001 * max(0.5 / us_variance, 1.0 / feature_variance)
    grid = np.linspace(-a, a, _EXP_TABLE_INTERVALS + 1)
    return np.exp(grid), -a, _EXP_TABLE_INTERVALS / (2.0 * a)


@numba.njit(cache=True, inline="always", fastmath=True)
def _texp(x: float, tab: np.ndarray, lo: float, inv: float) -> float:
    u = (x - lo) * inv
    nmax = tab.size - 1
    if u <= 0.0:
        return tab[0]
    if u >= nmax:
        return tab[nmax]
    j = int(u)
    return tab[j] + (tab[j + 1] - tab[j]) * (u - j)


@numba.njit(cache=True, inline="always", fastmath=True)
def _lik(n: float, ctxk: float, ctx: float, sx: float, half_d: float, tab: np.ndarray,
         lo: float, inv: float) -> float:
    """Predictive density of (cue = 1, one-hot context) under a cause with n trials.

    The constant (2 pi)^(-D/2) is dropped (it cancels in every posterior); D = 1 + contexts.
    """
    v = sx / (n + sx) + sx
    mu = n / (n + sx)
    q = (1.0 - mu) * (1.0 - mu)  # the cue feature
    if n <= 0.0:
        q += 1.0  # the trial's context feature, mean 0 under a new cause
    elif ctxk == ctx:
        q += (1.0 - mu) * (1.0 - mu)
    else:
        q += 1.0 + mu * mu  # trial context unseen by k, k's context absent now
    if half_d == 1.5:  # the common case of two contexts: avoid pow
        scale = 1.0 / (v * math.sqrt(v))
    else:
        scale = v ** (-half_d)
    return _texp(-0.5 * q / v, tab, lo, inv) * scale


@numba.njit(cache=True, inline="always", fastmath=True)
def _lik_new(sx: float, half_d: float) -> float:
    """Predictive density under a new cause (n = 0): cue and context both at mean 0."""
    v = 1.0 + sx
    return math.exp(-1.0 / v) * v ** (-half_d)


@numba.njit(cache=True, inline="always", fastmath=True)
def _posterior_prior(n0, tm0, tl0, c0, n1, tm1, tl1, c1, t, ctx, alpha, off, g, sx, half_d,
                     b0, b1, tab, lo, inv):
    """Prior x feature likelihood for (acq, ext, new), normalised; b0/b1 = lability boosts."""
    a0 = 0.0
    a1 = 0.0
    if n0 > 0.0:
        a0 = (_prior(n0, tm0, tl0, t, off, g) + b0) * _lik(n0, c0, ctx, sx, half_d, tab, lo, inv)
    if n1 > 0.0:
        a1 = (_prior(n1, tm1, tl1, t, off, g) + b1) * _lik(n1, c1, ctx, sx, half_d, tab, lo, inv)
    an = alpha * _lik_new(sx, half_d)
    s = a0 + a1 + an
    return a0 / s, a1 / s, an / s


@numba.njit(cache=True, fastmath=True)
def _response_kernel(time_h, ctx_arr, w0, n0, tm0, tl0, c0, lab0, w1, n1, tm1, tl1, c1, lab1,
                     labt, alpha, off, g, sx, half_d, theta, lam, beta, tau_h, tab, lo, inv, out):
    nn, cc = w0.shape
    for i in range(nn):
        t = time_h[i]
        ctx = ctx_arr[i]
        for c in range(cc):
            dec = beta * math.exp(-(t - labt[i, c]) / tau_h)
            q0, q1, _ = _posterior_prior(n0[i, c], tm0[i, c], tl0[i, c], c0[i, c],
                                         n1[i, c], tm1[i, c], tl1[i, c], c1[i, c],
                                         t, ctx, alpha, off, g, sx, half_d,
                                         lab0[i, c] * dec, 0.0, tab, lo, inv)
            # read-out from the memories that exist (the empty new cause is not a memory)
            qs = q0 + q1
            v = (q0 * w0[i, c] + q1 * w1[i, c]) / qs if qs > 0.0 else 0.0
            out[i, c] = 0.5 * math.erfc(-(v - theta) / (lam * math.sqrt(2.0)))


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def _texp_clamped(x: float, tab: np.ndarray, lo: float, inv: float, nmax: int) -> float:
    """:func:`_texp` without branches (clamp with min/max), same values."""
    u = min(max((x - lo) * inv, 0.0), float(nmax))
    j = min(int(u), nmax - 1)
    t0 = tab[j]
    return t0 + (tab[j + 1] - t0) * (u - j)


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def _pow_neg(x: float, e: float) -> float:
    """x ** -e with the common exponents (1, 1.5) done without pow."""
    if e == 1.0:
        return 1.0 / x
    if e == 1.5:
        return 1.0 / (x * math.sqrt(x))
    return x ** (-e)


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def _prior_fast(n: float, tmean: float, tlast: float, t: float, off: float, g: float) -> float:
    """:func:`_prior` (n > 0 assumed by the caller's select) with the kernel inlined."""
    rest = max(n - 1.0, 0.0)
    first = min(n, 1.0)
    d_mean = max(t - tmean + off, off)
    d_last = max(t - tlast + off, off)
    if g == 1.0:
        return rest / d_mean + first / d_last
    return rest * d_mean ** (-g) + first * d_last ** (-g)


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def _lik_fast(n: float, same_ctx: bool, sx: float, half_d: float, tab: np.ndarray, lo: float,
              inv: float, nmax: int) -> float:
    """:func:`_lik` for n > 0 with one division and the exp table read without branches."""
    r = 1.0 / (n + sx)
    v = sx * r + sx
    mu = n * r
    om = (1.0 - mu) * (1.0 - mu)
    q = om + (om if same_ctx else 1.0 + mu * mu)
    iv = 1.0 / v
    return _texp_clamped(-0.5 * q * iv, tab, lo, inv, nmax) * _pow_neg(v, half_d)


#: Largest |x| for which :func:`_exp_poly` is used (E-step arguments lie in [-0.5/sr, 0.5/sr]).
_EXP_POLY_MAX_ABS = 8.0


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def _exp_poly(x: float) -> float:
    """exp(x) for |x| <= 8 by pure arithmetic (so that loops using it vectorise).

    exp(x) = (exp(x / 64))^64, with exp(y) for |y| <= 1/8 by its Taylor polynomial of
    degree 9 (truncation y^10/10! < 3e-16) and six squarings: relative error < 3e-14 on
    [-8, 8] (tests/memory/test_memory_population_fast.py), tighter than the exp table
    (2e-7) it replaces in the E-step.
    """
    y = x * 0.015625
    p = 1.0 + y * (1.0 + y * (0.5 + y * (1.0 / 6.0 + y * (1.0 / 24.0 + y * (
        1.0 / 120.0 + y * (1.0 / 720.0 + y * (1.0 / 5040.0 + y * (
            1.0 / 40320.0 + y * (1.0 / 362880.0)))))))))
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    return p * p


_EXPOSE_BLOCK_PATIENTS = 256


# Per-pair steps of an exposure, shared by :func:`_expose_kernel` and the fused daily-life kernel
# (:mod:`reconsolidate.behavior.days`), so that both run the same arithmetic.
@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def _pair_priors(k0, tm0, tl0, l0, labt, k1, tm1, tl1, t, off, g, beta, inv_tau):
    """CRP prior weights of the acquisition cause (plus its lability boost) and of the
    extinction cause of one (patient, cue) pair at time ``t`` (0 for a cause with no trials).
    Multiplied by the causes' feature likelihoods they give the unnormalised posterior."""
    pr0 = 0.0
    if k0 > 0.0:
        b0 = l0 * beta * math.exp(-(t - labt) * inv_tau) if l0 > 0.0 else 0.0
        pr0 = _prior_fast(k0, tm0, tl0, t, off, g) + b0
    pr1 = _prior_fast(k1, tm1, tl1, t, off, g) if k1 > 0.0 else 0.0
    return pr0, pr1


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def _em_step(r, q0, q1, qn, a0, a1, an, hsr, eta):
    """One EM iteration: E-step (US likelihood in ratio form to the new cause), M-step."""
    dn = (r - an) * (r - an)
    e0 = q0 * _exp_poly(hsr * (dn - (r - a0) * (r - a0)))
    e1 = q1 * _exp_poly(hsr * (dn - (r - a1) * (r - a1)))
    rs = 1.0 / (e0 + e1 + qn)
    p0 = e0 * rs
    p1 = e1 * rs
    pn = qn * rs
    return (a0 + eta * p0 * (r - a0), a1 + eta * p1 * (r - a1), an + eta * pn * (r - an),
            p0, p1, pn)


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def _assign(k0, tm0, tl0, c0, k1, tm1, tl1, c1, w1, t, ctx, free, p0, p1, pn, a0, a1, an, pe,
            pe_thr, three_tau):
    """State of one pair after EM: hard MAP assignment (counts, times, contexts), weights and
    the lability left by this trial.

    Returns ``(w0, n0, tm0, tl0, c0, lab0, w1, n1, tm1, tl1, c1, lab1)``; the caller stores
    them and sets the lability time to ``t``. Scalars in and out: an inlined helper taking the
    state arrays costs a reference-count round trip per array and call (measured: 2x slower).
    """
    w0 = a0
    if k1 > 0.0:
        w1 = a1
    if k0 > 0.0 and p0 >= p1 and p0 >= pn:
        tm0 = (tm0 * k0 + t) / (k0 + 1.0)
        tl0 = t
        k0 = k0 + 1.0
    elif k0 <= 0.0:  # no memory yet: the new cause becomes the acquisition cause
        k0 = 1.0
        tm0 = t
        tl0 = t
        c0 = ctx
        w0 = an
        p0, pn = pn, 0.0
    elif k1 > 0.0:
        tm1 = (tm1 * k1 + t) / (k1 + 1.0)
        tl1 = t
        k1 = k1 + 1.0
    else:  # the new cause becomes the extinction cause
        k1 = 1.0
        tm1 = t
        tl1 = t
        c1 = ctx
        w1 = an
    # Lability after this trial (replacing any earlier one, as LC-RW's PSI term acts on the
    # posterior of the injection trial): a consolidated cause (mean trial time older than
    # 3 tau) is destabilised only by a prediction error; a cause still consolidating is labile
    # whenever it is inferred. NMDA blockade at the trial (``free`` < 1) prevents both.
    pe_gate = 1.0 if abs(pe) >= pe_thr else 0.0
    g0 = 1.0 if t - tm0 < three_tau else pe_gate
    lab0 = p0 * g0 * free
    lab1 = 0.0
    if k1 > 0.0:
        g1 = 1.0 if t - tm1 < three_tau else pe_gate
        lab1 = (p1 + pn) * g1 * free
    return w0, k0, tm0, tl0, c0, lab0, w1, k1, tm1, tl1, c1, lab1


@numba.njit(cache=True, fastmath=True, boundscheck=False, error_model="numpy")
def _expose_kernel(mask, reward, occ, ctx_arr, time_h,
                   w0, n0, tm0, tl0, c0, lab0, w1, n1, tm1, tl1, c1, lab1, labt,
                   alpha, off, g, sx, half_d, eta, sr, n_iter, pe_thr, occ50, hill, tau_h, beta,
                   tab, lo, inv):
    """Fast expose kernel: same model as :func:`_expose_kernel_reference`, reorganised.

    Changes (none alters the model; results agree to rounding, see
    ``tests/memory/test_memory_population_fast.py``):

    - loop interchange: patients are processed in blocks of ``_EXPOSE_BLOCK_PATIENTS``; the
      exposed pairs of a block are compacted into scratch arrays and the EM iterations run
      as the inner loop over those pairs. Each pair's EM is a serial dependency chain
      (exp-table read, division, update) that made the original kernel latency-bound
      (~20 ns per iteration per pair); interleaving independent pairs lets the core
      overlap them, and unexposed pairs cost only the mask scan;
    - the E-step exponentials use :func:`_exp_poly` (arithmetic, relative error < 3e-14)
      instead of the exp table (2e-7), so the EM loop vectorises (AVX2: 4 pairs at once);
      valid while ``0.5 / us_variance <= _EXP_POLY_MAX_ABS``, else :func:`expose` uses
      the reference kernel;
    - the new-cause term ``alpha * lik_new`` (an exp and a pow) is a per-call constant;
    - one reciprocal instead of several divisions, min/max instead of branches in the
      exp-table read, no ``q > 0`` branch in the E-step (a zero prior gives zero);
    - ``reward`` is read as bool (no float copy of an (N, C) mask in :func:`expose`).
    """
    nn, cc = w0.shape
    nmax = tab.size - 1
    count = 0
    hsr = 0.5 / sr
    inv_tau = 1.0 / tau_h
    three_tau = 3.0 * tau_h
    q_new = alpha * math.exp(-1.0 / (1.0 + sx)) * _pow_neg(1.0 + sx, half_d)
    occ50h = occ50 ** hill
    bmax = _EXPOSE_BLOCK_PATIENTS * cc
    s_i = np.empty(bmax, np.int64)
    s_c = np.empty(bmax, np.int64)
    # float scratch as rows of ONE array: LLVM then vectorises the EM loop (no aliasing checks)
    scratch = np.empty((11, bmax))
    s_r = scratch[0]
    s_q0 = scratch[1]
    s_q1 = scratch[2]
    s_qn = scratch[3]
    s_a0 = scratch[4]
    s_a1 = scratch[5]
    s_an = scratch[6]
    s_p0 = scratch[7]
    s_p1 = scratch[8]
    s_pn = scratch[9]
    s_pe = scratch[10]
    for i_start in range(0, nn, _EXPOSE_BLOCK_PATIENTS):
        i_stop = min(i_start + _EXPOSE_BLOCK_PATIENTS, nn)
        # 1. compact the exposed pairs and compute their prior x likelihood posterior
        m = 0
        for i in range(i_start, i_stop):
            t = time_h[i]
            ctx = ctx_arr[i]
            for c in range(cc):
                if not mask[i, c]:
                    continue
                r = 1.0 if reward[i, c] else 0.0
                a0 = w0[i, c]
                a1 = w1[i, c]
                k0 = n0[i, c]
                k1 = n1[i, c]
                q0, q1 = _pair_priors(k0, tm0[i, c], tl0[i, c], lab0[i, c], labt[i, c],
                                      k1, tm1[i, c], tl1[i, c], t, off, g, beta, inv_tau)
                if k0 > 0.0:
                    q0 *= _lik_fast(k0, c0[i, c] == ctx, sx, half_d, tab, lo, inv, nmax)
                if k1 > 0.0:
                    q1 *= _lik_fast(k1, c1[i, c] == ctx, sx, half_d, tab, lo, inv, nmax)
                rs = 1.0 / (q0 + q1 + q_new)
                q0 *= rs
                q1 *= rs
                qn = q_new * rs
                # prediction error against the read-out of the existing memories
                qs = q0 + q1
                s_pe[m] = r - ((q0 * a0 + q1 * a1) / qs if qs > 0.0 else 0.0)
                s_i[m] = i
                s_c[m] = c
                s_r[m] = r
                s_q0[m] = q0
                s_q1[m] = q1
                s_qn[m] = qn
                s_a0[m] = a0
                s_a1[m] = a1
                s_an[m] = 0.0
                s_p0[m] = q0
                s_p1[m] = q1
                s_pn[m] = qn
                m += 1
        count += m
        # 2. EM, interleaved over the block's pairs (independent dependency chains)
        for _ in range(n_iter):
            for j in range(m):
                a0, a1, an, p0, p1, pn = _em_step(s_r[j], s_q0[j], s_q1[j], s_qn[j], s_a0[j],
                                                  s_a1[j], s_an[j], hsr, eta)
                s_a0[j] = a0
                s_a1[j] = a1
                s_an[j] = an
                s_p0[j] = p0
                s_p1[j] = p1
                s_pn[j] = pn
        # 3. write back: weights, hard MAP assignment (counts, times), lability. This is
        # :func:`_assign` storing only the fields that change: storing all twelve (as the
        # fused daily kernel does, where the pair sits in L1) dirties five more cache lines
        # per pair here and cost 20% (measured); tests check the two agree.
        for j in range(m):
            i = s_i[j]
            o = occ[i]
            free = 1.0
            if o > 0.0:
                oh = o ** hill
                free = 1.0 - oh / (oh + occ50h)
            c = s_c[j]
            t = time_h[i]
            k0 = n0[i, c]
            k1 = n1[i, c]
            p0 = s_p0[j]
            p1 = s_p1[j]
            pn = s_pn[j]
            an = s_an[j]
            w0[i, c] = s_a0[j]
            if k1 > 0.0:
                w1[i, c] = s_a1[j]
            if k0 > 0.0 and p0 >= p1 and p0 >= pn:
                tm0[i, c] = (tm0[i, c] * k0 + t) / (k0 + 1.0)
                tl0[i, c] = t
                n0[i, c] = k0 + 1.0
            elif k0 <= 0.0:  # no memory yet: the new cause becomes the acquisition cause
                n0[i, c] = 1.0
                tm0[i, c] = t
                tl0[i, c] = t
                c0[i, c] = ctx_arr[i]
                w0[i, c] = an
                p0, pn = pn, 0.0
            elif k1 > 0.0:
                tm1[i, c] = (tm1[i, c] * k1 + t) / (k1 + 1.0)
                tl1[i, c] = t
                n1[i, c] = k1 + 1.0
            else:  # the new cause becomes the extinction cause
                n1[i, c] = 1.0
                tm1[i, c] = t
                tl1[i, c] = t
                c1[i, c] = ctx_arr[i]
                w1[i, c] = an
            pe_gate = 1.0 if abs(s_pe[j]) >= pe_thr else 0.0
            g0 = 1.0 if t - tm0[i, c] < three_tau else pe_gate
            lab0[i, c] = p0 * g0 * free
            if n1[i, c] > 0.0:
                g1 = 1.0 if t - tm1[i, c] < three_tau else pe_gate
                lab1[i, c] = (p1 + pn) * g1 * free
            else:
                lab1[i, c] = 0.0
            labt[i, c] = t
    return count


@numba.njit(cache=True, fastmath=True)
def _expose_kernel_reference(mask, reward, occ, ctx_arr, time_h,
                   w0, n0, tm0, tl0, c0, lab0, w1, n1, tm1, tl1, c1, lab1, labt,
                   alpha, off, g, sx, half_d, eta, sr, n_iter, pe_thr, occ50, hill, tau_h, beta,
                   tab, lo, inv):
    """Original (pre-optimisation) expose kernel, kept as the oracle of :func:`_expose_kernel`.

    Not used by the public API; ``tests/memory/test_memory_population_fast.py`` checks that the
    fast kernel reproduces it to rounding.
    """
    nn, cc = w0.shape
    count = 0
    hsr = 0.5 / sr
    inv_tau = 1.0 / tau_h
    for i in range(nn):
        t = time_h[i]
        ctx = ctx_arr[i]
        o = occ[i]
        block = 0.0
        if o > 0.0:
            oh = o ** hill
            block = oh / (oh + occ50 ** hill)
        for c in range(cc):
            if not mask[i, c]:
                continue
            count += 1
            r = reward[i, c]
            dec = beta * math.exp(-(t - labt[i, c]) * inv_tau) if lab0[i, c] > 0.0 else 0.0
            q0, q1, qn = _posterior_prior(n0[i, c], tm0[i, c], tl0[i, c], c0[i, c],
                                          n1[i, c], tm1[i, c], tl1[i, c], c1[i, c],
                                          t, ctx, alpha, off, g, sx, half_d,
                                          lab0[i, c] * dec, 0.0, tab, lo, inv)
            a0 = w0[i, c]
            a1 = w1[i, c]
            an = 0.0
            # prediction error against the read-out of the existing memories (as response())
            qs = q0 + q1
            pe = r - ((q0 * a0 + q1 * a1) / qs if qs > 0.0 else 0.0)
            # EM: E-step reweights by the US likelihood, M-step moves each cause's prediction
            p0, p1, pn = q0, q1, qn
            for _ in range(n_iter):
                # E-step in ratio form relative to the new cause (one exp per existing cause)
                dn = (r - an) * (r - an)
                e0 = q0 * _texp(hsr * (dn - (r - a0) * (r - a0)), tab, lo, inv) if q0 > 0.0 else 0.0
                e1 = q1 * _texp(hsr * (dn - (r - a1) * (r - a1)), tab, lo, inv) if q1 > 0.0 else 0.0
                s = e0 + e1 + qn
                p0, p1, pn = e0 / s, e1 / s, qn / s
                a0 += eta * p0 * (r - a0)
                a1 += eta * p1 * (r - a1)
                an += eta * pn * (r - an)
            w0[i, c] = a0
            if n1[i, c] > 0.0:
                w1[i, c] = a1
            # hard MAP assignment updates counts and times
            if n0[i, c] > 0.0 and p0 >= p1 and p0 >= pn:
                k = n0[i, c]
                tm0[i, c] = (tm0[i, c] * k + t) / (k + 1.0)
                tl0[i, c] = t
                n0[i, c] = k + 1.0
            elif n0[i, c] <= 0.0:  # no memory yet: the new cause becomes the acquisition cause
                n0[i, c] = 1.0
                tm0[i, c] = t
                tl0[i, c] = t
                c0[i, c] = ctx
                w0[i, c] = an
                p0, pn = pn, 0.0
            elif n1[i, c] > 0.0:
                k = n1[i, c]
                tm1[i, c] = (tm1[i, c] * k + t) / (k + 1.0)
                tl1[i, c] = t
                n1[i, c] = k + 1.0
            else:  # the new cause becomes the extinction cause
                n1[i, c] = 1.0
                tm1[i, c] = t
                tl1[i, c] = t
                c1[i, c] = ctx
                w1[i, c] = an
                lab1[i, c] = 0.0
            # Lability after this trial (replacing any earlier one, as LC-RW's PSI term acts
            # on the posterior of the injection trial): a consolidated cause (mean trial time
            # older than 3 tau) is destabilised only by a prediction error; a cause still
            # consolidating is labile whenever it is inferred. NMDA blockade at the trial
            # prevents both.
            free = 1.0 - block
            pe_gate = 1.0 if abs(pe) >= pe_thr else 0.0
            g0 = 1.0 if t - tm0[i, c] < 3.0 * tau_h else pe_gate
            g1 = 1.0 if t - tm1[i, c] < 3.0 * tau_h else pe_gate
            lab0[i, c] = p0 * g0 * free
            lab1[i, c] = (p1 + pn) * g1 * free if n1[i, c] > 0.0 else 0.0
            labt[i, c] = t
    return count


# ----------------------------------------------------------------------------- public API
def _patient_vector(x: float | ArrayLike, n: int, name: str) -> NDArray[np.float64]:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        return np.full(n, float(a))
    if a.shape != (n,):
        raise InputError(f"{name} must be a scalar or shape ({n},), got {a.shape}")
    return a


def _cue_array(x: ArrayLike, shape: tuple[int, int], name: str, dtype: type) -> np.ndarray:
    a = np.asarray(x, dtype=dtype)
    if a.ndim == 1 and a.shape[0] == shape[0]:
        a = a[:, None]
    try:
        return np.broadcast_to(a, shape)
    except ValueError:
        raise InputError(f"{name} must broadcast to {shape}, got shape {a.shape}") from None


def _contexts(context: int | ArrayLike, n: int, p: MemoryParams) -> NDArray[np.float64]:
    ctx = _patient_vector(context, n, "context")
    if np.any((ctx < 0) | (ctx >= p.n_context_features) | (ctx != np.round(ctx))):
        raise InputError(f"context must be integers in 0..{p.n_context_features - 1} "
                         "(MemoryParams.n_context_features)")
    return ctx


def response(
    state: PopulationState, params: MemoryParams | None = None, *, context: int | ArrayLike = 0
) -> NDArray[np.float64]:
    """Conditioned response / craving drive per cue, (N, C) in [0, 1], at each patient's clock.

    ``CR = Phi((V - theta)/lambda)`` with ``V`` the posterior-weighted reward prediction of the
    causes (prior x likelihood of the cue in this context; no learning happens).
    """
    p = params or MemoryParams()
    n = state.shape[0]
    ctx = _contexts(context, n, p)
    out = np.empty(state.shape)
    s = state
    _response_kernel(s.time_h, ctx, s.w0, s.n0, s.tmean0_h, s.tlast0_h, s.ctx0, s.lab0,
                     s.w1, s.n1, s.tmean1_h, s.tlast1_h, s.ctx1, s.lab1, s.lab_time_h,
                     p.new_cause_concentration_per_h, p.kernel_offset_h, p.kernel_exponent,
                     p.feature_variance, 0.5 * (1.0 + p.n_context_features), p.cr_threshold,
                     p.cr_noise,
                     p.lability_prior_boost_per_h, p.lability_tau_min / 60.0, *_exp_table(p), out)
    return out


def advance(state: PopulationState, dt_h: float | ArrayLike) -> None:
    """Let ``dt_h`` hours pass (scalar or (N,)), in place.

    Time enters only through the clock: the power-law prior makes recent (extinction)
    memories lose their hold (spontaneous recovery) and lability decays with
    ``lability_tau_min``; both are evaluated lazily from ``time_h``.
    """
    d = np.asarray(dt_h, dtype=np.float64)
    if np.any(~np.isfinite(d)) or np.any(d < 0):
        raise InputError(f"dt_h must be finite and >= 0, got {dt_h!r}")
    state.time_h += d


def expose(
    state: PopulationState,
    cues: ArrayLike,
    rewarded: ArrayLike,
    params: MemoryParams | None = None,
    *,
    context: int | ArrayLike = 0,
    occupancy: float | ArrayLike = 0.0,
    gap_to_next_min: float | None = None,
) -> int:
    """One cue exposure for the masked (patient, cue) pairs, in place.

    Parameters
    ----------
    cues
        (N, C) bool: which cue classes are presented to which patients.
    rewarded
        bool, broadcast to (N, C) (scalar, (N,) or (N, C)): alcohol drunk (True) or cue
        without alcohol (False). Reward strengthens the active memory; an unrewarded
        exposure extinguishes the acquisition memory or builds the extinction memory,
        depending on which latent cause is inferred.
    context
        Context id per patient (scalar or (N,)).
    occupancy
        NMDA occupancy during the exposure (scalar or (N,)), blocks destabilisation.
    gap_to_next_min
        Minutes until the next exposure if known: the reference model runs one EM iteration
        per ``em_iteration_period_min`` of interval (at most ``max_em_iterations``); ``None``
        (the default, for exposures hours apart) gives the maximum.

    Returns
    -------
    int
        Number of (patient, cue) updates done.

    Notes
    -----
    Any exposure whose |prediction error| exceeds ``destabilization_pe_threshold`` destabilises
    the inferred cause(s); without a drug they restabilise on their own.
    """
    p = params or MemoryParams()
    shp = state.shape
    mask = _cue_array(cues, shp, "cues", np.bool_)
    rew = _cue_array(rewarded, shp, "rewarded", np.bool_)
    ctx = _contexts(context, shp[0], p)
    occ = _patient_vector(occupancy, shp[0], "occupancy")
    if np.any((occ < 0) | (occ > 1)):
        raise InputError("occupancy must lie in [0, 1]")
    if gap_to_next_min is None:
        iters = p.max_em_iterations
    else:
        if not gap_to_next_min >= 0:
            raise InputError(f"gap_to_next_min = {gap_to_next_min!r}: must be >= 0")
        iters = int(min(p.max_em_iterations,
                        max(1, round(gap_to_next_min / p.em_iteration_period_min))))
    s = state
    kernel = (_expose_kernel if 0.5 / p.us_variance <= _EXP_POLY_MAX_ABS
              else _expose_kernel_reference)
    return int(kernel(
        mask, rew, occ, ctx, s.time_h,
        s.w0, s.n0, s.tmean0_h, s.tlast0_h, s.ctx0, s.lab0,
        s.w1, s.n1, s.tmean1_h, s.tlast1_h, s.ctx1, s.lab1, s.lab_time_h,
        p.new_cause_concentration_per_h, p.kernel_offset_h, p.kernel_exponent,
        p.feature_variance, 0.5 * (1.0 + p.n_context_features), p.learning_rate, p.us_variance,
        iters, p.destabilization_pe_threshold, p.destabilization_block_occupancy50,
        p.destabilization_block_hill, p.lability_tau_min / 60.0, p.lability_prior_boost_per_h,
        *_exp_table(p)))


def retrieve(
    state: PopulationState,
    cues: ArrayLike,
    prediction_error: ArrayLike,
    occupancy_during_retrieval: float | ArrayLike = 0.0,
    params: MemoryParams | None = None,
    *,
    context: int | ArrayLike = 0,
) -> int:
    """A retrieval (reactivation) session for the masked cues, in place.

    Parameters
    ----------
    cues
        (N, C) bool: the retrieved cue classes.
    prediction_error
        bool (N,) or (N, C): True = the expected drink is withheld (omission prediction
        error, Das 2019 procedure), False = the drink is given as expected (no prediction
        error, Sevenster 2013). Destabilisation then follows from the model's own
        prediction error (needs an established memory).
    occupancy_during_retrieval
        (N,) NMDA occupancy during the retrieval; blocks destabilisation
        (Ben Mamou 2006; Milton 2013).
    """
    pe = np.asarray(prediction_error, dtype=np.bool_)
    return expose(state, cues, ~pe, params, context=context,
                  occupancy=occupancy_during_retrieval)


def restabilise_weighted(
    state: PopulationState,
    weighted_occupancy_min: ArrayLike,
    params: MemoryParams | None = None,
    *,
    cues: ArrayLike | None = None,
) -> None:
    """Apply a drug's effect on restabilisation, in place.

    Parameters
    ----------
    weighted_occupancy_min
        (N,) occupancy integral weighted by ``exp(-(t - now)/tau)`` from the state's current
        clock onward (occupancy x min), e.g. from
        :func:`reconsolidate.memory.window.window_weighted_occupancy_min` with
        ``retrieval_min`` = the clock time of the call (normally the retrieval just done).
    cues
        Optional (N, C) bool restricting the effect (default: every labile cue).

    Each labile cause loses ``D = D_max (1 - exp(-L I_w / I_scale))`` of its reward prediction
    and of its trial count (its hold on later inference).
    """
    p = params or MemoryParams()
    shp = state.shape
    iw = _patient_vector(weighted_occupancy_min, shp[0], "weighted_occupancy_min")
    if np.any(iw < 0) or np.any(~np.isfinite(iw)):
        raise InputError("occupancy integral must be finite and >= 0")
    sel = None if cues is None else _cue_array(cues, shp, "cues", np.bool_)
    # lability left at the current clock (it decays from its onset at lab_time_h)
    decay = np.exp(-(state.time_h[:, None] - state.lab_time_h) / (p.lability_tau_min / 60.0))
    for lab, w, n in ((state.lab0, state.w0, state.n0), (state.lab1, state.w1, state.n1)):
        d = damage_fraction(iw[:, None], lab * decay, p)
        if sel is not None:
            d = np.where(sel, d, 0.0)
        keep = 1.0 - d
        w *= keep
        n *= keep


def restabilise(
    state: PopulationState,
    occupancy_integral_min: ArrayLike,
    *,
    window_start_min: float | ArrayLike,
    window_stop_min: float | ArrayLike,
    params: MemoryParams | None = None,
    cues: ArrayLike | None = None,
) -> None:
    """Apply an NMDA occupancy integral over a window given relative to the retrieval.

    Parameters
    ----------
    occupancy_integral_min
        (N,) plain occupancy integral over the window (occupancy x min), e.g.
        ``NMDAExposure.occupancy_integral_min`` from the pharmacology engine.
    window_start_min, window_stop_min
        Window bounds in minutes after the state's current clock (call it right after
        :func:`retrieve`, so these are minutes after retrieval), scalars or (N,). The integral
        is weighted by the mean lability over the window, exact for constant occupancy: a
        window 6 h after retrieval has weight ~0.0025 of an immediate one.
    """
    p = params or MemoryParams()
    n = state.shape[0]
    weight = window_mean_weight(_patient_vector(window_start_min, n, "window_start_min"),
                                _patient_vector(window_stop_min, n, "window_stop_min"),
                                p.lability_tau_min)
    integ = _patient_vector(occupancy_integral_min, n, "occupancy_integral_min")
    restabilise_weighted(state, integ * weight, p, cues=cues)


def us_alone(state: PopulationState, patients: ArrayLike) -> None:
    """Unsignalled alcohol (a priming drink without the cue): reinstatement, in place.

    The reward is attributed to the acquisition cause of every cue class (the cause that
    predicts reward), refreshing its recency so that its prior rises again; the cue weights do
    not change (no cue present). ``patients`` is (N,) bool.
    """
    n = state.shape[0]
    m = _patient_vector(patients, n, "patients").astype(np.bool_)
    t = state.time_h[:, None]
    # attribution: the reward goes to the cause with the higher reward likelihood
    to0 = state.w0 >= state.w1
    sel = m[:, None] & to0 & (state.n0 > 0)
    k = state.n0
    state.tmean0_h[...] = np.where(sel, (state.tmean0_h * k + t) / (k + 1.0), state.tmean0_h)
    state.tlast0_h[...] = np.where(sel, t, state.tlast0_h)
    state.n0[...] = np.where(sel, k + 1.0, k)
