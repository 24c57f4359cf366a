"""Build ``RUN_DIR/report.html`` from a simulated-trial run directory.

Reads the run layout of docs/trial-spec.md ("Output directory": ``metadata.json``,
``patients.parquet``, ``outcomes.parquet``, optionally ``drinking.parquet`` and
``memory.parquet``) and writes one self-contained HTML file: figures are inline base64 PNG, the
style sheet is inline, there is no script and no external resource, so it opens offline and can
be sent by e-mail. A run directory written before ``memory.parquet`` existed still renders; its
memory section says the table is absent.
"""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from reconsolidate._io import atomic_write_text
from reconsolidate.endpoints.stats import _wilson
from reconsolidate.endpoints.summary import (
    COMPARISON_LABELS,
    REPORTED_COMPARISONS,
    comparison_estimate,
    favours_arm,
)
from reconsolidate.exceptions import InputError
from reconsolidate.report import figures

__all__ = ["build_report", "write_report"]

_CONTROL_PATTERN = re.compile(r"pbo|placebo|saline|midazolam|control|sham", re.IGNORECASE)
_ENDPOINT_ROWS = (
    ("percent_days_abstinent", "% days abstinent", "mean"),
    ("percent_heavy_drinking_days", "% heavy drinking days", "mean"),
    ("drinks_per_week", "drinks per week", "mean"),
    ("change_drinks_per_week", "change in drinks/week from baseline", "mean"),
    ("no_heavy_drinking_days", "% with no heavy drinking day", "percent"),
    ("abstinent_last_days", "% abstinent in the last K days", "percent"),
)
_COMPARISONS = tuple((key, COMPARISON_LABELS[key]) for key in REPORTED_COMPARISONS)


def _read_parquet(path: Path, columns: list[str] | None = None) -> Any:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path, columns=columns).to_pandas()
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    """An error's first line (duckdb's messages go on with the query and hints)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return str(int(v))
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not math.isfinite(f):
        return "-" if math.isnan(f) else ("not reached" if f > 0 else "-inf")
    return f"{f:.{digits}f}"


def _fmt_p(p: Any) -> str:
    if p is None:
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


# --------------------------------------------------------------------------- sections -------


def _arms(meta: dict[str, Any], patients: Any) -> list[str]:
    names = list(meta.get("arms", {}))
    if not names:
        names = list(dict.fromkeys(patients["arm"].tolist()))
    return names


def _protocol_rows(meta: dict[str, Any], arms: list[str]) -> list[dict[str, str]]:
    spec = meta.get("resolved_parameters", {}).get("spec", {})
    protocols = spec.get("protocols", {})
    rows = []
    for arm in arms:
        a = meta.get("arms", {}).get(arm, {})
        pname = a.get("protocol", "")
        prot = protocols.get(pname, {})
        sessions = []
        for s in prot.get("sessions", []):
            reg = s.get("regimen")
            reg_txt = ""
            if isinstance(reg, str):
                reg_txt = f", regimen {reg}"
            elif isinstance(reg, dict):
                reg_txt = f", regimen {reg.get('name', 'inline')}"
            if s.get("retrieval") == "none":
                sessions.append(f"day {s.get('day')}: no retrieval, {s.get('drug')}{reg_txt}")
            else:
                sessions.append(
                    f"day {s.get('day')}: {s.get('retrieval')} retrieval, {s.get('drug')}"
                    f" {s.get('delay_min', 0):g} min after retrieval{reg_txt}"
                )
        th = a.get("therapy", {})
        therapy = th.get("name", "none") if isinstance(th, dict) else str(th)
        if isinstance(th, dict) and th.get("session_days"):
            therapy += f" (sessions on days {', '.join(str(d) for d in th['session_days'])})"
        lab = prot.get("lab_days", [])
        rows.append({
            "arm": arm,
            "n": str(a.get("n_patients", "")),
            "protocol": pname,
            "sessions": "; ".join(sessions) or "-",
            "therapy": therapy,
            "lab_days": ", ".join(str(d) for d in lab) or "-",
        })
    return rows


def _cohort_rows(patients: Any, arms: list[str]) -> list[dict[str, str]]:
    rows = []
    for arm in arms:
        p = patients[patients["arm"] == arm]
        if len(p) == 0:
            continue

        def m(col: str, digits: int = 1, _p: Any = p) -> str:
            if col not in _p:
                return "-"
            v = _p[col].astype(float)
            return f"{v.mean():.{digits}f} ({v.std():.{digits}f})"

        rows.append({
            "arm": arm,
            "n": str(len(p)),
            "female": f"{100 * float((p['sex'] == 'F').mean()):.0f}%",
            "age": m("age_years"),
            "weight": m("weight_kg"),
            "dpdd": m("drinks_per_drinking_day"),
            "ddpw": m("drinking_days_per_week"),
            "dsm5": m("dsm5_criteria"),
            "seeking": (f"{100 * float(p['treatment_seeking'].mean()):.0f}%"
                        if "treatment_seeking" in p else "-"),
            "abstinent": (f"{100 * float(p['abstinent_at_entry'].mean()):.0f}%"
                          if "abstinent_at_entry" in p else "-"),
        })
    return rows


def _resolve_regimen(reg: Any, meta: dict[str, Any], run_dir: Path) -> Any:
    from reconsolidate.pharmacology import Regimen, load_regimen

    if isinstance(reg, dict):
        return Regimen.model_validate(reg)
    if not isinstance(reg, str):
        return None
    candidates = []
    for key in ("spec_dir", "spec_path"):
        v = meta.get(key)
        if v:
            b = Path(v)
            candidates.append((b if key == "spec_dir" else b.parent) / reg)
    candidates += [run_dir / reg, Path.cwd() / reg]
    for c in candidates:
        if c.is_file():
            return load_regimen(c)
    return None


def _pk_section(meta: dict[str, Any], patients: Any, arms: list[str], run_dir: Path
                ) -> tuple[list[dict[str, str]], list[str]]:
    """One PK/occupancy figure per distinct ketamine regimen (typical = median-weight patient)."""
    from reconsolidate.pharmacology import simulate

    spec = meta.get("resolved_parameters", {}).get("spec", {})
    mem = meta.get("resolved_parameters", {}).get("memory", {})
    tau = float(mem.get("lability_tau_min", 60.0))
    window_min = 360.0
    try:
        from reconsolidate.trial.engine import RESTABILISATION_WINDOW_MIN

        window_min = float(RESTABILISATION_WINDOW_MIN)
    except ImportError:  # pragma: no cover - the engine is part of the package
        pass
    figs: list[dict[str, str]] = []
    notes: list[str] = []
    seen: set[str] = set()
    for arm in arms:
        a = meta.get("arms", {}).get(arm, {})
        prot = spec.get("protocols", {}).get(a.get("protocol", ""), {})
        for j, s in enumerate(prot.get("sessions", [])):
            if s.get("drug") != "ketamine":
                continue
            reg_src = a.get("regimens", {}).get(str(j), s.get("regimen"))
            key = json.dumps([reg_src, s.get("delay_min", 0.0), s.get("pk_model", "domino")],
                             sort_keys=True, default=str)
            if key in seen:
                continue
            seen.add(key)
            regimen = _resolve_regimen(reg_src, meta, run_dir)
            if regimen is None:
                notes.append(
                    f"Arm {arm}, session {j}: the regimen {reg_src!r} is a path relative to the "
                    "original spec file and is not recorded in the run directory, so its PK "
                    "could not be drawn (the trial engine should store the resolved regimen in "
                    "metadata.json, see docs/calibration.md)."
                )
                continue
            w = patients.loc[patients["arm"] == arm, "weight_kg"].astype(float)
            weight = float(np.median(w)) if len(w) else 70.0
            retrieval = s.get("retrieval") != "none"
            delay = float(s.get("delay_min", 0.0)) if retrieval else 0.0
            t_end = max(-delay + window_min if retrieval else 0.0, 120.0) + 30.0
            times = np.arange(0.0, t_end + 1.0, 1.0)
            res = simulate(s.get("pk_model", "domino"), regimen, weight, times)
            caption = (f"Plasma ketamine and NMDA receptor occupancy of a median-weight patient "
                       f"({weight:.0f} kg) of arm {arm}, without between-patient variability. ")
            if retrieval:
                caption += (
                    f"The retrieval ends at {0.0 - delay + 0.0:g} min; the shaded band is the 6 h "
                    f"restabilisation window over which the occupancy integral is taken, the "
                    f"darker part its first lability time constant ({tau:g} min).")
            else:
                caption += ("This session has no retrieval (retrieval = none): no memory is "
                            "labile, so the occupancy acts on no reconsolidation window; the "
                            "drug works here through its non-specific pathway only.")
            figs.append({
                "title": f"{arm}, session day {s.get('day')}: {getattr(regimen, 'name', '')}",
                "uri": figures.pk_figure(
                    res.time_min, res.plasma_ng_ml[0], res.nmda_occupancy[0],
                    retrieval_end_min=-delay if retrieval else None,
                    window_stop_min=-delay + window_min, lability_tau_min=tau,
                    title=f"typical patient ({weight:.0f} kg, model {s.get('pk_model', 'domino')})",
                ),
                "caption": caption,
            })
    # the run's model-domain notes (PK covariates outside a model's validated range,
    # psychedelic intensities extrapolated or capped), as the trial command printed them
    notes += [f"Model domain: {w}." for w in meta.get("warnings", [])]
    return figs, notes


_MEMORY_COLUMNS = ("arm", "study_day", "cue_reactivity", "acquisition_weight")
_MEMORY_MEASURES = (
    ("cue_reactivity", "cue reactivity (0-1)"),
    ("acquisition_weight", "acquisition weight (0-1)"),
)


def _memory_means(path: Path) -> dict[str, np.ndarray]:
    """Per (arm, study day): patients, mean and standard error of each memory measure.

    Aggregated in duckdb straight from the Parquet file (millions of patient-snapshots at full
    trial size); replicates are pooled. Returns column arrays sorted by arm, then study day.
    """
    import duckdb
    import pyarrow.parquet as pq

    try:
        names = set(pq.read_schema(path).names)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read ({_first_line(exc)})") from None
    missing = [c for c in _MEMORY_COLUMNS if c not in names]
    if missing:
        raise InputError(f"{path}: lacks column(s) {', '.join(missing)} "
                         f"(expected {', '.join(_MEMORY_COLUMNS)})")
    stats = ", ".join(
        f"avg({c}) AS {c}_mean, stddev_samp({c}) / sqrt(count({c})) AS {c}_se"
        for c, _ in _MEMORY_MEASURES
    )
    query = (f"SELECT arm, study_day, count(*) AS n, {stats} FROM read_parquet(?) "
             "GROUP BY arm, study_day ORDER BY arm, study_day")
    con = duckdb.connect()
    try:
        cols = con.execute(query, [str(path)]).fetchnumpy()
    except duckdb.Error as exc:
        raise InputError(f"{path}: cannot read ({_first_line(exc)})") from None
    finally:
        con.close()
    # a single patient has no standard error: duckdb's NULL becomes NaN (no band drawn)
    return {k: np.ma.filled(v, np.nan) if k.endswith("_se") else np.asarray(v)
            for k, v in cols.items()}


def _memory_section(run_dir: Path, arms: list[str], shared_patients: bool = True,
                    same_people: bool = True, pooled: bool = False) -> dict[str, str]:
    """Mean cue reactivity and acquisition weight by arm over study days, from memory.parquet.

    ``same_people``: the arms' patients are the same people before day 0 (shared patients,
    one cohort for every arm, one therapy); ``pooled``: the run holds several replicates.
    """
    path = run_dir / "memory.parquet"
    if not path.is_file():
        return {"uri": "", "caption": "", "note": (
            "This run directory has no memory.parquet (it was written before "
            "`reconsolidate trial` recorded the memory snapshots), so memory strength over time "
            "cannot be shown. Re-run the trial to get it.")}
    m = _memory_means(path)
    days: dict[str, np.ndarray] = {}
    panels: list[tuple[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]] = [
        (label, {}) for _, label in _MEMORY_MEASURES
    ]
    n_patients: dict[str, int] = {}
    for arm in arms:
        rows = m["arm"] == arm
        if not rows.any():
            continue
        days[arm] = m["study_day"][rows].astype(float)
        n_patients[arm] = int(m["n"][rows].max())
        for (col, _), (_, series) in zip(_MEMORY_MEASURES, panels, strict=True):
            mean = m[f"{col}_mean"][rows].astype(float)
            half = 1.96 * m[f"{col}_se"][rows].astype(float)
            series[arm] = (mean, mean - half, mean + half)
    if not days:
        return {"uri": "", "caption": "", "note": (
            f"memory.parquet has no rows for the arms of this run ({', '.join(arms)}).")}
    all_days = np.concatenate(list(days.values()))
    n_txt = ", ".join(f"{a} {n}" for a, n in n_patients.items())
    return {
        "uri": figures.memory_figure(days, panels),
        "caption": (
            "Cue-alcohol memories by arm, from memory.parquet: mean over patients (line) and "
            "95% confidence band of the mean (mean +- 1.96 standard errors across patients, "
            "replicates pooled). Top: cue reactivity, the memory model's conditioned response "
            "averaged over the cue classes (the craving drive of the cue memories). Bottom: "
            "acquisition weight, the stored cue-alcohol association averaged over the cue "
            "classes (what blocked restabilisation weakens). Snapshots on study days "
            f"{int(all_days.min())} to {int(all_days.max())}, taken at the start of the day; "
            "day 0 (dotted line) is the first treatment session, and its snapshot follows the "
            "session. "
            + ("Arms share their patients (common random numbers), so their curves coincide "
               "before the first session of any arm. " if shared_patients and same_people else
               "The arms share their patients' random numbers but not their cohort, "
               "therapy or size, so their curves can differ before day 0 too. "
               if shared_patients else
               "Each arm has its own patients (shared_patients = false), so their curves "
               "differ by chance before day 0 too. ")
            + f"Patients per arm{' (all replicates)' if pooled else ''}: {n_txt}. With many "
            "virtual patients the band reflects simulation noise only."),
        "note": "",
    }


def _same_people_before_day0(meta: dict[str, Any]) -> bool:
    """Whether every arm has the same cohort, therapy and size (with shared patients, their
    patients then live the same days until the first session of any arm; a larger arm has
    patients the others lack, so its mean differs)."""
    arms = list(meta.get("arms", {}).values())
    key = [json.dumps([a.get("cohort"), a.get("therapy"), a.get("n_patients")],
                      sort_keys=True, default=str)
           for a in arms]
    return len(set(key)) <= 1


def _weekly_means(path: Path, patients: Any, arms: list[str]
                  ) -> tuple[np.ndarray, dict[str, dict[str, np.ndarray]]]:
    """Per arm and study week: mean, 95% CI of the mean and quartiles of the patients' reported
    drinks per week (a patient-week = mean of its observed days x 7).

    Aggregated in duckdb straight from ``drinking.parquet`` (hundreds of millions of
    patient-days at full trial size: loading it into pandas took ~8 GB at 1,000,000 patients).
    Missing days (NaN) are left out; a patient-week without an observed day counts nowhere.
    """
    import duckdb

    query = """
        WITH pw AS (
            SELECT p.arm, d.patient_id, CAST(floor(d.study_day / 7.0) AS INTEGER) AS week,
                   7.0 * avg(d.drinks_reported)
                       FILTER (WHERE NOT isnan(d.drinks_reported)) AS dpw,
                   7.0 * avg(d.drinks_true) AS true_dpw
            FROM read_parquet(?) AS d JOIN pats AS p USING (patient_id)
            GROUP BY p.arm, d.patient_id, week)
        SELECT arm, week, avg(dpw) AS mean, stddev_samp(dpw) AS sd, count(dpw) AS n,
               quantile_cont(dpw, 0.25) AS q25, quantile_cont(dpw, 0.75) AS q75,
               avg(true_dpw) AS true_mean
        FROM pw GROUP BY arm, week ORDER BY arm, week"""
    pats = patients[["patient_id", "arm"]]
    con = duckdb.connect()
    try:
        con.register("pats", pats)
        cols = con.execute(query, [str(path)]).fetchnumpy()
    except duckdb.Error as exc:
        raise InputError(f"{path}: cannot read ({_first_line(exc)})") from None
    finally:
        con.close()

    def _col(name: str) -> np.ndarray:
        v = cols[name]
        return np.ma.filled(v.astype(float), np.nan) if np.ma.isMaskedArray(v) else v.astype(float)

    arm_col = np.asarray(cols["arm"]).astype(str)
    week = np.asarray(cols["week"]).astype(np.int64)
    weeks_all = np.unique(week)
    mean, sd, n, q25, q75, true = (_col(k) for k in ("mean", "sd", "n", "q25", "q75",
                                                      "true_mean"))
    series: dict[str, dict[str, np.ndarray]] = {}
    for arm in arms:
        sel = arm_col == arm
        pos = np.searchsorted(weeks_all, week[sel])

        def _place(v: np.ndarray, sel: np.ndarray = sel, pos: np.ndarray = pos) -> np.ndarray:
            out = np.full(weeks_all.size, np.nan)
            out[pos] = v[sel]
            return out

        m, se = _place(mean), _place(sd) / np.sqrt(np.maximum(_place(n), 1.0))
        series[arm] = {"mean": m, "ci_low": m - 1.96 * se, "ci_high": m + 1.96 * se,
                       "q25": _place(q25), "q75": _place(q75), "true": _place(true)}
    return weeks_all, series


def _visit_days(spec: dict[str, Any]) -> list[int]:
    """The follow-up TLFB visit days of the run's resolved spec ([] if it does not validate:
    a run of another version)."""
    from reconsolidate.trial.spec import TrialSpec

    try:
        return TrialSpec.model_validate(spec).visit_days()
    except Exception:  # any older layout: draw no visits
        return []


def _weekly_section(run_dir: Path, patients: Any, arms: list[str], pooled: bool = False,
                    visit_days: list[int] | None = None) -> dict[str, str]:
    dp = run_dir / "drinking.parquet"
    if not dp.is_file():
        return {"uri": "", "caption": "The run has no drinking.parquet (--no-drinking-table): "
                "weekly drinking cannot be shown."}
    weeks_all, series = _weekly_means(dp, patients, arms)
    visits = [d / 7.0 for d in (visit_days or [])]
    return {
        "uri": figures.weekly_drinking_figure(
            weeks_all.astype(float), series, ylabel="drinks per week (US standard)",
            visit_weeks=visits),
        "caption": ("Reported (TLFB) US standard drinks per week by arm (solid); a "
                    "patient-week is the mean of its observed days x 7 (missing days and "
                    "dropouts are left out). Dashed: the true drinking of the same arm (every "
                    "patient, every day). Negative weeks are the baseline."
                    + (" Grey ticks: the follow-up TLFB visits. Each visit recalls the days "
                       "since the previous one, and recall fails more the longer ago a day was "
                       "(docs/trial-spec.md, [observation]): the days just after a visit are "
                       "recalled the longest time later, so reported drinking dips after each "
                       "visit. That saw-tooth is recall error, not an effect of treatment."
                       if visits else "")
                    + (" Patients of all replicates pooled." if pooled else "")),
    }


def _endpoints(outcomes: Any) -> Any:
    from reconsolidate.endpoints import ParticipantEndpoints

    return ParticipantEndpoints.from_columns(outcomes, "outcomes.parquet")


#: Therapies that are the control level of a factorial design's therapy factor, in order of
#: preference: none, then alcohol education (KARE's attention control).
_CONTROL_THERAPIES = ("none", "education")


def reference_arm(arms: list[str], factorial: dict[str, Any] | None = None) -> str:
    """The arm the others are compared with.

    In a factorial design (``factorial``: the spec's ``protocols`` and ``therapies``) the
    control of both factors: the first control-named protocol (placebo, saline, midazolam, ...)
    with the control therapy (``none``, else ``education``), e.g. ``saline3+education`` in
    KARE's 2 x 2 (by name alone ``saline3+mbrp`` came first, and each comparison mixed the two
    factors). Otherwise the first arm whose name says it is a control, else the first in sort
    order.
    """
    if factorial:
        prots = list(factorial.get("protocols") or [])
        thers = list(factorial.get("therapies") or [])
        if prots and thers:
            p = next((x for x in prots if _CONTROL_PATTERN.search(x)), None)
            t = next((x for x in _CONTROL_THERAPIES if x in thers), None)
            if p is not None and t is not None and f"{p}+{t}" in arms:
                return f"{p}+{t}"
    for a in arms:
        if _CONTROL_PATTERN.search(a):
            return a
    return sorted(arms)[0]


def replicate_of(patients: Any, outcomes: Any) -> np.ndarray | None:
    """Replicate of each row of ``outcomes`` (from ``patients.parquet``), or None when the run
    holds a single replicate (or predates the ``replicate`` column).

    Raises
    ------
    InputError
        When an outcome row's ``patient_id`` is not in ``patients.parquet``.
    """
    if "replicate" not in patients or "patient_id" not in outcomes:
        return None
    reps = patients["replicate"].to_numpy()
    if len(np.unique(reps)) <= 1:
        return None
    rep = dict(zip(patients["patient_id"].astype(str), reps.astype(int), strict=True))
    ids = outcomes["patient_id"].astype(str)
    unknown = ids[~ids.isin(rep.keys())]
    if len(unknown):
        raise InputError(f"outcomes.parquet: patient_id {unknown.iloc[0]!r} is not in "
                         "patients.parquet (allowed: the run's own patients)")
    return ids.map(rep).to_numpy(int)


def _comparison_rows(ep: Any, labels: np.ndarray, ref: str, k: Any,
                     replicate: int | None = None) -> list[dict[str, Any]]:
    """The between-arm table rows of one trial (one replicate, or the whole run)."""
    from reconsolidate.endpoints import compare_arms

    want = dict(_COMPARISONS)
    crow: list[dict[str, Any]] = []
    for c in compare_arms(ep, labels, reference=ref):
        if c["endpoint"] not in want:
            continue
        est = comparison_estimate(c)
        digits = 2 if c["kind"] == "hazard_ratio" else 1
        ci = (f"[{_fmt(c.get('ci_low'), digits)}, {_fmt(c.get('ci_high'), digits)}]"
              if c.get("ci_low") is not None else "-")
        g = (f"{_fmt(c.get('hedges_g'), 2)} [{_fmt(c.get('g_ci_low'), 2)}, "
             f"{_fmt(c.get('g_ci_high'), 2)}]" if c.get("hedges_g") is not None else "-")
        crow.append({"endpoint": want[c["endpoint"]].replace("K days", f"{k} days"),
                     "key": c["endpoint"], "arm": c["arm"], "reference": c["reference"],
                     "replicate": "" if replicate is None else str(replicate),
                     # a comparison that cannot be estimated says why (e.g. "not estimable:
                     # an arm with 0% events"), as analyze's table does
                     "estimate": (_fmt(est, digits) if est is not None or not c.get("note")
                                  else str(c["note"])),
                     "ci": ci, "p": _fmt_p(c.get("p_value")),
                     "g": g, "value": est, "p_value": c.get("p_value"), "digits": digits})
    return crow


def _across_replicates(crow: list[dict[str, Any]], n_reps: int) -> list[dict[str, str]]:
    """Per (endpoint, arm): how the replicate trials' estimates spread (no patient pooling)."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for c in crow:
        groups.setdefault((c["endpoint"], c["arm"], c["reference"]), []).append(c)
    rows = []
    for (endpoint, arm, ref), cs in groups.items():
        v = np.array([float(c["value"]) for c in cs if c["value"] is not None], dtype=float)
        v = v[np.isfinite(v)]
        d = cs[0]["digits"]
        sig = [c for c in cs if c["p_value"] is not None and c["p_value"] < 0.05
               and c["value"] is not None]
        n_for = sum(1 for c in sig if favours_arm(c["key"], float(c["value"])))
        lo, hi = _wilson(n_for, n_reps)
        rows.append({
            "endpoint": endpoint, "arm": arm, "reference": ref,
            "median": _fmt(float(np.median(v)), d) if v.size else "-",
            "range": f"{_fmt(float(v.min()), d)} to {_fmt(float(v.max()), d)}" if v.size else "-",
            # in the arm's favour (the power, with shared_patients = false) with its Wilson
            # 95% interval, and apart the significant results against the arm
            "significant": (f"{n_for} of {n_reps} ({_fmt(100.0 * max(lo, 0.0), 0)}-"
                            f"{_fmt(100.0 * min(hi, 1.0), 0)}%)"),
            "against": str(len(sig) - n_for),
        })
    return rows


def _km_and_tables(outcomes: Any, arms: list[str], meta: dict[str, Any],
                   replicates: np.ndarray | None = None) -> dict[str, Any]:
    """Kaplan-Meier figure, endpoint table and between-arm comparisons.

    Descriptive numbers (curves, endpoint means) pool the replicates, as the trial's summary
    does; comparisons are made within each replicate (``replicates``, one per outcome row),
    never over pooled replicates: as ``reconsolidate analyze RUN_DIR --replicate R``.
    """
    from reconsolidate.endpoints import kaplan_meier, summarize_arms

    ep = _endpoints(outcomes)
    labels = outcomes["arm"].astype(str).to_numpy()
    curves = {}
    medians = {}
    for arm in arms:
        m = (labels == arm) & ep.included
        if not m.any():
            continue
        dur, ev = ep.days_to_first_heavy_day[m], ep.first_heavy_day_observed[m]
        km = kaplan_meier(dur, ev)
        curves[arm] = (km, dur, ev)
        medians[arm] = km.median_days
    spec = meta.get("resolved_parameters", {}).get("spec", {})
    follow = spec.get("follow_up_days", "")
    an = spec.get("analysis", {})
    km_uri = figures.km_figure(curves, xlabel="days from the first treatment session",
                               end_days=float(follow) if isinstance(follow, int) else None)
    summ = summarize_arms(ep, labels)
    k = an.get("abstinent_last_days", "K")
    dropped = (outcomes["dropped_out"].to_numpy().astype(bool) if "dropped_out" in outcomes
               else None)
    rows = [
        {"label": "n randomised", "cells": [_fmt(summ.get(a, {}).get("n")) for a in arms]},
        {"label": "n scored (a counted follow-up day)",
         "cells": [_fmt(summ.get(a, {}).get("n_scored")) for a in arms]},
    ]
    if dropped is not None:
        rows.append({"label": "dropped out before the end, %", "cells": [
            _fmt(100.0 * float(dropped[labels == a].mean())) if (labels == a).any() else "-"
            for a in arms]})
    for key, label, kind in _ENDPOINT_ROWS:
        lab = label.replace("K days", f"{k} days")
        cells = []
        for arm in arms:
            s = summ.get(arm, {})
            if kind == "mean":
                v, sd = s.get(key), s.get(f"{key}_sd")
                cells.append(f"{_fmt(v)} ({_fmt(sd)})" if v is not None else "-")
            else:
                # the share with its count and denominator (assessable patients): "36.7
                # (40/109)", so that a share of 1 of 1 cannot pass for a result
                pct, ev, den = (s.get(f"percent_{key}"), s.get(f"events_{key}"),
                                s.get(f"n_{key}"))
                cells.append(f"{_fmt(pct)} ({ev}/{den})" if pct is not None else "-")
        rows.append({"label": lab, "cells": cells})
    rows.append({"label": "median days to first heavy day (KM)",
                 "cells": [_fmt(medians.get(a), 0) for a in arms]})
    ref = an.get("reference_arm") or reference_arm(arms, spec.get("factorial"))
    reps = [] if replicates is None else sorted(np.unique(replicates).tolist())
    if not reps:
        crow = _comparison_rows(ep, labels, ref, k)
    else:
        crow = []
        for r in reps:
            sel = outcomes[replicates == r].reset_index(drop=True)
            crow += _comparison_rows(_endpoints(sel), sel["arm"].astype(str).to_numpy(), ref,
                                     k, replicate=int(r))
    pooled = " (replicates pooled)" if reps else ""
    return {
        "km_uri": km_uri,
        "km_caption": (
            f"Kaplan-Meier estimate of remaining free of heavy drinking (>= "
            f"{_fmt(an.get('heavy_drinks_men', 5), 0)} US drinks men, >= "
            f"{_fmt(an.get('heavy_drinks_women', 4), 0)} women) over days 0-"
            f"{follow - 1 if isinstance(follow, int) else ''}, reported diary, missing days "
            f"handled as '{an.get('missing_days', '')}'{pooled}."),
        "endpoint_rows": rows,
        "comparisons": crow,
        "across_replicates": _across_replicates(crow, len(reps)) if reps else [],
        "replicates": [int(r) for r in reps],
        # older runs' specs have no key: their arms shared patients
        "shared_patients": bool(spec.get("shared_patients", True)),
        "reference": ref,
        # how the reference arm was chosen: "spec" ([analysis] reference_arm), "name" (a
        # control-named arm) or "sort order" (neither: the report says so, loudly)
        "reference_source": ("spec" if an.get("reference_arm") else
                             "name" if any(_CONTROL_PATTERN.search(a) for a in arms)
                             else "sort order"),
        "missing_days": an.get("missing_days", ""),
    }


CALIBRATED = "calibrated"
CODE_DEFAULT = "code default (not calibrated)"
SET_BY_SPEC = "set by the spec"
NOT_USED = "not used by this run"


def _calibration_section(meta: dict[str, Any]) -> dict[str, Any]:
    """The calibration-status table and its summary sentence.

    Each free parameter (the targets file's ``[[parameters]]`` and the fitted file's) is one
    of: used by this run at its calibrated value (``calibrated``), used at the value the code
    gives it (``code default (not calibrated)``: an ASSUMPTION), used at a value the spec
    sets, or not used by this run (it belongs to a module no arm simulates, e.g. a therapy
    preset no arm receives). The summary counts each; the calibrated and uncalibrated counts
    are out of the parameters this run uses.
    """
    from reconsolidate.calibration.defaults import load_fitted
    from reconsolidate.calibration.predict import code_default
    from reconsolidate.calibration.targets import load_targets

    fitted = load_fitted(None)
    prov = fitted["provenance"]
    fp = fitted["parameters"]
    rp = meta.get("resolved_parameters", {})
    spec = rp.get("spec", {})
    run_arms = meta.get("arms", {})
    try:
        free = load_targets().parameters
    except InputError:
        free = []
    names = list(dict.fromkeys([p.name for p in free] + sorted(fp)))
    why = {p.name: p.why for p in free}
    therapies = sorted({str(a["therapy"].get("name")) for a in run_arms.values()
                        if isinstance(a.get("therapy"), dict)} - {"None", "none"})
    rows = []
    counts = {CALIBRATED: 0, CODE_DEFAULT: 0, SET_BY_SPEC: 0, NOT_USED: 0}
    unused_modules: list[str] = []
    for name in names:
        parts = name.split(".")
        used: float | None = None
        reason = ""
        if parts[0] == "behavior":
            used = spec.get("behavior", {}).get(parts[1])
        elif parts[0] == "memory":
            used = rp.get("memory", {}).get(parts[1])
        elif parts[0] == "therapy":
            for a in run_arms.values():
                th = a.get("therapy", {})
                if isinstance(th, dict) and th.get("name") == parts[1]:
                    used = th.get(parts[2])
                    break
            if used is None:
                reason = (f"no arm receives the {parts[1]} therapy"
                          + (f" (the arms' therapies: {', '.join(therapies)})" if therapies
                             else " (no arm has an adjunct therapy)"))
                unused_modules.append(f"the {parts[1]} therapy")
        elif parts[0] == "cohort":
            for a in run_arms.values():
                used = a.get("cohort", {}).get(parts[1])
                break
        if used is None and not reason:
            reason = "not among the run's resolved parameters"
            unused_modules.append(name)
        fv, cv = fp.get(name), code_default(name)
        if used is None:
            status = NOT_USED
        elif fv is not None and math.isclose(float(used), fv, rel_tol=1e-9, abs_tol=1e-12):
            status = CALIBRATED
        elif cv is not None and math.isclose(float(used), cv, rel_tol=1e-9, abs_tol=1e-12):
            status = CODE_DEFAULT
        else:
            status = SET_BY_SPEC
        counts[status] += 1
        rows.append({"name": name, "used": _fmt(used, 4), "fitted": _fmt(fv, 4),
                     "code": _fmt(cv, 4), "status": status + (f": {reason}" if reason else ""),
                     "kind": status, "why": why.get(name, "")})
    n_used = len(rows) - counts[NOT_USED]
    summary = (
        f"Of the {len(rows)} free parameters, {n_used} are used by this run: "
        f"{counts[CALIBRATED]} at their calibrated value, {counts[CODE_DEFAULT]} at their code "
        f"default (not calibrated: an ASSUMPTION) and {counts[SET_BY_SPEC]} at a value the "
        "trial spec sets."
    )
    if counts[NOT_USED]:
        mods = list(dict.fromkeys(unused_modules))
        one = counts[NOT_USED] == 1
        summary += (f" {counts[NOT_USED]} {'is' if one else 'are'} not used by this run "
                    f"({', '.join(mods)}: no arm simulates {'it' if len(mods) == 1 else 'them'})"
                    f"; {'its' if one else 'their'} calibration status does not matter here.")
    return {"rows": rows, "provenance": prov, "summary": summary, "n": len(rows),
            "n_used": n_used, "n_calibrated": counts[CALIBRATED],
            "n_code_default": counts[CODE_DEFAULT], "n_set_by_spec": counts[SET_BY_SPEC],
            "n_not_used": counts[NOT_USED]}


# --------------------------------------------------------------------------- entry points ----


def build_report(run_dir: str | Path) -> str:
    """The HTML text of the report of a run directory (see the module docstring)."""
    import jinja2

    from reconsolidate import __version__

    rd = Path(run_dir)
    mpath = rd / "metadata.json"
    if not rd.is_dir():
        what = "is not a directory" if rd.exists() else "not found"
        raise InputError(f"run directory {rd} {what} (a `reconsolidate trial --out` directory)")
    if not mpath.is_file():
        raise InputError(f"{rd}: no metadata.json (is this a `reconsolidate trial` run directory?)")
    try:
        meta = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{mpath}: invalid JSON ({exc})") from None
    # a metadata.json of another program, or truncated by hand, would render a report of
    # defaults ("No arm receives ketamine", "seed None"): refuse it
    if not isinstance(meta, dict):
        raise InputError(f"{mpath}: expected a JSON object, found {type(meta).__name__} (is "
                         "this a `reconsolidate trial` run directory?)")
    spec_meta = meta.get("resolved_parameters", {})
    if (not isinstance(meta.get("arms"), dict) or not meta["arms"]
            or not isinstance(spec_meta, dict) or not isinstance(spec_meta.get("spec"), dict)):
        raise InputError(f"{mpath}: lacks the run's 'arms' or 'resolved_parameters.spec' "
                         "(written by `reconsolidate trial`; re-run the trial)")
    for f in ("patients.parquet", "outcomes.parquet"):
        if not (rd / f).is_file():
            raise InputError(f"{rd}: {f} missing")
    patients = _read_parquet(rd / "patients.parquet")
    outcomes = _read_parquet(rd / "outcomes.parquet")
    arms = _arms(meta, patients)
    replicates = replicate_of(patients, outcomes)
    spec = meta.get("resolved_parameters", {}).get("spec", {})
    pk_figs, pk_notes = _pk_section(meta, patients, arms, rd)
    ctx = {
        "title": f"Trial report: {spec.get('name', rd.name)}",
        "meta": meta,
        "spec": spec,
        "arms": arms,
        "protocol_rows": _protocol_rows(meta, arms),
        "cohort_rows": _cohort_rows(patients, arms),
        "cohort_sources": sorted({str(a.get("cohort", {}).get("source", ""))
                                  for a in meta.get("arms", {}).values()} - {""}),
        "pk_figs": pk_figs,
        "pk_notes": pk_notes,
        "memory": _memory_section(rd, arms, bool(spec.get("shared_patients", True)),
                                  same_people=_same_people_before_day0(meta),
                                  pooled=replicates is not None),
        "weekly": _weekly_section(rd, patients, arms, pooled=replicates is not None,
                                  visit_days=_visit_days(spec)),
        **_km_and_tables(outcomes, arms, meta, replicates),
        "calibration": _calibration_section(meta),
        "spec_text": _spec_text(rd / "spec.toml"),
        "report_version": __version__,
    }
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reconsolidate.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["fmt"] = _fmt
    return env.get_template("report.html.j2").render(**ctx)


def _spec_text(path: Path) -> str:
    if not path.is_file():
        return ""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def write_report(run_dir: str | Path) -> Path:
    """Write ``RUN_DIR/report.html`` (atomically) and return its path.

    This is the hook ``reconsolidate trial`` can call at the end of a run.
    """
    text = build_report(run_dir)
    out = Path(run_dir) / "report.html"
    atomic_write_text(out, text)
    return out


def _escape(s: str) -> str:  # pragma: no cover - kept for templates that need it
    return html.escape(s)
