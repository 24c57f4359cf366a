"""Oracle for the fast expose kernel (lane buffers, :func:`pop.expose`): the original kernel
(``_expose_kernel_reference``).

The fast kernel reorganises the computation (pairs gathered into SIMD lanes, selects instead
of branches, shared divisions, polynomial exps) without changing the model. Differences come
only from rounding and from the exps: polynomial (relative error < 1e-12) instead of the
reference's exp table (< 2e-7), so weights agree to 1e-6 and counts, times and context ids
exactly (the hard MAP assignment would only flip on a tie within ~1e-7, which these fixed-seed
histories do not contain).
"""

from __future__ import annotations

import math
from dataclasses import fields

import numpy as np
import pytest

from reconsolidate.memory import population as pop
from reconsolidate.memory.params import MemoryParams


def _run(kernel, s, mask, rew, occ, ctx, p, iters):
    return kernel(
        mask, rew, occ, ctx, s.time_h,
        s.w0, s.n0, s.tmean0_h, s.tlast0_h, s.ctx0, s.lab0,
        s.w1, s.n1, s.tmean1_h, s.tlast1_h, s.ctx1, s.lab1, s.lab_time_h,
        p.new_cause_concentration_per_h, p.kernel_offset_h, p.kernel_exponent,
        p.feature_variance, 0.5 * (1.0 + p.n_context_features), p.learning_rate, p.us_variance,
        iters, p.destabilization_pe_threshold, p.destabilization_block_occupancy50,
        p.destabilization_block_hill, p.lability_tau_min / 60.0, pop._consolidating_h(p),
        p.lability_prior_boost_per_h, *pop._exp_table(p))


@pytest.mark.parametrize("p", [MemoryParams(), MemoryParams(n_context_features=1),
                               MemoryParams(kernel_exponent=0.7, us_variance=0.2)])
@pytest.mark.parametrize("seed", [0, 1])
def test_fast_kernel_matches_original_kernel(p, seed):
    rng = np.random.default_rng(seed)
    n, c = 700, 4  # 700 patients = 22 lane buffers of 32 (plus a partial one)
    acq = rng.uniform(0, 1, (n, c))
    fast = pop.new_state(acq, p, memory_age_h=rng.uniform(0, 200, n))
    fast.n0[rng.random((n, c)) < 0.1] = 0.0  # some naive pairs (new cause -> acquisition)
    slow = fast.copy()
    for step in range(25):
        dt = rng.uniform(0.01, 48.0, n)
        pop.advance(fast, dt)
        pop.advance(slow, dt)
        mask = rng.random((n, c)) < (0.3 if step % 2 else 0.9)
        rew = rng.random((n, c)) < 0.4
        occ = np.where(rng.random(n) < 0.3, rng.uniform(0, 1, n), 0.0)
        ctx = rng.integers(0, p.n_context_features, n).astype(np.float64)
        iters = int(rng.integers(1, p.max_em_iterations + 1))
        a = pop.expose(fast, mask, rew, p, context=ctx, occupancy=occ,
                       gap_to_next_min=iters * p.em_iteration_period_min)
        b = _run(pop._expose_kernel_reference, slow, mask, rew.astype(np.float64), occ, ctx, p,
                 iters)
        assert a == b == mask.sum()
    assert np.any(slow.n1 > 0) and np.any(slow.lab0 > 0)  # both causes and lability exercised
    for f in fields(slow):
        x, y = getattr(fast, f.name), getattr(slow, f.name)
        if f.name in ("n0", "n1", "tmean0_h", "tlast0_h", "tmean1_h", "tlast1_h", "ctx0",
                      "ctx1", "time_h", "lab_time_h"):
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12, err_msg=f.name)
        else:
            np.testing.assert_allclose(x, y, rtol=0, atol=1e-6, err_msg=f.name)
    np.testing.assert_allclose(pop.response(fast, p), pop.response(slow, p), atol=1e-6)


@pytest.mark.parametrize(("name", "max_abs", "rtol"), [
    ("_exp_poly", pop._EXP_POLY_MAX_ABS, 3e-14),
    ("_exp_poly_wide", pop._EXP_WIDE_MAX_ABS, 1e-12),
])
def test_polynomial_exp_accuracy(name, max_abs, rtol):
    f = getattr(pop, name)

    @pop.numba.njit
    def ev(xs):
        out = np.empty_like(xs)
        for i in range(xs.size):
            out[i] = f(xs[i])
        return out

    x = np.linspace(-max_abs, max_abs, 20001)
    assert np.max(np.abs(ev(x) / np.exp(x) - 1.0)) < rtol
    if name == "_exp_poly_wide":
        # clamped outside: finite (callers keep arguments where a clamped value is negligible)
        assert ev(np.array([-1e6]))[0] == ev(np.array([-64.0]))[0] < 1.7e-28


def test_response_matches_reference_formula():
    """:func:`pop.response` (lane arithmetic) against the reference model's posterior helper."""
    p = MemoryParams(kernel_exponent=0.8)
    rng = np.random.default_rng(3)
    n, c = 50, 3
    s = pop.new_state(rng.uniform(0.5, 1, (n, c)), p, memory_age_h=rng.uniform(0, 100, n))
    for _ in range(12):  # mostly unrewarded: extinction memories form
        pop.advance(s, rng.uniform(0.1, 30, n))
        pop.expose(s, rng.random((n, c)) < 0.7, rng.random((n, c)) < 0.1, p)
    ref = np.empty((n, c))
    tab, lo, inv = pop._exp_table(p)
    for i in range(n):
        for k in range(c):
            dec = p.lability_prior_boost_per_h * np.exp(
                -(s.time_h[i] - s.lab_time_h[i, k]) / (p.lability_tau_min / 60.0))
            q0, q1, _ = pop._posterior_prior(
                s.n0[i, k], s.tmean0_h[i, k], s.tlast0_h[i, k], s.ctx0[i, k], s.n1[i, k],
                s.tmean1_h[i, k], s.tlast1_h[i, k], s.ctx1[i, k], s.time_h[i], 0.0,
                p.new_cause_concentration_per_h, p.kernel_offset_h, p.kernel_exponent,
                p.feature_variance, 0.5 * (1.0 + p.n_context_features), s.lab0[i, k] * dec, 0.0,
                tab, lo, inv)
            v = (q0 * s.w0[i, k] + q1 * s.w1[i, k]) / (q0 + q1) if q0 + q1 > 0 else 0.0
            ref[i, k] = 0.5 * math.erfc(-(v - p.cr_threshold) / (p.cr_noise * math.sqrt(2.0)))
    assert np.any(s.n1 > 0)
    np.testing.assert_allclose(pop.response(s, p), ref, rtol=0, atol=1e-6)


def test_small_us_variance_falls_back_to_original_kernel():
    p = MemoryParams(us_variance=0.05)  # 0.5 / 0.05 = 10 > _EXP_POLY_MAX_ABS
    s = pop.new_state(np.full((3, 2), 0.8), p)
    ref = s.copy()
    pop.advance(s, 5.0)
    pop.advance(ref, 5.0)
    mask = np.ones((3, 2), bool)
    pop.expose(s, mask, False, p)
    _run(pop._expose_kernel_reference, ref, mask, np.zeros((3, 2)), np.zeros(3), np.zeros(3), p,
         p.max_em_iterations)
    np.testing.assert_array_equal(s.w0, ref.w0)


def test_state_fields_are_separate_staggered_views():
    """The single-block layout keeps every field an independent C-contiguous (N, C) array."""
    s = pop.new_state(np.full((5, 3), 0.5), MemoryParams())
    for st in (s, s.copy()):
        addrs = []
        for name in pop._CUE_FIELDS:
            x = getattr(st, name)
            assert x.shape == (5, 3) and x.dtype == np.float64 and x.flags.c_contiguous
            addrs.append(x.ctypes.data)
        assert len({a % 4096 for a in addrs}) == len(addrs)
        s.w0[0, 0] = 0.25  # writing one field touches no other
        assert s.n0[0, 0] == MemoryParams().acquisition_trials


def test_a_pairs_update_does_not_depend_on_its_lane():
    """Which lane of the expose kernel's buffer a pair lands in depends on the patients before
    it (chunking); its result must not, bit for bit. (The lane passes run whole lane groups so
    that no pair goes through a remainder loop, which could round differently from the vector
    body; chunks of 1 and 7 patients put every pair in the first lanes.)"""
    p = MemoryParams()
    rng = np.random.default_rng(5)
    n, c = 400, 6
    s = pop.new_state(rng.uniform(0, 1, (n, c)), p, memory_age_h=rng.uniform(0, 200, n))
    steps = [(rng.uniform(0.1, 30, n), rng.random((n, c)) < 0.6, rng.random((n, c)) < 0.4,
              np.where(rng.random(n) < 0.3, rng.uniform(0, 1, n), 0.0)) for _ in range(30)]
    full = s.copy()
    for dt, mask, rew, occ in steps:
        pop.advance(full, dt)
        pop.expose(full, mask, rew, p, occupancy=occ)
    for size in (1, 7, 13, 50):
        for start in range(0, n, size):
            sl = slice(start, min(start + size, n))
            sub = pop.new_state(np.zeros((sl.stop - start, c)), p)
            sub.time_h[:] = s.time_h[sl]
            for name in pop._CUE_FIELDS:
                getattr(sub, name)[...] = getattr(s, name)[sl]
            for dt, mask, rew, occ in steps:
                pop.advance(sub, dt[sl])
                pop.expose(sub, mask[sl], rew[sl], p, occupancy=occ[sl])
            for name in pop._CUE_FIELDS:
                assert np.array_equal(getattr(sub, name), getattr(full, name)[sl]), (size, name)


def test_erfc_and_conditioned_response_accuracy():
    from scipy.special import erfc, ndtr

    @pop.numba.njit
    def ev(xs, theta, scale):
        e = np.empty_like(xs)
        cr = np.empty_like(xs)
        for i in range(xs.size):
            e[i] = pop._erfc_nonneg(abs(xs[i]))
            cr[i] = pop._cr(xs[i], theta, scale)
        return e, cr

    a = np.linspace(-26.0, 26.0, 40001)
    e, cr = ev(a, 0.3, 1.0 / (0.2 * math.sqrt(2.0)))
    inside = np.abs(a) <= 7.9  # beyond ~7.95, exp(-a^2 + g) is clamped at exp(-64)
    np.testing.assert_allclose(e[inside], erfc(np.abs(a[inside])), rtol=2e-12, atol=0)
    assert np.all(e[~inside] < 3e-28)
    np.testing.assert_allclose(cr, ndtr((a - 0.3) / 0.2), rtol=0, atol=1e-13)


def test_erfc_coefficients_are_those_of_the_fit_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "tools" / "fit_erfc.py"
    spec = importlib.util.spec_from_file_location("fit_erfc", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    # atol: the last coefficients are ~1e-16 and the least-squares solution's last bits
    # differ between LAPACK builds (3e-16 seen); each coefficient multiplies a Chebyshev
    # polynomial bounded by 1, so 23 x 2e-15 stays far below the fit's 2e-13 relative error
    np.testing.assert_allclose(pop._ERFC_CHEB, mod.fit(), rtol=1e-9, atol=2e-15)


@pytest.mark.parametrize("sx", [1.0, 0.02, 0.005])
def test_read_out_keeps_its_ratio_however_small_the_feature_variance(sx):
    """ABC renewal (acquisition in context 0, extinction in 1, test in 2) with a tiny feature
    variance: both causes' likelihood exponents are about -1/sx, far below the exps' clamp;
    weighting relative to the existing causes' maximum keeps their ratio (the read-out was
    0.38 instead of 0.023 at sx 0.01 when the reference point was the new cause). Oracle: the
    formula in float64 with math.exp, exact here (nothing underflows at these sx)."""
    p = MemoryParams(feature_variance=sx, n_context_features=3)
    s = pop.new_state(np.full((1, 1), 0.9), p, memory_age_h=240.0, context=0)
    for _ in range(6):
        pop.advance(s, 24.0)
        pop.expose(s, np.ones((1, 1), bool), False, p, context=1)
    pop.advance(s, 24.0)
    assert s.n1[0, 0] > 0
    half_d = 0.5 * (1 + p.n_context_features)
    t = s.time_h[0]
    q = []
    for n, tm, tl, ck, boost in (
        (s.n0[0, 0], s.tmean0_h[0, 0], s.tlast0_h[0, 0], s.ctx0[0, 0],
         s.lab0[0, 0] * p.lability_prior_boost_per_h
         * math.exp(-(t - s.lab_time_h[0, 0]) / (p.lability_tau_min / 60.0))),
        (s.n1[0, 0], s.tmean1_h[0, 0], s.tlast1_h[0, 0], s.ctx1[0, 0], 0.0),
    ):
        def kern(dt):
            return max(dt + p.kernel_offset_h, p.kernel_offset_h) ** -p.kernel_exponent
        v = sx / (n + sx) + sx
        mu = n / (n + sx)
        dist = (1 - mu) ** 2 + ((1 - mu) ** 2 if ck == 2.0 else 1 + mu * mu)
        prior = max(n - 1, 0) * kern(t - tm) + min(n, 1) * kern(t - tl) + boost
        q.append(prior * math.exp(-0.5 * dist / v) * v ** -half_d)
    v_read = (q[0] * s.w0[0, 0] + q[1] * s.w1[0, 0]) / (q[0] + q[1])
    want = 0.5 * math.erfc(-(v_read - p.cr_threshold) / (p.cr_noise * math.sqrt(2.0)))
    assert pop.response(s, p, context=2)[0, 0] == pytest.approx(want, rel=1e-9)


def test_states_that_lost_their_block_are_moved_into_a_fresh_one():
    """Pickling and deep copies turn the field views into separate arrays, and a field can be
    rebound: the kernels must then work on (and the fields show) the same memory."""
    import copy
    import pickle

    p = MemoryParams()
    base = pop.new_state(np.full((4, 2), 0.8), p)
    for make in (lambda s: pickle.loads(pickle.dumps(s)), copy.deepcopy):
        t = make(base)
        pop.advance(t, 1.0)
        pop.expose(t, np.ones((4, 2), bool), True, p)
        assert np.all(t.n0 == base.n0 + 1)
    r = base.copy()
    r.n0 = np.full((4, 2), 5.0)  # rebound: no longer a view into the block
    pop.advance(r, 1.0)
    pop.expose(r, np.ones((4, 2), bool), True, p)
    assert np.all(r.n0 == 6.0)
    assert np.all(pop.response(r, p) == pop.response(r.copy(), p))


def test_a_state_needs_at_least_one_cue_class():
    with pytest.raises(pop.InputError, match="cue classes"):
        pop.new_state(np.zeros((3, 0)), MemoryParams())
