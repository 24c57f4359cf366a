"""Turn a :class:`Regimen` into an exact piecewise-constant schedule, planning TCI phases.

Target-controlled infusion is planned the way a pump does it: with the *pump's* model (the
published typical values for the patient's weight; no random effects, no sex covariate, because
the pump does not know them), every update interval (STANPUMP: 10 s). The planned rates are then
given to the simulated patient, whose own PK may differ; this is why TCI cannot have lower
variability than bolus dosing (Anesthesiology 2005;102:639 [V]).

Plasma targeting (Jacobs 1990; Bailey & Shafer 1991; STANPUMP ``model()``): with ``x`` the
predicted state, ``Cp_free(d)`` its free decay and ``UDF(d)`` the plasma concentration after a
unit-rate infusion over one interval ``d`` from zero,
``R = clip((target - Cp_free(d)) / UDF(d), 0, R_max)``.

Effect-site targeting (Shafer & Gregg 1992, J Pharmacokinet Biopharm 20:147,
doi:10.1007/BF01070999): choose ``R`` for the next interval (then nothing) so that the *peak* of
the predicted effect site equals the target. With ``Ce_free(t_j)`` and ``Ce_unit(t_j)`` on a
fine grid of future times, the largest admissible rate is exactly
``R = min_j (target - Ce_free(t_j)) / Ce_unit(t_j)`` (over ``Ce_unit(t_j) > 0``), clipped to
``[0, R_max]``: the peak then touches the target and never exceeds it on the grid. This is the
fixed point of STANPUMP's ``find_peak()`` iteration, found without iterating. It is a loading
rule: for a target increase it gives one large first-interval rate (Domino, 70 kg, 300 ng/mL:
35.5 mg/min for 10 s, plasma peak ~1,180 ng/mL) and then nothing until the effect site peaks at
the target. Used to *hold* the target it chatters (rate 0, 2x, 0, 2x, ... every update; plasma
swinging +-8%). So, as STANPUMP does (notes section 5.6), the pump switches to plasma targeting
(Jacobs, plasma target = effect-site target) once the predicted effect site is within
:data:`EFFECT_SITE_SWITCH_FRACTION` (5%) of the target and, left alone, would not be above the
target at the end of the interval. Three details are our choices (ASSUMPTION; STANPUMP switches
on |target - Ce| < 5% alone): (1) not switching while Ce is above the target, so that a target
decrease keeps the pump off until the effect site has fallen to the new target (the switch comes
at the update during which it would fall through it; Domino, 70 kg: 300 -> 150 ng/mL 4.0 min,
350 -> 100 ng/mL 12.3 min); (2) while the plasma is still above the target (the tail of a load)
the loading rule keeps choosing the rate, so the effect site's peak stays at the target instead
of overshooting it; (3) hysteresis: the pump returns to the loading rule only if the effect site
rises above the 5% band (a bolus), so a Ce a hair off the target does not restart the chatter.

Optional plasma limit (``plasma_limit_ng_ml`` of an effect-site phase; Van Poucke, Bravo &
Shafer, IEEE TBME 2004, doi:10.1109/TBME.2004.827935; opentiva ``cp_limit``, there a multiple of
the target): the rate is also capped so that the predicted plasma concentration stays at or below
the limit at every look-ahead grid point of the interval, ``R <= min_j (limit - Cp_free(t_j)) /
Cp_unit(t_j)`` over ``t_j`` in ``(0, d]``. The effect site then rises more slowly.
"""

from __future__ import annotations

import numba
import numpy as np

from reconsolidate.pharmacology.models import PKModel, get_model
from reconsolidate.pharmacology.regimen import Regimen, TCIPhase, check_pump_limit
from reconsolidate.pharmacology.solver import (
    Schedule,
    expm_augmented,
    propagate,
    system_matrices,
)

__all__ = ["EFFECT_SITE_SWITCH_FRACTION", "build_schedule", "propagators"]

#: Effect-site TCI look-ahead grid: spacing (fraction of the update interval) and horizon.
#: ASSUMPTION (numerical choice): 1/8 of the update interval, horizon 20 min + 6/ke0, which
#: covers the effect-site peak of every model here by a wide margin.
_EFFECT_GRID_FRACTION = 1.0 / 8.0

#: Effect-site TCI switches to plasma targeting (plasma target = effect-site target) once the
#: predicted effect site is within this fraction of the target (and not above it). STANPUMP
#: ``model()`` switches when |target - Ce| < 5% of the target (Shafer & Gregg 1992, J
#: Pharmacokinet Biopharm 20:147, doi:10.1007/BF01070999; the R package 'tci' ``tci_comb``
#: switches when Ce is within 5% and Cp within 20%); project pharmacology notes section 5.6 [C].
EFFECT_SITE_SWITCH_FRACTION = 0.05


def propagators(
    a: np.ndarray, b: np.ndarray, delta_min: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Exact one-interval propagators: ``Phi = e^{A d}`` (M, [J,] n, n), ``Gamma`` (M, [J,] n).

    ``Gamma`` is the state after a unit-rate (1 mg/min) infusion over ``d`` from zero.
    """
    d = np.asarray(delta_min, dtype=np.float64)
    m, n, _ = a.shape
    top = np.concatenate([a, np.broadcast_to(b, (m, n))[:, :, None]], axis=2)  # [A | b]
    if d.ndim == 0:
        e = expm_augmented(top * d)
        return e[:, :, :n], e[:, :, n]
    j = d.size
    e = expm_augmented((top[:, None, :, :] * d[None, :, None, None]).reshape(m * j, n, n + 1))
    e = e.reshape(m, j, n, n + 1)
    return e[..., :n], e[..., n]


def _manual_schedule(regimen: Regimen, weight_kg: np.ndarray) -> tuple[list, list]:
    segs = [(x.start_min, x.stop_min, x.rate_mg_per_min_for(weight_kg)) for x in regimen.infusion]
    boluses = [(b.time_min, b.dose_mg_for(weight_kg)) for b in regimen.bolus]
    return segs, boluses


def _assemble(segs: list, boluses: list, n_pat: int) -> Schedule:
    """Build a :class:`Schedule` from non-overlapping (start, stop, rate) segments and boluses."""
    segs = sorted(segs, key=lambda s: s[0])
    edges: list[float] = []
    rates: list[np.ndarray] = []
    for start, stop, rate in segs:
        if edges and start > edges[-1]:
            rates.append(np.zeros(n_pat))  # gap between administrations
            edges.append(start)
        elif not edges:
            edges.append(start)
        rates.append(np.asarray(rate, dtype=np.float64))
        edges.append(stop)
    bt = sorted({t for t, _ in boluses})
    bd = np.zeros((len(bt), n_pat))
    for t, dose in boluses:
        bd[bt.index(t)] += dose
    return Schedule(
        edges_min=np.asarray(edges if edges else [0.0], dtype=np.float64),
        rates_mg_per_min=np.asarray(rates).reshape(len(rates), n_pat),
        bolus_times_min=np.asarray(bt, dtype=np.float64),
        bolus_doses_mg=bd,
    )


def _plan_phase(
    phase: TCIPhase,
    a: np.ndarray,
    b: np.ndarray,
    obs: np.ndarray,
    x0: np.ndarray,
    max_rate_mg_per_min: np.ndarray,
    update_min: float,
    boluses: list,
    ke0_per_min: float,
) -> list[tuple[float, float, np.ndarray]]:
    """Rates for one TCI phase for M pump patients, as (start, stop, rate (M,)) segments."""
    n_steps = int(np.ceil(phase.duration_min / update_min - 1e-9))
    starts = phase.start_min + update_min * np.arange(n_steps)
    stops = np.minimum(starts + update_min, phase.stop_min)
    target = phase.target_ng_ml / 1000.0  # ng/mL -> mg/L
    phi, gam = propagators(a, b, update_min)
    last = float(stops[-1] - starts[-1])
    phi_last, gam_last = propagators(a, b, last) if last < update_min - 1e-12 else (phi, gam)
    m, n = x0.shape
    # plasma limit (effect-site phases only): Cp at the grid points inside the interval
    lim_free, lim_unit = np.empty((m, 0, n)), np.empty((m, 0))
    limit = np.inf if phase.plasma_limit_ng_ml is None else phase.plasma_limit_ng_ml / 1000.0
    j_end = -1
    if phase.target == "plasma":  # no look-ahead grid
        w_free, ce_unit = np.empty((m, 0, n)), np.empty((m, 0))
        valid = np.empty((m, 0), dtype=np.bool_)
    else:
        horizon = 20.0 + 6.0 / ke0_per_min
        step = update_min * _EFFECT_GRID_FRACTION
        tau = step * np.arange(1, int(np.ceil(horizon / step)) + 1)
        ce_row = obs[:, 1, :]  # (M, n)
        phi_tau, gam_tau = propagators(a, b, tau)  # (M, J, n, n), (M, J, n)
        w_free = np.einsum("mi,mjik->mjk", ce_row, phi_tau)  # Ce(tau_j) = w_free[j] . x
        # unit-rate response over [0, d] then nothing
        inside = tau <= update_min + 1e-12
        after = np.einsum("mjik,mk->mji", propagators(a, b, np.maximum(tau - update_min, 0.0))[0],
                          gam)
        x_unit = np.where(inside[None, :, None], gam_tau, after)
        ce_unit = np.einsum("mi,mji->mj", ce_row, x_unit)
        valid = ce_unit > 1e-12 * ce_unit.max(axis=1, keepdims=True)
        j_end = int(np.count_nonzero(inside)) - 1  # the grid point at the end of the interval
        if phase.plasma_limit_ng_ml is not None:
            cp_row = obs[:, 0, :]
            lim_free = np.einsum("mi,mjik->mjk", cp_row, phi_tau[:, inside])
            lim_unit = np.einsum("mi,mji->mj", cp_row, gam_tau[:, inside])
    # boluses the pump is told about at each update, (n_steps, M) mg into the central compartment
    bolus_add = np.zeros((n_steps, m))
    for k in range(n_steps):
        for tb, dose in boluses:
            if float(starts[k]) <= tb < float(stops[k]):
                bolus_add[k] += dose
    rates = np.empty((n_steps, m))
    c = np.ascontiguousarray
    _plan_steps_kernel(c(phi), c(gam), c(phi_last), c(gam_last), c(x0), bolus_add,
                       phase.target == "effect_site", c(obs[:, 0, 0]), c(obs[:, 1, :]),
                       c(w_free), c(ce_unit), c(valid), target, EFFECT_SITE_SWITCH_FRACTION,
                       j_end, c(lim_free), c(lim_unit), limit,
                       np.broadcast_to(max_rate_mg_per_min, (m,)).astype(np.float64), rates)
    return [(float(starts[k]), float(stops[k]), rates[k]) for k in range(n_steps)]


@numba.njit(cache=True, nogil=True)
def _plan_steps_kernel(phi, gam, phi_last, gam_last, x0, bolus_add, effect, obs_cp, ce_row,
                       w_free, ce_unit, valid, target, switch_frac, j_end, lim_free, lim_unit,
                       limit, max_rate, out):
    """The pump's update loop of one TCI phase, patient by patient: at each update, add the
    boluses it is told about, choose the rate, clip it to ``[0, max_rate]``, write it to
    ``out[k, m]`` (mg/min) and propagate the predicted state over the interval (the last one
    may be shorter: ``phi_last``, ``gam_last``).

    Plasma phase: Jacobs. Effect-site phase: the smallest admissible rate over the look-ahead
    grid (Shafer & Gregg) until the predicted Ce is within ``switch_frac`` of the target and its
    free decay at the end of the interval (grid point ``j_end``) is not above it; from then on
    (``hold``) Jacobs at the same target, except while Cp is above the target, until Ce rises
    above the band. If ``limit`` is finite, the rate is also capped so that the predicted Cp
    stays at or below it at the grid points inside the interval (``lim_free``, ``lim_unit``)."""
    n_pat, n = x0.shape
    n_steps = out.shape[0]
    n_grid = ce_unit.shape[1]
    n_lim = lim_unit.shape[1]
    x = np.empty(n)
    xn = np.empty(n)
    for mm in range(n_pat):
        for i in range(n):
            x[i] = x0[mm, i]
        hold = False  # effect-site phase: holding the target by plasma targeting
        for k in range(n_steps):
            x[0] += bolus_add[k, mm]
            if effect:
                ce_now = 0.0
                for i in range(n):
                    ce_now += ce_row[mm, i] * x[i]
                if hold:  # stay unless Ce rises above the band (a bolus)
                    hold = ce_now <= (1.0 + switch_frac) * target
                else:
                    # enter once Ce has come within the band and, left alone, would not be above
                    # the target at the end of this interval (after a decrease: once it is
                    # falling through the target)
                    ce_next = 0.0
                    for i in range(n):
                        ce_next += w_free[mm, j_end, i] * x[i]
                    hold = ce_now >= (1.0 - switch_frac) * target and ce_next <= target
            # Shafer-Gregg: loading, and, while holding, as long as the plasma is above the
            # target (the end of a load: it keeps the effect site's peak at the target)
            if effect and (not hold or x[0] * obs_cp[mm] > target * (1.0 + 1e-6)):
                rate = np.inf
                for j in range(n_grid):
                    if valid[mm, j]:
                        free = 0.0
                        for i in range(n):
                            free += w_free[mm, j, i] * x[i]
                        rate = min(rate, (target - free) / ce_unit[mm, j])
            else:  # Jacobs / Bailey-Shafer plasma targeting
                cp_free = 0.0
                for i in range(n):
                    cp_free += phi[mm, 0, i] * x[i]
                rate = (target - cp_free * obs_cp[mm]) / (gam[mm, 0] * obs_cp[mm])
            if effect and limit < np.inf:
                for j in range(n_lim):
                    if lim_unit[mm, j] > 0.0:
                        free = 0.0
                        for i in range(n):
                            free += lim_free[mm, j, i] * x[i]
                        rate = min(rate, (limit - free) / lim_unit[mm, j])
            rate = min(max(rate, 0.0), max_rate[mm])
            out[k, mm] = rate
            last = k == n_steps - 1
            for i in range(n):
                acc = 0.0
                for l in range(n):
                    acc += (phi_last[mm, i, l] if last else phi[mm, i, l]) * x[l]
                xn[i] = acc + (gam_last[mm, i] if last else gam[mm, i]) * rate
            for i in range(n):
                x[i] = xn[i]


def build_schedule(
    regimen: Regimen,
    model: PKModel,
    weight_kg: np.ndarray,
    ke0_per_min: float,
) -> Schedule:
    """Resolve ``regimen`` into a :class:`Schedule` for patients of the given weights.

    TCI phases are planned with the pump model (``regimen.pump_model`` or ``model``) at the
    typical parameters for each distinct weight, then mapped to the patients.
    """
    w = np.atleast_1d(np.asarray(weight_kg, dtype=np.float64))
    check_pump_limit(regimen, w)
    segs, boluses = _manual_schedule(regimen, w)
    if regimen.tci:
        pump = get_model(regimen.pump_model) if regimen.pump_model else model
        pump_ke0 = ke0_per_min if pump is model else pump.ke0_per_min
        uw, inv = np.unique(w, return_inverse=True)
        m = uw.size
        params = pump.individual_parameters(uw)
        a, b, obs = system_matrices(pump, params, np.full(m, pump_ke0))
        max_rate = regimen.max_rate_mg_per_kg_per_min * uw
        useg, ubol = _manual_schedule(regimen, uw)
        planned: list = []
        eye = np.broadcast_to(np.eye(a.shape[1]), (m, a.shape[1], a.shape[1]))
        for phase in sorted(regimen.tci, key=lambda p: p.start_min):
            before = [s for s in useg + planned if s[0] < phase.start_min]
            before_bol = [bb for bb in ubol if bb[0] < phase.start_min]
            if before or before_bol:
                sched = _assemble(before, before_bol, m)
                x0 = propagate(a, b, np.ascontiguousarray(eye), sched,
                               np.array([phase.start_min]))[:, :, 0]
            else:
                x0 = np.zeros((m, a.shape[1]))
            inside_bol = [bb for bb in ubol if phase.start_min <= bb[0] < phase.stop_min]
            planned += _plan_phase(phase, a, b, obs, x0, max_rate, regimen.update_interval_min,
                                   inside_bol, pump_ke0)
        segs += [(s, e, r[inv]) for s, e, r in planned]
    return _assemble(segs, boluses, w.size)
