"""Adjunct psychological therapies as modules with documented, calibratable effects.

A therapy is a list of session days and what each session does:

- ``motivation_logit_per_session``: lift of the motivation state (log-odds against drinking),
  decaying with ``BehaviorParams.therapy_motivation_half_life_days``;
- ``coping_skill_gain_per_session``: fraction of the remaining gap to ``coping_skill_max`` closed
  by each session. Coping skill ``s`` scales the craving -> drinking coupling by ``(1 - s)``
  ("urge surfing") and the abstinence-violation loss by ``(1 - s)``; skill persists (it decays
  with ``coping_skill_half_life_days``, ASSUMPTION: 180 days, no source).

Presets (all effect sizes ASSUMPTION, to be calibrated; the structure follows what each therapy
targets):

- ``met``: motivational enhancement therapy (Miller & Rollnick; the 5-week MET course of Dakwar
  2020 [P]): mainly motivation, little skill.
- ``mbrp``: mindfulness-based relapse prevention (7 sessions in KARE's design [S]; Bowen & Marlatt):
  coping with craving and lapses (skill), some motivation.
- ``education``: alcohol education, the attention control of KARE's design [P]: contact without an
  active ingredient, a small motivation lift.
- ``none``: no therapy.

COMBINE (Anton 2006, JAMA 295:2003 [P/S]) gives an order of magnitude for a behavioural
intervention's effect on PDA (CBI + MM + placebo 79.2% vs placebo + MM 75.1%), which bounds what
calibration should give these modules.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field

from reconsolidate._config import StrictModel
from reconsolidate.exceptions import InputError

__all__ = ["THERAPY_PRESETS", "Therapy", "TherapySpec", "resolve_therapy"]


class Therapy(StrictModel):
    """A complete therapy module."""

    name: str
    session_days: tuple[int, ...] = ()
    motivation_logit_per_session: float = Field(0.0, ge=0, le=10)
    coping_skill_gain_per_session: float = Field(0.0, ge=0, le=1)
    coping_skill_max: float = Field(0.0, ge=0, le=1)
    # ASSUMPTION (no source): coping skill learnt in therapy fades with a half-life of 180 days.
    coping_skill_half_life_days: float = Field(180.0, gt=0)
    description: str = ""


class TherapySpec(StrictModel):
    """A therapy as written in a trial spec: a preset with optional overrides."""

    preset: Literal["none", "met", "mbrp", "education"] = "none"
    session_days: list[int] | None = None
    motivation_logit_per_session: float | None = Field(None, ge=0, le=10)
    coping_skill_gain_per_session: float | None = Field(None, ge=0, le=1)
    coping_skill_max: float | None = Field(None, ge=0, le=1)
    coping_skill_half_life_days: float | None = Field(None, gt=0)


THERAPY_PRESETS: Final[dict[str, Therapy]] = {
    "none": Therapy(name="none", description="no adjunct therapy"),
    # Dakwar 2020: 5-week outpatient MET course, infusion on the quit day in week 2 [P]; weekly
    # sessions at study days -7, 0, 7, 14, 21 with day 0 = infusion (ASSUMPTION: weekly schedule).
    "met": Therapy(
        name="met",
        session_days=(-7, 0, 7, 14, 21),
        motivation_logit_per_session=0.4,  # ASSUMPTION
        coping_skill_gain_per_session=0.05,  # ASSUMPTION
        coping_skill_max=0.3,  # ASSUMPTION
        description="motivational enhancement therapy (5 weekly sessions, Dakwar 2020 design)",
    ),
    # KARE design: 7 sessions of mindfulness-based relapse prevention [S]; ASSUMPTION: weekly
    # from the first infusion.
    "mbrp": Therapy(
        name="mbrp",
        session_days=(0, 7, 14, 21, 28, 35, 42),
        motivation_logit_per_session=0.15,  # ASSUMPTION
        coping_skill_gain_per_session=0.15,  # ASSUMPTION
        coping_skill_max=0.5,  # ASSUMPTION
        description="mindfulness-based relapse prevention (7 weekly sessions, KARE design)",
    ),
    # KARE design: alcohol education as the control [P]; same contact schedule as mbrp.
    "education": Therapy(
        name="education",
        session_days=(0, 7, 14, 21, 28, 35, 42),
        motivation_logit_per_session=0.05,  # ASSUMPTION: attention/contact effect only
        description="alcohol education (attention control, KARE design)",
    ),
}


def resolve_therapy(spec: TherapySpec | str, name: str | None = None) -> Therapy:
    """Complete a therapy spec (or a preset name) into a :class:`Therapy`."""
    if isinstance(spec, str):
        if spec not in THERAPY_PRESETS:
            raise InputError(
                f"unknown therapy {spec!r}; valid presets: {', '.join(THERAPY_PRESETS)}"
            )
        return THERAPY_PRESETS[spec]
    base = THERAPY_PRESETS[spec.preset]
    update = {k: v for k, v in spec if k != "preset" and v is not None}
    if "session_days" in update:
        update["session_days"] = tuple(sorted(update["session_days"]))
    update["name"] = name or spec.preset
    return Therapy.model_validate({**base.model_dump(), **update})
