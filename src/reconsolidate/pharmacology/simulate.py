"""Population simulation: regimen + model + patients -> plasma, effect site, NMDA occupancy.

Between-subject variability is log-normal: ``P_i = P_typical * exp(eta_i)``, with
``eta ~ N(0, omega^2)``, ``omega^2 = ln(1 + CV^2)`` (the usual NONMEM exponential model), the CVs
being those of the model (:attr:`PKModel.bsv_cv`, literature or labelled ASSUMPTION). Patient
``i``'s standard normals come from ``PatientStream(seed, "pk.eta", 8)`` at index
``patient_offset + i``, one slot per parameter in :data:`PARAMETER_NAMES` order, so a patient's
PK is the same in any chunk, arm or worker, and the same eta drives CL in every model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reconsolidate._random import PatientStream
from reconsolidate.exceptions import InputError
from reconsolidate.pharmacology.dosing import build_schedule
from reconsolidate.pharmacology.models import PARAMETER_NAMES, PKModel, get_model
from reconsolidate.pharmacology.pd import (
    FU_KETAMINE,
    exp_weighted_occupancy_integral,
    nmda_occupancy,
    occupancy_integral,
    psychedelic_intensity,
)
from reconsolidate.pharmacology.regimen import Regimen
from reconsolidate.pharmacology.solver import Schedule, propagate, system_matrices

__all__ = [
    "ETA_STREAM",
    "NMDAExposure",
    "PKResult",
    "draw_eta",
    "nmda_exposure",
    "simulate",
]

#: Name of the random stream of PK random effects (one draw per parameter slot).
ETA_STREAM = "pk.eta"


@dataclass(frozen=True)
class PKResult:
    """Concentrations and occupancy for N patients at T times.

    Attributes
    ----------
    time_min : (T,)
    plasma_ng_ml, effect_site_ng_ml, nmda_occupancy : (N, T)
        Parent (ketamine) concentrations; occupancy from the effect site (with metabolite if
        the model has one), in [0, 1].
    norketamine_plasma_ng_ml, norketamine_effect_site_ng_ml : (N, T) or None
        Metabolite concentrations (apparent, see the model) where the model has a metabolite.
    model : str
    ke0_per_min : float
    weight_kg : (N,)
    parameters : dict of (N,) arrays
        Individual structural parameters (L, L/min).
    dose_mg : (N,)
        Total dose per patient.
    """

    time_min: np.ndarray
    plasma_ng_ml: np.ndarray
    effect_site_ng_ml: np.ndarray
    nmda_occupancy: np.ndarray
    model: str
    ke0_per_min: float
    weight_kg: np.ndarray
    dose_mg: np.ndarray
    parameters: dict[str, np.ndarray] = field(default_factory=dict)
    norketamine_plasma_ng_ml: np.ndarray | None = None
    norketamine_effect_site_ng_ml: np.ndarray | None = None

    @property
    def n_patients(self) -> int:
        """Number of patients N."""
        return int(self.plasma_ng_ml.shape[0])


#: Extra sampling offsets after each dosing event in :func:`nmda_exposure`, min.
_AFTER_EVENT_MIN = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.0)


@dataclass(frozen=True)
class NMDAExposure:
    """NMDA-blockade summary over a window, one value per patient (shape (N,))."""

    occupancy_integral_min: np.ndarray
    mean_occupancy: np.ndarray
    peak_occupancy: np.ndarray
    peak_plasma_ng_ml: np.ndarray
    #: Peak effect-site ketamine in the window, ng/mL (what the psychedelic intensity reads).
    peak_effect_site_ng_ml: np.ndarray
    #: :func:`~reconsolidate.pharmacology.pd.psychedelic_intensity` of the effect-site peak.
    psychedelic_intensity_peak: np.ndarray
    window_start_min: float
    window_stop_min: float
    #: Total dose of the regimen per patient, mg (for validated-range checks).
    dose_mg: np.ndarray | None = None
    #: ``int occ(t) exp(-(t - window_start)/weight_tau_min) dt`` over the window (occupancy x
    #: min), when :func:`nmda_exposure` was given ``weight_tau_min`` (else None).
    weighted_occupancy_integral_min: np.ndarray | None = None
    weight_tau_min: float | None = None


# ------------------------------------------------------------------------------ validation
def _as_weights(weight_kg: Any) -> np.ndarray:
    if weight_kg is None:
        raise InputError("weight_kg is required: a positive body weight in kg")
    try:
        w = np.atleast_1d(np.asarray(weight_kg, dtype=np.float64))
    except (TypeError, ValueError):
        raise InputError(f"weight_kg = {weight_kg!r}: must be a positive number of kg") from None
    if w.ndim != 1 or w.size == 0:
        raise InputError(f"weight_kg: must be a number or a 1-D array, got shape {w.shape}")
    bad = ~np.isfinite(w) | (w <= 0) | (w > 400)
    if bad.any():
        raise InputError(
            f"weight_kg = {float(w[bad][0])!r}: must be a positive body weight in kg "
            "(0 < weight <= 400)"
        )
    return w


def _as_female(sex: Any, n: int) -> np.ndarray | None:
    if sex is None:
        return None
    arr = np.atleast_1d(np.asarray(sex, dtype=object))
    if arr.size == 1:
        arr = np.repeat(arr, n)
    if arr.size != n:
        raise InputError(f"sex: got {arr.size} values for {n} patients")
    mapping = {"m": False, "male": False, "f": True, "female": True}
    out = np.empty(n, dtype=bool)
    for i, s in enumerate(arr):
        key = str(s).strip().lower()
        if key not in mapping:
            raise InputError(f"sex = {s!r}: allowed: M, F (or male, female)")
        out[i] = mapping[key]
    return out


def _as_age(age_years: Any, n: int) -> np.ndarray | None:
    if age_years is None:
        return None
    try:
        a = np.atleast_1d(np.asarray(age_years, dtype=np.float64))
    except (TypeError, ValueError):
        raise InputError(f"age_years = {age_years!r}: must be a number of years") from None
    if a.size == 1:
        a = np.repeat(a, n)
    if a.size != n:
        raise InputError(f"age_years: got {a.size} values for {n} patients")
    bad = ~np.isfinite(a) | (a < 0) | (a > 120)
    if bad.any():
        raise InputError(f"age_years = {float(a[bad][0])!r}: must be between 0 and 120")
    return a


def _as_times(times_min: Any) -> np.ndarray:
    try:
        t = np.atleast_1d(np.asarray(times_min, dtype=np.float64))
    except (TypeError, ValueError):
        raise InputError(f"times_min = {times_min!r}: must be numbers of minutes") from None
    if t.ndim != 1 or t.size == 0:
        raise InputError("times_min: must be a non-empty 1-D array of minutes")
    if not np.all(np.isfinite(t)):
        raise InputError(
            f"times_min contains {float(t[~np.isfinite(t)][0])!r}: times must be finite"
        )
    return t


def draw_eta(model: PKModel, seed: int, patient_offset: int, n: int) -> np.ndarray:
    """Random effects (log scale), shape (n, len(PARAMETER_NAMES)), for patients
    ``patient_offset .. patient_offset + n - 1`` (chunk-independent)."""
    if seed < 0 or patient_offset < 0:
        raise InputError(f"seed = {seed}, patient_offset = {patient_offset}: must be >= 0")
    z = PatientStream(seed, ETA_STREAM, len(PARAMETER_NAMES)).normal(
        patient_offset, patient_offset + n
    )
    omega = np.array([np.sqrt(np.log1p(model.bsv_cv.get(p, 0.0) ** 2)) for p in PARAMETER_NAMES])
    return z * omega[None, :]


# ------------------------------------------------------------------------------ simulate
def simulate(
    model: str | PKModel,
    regimen: Regimen,
    weight_kg: float | np.ndarray,
    times_min: np.ndarray,
    *,
    sex: Any = None,
    age_years: Any = None,
    variability: bool = False,
    seed: int = 0,
    patient_offset: int = 0,
    ke0_per_min: float | None = None,
    fu: float = FU_KETAMINE,
) -> PKResult:
    """Simulate plasma and effect-site ketamine and NMDA occupancy, exactly, for N patients.

    Parameters
    ----------
    model
        Model name (see :func:`list_models`) or a :class:`PKModel`.
    regimen
        The dosing regimen (time 0 = start of its first administration).
    weight_kg
        Body weight(s) in kg; N = its length (a scalar gives N = 1).
    times_min
        Output times in minutes, shape (T,): values are exact at these times. Times before 0
        give 0.
    sex
        ``None`` (no sex covariate) or ``"M"``/``"F"`` (scalar or (N,)). Women get the
        Sigtermans 2009 clearance factor (see :data:`FEMALE_CLEARANCE_FACTOR`).
    age_years
        Age(s), used for the validated-range check.
    variability
        Draw log-normal between-subject variability (stream ``"pk.eta"``).
    seed, patient_offset
        Seed and index of the first patient in the stream.
    ke0_per_min
        Effect-site rate constant; default: the model's (t_peak = 1 min, an ASSUMPTION).
    fu
        Unbound fraction for the occupancy.

    Warns
    -----
    ExtrapolationWarning
        Weight, age or total dose outside the model's validated range.
    """
    m = get_model(model)
    if not isinstance(regimen, Regimen):
        raise InputError(f"regimen: expected a Regimen, got {type(regimen).__name__}")
    w = _as_weights(weight_kg)
    n = w.size
    t = _as_times(times_min)
    female = _as_female(sex, n)
    age = _as_age(age_years, n)
    if ke0_per_min is None:
        ke0 = m.ke0_per_min
    else:
        ke0 = float(ke0_per_min)
        if not (np.isfinite(ke0) and 0 < ke0 <= 1000):
            raise InputError(f"ke0_per_min = {ke0_per_min!r}: must be in (0, 1000] per minute")
    schedule = build_schedule(regimen, m, w, ke0)
    dose_mg = schedule.total_dose_mg()
    m.check_domain(w, age, dose_mg / w, stacklevel=3)

    eta = draw_eta(m, seed, patient_offset, n) if variability else None
    first = inv = None  # distinct patients and the map back (None: every patient is distinct)
    if eta is None:
        # Identical covariates give identical patients: solve each distinct one once.
        key = np.column_stack([w, female.astype(float) if female is not None else np.zeros(n)])
        _, first, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
        if first.size == n:
            first = inv = None
        else:
            inv = inv.reshape(-1)
    if first is None:
        params = m.individual_parameters(w, female=female, eta=eta)
        sched = schedule
    else:
        params = m.individual_parameters(
            w[first], female=None if female is None else female[first]
        )
        sched = _subset_schedule(schedule, first)
    a, b, obs = system_matrices(m, params, np.full(params["v1_l"].size, ke0))
    # obs x 1000 (mg/L -> ng/mL): the kernel writes the final units, no extra pass.
    conc = propagate(a, b, obs * 1000.0, sched, t)
    if inv is not None:
        conc = conc[inv]
    cp, ce = conc[:, 0], conc[:, 1]
    nk_p = nk_e = None
    if m.has_metabolite:
        nk_p, nk_e = conc[:, 2], conc[:, 3]
    occ = nmda_occupancy(ce, analyte=m.analyte, norketamine_ng_ml=nk_e, fu=fu)
    full_params = params if inv is None else {k: v[inv] for k, v in params.items()}
    return PKResult(
        time_min=t, plasma_ng_ml=cp, effect_site_ng_ml=ce, nmda_occupancy=occ, model=m.name,
        ke0_per_min=ke0, weight_kg=w, dose_mg=dose_mg, parameters=full_params,
        norketamine_plasma_ng_ml=nk_p, norketamine_effect_site_ng_ml=nk_e,
    )


def _subset_schedule(schedule: Schedule, idx: np.ndarray) -> Schedule:
    return Schedule(
        edges_min=schedule.edges_min,
        rates_mg_per_min=schedule.rates_mg_per_min[:, idx],
        bolus_times_min=schedule.bolus_times_min,
        bolus_doses_mg=schedule.bolus_doses_mg[:, idx],
    )


def nmda_exposure(
    regimen: Regimen,
    weight_kg: float | np.ndarray,
    *,
    model: str | PKModel = "domino",
    window_start_min: float,
    window_stop_min: float,
    variability: bool = False,
    seed: int = 0,
    patient_offset: int = 0,
    resolution_min: float = 1.0,
    sex: Any = None,
    age_years: Any = None,
    ke0_per_min: float | None = None,
    fu: float = FU_KETAMINE,
    weight_tau_min: float | None = None,
) -> NMDAExposure:
    """NMDA-blockade summary per patient over ``[window_start_min, window_stop_min]``.

    Window times are relative to regimen time 0 and may be negative (before the drug, occupancy
    is 0). Values are sampled exactly every ``resolution_min`` plus at every schedule event in
    the window (so infusion-end peaks are caught); the integral is the trapezoid over those
    exact samples. Peaks (plasma, effect site, occupancy, psychedelic intensity) are within the
    window.

    With ``weight_tau_min``, also the integral weighted by ``exp(-(t - window_start_min) /
    weight_tau_min)`` (``weighted_occupancy_integral_min``; e.g. the decay of a memory's
    lability after a retrieval ending at ``window_start_min``), exact for the piecewise-linear
    interpolant of the same samples (:func:`~reconsolidate.pharmacology.pd.
    exp_weighted_occupancy_integral`).
    """
    if not (np.isfinite(window_start_min) and np.isfinite(window_stop_min)
            and window_stop_min > window_start_min):
        raise InputError(
            f"window [{window_start_min!r}, {window_stop_min!r}] min: need finite "
            "window_start_min < window_stop_min"
        )
    if not (np.isfinite(resolution_min) and resolution_min > 0):
        raise InputError(f"resolution_min = {resolution_min!r}: must be > 0")
    if weight_tau_min is not None and not (np.isfinite(weight_tau_min) and weight_tau_min > 0):
        raise InputError(f"weight_tau_min = {weight_tau_min!r}: must be > 0")
    grid = np.arange(window_start_min, window_stop_min, resolution_min)
    events = [0.0, regimen.end_min]
    events += [x.start_min for x in regimen.infusion] + [x.stop_min for x in regimen.infusion]
    events += [x.start_min for x in regimen.tci] + [x.stop_min for x in regimen.tci]
    events += [b.time_min for b in regimen.bolus]
    # and just after each: an effect-site peak follows a drop in the infusion rate by a few
    # minutes (ke0), between the 1-min samples; these catch it to ~0.2% (~0.6% with PK
    # variability; docs/pharmacology.md)
    events += [e + d for e in events for d in _AFTER_EVENT_MIN]
    ev = np.array([e for e in events if window_start_min < e < window_stop_min])
    times = np.unique(np.concatenate([grid, ev, [window_start_min, window_stop_min]]))
    res = simulate(
        model, regimen, weight_kg, times, sex=sex, age_years=age_years, variability=variability,
        seed=seed, patient_offset=patient_offset, ke0_per_min=ke0_per_min, fu=fu,
    )
    integral = occupancy_integral(times, res.nmda_occupancy, window_start_min, window_stop_min)
    weighted = None
    if weight_tau_min is not None:
        weighted = exp_weighted_occupancy_integral(
            times, res.nmda_occupancy, window_start_min, window_stop_min, float(weight_tau_min)
        )
    peak_ce = res.effect_site_ng_ml.max(axis=1)
    return NMDAExposure(
        occupancy_integral_min=integral,
        mean_occupancy=integral / (window_stop_min - window_start_min),
        peak_occupancy=res.nmda_occupancy.max(axis=1),
        peak_plasma_ng_ml=res.plasma_ng_ml.max(axis=1),
        peak_effect_site_ng_ml=peak_ce,
        psychedelic_intensity_peak=psychedelic_intensity(peak_ce),
        window_start_min=float(window_start_min),
        window_stop_min=float(window_stop_min),
        dose_mg=res.dose_mg,
        weighted_occupancy_integral_min=weighted,
        weight_tau_min=None if weight_tau_min is None else float(weight_tau_min),
    )

