"""``reconsolidate analyze``: drinking endpoints and arm comparisons (diary or simulated run)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from reconsolidate._io import to_jsonable
from reconsolidate.exceptions import InputError

__all__ = ["analyze", "register", "run_analysis"]


def _parse_range(text: str, what: str) -> tuple[int, int]:
    try:
        a, b = text.split(":")
        lo, hi = int(a), int(b)
    except ValueError:
        raise InputError(
            f"--{what} {text!r}: expected START:END (inclusive study days, e.g. 1:21 or -28:-1)"
        ) from None
    if hi < lo:
        raise InputError(f"--{what} {text!r}: END is before START")
    return lo, hi


def _parse_missing(text: str) -> str | float:
    """``--missing``: heavy, abstinent, exclude, or a number of US standard drinks (>= 0)."""
    if text in ("heavy", "abstinent", "exclude"):
        return text
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not (np.isfinite(value) and value >= 0):
        raise InputError(
            f"--missing {text!r}: allowed heavy, abstinent, exclude or a finite number "
            "of US standard drinks >= 0"
        )
    return value


#: ``DiaryOptions`` fields set from ``analyze`` flags, for messages naming the flag.
_OPTION_FLAGS = {
    "units": "--units",
    "imputation": "--imputation",
    "imputation_value_drinks": "--imputation-value",
    "duplicates": "--duplicates",
    "date_format": "--date-format",
    "study_window_days": "--study-window",
    "max_problems": "--max-problems",
    "etg_cutoff_ng_ml": "--etg-cutoff-ng-ml",
    "absent_days": "--absent-days",
}


def _check_options(opts: dict[str, Any]) -> None:
    """Validate the import options up front so that a bad one is named by its flag."""
    from pydantic import ValidationError

    from reconsolidate.data import DiaryOptions

    try:
        DiaryOptions.model_validate(opts)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = err.get("loc", ())
        flag = _OPTION_FLAGS.get(str(loc[0])) if loc else None
        if flag is None:  # not a flag of analyze (the Python API's own message applies)
            return
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        raise InputError(f"{flag} {err.get('input')!r}: {msg}") from None


def _check_flags(
    given: dict[str, Any], n_days: int, window: tuple[int, int], k: int
) -> None:
    """Refuse flag values out of range with the flag's name (``compute_endpoints`` would name
    its own parameter, e.g. ``grace_days``, which the user did not type).

    ``given`` holds only the flags the user typed; ``n_days`` is the window length and
    ``window`` its (first, last) study day; ``k`` is K of "abstinent in the last K days", days.
    """
    span = f"the {n_days}-day window {window[0]}:{window[1]}"
    g = given.get("grace_days")
    if g is not None and not 0 <= g < n_days:
        raise InputError(f"--grace-days {g}: must be an integer in [0, {n_days - 1}] days "
                         f"(shorter than {span})")
    kk = given.get("abstinent_last_days")
    if kk is not None and kk < 1:
        raise InputError(f"--abstinent-last-days {kk}: must be an integer >= 1 (days)")
    m = given.get("abstinent_last_min_days")
    k_eff = min(k, n_days)
    if m is not None and not 1 <= m <= k_eff:
        raise InputError(
            f"--abstinent-last-min-days {m}: must be an integer in [1, {k_eff}] days "
            f"(K = {k} days of --abstinent-last-days, clipped to {span})")


def _run_settings(run_dir: Path) -> tuple[dict[str, Any] | None, str]:
    """The ``[analysis]`` settings a trial run was scored with, and where they were found.

    ``metadata.json``'s resolved spec first (what the trial used, defaults filled in); else
    ``spec.toml`` when it is a trial spec (it has the required ``follow_up_days``), whose
    absent keys take :class:`~reconsolidate.trial.spec.AnalysisSpec`'s defaults as in the
    trial; else None (not written by ``reconsolidate trial``: the diary defaults apply).
    """
    import tomllib

    from reconsolidate.data import read_run_metadata
    from reconsolidate.trial.spec import AnalysisSpec

    meta = read_run_metadata(run_dir)
    if meta is not None:
        spec = (meta.get("resolved_parameters") or {}).get("spec") or {}
        if "analysis" in spec:
            return AnalysisSpec.model_validate(spec["analysis"]).model_dump(), (
                "metadata.json (resolved spec [analysis])")
    sp = run_dir / "spec.toml"
    if sp.is_file():
        try:
            spec = tomllib.loads(sp.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{sp}: not valid TOML: {exc}") from None
        if "follow_up_days" in spec:
            try:
                an = AnalysisSpec.model_validate(spec.get("analysis", {}))
            except ValueError as exc:  # pydantic's ValidationError: name the first bad field
                err = exc.errors()[0] if hasattr(exc, "errors") else {"loc": (), "msg": str(exc)}
                field = ".".join(str(x) for x in err["loc"])
                raise InputError(
                    f"{sp}: [analysis] {field} = {err.get('input')!r}: {err['msg']}") from None
            return an.model_dump(), f"{sp.name} [analysis]"
    return None, "analyze defaults (no trial spec in the run directory)"


def _check_window(window: str, lo: int, hi: int, first_day: int, last_day: int,
                  flag: str = "window") -> None:
    """Refuse a window (``--window`` or ``--baseline``) reaching past the diary's own first and
    last study days: the days it does not hold would be scored as missing days (heavy drinking
    days under ``--missing heavy``) or make an empty baseline."""
    if hi > last_day:
        raise InputError(
            f"--{flag} {window!r}: END {hi} is after the diary's last day {last_day}; "
            f"allowed START:END within {first_day}:{last_day}"
        )
    if lo < first_day:
        raise InputError(
            f"--{flag} {window!r}: START {lo} is before the diary's first day {first_day}; "
            f"allowed START:END within {first_day}:{last_day}"
        )


def _default_window(source: Path, first_day: int, last_day: int) -> tuple[int, int]:
    """Day 0 (randomisation, or the first treatment session of a run) to the diary's last day;
    from the diary's first day instead when it starts later (e.g. a diary from day 1 on)."""
    w0 = max(0, first_day)
    if last_day < w0:
        raise InputError(
            f"{source}: no diary day on or after study day 0 (the diary holds days "
            f"{first_day}..{last_day}); give --window START:END within {first_day}:{last_day}"
        )
    return w0, last_day


def run_analysis(
    source: Path,
    *,
    participants: Path | None = None,
    biomarkers: Path | None = None,
    window: str | None = None,
    baseline: str | None = None,
    missing: str | None = None,
    responders_only: bool = False,
    heavy_drinks: str | None = None,
    grace_days: int | None = None,
    abstinent_last_days: int | None = None,
    abstinent_last_min_days: int | None = None,
    reference: str | None = None,
    gee: str = "exchangeable",
    options: dict | None = None,
    salt: str | None = None,
    pseudonymise: bool = True,
    shift_dates_days: int | None = None,
    replicate: int | None = None,
) -> tuple[dict, dict]:
    """Score a diary (with a participants file) or a run directory; returns (result, tables).

    ``result`` is the JSON-ready dict (``arms``, ``comparisons``, settings and provenance);
    ``tables`` holds the per-participant endpoints and the long diary (pseudonymised unless
    ``pseudonymise=False``) as column dicts for writing.

    Settings left None take, for a run directory, the run's own ``[analysis]`` values
    (:func:`_run_settings`: ``missing_days``, ``heavy_drinks_men``/``_women`` in US standard
    drinks, ``grace_days`` and ``abstinent_last_days`` in days, ``baseline_window_days``) and
    the reference arm that ``report.html`` compares against, so that ``analyze RUN_DIR`` of a
    run with one replicate reproduces the trial's summary (with several replicates the trial's
    summary pools them, while one replicate is scored here, chosen by ``replicate``); for a
    diary (or a run without a trial spec): missing days heavy, 5:4 drinks, 0 grace days,
    K = 28 days, baseline every diary day before day 0 (before the window if it starts
    earlier). The reference arm defaults to the first control-named arm
    (:func:`reconsolidate.report.build.reference_arm`: in the run's arm
    order, or for a diary in sort order), else the first in sort order. The window defaults to
    day 0 (or the diary's first day, if later) to the diary's last day; a given ``window`` or
    ``baseline`` must lie within the diary's days. Given values always win; the ones out of
    range are refused naming their flag.
    ``abstinent_last_min_days`` (fewest counted days in the last K for a participant to be
    classified on "abstinent in the last K days") takes the run's ``[analysis]
    abstinent_last_min_days`` and otherwise defaults to half of K rounded up for both
    (:data:`~reconsolidate.endpoints.ABSTINENT_LAST_MIN_FRACTION`, the trial's default too).
    """
    from reconsolidate.data import load_run_dir, load_trial_data
    from reconsolidate.endpoints import (
        MissingDataHandling,
        abstinence_matrix,
        compare_arms,
        compute_endpoints,
        summarize_arms,
    )

    # the values the user typed, checked against their flags' ranges below
    given = {"grace_days": grace_days, "abstinent_last_days": abstinent_last_days,
             "abstinent_last_min_days": abstinent_last_min_days}
    heavy_given = heavy_drinks is not None
    given_baseline = baseline is not None
    run_an: dict[str, Any] | None = None
    settings_from = "analyze defaults (diary)"
    if source.is_dir():
        run_an, settings_from = _run_settings(source)
    if run_an is not None:
        # the run's own scoring, as engine._outcomes applied it: `trial` and `analyze RUN_DIR`
        # must not disagree silently
        if missing is None:
            missing = run_an["missing_days"]
        if heavy_drinks is None:
            heavy_drinks = f"{run_an['heavy_drinks_men']}:{run_an['heavy_drinks_women']}"
        if abstinent_last_days is None:
            abstinent_last_days = run_an["abstinent_last_days"]
        if abstinent_last_min_days is None:
            # the run's [analysis] value (None: the default, as the trial scored it)
            abstinent_last_min_days = run_an.get("abstinent_last_min_days")
        if reference is None:
            reference = run_an.get("reference_arm")  # the run's [analysis], as report.html
        if baseline is None and run_an["baseline_window_days"] is not None:
            baseline = "{}:{}".format(*run_an["baseline_window_days"])
    missing = "heavy" if missing is None else missing
    heavy_drinks = "5:4" if heavy_drinks is None else heavy_drinks
    abstinent_last_days = 28 if abstinent_last_days is None else abstinent_last_days
    try:
        men_s, women_s = heavy_drinks.split(":")
        men, women = float(men_s), float(women_s)
    except ValueError:
        raise InputError(
            f"--heavy-drinks {heavy_drinks!r}: expected MEN:WOMEN drinks, e.g. 5:4"
        ) from None
    if heavy_given and not all(np.isfinite(v) and v > 0 for v in (men, women)):
        raise InputError(
            f"--heavy-drinks {heavy_drinks!r}: MEN and WOMEN must be finite numbers of US "
            "standard drinks > 0, e.g. 5:4"
        )
    handling = MissingDataHandling(
        "responders_only" if responders_only else "itt", _parse_missing(missing)
    )
    opts = dict(options or {})
    if men == women:
        opts.setdefault("require_sex", False)
    _check_options(opts)
    run_meta: dict | None = None
    if source.is_dir():
        if participants is not None:
            raise InputError(f"{source} is a run directory; --participants is not used with it")
        data, run_meta = load_run_dir(
            source, options=opts, salt=salt, replicate=replicate, biomarkers=biomarkers
        )
    else:
        if participants is None:
            raise InputError(
                f"{source}: a diary needs --participants PARTICIPANTS.csv (or pass a run directory)"
            )
        data = load_trial_data(source, participants, biomarkers, options=opts, salt=salt)
    if window is None:
        w0, w1 = _default_window(source, data.first_study_day, data.last_study_day)
    else:
        w0, w1 = _parse_range(window, "window")
        _check_window(window, w0, w1, data.first_study_day, data.last_study_day)
    _check_flags(given, w1 - w0 + 1, (w0, w1), abstinent_last_days)
    if grace_days is None:
        grace_days = 0
        if run_an is not None:
            # the engine caps the run's grace period below the window length the same way
            grace_days = min(run_an["grace_days"], w1 - w0)
    if baseline is None:
        base, base_src = data.baseline_drinks_per_week(None, min(-1, w0 - 1))
    else:
        b0, b1 = _parse_range(baseline, "baseline")
        if given_baseline:
            # a typed baseline past the diary would silently average fewer (or no) days
            _check_window(baseline, b0, b1, data.first_study_day, data.last_study_day,
                          "baseline")
        base, base_src = data.baseline_drinks_per_week(b0, b1)
    drinks = data.window(w0, w1)
    no_row = data.days_without_row(w0, w1)
    notes = _no_row_notes(no_row, w1 - w0 + 1, handling, opts.get("absent_days", "missing"))
    ep = compute_endpoints(
        drinks,
        data.is_female,
        handling=handling,
        heavy_drinks_men=men,
        heavy_drinks_women=women,
        grace_days=grace_days,
        abstinent_last_days=abstinent_last_days,
        abstinent_last_min_days=abstinent_last_min_days,
        baseline_drinks_per_week=base,
        sex_known=data.sex_known,
    )
    arms = summarize_arms(ep, data.arm)
    abst = None
    if gee != "none":
        if gee not in ("exchangeable", "ar1"):
            raise InputError(f"--gee {gee!r}: allowed exchangeable, ar1, none")
        abst = abstinence_matrix(
            drinks, data.is_female, handling, heavy_drinks_men=men, heavy_drinks_women=women
        )
    if reference is None and arms:
        from reconsolidate.report.build import reference_arm

        # report.html's choice: the first placebo/control-named arm (pbo, placebo, saline,
        # midazolam, control, sham) in the run's arm order, or for a diary in sort order; else
        # the first in sort order. Alphabetical order alone made the active drug the reference
        # ("midazolam vs ketamine")
        names = sorted(arms)
        factorial = None
        if run_meta is not None:
            names = [a for a in run_meta.get("arms", {}) if a in arms] or names
            factorial = (run_meta.get("resolved_parameters", {}).get("spec", {})
                         .get("factorial"))
        reference = reference_arm(names, factorial)
    comps = (
        compare_arms(
            ep,
            data.arm,
            reference=reference,
            abstinent_days=abst,
            gee_cov_struct=gee if gee != "none" else "exchangeable",
        )
        if len(arms) > 1
        else []
    )
    ref = reference if reference is not None else (sorted(arms)[0] if arms else None)
    result = {
        "arms": arms,
        "comparisons": comps,
        "kaplan_meier": _km_curves(ep, data.arm),
        "reference_arm": ref,
        "window": {
            "first_study_day": w0,
            "last_study_day": w1,
            "n_days": w1 - w0 + 1,
            "participant_days_without_row": int(no_row.sum()),
            "days": "inclusive study days; day 0 = randomisation (diaries) or first "
            "treatment session (simulated runs)",
        },
        "baseline": {"source": base_src},
        "missing_data": handling.label,
        "settings": ep.settings,
        "settings_defaults_from": settings_from,
        "units": "US standard drinks (14 g ethanol); percentages in %; times in days",
        "provenance": data.provenance,
        "notes": notes,
    }
    if run_meta is not None:
        result["run_metadata"] = {
            k: run_meta[k] for k in ("version", "git_commit", "seed") if k in run_meta
        }
        result["run_metadata"]["replicate"] = data.provenance.get("replicate")
    ids = data.pseudonyms if pseudonymise else data.participant_ids
    per = {
        "participant": ids.astype(str),
        "arm": data.arm.astype(str),
        "sex": np.where(data.sex_known, np.where(data.is_female, "F", "M"), ""),
    }
    for k, v in ep.arrays().items():
        per[k] = v
    per["n_days_without_row"] = no_row
    km_rows: dict[str, list] = {k: [] for k in ("endpoint", "arm", "time_days", "survival",
                                                "n_at_risk", "n_events")}
    for endpoint, arms_km in result["kaplan_meier"].items():
        for arm_name, c in arms_km.items():
            for i in range(len(c["time_days"])):
                km_rows["endpoint"].append(endpoint)
                km_rows["arm"].append(arm_name)
                for key in ("time_days", "survival", "n_at_risk", "n_events"):
                    km_rows[key].append(c[key][i])
    tables = {
        "kaplan_meier": {k: np.asarray(v) for k, v in km_rows.items()},
        "participants_endpoints": per,
        "diary_days": data.to_long_table(
            pseudonymise=pseudonymise, shift_dates_days=shift_dates_days
        ),
    }
    return to_jsonable(result), tables


def _no_row_notes(no_row: np.ndarray, n_days: int, handling: Any, absent_days: str
                  ) -> list[str]:
    """Say how many window days have no diary row and what they were scored as: they are
    missing days, which a diary listing drinking days only, or a participant whose diary
    starts later or ends earlier than the others', makes silently."""
    total = int(no_row.sum())
    if total == 0:
        return []
    m = handling.missing_days
    if handling.population == "responders_only":
        how = "their participants are left out (responders only)"
    elif m == "heavy":
        how = "scored as heavy drinking days (--missing heavy)"
    elif m == "exclude":
        how = "left out of every denominator (--missing exclude)"
    else:
        how = f"counted as {0.0 if m == 'abstinent' else float(m):g} drinks (--missing {m})"
    share = total / (no_row.size * n_days)
    text = (f"{total} of {no_row.size * n_days} participant-days of the window ({share:.0%}), "
            f"of {int((no_row > 0).sum())} participant(s), have no diary row: they are missing "
            f"days, {how}; per participant in n_days_without_row")
    if absent_days == "missing":
        text += ("; a diary that lists drinking days only needs --absent-days abstinent (a day "
                 "without a row between a participant's first and last rows = 0 drinks)")
    return [text]


def _km_curves(ep: Any, arm: np.ndarray) -> dict:
    """Kaplan-Meier step curves per arm for time to first heavy day and to first drink."""
    from reconsolidate.endpoints import kaplan_meier

    out: dict = {}
    for endpoint, t, e in (
        ("time_to_first_heavy_day", ep.days_to_first_heavy_day, ep.first_heavy_day_observed),
        ("time_to_first_drink", ep.days_to_first_drink, ep.first_drink_observed),
    ):
        out[endpoint] = {}
        for a in sorted(np.unique(arm).tolist()):
            m = arm == a
            km = kaplan_meier(t[m], e[m])
            out[endpoint][a] = {
                "time_days": km.time_days.tolist(),
                "survival": km.survival.tolist(),
                "n_at_risk": km.n_at_risk.tolist(),
                "n_events": km.n_events.tolist(),
                "median_days": km.median_days,
            }
    return out


def _write_tables(out: Path, result: dict, tables: dict) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from reconsolidate._io import atomic_dir

    with atomic_dir(out, kind="analysis") as tmp:
        for name, cols in tables.items():
            arrays = {
                k: np.asarray(v)
                if not isinstance(v, np.ndarray) or v.dtype != object
                else np.asarray(v, dtype=str)
                for k, v in cols.items()
            }
            pq.write_table(pa.table(arrays), tmp / f"{name}.parquet")
            buf = io.BytesIO()
            # NaN as an empty cell (pyarrow writes "nan", which no CSV reader, analyze's own
            # included, takes for a missing value)
            pacsv.write_csv(pa.table({k: pa.array(a, from_pandas=True)
                                      for k, a in arrays.items()}), buf)
            (tmp / f"{name}.csv").write_bytes(buf.getvalue())
        rows = [
            {"arm": a, **{k: v for k, v in s.items() if not isinstance(v, dict)}}
            for a, s in result["arms"].items()
        ]
        if rows:
            pq.write_table(pa.Table.from_pylist(rows), tmp / "arm_summary.parquet")
        (tmp / "analysis.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def _fmt(v: Any, nd: int = 1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _share(s: dict, name: str) -> str:
    """``percent (events/denominator)`` of a binary endpoint, e.g. ``40.0 (4/10)``."""
    pct, k, n = s["percent_" + name], s["events_" + name], s["n_" + name]
    return f"{_fmt(pct)} ({k}/{n})"


def _baseline_levels(s: dict) -> str:
    """The baseline WHO risk-level distribution, ``low/medium/high/very high`` in %: the
    ceiling of the two WHO-reduction rows above it."""
    if not s["n_baseline_who_risk_level"]:
        return "-"
    return "/".join(_fmt(v, 0) for v in s["baseline_who_risk_level_percent"].values())


def _print_rich(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    w = result["window"]
    st = result["settings"]
    t = Table(
        title=f"Drinking endpoints, study days {w['first_study_day']}..{w['last_study_day']}"
        f" ({result['missing_data']})"
    )
    k, k_min = st["abstinent_last_days"], st["abstinent_last_min_days"]
    rows = [
        ("n (scored)", lambda s: f"{s['n']} ({s['n_scored']})"),
        ("PDA, %", lambda s: _fmt(s["percent_days_abstinent"])),
        ("PHDD, %", lambda s: _fmt(s["percent_heavy_drinking_days"])),
        ("drinks / drinking day", lambda s: _fmt(s["drinks_per_drinking_day"], 2)),
        ("drinks / week", lambda s: _fmt(s["drinks_per_week"], 1)),
        ("change drinks / week", lambda s: _fmt(s["change_drinks_per_week"], 1)),
        ("no heavy days (PSNHDD), % (k/n)", lambda s: _share(s, "no_heavy_drinking_days")),
        (f"abstinent last {k} days, % (k/n)", lambda s: _share(s, "abstinent_last_days")),
        (f"  not assessable (< {k_min} of {k} days counted)",
         lambda s: str(s["not_assessable_abstinent_last_days"])),
        ("WHO >=1-level reduction, % (k/n)", lambda s: _share(s, "who_reduction_1_level")),
        ("WHO >=2-level reduction, % (k/n)", lambda s: _share(s, "who_reduction_2_levels")),
        ("  baseline WHO level L/M/H/VH, %", _baseline_levels),
        (
            "median days to 1st heavy day",
            lambda s: (
                _fmt(s["median_days_to_first_heavy_day"], 0)
                if s["median_days_to_first_heavy_day"] is not None
                else "not reached"
            ),
        ),
    ]
    t.add_column("endpoint")
    for arm in result["arms"]:
        t.add_column(arm, justify="right")
    for label, f in rows:
        t.add_row(label, *[f(s) for s in result["arms"].values()])
    console.print(t)
    for line in result.get("notes", []):
        console.print(f"note: {line}", highlight=False, markup=False, soft_wrap=True)
    if result["comparisons"]:
        arms = sorted({r["arm"] for r in result["comparisons"]})
        many = len(arms) > 1
        title = f"{', '.join(arms)} vs {result['reference_arm']}: estimate (95% CI)"
        c = Table(title=title)
        c.add_column("endpoint (measure)")
        if many:
            c.add_column("arm")
        for col in ("estimate (95% CI)", "p", "g"):
            c.add_column(col, justify="right")
        short = {"mean_difference": "diff", "risk_difference": "diff, pp",
                 "hazard_ratio": "HR", "odds_ratio": "OR"}
        notes: list[str] = []
        for r in result["comparisons"]:
            est = {"mean_difference": "difference", "risk_difference": "difference",
                   "hazard_ratio": "hazard_ratio", "odds_ratio": "odds_ratio"}[r["kind"]]
            name = f"{r['endpoint']} ({short[r['kind']]})"
            if r.get(est) is None and r.get("note"):
                # not estimable (or skipped): say so and why, never a bare "-"
                where = f"{name}, {r['arm']}" if many else name
                notes.append(f"[{len(notes) + 1}] {where}: {r['note']}")
                cell = f"{r['note'].split(':')[0]} [{len(notes)}]"
            else:
                cell = (f"{_fmt(r.get(est), 2)} ({_fmt(r.get('ci_low'), 2)} to "
                        f"{_fmt(r.get('ci_high'), 2)})")
            row = [name] + ([r["arm"]] if many else [])
            c.add_row(*row, cell, _fmt(r.get("p_value"), 3), _fmt(r.get("hedges_g"), 2))
        console.print(c)
        for line in notes:
            console.print(line, highlight=False, markup=False, soft_wrap=True)


def analyze(
    source: Annotated[Path, typer.Argument(help="DIARY.csv/.parquet, or a simulated RUN_DIR.")],
    participants: Annotated[
        Path | None,
        typer.Option(
            "--participants",
            "-p",
            help="Participants table (id, sex, arm, randomization_date, ...).",
        ),
    ] = None,
    biomarkers: Annotated[
        Path | None, typer.Option("--biomarkers", help="Biomarker rows (id, date, etg_positive).")
    ] = None,
    window: Annotated[
        str | None,
        typer.Option(
            "--window",
            help="Analysis window START:END, inclusive study days within the diary's days "
            "(default: day 0, or the diary's first day if later, to its last day). Use "
            "--window=-28:-1 for negative days.",
        ),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            help="Baseline window START:END, inclusive study days within the diary's days "
            "(default: a run's baseline_window_days, else every diary day before day 0, or "
            "before the window if it starts earlier).",
        ),
    ] = None,
    missing: Annotated[
        str | None,
        typer.Option(
            "--missing",
            help="ITT handling of missing days: heavy, abstinent, exclude, or a number of drinks "
            "(default: a run's missing_days, else heavy).",
        ),
    ] = None,
    responders_only: Annotated[
        bool,
        typer.Option("--responders-only", help="Score only participants with a complete window."),
    ] = False,
    heavy_drinks: Annotated[
        str | None,
        typer.Option(
            "--heavy-drinks",
            help="Heavy-day thresholds MEN:WOMEN, US standard drinks (default: a run's "
            "heavy_drinks_men/_women, else 5:4).",
        ),
    ] = None,
    grace_days: Annotated[
        int | None,
        typer.Option(
            "--grace-days", help="PSNHDD grace period, days (default: a run's grace_days, else 0)."
        ),
    ] = None,
    abstinent_last_days: Annotated[
        int | None,
        typer.Option(
            "--abstinent-last-days",
            help="K for 'abstinent in the last K days', days (default: a run's "
            "abstinent_last_days, else 28).",
        ),
    ] = None,
    abstinent_last_min_days: Annotated[
        int | None,
        typer.Option(
            "--abstinent-last-min-days",
            help="Fewest counted days in the last K for a participant to be classified on "
            "'abstinent in the last K days'; below it: not assessable, left out of the "
            "denominator (default: half of K, rounded up).",
        ),
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            "--reference",
            help="Control arm (default: the first arm named as a control (pbo, placebo, "
            "saline, midazolam, control, sham), as in report.html; else the first in sort "
            "order).",
        ),
    ] = None,
    gee: Annotated[
        str, typer.Option("--gee", help="GEE working correlation: exchangeable, ar1, none.")
    ] = "exchangeable",
    units: Annotated[
        str, typer.Option("--units", help="Diary amounts: us_standard_drinks, uk_units, grams.")
    ] = "us_standard_drinks",
    imputation: Annotated[
        str,
        typer.Option("--imputation", help="none, fixed, neighbour_mean, linear (interior gaps)."),
    ] = "none",
    imputation_value: Annotated[
        float, typer.Option("--imputation-value", help="Drinks for --imputation fixed.")
    ] = 0.0,
    duplicates: Annotated[
        str, typer.Option("--duplicates", help="error, max, min, mean.")
    ] = "error",
    date_format: Annotated[
        str,
        typer.Option(
            "--date-format",
            help="auto (ISO, else MM/DD/YYYY; ambiguous DD/MM dates are refused), iso, or a "
            "strptime format such as %d/%m/%Y.",
        ),
    ] = "auto",
    study_window: Annotated[
        str | None,
        typer.Option("--study-window", help="Allowed study days A:B (default -365:1095)."),
    ] = None,
    max_problems: Annotated[
        int, typer.Option("--max-problems", help="Input problems listed before stopping.")
    ] = 50,
    etg_cutoff: Annotated[
        float | None,
        typer.Option("--etg-cutoff-ng-ml", help="Cutoff for numeric etg_ng_ml biomarkers."),
    ] = None,
    absent_days: Annotated[
        str,
        typer.Option(
            "--absent-days",
            help="A day without a diary row: missing (a missing day, scored by --missing) or "
            "abstinent (0 drinks between the participant's own first and last rows: for "
            "exports that list drinking days only).",
        ),
    ] = "missing",
    salt: Annotated[
        str | None,
        typer.Option(
            "--salt",
            envvar="RECONSOLIDATE_SALT",
            help="Pseudonymisation key (default: random per run).",
        ),
    ] = None,
    shift_dates: Annotated[
        int | None,
        typer.Option(
            "--shift-dates",
            help="Add per-participant shifted calendar dates (up to +/- DAYS) to diary_days.",
        ),
    ] = None,
    replicate: Annotated[
        int | None,
        typer.Option("--replicate", help="Run directories with several replicates: which one."),
    ] = None,
    original_ids: Annotated[
        bool, typer.Option("--original-ids", help="Write original ids instead of pseudonyms.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write tables + analysis.json here.")
    ] = None,
    json_out: Annotated[
        str | None, typer.Option("--json", help="'-' for stdout, or a file.")
    ] = None,
) -> None:
    """Per-arm drinking endpoints and between-arm comparisons (same code for real and simulated)."""
    if json_out not in (None, "-"):
        from reconsolidate._io import check_output_file

        check_output_file(json_out, "--json")  # before the work: a typo creates nothing
    opts = {
        "units": units,
        "imputation": imputation,
        "imputation_value_drinks": imputation_value,
        "duplicates": duplicates,
        "date_format": date_format,
        "absent_days": absent_days,
    }
    if etg_cutoff is not None:
        opts["etg_cutoff_ng_ml"] = etg_cutoff
    opts["max_problems"] = max_problems
    if study_window is not None:
        opts["study_window_days"] = _parse_range(study_window, "study-window")
    result, tables = run_analysis(
        source,
        participants=participants,
        biomarkers=biomarkers,
        window=window,
        baseline=baseline,
        missing=missing,
        responders_only=responders_only,
        heavy_drinks=heavy_drinks,
        grace_days=grace_days,
        abstinent_last_days=abstinent_last_days,
        abstinent_last_min_days=abstinent_last_min_days,
        reference=reference,
        gee=gee,
        options=opts,
        salt=salt,
        pseudonymise=not original_ids,
        shift_dates_days=shift_dates,
        replicate=replicate,
    )
    if out is not None:
        _write_tables(out, result, tables)
    if json_out == "-":
        typer.echo(json.dumps(result))
    else:
        if json_out is not None:
            from reconsolidate._io import atomic_write_json

            atomic_write_json(json_out, result)
        _print_rich(result)


def register(app: typer.Typer) -> None:
    """Add ``analyze`` to the command line."""
    app.command("analyze")(analyze)
