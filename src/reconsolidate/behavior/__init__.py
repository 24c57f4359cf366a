"""Daily life of a virtual patient: cue exposure -> craving -> drinking, therapies, motivation.

Public API: :class:`BehaviorParams`, :class:`BehaviorState`, :func:`calibrate_intercept`,
:func:`day_craving`, :func:`drinking_probability_target`, :func:`live_day`,
:func:`reconsolidate.behavior.days.live_days` (the fused kernel of the trial engine),
:class:`Therapy`, :class:`TherapySpec`, :data:`THERAPY_PRESETS`, :func:`resolve_therapy`.
"""

from reconsolidate.behavior.daily import (
    BehaviorState,
    calibrate_intercept,
    day_craving,
    drinking_probability_target,
    live_day,
)
from reconsolidate.behavior.params import BehaviorParams
from reconsolidate.behavior.therapy import THERAPY_PRESETS, Therapy, TherapySpec, resolve_therapy

__all__ = [
    "THERAPY_PRESETS",
    "BehaviorParams",
    "BehaviorState",
    "Therapy",
    "TherapySpec",
    "calibrate_intercept",
    "day_craving",
    "drinking_probability_target",
    "live_day",
    "resolve_therapy",
]
