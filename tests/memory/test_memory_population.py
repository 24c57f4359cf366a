"""Population model API: shapes, in-place updates, errors, chunk invariance, fast-path oracle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reconsolidate.exceptions import InputError
from reconsolidate.memory import population as pop
from reconsolidate.memory.params import MemoryParams
from reconsolidate.memory.reference import ReferenceModel

P = MemoryParams()


def test_new_state_and_response_shapes():
    a = np.array([[0.9, 0.2, 0.0], [0.5, 0.5, 0.5]])
    s = pop.new_state(a, P)
    assert s.shape == (2, 3)
    r = pop.response(s, P)
    assert r.shape == (2, 3) and np.all((r >= 0) & (r <= 1))
    assert r[0, 0] > r[0, 1] > r[0, 2]  # stronger memory, stronger craving


def test_expose_in_place_and_counts():
    s = pop.new_state(np.full((4, 2), 0.9), P)
    w_before = s.w0.copy()
    mask = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], dtype=bool)
    n = pop.expose(s, mask, False, P)
    assert n == mask.sum()
    assert np.all(s.w0[mask] < w_before[mask]) and np.all(s.w0[~mask] == w_before[~mask])


def test_reward_strengthens_extinction_weakens():
    s = pop.new_state(np.full((2, 1), 0.5), P)
    pop.advance(s, 1.0)
    pop.expose(s, np.ones((2, 1), bool), np.array([True, False]), P)
    assert s.w0[0, 0] > 0.5 > s.w0[1, 0]


@pytest.mark.parametrize("bad", [
    lambda s: pop.expose(s, np.ones((3, 2), bool), True),
    lambda s: pop.advance(s, -1.0),
    lambda s: pop.retrieve(s, np.ones((2, 2), bool), True, occupancy_during_retrieval=1.5),
    lambda s: pop.response(s, context=5),
    lambda s: pop.restabilise_weighted(s, np.array([-1.0, 0.0])),
])
def test_bad_inputs_raise_input_error(bad):
    s = pop.new_state(np.full((2, 2), 0.5), P)
    with pytest.raises(InputError):
        bad(s)


def test_new_state_validates():
    with pytest.raises(InputError):
        pop.new_state(np.array([[1.5]]), P)
    with pytest.raises(InputError):
        pop.new_state(np.array([[0.5]]), P, memory_age_h=-1.0)


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_consolidation_window_multiple_must_be_positive(bad):
    with pytest.raises(InputError, match="consolidation_window_tau_multiple"):
        MemoryParams(consolidation_window_tau_multiple=bad)


# us_variance 0.05 sends pop.expose to the original kernel (_expose_kernel_reference)
@pytest.mark.parametrize("us_variance", [0.4, 0.05])
def test_consolidation_window_multiple_gates_lability_without_prediction_error(us_variance):
    """A memory acquired about 2 h before an expected (rewarded, no prediction error) trial is
    still consolidating, hence labile, with the default window of 3 tau (3 h) and consolidated,
    hence left stable, with a window of 1 tau (1 h): in the reference model and in the
    population model's kernels."""
    x = np.array([1.0, 1.0])  # cue, context
    for mult, labile in [(3.0, True), (1.0, False)]:
        p = MemoryParams(n_context_features=1, us_variance=us_variance,
                         consolidation_window_tau_multiple=mult)
        # reference: 8 acquisition trials 2 min apart, then the trial 2 h after the first
        m = ReferenceModel(2, p, n_cues=1)
        t = 0.0
        for k in range(8):
            m.trial(x, 1.0, t, gap_to_next_min=2.0 if k < 7 else None)
            t += 2 / 60
        res = m.trial(x, 1.0, 2.0)
        assert abs(res.prediction_error) < p.destabilization_pe_threshold
        assert m.n_causes == 1
        assert bool(m.lability[0] > 0.1) == labile, ("reference", mult)
        # population: the acquisition memory's mean trial 2 h before the trial
        s = pop.new_state(np.full((1, 1), 0.95), p, memory_age_h=2.0)
        pop.expose(s, np.ones((1, 1), bool), True, p)
        assert s.n1[0, 0] == 0.0  # the trial went to the acquisition memory
        assert bool(s.lab0[0, 0] > 0.1) == labile, ("population", mult)


def _history(s, rng_seed):
    rng = np.random.default_rng(rng_seed)
    n, c = s.shape
    for _ in range(30):
        pop.advance(s, rng.uniform(0.05, 30.0, n))
        mask = rng.random((n, c)) < 0.5
        pop.expose(s, mask, rng.random((n, c)) < 0.4, P, context=rng.integers(0, 2, n),
                   occupancy=rng.uniform(0, 0.6, n))
    pop.retrieve(s, np.ones((n, c), bool), rng.random(n) < 0.7, rng.uniform(0, 0.5, n), P)
    pop.restabilise(s, rng.uniform(0, 30, n), window_start_min=0.0, window_stop_min=60.0,
                    params=P)


def test_chunk_invariance():
    """Each patient's trajectory is independent of who else is in the batch."""
    a = np.random.default_rng(1).uniform(0, 1, (40, 3))
    full = pop.new_state(a, P)
    _history(full, 7)
    rng = np.random.default_rng(7)  # replay the same draws on two halves
    halves = [pop.new_state(a[:20], P), pop.new_state(a[20:], P)]
    n, c = 40, 3
    for _ in range(30):
        dt = rng.uniform(0.05, 30.0, n)
        mask = rng.random((n, c)) < 0.5
        rew = rng.random((n, c)) < 0.4
        ctx = rng.integers(0, 2, n)
        occ = rng.uniform(0, 0.6, n)
        for h, sl in zip(halves, (slice(0, 20), slice(20, 40)), strict=True):
            pop.advance(h, dt[sl])
            pop.expose(h, mask[sl], rew[sl], P, context=ctx[sl], occupancy=occ[sl])
    pe = rng.random(n) < 0.7
    occ_r = rng.uniform(0, 0.5, n)
    integ = rng.uniform(0, 30, n)
    for h, sl in zip(halves, (slice(0, 20), slice(20, 40)), strict=True):
        pop.retrieve(h, np.ones((20, c), bool), pe[sl], occ_r[sl], P)
        pop.restabilise(h, integ[sl], window_start_min=0.0, window_stop_min=60.0, params=P)
    joined = np.vstack([pop.response(h, P) for h in halves])
    np.testing.assert_array_equal(pop.response(full, P), joined)


@settings(max_examples=25, deadline=None)
@given(seq=st.lists(st.tuples(st.booleans(), st.floats(0.05, 72.0)), min_size=1, max_size=25))
@example(seq=[(True, 37.0), (False, 0.5), (False, 1.0)])  # the near tie described below
# a prediction error at the destabilisation threshold (found by hypothesis, described below)
@example(seq=[(True, 3.0), (False, 1.0), (True, 1.0), (False, 1.0)])
def test_fast_path_matches_reference_single_cue(seq):
    """Oracle for the numba kernel: the reference LC-RW on a single cue, single context.

    With at most two causes used (acquisition, then extinction) the reduced model is the
    reference model up to the kernel-sum approximation; on random reward sequences the
    response stays within 0.1 (the paradigm tests hold a tighter 0.03 on designed protocols).

    Both models assign each trial to its most probable cause (a hard MAP choice). Where the
    reference's two most probable causes are within 0.05 of each other, the kernel-sum
    approximation (posteriors off by about 0.01-0.02) can pick the other one and the two
    histories part for good (found by hypothesis: posterior 0.436 vs 0.438 after an
    unrewarded trial 0.5 h after another, responses 0.78 vs 0.65 one trial later). The same
    holds for the destabilisation gate, a hard threshold on |prediction error|: a trial whose
    reference |PE| is within 0.02 of it may open the gate in one model only (found by
    hypothesis: reference |PE| 0.397 against the threshold 0.4, the memory labile in the
    reduced model only, so the next unrewarded trial weakens it there: responses 0.37 vs
    0.74). The comparison stops after such a near tie; the test still fails on any difference
    that arises with a clear assignment and a clear gate.
    """
    p = MemoryParams(n_context_features=1)
    s = pop.new_state(np.zeros((1, 1)), p, acquisition_trials=0)
    m = ReferenceModel(2, p, n_cues=1)
    x = np.array([1.0, 1.0])
    t = 0.0
    for k in range(6):  # a common acquisition first
        gap = 2.0 if k < 5 else None
        pop.expose(s, np.ones((1, 1), bool), True, p, gap_to_next_min=gap)
        m.trial(x, 1.0, t, gap_to_next_min=gap)
        pop.advance(s, 2 / 60)
        t += 2 / 60
    pop.advance(s, 24.0)
    t += 24.0
    for rewarded, dt_h in seq:
        pop.expose(s, np.ones((1, 1), bool), rewarded, p)
        res = m.trial(x, float(rewarded), t)
        top2 = np.sort(res.posterior)[-2:]
        pe_margin = abs(abs(res.prediction_error) - p.destabilization_pe_threshold)
        pop.advance(s, dt_h)
        t += dt_h
        m.advance_to(t)
        if m.n_causes > 2 or top2[1] - top2[0] < 0.05 or pe_margin < 0.02:
            break  # a third cause, or a near-tie assignment or gate: the histories may part
        assert abs(pop.response(s, p)[0, 0] - m.response(x, t)) <= 0.1



@pytest.mark.xfail(strict=True, reason="known divergence of the reduced model (docs/paradigms.md, "
                   "'Known limitations'): after two quick unrewarded trials and a rewarded one "
                   "5 h later, response 1 h on 0.931 (population) vs 0.782 (reference)")
def test_known_divergence_after_two_quick_extinction_trials():
    """Found by hypothesis (not in CI's derandomised examples): both models assign the
    rewarded trial to the acquisition cause, but the reduced model's kernel-sum prior (a
    cause's trials summarised by count, mean and last time) weighs the causes differently one
    hour later. Recorded so that a change to the reduction that closes it shows up here."""
    test_fast_path_matches_reference_single_cue.hypothesis.inner_test(
        seq=[(False, 0.0546875), (False, 5.0), (True, 1.0)])
