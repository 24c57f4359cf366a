"""One interface to both memory implementations: a subject of a laboratory paradigm.

A paradigm (:mod:`reconsolidate.memory.paradigm`) drives one subject through trials (a cue in a
context, with or without the alcohol reward), unsignalled rewards, drug exposure and tests.
:class:`MemorySubject` is what it needs from a memory model, and the two implementations
provide it:

- :class:`ReferenceSubject`: the reference LC-RW model
  (:class:`~reconsolidate.memory.reference.ReferenceModel`), cues and contexts as one-hot
  features;
- :class:`PopulationSubject`: the population model (:mod:`reconsolidate.memory.population`) for
  one patient, one memory per cue class.

:func:`make_subject` builds either by name (:data:`MODELS`), so that code written against the
interface runs both, as the paradigm runner and its agreement tests do.
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from typing import Protocol, runtime_checkable

import numpy as np
from scipy.special import ndtri

from reconsolidate.exceptions import InputError
from reconsolidate.memory import population as pop
from reconsolidate.memory.params import MemoryParams
from reconsolidate.memory.reference import ReferenceModel

__all__ = ["MODELS", "MemorySubject", "PopulationSubject", "ReferenceSubject", "make_subject"]

#: Names of the implementations, as ``reconsolidate paradigm --model`` takes them.
MODELS = ("reference", "population")


@runtime_checkable
class MemorySubject(Protocol):
    """One subject's cue memories, as a laboratory paradigm drives them.

    Cues and contexts are indices (``0 <= cue < n_cues``, ``0 <= context < n_contexts``);
    time is in hours and never goes backwards.
    """

    @property
    def time_h(self) -> float:
        """The subject's clock (h)."""

    @property
    def lability_onset_h(self) -> float:
        """Time (h) of the latest trial that set the memories' lability (destabilisation)."""

    def advance_to(self, time_h: float) -> None:
        """Let time pass until ``time_h`` (no learning)."""

    def trial(self, cue: int | None, context: int, reward: bool, *, occupancy: float = 0.0,
              gap_to_next_min: float | None = None) -> float:
        """Present ``cue`` (None: an unsignalled reward) in ``context`` at the current time.

        ``occupancy`` is the NMDA occupancy during the trial (0-1; blocks destabilisation),
        ``gap_to_next_min`` the minutes until the next learning trial (None: long). Returns the
        response to the cue before learning (0-1; NaN for an unsignalled reward).
        """

    def response(self, cue: int, context: int) -> float:
        """Conditioned response / craving to ``cue`` in ``context`` now (0-1; no learning)."""

    def prediction(self, cue: int, context: int) -> float:
        """Reward prediction V behind :meth:`response` (reward units; no learning)."""

    def restabilise(self, weighted_occupancy_min: float) -> None:
        """Apply NMDA occupancy weighted by the lability left from now (occupancy x min)."""

    def copy(self) -> MemorySubject:
        """An independent copy (to branch, e.g. the undamaged short-term memory)."""


class ReferenceSubject:
    """The reference LC-RW model behind :class:`MemorySubject` (features: cues, then contexts)."""

    def __init__(self, n_cues: int, n_contexts: int, params: MemoryParams) -> None:
        self.n_cues = int(n_cues)
        self.n_contexts = int(n_contexts)
        self.model = ReferenceModel(self.n_cues + self.n_contexts, params, n_cues=self.n_cues)

    @property
    def time_h(self) -> float:
        return self.model.time_h

    @property
    def lability_onset_h(self) -> float:
        return self.model.lability_time_h

    def _features(self, cue: int | None, context: int) -> np.ndarray:
        x = np.zeros(self.n_cues + self.n_contexts)
        if cue is not None:
            x[cue] = 1.0
        x[self.n_cues + context] = 1.0
        return x

    def advance_to(self, time_h: float) -> None:
        self.model.advance_to(time_h)

    def trial(self, cue: int | None, context: int, reward: bool, *, occupancy: float = 0.0,
              gap_to_next_min: float | None = None) -> float:
        res = self.model.trial(self._features(cue, context), 1.0 if reward else 0.0,
                               self.model.time_h, occupancy=occupancy,
                               gap_to_next_min=gap_to_next_min)
        return math.nan if cue is None else res.response

    def response(self, cue: int, context: int) -> float:
        return self.model.response(self._features(cue, context), self.model.time_h)

    def prediction(self, cue: int, context: int) -> float:
        return self.model.prediction(self._features(cue, context), self.model.time_h)

    def restabilise(self, weighted_occupancy_min: float) -> None:
        self.model.drug(weighted_occupancy_min)

    def copy(self) -> ReferenceSubject:
        return copy.deepcopy(self)


class PopulationSubject:
    """The population model for one patient behind :class:`MemorySubject`."""

    def __init__(self, n_cues: int, n_contexts: int, params: MemoryParams) -> None:
        self.n_cues = int(n_cues)
        # the population model sees one-hot contexts: as many as the paradigm declares
        self.params = replace(params, n_context_features=int(n_contexts))
        self.state = pop.new_state(np.zeros((1, self.n_cues)), self.params,
                                   acquisition_trials=0)

    @property
    def time_h(self) -> float:
        return float(self.state.time_h[0])

    @property
    def lability_onset_h(self) -> float:
        return float(np.max(self.state.lab_time_h))

    def advance_to(self, time_h: float) -> None:
        pop.advance(self.state, max(time_h - self.time_h, 0.0))

    def trial(self, cue: int | None, context: int, reward: bool, *, occupancy: float = 0.0,
              gap_to_next_min: float | None = None) -> float:
        if cue is None:
            pop.us_alone(self.state, np.array([True]))
            return math.nan
        mask = np.zeros((1, self.n_cues), dtype=bool)
        mask[0, cue] = True
        r = self.response(cue, context)
        pop.expose(self.state, mask, bool(reward), self.params, context=context,
                   occupancy=occupancy, gap_to_next_min=gap_to_next_min)
        return r

    def response(self, cue: int, context: int) -> float:
        return float(pop.response(self.state, self.params, context=context)[0, cue])

    def prediction(self, cue: int, context: int) -> float:
        # the inverse of the probit read-out CR = Phi((V - theta) / lambda)
        r = min(max(self.response(cue, context), 1e-12), 1.0 - 1e-12)
        return float(self.params.cr_threshold + self.params.cr_noise * ndtri(r))

    def restabilise(self, weighted_occupancy_min: float) -> None:
        pop.restabilise_weighted(self.state, np.array([weighted_occupancy_min]), self.params)

    def copy(self) -> PopulationSubject:
        out = copy.copy(self)
        out.state = self.state.copy()
        return out


def make_subject(model: str, n_cues: int, n_contexts: int,
                 params: MemoryParams | None = None) -> MemorySubject:
    """A fresh subject (no memories, clock at 0 h) of implementation ``model``.

    Parameters
    ----------
    model
        ``"reference"`` or ``"population"`` (:data:`MODELS`).
    n_cues, n_contexts
        Numbers of cues and of contexts the subject can meet.
    params
        Memory parameters (default :class:`MemoryParams`).
    """
    p = params or MemoryParams()
    if model == "reference":
        return ReferenceSubject(n_cues, n_contexts, p)
    if model == "population":
        return PopulationSubject(n_cues, n_contexts, p)
    raise InputError(f"model = {model!r}: must be one of {', '.join(MODELS)}")
