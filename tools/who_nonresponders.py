"""Why patients fail to reduce their WHO drinking-risk level: a run's nonresponders by cause.

Reads a simulated run directory (``reconsolidate trial SPEC --out DIR``) and, for one arm, scores
the WHO risk-level reductions of the reported diary with
:func:`reconsolidate.endpoints.core.compute_endpoints`, as ``reconsolidate analyze DIR --window
A:B --missing heavy`` does (a patient with amounts on fewer than half of the window's days,
``WHO_REDUCTION_MIN_FRACTION``, is a nonresponder). The nonresponders to the one-level reduction
are split into

- missing: amounts on fewer than half of the window's days;
- low baseline: a reported baseline at the low level, which cannot be reduced;
- the rest, by their true drinking in the window: drinking days and heavy days (US standard
  drinks >= 5 for men, >= 4 for women), the mean reported grams a day in the window against the
  reported baseline.

It also prints the share reducing by a level among the patients who drank at all in the window
(true drinking) and were scored, and the two rates under the rule of Falk/Witkiewitz et al. 2019
(Table 2, footnote a: any participant with a missing day is a nonresponder), which the endpoints'
``heavy`` rule bounds from above. docs/calibration.md quotes it for the COMBINE-like placebo
scenario::

    reconsolidate trial src/reconsolidate/calibration/scenarios/combine-placebo.toml \\
        --patients-per-arm 1000 --out DIR
    python tools/who_nonresponders.py DIR --arm saline+education --window 84:111 \\
        --baseline=-40:-12
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from reconsolidate.endpoints.core import (
    HEAVY_DRINKS_MEN,
    HEAVY_DRINKS_WOMEN,
    WHO_REDUCTION_MIN_FRACTION,
    MissingDataHandling,
    compute_endpoints,
)


def _days(text: str) -> tuple[int, int]:
    a, b = text.split(":")
    return int(a), int(b)


def _matrix(table, ids: np.ndarray, column: str, first: int, last: int) -> np.ndarray:
    """(patients, days) of ``column`` over study days first..last (NaN where absent)."""
    day = table["study_day"].to_numpy()
    keep = (day >= first) & (day <= last)
    pid = table["patient_id"].to_numpy(zero_copy_only=False)[keep]
    row = np.searchsorted(ids, pid)
    out = np.full((ids.size, last - first + 1), np.nan)
    out[row, day[keep] - first] = table[column].to_numpy(zero_copy_only=False)[keep]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--arm", required=True)
    ap.add_argument("--window", type=_days, required=True, help="analysis window A:B, study days")
    ap.add_argument("--baseline", type=_days, required=True,
                    help="baseline window A:B, study days (use --baseline=-40:-12)")
    args = ap.parse_args(argv)
    people = pq.read_table(args.run_dir / "patients.parquet",
                           columns=["patient_id", "arm", "is_female"])
    people = people.filter(pc.equal(people["arm"], args.arm))
    if people.num_rows == 0:
        raise SystemExit(f"--arm {args.arm!r}: no such arm in {args.run_dir}")
    order = np.argsort(people["patient_id"].to_numpy(zero_copy_only=False))
    ids = people["patient_id"].to_numpy(zero_copy_only=False)[order]
    female = people["is_female"].to_numpy()[order]
    diary = pq.read_table(args.run_dir / "drinking.parquet",
                          columns=["patient_id", "study_day", "drinks_true", "drinks_reported"])
    diary = diary.filter(pc.is_in(diary["patient_id"], value_set=people["patient_id"]))
    base = _matrix(diary, ids, "drinks_reported", *args.baseline)
    rep = _matrix(diary, ids, "drinks_reported", *args.window)
    true = _matrix(diary, ids, "drinks_true", *args.window)
    # scored by the endpoints themselves, as `analyze --missing heavy` scores them
    ep = compute_endpoints(rep, female, handling=MissingDataHandling("itt", "heavy"),
                           baseline_drinks_per_week=7.0 * np.nanmean(base, axis=1))
    reduced = ep.who_reduction_1_level == 1.0
    missing = ep.n_days_observed < math.ceil(WHO_REDUCTION_MIN_FRACTION * rep.shape[1])
    low = ~missing & (ep.baseline_who_risk_level == 0)
    grams = ep.grams_per_day
    grams_per_drink = ep.settings["grams_per_drink"]
    n = ids.size
    rest = ~reduced & ~missing & ~low
    heavy = np.where(female[:, None], HEAVY_DRINKS_WOMEN, HEAVY_DRINKS_MEN)
    drank_days = (true > 0).sum(axis=1)
    heavy_days = (true >= heavy).sum(axis=1)
    print(f"{args.run_dir} arm {args.arm}: {n} patients, window {args.window}, baseline "
          f"{args.baseline}")
    print(f"WHO >= 1-level reduction: {100 * reduced.mean():.1f}%; >= 2 levels: "
          f"{100 * (ep.who_reduction_2_levels == 1.0).mean():.1f}%")
    print(f"nonresponders (one level): {int((~reduced).sum())} = missing {int(missing.sum())} "
          f"+ low baseline {int(low.sum())} + the rest {int(rest.sum())}")
    if rest.any():
        print(f"  the rest, true drinking in the window ({true.shape[1]} days): drinking days "
              f"median {np.median(drank_days[rest]):.0f} (mean {drank_days[rest].mean():.1f}), "
              f"heavy days median {np.median(heavy_days[rest]):.0f} "
              f"(mean {heavy_days[rest].mean():.1f}); reported g/day {np.mean(grams[rest]):.0f} "
              f"against a reported baseline of "
              f"{np.mean(ep.baseline_drinks_per_week[rest]) / 7.0 * grams_per_drink:.0f}")
    drank = ~missing & (drank_days > 0)
    print(f"among the {int(drank.sum())} scored patients who drank in the window: "
          f"{100 * reduced[drank].mean():.1f}% reduced by a level")
    complete = ep.n_days_observed == rep.shape[1]
    print(f"any missing day a nonresponder (the paper's rule): >= 1 level "
          f"{100 * (reduced & complete).mean():.1f}%, >= 2 levels "
          f"{100 * ((ep.who_reduction_2_levels == 1.0) & complete).mean():.1f}% "
          f"({int((~complete).sum())} patients miss a day)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
