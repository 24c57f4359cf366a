"""Feed a trigger profile into the trial engine: targeted vs generic retrieval + ketamine.

For one participant, the profile becomes a cue environment for the simulator
(:class:`reconsolidate.population.cues.CueEnvironment`):

* **cue strengths**: the craving effect of cue ``c`` alone is ``100 (1 - b) CR_c`` in the
  simulator (``b`` the behaviour module's background craving, ``CR_c`` the population memory
  model's response; see ``behavior.daily.day_craving``), so ``CR_c = effect / (100 (1 - b))``,
  clipped to [0, 0.99]; the acquisition strength is the one whose fresh memory has that
  response (monotone, inverted by bisection on ``memory.population.response``);
* **exposure rates**: the share of diary days (weekdays and weekend days apart) on which the
  cue was met at least once, ``q``, gives the Poisson rate ``-ln(1 - q)`` per day, the form
  the behaviour module uses (``population.cues.exposure_probability``);
* cue classes the diary does not contain keep the simulator's defaults.

A virtual cohort of this person's twins (the cohort preset's between-patient variability
around the person's environment) is then run through :func:`reconsolidate.trial.run_trial`
in two arms with common random numbers, identical except for the cues the retrieval
reactivates: **targeted** (the profile's recommended retrieval cues) and **generic**
(default: the cue classes a glass of beer in the lab presents,
``population.cues.ALCOHOL_LAB_CUES``), each followed by ketamine; and, unless it equals the
targeted or the generic set, a third arm **combined** (personal triggers plus the generic
cues).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from reconsolidate.exceptions import InputError
from reconsolidate.triggers.diary import EMADiary
from reconsolidate.triggers.profile import TriggerProfiles

__all__ = ["DEFAULT_REGIMEN", "compare_retrieval", "profile_environment", "report_markdown"]

#: Ketamine regimen of both arms: the Das 2019 example regimen inline
#: (examples/regimens/das2019.toml; ASSUMPTION there: plasma TCI 350 ng/mL for 30 min,
#: dosing of Das 2019 Nat Commun 10:5187 not verified).
DEFAULT_REGIMEN: dict[str, Any] = {
    "name": "Das 2019 (assumed: plasma TCI 350 ng/mL for 30 min, UNCONFIRMED)",
    "description": "ASSUMPTION: plasma TCI 350 ng/mL for 30 min; target and device unconfirmed",
    "source": "Das 2019 Nat Commun 10:5187 (dosing details not verified)",
    "tci_update_interval_s": 10,
    "max_rate_mg_per_kg_per_min": 0.75,
    "tci": [{"start_min": 0, "duration_min": 30, "target": "plasma", "target_ng_ml": 350}],
}


def _acquisition_for_response(target: np.ndarray) -> np.ndarray:
    """Acquisition strengths whose fresh memory's response equals ``target`` (bisection), under
    the memory the trial engine runs (the shipped calibrated ``memory.*`` values: the response's
    threshold and noise are calibrated, and the simulated arms use them)."""
    from reconsolidate.calibration.defaults import calibrated_memory_params
    from reconsolidate.memory import population as mem

    mp = calibrated_memory_params()
    lo = np.zeros_like(target)
    hi = np.full_like(target, 0.99)
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        r = mem.response(mem.new_state(mid[None, :], mp), mp)[0]
        below = r < target
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def profile_environment(
    profiles: TriggerProfiles, diary: EMADiary, participant_id: str
) -> dict[str, dict[str, float]]:
    """The simulator cue environment (``CueEnvironment`` fields) of one participant."""
    from reconsolidate.calibration.defaults import calibrated_behavior_params
    from reconsolidate.population.cues import CUE_CLASSES

    sim_cues = [c for c in profiles.cues if c in CUE_CLASSES]
    if not sim_cues:
        raise InputError(
            "--simulate needs cue classes named as the simulator's (map tags with --mapping, "
            f"e.g. examples/ema/mapping.toml); valid: {', '.join(CUE_CLASSES)}"
        )
    i = profiles.index_of(participant_id)
    cols = [profiles.cues.index(c) for c in sim_cues]
    b = calibrated_behavior_params().background_craving
    cr = np.clip(profiles.craving_effect[i, cols] / (100.0 * (1.0 - b)), 0.0, 0.99)
    acq = _acquisition_for_response(cr)

    rows = diary.participant_index == i
    day = diary.calendar_day()[rows]  # the participant's own local calendar day
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday (Mon = 0)
    exposure = diary.exposure[rows][:, [diary.cues.index(c) for c in sim_cues]]
    rates: dict[str, dict[str, float]] = {"rate_weekday_per_day": {}, "rate_weekend_per_day": {}}
    for key, sel in (("rate_weekday_per_day", weekday < 5), ("rate_weekend_per_day", weekday >= 5)):
        days = np.unique(day[sel])
        if len(days) == 0:
            continue
        pos = np.searchsorted(days, day[sel])
        met = np.zeros((len(days), len(sim_cues)), dtype=bool)
        np.logical_or.at(met, pos, exposure[sel])
        q = np.clip(met.mean(axis=0), 0.0, 0.95)
        rates[key] = {c: float(-np.log1p(-q[j])) for j, c in enumerate(sim_cues)}
    return {
        "acquisition_strength": {c: float(acq[j]) for j, c in enumerate(sim_cues)},
        **rates,
    }


def compare_retrieval(
    profiles: TriggerProfiles,
    diary: EMADiary,
    participant_ids: list[str] | None = None,
    *,
    patients_per_arm: int = 200,
    follow_up_days: int = 90,
    cohort: str = "das2019",
    generic_cues: tuple[str, ...] | None = None,
    seed: int = 0,
    out_dir: str | Path | None = None,
    include_combined: bool = True,
) -> dict[str, Any]:
    """Simulate targeted vs generic retrieval + ketamine for each participant's twins.

    Parameters
    ----------
    profiles, diary
        Fitted profiles and the diary they came from.
    participant_ids
        Whom to simulate (default: everyone).
    patients_per_arm
        Virtual twins per arm.
    follow_up_days
        Days simulated after the session (day 0).
    cohort
        Cohort preset giving covariates and between-twin variability.
    generic_cues
        Cue classes of the generic retrieval (default ``ALCOHOL_LAB_CUES``).
    seed
        Trial seed (the same twins in both arms: common random numbers).
    out_dir
        If given, each participant's run directory is written to ``out_dir/<id>``.
    include_combined
        Also run a third arm retrieving the personal triggers *and* the generic cues
        (``"combined"``, with ``"difference_combined_minus_generic"``), unless that set equals
        the targeted or the generic one.

    Returns
    -------
    dict
        ``{"participants": {ID: {"targeted_cues", "generic_cues", "environment", "arms":
        {"targeted": summary, "generic": summary}, "difference_targeted_minus_generic":
        {...}}}, "cohort_difference_targeted_minus_generic": {endpoint: {"mean", "min",
        "max"}}, "settings": {...}}`` (the cohort summary weighs participants equally); a
        participant without recommended cues gets ``"skipped"`` with the reason.
    """
    from reconsolidate.population.cues import ALCOHOL_LAB_CUES, CUE_CLASSES
    from reconsolidate.trial import make_plan, run_trial
    from reconsolidate.trial.spec import TrialSpec

    if patients_per_arm < 1 or follow_up_days < 1:
        raise InputError("patients_per_arm and follow_up_days must be >= 1")
    generic = tuple(generic_cues or ALCOHOL_LAB_CUES)
    for c in generic:
        if c not in CUE_CLASSES:
            raise InputError(f"generic cue {c!r} unknown; valid: {', '.join(CUE_CLASSES)}")
    ids = [str(p) for p in (participant_ids or list(profiles.participant_ids))]
    results: dict[str, Any] = {}
    for pid in ids:
        i = profiles.index_of(pid)
        targeted = [profiles.cues[j] for j in profiles.rank[i] if profiles.recommended[i, j]]
        targeted = [c for c in targeted if c in CUE_CLASSES]
        env = profile_environment(profiles, diary, pid)
        combined = targeted + [c for c in generic if c not in targeted]
        with_combined = include_combined and set(combined) not in (set(targeted), set(generic))
        if not targeted:
            results[pid] = {
                "skipped": "no recommended personal trigger among the simulator's cue classes",
                "environment": env,
            }
            continue

        def session(cues: list[str]) -> dict[str, Any]:
            return {
                "day": 0,
                "retrieval": "alcohol_prediction_error",
                "retrieval_cues": cues,
                "drug": "ketamine",
                "regimen": DEFAULT_REGIMEN,
                "delay_min": 0.0,
            }

        spec = TrialSpec.model_validate(
            {
                "name": "triggers-targeting",
                "description": f"targeted vs generic retrieval + ketamine, twins of {pid}",
                "seed": seed,
                "patients_per_arm": patients_per_arm,
                "follow_up_days": follow_up_days,
                "cohort": {"preset": cohort},
                "cues": env,
                "protocols": {
                    "TARGETED": {"sessions": [session(targeted)]},
                    "GENERIC": {"sessions": [session(list(generic))]},
                    **({"COMBINED": {"sessions": [session(combined)]}} if with_combined else {}),
                },
                "arms": [
                    {"name": "targeted", "protocol": "TARGETED"},
                    {"name": "generic", "protocol": "GENERIC"},
                    *([{"name": "combined", "protocol": "COMBINED"}] if with_combined else []),
                ],
            }
        )
        run_dir = None if out_dir is None else Path(out_dir) / _safe(pid)
        res = run_trial(make_plan(spec), out_dir=run_dir, write_drinking=run_dir is not None)
        t, g = res.summary["targeted"], res.summary["generic"]
        results[pid] = {
            "targeted_cues": targeted,
            "generic_cues": list(generic),
            "environment": env,
            "arms": {"targeted": t, "generic": g},
            "difference_targeted_minus_generic": _difference(t, g),
        }
        if with_combined:
            cmb = res.summary["combined"]
            results[pid]["combined_cues"] = combined
            results[pid]["arms"]["combined"] = cmb
            results[pid]["difference_combined_minus_generic"] = _difference(cmb, g)
    simulated = [r for r in results.values() if "skipped" not in r]
    cohort_summary: dict[str, Any] = {"n_participants": len(simulated)}
    if simulated:
        for key in simulated[0]["difference_targeted_minus_generic"]:
            vals = [
                r["difference_targeted_minus_generic"][key]
                for r in simulated
                if r["difference_targeted_minus_generic"][key] is not None
            ]
            cohort_summary[key] = (
                {"mean": float(np.mean(vals)), "min": float(np.min(vals)),
                 "max": float(np.max(vals))}
                if vals
                else None
            )
    return {
        "participants": results,
        "cohort_difference_targeted_minus_generic": cohort_summary,
        "settings": {
            "patients_per_arm": patients_per_arm,
            "follow_up_days": follow_up_days,
            "cohort": cohort,
            "seed": seed,
            "retrieval": "alcohol_prediction_error then ketamine (Das 2019 regimen, assumed)",
        },
    }


def _difference(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float | None]:
    return {
        k: (None if a.get(k) is None or b.get(k) is None else float(a[k] - b[k]))
        for k in (
            "percent_days_abstinent",
            "percent_heavy_drinking_days",
            "drinks_per_week_change_pct",
            "true_percent_days_abstinent",
            "true_drinks_per_week_change_pct",
        )
    }


def _safe(pid: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in pid) or "_"


def report_markdown(comparison: dict[str, Any]) -> str:
    """A short human-readable report of :func:`compare_retrieval`'s result (Markdown)."""
    st = comparison["settings"]
    lines = [
        "# Targeted vs generic retrieval + ketamine (simulated)",
        "",
        f"Virtual twins per arm: {st['patients_per_arm']}; follow-up {st['follow_up_days']} days "
        f"after the session; cohort preset {st['cohort']}; seed {st['seed']}.",
        f"Session: {st['retrieval']}. Both arms share the same twins (common random numbers) "
        "and differ only in the cue classes the retrieval reactivates.",
        "",
        "Cue strengths and exposure rates come from each participant's trigger profile "
        "(docs/triggers.md); everything downstream is the simulator's model with its "
        "documented assumptions. These are model predictions, not clinical evidence.",
        "",
    ]
    keys = [
        ("percent_days_abstinent", "% days abstinent"),
        ("percent_heavy_drinking_days", "% heavy drinking days"),
        ("drinks_per_week_change_pct", "drinks/week change from baseline, %"),
    ]
    coh = comparison.get("cohort_difference_targeted_minus_generic", {})
    if coh.get("n_participants"):
        lines += [
            f"## Cohort ({coh['n_participants']} participants, equally weighted)",
            "",
            "| endpoint | mean difference (targeted - generic) | min | max |",
            "|---|---|---|---|",
        ]
        for k, label in keys:
            v = coh.get(k)
            if v:
                lines.append(f"| {label} | {v['mean']:.2f} | {v['min']:.2f} | {v['max']:.2f} |")
        lines.append("")
    for pid, r in comparison["participants"].items():
        lines.append(f"## {pid}")
        if "skipped" in r:
            lines += [f"Skipped: {r['skipped']}.", ""]
            continue
        lines += [
            f"Targeted cues: {', '.join(r['targeted_cues'])}; generic cues: "
            f"{', '.join(r['generic_cues'])}.",
            "",
            "| endpoint | targeted | generic | targeted - generic | combined - generic |",
            "|---|---|---|---|---|",
        ]
        fmt = lambda v: "n/a" if v is None else f"{v:.1f}"  # noqa: E731
        for k, label in keys:
            t, g = r["arms"]["targeted"].get(k), r["arms"]["generic"].get(k)
            d = r["difference_targeted_minus_generic"].get(k)
            dc = r.get("difference_combined_minus_generic", {}).get(k)
            lines.append(f"| {label} | {fmt(t)} | {fmt(g)} | {fmt(d)} | {fmt(dc)} |")
        if "combined_cues" in r:
            lines.append(f"\nCombined cues: {', '.join(r['combined_cues'])}.")
        lines.append("")
    return "\n".join(lines)
