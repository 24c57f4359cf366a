"""TLFB test-retest correlation of the observation model, by the per-interview recall CV.

Derives ``ObservationModel.recall_session_cv`` (ASSUMPTION, derived): two independent Timeline
Followback interviews of the same days (the observation model's random streams of replicates 0
and 1 on the same true drinking) give two reported totals per person; their Pearson
correlation across people is the model's test-retest reliability. Sobell et al. 1986 found
r ~ 0.87 for reported drinking in college drinkers [P] (clinical-evidence.md section 6); the
recall CV is the one at which the simulated correlation matches it
(:func:`reconsolidate.trial.observation.tlfb_test_retest_r` computes it for any cohort).

True drinking: the baseline days of the first arm of ``examples/trials/das2019.toml``
(non-treatment-seeking heavy drinkers, the cohort nearest Sobell's college drinkers), recalled
at one interview on day 0 covering ``--days`` days (default 28, the example's baseline TLFB
window; Sobell's interval is not in the project's notes).

    python tools/tlfb_test_retest.py [--patients 4000] [--days 28]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scipy.optimize import brentq

from reconsolidate.trial.engine import make_plan, simulate_chunk
from reconsolidate.trial.observation import (
    RECALL_SESSION_CV,
    ObservationModel,
    tlfb_test_retest_r,
)
from reconsolidate.trial.spec import load_trial_spec

SOBELL_1986_R = 0.87  # TLFB test-retest reliability, college drinkers [P]
SPEC = Path(__file__).resolve().parents[1] / "examples" / "trials" / "das2019.toml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=4000)
    ap.add_argument("--days", type=int, default=28)
    args = ap.parse_args()
    spec = load_trial_spec(SPEC)
    plan = make_plan(spec, spec_dir=SPEC.parent)
    r = simulate_chunk(plan, 0, 0, 0, args.patients)
    first_day = -spec.baseline_days
    if args.days > spec.baseline_days:
        raise SystemExit(f"--days {args.days}: the spec observes {spec.baseline_days} "
                         "baseline days")
    print(f"Das 2019 cohort, {args.patients} people, two independent recalls of the "
          f"{args.days} days before day 0 (Sobell 1986: r ~ {SOBELL_1986_R})")
    print("| recall_session_cv | test-retest r |")
    print("|---|---|")
    def r_of(cv: float) -> float:
        return tlfb_test_retest_r(ObservationModel(recall_session_cv=cv), r.drinks_true,
                                  r.patients.is_female, first_day=first_day, days=args.days)

    for cv in sorted({0.0, 0.05, 0.1, 0.15, 0.2, 0.3, RECALL_SESSION_CV}):
        mark = " (default)" if cv == RECALL_SESSION_CV else ""
        print(f"| {cv:.3f}{mark} | {r_of(cv):.3f} |")
    true = r.drinks_true[:, -first_day - args.days:-first_day].sum(axis=1)
    cv_star = brentq(lambda cv: r_of(cv) - SOBELL_1986_R, 0.0, 1.0, xtol=1e-4)
    print(f"between-person CV of the true {args.days}-day totals: {true.std() / true.mean():.3f}")
    print(f"recall_session_cv giving r = {SOBELL_1986_R}: {cv_star:.3f} "
          f"(default {RECALL_SESSION_CV})")


if __name__ == "__main__":
    main()
