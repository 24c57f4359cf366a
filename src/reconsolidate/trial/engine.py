"""The virtual-trial engine: one chunk of one arm's patients, from covariates to outcomes.

:func:`simulate_chunk` is a pure function of (plan, arm, replicate, patient range): every random
number is drawn from a counter-based :class:`~reconsolidate._random.PatientStream` at the patient's
index, so a patient's results do not depend on the chunking, on the worker that ran the chunk, or
on which other arms exist (common random numbers: patient ``i`` of every arm is the same person
with the same daily cue exposures and chances; arms differ only by treatment). Arms that also
share cohort, therapy and size therefore live the same days until the first lab or treatment
session of any of them: that history is simulated once and copied (:func:`prefix_groups`,
:class:`ChunkPrefix`; between worker processes through files), with the same results as
simulating each arm alone (tests/trial/test_trial_engine.py). In the Das example it is the
burn-in and most of the baseline, 146 of each patient's 418 simulated days.

Order of events on a study day: quit attempt (treatment seekers, ``quit_day``) -> therapy session
-> lab ratings (before the session) -> treatment session (retrieval, then infusion after
``delay_min``; restabilisation over the 6 h window; non-specific ketamine lift) -> daily life ->
24 h pass.
"""

from __future__ import annotations

import os
import pickle
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reconsolidate._random import CounterStream, PatientStream
from reconsolidate.behavior.daily import (
    BehaviorState,
    calibrate_intercept,
    drinking_probability_target,
)
from reconsolidate.behavior.days import DAY_STREAM, DayPlan, live_days
from reconsolidate.behavior.therapy import Therapy
from reconsolidate.endpoints import MissingDataHandling, compute_endpoints
from reconsolidate.exceptions import InputError
from reconsolidate.memory import population as mem
from reconsolidate.memory.params import MemoryParams
from reconsolidate.pharmacology.pd import psychedelic_intensity
from reconsolidate.population.cohorts import Cohort, resolve_cohort
from reconsolidate.population.cues import ALCOHOL_LAB_CUES, CUE_CLASSES, cue_mask
from reconsolidate.population.sample import Patients, sample_patients
from reconsolidate.trial.observation import Observation, observe
from reconsolidate.trial.spec import ProtocolSpec, SessionSpec, TrialSpec

__all__ = [
    "RESTABILISATION_WINDOW_MIN",
    "ArmPlan",
    "ChunkPrefix",
    "ChunkResult",
    "TrialPlan",
    "add_domain_counts",
    "branch_day",
    "domain_warnings",
    "make_plan",
    "memory_snapshot_days",
    "prefix_groups",
    "simulate_arms",
    "simulate_chunk",
    "warm_up",
]

# Window over which the NMDA occupancy after retrieval acts on restabilisation: 6 h (Nader 2000;
# Xue 2012 [abs]: a manipulation 6 h after retrieval is outside the reconsolidation window). The
# occupancy is weighted exactly by the lability left, exp(-(t - t_retrieval)/tau) (tau =
# MemoryParams.lability_tau_min, 60 min by default), over its time course, as in the memory
# paradigms, so that 6 h = 6 tau leave out at most exp(-6) = 0.25% of the weight and the window
# length matters little: for the Das 2019 regimen (Domino model, 70 kg, no PK variability) the
# weighted integral is 22.405 / 22.690 / 22.695 occupancy x min over 180 / 360 / 720 min
# (tests/trial/test_trial_protocols.py). The plain integral times the window's mean weight,
# exact only for constant occupancy, would give 15.47 / 10.57 / 5.89 for this front-loaded
# infusion.
RESTABILISATION_WINDOW_MIN = 360.0


@dataclass
class ArmPlan:
    """An arm with everything resolved (cohort, therapy, protocol, regimens, size)."""

    index: int
    name: str
    protocol_name: str
    protocol: ProtocolSpec
    therapy: Therapy
    cohort: Cohort
    n_patients: int
    regimens: dict[int, Any] = field(default_factory=dict)  # session index -> Regimen


@dataclass
class TrialPlan:
    """A validated spec with resolved arms and parameters (picklable, sent to workers)."""

    spec: TrialSpec
    arms: list[ArmPlan]
    memory_params: MemoryParams
    calibrated: bool = True  # whether the shipped calibrated defaults were applied
    #: Notes on the design that the run reports with its model-domain warnings (e.g. a
    #: cohort whose usual drinking exceeds the daily cap).
    notes: list[str] = field(default_factory=list)

    @property
    def sim_first_day(self) -> int:
        return self.spec.first_day - self.spec.burn_in_days

    @property
    def n_observed_days(self) -> int:
        return self.spec.n_observed_days


def make_plan(
    spec: TrialSpec,
    spec_dir: str | Path = ".",
    patients_per_arm: int | None = None,
    *,
    calibrated: bool = True,
) -> TrialPlan:
    """Resolve a spec: cohorts, therapies, regimens (loaded from files), arm sizes.

    With ``calibrated`` (default), the package's calibrated default parameters
    (``reconsolidate.calibration``, when a fitted file is shipped) fill every parameter the spec
    does not set itself; explicit values win. ``calibrated=False`` uses the documented
    (source-or-ASSUMPTION) defaults of the code.
    """
    if calibrated:
        from reconsolidate.calibration.defaults import apply_calibrated_defaults

        spec = apply_calibrated_defaults(spec)
    sizes = spec.arm_sizes(patients_per_arm)  # each arm >= MIN_PATIENTS_PER_ARM, or InputError
    if patients_per_arm is not None:  # the plan's spec (metadata.json) states what is run
        spec = spec.model_copy(update={"patients_per_arm": int(patients_per_arm)})
    arms: list[ArmPlan] = []
    # every protocol's regimens, an unused protocol's too (each error names its session); the
    # arms below take theirs from this cache
    regimen_cache = check_regimens(spec, spec_dir)
    for k, a in enumerate(spec.all_arms()):
        cspec = a.cohort if a.cohort is not None else spec.cohort
        assert cspec is not None  # validated by TrialSpec
        where = f"arm {a.name!r}: arms.cohort" if a.cohort is not None else "cohort"
        cohort = resolve_cohort(cspec, where=where)
        therapy = spec.therapy_of(a)
        protocol = spec.protocols[a.protocol]
        regs: dict[int, Any] = {}
        for j, s in enumerate(protocol.sessions):
            if s.drug == "ketamine":
                regs[j] = _load_regimen(s.regimen, spec_dir, regimen_cache,
                                        f"{a.protocol}.sessions[{j}]")
        arms.append(
            ArmPlan(
                index=k,
                name=a.name,
                protocol_name=a.protocol,
                protocol=protocol,
                therapy=therapy,
                cohort=cohort,
                n_patients=sizes[a.name],
                regimens=regs,
            )
        )
    cap = spec.behavior.max_drinks_per_day
    over = [a.name for a in arms if a.cohort.drinks_per_drinking_day.bounds[1] > cap]
    notes = []
    if over:
        # the cap clips drinking days silently: patients.parquet's usual drinking would then
        # overstate what they can drink (a cohort fixed at 80 drank 39.7 per drinking day)
        high = max(a.cohort.drinks_per_drinking_day.bounds[1] for a in arms)
        notes.append(
            f"cohort of arm(s) {', '.join(over)}: usual drinks per drinking day range up to "
            f"{high:g} US drinks, above behavior.max_drinks_per_day = {cap:g}: drinking days "
            "above the cap are cut to it")
    defaults = type(spec).model_fields
    burn, rnd = defaults["burn_in_days"].default, defaults["burn_in_round_days"].default
    if (spec.burn_in_days, spec.burn_in_round_days) != (burn, rnd):
        # the fit was made with the defaults, and the untreated course depends on them (a
        # 30-day burn-in left a COMBINE-like cohort's drinking rising by 11% over a year, the
        # default falling by 6%: docs/trial-spec.md, [behavior])
        notes.append(
            f"burn-in of {spec.burn_in_days} days in rounds of {spec.burn_in_round_days} (the "
            f"calibration used {burn} in rounds of {rnd}): the course of untreated drinking "
            "depends on it")
    return TrialPlan(
        spec=spec, arms=arms, memory_params=_memory_params(spec.memory), calibrated=calibrated,
        notes=notes,
    )


def _memory_params(overrides: dict[str, float]) -> MemoryParams:
    """MemoryParams with the spec's overrides (integer-valued fields cast back to int)."""
    defaults = MemoryParams()
    kw: dict[str, float | int] = {}
    for k, v in overrides.items():
        if isinstance(getattr(defaults, k), int):
            if float(v) != int(v):
                raise InputError(f"memory.{k} = {v!r}: must be an integer")
            kw[k] = int(v)
        else:
            kw[k] = float(v)
    return MemoryParams(**kw)


class RegimenError(InputError):
    """A ketamine session's regimen cannot be loaded (:func:`make_plan`).

    The message has the form of the spec's other errors, from the field path on
    (``field 'protocols.P.sessions[0].regimen...' = VALUE: what is allowed``), but without the
    spec file's name, which :func:`make_plan` does not know: a caller that knows it puts it in
    front (``reconsolidate trial`` does, as for every other spec error).
    """


def check_regimens(spec: TrialSpec, spec_dir: str | Path = ".") -> dict[str, Any]:
    """Load the regimen of every ketamine session of every protocol, also of a protocol no arm
    uses, so that each problem names its session (:func:`make_plan` calls it first).

    Returns
    -------
    dict
        The regimen files loaded, by resolved path (:func:`_load_regimen`'s cache).

    Raises
    ------
    RegimenError
        As :func:`_load_regimen`.
    """
    cache: dict[str, Any] = {}
    for pname, protocol in spec.protocols.items():
        for j, s in enumerate(protocol.sessions):
            if s.drug == "ketamine":
                _load_regimen(s.regimen, spec_dir, cache, f"{pname}.sessions[{j}]")
    return cache


def _load_regimen(regimen: Any, spec_dir: str | Path, cache: dict[str, Any], where: str) -> Any:
    """A ketamine regimen from a file path (relative to the spec's directory) or an inline table.

    Raises
    ------
    RegimenError
        The inline table is invalid (the message carries the full dotted path from the spec's
        root, e.g. ``protocols.P.sessions[0].regimen.infusion[0].duration_min``), or the file
        is missing (the message names its full resolved path) or invalid (the file's own error
        follows the session's field).
    """
    from pydantic import ValidationError

    from reconsolidate._config import format_validation_error
    from reconsolidate.pharmacology import Regimen, load_regimen

    field = f"protocols.{where}.regimen"
    if isinstance(regimen, dict):
        try:
            return Regimen.model_validate(regimen)
        except ValidationError as exc:
            raise RegimenError(format_validation_error(exc, model=Regimen, root=field)) from None
    resolved = (Path(spec_dir) / str(regimen)).resolve()
    path = str(resolved)
    if path not in cache:
        named = f"field '{field}' = {str(regimen)!r}"
        if not resolved.exists():
            relative = ("" if Path(str(regimen)).is_absolute()
                        else " (a regimen file is named relative to the spec file's directory)")
            raise RegimenError(f"{named}: file not found: {path}{relative}")
        try:
            cache[path] = load_regimen(path)
        except InputError as exc:  # say which session names the file, then the file's problem
            raise RegimenError(f"{named}: {exc}") from None
    return cache[path]


@dataclass
class ChunkResult:
    """Everything one chunk produces (arrays over its n patients)."""

    arm: str
    replicate: int
    start: int
    patients: Patients
    drinks_true: np.ndarray  # (n, n_observed_days)
    observation: Observation
    lab_urge: np.ndarray  # (n, n_lab_days), 0-100
    lab_liking: np.ndarray
    psychedelic_intensity_peak: np.ndarray  # (n,) max over sessions (0 without ketamine)
    # (n,) summed plain (unweighted) NMDA occupancy integral over the restabilisation windows,
    # occupancy x min
    restabilisation_occupancy_min: np.ndarray
    # (n,) summed lability-weighted occupancy integral (weight exp(-(t - t_retrieval)/tau)),
    # occupancy x min: what the memory receives (memory.population.restabilise_weighted)
    restabilisation_weighted_occupancy_min: np.ndarray
    outcomes: dict[str, np.ndarray]
    memory_days: np.ndarray  # (n_snapshots,) study days of the memory snapshots
    cue_reactivity: np.ndarray  # (n, n_snapshots) mean conditioned response over cues, 0-1
    acquisition_weight: np.ndarray  # (n, n_snapshots) mean acquisition weight over cues, 0-1
    simulated_patient_days: int = 0  # patients x days this call simulated (less from a prefix)
    #: Model-domain notes of the chunk's ketamine sessions: message -> (patient-sessions
    #: concerned, ketamine patient-sessions); summed over chunks into the run's warnings
    #: (:func:`domain_warnings`).
    domain_counts: dict[str, tuple[int, int]] = field(default_factory=dict)


def _pk_seed(seed: int, replicate: int) -> int:
    if replicate == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(replicate)]).generate_state(1)[0])


def _lab_ratings(
    memory: mem.PopulationState,
    plan: TrialPlan,
    u: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Urge to drink and liking of beer, 0-100, with a glass of beer in front of the patient.

    ASSUMPTION: urge = 100 x the noisy-or craving of the lab cues (sight of beer, sound of the
    glass); liking = 100 x (floor + (1 - floor) x their mean response); Gaussian rating noise.
    """
    bp = plan.spec.behavior
    cr = mem.response(memory, plan.memory_params)[:, cue_mask(ALCOHOL_LAB_CUES)]
    urge = 100.0 * (1.0 - np.prod(1.0 - cr, axis=1))
    liking = 100.0 * (bp.lab_liking_floor + (1.0 - bp.lab_liking_floor) * cr.mean(axis=1))
    from scipy.special import ndtri

    urge = np.clip(urge + bp.lab_urge_noise_sd * ndtri(u[:, 0]), 0.0, 100.0)
    liking = np.clip(liking + bp.lab_liking_noise_sd * ndtri(u[:, 1]), 0.0, 100.0)
    return urge, liking


def _exposure(
    regimen: Any,
    patients: Patients,
    s: SessionSpec,
    pk_seed: int,
    start: int,
    window_start_min: float,
    window_stop_min: float,
    weight_tau_min: float | None = None,
) -> dict[str, np.ndarray]:
    """NMDA exposure of a chunk over a window (regimen time), via the pharmacology engine.

    With ``weight_tau_min``, also ``weighted_occupancy_integral_min``: the occupancy integral
    weighted by ``exp(-(t - window_start_min)/weight_tau_min)`` (exact for the same samples).

    A one-patient chunk is padded with a second patient (then dropped): the pharmacology
    engine's single-patient path differs from its batch path in the last bit, and results must
    not depend on the chunking.

    Arms that give the same patients the same regimen (e.g. Das's RET+KET and NoRET+KET: common
    random numbers make patient ``i`` the same person in both) ask for the same exposure; it is
    computed once per process (:data:`_EXPOSURE_CACHE`, keyed by everything the result depends
    on, the patients' covariates included) and copied: a pure function, so results are the
    same with or without the cache, for any worker count.
    """
    import hashlib
    import warnings

    from reconsolidate.exceptions import ExtrapolationWarning
    from reconsolidate.pharmacology import nmda_exposure

    n = patients.n
    idx = np.array([0, 0]) if n == 1 else np.arange(n)
    w = patients.weight_kg[idx]
    sex = np.where(patients.is_female[idx], "F", "M")
    age = patients.age_years[idx]
    covariates = hashlib.blake2b(digest_size=16)
    for arr in (w, patients.is_female[idx], age):
        covariates.update(np.ascontiguousarray(arr).tobytes())
    key = (regimen.model_dump_json(), s.pk_model, s.pk_variability, float(window_start_min),
           float(window_stop_min), weight_tau_min, pk_seed, start, n, covariates.hexdigest())
    out = _EXPOSURE_CACHE.get(key)
    if out is not None:
        _EXPOSURE_CACHE.move_to_end(key)
        return {k: v.copy() for k, v in out.items()}  # the caller's own arrays
    with warnings.catch_warnings():
        # Covariates outside the PK model's validated range are not lost: _session counts
        # them per session (PKModel.domain_violations) into the run's warnings; a warning per
        # chunk and window would only repeat them.
        warnings.simplefilter("ignore", ExtrapolationWarning)
        e = nmda_exposure(
            regimen,
            w,
            model=s.pk_model,
            window_start_min=window_start_min,
            window_stop_min=window_stop_min,
            variability=s.pk_variability,
            seed=pk_seed,
            patient_offset=start,
            sex=sex,
            age_years=age,
            weight_tau_min=weight_tau_min,
        )
    names = ["occupancy_integral_min", "mean_occupancy", "peak_effect_site_ng_ml", "dose_mg"]
    if weight_tau_min is not None:
        names.append("weighted_occupancy_integral_min")
    out = {name: np.asarray(getattr(e, name), dtype=np.float64)[:n] for name in names}
    _EXPOSURE_CACHE[key] = out
    while len(_EXPOSURE_CACHE) > _EXPOSURE_CACHE_SIZE:
        _EXPOSURE_CACHE.popitem(last=False)
    return {k: v.copy() for k, v in out.items()}


#: Recent chunk exposures of this process (least recently used first), see :func:`_exposure`.
#: 64 entries of at most 5 arrays over a chunk's patients: 12.8 MB at 5,000 patients per chunk.
_EXPOSURE_CACHE: OrderedDict[tuple, dict[str, np.ndarray]] = OrderedDict()
_EXPOSURE_CACHE_SIZE = 64


#: Minutes after a regimen's last administration within which its effect-site peak (what the
#: psychedelic intensity reads) falls: with the models' ke0 (t_peak 1 min after a bolus) it
#: comes within a few minutes of the end of an infusion.
EFFECT_SITE_PEAK_MARGIN_MIN = 30.0


def _domain_counts(
    counts: dict[str, tuple[int, int]], s: SessionSpec, patients: Patients,
    peak_effect_site_ng_ml: np.ndarray, dose_mg: np.ndarray,
) -> None:
    """Add one ketamine session's model-domain notes to ``counts`` (message -> (concerned,
    patient-sessions)): covariates outside the PK model's validated range, and psychedelic
    intensities read beyond Bowdle 1998's studied concentrations or at their ceiling."""
    from reconsolidate.pharmacology.models import get_model
    from reconsolidate.pharmacology.pd import (
        BOWDLE_RANGE_NG_ML,
        BOWDLE_REFERENCE_NG_ML,
        PSYCHEDELIC_INTENSITY_CEILING,
    )

    n = patients.n
    m = get_model(s.pk_model)
    notes = [
        (f"PK model '{m.name}': {label} outside its validated range {lo:g}-{hi:g} "
         f"({m.range_source}); concentrations extrapolated", bad.size)
        for label, (lo, hi), bad in m.domain_violations(
            patients.weight_kg, patients.age_years, dose_mg / patients.weight_kg)
    ]
    top = BOWDLE_RANGE_NG_ML[1]
    ceiling_ng_ml = PSYCHEDELIC_INTENSITY_CEILING * BOWDLE_REFERENCE_NG_ML
    notes.append((
        f"psychedelic intensity: effect-site peak above Bowdle 1998's studied "
        f"{BOWDLE_RANGE_NG_ML[0]:g}-{top:g} ng/mL, linearly extrapolated "
        "(pharmacology.pd.psychedelic_intensity)",
        int(np.sum(peak_effect_site_ng_ml > top)),
    ))
    notes.append((
        f"psychedelic intensity: effect-site peak at or above {ceiling_ng_ml:g} ng/mL, capped at "
        f"the ASSUMED ceiling {PSYCHEDELIC_INTENSITY_CEILING:g}",
        int(np.sum(peak_effect_site_ng_ml >= ceiling_ng_ml)),
    ))
    add_domain_counts(counts, {msg: (int(k), n) for msg, k in notes})


def add_domain_counts(into: dict[str, tuple[int, int]],
                      counts: dict[str, tuple[int, int]]) -> None:
    """Add model-domain counts (message -> (concerned, patient-sessions)) into ``into``."""
    for msg, (k, m) in counts.items():
        k0, m0 = into.get(msg, (0, 0))
        into[msg] = (k0 + k, m0 + m)


def domain_warnings(counts: dict[str, tuple[int, int]]) -> list[str]:
    """One line per model-domain note that concerns at least one patient-session, e.g.
    ``"PK model 'herd': weight_kg outside ... in 1500 of 1500 ketamine patient-sessions"``."""
    return [f"{msg}: {c} of {t} ketamine patient-sessions"
            for msg, (c, t) in sorted(counts.items()) if c > 0]


def _session(
    plan: TrialPlan,
    arm: ArmPlan,
    j: int,
    s: SessionSpec,
    memory: mem.PopulationState,
    bstate: BehaviorState,
    patients: Patients,
    replicate: int,
    domain_counts: dict[str, tuple[int, int]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply one treatment session (ketamine sessions add their model-domain notes to
    ``domain_counts``, see :func:`_domain_counts`).

    Returns
    -------
    (psychedelic intensity peak, plain window occupancy integral (occupancy x min),
    lability-weighted window occupancy integral (occupancy x min), the one the memory receives),
    each (n,); zeros without ketamine.
    """
    n = patients.n
    zeros = np.zeros(n)
    regimen = arm.regimens.get(j)
    pk_seed = _pk_seed(plan.spec.seed, replicate)
    start = int(patients.index[0]) if n else 0

    occ_retrieval = zeros
    if regimen is not None and -s.delay_min > 0:
        # The infusion started before (or during) retrieval: NMDA occupancy during retrieval
        # blocks destabilisation. Retrieval ends at regimen time -delay_min.
        e_ret = _exposure(
            regimen, patients, s, pk_seed, start,
            -s.delay_min - s.retrieval_duration_min, -s.delay_min,
        )
        occ_retrieval = np.clip(e_ret["mean_occupancy"], 0.0, 1.0)

    if s.retrieval in ("alcohol_prediction_error", "alcohol_as_expected"):
        cues = np.broadcast_to(cue_mask(s.retrieval_cues), (n, len(CUE_CLASSES)))
        mem.retrieve(
            memory,
            cues,
            prediction_error=s.retrieval == "alcohol_prediction_error",
            occupancy_during_retrieval=occ_retrieval,
            params=plan.memory_params,
        )

    if regimen is None:
        # Saline or midazolam: no NMDA antagonism (midazolam 0.025 mg/kg is a benzodiazepine,
        # Dakwar 2020's active placebo [P]), so no effect on restabilisation and no psychedelic
        # experience.
        return zeros, zeros, zeros
    # Restabilisation: occupancy from the end of retrieval (regimen time -delay_min, the memory
    # state's clock now) weighted by the lability left, exp(-(t + delay_min)/tau), exactly over
    # its time course (as the memory paradigms do); the drug given 6 h later meets ~none.
    e = _exposure(
        regimen, patients, s, pk_seed, start,
        -s.delay_min, -s.delay_min + RESTABILISATION_WINDOW_MIN,
        weight_tau_min=plan.memory_params.lability_tau_min,
    )
    weighted = e["weighted_occupancy_integral_min"]
    mem.restabilise_weighted(memory, weighted, plan.memory_params)
    # The psychedelic experience comes with the drug whenever it is given: its effect-site
    # peak over the whole regimen, read from the restabilisation window when that covers the
    # regimen (the usual infusion right after retrieval), else from a window of its own (a drug
    # given hours after retrieval, or started before it).
    whole = (0.0, regimen.end_min + EFFECT_SITE_PEAK_MARGIN_MIN)
    if -s.delay_min <= whole[0] and whole[1] <= -s.delay_min + RESTABILISATION_WINDOW_MIN:
        peak_ce = e["peak_effect_site_ng_ml"]
    else:
        peak_ce = _exposure(regimen, patients, s, pk_seed, start, *whole)[
            "peak_effect_site_ng_ml"]
    intensity = psychedelic_intensity(peak_ce)
    _domain_counts(domain_counts, s, patients, peak_ce, e["dose_mg"])
    bp = plan.spec.behavior
    lift = bp.ketamine_motivation_logit_per_intensity * intensity
    bstate.ketamine_lift_logit += (1.0 - bp.ketamine_lasting_fraction) * lift
    bstate.ketamine_lasting_lift_logit += bp.ketamine_lasting_fraction * lift
    return intensity, e["occupancy_integral_min"], weighted


def _event_days(plan: TrialPlan, arm: ArmPlan) -> list[int]:
    """Days on which something happens before daily life (sorted, within the simulation)."""
    spec = plan.spec
    ev = set(arm.therapy.session_days) | set(arm.protocol.lab_days)
    ev |= {s.day for s in arm.protocol.sessions}
    if spec.quit_day is not None:
        ev.add(spec.quit_day)
    ev |= set(recalibration_days(spec))  # the intercept is re-calibrated in the burn-in
    if arm.cohort.recruited_by_screening:
        ev.add(0)  # enrolment: the post-enrolment drift of screened participants starts
    return sorted(d for d in ev if plan.sim_first_day <= d < spec.follow_up_days)


def _burn_in_rounds(spec: TrialSpec) -> tuple[int, int]:
    """(number of burn-in rounds, days averaged per round); (0, 0) without a burn-in."""
    if spec.burn_in_days <= 0:
        return 0, 0
    length = min(spec.burn_in_round_days, spec.burn_in_days)
    return spec.burn_in_days // length, length


def recalibration_days(spec: TrialSpec) -> list[int]:
    """Study days at whose start the drinking intercept is re-calibrated: the ends of the
    burn-in rounds, counted back from the first observed day (a longer first round absorbs
    the remainder)."""
    n_rounds, length = _burn_in_rounds(spec)
    return [spec.first_day - length * j for j in range(n_rounds)]


def memory_snapshot_days(spec: TrialSpec) -> np.ndarray:
    """Study days whose memory is recorded (every ``memory_every_days``, from the baseline)."""
    k = spec.memory_every_days
    d0 = -(-spec.first_day // k) * k  # first multiple of k >= first_day
    return np.arange(d0, spec.follow_up_days, k, dtype=np.int64)


def _day_plan(spec: TrialSpec, d0: int, d1: int, snapshot_col: dict[int, int]) -> DayPlan:
    days = np.arange(d0, d1, dtype=np.int64)
    n_rounds, length = _burn_in_rounds(spec)
    quit_day = spec.quit_day
    if quit_day is None:
        detox = np.zeros(days.size, dtype=bool)
    else:
        detox = (days >= quit_day - spec.detox_days) & (days < quit_day)
    return DayPlan(
        days=days,
        weekend=np.array([spec.weekday_of(int(d)) >= 5 for d in days], dtype=bool),
        detox=detox,
        record_col=np.where(days >= spec.first_day, days - spec.first_day, -1),
        snapshot_col=np.array([snapshot_col.get(int(d), -1) for d in days], dtype=np.int64),
        # the days each burn-in round averages its conditioned responses over
        accumulate=(days >= spec.first_day - n_rounds * length) & (days < spec.first_day),
    )


def simulate_chunk(
    plan: TrialPlan,
    arm_index: int,
    replicate: int,
    start: int,
    stop: int,
    prefix_dir: str | Path | None = None,
) -> ChunkResult:
    """Simulate patients ``start .. stop-1`` of arm ``arm_index`` in replicate ``replicate``.

    With ``prefix_dir``, an arm that shares its history before randomisation with other arms
    (:func:`prefix_groups`) reads that history from ``prefix_dir`` if another arm left it
    there, and otherwise leaves its own: the same result, without simulating the common days
    again (:class:`ChunkPrefix`).

    Daily life between event days runs in the fused kernel
    (:func:`reconsolidate.behavior.days.live_days`); events (quit day, therapy sessions, lab
    ratings, treatment sessions, the re-calibrations of the burn-in) are applied in numpy at
    the start of their day, before that day's daily life.

    The burn-in (``spec.burn_in_days``) runs in rounds (``spec.burn_in_round_days``). At the
    end of each round the drinking intercept is re-calibrated
    (:func:`~reconsolidate.behavior.calibrate_intercept`) on each cue's conditioned response
    averaged over the days of the round, and the habit is reset to its reference. A single day's
    memory is a poor basis: a cue's response swings with the outcome of its last exposure, so
    an intercept fitted to one day is off for that patient for good, and the memory, driven by
    the resulting drinking, drifts further (a year without treatment moved moderate drinkers
    15-21 points of drinking days from their covariate). The rounds let intercept and memory
    settle together.
    """
    group = prefix_groups(plan).get(arm_index)
    if prefix_dir is None or group is None:
        return _simulate(plan, arm_index, replicate, start, stop)
    leader, members = group
    path = Path(prefix_dir) / f"prefix-arm{leader}-rep{replicate}-{start}-{stop}.pkl"
    try:
        with path.open("rb") as fh:
            prefix = pickle.load(fh)  # our own file, in the run's private directory
    except FileNotFoundError:
        if arm_index == members[-1]:  # no arm of the group comes after this one
            return _simulate(plan, arm_index, replicate, start, stop)
        kept: list[ChunkPrefix] = []
        result = _simulate(plan, arm_index, replicate, start, stop,
                           on_prefix=(branch_day(plan, members), kept.append))
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        try:
            with tmp.open("wb") as fh:
                pickle.dump(kept[0], fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)  # whole or absent: another worker may read it at any time
        except OSError:
            # the prefix only saves time (e.g. a full temporary disk): the other arms then
            # simulate their whole history themselves
            tmp.unlink(missing_ok=True)
        return result
    if arm_index == members[-1]:
        path.unlink(missing_ok=True)  # the group's last arm (an arm run later makes its own)
    return _simulate(plan, arm_index, replicate, start, stop, prefix=prefix)


def simulate_arms(
    plan: TrialPlan, replicate: int, start: int, stop: int
) -> list[ChunkResult]:
    """:func:`simulate_chunk` for every arm, in order, on its patients ``start ..
    min(stop, n_patients) - 1``, each prefix group's common history simulated once (kept in
    memory): the same results as separate calls."""
    groups = prefix_groups(plan)
    prefixes: dict[int, ChunkPrefix] = {}
    out = []
    for arm in plan.arms:
        hi = min(stop, arm.n_patients)
        group = groups.get(arm.index)
        if group is None:
            out.append(_simulate(plan, arm.index, replicate, start, hi))
        elif group[0] in prefixes:
            out.append(_simulate(plan, arm.index, replicate, start, hi,
                                 prefix=prefixes[group[0]]))
        else:
            out.append(_simulate(plan, arm.index, replicate, start, hi, on_prefix=(
                branch_day(plan, group[1]), lambda p, k=group[0]: prefixes.__setitem__(k, p))))
    return out


#: Patients per arm that :func:`warm_up` simulates: what a kernel compiles does not depend on
#: the data, but whether it is called can (a chunk in which nobody drops out, say), so not one.
WARM_UP_PATIENTS = 64


def warm_up(plan: TrialPlan, chunk_size: int = 5000) -> None:
    """Run every compiled kernel that simulating ``plan`` in chunks of ``chunk_size`` patients
    uses, on a few patients of each arm (the results are discarded).

    numba compiles the kernels on the first run after an install or a change of their code
    (about 30 s on a 2-core machine) and otherwise loads them from its cache (about 1 s).
    :func:`reconsolidate.trial.run.run_trial` does this first, so that its timings measure the
    simulation alone, and so that worker processes find the kernels in the cache instead of
    all compiling them at once. No kernel depends on a chunk's size: the PK solver and the
    endpoints split large inputs over Python threads that run the same kernel
    (``pharmacology.solver``, ``endpoints.core``).
    """
    simulate_arms(plan, 0, 0, min(chunk_size, WARM_UP_PATIENTS))


@dataclass
class ChunkPrefix:
    """A chunk's simulated history up to the start of study day ``day``, before that day's
    events: the part that the arms of one prefix group (:func:`prefix_groups`) share, because
    their patients are the same people (common random numbers) and nothing differs between
    the arms before ``day``. Copied by every arm that continues from it."""

    day: int
    memory: mem.PopulationState
    bstate: BehaviorState
    drinks_true: np.ndarray  # (n, days from the first observed day to ``day``)
    cue_reactivity: np.ndarray  # (n, snapshots before ``day``)
    acquisition_weight: np.ndarray
    cr_sum: np.ndarray


def prefix_groups(plan: TrialPlan) -> dict[int, tuple[int, tuple[int, ...]]]:
    """Arms that share their history before randomisation: arm index -> (the group's first
    arm, all its arms), for groups of two or more.

    Arms share it when they have the same cohort, therapy and number of patients: their
    patients are then the same people with the same days (common random numbers) and every
    event before the group's branch day (:func:`branch_day`: the first lab or treatment
    session of any of its arms) is the same: burn-in, re-calibrations, quit day, therapy.
    """
    if not plan.spec.shared_patients:
        return {}  # each arm has its own patients: nothing in common
    groups: list[list[ArmPlan]] = []
    for arm in plan.arms:
        for g in groups:
            a = g[0]
            if (a.cohort == arm.cohort and a.therapy == arm.therapy
                    and a.n_patients == arm.n_patients):
                g.append(arm)
                break
        else:
            groups.append([arm])
    out: dict[int, tuple[int, tuple[int, ...]]] = {}
    for g in groups:
        members = tuple(a.index for a in g)
        if len(g) > 1 and branch_day(plan, members) > plan.sim_first_day:
            out.update({a.index: (g[0].index, members) for a in g})
    return out


def stream_replicate(plan: TrialPlan, arm_index: int, replicate: int) -> int:
    """The replicate key of an arm's random streams: the replicate itself when arms share
    their patients (``spec.shared_patients``, common random numbers); otherwise a key of the
    arm's own, ``2^32 (1 + crc32(arm name)) + replicate``, so that each arm draws its own
    patients, days and observation noise, independent of the arms beside it."""
    if plan.spec.shared_patients:
        return replicate
    name = plan.arms[arm_index].name
    return (1 + zlib.crc32(name.encode("utf-8"))) * (1 << 32) + replicate


def branch_day(plan: TrialPlan, arm_indices: tuple[int, ...]) -> int:
    """First study day on which any of these arms has a lab or treatment session (the end of
    their common history), or ``follow_up_days``."""
    days = [plan.spec.follow_up_days]
    for k in arm_indices:
        arm = plan.arms[k]
        days += [s.day for s in arm.protocol.sessions] + list(arm.protocol.lab_days)
    return min(days)


def _simulate(
    plan: TrialPlan,
    arm_index: int,
    replicate: int,
    start: int,
    stop: int,
    prefix: ChunkPrefix | None = None,
    on_prefix: tuple[int, Callable[[ChunkPrefix], None]] | None = None,
) -> ChunkResult:
    """:func:`simulate_chunk` without the prefix files: continue from ``prefix`` (a copy), or
    start from the beginning and, with ``on_prefix = (branch day, callback)``, hand the
    callback the history up to the branch day on the way."""
    spec = plan.spec
    arm = plan.arms[arm_index]
    bp = spec.behavior
    mp = plan.memory_params
    seed = spec.seed

    # the replicate as the random streams see it: with shared_patients = false each arm has
    # streams of its own, keyed by its name (so removing an arm changes no other arm)
    rkey = stream_replicate(plan, arm_index, replicate)
    patients = sample_patients(arm.cohort, spec.cues, seed, start, stop, replicate=rkey)
    n = patients.n
    if prefix is None:
        memory = mem.new_state(patients.acquisition_strength, mp)
        alpha, kref = calibrate_intercept(patients, mem.response(memory, mp), bp)
        bstate = BehaviorState.start(alpha, kref, drinking_probability_target(patients, bp))
    else:
        memory = prefix.memory.copy()
        bstate = prefix.bstate.copy()
    skill_half_life = np.full(n, arm.therapy.coping_skill_half_life_days)
    day_stream = CounterStream(seed, DAY_STREAM, rkey)
    s_mot = np.sqrt(np.log1p(bp.motivation_cv**2))
    motivation_gain = np.exp(s_mot * patients.motivation_z - s_mot**2 / 2)  # mean one

    sessions = {s.day: (j, s) for j, s in enumerate(arm.protocol.sessions)}
    therapy_days = set(arm.therapy.session_days)
    lab_days = sorted(set(arm.protocol.lab_days))
    lab_index = {d: k for k, d in enumerate(lab_days)}
    urge = np.full((n, len(lab_days)), np.nan)
    liking = np.full((n, len(lab_days)), np.nan)
    intensity = np.zeros(n)
    domain_counts: dict[str, tuple[int, int]] = {}
    occ_integral = np.zeros(n)
    occ_weighted = np.zeros(n)
    snap_days = memory_snapshot_days(spec)
    snap_col = {int(d): k for k, d in enumerate(snap_days)}
    first_obs = spec.first_day
    cue_reactivity = np.full((n, snap_days.size), np.nan)
    acquisition_weight = np.full((n, snap_days.size), np.nan)
    drinks_true = np.zeros((n, spec.n_observed_days))
    if prefix is None:
        cr_sum = np.zeros(memory.shape)
        day = plan.sim_first_day
    else:
        # the prefix keeps only the columns of its days (see below)
        k = prefix.cue_reactivity.shape[1]
        cue_reactivity[:, :k] = prefix.cue_reactivity
        acquisition_weight[:, :k] = prefix.acquisition_weight
        drinks_true[:, : prefix.drinks_true.shape[1]] = prefix.drinks_true
        cr_sum = prefix.cr_sum.copy()
        day = prefix.day
    first_day_simulated = day
    branch, hand_over = on_prefix if on_prefix is not None else (None, None)

    recal_days = set(recalibration_days(spec))
    _, round_days = _burn_in_rounds(spec)

    def _live(d0: int, d1: int) -> None:
        if d1 > d0:
            live_days(memory, bstate, patients, bp, mp, day_stream,
                      _day_plan(spec, d0, d1, snap_col), skill_half_life, drinks_true,
                      (cue_reactivity, acquisition_weight), cr_sum)

    for event_day in [*_event_days(plan, arm), spec.follow_up_days]:
        if event_day < day:
            continue  # before the prefix's day: already in it
        if hand_over is not None and day <= branch <= event_day:
            _live(day, branch)
            day = branch
            # only the days lived so far (a prefix file per chunk then stays ~1 KB per
            # patient in the Das example instead of ~4)
            lived = max(day - first_obs, 0)
            snaps = int(np.searchsorted(snap_days, day))
            hand_over(ChunkPrefix(day, memory.copy(), bstate.copy(),
                                  drinks_true[:, :lived].copy(),
                                  cue_reactivity[:, :snaps].copy(),
                                  acquisition_weight[:, :snaps].copy(), cr_sum.copy()))
            hand_over = None
        _live(day, event_day)
        day = event_day
        if day == spec.follow_up_days:
            break
        if day in recal_days:
            # Re-calibrate the intercept on the round's average memory, so that the observed
            # baseline reproduces each patient's drinking covariates (see the docstring).
            bstate.alpha_logit, bstate.craving_ref = calibrate_intercept(
                patients, cr_sum / round_days, bp
            )
            cr_sum[:] = 0.0
            # The calibration assumes the habit at its baseline value; after a round it
            # carries the round's chance excursions, which a strong habit would keep for
            # months (the observed baseline then misses the covariates).
            bstate.habit[:] = bstate.habit_ref
        if day == 0 and arm.cohort.recruited_by_screening:
            # Regression to the mean / assessment reactivity of screened non-treatment-seekers
            # (treatment seekers have their quit-day lift instead).
            bstate.regression_target_logit[:] = bp.recruitment_regression_logit * (
                1.0 - patients.treatment_seeking)
        if day == spec.quit_day:
            bstate.quit_lift_logit += (
                bp.quit_motivation_logit * motivation_gain * patients.treatment_seeking
            )
            # not scaled by the motivation multiplier: the consequences of a lapse, and the
            # clinician's response to it, come whatever the patient's readiness
            bstate.recommitment_logit += bp.lapse_recommitment_logit * patients.treatment_seeking
        if day in therapy_days:
            bstate.therapy_lift_logit += arm.therapy.motivation_logit_per_session * motivation_gain
            bstate.coping_skill += arm.therapy.coping_skill_gain_per_session * (
                arm.therapy.coping_skill_max - bstate.coping_skill
            ).clip(min=0.0)
        if day in lab_index:
            u_lab = PatientStream(seed, "behavior.lab", 2, rkey, lab_index[day]).uniform(
                start, stop
            )
            k = lab_index[day]
            urge[:, k], liking[:, k] = _lab_ratings(memory, plan, u_lab)
        if day in sessions:
            j, s = sessions[day]
            i_s, o_s, w_s = _session(plan, arm, j, s, memory, bstate, patients, rkey,
                                     domain_counts)
            intensity = np.maximum(intensity, i_s)
            occ_integral += o_s
            occ_weighted += w_s

    an = spec.analysis
    obs = observe(
        spec.observation,
        drinks_true,
        patients.is_female,
        first_day=first_obs,
        baseline_visit_day=spec.assessment.baseline_visit_day,
        visit_days=plan.spec.visit_days(),
        heavy_drinks_men=an.heavy_drinks_men,
        heavy_drinks_women=an.heavy_drinks_women,
        seed=seed,
        patient_start=start,
        replicate=rkey,
    )
    outcomes = _outcomes(plan, patients, drinks_true, obs, urge, liking)
    return ChunkResult(
        arm=arm.name,
        replicate=replicate,
        start=start,
        patients=patients,
        drinks_true=drinks_true,
        observation=obs,
        lab_urge=urge,
        lab_liking=liking,
        psychedelic_intensity_peak=intensity,
        restabilisation_occupancy_min=occ_integral,
        restabilisation_weighted_occupancy_min=occ_weighted,
        outcomes=outcomes,
        memory_days=snap_days,
        cue_reactivity=cue_reactivity,
        acquisition_weight=acquisition_weight,
        simulated_patient_days=n * (spec.follow_up_days - first_day_simulated),
        domain_counts=domain_counts,
    )


def _outcomes(
    plan: TrialPlan,
    patients: Patients,
    drinks_true: np.ndarray,
    obs: Observation,
    urge: np.ndarray,
    liking: np.ndarray,
) -> dict[str, np.ndarray]:
    """Per-patient endpoints: the reported diary; the true drinking as ``true_*``; and the
    true drinking on the reported diary's days only as ``true_observed_*`` (the reported and
    the ``true_observed_`` values differ by recall error alone, ``true_observed_`` and
    ``true_`` by missing data alone)."""
    spec = plan.spec
    an = spec.analysis
    b = spec.baseline_days
    bw = an.baseline_window_days or (-b, -1)
    b0, b1 = bw[0] - spec.first_day, bw[1] - spec.first_day + 1
    out: dict[str, np.ndarray] = {}
    observed_true = np.where(np.isnan(obs.drinks_reported), np.nan, drinks_true)
    for prefix, x in (("", obs.drinks_reported), ("true_", drinks_true),
                      ("true_observed_", observed_true)):
        with np.errstate(invalid="ignore"):
            base = x[:, b0:b1]
            n_obs = np.sum(~np.isnan(base), axis=1)
            mean_day = np.nansum(base, axis=1) / np.maximum(n_obs, 1)
            baseline_dpw = np.where(n_obs > 0, 7.0 * mean_day, np.nan)
        ep = compute_endpoints(
            x[:, b:],
            patients.is_female,
            handling=MissingDataHandling("itt", an.missing_days),
            heavy_drinks_men=an.heavy_drinks_men,
            heavy_drinks_women=an.heavy_drinks_women,
            grace_days=min(an.grace_days, spec.follow_up_days - 1),
            abstinent_last_days=an.abstinent_last_days,
            abstinent_last_min_days=an.abstinent_last_min_days,  # <= min(K, follow-up): spec
            baseline_drinks_per_week=baseline_dpw,
        )
        for name, arr in ep.arrays().items():
            out[prefix + name] = arr
    if urge.shape[1] >= 1:
        out["urge_first"] = urge[:, 0]
        out["urge_last"] = urge[:, -1]
        out["liking_first"] = liking[:, 0]
        out["liking_last"] = liking[:, -1]
        out["urge_change"] = urge[:, -1] - urge[:, 0]
        out["liking_change"] = liking[:, -1] - liking[:, 0]
    out["dropout_day"] = obs.dropout_day.astype(np.float64)
    out["dropped_out"] = obs.dropout_day < spec.follow_up_days
    out["visits_completed"] = obs.visits_completed
    if spec.observation.etg:
        # Confirmed abstinence over the last K days: reported abstinent there and every EtG test
        # whose detection window lies inside that span negative (a test that also sees days
        # before the span could be positive for drinking the endpoint does not concern).
        # Tests are filed under the last day they cover (observation.observe).
        k = min(an.abstinent_last_days, spec.follow_up_days)
        inside = k - spec.observation.etg_window_days + 1
        etg_tail = obs.etg_positive[:, obs.etg_positive.shape[1] - inside:] if inside > 0 else (
            obs.etg_positive[:, :0])
        any_pos = np.nansum(etg_tail, axis=1) > 0
        out["confirmed_abstinent_last_days"] = np.where(
            np.isnan(out["abstinent_last_days"]),
            np.nan,
            (out["abstinent_last_days"] == 1.0) & ~any_pos,
        ).astype(np.float64)
    return out
