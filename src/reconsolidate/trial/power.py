"""Statistical power and sample size of a trial design, by simulating it many times.

A trial designer's question: with ``n`` patients per arm, how often would this protocol's trial
show a significant difference from the control arm? :func:`estimate_power` answers it for a grid
of arm sizes by Monte Carlo: ``replicates`` independent parallel-group trials of the spec (each
arm draws its own patients, ``shared_patients = false``), each analysed as the trial's own
report analyses one trial (:func:`reconsolidate.endpoints.compare_arms` on the reported diary,
every arm against the reference arm, two-sided tests at ``alpha``, no multiplicity adjustment).
The power of a comparison at ``n`` is the share of the replicates whose test rejects in the
arm's favour (:func:`reconsolidate.endpoints.favours_arm`: more abstinence, less drinking, a
hazard ratio of a first heavy day below 1); a significant result against the arm is counted
apart (``n_significant_against_arm``), and ``rejection_rate`` counts both, which between two arms
with the same treatment is the type-I error (about ``alpha``; the power is then about half of
it). A comparison that cannot be estimated in a replicate (e.g. no event in either arm) counts
as not rejecting.

The arm sizes are nested: patient ``i`` of an arm in replicate ``r`` is the same virtual person
whatever the arm size (every random stream is keyed by patient index, arm and replicate), so
each replicate is simulated once at the largest size and a smaller trial takes each arm's first
patients. The curve over ``n`` therefore moves by the added patients only (common random
numbers across sample sizes), and the simulation costs one trial per replicate.

>>> from reconsolidate.trial import load_trial_spec
>>> spec = load_trial_spec("examples/trials/das2019.toml")  # doctest: +SKIP
>>> result = estimate_power(spec, "examples/trials", [30, 60], replicates=100)  # doctest: +SKIP
>>> result["comparisons"][0]["by_n"][0]["power"]  # doctest: +SKIP
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from reconsolidate.endpoints import (
    BINARY_ENDPOINTS,
    COMPARISON_ENDPOINTS,
    COMPARISON_LABELS,
    REPORTED_COMPARISONS,
    ParticipantEndpoints,
    compare_arms,
    comparison_estimate,
    favours_arm,
)
from reconsolidate.endpoints.stats import _wilson
from reconsolidate.exceptions import InputError
from reconsolidate.trial.spec import MIN_PATIENTS_PER_ARM, AnalysisSpec, TrialSpec

#: The rules of ``[analysis] missing_days`` (:class:`reconsolidate.trial.spec.AnalysisSpec`).
MISSING_DAYS: tuple[str, ...] = typing.get_args(
    AnalysisSpec.model_fields["missing_days"].annotation)

__all__ = ["ADJUSTMENTS", "DEFAULT_REPLICATES", "MAX_REPLICATES", "estimate_power"]

#: Replicate trials per arm size by default: the Monte Carlo standard error of a power of 50%
#: is then 3.5 points (1.5 points at 95%).
DEFAULT_REPLICATES = 200
#: Bytes of per-patient outcomes a simulated patient holds until its trial is analysed
#: (measured: 81 arrays, 578 B, Das example).
OUTCOME_BYTES_PER_PATIENT = 600
#: Largest memory the held outcomes may take, GB (a 2-core CI machine has several).
MAX_OUTCOMES_GB = 6.0
#: At most this many replicates (the spec's own bound on ``replicates``).
MAX_REPLICATES = int(next(m.le for m in TrialSpec.model_fields["replicates"].metadata
                          if getattr(m, "le", None) is not None))


def _check(spec: TrialSpec, sizes: Sequence[int], replicates: int, alpha: float,
           endpoints: Sequence[str], target_power: float | None) -> list[int]:
    if len(spec.all_arms()) < 2:
        raise InputError(f"spec {spec.name!r} has one arm: power compares arms, give at least two")
    if not sizes:
        raise InputError("patients per arm: give at least one arm size")
    for n in sizes:
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < MIN_PATIENTS_PER_ARM:
            raise InputError(f"patients per arm {n!r}: each must be an integer >= "
                             f"{MIN_PATIENTS_PER_ARM}")
    if not 2 <= replicates <= MAX_REPLICATES:
        raise InputError(f"replicates {replicates}: must be 2 to {MAX_REPLICATES}")
    if not (math.isfinite(alpha) and 0.0 < alpha < 0.5):
        raise InputError(f"alpha {alpha}: must be between 0 and 0.5 (two-sided level)")
    if target_power is not None and not (math.isfinite(target_power)
                                         and 0.0 < target_power < 1.0):
        raise InputError(f"target power {target_power}: must be between 0 and 1")
    if not endpoints:
        raise InputError("endpoints: give at least one")
    for e in endpoints:
        if e not in COMPARISON_ENDPOINTS:
            raise InputError(f"endpoint {e!r}: allowed {', '.join(COMPARISON_ENDPOINTS)}")
    return sorted({int(n) for n in sizes})


def _replicate_tables(chunks: list[tuple[str, int, int, dict[str, np.ndarray]]],
                      arm_order: list[str]) -> dict[int, tuple[ParticipantEndpoints, np.ndarray,
                                                               np.ndarray]]:
    """Per replicate: the endpoints of every patient (arms in spec order, patients in index
    order), each patient's arm and index within the arm."""
    by_rep: dict[int, dict[str, list[tuple[int, dict[str, np.ndarray]]]]] = {}
    for arm, rep, start, out in chunks:
        by_rep.setdefault(rep, {}).setdefault(arm, []).append((start, out))
    # the endpoint columns only (the outcomes also hold the true_* drinking, lab ratings...)
    fields = ParticipantEndpoints.arrays_fields()
    tables = {}
    for rep, arms in sorted(by_rep.items()):
        cols: dict[str, list[np.ndarray]] = {k: [] for k in fields}
        labels, index = [], []
        for arm in arm_order:
            for start, out in sorted(arms.get(arm, []), key=lambda t: t[0]):
                n = len(out["included"])
                for k in fields:
                    cols[k].append(np.asarray(out[k]))
                labels.append(np.full(n, arm, dtype=object))
                index.append(np.arange(start, start + n))
        ep = ParticipantEndpoints.from_columns({k: np.concatenate(v) for k, v in cols.items()},
                                               "the simulated outcomes")
        tables[rep] = (ep, np.concatenate(labels).astype(str), np.concatenate(index))
    return tables


def _estimate(c: dict[str, Any]) -> float | None:
    v = comparison_estimate(c)
    return None if v is None or not math.isfinite(float(v)) else float(v)


#: Multiplicity adjustments of ``adjust``: across the arms compared with the reference, per
#: endpoint and contrast, within each replicate trial.
ADJUSTMENTS = ("none", "holm", "bonferroni")


def _adjusted(ps: list[float | None], method: str) -> list[float | None]:
    """Holm or Bonferroni adjusted p-values of one family (None: not estimable, left out)."""
    idx = [i for i, p in enumerate(ps) if p is not None]
    out: list[float | None] = list(ps)
    if method == "none" or len(idx) <= 1:
        return out
    from statsmodels.stats.multitest import multipletests

    adjusted = multipletests([float(ps[i]) for i in idx], method=method)[1]  # type: ignore[arg-type]
    for i, v in zip(idx, adjusted, strict=True):
        out[i] = float(v)
    return out


def _analyse_replicate(job: tuple) -> list[tuple[int, list[tuple]]]:
    """One replicate trial analysed at every arm size: per size, ``(contrast, endpoint, arm,
    kind, p_value, estimate, n_arm, n_reference)`` of each comparison (``contrast`` "arm", or
    a factor's name for its main effect)."""
    ep, labels, index, sizes, arm_sizes, contrasts, endpoints, adjust = job
    out = []
    for n in sizes:
        keep = index < np.array([arm_sizes[n][a] for a in labels], dtype=np.int64)
        sub = ep.subset(keep)
        rows = []
        for contrast, mapping, ref in contrasts:
            if contrast == "interaction":
                rows += _interaction_rows(sub, labels[keep], mapping, endpoints, adjust)
                continue
            lab = np.array([mapping.get(a, "") for a in labels[keep]], dtype=object)
            use = lab != ""  # arms outside the contrast (explicit arms of a factorial spec)
            cs = compare_arms(sub.subset(use), lab[use].astype(str), reference=ref,
                              only=endpoints)
            # the adjustment's family: the arms compared with the reference on one endpoint
            fam: dict[str, list[int]] = {}
            for j, c in enumerate(cs):
                fam.setdefault(c["endpoint"], []).append(j)
            p_adj: list[float | None] = [c.get("p_value") for c in cs]
            for members in fam.values():
                adj = _adjusted([p_adj[j] for j in members], adjust)
                for j, v in zip(members, adj, strict=True):
                    p_adj[j] = v
            rows += [(contrast, c["endpoint"], c["arm"], c["kind"], p_adj[j], _estimate(c),
                      c.get("n"), c.get("n_reference")) for j, c in enumerate(cs)]
        out.append((n, rows))
    return out


def _interaction_rows(ep: ParticipantEndpoints, labels: np.ndarray,
                      cells: dict[str, tuple[str, str, str, str]], endpoints: Sequence[str],
                      adjust: str) -> list[tuple]:
    """Factorial interactions: for each (protocol, therapy) pair of non-control levels, the
    difference of differences ``(m[p+t] - m[p+t0]) - (m[p0+t] - m[p0+t0])`` of an endpoint's
    per-patient values (t0, p0: the control levels), with a Welch-Satterthwaite t test on the
    four cells' sample variances. Continuous and binary endpoints (binary in percentage points);
    no hazard-ratio interaction. ``(contrast, endpoint, label, kind, p, estimate, n_arm,
    n_reference)`` rows, n = patients of the p+t cell and of the control cell."""
    from scipy.stats import t as student_t

    rows: list[tuple] = []
    for e in endpoints:
        if e == "time_to_first_heavy_day":
            continue
        name = e.removeprefix("percent_")
        binary = name in BINARY_ENDPOINTS
        values = np.asarray(getattr(ep, name if binary else e), float)
        if binary:
            values = 100.0 * values
        fam = []
        for label, (c11, c10, c01, c00) in cells.items():
            stats = []
            for c in (c11, c10, c01, c00):
                v = values[labels == c]
                v = v[np.isfinite(v)]
                stats.append((v.mean() if v.size else math.nan,
                              v.var(ddof=1) if v.size > 1 else math.nan, v.size))
            (m11, v11, n11), (m10, v10, n10), (m01, v01, n01), (m00, v00, n00) = stats
            est = (m11 - m10) - (m01 - m00)
            parts = [v / n for v, n in ((v11, n11), (v10, n10), (v01, n01), (v00, n00))]
            se2 = sum(parts)
            p: float | None = None
            if math.isfinite(se2) and se2 > 0 and min(n11, n10, n01, n00) >= 2:
                df = se2**2 / sum(x**2 / (n - 1) for x, n in zip(
                    parts, (n11, n10, n01, n00), strict=True))
                p = float(2.0 * student_t.sf(abs(est) / math.sqrt(se2), df))
            fam.append((label, p, est if math.isfinite(est) else None, n11, n00))
        adj = _adjusted([f[1] for f in fam], adjust)
        rows += [("interaction", e, label, "difference_of_differences", pa, est, n11, n00)
                 for (label, _, est, n11, n00), pa in zip(fam, adj, strict=True)]
    return rows


def _contrasts(spec: TrialSpec, arm_order: list[str], ref: str
               ) -> list[tuple[str, dict[str, Any], str]]:
    """``(name, arm -> level, reference level)``: every arm against the reference arm, and in a
    factorial design each factor's main effect (its levels pooled over the other factor's) and
    each interaction (``"P x T"`` -> its four cells, :func:`_interaction_rows`)."""
    out = [("arm", {a: a for a in arm_order}, ref)]
    f = spec.factorial
    if f is None or (len(f.protocols) < 2 and len(f.therapies) < 2):
        return out
    cells = {f"{p}+{t}": (p, t) for p in f.protocols for t in f.therapies}
    if ref not in cells:
        return out  # a reference outside the factorial arms: no factor has a control level
    rp, rt = cells[ref]
    if len(f.protocols) > 1:
        out.append(("protocol", {a: pt[0] for a, pt in cells.items()}, rp))
    if len(f.therapies) > 1:
        out.append(("therapy", {a: pt[1] for a, pt in cells.items()}, rt))
    inter = {f"{p} x {t}": (f"{p}+{t}", f"{p}+{rt}", f"{rp}+{t}", ref)
             for p in f.protocols if p != rp for t in f.therapies if t != rt}
    if inter:
        out.append(("interaction", inter, "additive effects"))
    return out


def _map(fn: Callable[[tuple], Any], jobs: list[tuple], workers: int) -> Any:
    """``fn`` over ``jobs`` in order, in ``workers`` processes (the results do not depend on
    how many)."""
    if workers <= 1 or len(jobs) < 2:
        yield from map(fn, jobs)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from reconsolidate.trial.run import _worker_init

    ctx = multiprocessing.get_context("spawn")  # as run_trial: no fork after numba threads ran
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                             initializer=_worker_init) as pool:
        yield from pool.map(fn, jobs, chunksize=max(1, len(jobs) // (8 * workers)))


def estimate_power(
    spec: TrialSpec,
    spec_dir: str | Path,
    patients_per_arm: Sequence[int],
    *,
    replicates: int = DEFAULT_REPLICATES,
    alpha: float = 0.05,
    endpoints: Sequence[str] = REPORTED_COMPARISONS,
    target_power: float | None = 0.8,
    adjust: str = "none",
    missing_days: str | None = None,
    workers: int = 1,
    chunk_size: int = 5000,
    calibrated: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Power of every arm-vs-reference comparison at each arm size, by simulated replicates.

    Parameters
    ----------
    spec
        The trial design. Its ``replicates`` and ``shared_patients`` are replaced (by
        ``replicates`` and false: power needs independent arms); its ``seed`` and
        ``[analysis]`` (missing days, thresholds, reference arm) are used as they are.
    spec_dir
        Directory the spec's regimen files are relative to.
    patients_per_arm
        Arm sizes to evaluate (patients of an arm of allocation 1), each >= the spec's minimum.
    replicates
        Simulated trials per arm size (2 to :data:`MAX_REPLICATES`).
    alpha
        Two-sided significance level of each test.
    endpoints
        Names of :data:`reconsolidate.endpoints.COMPARISON_ENDPOINTS` (default: the trial
        report's comparisons).
    target_power
        For each comparison, the smallest arm size of the grid whose power reaches this is
        reported, and the smallest whose Wilson interval lies above it (None: not reported).
    adjust
        ``"none"``, ``"holm"`` or ``"bonferroni"``: multiplicity adjustment across the arms
        compared with the reference (per endpoint and contrast, within each trial); endpoints
        are not adjusted against each other (choose the primary one with ``endpoints``).
    missing_days
        Replaces the spec's ``[analysis] missing_days`` (``"exclude"``, ``"heavy"``,
        ``"abstinent"``): the answer depends on it when dropout is informative.
    workers, chunk_size
        As for :func:`reconsolidate.trial.run_trial` (they change no result).
    calibrated
        Use the package's calibrated parameters (as ``reconsolidate trial``).
    progress
        Called with ``(phase, done, total)``: phase ``"simulate"`` (patients) then
        ``"analyse"`` (replicate trials analysed).

    Returns
    -------
    dict
        JSON-safe: ``spec``, ``seed``, ``version``, ``calibrated``, ``design``, ``replicates``,
        ``alpha``, ``adjust``, ``analysis`` (the scoring settings), ``test``,
        ``reference_arm``, ``patients_per_arm`` (the grid), ``arm_sizes`` (each arm's patients
        at each grid size), ``target_power``, ``comparisons`` (one per contrast, arm and
        endpoint: ``contrast`` ("arm": the arm against the reference arm; in a factorial
        design also "protocol" and "therapy": a factor's level against its control level,
        pooled over the other factor, and "interaction": ``"P x T"``, the difference of
        differences against additive effects), ``endpoint``, ``label``, ``kind``, ``arm``,
        ``reference``, ``by_n`` (per arm size: ``power`` (significant in the arm's favour), its
        Wilson 95% CI ``ci_low``/``ci_high``, ``n_significant`` (in the arm's favour),
        ``n_significant_against_arm``, ``rejection_rate`` (significant either way),
        ``n_not_estimable``, ``median_estimate`` and its 2.5-97.5 percentiles over the
        replicates ``estimate_p2_5``/``estimate_p97_5``, ``median_p_value``, the mean numbers
        of patients analysed ``mean_n_arm``/``mean_n_reference``), ``smallest_n_for_target``,
        ``smallest_n_for_target_ci`` (the smallest size whose interval's lower end reaches the
        target) and ``no_difference`` (true when no replicate at any size showed any
        difference: an endpoint that cannot detect anything in this design, e.g. nobody free
        of heavy days)), ``warnings`` (model-domain notes) and ``timings`` (seconds).

    Raises
    ------
    InputError
        For a one-arm spec, an arm size below the minimum, an unknown endpoint, adjustment or
        missing-day rule, or a level, target or replicate count out of range (each names the
        value and what is allowed).
    """
    import time

    from reconsolidate import __version__
    from reconsolidate.report.build import reference_arm
    from reconsolidate.trial.engine import make_plan
    from reconsolidate.trial.run import abstinent_last_span_days, run_trial

    sizes = _check(spec, patients_per_arm, replicates, alpha, list(endpoints), target_power)
    if adjust not in ADJUSTMENTS:
        raise InputError(f"adjust {adjust!r}: allowed {', '.join(ADJUSTMENTS)}")
    update: dict[str, Any] = {"replicates": int(replicates), "shared_patients": False}
    if missing_days is not None:
        if missing_days not in MISSING_DAYS:
            raise InputError(f"missing days {missing_days!r}: allowed {', '.join(MISSING_DAYS)}")
        update["analysis"] = spec.analysis.model_copy(update={"missing_days": missing_days})
    design = spec.model_copy(update=update)
    arm_order = [a.name for a in design.all_arms()]
    factorial = design.factorial.model_dump() if design.factorial is not None else None
    ref = design.analysis.reference_arm or reference_arm(arm_order, factorial)
    contrasts = _contrasts(design, arm_order, ref)
    # the arm sizes of each grid size, by the spec's own allocation rule
    arm_sizes = {n: design.arm_sizes(n) for n in sizes}
    # every trial's per-patient outcomes are held until analysed (about 580 B a patient, twice
    # while the replicates' tables are built): refuse what would not fit, before simulating
    n_patients = replicates * sum(arm_sizes[sizes[-1]].values())
    need_gb = 2.0 * OUTCOME_BYTES_PER_PATIENT * n_patients / 1e9
    if need_gb > MAX_OUTCOMES_GB:
        raise InputError(
            f"{replicates} replicates x {sum(arm_sizes[sizes[-1]].values())} patients at the "
            f"largest size: about {need_gb:.1f} GB of outcomes held in memory; allowed up to "
            f"{MAX_OUTCOMES_GB:g} GB (fewer replicates or a smaller largest arm size)")
    plan = make_plan(design, spec_dir, sizes[-1], calibrated=calibrated)

    t0 = time.perf_counter()
    sim_progress = None if progress is None else (lambda d, t: progress("simulate", d, t))
    result = run_trial(plan, out_dir=None, workers=workers, chunk_size=chunk_size,
                       progress=sim_progress)
    t_sim = time.perf_counter() - t0

    t1 = time.perf_counter()
    tables = _replicate_tables(result.outcome_chunks, arm_order)
    result.outcome_chunks.clear()  # the tables hold the arrays now
    # (contrast, endpoint, arm) -> per size: list of (p, estimate, n_arm, n_ref) over replicates
    found: dict[tuple[str, str, str], dict[int, list[tuple]]] = {}
    kinds: dict[tuple[str, str], str] = {}
    refs = {name: r for name, _, r in contrasts}
    total = len(tables)
    if progress is not None:
        progress("analyse", 0, total)
    jobs = [(ep, labels, index, sizes, arm_sizes, contrasts, list(endpoints), adjust)
            for ep, labels, index in tables.values()]
    tables.clear()
    for done, per_size in enumerate(_map(_analyse_replicate, jobs, workers), start=1):
        jobs[done - 1] = ()  # analysed: free its arrays
        for n, rows in per_size:
            for contrast, endpoint, arm, kind, p, est, n_arm, n_ref in rows:
                kinds[(contrast, endpoint)] = kind
                found.setdefault((contrast, endpoint, arm), {}).setdefault(n, []).append(
                    (p, est, n_arm, n_ref))
        if progress is not None:
            progress("analyse", done, total)
    k_days = abstinent_last_span_days(design.analysis.abstinent_last_days,
                                      design.follow_up_days)
    comparisons = []
    for contrast, mapping, _ in contrasts:
        levels = (list(mapping) if contrast == "interaction" else
                  list(dict.fromkeys(mapping[a] for a in arm_order if a in mapping)))
        for e in endpoints:
            for arm in levels:
                if (contrast, e, arm) not in found:
                    continue
                by_n = [_size_row(e, n, found[(contrast, e, arm)][n], alpha) for n in sizes]
                reach = reach_ci = None
                if target_power is not None:
                    reach = next((b["patients_per_arm"] for b in by_n
                                  if b["power"] >= target_power), None)
                    reach_ci = next((b["patients_per_arm"] for b in by_n
                                     if b["ci_low"] >= target_power), None)
                comparisons.append({
                    "contrast": contrast,
                    "endpoint": e,
                    "label": COMPARISON_LABELS[e].replace("K days", f"{k_days} days")
                    + (" - interaction (difference of differences)"
                       if contrast == "interaction" else ""),
                    "kind": kinds[(contrast, e)],
                    "arm": arm,
                    "reference": refs[contrast],
                    "by_n": by_n,
                    "smallest_n_for_target": reach,
                    "smallest_n_for_target_ci": reach_ci,
                    "no_difference": all(
                        (v is None or v == (1.0 if kinds[(contrast, e)] == "hazard_ratio"
                                            else 0.0))
                        and (p is None or p >= alpha)
                        for n in sizes for p, v, _, _ in found[(contrast, e, arm)][n]),
                })
    an = design.analysis
    return {
        "spec": spec.name,
        "seed": int(design.seed),
        "version": __version__,
        "calibrated": bool(calibrated),
        "design": "parallel groups: each arm draws its own patients (shared_patients = false); "
                  "arm sizes nested (a smaller trial is each arm's first patients)",
        "replicates": int(replicates),
        "alpha": float(alpha),
        "adjust": adjust,
        "analysis": {"missing_days": an.missing_days,
                     "heavy_drinks_men": an.heavy_drinks_men,
                     "heavy_drinks_women": an.heavy_drinks_women,
                     "abstinent_last_days": k_days,
                     "abstinent_last_min_days": an.abstinent_last_min_days,
                     "grace_days": an.grace_days,
                     "baseline_window_days": an.baseline_window_days},
        "test": "two-sided, on the reported diary, missing days "
                f"'{an.missing_days}'; "
                + ("no multiplicity adjustment" if adjust == "none" else
                   f"{adjust.capitalize()}-adjusted across the arms compared with the "
                   "reference, per endpoint")
                + "; endpoints not adjusted against each other",
        "reference_arm": ref,
        "patients_per_arm": sizes,
        "arm_sizes": {str(n): arm_sizes[n] for n in sizes},
        "target_power": target_power,
        "comparisons": comparisons,
        "warnings": list(result.warnings),
        "timings": {"simulate_seconds": t_sim, "analyse_seconds": time.perf_counter() - t1,
                    "patient_days": result.timings.get("patient_days", 0.0)},
    }


def _size_row(endpoint: str, n: int, res: list[tuple], alpha: float) -> dict[str, Any]:
    """One comparison at one arm size, over the replicates' ``(p, estimate, n_arm, n_ref)``."""
    ps = [p for p, _, _, _ in res if p is not None]
    est = np.array([v for _, v, _, _ in res if v is not None], dtype=float)
    sig = [v for p, v, _, _ in res if p is not None and p < alpha]
    k = sum(1 for v in sig if v is not None and favours_arm(endpoint, v))
    lo, hi = _wilson(k, len(res))
    n_arm = [x for _, _, x, _ in res if x is not None]
    n_ref = [x for _, _, _, x in res if x is not None]
    return {
        "patients_per_arm": n,
        "power": k / len(res),
        "ci_low": max(0.0, lo),
        "ci_high": min(1.0, hi),
        "n_significant": k,
        "n_significant_against_arm": len(sig) - k,
        "rejection_rate": len(sig) / len(res),
        "n_not_estimable": len(res) - len(ps),
        "median_estimate": float(np.median(est)) if est.size else None,
        "estimate_p2_5": float(np.percentile(est, 2.5)) if est.size else None,
        "estimate_p97_5": float(np.percentile(est, 97.5)) if est.size else None,
        "median_p_value": float(np.median(ps)) if ps else None,
        "mean_n_arm": float(np.mean(n_arm)) if n_arm else None,
        "mean_n_reference": float(np.mean(n_ref)) if n_ref else None,
    }
