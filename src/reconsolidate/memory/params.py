"""Parameters shared by the reference (LC-RW) and the population memory models.

Every default carries its source. Values from Gershman, Monfils, Norman & Niv 2017 (eLife
6:e23763) are the ones its simulation code uses (``imm_run``/``imm_plot`` in
github.com/sjgershm/memory-modification, commit e1164e1, read as equations only; tag [code]:
read in the cited repository's source, as recorded in the project's curated literature notes,
not shipped). Everything else is an ``ASSUMPTION`` to be calibrated, with the reason given next
to it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from reconsolidate.exceptions import InputError

__all__ = ["MemoryParams"]


@dataclass(frozen=True)
class MemoryParams:
    """Parameters of the cue-alcohol memory (plain floats; shared by both implementations).

    Attributes
    ----------
    learning_rate
        Rescorla-Wagner learning rate eta (per EM iteration). 0.3: Gershman et al. 2017,
        ``imm_run`` value [code] (here only cue features carry reward weights).
    new_cause_concentration_per_h
        CRP concentration alpha: prior weight of a new latent cause, in the units of the temporal
        kernel (1/h). ASSUMPTION: 1/h. Gershman 2017 uses 0.1 with trial-count time; with
        real time in hours this value makes a day-old memory and a new cause about equally
        likely for the first unreinforced trial, so that extinction forms a new memory
        (spontaneous recovery, renewal) while a session right after retrieval updates the old.
    kernel_exponent
        Power-law exponent g of the temporal kernel K(dt) = (dt + offset)^-g.
        1: Gershman 2017 [code].
    kernel_offset_h
        Offset (h) that keeps K finite for simultaneous trials. ASSUMPTION: 2 min, the spacing of
        trials within a session (the original counts one time unit per trial).
    us_variance
        Variance sigma_r^2 of the US (alcohol reward) around the prediction.
        0.4: Gershman 2017 [code].
    feature_variance
        Variance sigma_x^2 of cue/context features. 1: Gershman 2017 [code].
    max_em_iterations
        Maximum EM iterations per trial. 3: Gershman 2017 [code].
    em_iteration_period_min
        Minutes of inter-trial interval per EM iteration (the original gives one iteration per
        time unit). ASSUMPTION: 2 min, so trials 2 min apart within a session get one iteration
        and a trial followed by a >= 5 min pause (a retrieval) gets the maximum, as trials one
        time unit apart vs a pause of >= 3 units in ``imm_run``.
    max_causes
        Maximum number of latent causes (reference model). 15: Gershman 2017 [code].
    n_context_features
        Number of context features seen by the population model (one-hot). ASSUMPTION: 2
        (home/lab, A/B), matching the built-in paradigms.
    cr_threshold
        theta of the response read-out CR = Phi((V - theta)/lambda). ASSUMPTION: 0.4 (Gershman
        2017 uses 0.02 with lambda 0.01, a near-step read-out for freezing; a graded read-out
        suits craving ratings and dose-response; to be calibrated on urge ratings). The
        read-out averages over the existing memories only (the empty new cause is left out):
        with real time a power-law prior would otherwise let every memory fade as 1/t.
    cr_noise
        lambda of the read-out (SD, in units of V). ASSUMPTION: 0.2, see ``cr_threshold``.
    destabilization_pe_threshold
        |prediction error| (reward units) a retrieval must carry to destabilise the active memory
        once it is consolidated (see ``lability_tau_min``). ASSUMPTION: 0.4; Sevenster, Beckers
        & Kindt 2013 [abs] show no destabilisation when the outcome is as expected, the exact
        threshold is not known.
    destabilization_block_occupancy50
        NMDA occupancy during retrieval that halves destabilisation (Ben Mamou 2006; Milton 2013
        [abs]: NMDA/GluN2B blockade at retrieval prevents lability). ASSUMPTION: 0.3.
    destabilization_block_hill
        Hill coefficient of that block. ASSUMPTION: 4 (a near-switch, as in the all-or-none
        pharmacological result).
    lability_tau_min
        Time constant (min) with which lability decays after destabilisation (natural
        restabilisation). ASSUMPTION: 60 min, so that a drug 6 h after retrieval meets
        exp(-6) = 0.25% of the lability (Nader, Schafe & LeDoux 2000 [mem]: anisomycin 6 h after
        retrieval has no effect; Xue 2012 [abs]: 6 h outside the window).
        The same constant sets when a memory counts as still consolidating: a latent cause whose
        mean trial time is less than ``consolidation_window_tau_multiple * lability_tau_min``
        ago (3 h by default) is labile whenever it is inferred, with or without a prediction
        error (NMDA blockade at the trial still prevents it); see
        ``consolidation_window_tau_multiple``.
    consolidation_window_tau_multiple
        Length of the consolidation window in multiples of ``lability_tau_min``
        (dimensionless): a latent cause whose mean trial time is less than
        ``consolidation_window_tau_multiple * lability_tau_min`` ago counts as still
        consolidating and is labile whenever it is inferred, with or without a prediction error
        (``memory.reference``, ``memory.population`` and the fused daily kernel of
        ``behavior.days``). ASSUMPTION (no source): 3 time constants, by which the lability
        has decayed to exp(-3) = 5%; at the default ``lability_tau_min`` of 60 min a memory
        formed within the last 3 h is treated as still consolidating.
    restabilization_damage_max
        Largest fraction of a labile memory lost when restabilisation is fully blocked
        (plateau). ASSUMPTION: 0.9; a free parameter of the calibration
        (``calibration/targets.toml``, range 0.1-1), and trial runs use the shipped fit's value
        (``calibration/fitted.toml``) unless the spec sets it. For scale only: Nader 2000's
        normalised CR after retrieval + PSI vs no retrieval + PSI, 0.30 vs 0.70 (``imm_plot``
        ``nader00`` [code]), is a 1 - 0.30/0.70 = 57% loss [D] in one test of a rat fear memory;
        0.9 is not derived from it.
    restabilization_occupancy_scale_min
        Window-weighted NMDA occupancy integral (occupancy x min) giving 1 - 1/e of the maximal
        damage. ASSUMPTION: 5 occupancy-min (a quarter of full occupancy for 20 min). The
        damage grows with lability x integral: for a fully labile memory (L = 1) a 0.5 mg/kg
        infusion right after retrieval (I_w about 18.6) sits near the plateau (0.88 of 0.9),
        but a memory left only partly labile by its retrieval trial (L about 0.3 in the
        built-in paradigms) loses 0.59-0.66 (Zarate and Das regimens). Calibrated (the
        shipped fit: 4.44, where a fully labile memory reaches 89% of the maximum damage by
        0.2 mg/kg over 40 min and 98% by 0.5, python tools/damage_dose_response.py,
        docs/calibration.md); Das 2019's blood-level associations would constrain it better.
    lability_prior_boost_per_h
        Extra prior weight (1/h, same units as the kernel) of a latent cause per unit of its
        current lability: a destabilised memory stays the inferred active one until it has
        restabilised, so new (extinction) trials in the window update it instead of forming a
        new memory. ASSUMPTION (project extension of LC-RW, which gets the same effect from the
        power-law recency of the retrieval trial in trial-count time): 30/h, chosen so that
        extinction 10 min or 1 h after retrieval updates the old memory and 6 h later does not
        (Monfils 2009; Xue 2012 [abs]).
    short_term_memory_h
        Hours after the destabilising retrieval during which the labile trace still expresses
        the memory as it was (short-term memory), so that the loss caused by blocked
        restabilisation shows only afterwards. ASSUMPTION: 6 h. Nader, Schafe & LeDoux 2000
        [mem]: after retrieval + anisomycin, short-term memory tested 4 h later is intact
        while long-term memory at 24 h is impaired, and a drug 6 h after retrieval no longer
        acts (restabilisation complete); so the value lies between 4 and 24 h and 6 h is the
        earliest time restabilisation is known to be complete. Used by the paradigm runner
        (``memory.paradigm``) only: the trial engine applies the loss at the session, since
        its daily steps do not resolve the hours of the session day.
    acquisition_trials
        Effective number of acquisition trials given to a population state built from a strength
        array (``new_state``). ASSUMPTION: 20 (a long drinking history; only its order matters).
    """

    learning_rate: float = 0.3
    new_cause_concentration_per_h: float = 1.0
    kernel_exponent: float = 1.0
    kernel_offset_h: float = 2.0 / 60.0
    us_variance: float = 0.4
    feature_variance: float = 1.0
    max_em_iterations: int = 3
    em_iteration_period_min: float = 2.0
    max_causes: int = 15
    n_context_features: int = 2
    cr_threshold: float = 0.4
    cr_noise: float = 0.2
    destabilization_pe_threshold: float = 0.4
    destabilization_block_occupancy50: float = 0.3
    destabilization_block_hill: float = 4.0
    lability_tau_min: float = 60.0
    restabilization_damage_max: float = 0.9
    restabilization_occupancy_scale_min: float = 5.0
    acquisition_trials: float = 20.0
    lability_prior_boost_per_h: float = 30.0
    consolidation_window_tau_multiple: float = 3.0
    short_term_memory_h: float = 6.0

    def __post_init__(self) -> None:
        problem = _first_problem({f.name: getattr(self, f.name) for f in fields(self)})
        if problem is not None:
            name, text = problem
            raise InputError(f"MemoryParams.{name} = {getattr(self, name)!r}: {text}")

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Any], where: str = "memory") -> MemoryParams:
        """The default parameters with ``overrides`` applied, every problem naming its field.

        Parameters
        ----------
        overrides
            ``{field name: value}``; integer fields take integer-valued numbers.
        where
            Dotted path of the table the overrides come from (``"memory"`` in a trial spec), the
            prefix of every error message.

        Raises
        ------
        InputError
            An unknown name (listing the valid ones), a non-integer value of an integer field, or
            a value outside its range: ``"memory.lability_tau_min = -1.0: must be > 0"``.
        """
        kinds = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {f.name: f.default for f in fields(cls)}
        for name, value in overrides.items():
            if name not in kinds:
                raise InputError(f"unknown key '{where}.{name}' (allowed: {', '.join(kinds)})")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(f"{where}.{name} = {value!r}: must be a number")
            if kinds[name] in (int, "int"):
                # an integer, not 10.0 (the configs' rule: integer fields take integers)
                if not isinstance(value, numbers.Integral):
                    raise InputError(f"{where}.{name} = {value!r}: must be an integer")
                value = int(value)
            else:
                value = float(value)
            values[name] = value
        problem = _first_problem(values)
        if problem is not None:
            name, text = problem
            raise InputError(f"{where}.{name} = {values[name]!r}: {text}")
        return cls(**values)

    def as_dict(self) -> dict[str, float]:
        """Plain dict of the parameter values (for metadata)."""
        return asdict(self)


#: Fields that must be > 0 (rates, variances, time constants, scales).
_POSITIVE = frozenset({
    "learning_rate", "new_cause_concentration_per_h", "kernel_offset_h", "us_variance",
    "feature_variance", "em_iteration_period_min", "cr_noise",
    "destabilization_block_occupancy50", "destabilization_block_hill",
    "lability_tau_min", "consolidation_window_tau_multiple",
    "restabilization_occupancy_scale_min", "acquisition_trials", "short_term_memory_h",
})

#: Smallest allowed value of the integer (count) fields.
_MIN_COUNT = {"max_causes": 2, "n_context_features": 1, "max_em_iterations": 1}


def _first_problem(values: Mapping[str, Any]) -> tuple[str, str] | None:
    """The first invalid parameter as ``(name, what is allowed)``, or None if all are valid."""
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            return name, "must be a finite number"
        if name in _POSITIVE and v <= 0:
            return name, "must be > 0"
        if name in _MIN_COUNT and v < _MIN_COUNT[name]:
            return name, f"must be an integer >= {_MIN_COUNT[name]}"
    if not 0.0 <= values["restabilization_damage_max"] <= 1.0:
        return "restabilization_damage_max", "must lie in [0, 1] (a fraction of the memory)"
    if values["learning_rate"] > 1.0:
        return "learning_rate", "must lie in (0, 1]"
    return None
