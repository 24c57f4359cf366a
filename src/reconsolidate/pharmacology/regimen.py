"""Dosing regimens: boluses, constant and multi-step infusions, plasma and effect-site TCI.

A regimen is a strict pydantic model, written in Python or read from TOML. Every amount carries
its units in the key name (``dose_mg_per_kg`` or ``dose_mg``; ``rate_mg_per_kg_per_h``, ...);
a key without units is rejected with the list of allowed keys. Time 0 is the start of the first
administration, so the earliest administration must start at 0 min.

TOML layout (see ``examples/regimens/``)::

    name = "Dakwar 2020"
    [[infusion]]
    start_min = 0
    duration_min = 2
    dose_mg_per_kg = 0.11
    [[infusion]]
    start_min = 2
    duration_min = 50
    dose_mg_per_kg = 0.60

    [[bolus]]            # optional
    time_min = 0
    dose_mg = 10

    [[tci]]              # target-controlled infusion phases
    start_min = 0
    duration_min = 30
    target = "plasma"    # or "effect_site"
    target_ng_ml = 350
    # plasma_limit_ng_ml = 420   # optional, effect_site only: cap on the predicted plasma
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, ValidationInfo, field_validator, model_validator

from reconsolidate._config import StrictModel, load_toml_model
from reconsolidate.exceptions import InputError

__all__ = [
    "MAX_DOSE_MG",
    "MAX_DOSE_MG_PER_KG",
    "MAX_RATE_MG_PER_KG_PER_H",
    "MAX_TCI_TARGET_NG_ML",
    "STANPUMP_MAX_RATE_MG_PER_KG_PER_MIN",
    "STANPUMP_UPDATE_INTERVAL_S",
    "Bolus",
    "Infusion",
    "Regimen",
    "TCIPhase",
    "load_regimen",
]

#: Maximum ketamine infusion rate in STANPUMP, 0.75 mg/kg/min (STANPUMP ``DRUGS.C``, ketamine
#: entry; pharmacology notes section 5.5) [C]. Used as the default pump limit.
STANPUMP_MAX_RATE_MG_PER_KG_PER_MIN = 0.75

#: TCI update interval of STANPUMP (``delta_seconds = 10``; notes section 5.5) [C].
STANPUMP_UPDATE_INTERVAL_S = 10.0

#: Largest amount of one bolus, and of one infusion step lasting up to an hour, mg/kg.
#: ASSUMPTION, grounded on the ketamine label (Ketalar, US prescribing information: IV induction
#: of anaesthesia 1-4.5 mg/kg; general knowledge [U], not in the project's pharmacology notes):
#: no single administration may exceed the top of the anaesthetic induction range. The trial
#: regimens simulated here are sub-anaesthetic (0.5-0.8 mg/kg over 40-52 min; pharmacology notes
#: section 4), and the largest bolus in the notes is Sleigh 2019's anaesthetic 1.5 mg/kg [V].
#: A longer infusion step may give up to this amount per hour (:data:`MAX_RATE_MG_PER_KG_PER_H`),
#: so that long sedation infusions (e.g. the ICU population of the Hijazi model) stay possible.
MAX_DOSE_MG_PER_KG = 4.5

#: Largest amount of one administration given in mg, 540 mg = 4.5 mg/kg x 120 kg [D]: the
#: per-kg maximum (:data:`MAX_DOSE_MG_PER_KG`, ASSUMPTION) at the heaviest adult weight the
#: cohorts are truncated to for the pharmacology models (``population/cohorts.py``).
MAX_DOSE_MG = MAX_DOSE_MG_PER_KG * 120.0

#: Largest mean rate of an infusion step longer than an hour, mg/kg/h: the induction maximum
#: per hour (ASSUMPTION; above any maintenance rate we know of [U]). A step may deliver
#: max(MAX_DOSE_MG_PER_KG, MAX_RATE_MG_PER_KG_PER_H x its duration in h) (and likewise in mg),
#: and the whole regimen at most MAX_DOSE_MG_PER_KG (MAX_DOSE_MG) within any 60 minutes,
#: boluses and infusions together (Regimen._check_hourly_amount): 35 mg/kg over 40 min is
#: rejected in one step or split into several, 2 mg/kg/h for 24 h is not.
MAX_RATE_MG_PER_KG_PER_H = MAX_DOSE_MG_PER_KG

#: Largest TCI target (plasma or effect site), ng/mL. ASSUMPTION: 3000 ng/mL = 3 ug/mL, the
#: anaesthesia EC50 2 (SD 0.5) mg/L plus two SDs [D] (adult values cited by Herd 2008 [V]; notes
#: section 6). Loss of responsiveness after 1.5 mg/kg is at Ce 1.64 (0.17) ug/mL (Sleigh 2019,
#: BJA 123:592 [V]) and the anaesthetic steady state at Cp ~2.2 ug/mL (White 1979 [V]), both
#: below it; the reconsolidation targets are ~350 ng/mL or less.
MAX_TCI_TARGET_NG_ML = 3000.0

_WHY_DOSE = (f"(ASSUMPTION: the top of the ketamine label's IV induction range, 1-"
             f"{MAX_DOSE_MG_PER_KG:g} mg/kg; {MAX_DOSE_MG:g} mg = {MAX_DOSE_MG_PER_KG:g} mg/kg "
             "x 120 kg)")

_DOSE_KEYS = ("dose_mg_per_kg", "dose_mg")
_RATE_KEYS = ("rate_mg_per_kg_per_min", "rate_mg_per_kg_per_h", "rate_mg_per_min", "rate_mg_per_h")


def _reject_unknown(data: Any, allowed: tuple[str, ...], what: str) -> Any:
    """Reject keys not in ``allowed`` with a message that lists the allowed keys."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key not in allowed:
                hint = ""
                if key in {"dose", "rate", "amount", "dose_mg_kg", "mg", "mg_per_kg", "target"}:
                    hint = " (amounts need explicit units in the key name)"
                raise ValueError(
                    f"unknown key '{key}' = {value!r} in {what}{hint}; allowed: "
                    + ", ".join(allowed)
                )
    return data


def _check_dose(value: float | None, key: str, what: str) -> float | None:
    """Reject one administration's dose above :data:`MAX_DOSE_MG_PER_KG` / :data:`MAX_DOSE_MG`."""
    if value is None:
        return value
    limit, unit = ((MAX_DOSE_MG_PER_KG, "mg/kg") if key.endswith("per_kg")
                   else (MAX_DOSE_MG, "mg"))
    if value > limit:
        raise ValueError(f"implausible ketamine dose; allowed: (0, {limit:g}] {unit} per {what} "
                         f"{_WHY_DOSE}")
    return value


def _exactly_one(obj: StrictModel, keys: tuple[str, ...], what: str) -> None:
    given = [k for k in keys if getattr(obj, k) is not None]
    if len(given) != 1:
        raise ValueError(
            f"{what} needs exactly one of {', '.join(keys)}; got "
            + (", ".join(given) if given else "none")
        )


class Bolus(StrictModel):
    """An instantaneous IV bolus (given by hand: not limited by the pump's maximum rate)."""

    time_min: float = Field(ge=0, allow_inf_nan=False, description="time of the bolus (min)")
    dose_mg_per_kg: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    dose_mg: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, data: Any) -> Any:
        return _reject_unknown(data, ("time_min", *_DOSE_KEYS), "a bolus")

    @field_validator(*_DOSE_KEYS)
    @classmethod
    def _plausible(cls, v: float | None, info: ValidationInfo) -> float | None:
        return _check_dose(v, str(info.field_name), "bolus")

    @model_validator(mode="after")
    def _one_dose(self) -> Bolus:
        _exactly_one(self, _DOSE_KEYS, "a bolus")
        return self

    def dose_mg_for(self, weight_kg: np.ndarray) -> np.ndarray:
        """Dose in mg for each patient weight (kg)."""
        if self.dose_mg is not None:
            return np.full(np.shape(weight_kg), self.dose_mg)
        return self.dose_mg_per_kg * np.asarray(weight_kg)  # type: ignore[operator]


class Infusion(StrictModel):
    """A constant-rate infusion over ``[start_min, start_min + duration_min)``.

    Give the amount as a total dose (``dose_mg_per_kg`` or ``dose_mg``, spread evenly over the
    duration) or as a rate (``rate_mg_per_kg_per_min``, ``rate_mg_per_kg_per_h``,
    ``rate_mg_per_min`` or ``rate_mg_per_h``).
    """

    start_min: float = Field(ge=0, allow_inf_nan=False)
    duration_min: float = Field(gt=0, allow_inf_nan=False)
    dose_mg_per_kg: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    dose_mg: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    rate_mg_per_kg_per_min: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    rate_mg_per_kg_per_h: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    rate_mg_per_min: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    rate_mg_per_h: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, data: Any) -> Any:
        return _reject_unknown(
            data, ("start_min", "duration_min", *_DOSE_KEYS, *_RATE_KEYS), "an infusion"
        )

    @model_validator(mode="after")
    def _one_amount(self) -> Infusion:
        _exactly_one(self, _DOSE_KEYS + _RATE_KEYS, "an infusion")
        key = self.amount_key()
        # the step's whole amount: the dose, or rate x duration
        value = getattr(self, key)
        total = value if key in _DOSE_KEYS else (
            value * self.duration_min / (60.0 if key.endswith("_h") else 1.0))
        per_kg = "per_kg" in key
        base, unit = (MAX_DOSE_MG_PER_KG, "mg/kg") if per_kg else (MAX_DOSE_MG, "mg")
        hours = self.duration_min / 60.0
        limit = base * max(1.0, hours * MAX_RATE_MG_PER_KG_PER_H / MAX_DOSE_MG_PER_KG)
        if total > limit * (1 + 1e-12):
            given = (f"{key} = {value:g}" if key in _DOSE_KEYS else
                     f"{key} = {value:g} for duration_min = {self.duration_min:g} gives "
                     f"{total:.4g} {unit}")
            raise ValueError(
                f"{given}: an implausible ketamine dose for a {self.duration_min:g}-min step; "
                f"allowed: at most {limit:.4g} {unit} (the larger of {base:g} {unit} and "
                f"{base:g} {unit} per hour of the step) {_WHY_DOSE}"
            )
        return self

    @property
    def stop_min(self) -> float:
        """End of the infusion (min)."""
        return self.start_min + self.duration_min

    def rate_mg_per_kg_per_min_or_none(self) -> float | None:
        """The weight-based rate (mg/kg/min), or ``None`` for absolute amounts."""
        if self.dose_mg_per_kg is not None:
            return self.dose_mg_per_kg / self.duration_min
        if self.rate_mg_per_kg_per_min is not None:
            return self.rate_mg_per_kg_per_min
        if self.rate_mg_per_kg_per_h is not None:
            return self.rate_mg_per_kg_per_h / 60.0
        return None

    def rate_mg_per_min_for(self, weight_kg: np.ndarray) -> np.ndarray:
        """Rate in mg/min for each patient weight (kg)."""
        per_kg = self.rate_mg_per_kg_per_min_or_none()
        if per_kg is not None:
            return per_kg * np.asarray(weight_kg, dtype=np.float64)
        if self.dose_mg is not None:
            r = self.dose_mg / self.duration_min
        elif self.rate_mg_per_min is not None:
            r = self.rate_mg_per_min
        else:
            r = self.rate_mg_per_h / 60.0  # type: ignore[operator]
        return np.full(np.shape(weight_kg), r, dtype=np.float64)

    def amount_key(self) -> str:
        """The key that carries the amount (for error messages)."""
        for k in _DOSE_KEYS + _RATE_KEYS:
            if getattr(self, k) is not None:
                return k
        raise AssertionError("validated infusion has an amount")  # pragma: no cover


class TCIPhase(StrictModel):
    """A target-controlled infusion phase.

    ``target = "plasma"``: Jacobs 1990 / Bailey & Shafer 1991 algorithm (STANPUMP); the rate for
    each update interval brings the predicted plasma concentration to the target at its end.
    ``target = "effect_site"``: Shafer & Gregg 1992; the rate for each interval makes the
    predicted *peak* effect-site concentration equal the target, without overshoot; once the
    effect site is within 5% of the target the pump holds it by plasma targeting (STANPUMP; see
    ``pharmacology/dosing.py``).
    ``plasma_limit_ng_ml`` (effect site only, optional, default unlimited): the predicted plasma
    concentration is kept at or below it (Van Poucke, Bravo & Shafer 2004; opentiva
    ``cp_limit``); it must be at least ``target_ng_ml``.
    """

    start_min: float = Field(ge=0, allow_inf_nan=False)
    duration_min: float = Field(gt=0, allow_inf_nan=False)
    target: Literal["plasma", "effect_site"]
    target_ng_ml: float = Field(gt=0, allow_inf_nan=False)
    plasma_limit_ng_ml: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, data: Any) -> Any:
        return _reject_unknown(
            data, ("start_min", "duration_min", "target", "target_ng_ml", "plasma_limit_ng_ml"),
            "a TCI phase",
        )

    @model_validator(mode="after")
    def _limit_consistent(self) -> TCIPhase:
        lim = self.plasma_limit_ng_ml
        if lim is None:
            return self
        if self.target != "effect_site":
            raise ValueError(
                f"plasma_limit_ng_ml = {lim:g} applies only to target = 'effect_site' (plasma "
                "targeting never exceeds its target)"
            )
        if lim < self.target_ng_ml:
            raise ValueError(
                f"plasma_limit_ng_ml = {lim:g} is below target_ng_ml = {self.target_ng_ml:g}; "
                "allowed: at least the target (the effect site cannot exceed the plasma limit)"
            )
        return self

    @field_validator("target_ng_ml")
    @classmethod
    def _plausible(cls, v: float) -> float:
        if v > MAX_TCI_TARGET_NG_ML:
            raise ValueError(
                f"implausible ketamine concentration; allowed: (0, {MAX_TCI_TARGET_NG_ML:g}] "
                "ng/mL (ASSUMPTION: anaesthesia EC50 2 (SD 0.5) ug/mL plus two SDs; loss of "
                "responsiveness at Ce 1.64 ug/mL, Sleigh 2019)"
            )
        return v

    @property
    def stop_min(self) -> float:
        """End of the phase (min)."""
        return self.start_min + self.duration_min


class Regimen(StrictModel):
    """A ketamine dosing regimen (time 0 = start of the first administration).

    Attributes
    ----------
    name, description, source
        Free text; ``source`` should cite where the regimen comes from.
    bolus, infusion, tci
        Administrations. Infusions and TCI phases must not overlap one another (one pump);
        boluses may be given at any time.
    tci_update_interval_s
        TCI update interval in seconds (STANPUMP default 10 s).
    max_rate_mg_per_kg_per_min
        The pump's maximum rate (default 0.75 mg/kg/min, STANPUMP ketamine). Manual infusions
        above it are rejected; TCI rates are clipped to it.
    pump_model
        PK model the TCI pump runs (default: the model being simulated).
    """

    name: str = ""
    description: str = ""
    source: str = ""
    bolus: list[Bolus] = Field(default_factory=list)
    infusion: list[Infusion] = Field(default_factory=list)
    tci: list[TCIPhase] = Field(default_factory=list)
    tci_update_interval_s: float = Field(
        default=STANPUMP_UPDATE_INTERVAL_S, gt=0, le=600, allow_inf_nan=False
    )
    max_rate_mg_per_kg_per_min: float = Field(
        default=STANPUMP_MAX_RATE_MG_PER_KG_PER_MIN, gt=0, allow_inf_nan=False
    )
    pump_model: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _keys(cls, data: Any) -> Any:
        return _reject_unknown(
            data,
            ("name", "description", "source", "bolus", "infusion", "tci",
             "tci_update_interval_s", "max_rate_mg_per_kg_per_min", "pump_model"),
            "a regimen",
        )

    @field_validator("pump_model")
    @classmethod
    def _pump_model_known(cls, v: str | None) -> str | None:
        if v is not None:
            from reconsolidate.pharmacology.models import list_models

            if v.lower() not in list_models():
                raise ValueError(f"unknown PK model; allowed: {', '.join(list_models())}")
            return v.lower()
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Regimen:
        if not (self.bolus or self.infusion or self.tci):
            raise ValueError("a regimen needs at least one bolus, infusion or tci phase")
        for i, inf in enumerate(self.infusion):
            r = inf.rate_mg_per_kg_per_min_or_none()
            if r is not None and r > self.max_rate_mg_per_kg_per_min * (1 + 1e-12):
                raise ValueError(
                    f"infusion[{i}].{inf.amount_key()} gives {r:g} mg/kg/min, above the pump "
                    f"maximum max_rate_mg_per_kg_per_min = {self.max_rate_mg_per_kg_per_min:g}"
                )
        spans = [(x.start_min, x.stop_min, f"infusion[{i}]") for i, x in enumerate(self.infusion)]
        spans += [(x.start_min, x.stop_min, f"tci[{i}]") for i, x in enumerate(self.tci)]
        spans.sort()
        for (_s0, e0, n0), (s1, _e1, n1) in itertools.pairwise(spans):
            if s1 < e0 - 1e-9:
                raise ValueError(
                    f"{n1} starts at {s1:g} min, before {n0} ends at {e0:g} min; infusions and "
                    f"TCI phases must not overlap (one pump)"
                )
        self._check_hourly_amount()
        starts = [s for s, _, _ in spans] + [b.time_min for b in self.bolus]
        if min(starts) != 0.0:
            raise ValueError(
                f"the first administration starts at {min(starts):g} min; time 0 is the start "
                "of the first administration, so it must start at 0"
            )
        return self

    def _check_hourly_amount(self) -> None:
        """At most an induction dose (:data:`MAX_DOSE_MG_PER_KG`, or :data:`MAX_DOSE_MG` for
        doses in mg) within any 60 minutes of the regimen, boluses and infusions together, so
        that a dose split into several boluses or steps is caught as a single one would be."""
        families: dict[str, tuple[list[tuple[float, float]], list[tuple[float, float, float]]]]
        families = {"mg/kg": ([], []), "mg": ([], [])}
        for b in self.bolus:
            unit = "mg/kg" if b.dose_mg_per_kg is not None else "mg"
            families[unit][0].append((b.time_min, b.dose_mg_per_kg or b.dose_mg or 0.0))
        for x in self.infusion:
            per_kg = x.rate_mg_per_kg_per_min_or_none()
            unit, rate = (("mg/kg", per_kg) if per_kg is not None
                          else ("mg", float(x.rate_mg_per_min_for(np.zeros(1))[0])))
            families[unit][1].append((x.start_min, x.stop_min, rate))
        for unit, (boluses, steps) in families.items():
            limit = MAX_DOSE_MG_PER_KG if unit == "mg/kg" else MAX_DOSE_MG
            # the amount in [s, s + 60] is piecewise linear in s: its maximum lies where the
            # window's start or end meets a bolus or an infusion's start or stop
            edges = [t for t, _ in boluses] + [e for a, b, _ in steps for e in (a, b)]
            worst, at = 0.0, 0.0
            for s0 in {e - d for e in edges for d in (0.0, 60.0)}:
                s1 = s0 + 60.0
                amount = sum(v for t, v in boluses if s0 <= t <= s1)
                amount += sum(r * max(0.0, min(b, s1) - max(a, s0)) for a, b, r in steps)
                if amount > worst:
                    worst, at = amount, s0
            if worst > limit * (1 + 1e-9):
                raise ValueError(
                    f"{worst:.4g} {unit} within the hour from {max(at, 0.0):g} min (boluses and "
                    f"infusions together): an implausible ketamine dose; allowed: at most "
                    f"{limit:g} {unit} in any 60 minutes {_WHY_DOSE}"
                )

    @property
    def end_min(self) -> float:
        """Time (min) at which the last administration ends."""
        ends = [x.stop_min for x in self.infusion] + [x.stop_min for x in self.tci]
        ends += [b.time_min for b in self.bolus]
        return max(ends)

    @property
    def update_interval_min(self) -> float:
        """TCI update interval in minutes."""
        return self.tci_update_interval_s / 60.0


def load_regimen(path: str | Path) -> Regimen:
    """Read and validate a regimen TOML file (errors: :class:`InputError` naming the field)."""
    return load_toml_model(path, Regimen)


def check_pump_limit(regimen: Regimen, weight_kg: np.ndarray) -> None:
    """Reject absolute-rate infusions above the pump maximum for some patient's weight."""
    w = np.atleast_1d(np.asarray(weight_kg, dtype=np.float64))
    for i, inf in enumerate(regimen.infusion):
        if inf.rate_mg_per_kg_per_min_or_none() is not None:
            continue  # checked at validation
        per_kg = inf.rate_mg_per_min_for(w) / w
        worst = int(np.argmax(per_kg))
        if per_kg[worst] > regimen.max_rate_mg_per_kg_per_min * (1 + 1e-12):
            key = inf.amount_key()
            raise InputError(
                f"field 'infusion[{i}].{key}' = {getattr(inf, key)!r}: gives "
                f"{per_kg[worst]:.4g} mg/kg/min at {w[worst]:g} kg, above the pump maximum "
                f"max_rate_mg_per_kg_per_min = {regimen.max_rate_mg_per_kg_per_min:g}"
            )
