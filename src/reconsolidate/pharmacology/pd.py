"""Pharmacodynamics: NMDA-receptor occupancy, psychedelic intensity, occupancy integrals.

Occupancy of the PCP/MK-801 site by competing ligands (one site, Hill 1):
``theta = sum_i (C_i / K_i) / (1 + sum_i (C_i / K_i))`` with ``C_i`` the *free* molar
concentrations at the effect site (pharmacology notes section 4.4). Racemic ketamine is split
1:1 into S and R.

ASSUMPTIONS (strong, stated in the notes): the free plasma fraction applies at the effect site
(no brain partitioning), binding affinities from rat [3H]MK-801 displacement transfer to humans,
and Mg2+ block and use-dependence are ignored.
"""

from __future__ import annotations

import numba
import numpy as np

from reconsolidate.exceptions import InputError

__all__ = [
    "BOWDLE_RANGE_NG_ML",
    "BOWDLE_REFERENCE_NG_ML",
    "FU_KETAMINE",
    "KI_R_KETAMINE_UM",
    "KI_R_NORKETAMINE_UM",
    "KI_S_KETAMINE_UM",
    "KI_S_NORKETAMINE_UM",
    "MOLAR_MASS_KETAMINE_G_PER_MOL",
    "MOLAR_MASS_NORKETAMINE_G_PER_MOL",
    "PSYCHEDELIC_INTENSITY_CEILING",
    "exp_weighted_occupancy_integral",
    "nmda_occupancy",
    "occupancy_integral",
    "psychedelic_intensity",
]

#: Ketamine free base C13H16ClNO, 237.73 g/mol [V] (notes section 1). ng/mL / 237.73 = uM.
MOLAR_MASS_KETAMINE_G_PER_MOL = 237.73
#: Norketamine C12H14ClNO, 223.70 g/mol [D] (notes section 1).
MOLAR_MASS_NORKETAMINE_G_PER_MOL = 223.70

#: Ki at the PCP site, [3H]MK-801 binding in rat brain, Ebert B et al., Eur J Pharmacol
#: 1997;333:99-104 [V] (uM).
KI_S_KETAMINE_UM = 0.3
KI_R_KETAMINE_UM = 1.4
KI_S_NORKETAMINE_UM = 1.7
KI_R_NORKETAMINE_UM = 13.0

#: Unbound fraction of ketamine in plasma: "as much as 47%" bound (Dayton PG et al., Eur J Clin
#: Pharmacol 1983;24:825-831 [V]) gives fu >= 0.53; we take fu = 0.53 (the most-bound end,
#: i.e. the lower occupancy; tertiary sources give 12-47% bound, fu up to 0.88).
#: ASSUMPTION: the same fu for norketamine (no source located).
FU_KETAMINE = 0.53

#: Bowdle TA et al., Anesthesiology 1998;88:82 (metajournal.com/articles/363642): psychedelic VAS is
#: linear in steady-state venous plasma ketamine over 50-200 ng/mL (R = 0.93-0.99), no Emax [V].
#: At those 30-min steady states plasma and effect site are equal, so the relation is applied to
#: the EFFECT-SITE concentration (ASSUMPTION): outside a steady state the plasma peak is not what
#: is felt (a 0.1 mg/kg bolus gives a momentary Cp of 1,587 ng/mL in the Domino model at its
#: V1, an effect-site peak of 355 ng/mL).
#: ASSUMPTION (scaling): intensity = Ce / 200 ng/mL, i.e. 1.0 at the top of Bowdle's studied
#: range and 0 without drug (line through the origin; the paper's slope and intercept in VAS
#: units are not available).
BOWDLE_REFERENCE_NG_ML = 200.0
#: Bowdle's studied range of (steady-state) concentrations, ng/mL: intensities from effect-site
#: peaks above its top are linear extrapolation (counted in a trial's warnings).
BOWDLE_RANGE_NG_ML = (50.0, 200.0)
#: ASSUMPTION: the intensity saturates at 2.0 (an effect site of 400 ng/mL, twice the top of
#: Bowdle's range). A visual-analogue rating is bounded, dissociation is reported at 100-250
#: ng/mL (Krystal 1994, in the pharmacology notes' concentration-effect table) and at
#: anaesthetic concentrations (loss of responsiveness at Ce 1,640 ng/mL, Sleigh 2019 BJA
#: 123:592) there is no remembered experience, so the line cannot go on. The sub-anaesthetic
#: regimens of the shipped trials peak at effect-site 340-385 ng/mL for a typical patient
#: (Domino model, 75 kg, no PK variability), below the ceiling, but with PK variability many
#: reach it: 29% of Das, 11% of Dakwar and 32% of KARE ketamine patient-sessions (1000 per
#: arm; a run's warnings count them). The ceiling therefore shapes the non-specific ketamine
#: pathway, and the calibrated behavior.ketamine_motivation_logit_per_intensity holds only
#: together with it.
PSYCHEDELIC_INTENSITY_CEILING = 2.0


def nmda_occupancy(
    ketamine_ng_ml: np.ndarray,
    *,
    analyte: str = "racemic",
    norketamine_ng_ml: np.ndarray | None = None,
    fu: float = FU_KETAMINE,
) -> np.ndarray:
    """NMDA-receptor (PCP-site) occupancy in [0, 1] from total concentrations.

    Parameters
    ----------
    ketamine_ng_ml
        Total (bound + free) ketamine concentration at the effect site, ng/mL, any shape.
    analyte
        ``"racemic"`` (S:R = 1:1) or ``"S-ketamine"`` (enantiopure).
    norketamine_ng_ml
        Optional norketamine concentration (same enantiomeric composition as the parent;
        for ``"S-ketamine"``, S-norketamine), ng/mL.
    fu
        Unbound fraction (default :data:`FU_KETAMINE`).

    Examples
    --------
    >>> np.round(nmda_occupancy(np.array([100.0, 200.0, 350.0])), 2)
    array([0.31, 0.47, 0.61])
    """
    if not 0 < fu <= 1:
        raise InputError(f"fu = {fu!r}: must be in (0, 1]")
    if analyte not in ("racemic", "S-ketamine"):
        raise InputError(f"analyte = {analyte!r}: allowed: racemic, S-ketamine")
    c = np.asarray(ketamine_ng_ml, dtype=np.float64)
    nk = None if norketamine_ng_ml is None else np.asarray(norketamine_ng_ml, dtype=np.float64)
    if nk is not None and nk.shape != c.shape:
        c, nk = np.broadcast_arrays(c, nk)
    out = np.empty(c.shape)
    _occupancy_kernel(
        np.ascontiguousarray(c).reshape(-1),
        np.zeros(0) if nk is None else np.ascontiguousarray(nk).reshape(-1),
        _load_per_ng_ml(fu, MOLAR_MASS_KETAMINE_G_PER_MOL, analyte, KI_S_KETAMINE_UM,
                        KI_R_KETAMINE_UM),
        _load_per_ng_ml(fu, MOLAR_MASS_NORKETAMINE_G_PER_MOL, analyte, KI_S_NORKETAMINE_UM,
                        KI_R_NORKETAMINE_UM),
        out.reshape(-1),
    )
    return out if out.ndim else out[()]


def _load_per_ng_ml(fu: float, molar_mass_g_per_mol: float, analyte: str, ki_s_um: float,
                    ki_r_um: float) -> float:
    """Receptor load ``sum_i C_i / K_i`` per ng/mL of total drug (racemate split 1:1)."""
    free_um_per_ng_ml = fu / molar_mass_g_per_mol  # ng/mL = ug/L -> umol/L, unbound part
    if analyte == "racemic":
        return free_um_per_ng_ml * (0.5 / ki_s_um + 0.5 / ki_r_um)
    return free_um_per_ng_ml / ki_s_um


@numba.njit(cache=True, nogil=True)
def _occupancy_kernel(  # pragma: no cover - compiled
    c: np.ndarray, nk: np.ndarray, load_per_ng_ml: float, nk_load_per_ng_ml: float,
    out: np.ndarray,
) -> None:
    """``out = L / (1 + L)``, ``L`` the load of max(c, 0) (and max(nk, 0) if given): one pass."""
    with_nk = nk.size > 0
    for i in range(c.size):
        v = c[i]
        load = load_per_ng_ml * (0.0 if v < 0.0 else v)
        if with_nk:
            w = nk[i]
            load += nk_load_per_ng_ml * (0.0 if w < 0.0 else w)
        out[i] = load / (1.0 + load)


def psychedelic_intensity(
    effect_site_ng_ml: np.ndarray, *, ceiling: float = PSYCHEDELIC_INTENSITY_CEILING
) -> np.ndarray:
    """Psychedelic/dissociative intensity from the effect-site ketamine concentration.

    ``min(Ce / 200 ng/mL, ceiling)``: Bowdle 1998's linear relation (see
    :data:`BOWDLE_REFERENCE_NG_ML`), 0 = none, 1 = the intensity at 200 ng/mL (top of the
    studied range), saturating at ``ceiling`` (:data:`PSYCHEDELIC_INTENSITY_CEILING`, an
    ASSUMPTION).

    Parameters
    ----------
    effect_site_ng_ml
        Effect-site (total) ketamine concentration, ng/mL, any shape; negative values count
        as 0.
    ceiling
        Largest intensity (dimensionless, > 0).

    Examples
    --------
    >>> psychedelic_intensity(np.array([0.0, 100.0, 200.0, 350.0, 1000.0]))
    array([0.  , 0.5 , 1.  , 1.75, 2.  ])
    """
    if not (np.isfinite(ceiling) and ceiling > 0):
        raise InputError(f"ceiling = {ceiling!r}: must be a finite number > 0")
    c = np.maximum(np.asarray(effect_site_ng_ml, dtype=np.float64), 0.0)
    return np.minimum(c / BOWDLE_REFERENCE_NG_ML, ceiling)


def _window_samples(
    times_min: np.ndarray, occupancy: np.ndarray, start_min: float, stop_min: float,
    strictly: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Validated (T,) times and (N, T) samples of an integral over [start_min, stop_min]."""
    t = np.asarray(times_min, dtype=np.float64)
    y = np.atleast_2d(np.asarray(occupancy, dtype=np.float64))
    if t.ndim != 1 or y.shape[1] != t.size:
        raise InputError(f"occupancy shape {y.shape} does not match times_min shape {t.shape}")
    steps = np.diff(t)
    if t.size < 2 or np.any(steps <= 0 if strictly else steps < 0):
        order = "strictly increasing" if strictly else "non-decreasing"
        raise InputError(f"times_min must be {order} with at least 2 samples")
    if not (t[0] <= start_min <= stop_min <= t[-1]):
        raise InputError(
            f"window [{start_min:g}, {stop_min:g}] min: must satisfy start <= stop and lie "
            f"within the sampled range [{t[0]:g}, {t[-1]:g}] min"
        )
    return t, y


def occupancy_integral(
    times_min: np.ndarray, occupancy: np.ndarray, start_min: float, stop_min: float
) -> np.ndarray:
    """Integral of occupancy over ``[start_min, stop_min]`` (occupancy x min), per patient.

    Exact for the piecewise-linear interpolant of the samples (trapezoid rule with the window
    edges interpolated).

    Parameters
    ----------
    times_min
        Sample times, shape (T,), strictly increasing.
    occupancy
        Samples, shape (N, T) or (T,).
    start_min, stop_min
        Window; must lie within the sampled range.

    Returns
    -------
    ndarray, shape (N,)
    """
    t, y = _window_samples(times_min, occupancy, start_min, stop_min, strictly=True)
    if stop_min == start_min:
        return np.zeros(y.shape[0])
    # The integral of the piecewise-linear interpolant over the window is linear in the
    # samples: weights once, then one pass per patient (fixed summation order, so a patient's
    # integral does not depend on the other rows of its chunk).
    return _weighted_row_sums(np.ascontiguousarray(y), _trapezoid_weights(t, start_min, stop_min))


def _trapezoid_weights(t: np.ndarray, start_min: float, stop_min: float) -> np.ndarray:
    """Weights ``w`` (T,) with ``sum_j w_j y_j`` = the integral over [start, stop] of the
    piecewise-linear interpolant of samples ``y`` at times ``t`` (window inside ``t``)."""
    w = np.zeros(t.size)
    j0 = int(np.clip(np.searchsorted(t, start_min, side="right") - 1, 0, t.size - 2))
    j1 = int(np.clip(np.searchsorted(t, stop_min, side="left"), 1, t.size - 1))
    for j in range(j0, j1):
        a = max(t[j], start_min)
        b = min(t[j + 1], stop_min)
        if b <= a:
            continue
        h = t[j + 1] - t[j]
        fa = (a - t[j]) / h
        fb = (b - t[j]) / h
        w[j] += 0.5 * (b - a) * (2.0 - fa - fb)
        w[j + 1] += 0.5 * (b - a) * (fa + fb)
    return w


def exp_weighted_occupancy_integral(
    times_min: np.ndarray,
    occupancy: np.ndarray,
    start_min: float,
    stop_min: float,
    tau_min: float,
    origin_min: float | None = None,
) -> np.ndarray:
    """``int_start^stop occ(t) exp(-(t - origin)/tau) dt`` (occupancy x min), per patient.

    Exact for the piecewise-linear interpolant of the samples (closed form per segment), e.g.
    NMDA occupancy weighted by the exponential decay of a memory's lability after a retrieval
    at ``origin_min`` (default ``start_min``); see
    :func:`reconsolidate.memory.window.window_weighted_occupancy_min`.

    Parameters
    ----------
    times_min
        Sample times, shape (T,), non-decreasing (a repeated time is a step), T >= 2.
    occupancy
        Samples, shape (N, T) or (T,).
    start_min, stop_min
        Window; must lie within the sampled range.
    tau_min
        Time constant of the weight (min), > 0.
    origin_min
        Time at which the weight is 1 (default ``start_min``).

    Returns
    -------
    ndarray, shape (N,)
    """
    t, y = _window_samples(times_min, occupancy, start_min, stop_min, strictly=False)
    if not (np.isfinite(tau_min) and tau_min > 0):
        raise InputError(f"tau_min = {tau_min!r}: must be > 0")
    origin = float(start_min if origin_min is None else origin_min)
    if stop_min == start_min:
        return np.zeros(y.shape[0])
    # Linear in the samples, like the plain integral: weights once (they depend on the times
    # only), then the same fixed-order row sums (a patient's value does not depend on its chunk).
    w = _exp_weights(t, float(start_min), float(stop_min), float(tau_min), origin)
    return _weighted_row_sums(np.ascontiguousarray(y), w)


def _exp_weights(t: np.ndarray, start: float, stop: float, tau: float, origin: float
                 ) -> np.ndarray:
    """Weights ``w`` (T,) with ``sum_j w_j y_j`` = the integral over [start, stop] of the
    piecewise-linear interpolant of ``y`` times ``exp(-(t - origin)/tau)``.

    On a segment [t_j, t_j+1] (length H) clipped to [a, b], with u = (t - a)/tau and
    h = (b - a)/tau: ``E0 = int e^-(t-origin)/tau = tau e^-(a-origin)/tau (1 - e^-h)`` and
    ``E1 = int (t - a) e^-(t-origin)/tau = tau^2 e^-(a-origin)/tau g(h)``,
    ``g(h) = 1 - e^-h (1 + h)``; the interpolant's weights are ``(t_j+1 - a)/H E0 - E1/H`` on
    y_j and ``(a - t_j)/H E0 + E1/H`` on y_j+1. ``1 - e^-h`` and ``g`` are evaluated without
    cancellation for small h (expm1; a series below h = 1e-3).
    """
    t0, t1 = t[:-1], t[1:]
    a = np.maximum(t0, start)
    b = np.minimum(t1, stop)
    big_h = t1 - t0
    keep = (b > a) & (big_h > 0)
    a = np.where(keep, a, t0)
    b = np.where(keep, b, t0)
    big_h = np.where(keep, big_h, 1.0)
    h = (b - a) / tau
    one_minus = -np.expm1(-h)
    g = np.where(h < 1e-3, h * h * (0.5 - h * (1.0 / 3.0 - h * (0.125 - h / 30.0))),
                 one_minus - h * np.exp(-h))
    ea = tau * np.exp(-(a - origin) / tau)
    e0 = ea * one_minus
    e1_over_h = ea * tau * g / big_h
    left = np.where(keep, (t1 - a) / big_h * e0 - e1_over_h, 0.0)
    right = np.where(keep, (a - t0) / big_h * e0 + e1_over_h, 0.0)
    w = np.zeros(t.size)
    w[:-1] += left
    w[1:] += right
    return w


@numba.njit(cache=True)
def _weighted_row_sums(y: np.ndarray, w: np.ndarray) -> np.ndarray:  # pragma: no cover
    """``y @ w`` row by row in a fixed order (no BLAS: its blocking could depend on layout)."""
    n, m = y.shape
    out = np.empty(n)
    for i in range(n):
        acc = 0.0
        for j in range(m):
            acc += y[i, j] * w[j]
        out[i] = acc
    return out
