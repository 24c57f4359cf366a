"""Personal trigger profiles: which cues carry a person's craving and drinking.

From an EMA/diary file (:func:`read_ema`) the :class:`TriggerModel` estimates, per person and
cue class, how strongly the cue raises craving (points on the 0-100 scale) and the odds of
drinking before the next entry, with intervals, by partial pooling across people
(empirical-Bayes random-slopes mixed models; see :mod:`reconsolidate.triggers.model` and
docs/triggers.md), ranks the cues and recommends the cue set for a retrieval session.
:func:`simulate_diary_from_simulator` (the simulator's memory and behaviour modules) and
:func:`simulate_diary` (a simple stand-in generative model) make synthetic diaries with
planted cue effects.

Examples
--------
>>> from reconsolidate.triggers import TriggerModel, build_diary, simulate_diary
>>> syn = simulate_diary(40, weeks=8, seed=3)
>>> profiles = TriggerModel().fit(build_diary(syn.columns))
>>> profiles.profile("P00000")["triggers"][0]["cue"] == syn.cues[syn.strongest[0]]
True
"""

from reconsolidate.triggers.diary import (
    CueMapping,
    EMADiary,
    build_diary,
    load_mapping,
    read_ema,
    read_participant_list,
)
from reconsolidate.triggers.model import (
    CueCells,
    MixedFit,
    cells_from_diary,
    cue_cells,
    fit_craving_mixed,
    fit_drinking_mixed,
)
from reconsolidate.triggers.profile import TriggerModel, TriggerProfiles
from reconsolidate.triggers.synthetic import (
    DEFAULT_CUES,
    SyntheticDiary,
    simulate_diary,
    simulate_diary_from_simulator,
)

__all__ = [
    "DEFAULT_CUES",
    "CueCells",
    "CueMapping",
    "EMADiary",
    "MixedFit",
    "SyntheticDiary",
    "TriggerModel",
    "TriggerProfiles",
    "build_diary",
    "cells_from_diary",
    "cue_cells",
    "fit_craving_mixed",
    "fit_drinking_mixed",
    "load_mapping",
    "read_ema",
    "read_participant_list",
    "simulate_diary",
    "simulate_diary_from_simulator",
]
