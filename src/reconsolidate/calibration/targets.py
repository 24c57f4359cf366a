"""Calibration targets: published numbers with their source, window and uncertainty.

A targets file (TOML, validated by pydantic; the shipped one is ``calibration/targets.toml``) has
three parts:

- ``[scenarios.NAME]``: a simulated trial design (a trial-spec TOML file, relative to the targets
  file) and the number of virtual patients per arm used to predict its targets;
- ``[[targets]]``: one published number each: ``id``, ``source`` (paper, DOI, table or page and
  confidence tag), ``cohort``, ``scenario``, ``arm`` (and ``reference_arm`` for a contrast;
  ``share_of_arm`` for an effect share),
  ``endpoint``, ``statistic``, ``window_days`` (inclusive study days), ``published`` (a number, or
  a text for a directional finding), ``interval`` [lo, hi] (a CI where published, else a stated
  tolerance) and ``uncertainty`` (which of the two, and why);
- ``[[parameters]]``: the free parameters (labelled ASSUMPTION in the memory, behaviour and therapy
  parameters) with their bounds.

>>> from reconsolidate.calibration import load_targets
>>> t = load_targets()
>>> sorted({x.scenario for x in t.targets})
['combine', 'dakwar2020', 'das2019', 'untreated']
"""

from __future__ import annotations

import functools
import hashlib
import math
from pathlib import Path
from typing import Literal, get_args

from pydantic import Field, model_validator

from reconsolidate._config import StrictModel, load_toml_model
from reconsolidate.endpoints.summary import BINARY_ENDPOINTS
from reconsolidate.endpoints.summary import HIGHER_IS_BETTER as _ENDPOINT_HIGHER_IS_BETTER
from reconsolidate.exceptions import InputError

__all__ = [
    "DEFAULT_TARGETS_PATH",
    "ENDPOINTS",
    "STATISTICS",
    "FreeParameter",
    "Scenario",
    "Target",
    "TargetSet",
    "load_targets",
]

DEFAULT_TARGETS_PATH = Path(__file__).with_name("targets.toml")

Statistic = Literal[
    "mean", "change_pct", "mean_abs_change", "mean_abs_deviation_from_usual", "share_at_least",
    "difference", "effect_share", "odds_ratio", "hazard_ratio",
]
STATISTICS: tuple[str, ...] = get_args(Statistic)
# Per-patient endpoints a target may name: fields of reconsolidate.endpoints.ParticipantEndpoints,
# plus two derived ones (drinking_days_per_week = 7 x percent_drinking_days / 100; abstinent_day =
# the pooled daily abstinence used by odds_ratio).
Endpoint = Literal[
    "percent_days_abstinent",
    "percent_drinking_days",
    "percent_heavy_drinking_days",
    "drinks_per_drinking_day",
    "drinks_per_week",
    "drinking_days_per_week",
    "no_heavy_drinking_days",
    "abstinent_last_days",
    "abstinent_day",
    "days_to_first_heavy_day",
    "who_reduction_1_level",
    "who_reduction_2_levels",
]
ENDPOINTS: tuple[str, ...] = get_args(Endpoint)
#: Endpoints on which a higher value is the better outcome (less drinking); on the others a lower
#: value is: the endpoints' own table (:data:`reconsolidate.endpoints.HIGHER_IS_BETTER`) and the
#: targets' daily ``abstinent_day``. An ``effect_share`` is defined only when its
#: ``share_of_arm`` does better than the reference on this scale.
HIGHER_IS_BETTER: frozenset[str] = _ENDPOINT_HIGHER_IS_BETTER | {"abstinent_day"}
PARAMETER_GROUPS = ("behavior", "memory", "therapy", "cohort")


class Scenario(StrictModel):
    """A simulated trial design used to predict targets."""

    spec: str = Field(description="trial spec TOML, relative to the targets file")
    patients_per_arm: int = Field(300, ge=2, le=1_000_000)


class Target(StrictModel):
    """One published number and how to predict it from a simulated trial."""

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_\-.]+$")
    source: str = Field(min_length=1)
    cohort: str = Field(min_length=1)
    scenario: str
    arm: str
    reference_arm: str | None = None
    share_of_arm: str | None = Field(
        None,
        description="for statistic 'effect_share': the arm whose effect over reference_arm is "
        "the denominator (the share is (arm - reference_arm) / (share_of_arm - reference_arm))",
    )
    endpoint: Endpoint
    statistic: Statistic
    of: Literal["mean", "change_pct"] | None = Field(
        None,
        description="for statistics 'difference' and 'effect_share': the per-arm statistic "
        "differenced",
    )
    window_days: tuple[int, int]
    missing_days: Literal["heavy", "abstinent", "exclude"] | None = Field(
        None, description="missing-day rule for this target (default: the scenario's analysis)"
    )
    data: Literal["reported", "true"] = Field(
        "reported", description="TLFB-reported drinking (as a trial sees it) or the true drinking"
    )
    usual_days_per_week_below: float | None = Field(
        None, gt=0, le=7,
        description="for statistic 'mean_abs_deviation_from_usual': only the patients whose "
        "usual drinking days per week (the cohort covariate) are below this")
    at_least: float | None = Field(
        None,
        description="for statistic 'share_at_least': the percent of patients whose endpoint in "
        "the window is at least this (in the endpoint's units)")
    among_drinkers_in_days: tuple[int, int] | None = Field(
        None,
        description="for statistic 'share_at_least': only the patients who drank (reported a "
        "drink, or drank with data = 'true') on a day of this inclusive window of study days")
    published: float | str
    interval: tuple[float, float]
    scale: float | None = Field(
        None, gt=0, description="loss scale for a directional target (published is a text)"
    )
    uncertainty: str = Field(min_length=1)
    weight: float = Field(1.0, ge=0)

    @model_validator(mode="after")
    def _check(self) -> Target:
        lo, hi = self.interval
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise ValueError(f"interval {list(self.interval)}: need finite lo <= hi")
        a, b = self.window_days
        if a > b:
            raise ValueError(f"window_days {list(self.window_days)}: first > last")
        contrast = self.statistic in ("difference", "effect_share", "odds_ratio", "hazard_ratio")
        if contrast and not self.reference_arm:
            raise ValueError(f"statistic {self.statistic!r} needs reference_arm")
        if self.statistic in ("difference", "effect_share") and self.of is None:
            raise ValueError(f"statistic {self.statistic!r} needs of = 'mean' or 'change_pct'")
        if (self.statistic == "effect_share") != (self.share_of_arm is not None):
            raise ValueError("share_of_arm is needed by, and only by, statistic 'effect_share'")
        if self.share_of_arm is not None and self.share_of_arm in (self.arm, self.reference_arm):
            raise ValueError(f"share_of_arm {self.share_of_arm!r}: must differ from arm and "
                             "reference_arm")
        if (self.statistic == "change_pct" or self.of == "change_pct") and (
            self.endpoint != "drinks_per_week"
        ):
            raise ValueError("change_pct is defined for endpoint 'drinks_per_week' only")
        if (self.usual_days_per_week_below is not None
                and self.statistic != "mean_abs_deviation_from_usual"):
            raise ValueError("usual_days_per_week_below belongs to statistic "
                             "'mean_abs_deviation_from_usual'")
        share = self.statistic == "share_at_least"
        if share != (self.at_least is not None):
            raise ValueError("at_least is needed by, and only by, statistic 'share_at_least'")
        if self.among_drinkers_in_days is not None:
            if not share:
                raise ValueError("among_drinkers_in_days belongs to statistic 'share_at_least'")
            if self.among_drinkers_in_days[0] > self.among_drinkers_in_days[1]:
                raise ValueError(f"among_drinkers_in_days {list(self.among_drinkers_in_days)}: "
                                 "first > last")
        if self.statistic in ("mean_abs_change", "share_at_least") and self.endpoint in (
            "abstinent_day", "days_to_first_heavy_day", *BINARY_ENDPOINTS,
        ):
            raise ValueError(f"{self.statistic} needs a per-patient rate or amount as endpoint "
                             "(e.g. 'percent_drinking_days', 'drinks_per_week')")
        if self.statistic == "mean_abs_deviation_from_usual" and (
            self.endpoint != "percent_drinking_days"
        ):
            raise ValueError("mean_abs_deviation_from_usual is defined for endpoint "
                             "'percent_drinking_days' only")
        if self.statistic == "odds_ratio" and self.endpoint != "abstinent_day":
            raise ValueError("odds_ratio is defined for endpoint 'abstinent_day' only")
        if self.statistic == "hazard_ratio" and self.endpoint != "days_to_first_heavy_day":
            raise ValueError("hazard_ratio is defined for endpoint 'days_to_first_heavy_day'")
        if isinstance(self.published, str):
            if self.scale is None:
                raise ValueError("a directional target (published is a text) needs 'scale'")
        elif not lo <= self.published <= hi:
            raise ValueError(f"published {self.published} lies outside interval {[lo, hi]}")
        return self

    @property
    def loss_scale(self) -> float:
        """Scale of the target's loss: half the interval for a number, else ``scale``."""
        if self.scale is not None:
            return float(self.scale)
        lo, hi = self.interval
        return max((hi - lo) / 2.0, 1e-9)

    def passed(self, predicted: float | None) -> bool:
        """True when ``predicted`` lies inside the closed interval."""
        if predicted is None or not math.isfinite(predicted):
            return False
        lo, hi = self.interval
        return lo <= predicted <= hi


class FreeParameter(StrictModel):
    """A free (ASSUMPTION-labelled) parameter: dotted name and bounds."""

    name: str = Field(
        pattern=r"^(behavior|memory|cohort)\.[a-z0-9_]+$|^therapy\.[a-z0-9_]+\.[a-z0-9_]+$",
        description="behavior.X, memory.X, cohort.X or therapy.PRESET.X",
    )
    low: float
    high: float
    log: bool = False
    why: str = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> FreeParameter:
        if not self.low < self.high:
            raise ValueError(f"{self.name}: need low < high, got [{self.low}, {self.high}]")
        if self.log and self.low <= 0:
            raise ValueError(f"{self.name}: a log-scale parameter needs low > 0")
        return self


class LabConstraints(StrictModel):
    """Laboratory paradigms whose declared checks the calibrated memory must keep passing.

    Each failed check adds ``weight x ((shortfall + 0.001) / scale)^2`` to the loss, the
    shortfall being how far the check's value misses its bound (response or reward prediction,
    0-1); the paradigms run with the candidate's memory parameters.
    """

    paradigms: list[str] = Field(min_length=1, description="built-in paradigm names")
    model: Literal["population", "reference"] = Field(
        "population", description="memory model that runs them (the trial engine's: population)")
    scale: float = Field(0.05, gt=0, description="shortfall costing `weight`, response units")
    weight: float = Field(1.0, gt=0)
    why: str = ""

    @model_validator(mode="after")
    def _known(self) -> LabConstraints:
        from reconsolidate.memory.paradigm import builtin_paradigms

        known = builtin_paradigms()
        bad = [n for n in self.paradigms if n not in known]
        if bad:
            raise ValueError(f"lab.paradigms: unknown {bad}; allowed: {', '.join(known)}")
        return self


class TargetSet(StrictModel):
    """A whole targets file."""

    version: int = 1
    description: str = ""
    scenarios: dict[str, Scenario] = Field(min_length=1)
    targets: list[Target] = Field(min_length=1)
    parameters: list[FreeParameter] = Field(default_factory=list)
    lab: LabConstraints | None = None

    @model_validator(mode="after")
    def _check(self) -> TargetSet:
        ids = [t.id for t in self.targets]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate target ids: {dup}")
        for t in self.targets:
            if t.scenario not in self.scenarios:
                raise ValueError(
                    f"target {t.id!r}: unknown scenario {t.scenario!r}; valid: "
                    f"{', '.join(self.scenarios)}"
                )
        names = [p.name for p in self.parameters]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate parameter names: {names}")
        return self


class LoadedTargets:
    """A validated :class:`TargetSet` with the folder its scenario paths are relative to."""

    def __init__(self, model: TargetSet, path: Path) -> None:
        self.model = model
        self.path = path
        self.base = path.parent
        self.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()

    @functools.cached_property
    def scenarios_sha256(self) -> str:
        """SHA-256 of every scenario spec and the regimen files they name, in scenario-name
        order: what the simulations of a fit read besides the targets file."""
        h = hashlib.sha256()
        for name in sorted(self.scenarios):
            spec_file = self.base / self.scenarios[name].spec
            h.update(name.encode() + b"\0" + spec_file.read_bytes())
            for ref in regimen_refs(spec_file):
                h.update(f"\0{ref}\0".encode() + (spec_file.parent / ref).read_bytes())
        return h.hexdigest()

    @functools.cached_property
    def lab_sha256(self) -> str | None:
        """SHA-256 of the ``[lab]`` paradigm files and their regimens (None without ``[lab]``):
        the laboratory constraints are part of what a fit was made against."""
        if self.model.lab is None:
            return None
        from reconsolidate.memory.paradigm import builtin_sources_sha256

        return builtin_sources_sha256(self.model.lab.paradigms)

    @property
    def targets(self) -> list[Target]:
        return self.model.targets

    @property
    def parameters(self) -> list[FreeParameter]:
        return self.model.parameters

    @property
    def scenarios(self) -> dict[str, Scenario]:
        return self.model.scenarios

    def scenario_path(self, name: str) -> Path:
        return (self.base / self.scenarios[name].spec).resolve()

    def patients_per_arm(self, name: str, override: int | None = None) -> int:
        """Simulated patients per arm of scenario ``name``: ``override``, else the file's."""
        return override or self.scenarios[name].patients_per_arm

    def select(self, ids: list[str] | None) -> list[Target]:
        """The targets with the given ids (all when None); unknown id -> InputError."""
        if not ids:
            return list(self.targets)
        known = {t.id: t for t in self.targets}
        bad = [i for i in ids if i not in known]
        if bad:
            raise InputError(f"unknown target id(s) {bad}; valid: {', '.join(known)}")
        return [known[i] for i in ids]


def regimen_refs(spec_file: Path) -> list[str]:
    """The regimen files a trial spec names (paths relative to the spec), in session order."""
    from reconsolidate.trial.spec import load_trial_spec

    refs: list[str] = []
    for prot in load_trial_spec(spec_file).protocols.values():
        refs += [s.regimen for s in prot.sessions if isinstance(s.regimen, str)]
    return refs


def load_targets(path: str | Path | None = None) -> LoadedTargets:
    """Read and validate a targets file (default: the shipped ``calibration/targets.toml``).

    Errors (missing file, bad field, unknown scenario) raise InputError naming the field.
    """
    p = Path(path) if path is not None else DEFAULT_TARGETS_PATH
    model = load_toml_model(p, TargetSet)
    lt = LoadedTargets(model, p.resolve())
    for name in model.scenarios:
        sp = lt.scenario_path(name)
        if not sp.is_file():
            raise InputError(f"{p}: scenarios.{name}.spec = {model.scenarios[name].spec!r}: "
                             f"file not found (relative to {lt.base})")
    return lt
