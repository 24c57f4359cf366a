"""The trial spec: a TOML file validated by pydantic (unknown keys are rejected).

Units are in the field names; study day 0 is the day of the first treatment session, negative
days are the baseline. ``docs/trial-spec.md`` explains every field.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    SerializerFunctionWrapHandler,
    WithJsonSchema,
    model_serializer,
    model_validator,
)

from reconsolidate._config import StrictModel, load_toml_model
from reconsolidate.behavior.params import BehaviorParams
from reconsolidate.behavior.therapy import (
    THERAPY_PRESETS,
    Therapy,
    TherapySpec,
    resolve_therapy,
)
from reconsolidate.exceptions import InputError
from reconsolidate.population.cohorts import CohortSpec
from reconsolidate.population.cues import CUE_CLASSES, CueEnvironment
from reconsolidate.population.sample import cohort_range_problem
from reconsolidate.trial.observation import ObservationModel

__all__ = [
    "MIN_PATIENTS_PER_ARM",
    "RETRIEVAL_TYPES",
    "AnalysisSpec",
    "ArmSpec",
    "AssessmentSpec",
    "FactorialSpec",
    "ProtocolSpec",
    "SessionSpec",
    "TrialSpec",
    "load_trial_spec",
]

#: Fewest patients an arm may get (``round(patients_per_arm x allocation)``): an arm of one
#: patient has no between-patient spread and no standard error; design choice, not a source.
MIN_PATIENTS_PER_ARM = 2

RETRIEVAL_TYPES = (
    "alcohol_prediction_error",
    "alcohol_as_expected",
    "non_alcohol_control",
    "none",
)
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# ASSUMPTION: the lab's beer cue retrieves the shared alcohol-reward memory of every external
# drinking context (not stress, an interoceptive cue the lab does not evoke).
DEFAULT_RETRIEVAL_CUES = ("home_evening", "pub_bar", "social_event", "glasses_sound", "beer_sight")


class SessionSpec(StrictModel):
    """One treatment session: a retrieval procedure followed by an infusion."""

    day: int = Field(description="study day of the session (day 0 = first session)")
    retrieval: Literal[
        "alcohol_prediction_error", "alcohol_as_expected", "non_alcohol_control", "none"
    ] = Field(
        description=(
            "alcohol cues with the drink unexpectedly withheld (prediction error, Das 2019), "
            "alcohol cues with the drink given as expected, non-alcohol (orange juice) cues, or "
            "no retrieval procedure at all (e.g. Dakwar 2020)"
        )
    )
    retrieval_cues: list[str] = Field(
        default_factory=lambda: list(DEFAULT_RETRIEVAL_CUES),
        description="cue classes the alcohol retrieval reactivates",
    )
    drug: Literal["ketamine", "saline", "midazolam"]
    regimen: str | dict[str, Any] | None = Field(
        None,
        description="ketamine regimen: a regimen TOML file (path relative to the spec file) or "
        "an inline regimen table (same keys as a regimen file)",
    )
    pk_model: str = Field("domino", description="pharmacology model name")
    pk_variability: bool = Field(True, description="between-patient PK variability")
    delay_min: float = Field(
        0.0,
        ge=-240,
        le=1440,
        description="minutes from the end of retrieval to the start of the infusion (< 0: drug "
        "running during retrieval)",
    )
    retrieval_duration_min: float = Field(
        5.0,
        gt=0,
        le=120,
        description="retrieval length, min (ASSUMPTION: default 5, no published duration used)",
    )

    def _set_of(self, *keys: str) -> list[str]:
        """The fields among ``keys`` given a value other than their default."""
        fields = type(self).model_fields
        return [k for k in keys
                if getattr(self, k) != fields[k].get_default(call_default_factory=True)]

    @model_validator(mode="after")
    def _check(self) -> SessionSpec:
        for c in self.retrieval_cues:
            if c not in CUE_CLASSES:
                raise ValueError(f"unknown cue class {c!r}; valid: {', '.join(CUE_CLASSES)}")
        if self.drug == "ketamine" and not self.regimen:
            raise ValueError("a ketamine session needs 'regimen' (a regimen TOML file)")
        if self.retrieval in ("alcohol_prediction_error", "alcohol_as_expected") and \
                not self.retrieval_cues:
            raise ValueError(f"retrieval_cues = []: a {self.retrieval} retrieval needs at least "
                             f"one cue class to reactivate (allowed: {', '.join(CUE_CLASSES)})")
        if self.retrieval == "none":
            # a session without retrieval has no cues, no retrieval length and nothing for the
            # drug's delay to be measured from: values given for them would be silently ignored
            given = self._set_of("retrieval_cues", "retrieval_duration_min", "delay_min")
            if given:
                raise ValueError(f"{', '.join(given)}: a session with retrieval = 'none' takes "
                                 "none of these (no retrieval to reactivate cues, last or be "
                                 "timed from)")
        if self.drug != "ketamine":
            # silently ignored otherwise: only ketamine is simulated pharmacologically
            given = self._set_of("pk_model", "pk_variability", "regimen")
            if given:
                raise ValueError(f"{', '.join(given)}: only a ketamine session takes these, "
                                 f"not a {self.drug} session")
        from reconsolidate.pharmacology.models import list_models

        if self.pk_model not in list_models():
            raise ValueError(f"pk_model = {self.pk_model!r}: unknown PK model; allowed: "
                             f"{', '.join(list_models())}")
        from reconsolidate.pharmacology.models import get_model

        if get_model(self.pk_model).analyte != "racemic":
            # a trial's ketamine is racemic (regimen doses are of the racemate); an S-ketamine
            # model would treat them as S-ketamine, which blocks NMDA receptors ~2.4x as much
            racemic = [m for m in list_models() if get_model(m).analyte == "racemic"]
            raise ValueError(
                f"pk_model = {self.pk_model!r}: an {get_model(self.pk_model).analyte} model, but "
                f"the trial's drug is racemic ketamine; allowed: {', '.join(racemic)}")
        return self


class ProtocolSpec(StrictModel):
    """A treatment protocol: sessions and lab measurement days."""

    sessions: list[SessionSpec] = Field(min_length=1)
    lab_days: list[int] = Field(
        default_factory=list,
        description="study days of lab urge/liking ratings (0-100), taken before that day's "
        "session; the change is last minus first",
    )

    @model_validator(mode="after")
    def _check(self) -> ProtocolSpec:
        days = [s.day for s in self.sessions]
        if len(set(days)) != len(days):
            raise ValueError(f"two sessions on the same day: {sorted(days)}")
        return self


class ArmSpec(StrictModel):
    """One arm: a protocol, an adjunct therapy and (optionally) its own cohort."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_+\-.]+$")
    protocol: str
    therapy: str = "none"
    cohort: CohortSpec | None = None
    allocation: float = Field(
        1.0,
        gt=0,
        le=100,
        description="relative allocation ratio: the arm gets round(patients_per_arm x "
        f"allocation) patients, at least {MIN_PATIENTS_PER_ARM}",
    )


class FactorialSpec(StrictModel):
    """A factorial design: every protocol crossed with every therapy (arms 'PROTOCOL+THERAPY')."""

    protocols: list[str] = Field(min_length=1)
    therapies: list[str] = Field(min_length=1)


class AssessmentSpec(StrictModel):
    """When Timeline Followback interviews happen.

    Give the follow-up visits either as ``visit_days`` or as a spacing ``visit_every_days``, not
    both. The visit days are checked against the follow-up by :class:`TrialSpec`.
    """

    baseline_visit_day: int = Field(0, description="baseline TLFB interview (covers days before)")
    visit_days: list[int] | None = Field(
        None,
        min_length=1,
        description="follow-up TLFB visit days, distinct, after baseline_visit_day, at most "
        "follow_up_days",
    )
    visit_every_days: int = Field(
        14,
        ge=1,
        le=365,
        description="visit spacing, days, when visit_days is not given (ASSUMPTION: design "
        "default 14)",
    )

    @model_validator(mode="after")
    def _check(self) -> AssessmentSpec:
        if self.visit_days is None:
            return self
        if "visit_every_days" in self.model_fields_set:
            raise ValueError(
                f"assessment.visit_days = {self.visit_days} and assessment.visit_every_days = "
                f"{self.visit_every_days}: give one of them, not both (visit_every_days only "
                "spaces the visits when visit_days is omitted)"
            )
        if len(set(self.visit_days)) != len(self.visit_days):
            raise ValueError(
                f"assessment.visit_days = {self.visit_days}: the visit days must be distinct"
            )
        if min(self.visit_days) <= self.baseline_visit_day:
            raise ValueError(
                f"assessment.baseline_visit_day = {self.baseline_visit_day}: must come before "
                f"every follow-up visit; visit_days = {self.visit_days} starts at day "
                f"{min(self.visit_days)}"
            )
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # with explicit visit days the spacing is unused: leave it out, so that a dumped spec
        # validates again (it would otherwise give both)
        out = handler(self)
        if self.visit_days is not None and isinstance(out, dict):
            out.pop("visit_every_days", None)
        return out


class AnalysisSpec(StrictModel):
    """How outcomes are computed from the observed diary."""

    missing_days: Literal["heavy", "abstinent", "exclude"] = Field(
        "exclude", description="missing-day handling (intent-to-treat)"
    )
    heavy_drinks_men: float = Field(5.0, gt=0, description="heavy day, US drinks (NIAAA >= 5)")
    heavy_drinks_women: float = Field(4.0, gt=0, description="heavy day, US drinks (NIAAA >= 4)")
    abstinent_last_days: int = Field(
        14,
        ge=1,
        description="K of 'abstinent in the last K days', days. Default 14 follows the project's "
        "issue spec ('share abstinent in the final 2 weeks'); it differs from the endpoints "
        "default of 28 days, the 'last 4 weeks of treatment' of Falk/Witkiewitz et al. 2019, "
        "JAMA Psychiatry (PMC6450273)",
    )
    abstinent_last_min_days: int | None = Field(
        None,
        ge=1,
        description="fewest counted (non-missing) days in the last K for a patient to be scored "
        "on 'abstinent in the last K days' (patients below it are not assessable and leave the "
        "denominator); default: half of K, rounded up (endpoints.core.ABSTINENT_LAST_MIN_FRACTION)."
        " Only matters with missing_days = 'exclude'",
    )
    grace_days: int = Field(
        0,
        ge=0,
        description="grace period of the no-heavy-drinking-days endpoint, days. Default 0 (no "
        "grace) is a design choice; Falk et al. 2010 (Alcohol Clin Exp Res 34:2022, PMID "
        "20659066) recommend a grace period of 1-2 months",
    )
    baseline_window_days: tuple[int, int] | None = Field(
        None,
        description="first and last study day (inclusive, both < 0) of the baseline drinking "
        "used for the change from baseline; default: every baseline day",
    )
    reference_arm: str | None = Field(
        None,
        description="the arm the others are compared with (report.html, analyze RUN_DIR); "
        "default: the first arm named as a control (pbo, placebo, saline, midazolam, control, "
        "sham), else the first in sort order",
    )

    @model_validator(mode="after")
    def _check_min_days(self) -> AnalysisSpec:
        k_min = self.abstinent_last_min_days
        if k_min is not None and k_min > self.abstinent_last_days:
            raise ValueError(
                f"abstinent_last_min_days = {k_min}: must be at most abstinent_last_days = "
                f"{self.abstinent_last_days} (counted days among the last K)")
        return self


def _number(v: Any) -> int | float:
    # a memory override keeps its type: an integer field needs an integer (MemoryParams says
    # which fields are), which a float-typed dict would have turned into 10.0
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError("must be a number")
    return v


#: A ``[memory]`` value: an integer or a float, as written.
MemoryValue = Annotated[Any, AfterValidator(_number), WithJsonSchema({"type": "number"})]


class TrialSpec(StrictModel):
    """A virtual randomized trial."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_\-.]+$")
    description: str = ""
    seed: int = Field(0, ge=0)
    replicates: int = Field(1, ge=1, le=1000)
    shared_patients: bool = Field(
        True,
        description="true: patient i is the same person in every arm, with the same days "
        "(common random numbers: arms differ only by treatment, the sharpest comparison of "
        "protocols); false: each arm draws its own patients, as a real parallel-group trial "
        "(use it for power and type-I error across replicates)",
    )
    patients_per_arm: int = Field(
        1000,
        ge=MIN_PATIENTS_PER_ARM,
        description="patients of an arm of allocation 1 (every arm needs at least "
        f"{MIN_PATIENTS_PER_ARM})",
    )
    baseline_days: int = Field(
        28,
        ge=1,
        le=365,
        description="observed baseline days before day 0 (ASSUMPTION: design default 28)",
    )
    burn_in_days: int = Field(
        120,
        ge=0,
        le=365,
        description=(
            "unobserved days before the baseline, so that the cue memories reach their "
            "daily-life level from the sampled acquisition strengths and the drinking-decision "
            "intercept is consistent with them. The burn-in runs in rounds of "
            "burn_in_round_days; at the end of each, the intercept is re-calibrated on each "
            "cue's conditioned response averaged over the round (not on the memory of one day, "
            "which swings with the last exposure's outcome: that left moderate drinkers up to "
            "15 points of drinking days away from their covariate). ASSUMPTION: 120 d; "
            "tests/trial/test_trial_engine.py checks the placebo arm's course"
        ),
    )
    burn_in_round_days: int = Field(
        30,
        ge=1,
        le=365,
        description=(
            "length of a burn-in round, days (a burn-in shorter than this is one round). "
            "ASSUMPTION: 30 d, four rounds in the default burn-in: the intercept and the memory "
            "it drives settle to within the binomial noise of the patient's usual drinking"
        ),
    )
    follow_up_days: int = Field(ge=1, le=3650, description="days from day 0 on")
    start_weekday: Literal[
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"
    ] = "monday"
    quit_day: int | None = Field(
        0,
        description="study day treatment seekers start their quit attempt (None: never); "
        "within the observed days -baseline_days .. follow_up_days - 1",
    )
    detox_days: int = Field(
        0,
        ge=0,
        le=60,
        description="abstinent-at-entry patients cannot drink on the detox_days before "
        "quit_day (no drink being an option, their cue exposures then are not extinction "
        "trials)",
    )
    memory_every_days: int = Field(
        7,
        ge=1,
        le=365,
        description="cadence of the recorded memory snapshots (memory.parquet), days",
    )
    cohort: CohortSpec | None = Field(
        None, description="the trial's cohort (required unless every arm has its own)"
    )
    cues: CueEnvironment = Field(default_factory=CueEnvironment)
    behavior: BehaviorParams = Field(default_factory=BehaviorParams)
    memory: dict[str, MemoryValue] = Field(
        default_factory=dict, description="overrides of reconsolidate.memory MemoryParams"
    )
    observation: ObservationModel = Field(default_factory=ObservationModel)
    assessment: AssessmentSpec = Field(default_factory=AssessmentSpec)
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec)
    protocols: dict[str, ProtocolSpec] = Field(min_length=1)
    therapies: dict[str, TherapySpec] = Field(default_factory=dict)
    arms: list[ArmSpec] = Field(default_factory=list)
    factorial: FactorialSpec | None = None

    @model_validator(mode="after")
    def _check(self) -> TrialSpec:
        arms = self.all_arms()
        if not arms:
            raise ValueError("give at least one arm in 'arms' or a 'factorial' design")
        names = [a.name for a in arms]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            verb = "appears" if len(dup) == 1 else "appear"
            raise ValueError(f"arms: names must be unique; {', '.join(map(repr, dup))} {verb} "
                             f"more than once (arms and factorial together: {names})")
        valid_therapies = sorted(set(THERAPY_PRESETS) | set(self.therapies))
        for a in arms:
            if a.cohort is None and self.cohort is None:
                raise ValueError(
                    f"arm {a.name!r} has no cohort: give a top-level [cohort] or the arm's own"
                )
            if a.protocol not in self.protocols:
                raise ValueError(
                    f"arm {a.name!r}: unknown protocol {a.protocol!r}; valid: "
                    f"{', '.join(self.protocols)}"
                )
            if a.therapy not in valid_therapies:
                raise ValueError(
                    f"arm {a.name!r}: unknown therapy {a.therapy!r}; valid: "
                    f"{', '.join(valid_therapies)}"
                )
        an = self.analysis
        k_scored = min(an.abstinent_last_days, self.follow_up_days)
        if an.abstinent_last_min_days is not None and an.abstinent_last_min_days > k_scored:
            # (the last K days scored are the last min(K, follow_up_days))
            raise ValueError(
                f"analysis.abstinent_last_min_days = {an.abstinent_last_min_days}: must be at "
                f"most the {k_scored} days scored (abstinent_last_days = "
                f"{an.abstinent_last_days}, follow_up_days = {self.follow_up_days})")
        bw = self.analysis.baseline_window_days
        if bw is not None and not (-self.baseline_days <= bw[0] <= bw[1] < 0):
            raise ValueError(
                f"analysis.baseline_window_days = {list(bw)}: need -baseline_days "
                f"({-self.baseline_days}) <= first <= last < 0"
            )
        # Nothing may act inside the unobserved burn-in: its rounds re-calibrate the drinking
        # intercept to the patient's usual drinking and would absorb a treatment's effect.
        first = self.first_day
        for pname, prot in self.protocols.items():
            for i, ses in enumerate(prot.sessions):
                if not first <= ses.day < self.follow_up_days:
                    raise ValueError(
                        f"protocols.{pname}.sessions[{i}].day = {ses.day}: must lie in the "
                        f"observed days [{first}, {self.follow_up_days - 1}] (-baseline_days to "
                        "follow_up_days - 1; earlier days are the unobserved burn-in)"
                    )
            for d in prot.lab_days:
                if not first <= d < self.follow_up_days:
                    raise ValueError(
                        f"protocols.{pname}.lab_days = {list(prot.lab_days)}: day {d} must lie "
                        f"in the observed days [{first}, {self.follow_up_days - 1}]"
                    )
        ref = self.analysis.reference_arm
        if ref is not None and ref not in {a.name for a in arms}:
            raise ValueError(f"analysis.reference_arm = {ref!r}: not an arm of this spec "
                             f"(allowed: {', '.join(a.name for a in arms)})")
        for tname, tspec in self.therapies.items():
            # a schedule written in this spec (a preset's may run past the follow-up)
            late = [d for d in (tspec.session_days or ()) if d >= self.follow_up_days]
            if late:
                raise ValueError(
                    f"therapies.{tname}.session_days: days {late} lie after the follow-up "
                    f"(observed days end at follow_up_days - 1 = {self.follow_up_days - 1}); "
                    "a session there would never happen")
        for a in arms:  # therapy sessions (a preset's schedule may run past the follow-up)
            early = [d for d in self.therapy_of(a).session_days if d < first]
            if early:
                raise ValueError(
                    f"arm {a.name!r}: therapy {a.therapy!r} has sessions on days {early}, inside "
                    f"the unobserved burn-in (observed days start at -baseline_days = {first})"
                )
        if self.quit_day is not None and not first <= self.quit_day < self.follow_up_days:
            where = ("inside the unobserved burn-in" if self.quit_day < first
                     else "after the simulated period, so it would never happen")
            raise ValueError(
                f"quit_day = {self.quit_day}: {where}; must lie in the observed days [{first}, "
                f"{self.follow_up_days - 1}] (-baseline_days to follow_up_days - 1; observed days "
                f"start at -baseline_days = {first})"
            )
        if self.quit_day is not None and self.quit_day - self.detox_days < first:
            raise ValueError(
                f"quit_day = {self.quit_day} with detox_days = {self.detox_days}: the detox "
                f"would start on day {self.quit_day - self.detox_days}, inside the unobserved "
                f"burn-in (observed days start at -baseline_days = {first})"
            )
        self._check_assessment()
        self._check_behavior()
        self._check_cohorts()
        self.arm_sizes()
        if self.memory:
            from reconsolidate.memory.params import MemoryParams

            allowed = set(MemoryParams.__dataclass_fields__)
            for k in self.memory:
                if k not in allowed:
                    raise ValueError(
                        f"unknown key 'memory.{k}' (allowed: {', '.join(sorted(allowed))})"
                    )
            # ranges and integer fields, each message naming 'memory.FIELD'
            MemoryParams.from_overrides(self.memory, where="memory")
        return self

    def _check_assessment(self) -> None:
        """Visit days inside the observed days, at most ``follow_up_days``."""
        a = self.assessment
        first, end = self.first_day, self.follow_up_days
        if not first <= a.baseline_visit_day < end:
            raise ValueError(
                f"assessment.baseline_visit_day = {a.baseline_visit_day}: must lie in the "
                f"observed days [{first}, {end - 1}] (-baseline_days to follow_up_days - 1)"
            )
        if a.visit_days is not None:
            late = sorted(d for d in a.visit_days if d > end)
            if late:
                raise ValueError(
                    f"assessment.visit_days = {a.visit_days}: day {late[0]} is after the "
                    f"follow-up; visit days must lie in [{a.baseline_visit_day + 1}, {end}] "
                    "(after baseline_visit_day, at most follow_up_days)"
                )

    def _check_behavior(self) -> None:
        """Contradictory pairs of ``[behavior]`` bounds."""
        b = self.behavior
        lo, hi = b.drinking_probability_bounds
        if not 0.0 < lo < hi < 1.0:
            raise ValueError(
                f"behavior.drinking_probability_bounds = [{lo:g}, {hi:g}]: need "
                "0 < low < high < 1 (daily drinking probabilities; 0 or 1 would need infinite "
                "log-odds)"
            )
        if b.min_drinks_per_drinking_day > b.max_drinks_per_day:
            raise ValueError(
                f"behavior.min_drinks_per_drinking_day = {b.min_drinks_per_drinking_day:g}: "
                f"must be <= behavior.max_drinks_per_day = {b.max_drinks_per_day:g}"
            )

    def _check_cohorts(self) -> None:
        """Covariate distributions inside their ranges (days/week 0-7, 0-11 criteria, ...)."""
        cohorts: list[tuple[str, CohortSpec | None]] = [("cohort", self.cohort)]
        cohorts += [(f"arms[{i}].cohort", a.cohort) for i, a in enumerate(self.arms)]
        for where, c in cohorts:
            problem = None if c is None else cohort_range_problem(c, where)
            if problem is not None:
                raise ValueError(problem)

    def arm_sizes(self, patients_per_arm: int | None = None) -> dict[str, int]:
        """Patients of each arm: ``round(patients_per_arm x allocation)``.

        Parameters
        ----------
        patients_per_arm
            Overrides the spec's ``patients_per_arm`` (the CLI's ``--patients-per-arm``).

        Raises
        ------
        InputError
            An arm would get fewer than :data:`MIN_PATIENTS_PER_ARM` patients; the message names
            the arm, its allocation and the size it would get.
        """
        n_base = self.patients_per_arm if patients_per_arm is None else int(patients_per_arm)
        sizes: dict[str, int] = {}
        for i, a in enumerate(self.all_arms()):
            n = round(n_base * a.allocation)
            if n < MIN_PATIENTS_PER_ARM:
                need = f"need at least {MIN_PATIENTS_PER_ARM}"
                if a.allocation >= 1:
                    raise InputError(
                        f"patients_per_arm = {n_base}: arm {a.name!r} (allocation "
                        f"{a.allocation:g}) would get {n} patient{'' if n == 1 else 's'}; {need}"
                    )
                raise InputError(
                    f"arms[{i}].allocation = {a.allocation:g}: arm {a.name!r} would get {n} "
                    f"patient{'' if n == 1 else 's'} (round({n_base} patients_per_arm x "
                    f"{a.allocation:g})); {need}: allocation >= "
                    f"{(MIN_PATIENTS_PER_ARM - 0.5) / n_base:.3g} or more patients_per_arm"
                )
            sizes[a.name] = n
        return sizes

    def therapy_of(self, arm: ArmSpec) -> Therapy:
        """The arm's therapy, complete: a spec-defined therapy or a preset by that name."""
        return resolve_therapy(self.therapies.get(arm.therapy, arm.therapy), arm.therapy)

    def all_arms(self) -> list[ArmSpec]:
        """The explicit arms followed by the factorial ones."""
        out = list(self.arms)
        if self.factorial is not None:
            for p, t in itertools.product(self.factorial.protocols, self.factorial.therapies):
                out.append(ArmSpec(name=f"{p}+{t}", protocol=p, therapy=t))
        return out

    @property
    def first_day(self) -> int:
        """Study day of the first observed (baseline) day."""
        return -self.baseline_days

    @property
    def n_observed_days(self) -> int:
        return self.baseline_days + self.follow_up_days

    def visit_days(self) -> list[int]:
        """Follow-up TLFB visit days (the last one closes the follow-up)."""
        end = self.follow_up_days
        if self.assessment.visit_days is not None:
            return sorted(self.assessment.visit_days)
        step = self.assessment.visit_every_days
        days = list(range(self.assessment.baseline_visit_day + step, end + 1, step))
        if not days or days[-1] != end:
            days.append(end)
        return days

    def weekday_of(self, study_day: int) -> int:
        """0 = Monday ... 6 = Sunday."""
        return (_WEEKDAYS.index(self.start_weekday) + study_day) % 7


def load_trial_spec(path: str | Path) -> TrialSpec:
    """Read and validate a trial spec TOML file (InputError naming field, value, allowed)."""
    spec = load_toml_model(path, TrialSpec)
    base = Path(path).parent
    for pname, prot in spec.protocols.items():
        for k, s in enumerate(prot.sessions):
            if isinstance(s.regimen, str) and not (base / s.regimen).is_file():
                raise InputError(
                    f"{path}: field 'protocols.{pname}.sessions[{k}].regimen' = {s.regimen!r}: "
                    f"file not found (relative to {base})"
                )
    return spec
