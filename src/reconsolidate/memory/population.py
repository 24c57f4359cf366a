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

Implementation (performance; the model is unchanged):

- Every exposure -- :func:`expose` (lab paradigms, retrieval sessions) and the fused daily-life
  kernel of :mod:`reconsolidate.behavior.days` -- runs the same three passes over a *lane
  buffer*: the exposed (patient, cue) pairs are gathered into the columns of a flat 29 x 128
  buffer (rows: the 13 state fields, then the pair's inputs and intermediate results), updated
  there by branch-free loops that the compiler vectorises with pairs as SIMD lanes
  (:func:`_lane_posterior`: prior x likelihood and read-out; :func:`_lane_em`;
  :func:`_lane_assign`: MAP assignment and lability by selects), and scattered back.
- The per-pair exponentials are polynomial (:func:`_exp_poly`, :func:`_exp_poly_wide`;
  relative error < 1e-12) and so is erfc (:func:`_erfc_nonneg`), instead of libm or the exp
  table (2e-7) of the reference kernel, so that the loops vectorise; likelihoods are weighted
  relative to the existing causes' largest exponent (:func:`_pair_weights`), so that none
  underflows however small ``feature_variance``; the defaults (kernel exponent 1, two contexts)
  share divisions and avoid ``pow``.
- The passes always run over whole groups of ``_LANE_GROUP`` lanes, so that a pair's result
  does not depend on its lane (vector body or remainder loop): bit-identical whatever the
  chunking. They are inlined into each kernel (numba ``inline="always"``): as separately
  compiled functions, a kernel compiled fresh and the same kernel loaded from numba's cache
  rounded differently in the last bit (the first got its callees inlined and optimised in
  place by LLVM, the second not), so worker processes loading the cache disagreed with the
  process that compiled it (the trial's bit-identity test failed on a fresh clone).
- ``_expose_kernel_reference`` is the original one-pass kernel, kept as the oracle of the fast
  path (``tests/memory/test_memory_population_fast.py``: weights within 1e-6, counts, times and
  contexts equal) and used for ``us_variance < 1/16`` (outside the polynomial's range).
- The 13 (N, C) fields of a state are views into one memory block, each at a different offset
  within a 4 KiB page (:func:`_alloc_state`), so that a kernel streaming all of them does not
  suffer cache-set aliasing; each field is still an ordinary C-contiguous float64 array, and
  ``state._block`` is the same memory as one (13, L) array (the kernels' single argument).

Measured (``python benchmarks/memory_population.py``, 10^6 x 6, one thread, 2-core VM with
AVX-512): about 33 M updates/s on a full pass (the previous per-pair kernel: 23 M/s; the
original kernel, timed interleaved: 15 M/s), 12 M/s counting only the exposed pairs of a 10%
mask; :func:`response` 32 M pairs/s. The goal of 100 M/s is NOT met, and float64 cannot meet
it. A full pass's ~30 ns per pair are two halves that the benchmark prints apart: gathering
the 13 fields into the lane buffer and writing them back, with no arithmetic, ~17 ns (a
~60 M/s ceiling for this design); the arithmetic alone, on pairs resident in the L1 cache (no
memory traffic at all), ~15 ns (a ~65 M/s ceiling whatever the layout: four polynomial
exponentials, six divisions and two square roots for the posterior, two exponentials and a
division in each of the three EM iterations, then the assignment, 8 lanes per AVX-512
instruction; merging the posterior's divisions into two gained 3%). Streaming the fields in
place costs only ~4 ns per pair, but the assignment pass does not vectorise when it reads
and writes the state's own 13 arrays (measured ~19 ns alone: the compiler cannot prove them
disjoint), and the fields cannot be laid out as lane tiles without giving up their (N, C)
views. A float32
version of the same passes (a throw-away experiment, not shipped: literals cast, exps
unchanged in form) ran their arithmetic in ~10 ns per pair against ~20 ns for float64 in the
same harness, and its states agreed with float64 to ~1e-5 after an exposure; so even float32
arithmetic alone sits at the 100 M/s line, before any traffic.
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

    def __getstate__(self) -> dict:
        # pickling (and deepcopy) turn the field views into separate arrays: leave the block
        # out; the kernels rebuild it on first use (_block_of)
        state = dict(self.__dict__)
        state.pop("_block", None)
        return state

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
#: Row of each field in the state's (13, L) block (``PopulationState._block``).
(_F_W0, _F_N0, _F_TM0, _F_TL0, _F_C0, _F_LAB0, _F_W1, _F_N1, _F_TM1, _F_TL1, _F_C1, _F_LAB1,
 _F_LABT) = range(len(_CUE_FIELDS))
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
    # the same memory as one (13, per / 8) float64 array: the kernels take this one argument
    rows = block[base: base + len(_CUE_FIELDS) * per].view(np.float64).reshape(
        len(_CUE_FIELDS), per // 8)
    views = {name: rows[k, : n * c].reshape(n, c) for k, name in enumerate(_CUE_FIELDS)}
    state = PopulationState(time_h=np.zeros(n), **views)
    state._block = rows
    return state


def _block_of(state: PopulationState) -> NDArray[np.float64]:
    """The state's (13, L) block, the kernels' single argument, after checking that every
    field is still its view.

    A state whose fields were rebound, that was unpickled or deep-copied (views become separate
    arrays), or that was built directly, is first moved into a fresh block, keeping its
    values, so that the kernels never write to memory the fields no longer show.
    """
    blk = getattr(state, "_block", None)
    n, c = state.shape
    if blk is not None and all(
        getattr(state, name).ctypes.data == blk[k].ctypes.data
        and getattr(state, name).shape == (n, c)
        and getattr(state, name).strides == (8 * c, 8)
        for k, name in enumerate(_CUE_FIELDS)
    ):
        return blk
    fresh = _alloc_state(n, c)
    for name in _CUE_FIELDS:
        np.copyto(getattr(fresh, name), getattr(state, name))
        setattr(state, name, getattr(fresh, name))
    state._block = fresh._block
    return fresh._block


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
        clocks start at 0 and the acquisition trials lie in the past. ASSUMPTION: 24 h by
        default, a day-old memory: older than the consolidation window
        (``consolidation_window_tau_multiple * lability_tau_min``, 3 h at the default
        parameters), so that an exposure right away destabilises it only if it carries a
        prediction error.
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
    if not 1 <= c <= _LANE_PAIRS:
        raise InputError(f"{c} cue classes: need 1 to {_LANE_PAIRS} (one patient's pairs must "
                         "fit in a lane buffer of the expose kernel)")
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


def _consolidating_h(p: MemoryParams) -> float:
    """Hours a latent cause counts as still consolidating (labile whenever inferred, without
    a prediction error): ``consolidation_window_tau_multiple * lability_tau_min``, in hours."""
    return p.consolidation_window_tau_multiple * (p.lability_tau_min / 60.0)


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


# The fast path. Every exposure -- :func:`expose` (lab paradigms, retrieval sessions) and the
# fused daily-life kernel of :mod:`reconsolidate.behavior.days` -- runs the same three passes
# over a "lane buffer": the state of the exposed (patient, cue) pairs is gathered into the
# columns of a small flat buffer (rows = fields), updated there by branch-free loops that the
# compiler vectorises (pairs as SIMD lanes), and scattered back. :func:`response` runs the same
# posterior and response passes.

#: Largest |x| for which :func:`_exp_poly` is accurate (E-step arguments lie in
#: [-0.5/us_variance, 0.5/us_variance]).
_EXP_POLY_MAX_ABS = 8.0
#: Range to which :func:`_exp_poly_wide` clamps its argument.
_EXP_WIDE_MAX_ABS = 64.0

#: Pairs per lane buffer: 29 rows x 128 pairs x 8 B = 29 KiB, inside a 32 KiB L1 data cache.
_LANE_PAIRS = 128
# The lane buffer is flat: row r occupies [r * _LANE_PAIRS, (r + 1) * _LANE_PAIRS). Rows 0-12
# are the 13 state fields in ``_CUE_FIELDS`` order, then each pair's inputs and intermediate
# results. Compile-time row offsets let the compiler prove that rows never overlap, so that the
# loops vectorise without run-time alias checks (with ~25 arrays it gives those up).
(_L_W0, _L_N0, _L_TM0, _L_TL0, _L_C0, _L_LAB0, _L_W1, _L_N1, _L_TM1, _L_TL1, _L_C1, _L_LAB1,
 _L_LABT, _L_T, _L_CTX, _L_FREE, _L_MASK, _L_R, _L_V, _L_CR, _L_Q0, _L_Q1, _L_QN, _L_A0, _L_A1,
 _L_AN, _L_P0, _L_P1, _L_PN) = (r * _LANE_PAIRS for r in range(29))
_L_ROWS = 29
_N_STATE_ROWS = len(_CUE_FIELDS)
#: The lane passes always run over a multiple of this many lanes (the lanes past the gathered
#: ones hold stale but finite values and are never scattered). Why: a compiled loop runs its
#: vector body on most lanes and a scalar remainder loop on the last few, and the two may round
#: differently (the compiler may fuse multiply-adds differently); a pair's result would then
#: depend on its lane position, i.e. on which other patients share the buffer (chunking). With
#: whole groups of 64 no lane reaches a remainder loop (any vector width x unroll factor the
#: compiler picks here divides 64: the largest loop step seen is 32). A precaution: on this
#: machine the two paths agreed in every test, and the chunk dependence once seen had another
#: cause (fresh vs cached compilation, see the module docstring).
_LANE_GROUP = 64


@numba.njit(cache=True, inline="always")
def _lanes_padded(m: int) -> int:
    """Number of lanes the passes run over when ``m`` are gathered (see ``_LANE_GROUP``)."""
    return (m + _LANE_GROUP - 1) // _LANE_GROUP * _LANE_GROUP


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def _exp_taylor9(y: float) -> float:
    """exp(y) for |y| <= 1/8 by its Taylor polynomial of degree 9 (truncation y^10/10!
    < 3e-16)."""
    return 1.0 + y * (1.0 + y * (0.5 + y * (1.0 / 6.0 + y * (1.0 / 24.0 + y * (
        1.0 / 120.0 + y * (1.0 / 720.0 + y * (1.0 / 5040.0 + y * (
            1.0 / 40320.0 + y * (1.0 / 362880.0)))))))))


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def _exp_poly(x: float) -> float:
    """exp(x) for |x| <= 8 by pure arithmetic (so that loops using it vectorise):
    ``(exp(x / 64))^64`` by :func:`_exp_taylor9` and six squarings; relative error < 3e-14 on
    [-8, 8] (tests/memory/test_memory_population_fast.py)."""
    p = _exp_taylor9(x * 0.015625)
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    return p * p


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def _exp_poly_wide(x: float) -> float:
    """exp(x) by pure arithmetic for x clamped to [-64, 64] (below -64 it gives exp(-64)
    < 1.7e-28 instead of less): ``(exp(x / 512))^512`` by :func:`_exp_taylor9` and nine
    squarings; relative error < 1e-12 on [-64, 64] (tests)."""
    p = _exp_taylor9(min(max(x, -_EXP_WIDE_MAX_ABS), _EXP_WIDE_MAX_ABS) * (1.0 / 512.0))
    for _ in range(9):
        p = p * p
    return p


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def _new_cause_terms(alpha: float, sx: float, half_d: float) -> tuple[float, float]:
    """``(factor, exponent)`` of a new cause's prior x feature likelihood, ``factor x
    exp(exponent)`` (``alpha`` x the density of (cue 1, context) under zero means): constants
    of the parameters."""
    v = 1.0 + sx
    return alpha * v ** (-half_d), -1.0 / v


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def _cause_terms(k, tm, tl, same_ctx, boost, t, off, g, sx, half_d):
    """``(factor, exponent)`` of the prior x feature likelihood of a cause with ``k > 0``
    trials: the weight is ``factor x exp(exponent)``. Branch-free.

    Prior: the power-law CRP kernel ``(k - 1) K(t - tmean) + K(t - tlast)`` (``min(k, 1)``
    for the last trial, so a cause weakened below one trial fades smoothly) plus ``boost``
    (the lability boost); likelihood: the predictive density of (cue = 1, one-hot context),
    without the constant (2 pi)^(-D/2) that cancels in every posterior, D = 1 + contexts; its
    exponent lies in [-1/feature_variance, 0]. ``g == 1`` and ``half_d == 1.5`` (the defaults)
    share one division between the two prior terms and one between ``1/(k + sx)`` and
    ``1/v``; other values use ``pow``.
    """
    d_mean = max(t - tm + off, off)
    d_last = max(t - tl + off, off)
    rest = max(k - 1.0, 0.0)
    first = min(k, 1.0)
    if g == 1.0:
        prior = (rest * d_last + first * d_mean) / (d_mean * d_last)
    else:
        prior = rest * d_mean ** (-g) + first * d_last ** (-g)
    ks = k + sx
    vs = sx * (ks + 1.0)  # v (k + sx), with v = sx / (k + sx) + sx
    rd = 1.0 / (ks * vs)
    mu = k * vs * rd  # k / (k + sx)
    iv = ks * ks * rd  # 1 / v
    om = (1.0 - mu) * (1.0 - mu)  # the cue feature
    q = om + (om if same_ctx else 1.0 + mu * mu)  # + the context features
    scale = iv * math.sqrt(iv) if half_d == 1.5 else iv ** half_d
    return (prior + boost) * scale, -0.5 * q * iv


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def _pair_weights(k0, tm0, tl0, c0, lab0, labt, k1, tm1, tl1, c1, t, ctx, off, g, sx, half_d,
                  beta, inv_tau, f_new, x_new):
    """Posterior weights (prior x likelihood) of the acquisition cause, the extinction cause
    (0 for a cause without trials) and a new cause of one pair at time ``t`` in context
    ``ctx``, all divided by the same factor ``exp(x_ref)``: ``x_ref`` is the larger likelihood
    exponent of the existing causes (the new cause's if none exists).

    Why: the exponents reach -1/feature_variance. Relative to the existing causes' own
    maximum, the two weights that the read-out compares keep their ratio however small
    ``feature_variance`` is (as the reference model's log-space sums), instead of both
    vanishing into the exp's clamp; a difference beyond +-64 (clamped) only ever concerns a
    term that is negligible, by a factor e^64, next to another one in the same sum. The
    acquisition cause's prior carries the lability boost ``lab0 beta exp(-(t - labt)/tau)``
    (a destabilised memory stays the active one); ``(f_new, x_new)`` are
    :func:`_new_cause_terms`."""
    boost = lab0 * beta * _exp_poly_wide(-(t - labt) * inv_tau)
    f0, x0 = _cause_terms(k0, tm0, tl0, c0 == ctx, boost, t, off, g, sx, half_d)
    f1, x1 = _cause_terms(k1, tm1, tl1, c1 == ctx, 0.0, t, off, g, sx, half_d)
    none = -1e300  # "no such cause" (no infinities: fastmath assumes there are none)
    x_ref = max(x0 if k0 > 0.0 else none, x1 if k1 > 0.0 else none)
    x_ref = x_ref if (k0 > 0.0) | (k1 > 0.0) else x_new
    q0 = f0 * _exp_poly_wide(x0 - x_ref) if k0 > 0.0 else 0.0
    q1 = f1 * _exp_poly_wide(x1 - x_ref) if k1 > 0.0 else 0.0
    return q0, q1, f_new * _exp_poly_wide(x_new - x_ref)


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def _readout(q0, q1, w0, w1):
    """Posterior-weighted reward prediction of the existing memories (0 if none): the value
    the conditioned response reads and the prediction error is measured against."""
    qs = q0 + q1
    return (q0 * w0 + q1 * w1) / (qs if qs > 0.0 else 1.0)


#: Chebyshev coefficients (in ``u = 2 t - 1``, lowest degree first) of ``g(t) = log(erfcx(a) / t)``
#: with ``t = 1 / (1 + a / 2)``: ``erfc(a) = t exp(-a^2 + g(t))`` for a >= 0. Made by
#: ``python tools/fit_erfc.py`` (least squares on 200 Chebyshev nodes against scipy's erfcx);
#: fitted ``g`` within 1e-14; :func:`_erfc_nonneg` within a relative 2e-13 for a <= 7.9 (tests),
#: beyond which its exp is clamped (absolute error < 3e-28).
_ERFC_CHEB = np.array([
    -0.6513268598908547,
    0.6419697923564903,
    0.019476473204185836,
    -0.009561514786808466,
    -0.0009465953444819977,
    0.000366839497853069,
    4.25233248070668e-05,
    -2.027857811237347e-05,
    -1.6242900047348087e-06,
    1.3036558355400177e-06,
    1.5626441708743012e-08,
    -8.52380957990889e-08,
    6.529054342811888e-09,
    5.05934355963119e-09,
    -9.913640962496423e-10,
    -2.273651588772114e-10,
    9.646814150044133e-11,
    2.3939923994465876e-12,
    -6.886232282245502e-12,
    8.943340981853875e-13,
    3.1291191093254794e-13,
    -1.126273956690607e-13,
    2.902638757905067e-16,
])


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def _erfc_nonneg(a):
    """erfc(a) for a >= 0 by pure arithmetic (vectorisable; libm's erfc is a branchy call):
    Clenshaw's recurrence for ``g`` and :func:`_exp_poly_wide` (whose clamp makes erfc(a) for
    a above about 7.9, where ``g - a^2 < -64``, about 1e-28 instead of smaller)."""
    t = 1.0 / (1.0 + 0.5 * a)
    u = 2.0 * t - 1.0
    b1 = 0.0
    b2 = 0.0
    for k in range(_ERFC_CHEB.size - 1, 0, -1):
        b0 = 2.0 * u * b1 - b2 + _ERFC_CHEB[k]
        b2 = b1
        b1 = b0
    g = u * b1 - b2 + _ERFC_CHEB[0]
    return t * _exp_poly_wide(g - a * a)


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def _cr(v, theta, cr_scale):
    """Conditioned response ``Phi((V - theta) / lambda) = erfc(-y) / 2``,
    ``y = (V - theta) cr_scale``, ``cr_scale = 1 / (lambda sqrt 2)``; branch-free."""
    y = (v - theta) * cr_scale
    e = 0.5 * _erfc_nonneg(abs(y))
    return 1.0 - e if y > 0.0 else e


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


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy",
            boundscheck=False)
def _lane_scatter(b, m, blk, idx):
    """Write the state rows of lanes ``0..m-1`` back to their pairs ``idx[j]`` of ``blk``."""
    for j in range(m):
        k = idx[j]
        for f in range(_N_STATE_ROWS):
            blk[f, k] = b[f * _LANE_PAIRS + j]


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy",
            boundscheck=False)
def _lane_seed(b, j, q0, q1, qn):
    """Store lane ``j``'s read-out and normalised posterior, and seed its EM rows."""
    w0 = b[_L_W0 + j]
    w1 = b[_L_W1 + j]
    b[_L_V + j] = _readout(q0, q1, w0, w1)
    rs = 1.0 / (q0 + q1 + qn)
    q0 *= rs
    q1 *= rs
    qn *= rs
    b[_L_Q0 + j] = q0
    b[_L_Q1 + j] = q1
    b[_L_QN + j] = qn
    b[_L_A0 + j] = w0
    b[_L_A1 + j] = w1
    b[_L_AN + j] = 0.0
    b[_L_P0 + j] = q0
    b[_L_P1 + j] = q1
    b[_L_PN + j] = qn


def _general_shape(p: MemoryParams) -> float | None:
    """The kernels' ``general`` argument (see :func:`_lane_posterior`): None for the default
    kernel exponent (1) and number of context features (2), 1.0 otherwise."""
    return None if p.kernel_exponent == 1.0 and p.n_context_features == 2 else 1.0


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy",
            boundscheck=False)
def _lane_posterior(b, m, off, g, sx, half_d, f_new, x_new, beta, inv_tau):
    """Posterior (prior x likelihood, normalised) of (acquisition, extinction, new cause) and
    the read-out ``V`` for lanes ``0..m-1``; seeds the EM rows.

    The kernels call it with the defaults (kernel exponent 1, two contexts) spelled out as
    constants when their ``general`` argument (:func:`_general_shape`) is None: the compiler
    then drops the ``pow`` branches and vectorises the loop (a branch on a run-time parameter
    inside the loop stops that: measured 74 vs 6.5 ns per pair). The branch on ``general``
    stands in each kernel itself, where numba prunes it by the argument's type when it
    compiles the kernel (inside an inlined helper it does not): a kernel compiled for the
    defaults then does not contain the general loop at all (compiling both into the three
    kernels made a first run take ~40 s instead of ~30)."""
    for j in range(m):
        q0, q1, qn = _pair_weights(b[_L_N0 + j], b[_L_TM0 + j], b[_L_TL0 + j], b[_L_C0 + j],
                                   b[_L_LAB0 + j], b[_L_LABT + j], b[_L_N1 + j],
                                   b[_L_TM1 + j], b[_L_TL1 + j], b[_L_C1 + j], b[_L_T + j],
                                   b[_L_CTX + j], off, g, sx, half_d, beta, inv_tau, f_new,
                                   x_new)
        _lane_seed(b, j, q0, q1, qn)


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy",
            boundscheck=False)
def _lane_cr(b, m, theta, cr_scale):
    """Conditioned response (:func:`_cr`) of lanes ``0..m-1`` from their read-out, into
    ``_L_CR``."""
    for j in range(m):
        b[_L_CR + j] = _cr(b[_L_V + j], theta, cr_scale)


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy",
            boundscheck=False)
def _lane_em(b, m, n_iter, hsr, eta):
    """``n_iter`` EM iterations (:func:`_em_step`) for lanes ``0..m-1``, given the ``_L_R``
    row (reward: 1 alcohol, 0 none)."""
    for _ in range(n_iter):
        for j in range(m):
            a0, a1, an, p0, p1, pn = _em_step(b[_L_R + j], b[_L_Q0 + j], b[_L_Q1 + j],
                                              b[_L_QN + j], b[_L_A0 + j], b[_L_A1 + j],
                                              b[_L_AN + j], hsr, eta)
            b[_L_A0 + j] = a0
            b[_L_A1 + j] = a1
            b[_L_AN + j] = an
            b[_L_P0 + j] = p0
            b[_L_P1 + j] = p1
            b[_L_PN + j] = pn


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy",
            boundscheck=False)
def _lane_assign(b, m, pe_thr, consolidating_h):
    """After EM, for the lanes whose ``_L_MASK`` row is 1 (the others keep their state): the
    hard MAP assignment (counts, times, contexts), the weights and the lability left by the
    trial (replacing any earlier one, as LC-RW's PSI term acts on the posterior of the
    injection trial), at time ``t``.

    A consolidated cause (mean trial time ``consolidating_h`` or more hours ago,
    ``consolidation_window_tau_multiple`` x tau) is destabilised only by a prediction error
    (|r - V| >= ``pe_thr``); a cause still consolidating is labile whenever it is inferred;
    NMDA blockade at the trial (``_L_FREE`` < 1) prevents both. Selects, no branches, and every
    value loaded unconditionally first (a load inside a conditional expression keeps the loop
    from vectorising).
    """
    for j in range(m):
        on = b[_L_MASK + j] > 0.0
        t = b[_L_T + j]
        ctx = b[_L_CTX + j]
        k0 = b[_L_N0 + j]
        k1 = b[_L_N1 + j]
        tm0 = b[_L_TM0 + j]
        tm1 = b[_L_TM1 + j]
        tl0 = b[_L_TL0 + j]
        tl1 = b[_L_TL1 + j]
        c0 = b[_L_C0 + j]
        c1 = b[_L_C1 + j]
        w0 = b[_L_W0 + j]
        w1 = b[_L_W1 + j]
        lab0 = b[_L_LAB0 + j]
        lab1 = b[_L_LAB1 + j]
        labt = b[_L_LABT + j]
        a0 = b[_L_A0 + j]
        a1 = b[_L_A1 + j]
        an = b[_L_AN + j]
        p0 = b[_L_P0 + j]
        p1 = b[_L_P1 + j]
        pn = b[_L_PN + j]
        pe = b[_L_R + j] - b[_L_V + j]
        free = b[_L_FREE + j]
        to0 = (k0 > 0.0) & (p0 >= p1) & (p0 >= pn)
        new0 = k0 <= 0.0  # no memory yet: the new cause becomes the acquisition cause
        rest = not (to0 | new0)
        to1 = rest & (k1 > 0.0)
        new1 = rest & (k1 <= 0.0)  # the new cause becomes the extinction cause
        # the one running mean that moves (one division)
        k = k0 if to0 else k1
        tm_moved = ((tm0 if to0 else tm1) * k + t) / (k + 1.0)
        tm0n = tm_moved if to0 else (t if new0 else tm0)
        tm1n = tm_moved if to1 else (t if new1 else tm1)
        k0n = k0 + 1.0 if to0 else (1.0 if new0 else k0)
        k1n = k1 + 1.0 if to1 else (1.0 if new1 else k1)
        w0n = an if new0 else a0
        w1n = a1 if k1 > 0.0 else (an if new1 else w1)
        p0 = pn if new0 else p0
        pn = 0.0 if new0 else pn
        pe_gate = 1.0 if abs(pe) >= pe_thr else 0.0
        g0 = 1.0 if t - tm0n < consolidating_h else pe_gate
        g1 = 1.0 if t - tm1n < consolidating_h else pe_gate
        lab0n = p0 * g0 * free
        lab1n = (p1 + pn) * g1 * free if k1n > 0.0 else 0.0
        # unconditional stores of selects (masked-out lanes keep their values)
        b[_L_W0 + j] = w0n if on else w0
        b[_L_N0 + j] = k0n if on else k0
        b[_L_TM0 + j] = tm0n if on else tm0
        b[_L_TL0 + j] = t if on & (to0 | new0) else tl0
        b[_L_C0 + j] = ctx if on & new0 else c0
        b[_L_LAB0 + j] = lab0n if on else lab0
        b[_L_W1 + j] = w1n if on else w1
        b[_L_N1 + j] = k1n if on else k1
        b[_L_TM1 + j] = tm1n if on else tm1
        b[_L_TL1 + j] = t if on & (to1 | new1) else tl1
        b[_L_C1 + j] = ctx if on & new1 else c1
        b[_L_LAB1 + j] = lab1n if on else lab1
        b[_L_LABT + j] = t if on else labt


@numba.njit(cache=True, inline="always", fastmath=True, error_model="numpy",
            boundscheck=False)
def _lane_update(b, m, n_iter, hsr, eta, pe_thr, consolidating_h):
    """EM and assignment of lanes ``0..m-1`` whose posterior and reward rows are set
    (``consolidating_h``: hours a cause counts as still consolidating, see
    :func:`_lane_assign`)."""
    _lane_em(b, m, n_iter, hsr, eta)
    _lane_assign(b, m, pe_thr, consolidating_h)


@numba.njit(cache=True, nogil=True, fastmath=True, error_model="numpy", boundscheck=False)
def _expose_kernel(mask, reward, occ, ctx_arr, time_h, blk, alpha, off, g, sx, half_d, eta, sr,
                   n_iter, pe_thr, occ50, hill, tau_h, consolidating_h, beta, general):
    """One exposure of the masked (patient, cue) pairs: gather them into lane buffers of
    ``_LANE_PAIRS``, run the lane passes, scatter back. ``blk`` is the state's (13, L) block
    (``PopulationState._block``; pair (i, c) at column ``i * C + c``); ``consolidating_h`` is
    :func:`_consolidating_h`. Returns the number of pairs updated."""
    nn, cc = mask.shape
    f_new, x_new = _new_cause_terms(alpha, sx, half_d)
    occ50h = occ50 ** hill
    inv_tau = 1.0 / tau_h
    b = np.zeros(_L_ROWS * _LANE_PAIRS)
    idx = np.empty(_LANE_PAIRS, np.int64)
    count = 0
    m = 0
    for i in range(nn + 1):
        # flush a full buffer (or the last one)
        if i == nn or m + cc > _LANE_PAIRS:
            if m > 0:
                # the state of the gathered pairs, pair by pair, all 13 fields together: the
                # 13 streams then advance in step, which the hardware prefetchers follow far
                # better than one 1 KiB burst per field (34 vs 22 M updates/s), and better
                # than eight pairs at a time (33 vs 28). Here, after the mask scan, rather than
                # inside it: a sparse pass ran 9 -> 12 M updates/s. Written out (here and in the
                # daily kernel): as an inlined helper taking the arrays it cost ~8%.
                for j in range(m):
                    k = idx[j]
                    for f in range(_N_STATE_ROWS):
                        b[f * _LANE_PAIRS + j] = blk[f, k]
                mp = _lanes_padded(m)
                if general is None:  # pruned by type when compiled (see _lane_posterior)
                    _lane_posterior(b, mp, off, 1.0, sx, 1.5, f_new, x_new, beta, inv_tau)
                else:
                    _lane_posterior(b, mp, off, g, sx, half_d, f_new, x_new, beta, inv_tau)
                _lane_update(b, mp, n_iter, 0.5 / sr, eta, pe_thr, consolidating_h)
                _lane_scatter(b, m, blk, idx)
                count += m
                m = 0
            if i == nn:
                break
        o = occ[i]
        free = 1.0
        if o > 0.0:
            oh = o ** hill
            free = 1.0 - oh / (oh + occ50h)
        t = time_h[i]
        ctx = ctx_arr[i]
        for c in range(cc):
            if mask[i, c]:
                k = i * cc + c
                idx[m] = k
                b[_L_T + m] = t
                b[_L_CTX + m] = ctx
                b[_L_FREE + m] = free
                b[_L_MASK + m] = 1.0
                b[_L_R + m] = 1.0 if reward[i, c] else 0.0
                m += 1
    return count


@numba.njit(cache=True, nogil=True, fastmath=True, error_model="numpy", boundscheck=False)
def _response_kernel(time_h, ctx_arr, blk, alpha, off, g, sx, half_d, theta, cr_noise, tau_h,
                     beta, out, general):
    """Conditioned response of every pair (no learning), block by block through the lane
    passes (:func:`_lane_posterior`, :func:`_lane_cr`): the same arithmetic as exposures."""
    nn, cc = out.shape
    inv_tau = 1.0 / tau_h
    cr_scale = 1.0 / (cr_noise * math.sqrt(2.0))
    f_new, x_new = _new_cause_terms(alpha, sx, half_d)
    per_block = _LANE_PAIRS // cc
    b = np.zeros(_L_ROWS * _LANE_PAIRS)
    for i0 in range(0, nn, per_block):
        nb = min(per_block, nn - i0)
        m = nb * cc
        base = i0 * cc
        # pair by pair, all fields together (see _expose_kernel)
        for j in range(m):
            for f in range(_N_STATE_ROWS):
                b[f * _LANE_PAIRS + j] = blk[f, base + j]
        j = 0
        for i in range(i0, i0 + nb):
            for _ in range(cc):
                b[_L_T + j] = time_h[i]
                b[_L_CTX + j] = ctx_arr[i]
                j += 1
        mp = _lanes_padded(m)
        if general is None:  # pruned by type when compiled (see _lane_posterior)
            _lane_posterior(b, mp, off, 1.0, sx, 1.5, f_new, x_new, beta, inv_tau)
        else:
            _lane_posterior(b, mp, off, g, sx, half_d, f_new, x_new, beta, inv_tau)
        _lane_cr(b, mp, theta, cr_scale)
        j = 0
        for i in range(i0, i0 + nb):
            for c in range(cc):
                out[i, c] = b[_L_CR + j]
                j += 1


@numba.njit(cache=True, fastmath=True)
def _expose_kernel_reference(mask, reward, occ, ctx_arr, time_h,
                   w0, n0, tm0, tl0, c0, lab0, w1, n1, tm1, tl1, c1, lab1, labt,
                   alpha, off, g, sx, half_d, eta, sr, n_iter, pe_thr, occ50, hill, tau_h,
                   consolidating_h, beta, tab, lo, inv):
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
            # consolidating_h or more hours ago) is destabilised only by a prediction error; a
            # cause still consolidating is labile whenever it is inferred. NMDA blockade at the
            # trial prevents both.
            free = 1.0 - block
            pe_gate = 1.0 if abs(pe) >= pe_thr else 0.0
            g0 = 1.0 if t - tm0[i, c] < consolidating_h else pe_gate
            g1 = 1.0 if t - tm1[i, c] < consolidating_h else pe_gate
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
    _response_kernel(state.time_h, ctx, _block_of(state), p.new_cause_concentration_per_h,
                     p.kernel_offset_h, p.kernel_exponent, p.feature_variance,
                     0.5 * (1.0 + p.n_context_features), p.cr_threshold, p.cr_noise,
                     p.lability_tau_min / 60.0, p.lability_prior_boost_per_h, out,
                     _general_shape(p))
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
    if 0.5 / p.us_variance > _EXP_POLY_MAX_ABS:
        # the E-step's polynomial exp is accurate only there: the reference kernel instead
        return int(_expose_kernel_reference(
            mask, rew.astype(np.float64), occ, ctx, s.time_h,
            s.w0, s.n0, s.tmean0_h, s.tlast0_h, s.ctx0, s.lab0,
            s.w1, s.n1, s.tmean1_h, s.tlast1_h, s.ctx1, s.lab1, s.lab_time_h,
            p.new_cause_concentration_per_h, p.kernel_offset_h, p.kernel_exponent,
            p.feature_variance, 0.5 * (1.0 + p.n_context_features), p.learning_rate,
            p.us_variance, iters, p.destabilization_pe_threshold,
            p.destabilization_block_occupancy50, p.destabilization_block_hill,
            p.lability_tau_min / 60.0, _consolidating_h(p), p.lability_prior_boost_per_h,
            *_exp_table(p)))
    return int(_expose_kernel(
        mask, rew, occ, ctx, s.time_h, _block_of(s),
        p.new_cause_concentration_per_h, p.kernel_offset_h, p.kernel_exponent,
        p.feature_variance, 0.5 * (1.0 + p.n_context_features), p.learning_rate, p.us_variance,
        iters, p.destabilization_pe_threshold, p.destabilization_block_occupancy50,
        p.destabilization_block_hill, p.lability_tau_min / 60.0, _consolidating_h(p),
        p.lability_prior_boost_per_h, _general_shape(p)))


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
