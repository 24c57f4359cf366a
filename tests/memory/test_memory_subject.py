"""Both memory implementations behind one interface (:mod:`reconsolidate.memory.subject`)."""

from __future__ import annotations

import math

import pytest

from reconsolidate.exceptions import InputError
from reconsolidate.memory import MODELS, MemoryParams, MemorySubject, make_subject


def _acquire(s: MemorySubject, n: int = 8) -> None:
    for i in range(n):
        s.trial(0, 0, True, gap_to_next_min=2.0 if i < n - 1 else None)
        s.advance_to(s.time_h + 2.0 / 60.0)


@pytest.mark.parametrize("model", MODELS)
def test_both_models_offer_the_interface(model):
    s = make_subject(model, n_cues=2, n_contexts=2)
    assert isinstance(s, MemorySubject)
    assert s.time_h == 0.0
    before = s.response(0, 0)
    _acquire(s)
    s.advance_to(24.0)
    assert s.response(0, 0) > 0.8 > before  # the cue now predicts the drink
    assert s.response(1, 0) < 0.1  # the other cue was never rewarded
    assert s.prediction(0, 0) > MemoryParams().cr_threshold
    assert math.isnan(s.trial(None, 0, True))  # an unsignalled reward has no cue response


@pytest.mark.parametrize("model", MODELS)
def test_retrieval_then_blockade_weakens_and_copy_is_independent(model):
    s = make_subject(model, 1, 1)
    _acquire(s)
    s.advance_to(24.0)
    r_ret = s.trial(0, 0, False)  # retrieval with a prediction error
    assert s.lability_onset_h == pytest.approx(24.0)
    twin = s.copy()
    iw = 20.0  # occupancy x min, well above restabilization_occupancy_scale_min
    s.restabilise(iw)
    s.advance_to(48.0)
    twin.advance_to(48.0)
    assert s.response(0, 0) < 0.6 * twin.response(0, 0)  # the copy kept its memory
    assert twin.response(0, 0) > 0.8 * r_ret


def test_the_models_agree_on_a_single_cue_sequence():
    """The population model is the reference restricted to two causes: one cue, one context
    (test_memory_agreement states the tolerance, 0.03). Plain extinction a day after
    acquisition, then spontaneous recovery a month later (away from the response's floor)."""
    out = {}
    for model in MODELS:
        s = make_subject(model, 1, 1)
        _acquire(s)
        s.advance_to(24.0)
        for i in range(10):
            s.trial(0, 0, False, gap_to_next_min=2.0 if i < 9 else None)
            s.advance_to(s.time_h + 2.0 / 60.0)
        s.advance_to(24.0 * 30)
        out[model] = s.response(0, 0)
    assert 0.1 < out["reference"] < 0.5  # recovered, not at the floor or the ceiling
    assert out["reference"] == pytest.approx(out["population"], abs=0.03)


def test_unknown_model_names_the_valid_ones():
    with pytest.raises(InputError, match="model = 'lcm': must be one of reference, population"):
        make_subject("lcm", 1, 1)
