"""Untreated drinking by usual drinking frequency: does a patient's usual drinking stay put?

A year of daily life without any intervention for the COMBINE-like cohort (light to daily
drinkers; ``--cohort`` another preset), not seeking treatment and not recruited by screening,
with the shipped calibrated parameters: for each band of usual drinking days per week (the
cohort covariate), the mean drinking days per week in months 10-12 (true drinking), the mean
|deviation| from the usual frequency (percentage points of days, as the calibration's stability
targets score it), and both tails: the share of patients near abstinence (< 0.5 drinking days
per week) and the share drinking on 1.5 or more days a week above their usual. Without treatment
every band should stay near its usual frequency; a band's mean can hold while its patients split
both ways. The calibration's stability targets bound the cohort's mean deviation and that of the
patients under 4 days a week (on the 2000 patients of its scenario, about 300 of them).

    python tools/untreated_stability.py [--patients N] [--days D] [--habit-weight W] [--cohort C]
                                        [--behavior NAME=VALUE ...]

``--habit-weight`` replaces ``behavior.habit_weight_logit`` (0 removes the habit feedback and
leaves the cue memories' own); ``--behavior`` replaces any ``[behavior]`` parameter (e.g.
``extinction_opportunity_fraction=1``: every cue exposure of a day without drinking an
extinction trial).
"""

from __future__ import annotations

import argparse

import numpy as np
from pydantic import ValidationError

from reconsolidate._config import format_validation_error
from reconsolidate.exceptions import InputError
from reconsolidate.trial.engine import make_plan, simulate_chunk
from reconsolidate.trial.spec import TrialSpec

BANDS = ((1.5, 3.0), (3.0, 4.0), (4.0, 5.0), (5.0, 7.01))


def spec(days: int, behavior: dict[str, float] | None, cohort: str = "combine") -> TrialSpec:
    d = {
        "name": "untreated-stability", "seed": 1, "baseline_days": 28, "follow_up_days": days,
        "cohort": {"preset": cohort, "treatment_seeking_fraction": 0.0,
                   "abstinent_at_entry_fraction": 0.0, "recruited_by_screening": False},
        "protocols": {"none": {"sessions": [{"day": 0, "retrieval": "none", "drug": "saline"}]}},
        "arms": [{"name": "untreated", "protocol": "none", "therapy": "none"}],
    }
    if behavior:
        d["behavior"] = behavior
    return TrialSpec.model_validate(d)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=3000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--habit-weight", type=float, default=None)
    ap.add_argument("--behavior", action="append", default=[], metavar="NAME=VALUE",
                    help="replace a [behavior] parameter (repeatable)")
    ap.add_argument("--cohort", default="combine", help="cohort preset (e.g. das2019)")
    args = ap.parse_args(argv)
    beh: dict[str, float] = {}
    if args.habit_weight is not None:
        beh["habit_weight_logit"] = args.habit_weight
    for item in args.behavior:
        name, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--behavior {item!r}: expected NAME=VALUE")
        try:
            beh[name.strip()] = float(value)
        except ValueError:
            ap.error(f"--behavior {item!r}: VALUE must be a number")
    try:
        plan = make_plan(spec(args.days, beh, args.cohort), ".", args.patients)
    except ValidationError as e:  # one line naming the field, as the command line says it
        ap.error(format_validation_error(e, model=TrialSpec))
    except InputError as e:
        ap.error(str(e))
    r = simulate_chunk(plan, 0, 0, 0, args.patients)
    usual = r.patients.drinking_days_per_week
    last = (r.drinks_true[:, -91:] > 0).mean(axis=1) * 7.0
    print(f"cohort {args.cohort}, untreated, {args.patients} patients, days 0-{args.days - 1}; "
          f"habit weight {plan.spec.behavior.habit_weight_logit:.3g} log-odds; extinction "
          f"opportunity {plan.spec.behavior.extinction_opportunity_fraction:.3g}")
    print("usual drinking days/week | patients | usual mean | last 91 days mean | "
          "mean |deviation|, points of days | near abstinent (< 0.5/week) | "
          ">= 1.5 days/week above usual")
    dev = 100.0 * np.abs(last - usual) / 7.0
    for lo, hi in BANDS:
        s = (usual >= lo) & (usual < hi)
        if not s.any():
            continue
        print(f"[{lo:g}, {hi:g}) | {int(s.sum())} | {usual[s].mean():.2f} | "
              f"{last[s].mean():.2f} | {dev[s].mean():.1f} | "
              f"{100.0 * np.mean(last[s] < 0.5):.0f}% | "
              f"{100.0 * np.mean(last[s] >= usual[s] + 1.5):.0f}%")
    print(f"whole cohort: usual {usual.mean():.2f}, last 91 days {last.mean():.2f}; mean "
          f"|deviation| {dev.mean():.1f} points of days; under 4 days a week: "
          f"{dev[usual < 4.0].mean():.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
