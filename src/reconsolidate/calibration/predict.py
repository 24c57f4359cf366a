"""Predicting calibration targets from simulated trials, with the endpoints code.

:func:`simulate_scenarios` runs each scenario's arms through the trial engine
(:func:`reconsolidate.trial.engine.simulate_arms`, one chunk per arm, the arms' common history
before randomisation simulated once, the scenario's own seed: common random numbers across
parameter sets, which makes the loss surface smooth for the optimiser) and
keeps the reported (TLFB) and true daily drinking. :func:`predict_targets` scores each target on
its window with :func:`reconsolidate.endpoints.compute_endpoints`, exactly as a real diary would
be scored. :func:`evaluate` is the picklable unit of work sent to a Dask worker.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from reconsolidate.calibration.defaults import (
    apply_calibrated_defaults,
    apply_parameters,
    calibrated_parameters,
    memory_values,
)
from reconsolidate.calibration.targets import HIGHER_IS_BETTER, LoadedTargets, Target, load_targets
from reconsolidate.endpoints import (
    BINARY_ENDPOINTS,
    MissingDataHandling,
    compute_endpoints,
    cox_hazard_ratio,
)
from reconsolidate.exceptions import InputError

__all__ = [
    "ArmData",
    "code_default",
    "evaluate",
    "lab_checks",
    "loss",
    "predict_targets",
    "simulate_scenarios",
]

# Penalty (in squared loss-scale units) of a target that cannot be computed (NaN prediction).
_NAN_PENALTY = 100.0
# Weight of the centring term (distance from the published value inside the interval): a
# tie-breaker among parameter sets inside every interval. At 0.1 it traded real misses for
# centrality (in a 3000-trial run, sets passing 13 of 14 targets lost to sets passing 11 with
# small misses); at 0.001 all 14 targets at the edges of their intervals cost about as much
# as one target missed by 10% of its scale.
_CENTRING_WEIGHT = 0.001


@dataclass
class ArmData:
    """Daily drinking of one simulated arm.

    Attributes
    ----------
    reported, true
        (N, D) US standard drinks per day (reported: TLFB with NaN = missing); column 0 = study
        day ``first_day``.
    is_female
        (N,) bool.
    first_day
        Study day of column 0.
    baseline_days
        (first, last) inclusive study days of the baseline used for changes from baseline.
    spec
        The resolved trial spec (heavy-day thresholds, missing-day rule).
    usual_drinking_days_pct
        (N,) each patient's usual percent drinking days (the cohort covariate drinking days
        per week x 100 / 7, as the intercept calibration targets it).
    """

    reported: np.ndarray
    true: np.ndarray
    is_female: np.ndarray
    first_day: int
    baseline_days: tuple[int, int]
    spec: Any
    usual_drinking_days_pct: np.ndarray | None = None


def code_default(name: str) -> float | None:
    """The value the code (not the fitted file) gives parameter ``name`` (None if unknown)."""
    from reconsolidate.behavior.params import BehaviorParams
    from reconsolidate.behavior.therapy import THERAPY_PRESETS
    from reconsolidate.memory.params import MemoryParams

    parts = name.split(".")
    if parts[0] == "behavior" and parts[1] in BehaviorParams.model_fields:
        v = BehaviorParams.model_fields[parts[1]].default
        return float(v) if isinstance(v, int | float) else None
    if parts[0] == "memory" and parts[1] in MemoryParams.__dataclass_fields__:
        return float(MemoryParams.__dataclass_fields__[parts[1]].default)
    if parts[0] == "therapy" and len(parts) == 3 and parts[1] in THERAPY_PRESETS:
        v = getattr(THERAPY_PRESETS[parts[1]], parts[2], None)
        return float(v) if isinstance(v, int | float) else None
    return None


def _resolved_spec(lt: LoadedTargets, scenario: str, params: dict[str, float], base: str) -> Any:
    from reconsolidate.trial.spec import load_trial_spec

    spec = load_trial_spec(lt.scenario_path(scenario))
    if base == "calibrated":
        spec = apply_calibrated_defaults(spec)
        return apply_parameters(spec, params) if params else spec
    if base != "code":
        raise InputError(f"base {base!r}: valid are 'code', 'calibrated'")
    # Pin every parameter of the shipped fitted file to its code default first, so a calibration
    # does not depend on the file it will replace (even if the engine applies it by itself).
    pinned = {k: v for k in calibrated_parameters() if (v := code_default(k)) is not None}
    full = {**pinned, **params}
    return apply_parameters(spec, full) if full else spec


def simulate_scenarios(
    lt: LoadedTargets,
    params: dict[str, float] | None = None,
    *,
    scenarios: list[str] | None = None,
    base: str = "calibrated",
    patients_per_arm: int | None = None,
) -> dict[str, dict[str, ArmData]]:
    """Simulate every arm of each scenario; ``{scenario: {arm: ArmData}}``.

    Parameters
    ----------
    lt
        Loaded targets (scenario files and sizes).
    params
        Parameter values (dotted names) set on top of the base.
    scenarios
        Names to run (default: every scenario a target uses).
    base
        ``"calibrated"``: the package defaults (shipped fitted values where the spec is silent);
        ``"code"``: the defaults written in the code (used while calibrating).
    patients_per_arm
        Override the scenario sizes (tests, quick looks).
    """
    from reconsolidate.behavior import drinking_probability_target
    from reconsolidate.trial.engine import make_plan, simulate_arms

    params = dict(params or {})
    names = scenarios or sorted({t.scenario for t in lt.targets})
    out: dict[str, dict[str, ArmData]] = {}
    for name in names:
        spec = _resolved_spec(lt, name, params, base)
        plan = make_plan(spec, lt.scenario_path(name).parent,
                         lt.patients_per_arm(name, patients_per_arm))
        bw = spec.analysis.baseline_window_days or (-spec.baseline_days, -1)
        arms: dict[str, ArmData] = {}
        results = simulate_arms(plan, 0, 0, max(a.n_patients for a in plan.arms))
        for arm, r in zip(plan.arms, results, strict=True):
            arms[arm.name] = ArmData(
                reported=np.asarray(r.observation.drinks_reported, dtype=np.float64),
                true=np.asarray(r.drinks_true, dtype=np.float64),
                is_female=np.asarray(r.patients.is_female, dtype=bool),
                first_day=spec.first_day,
                baseline_days=(int(bw[0]), int(bw[1])),
                spec=spec,
                usual_drinking_days_pct=100.0 * drinking_probability_target(
                    r.patients, spec.behavior),
            )
        out[name] = arms
    return out


def _columns(d: ArmData, first: int, last: int) -> slice:
    a, b = first - d.first_day, last - d.first_day + 1
    if a < 0 or b > d.reported.shape[1]:
        raise InputError(
            f"window [{first}, {last}] outside the simulated study days "
            f"[{d.first_day}, {d.first_day + d.reported.shape[1] - 1}]"
        )
    return slice(a, b)


def _baseline_drinks_per_week(d: ArmData, t: Target) -> np.ndarray:
    """(N,) each patient's drinks per week over the scenario's baseline window (NaN: none
    observed)."""
    x = d.reported if t.data == "reported" else d.true
    base = x[:, _columns(d, *d.baseline_days)]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return 7.0 * np.nanmean(base, axis=1)


def _endpoints(d: ArmData, t: Target) -> Any:
    x = d.reported if t.data == "reported" else d.true
    w = x[:, _columns(d, *t.window_days)]
    an = d.spec.analysis
    missing = t.missing_days or an.missing_days
    return compute_endpoints(
        w,
        d.is_female,
        handling=MissingDataHandling("itt", missing),
        heavy_drinks_men=an.heavy_drinks_men,
        heavy_drinks_women=an.heavy_drinks_women,
        abstinent_last_days=w.shape[1],
        # the WHO risk-level reductions compare the window with the baseline window
        baseline_drinks_per_week=(_baseline_drinks_per_week(d, t)
                                  if t.endpoint.startswith("who_reduction") else None),
    )


def _per_patient(d: ArmData, t: Target) -> np.ndarray:
    """(N,) the target's endpoint of each patient over its window (binary ones in percent)."""
    ep = _endpoints(d, t)
    if t.endpoint == "drinking_days_per_week":
        return 7.0 * np.asarray(ep.percent_drinking_days, dtype=np.float64) / 100.0
    v = np.asarray(getattr(ep, t.endpoint), dtype=np.float64)
    if t.endpoint in BINARY_ENDPOINTS:  # responder shares in percent
        v = 100.0 * v
    return v


def _finite_mean(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan


def _arm_mean(d: ArmData, t: Target) -> float:
    return _finite_mean(_per_patient(d, t))


def _mean_abs_change(d: ArmData, t: Target) -> float:
    """Arm mean of each patient's |endpoint in the window - endpoint in the baseline window|:
    how far individuals move, which a stable arm mean can hide (some up, some down)."""
    base = _per_patient(d, t.model_copy(update={"window_days": d.baseline_days}))
    return _finite_mean(np.abs(_per_patient(d, t) - base))


def _change_pct(d: ArmData, t: Target) -> float:
    """100 x (mean drinks/week in the window / mean baseline drinks/week - 1), ratio of means
    over the patients with both figures (as the trial summary's ``drinks_per_week_change_pct``).

    The baseline used to average every patient while the window left out those without an
    observed day in it (dropouts, who drank more at baseline): on the Das 9-month window about
    half of each arm, which made every arm's change 3-4 points larger.
    """
    base_dpw = _baseline_drinks_per_week(d, t)
    ep = _endpoints(d, t)
    now = np.asarray(ep.drinks_per_week, dtype=np.float64)
    both = np.isfinite(base_dpw) & np.isfinite(now)
    if not both.any():
        return math.nan
    b, n = float(base_dpw[both].mean()), float(now[both].mean())
    if not (b > 0):
        return math.nan
    return 100.0 * (n - b) / b


def _odds_abstinent(d: ArmData, t: Target) -> tuple[float, float]:
    x = d.reported if t.data == "reported" else d.true
    w = x[:, _columns(d, *t.window_days)]
    obs = np.isfinite(w)
    abst = float(np.sum((w == 0.0) & obs))
    drink = float(np.sum(obs)) - abst
    return abst, drink


def _mean_abs_deviation_from_usual(d: ArmData, t: Target) -> float:
    """Arm mean of each patient's |percent drinking days in the window - their usual percent
    drinking days (the covariate)|: whether the simulated drinking stays at the drinking the
    patient was sampled with."""
    if d.usual_drinking_days_pct is None:
        raise InputError(f"target {t.id!r}: the simulated arm carries no usual drinking days")
    dev = np.abs(_per_patient(d, t) - d.usual_drinking_days_pct)
    if t.usual_days_per_week_below is not None:
        # a band of the cohort (light drinkers): the cohort's mean hides their drift
        dev = dev[d.usual_drinking_days_pct < 100.0 * t.usual_days_per_week_below / 7.0]
    return _finite_mean(dev)


def _share_at_least(d: ArmData, t: Target) -> float:
    """Percent of the patients with the endpoint in the window (with ``among_drinkers_in_days``:
    of those who drank then) whose value is at least ``at_least``; patients without a value are
    left out."""
    v = _per_patient(d, t)
    keep = np.isfinite(v)
    if t.among_drinkers_in_days is not None:
        x = d.reported if t.data == "reported" else d.true
        keep &= (x[:, _columns(d, *t.among_drinkers_in_days)] > 0.0).any(axis=1)  # NaN: False
    if not keep.any():
        return math.nan
    return 100.0 * float(np.mean(v[keep] >= t.at_least))


def _predict_one(t: Target, arms: dict[str, ArmData]) -> float:
    for a in (t.arm, t.reference_arm, t.share_of_arm):
        if a is not None and a not in arms:
            raise InputError(f"target {t.id!r}: arm {a!r} not in scenario {t.scenario!r}; "
                             f"arms: {', '.join(arms)}")
    d = arms[t.arm]
    if t.statistic == "mean":
        return _arm_mean(d, t)
    if t.statistic == "change_pct":
        return _change_pct(d, t)
    if t.statistic == "mean_abs_change":
        return _mean_abs_change(d, t)
    if t.statistic == "mean_abs_deviation_from_usual":
        return _mean_abs_deviation_from_usual(d, t)
    if t.statistic == "share_at_least":
        return _share_at_least(d, t)
    r = arms[t.reference_arm]  # type: ignore[index]
    if t.statistic in ("difference", "effect_share"):
        f = _arm_mean if t.of == "mean" else _change_pct
        effect = f(d, t) - f(r, t)
        if t.statistic == "difference":
            return effect
        # the arm's effect over the reference as a share of another arm's benefit over it;
        # undefined (NaN) unless that arm does better than the reference: with a harmful
        # denominator, a harmful numerator would look like a small positive share
        full = f(arms[t.share_of_arm], t) - f(r, t)  # type: ignore[index]
        benefit = full if t.endpoint in HIGHER_IS_BETTER else -full
        return effect / full if benefit > 0.0 else math.nan
    if t.statistic == "odds_ratio":
        a1, d1 = _odds_abstinent(d, t)
        a0, d0 = _odds_abstinent(r, t)
        # Haldane-Anscombe 0.5 correction keeps the ratio finite with an empty cell.
        return ((a1 + 0.5) / (d1 + 0.5)) / ((a0 + 0.5) / (d0 + 0.5))
    # hazard_ratio
    e1, e0 = _endpoints(d, t), _endpoints(r, t)
    dur = np.concatenate([e1.days_to_first_heavy_day, e0.days_to_first_heavy_day])
    ev = np.concatenate([e1.first_heavy_day_observed, e0.first_heavy_day_observed])
    treated = np.concatenate([np.ones(e1.n, bool), np.zeros(e0.n, bool)])
    inc = np.concatenate([e1.included, e0.included])
    hr = cox_hazard_ratio(dur[inc], ev[inc], treated[inc])["hazard_ratio"]
    return math.nan if hr is None else float(hr)


def predict_targets(
    targets: list[Target], sims: dict[str, dict[str, ArmData]]
) -> list[float]:
    """Predicted value of each target (NaN where it cannot be computed), in target order."""
    out = []
    for t in targets:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                v = _predict_one(t, sims[t.scenario])
            except InputError as exc:  # name the target (a window past the scenario's days)
                raise InputError(f"target {t.id!r} (scenario {t.scenario!r}, window_days = "
                                 f"{list(t.window_days)}): {exc}") from None
        out.append(float(v) if v is not None and math.isfinite(v) else math.nan)
    return out


def loss(targets: list[Target], predicted: list[float]) -> float:
    """Weighted sum of squared standardised misses.

    Each target contributes ``w x (distance outside its interval / scale)^2`` plus, for a
    numeric target, ``0.001 x w x ((predicted - published) / scale)^2`` so that among
    parameter sets inside every interval the one closest to the published values wins. A NaN
    prediction costs 100.
    """
    total = 0.0
    for t, p in zip(targets, predicted, strict=True):
        if not math.isfinite(p):
            total += t.weight * _NAN_PENALTY
            continue
        lo, hi = t.interval
        s = t.loss_scale
        miss = max(lo - p, 0.0, p - hi) / s
        total += t.weight * miss * miss
        if not isinstance(t.published, str):
            z = (p - float(t.published)) / s
            total += _CENTRING_WEIGHT * t.weight * z * z
    return float(total)


def lab_checks(lt: LoadedTargets, params: dict[str, float], base: str) -> dict[str, Any]:
    """Run the targets file's laboratory paradigms (``[lab]``) with the memory of ``params``.

    ``base`` is ``"code"`` (the code defaults under ``params``, as a calibration trial) or
    ``"calibrated"`` (the shipped fit under ``params``, as ``validate``). Returns
    ``{"penalty", "n_checks", "n_passed", "failed": [{"paradigm", "description", "value",
    "bound", "shortfall"}]}``; penalty 0 and no checks without a ``[lab]`` table.
    """
    import dataclasses

    from reconsolidate.memory.paradigm import run_paradigm
    from reconsolidate.memory.params import MemoryParams

    lab = lt.model.lab
    out: dict[str, Any] = {"penalty": 0.0, "n_checks": 0, "n_passed": 0, "failed": []}
    if lab is None:
        return out
    if base == "calibrated":
        from reconsolidate.calibration.defaults import calibrated_memory_params

        mp = calibrated_memory_params()
    else:
        mp = MemoryParams()
    mp = dataclasses.replace(mp, **memory_values(params))
    for name in lab.paradigms:
        for c in run_paradigm(name, lab.model, mp).checks:
            out["n_checks"] += 1
            if c["passed"]:
                out["n_passed"] += 1
                continue
            a, bound = float(c["value_a"]), float(c["bound"])
            short = max(bound - a, 0.0) if c["relation"] == "above" else max(a - bound, 0.0)
            if not math.isfinite(short):
                short = 1.0
            out["penalty"] += lab.weight * ((short + 0.001) / lab.scale) ** 2
            out["failed"].append({"paradigm": name, "description": c["description"],
                                  "value": a, "bound": bound, "shortfall": short})
    return out


@lru_cache(maxsize=8)
def _cached_targets(path: str, sha256: str) -> LoadedTargets:
    # keyed by the file's content too: a long-lived Dask worker kept scoring a targets file
    # edited since it was first read (its path unchanged)
    return load_targets(path)


def evaluate(
    params: dict[str, float],
    targets_path: str,
    target_ids: tuple[str, ...] | None = None,
    patients_per_arm: int | None = None,
    targets_sha256: str | None = None,
) -> dict[str, Any]:
    """Simulate and score one parameter set (the unit of work of a calibration).

    A pure function of its arguments (no global random state), so a Dask worker and this
    process return bit-identical results. Returns ``{"predicted": [...], "loss": float}``.
    With ``targets_sha256`` (what the calibration read), a targets file that differs where
    this runs (edited since, or another copy on a worker) is an InputError.
    """
    path = str(targets_path)
    try:
        sha = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the targets file ({exc.strerror})") from None
    if targets_sha256 is not None and sha != targets_sha256:
        raise InputError(f"{path}: changed since the calibration read it (sha256 {sha[:12]}..., "
                         f"calibration {targets_sha256[:12]}...); allowed: the file the "
                         "calibration started with, unchanged")
    lt = _cached_targets(path, sha)
    targets = lt.select(list(target_ids) if target_ids else None)
    scen = sorted({t.scenario for t in targets})
    sims = simulate_scenarios(lt, params, scenarios=scen, base="code",
                              patients_per_arm=patients_per_arm)
    pred = predict_targets(targets, sims)
    target_loss = loss(targets, pred)
    lab = lab_checks(lt, params, base="code")
    return {"predicted": pred, "loss": target_loss + lab["penalty"], "target_loss": target_loss,
            "lab_penalty": lab["penalty"], "lab_passed": lab["n_passed"],
            "lab_checks": lab["n_checks"]}
