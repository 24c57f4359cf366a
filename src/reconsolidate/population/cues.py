"""Cue classes of daily life: the contexts that trigger wanting a drink.

Each virtual patient lives in a cue environment of :data:`CUE_CLASSES`. Every class has its own
exposure rate on weekdays and on weekend days (expected exposures per day) and is linked to a cue
memory of its own (column ``c`` of the memory model's (n_patients, n_cues) state).

No published source gives per-context daily exposure rates for hazardous drinkers, so every rate
here is an ``ASSUMPTION`` chosen to be plausible (a working adult meets the "evening at home after
work" context on most weekdays, a pub or bar a few times a week, more at the weekend) and is meant
to be calibrated. The relative acquisition strengths are assumptions of the same kind: the proximal
beer cues (sight of beer, sound of glasses) and the drinking venue carry the strongest association
in beer-preferring drinkers (the retrieval cue Das et al. 2019 used was a glass of beer).
"""

from __future__ import annotations

from typing import Final

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from reconsolidate._config import StrictModel

__all__ = [
    "ALCOHOL_LAB_CUES",
    "CUE_CLASSES",
    "CUE_LABELS",
    "DEFAULT_ACQUISITION_STRENGTH",
    "DEFAULT_RATE_WEEKDAY_PER_DAY",
    "DEFAULT_RATE_WEEKEND_PER_DAY",
    "CueEnvironment",
    "cue_index",
    "cue_mask",
    "exposure_probability",
]

CUE_CLASSES: Final[tuple[str, ...]] = (
    "home_evening",
    "pub_bar",
    "social_event",
    "glasses_sound",
    "beer_sight",
    "stress",
)
"""Names of the cue classes, in the column order of every (n_patients, n_cues) array."""

CUE_LABELS: Final[dict[str, str]] = {
    "home_evening": "evening at home after work",
    "pub_bar": "pub or bar",
    "social_event": "social events (parties, football, meals out)",
    "glasses_sound": "the sound of glasses / a bottle opening",
    "beer_sight": "the sight of beer or alcohol adverts",
    "stress": "stress (negative affect, an interoceptive cue)",
}

# ASSUMPTION (no source; calibrate): expected exposures per day, Monday-Friday. "Evening at home
# after work" happens on most workdays; pub/bar and social events are mostly weekend contexts;
# incidental beer sights (adverts, supermarket shelves) are frequent; stress peaks on workdays.
DEFAULT_RATE_WEEKDAY_PER_DAY: Final[dict[str, float]] = {
    "home_evening": 0.8,
    "pub_bar": 0.25,
    "social_event": 0.1,
    "glasses_sound": 0.3,
    "beer_sight": 0.6,
    "stress": 0.4,
}
# ASSUMPTION (no source; calibrate): expected exposures per day, Saturday-Sunday.
DEFAULT_RATE_WEEKEND_PER_DAY: Final[dict[str, float]] = {
    "home_evening": 0.4,
    "pub_bar": 0.6,
    "social_event": 0.5,
    "glasses_sound": 0.6,
    "beer_sight": 0.7,
    "stress": 0.2,
}
# ASSUMPTION (no source; calibrate): relative cue-alcohol acquisition strength in [0, 1] of a
# moderately severe beer drinker; scaled per patient by AUD severity (see ``population.sample``).
DEFAULT_ACQUISITION_STRENGTH: Final[dict[str, float]] = {
    "home_evening": 0.7,
    "pub_bar": 0.8,
    "social_event": 0.6,
    "glasses_sound": 0.75,
    "beer_sight": 0.8,
    "stress": 0.5,
}

ALCOHOL_LAB_CUES: Final[tuple[str, ...]] = ("glasses_sound", "beer_sight")
"""Cue classes present in the lab when a glass of beer is placed in front of the participant."""


def cue_index(name: str) -> int:
    """Column index of cue class ``name``; unknown names raise ValueError listing valid ones."""
    try:
        return CUE_CLASSES.index(name)
    except ValueError:
        raise ValueError(
            f"unknown cue class {name!r}; valid: {', '.join(CUE_CLASSES)}"
        ) from None


def cue_mask(names: tuple[str, ...] | list[str]) -> np.ndarray:
    """Boolean (n_cues,) mask of the named cue classes."""
    mask = np.zeros(len(CUE_CLASSES), dtype=bool)
    for n in names:
        mask[cue_index(n)] = True
    return mask


def exposure_probability(rate_per_day: np.ndarray) -> np.ndarray:
    """Probability of at least one exposure in a day for a Poisson rate (exposures per day)."""
    return -np.expm1(-np.asarray(rate_per_day, dtype=np.float64))


class CueEnvironment(StrictModel):
    """Exposure rates (per day, weekday and weekend) and acquisition strengths by cue class.

    Missing classes take the defaults above; unknown class names are rejected.
    """

    rate_weekday_per_day: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_RATE_WEEKDAY_PER_DAY)
    )
    rate_weekend_per_day: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_RATE_WEEKEND_PER_DAY)
    )
    acquisition_strength: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_ACQUISITION_STRENGTH)
    )

    @field_validator("rate_weekday_per_day", "rate_weekend_per_day", "acquisition_strength")
    @classmethod
    def _known_cues(cls, v: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        for name, value in v.items():
            if name not in CUE_CLASSES:
                raise ValueError(f"unknown cue class {name!r}; valid: {', '.join(CUE_CLASSES)}")
            if not (value >= 0 and np.isfinite(value)):
                raise ValueError(f"{name}: must be a finite number >= 0, got {value}")
            if info.field_name == "acquisition_strength" and value > 1:
                raise ValueError(f"{name}: acquisition strength must lie in [0, 1], got {value}")
        return v

    def _vector(self, table: dict[str, float], default: dict[str, float]) -> np.ndarray:
        return np.array([table.get(c, default[c]) for c in CUE_CLASSES], dtype=np.float64)

    @property
    def weekday_rates(self) -> np.ndarray:
        """(n_cues,) expected exposures per weekday."""
        return self._vector(self.rate_weekday_per_day, DEFAULT_RATE_WEEKDAY_PER_DAY)

    @property
    def weekend_rates(self) -> np.ndarray:
        """(n_cues,) expected exposures per weekend day."""
        return self._vector(self.rate_weekend_per_day, DEFAULT_RATE_WEEKEND_PER_DAY)

    @property
    def strengths(self) -> np.ndarray:
        """(n_cues,) relative acquisition strengths in [0, 1]."""
        return self._vector(self.acquisition_strength, DEFAULT_ACQUISITION_STRENGTH)
