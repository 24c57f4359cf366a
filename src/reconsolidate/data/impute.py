"""Imputation of missing diary days inside gaps between two reported days (as abstcal offers).

Only interior gaps are filled: days before a participant's first or after the last reported day
(late start, dropout) stay missing, because those are what the intent-to-treat handling of the
endpoints is for. The choice is recorded per day in the status matrix and in the provenance.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

from reconsolidate.exceptions import InputError

__all__ = ["IMPUTATION_METHODS", "impute_missing_days"]

IMPUTATION_METHODS = ("fixed", "neighbour_mean", "linear")


def impute_missing_days(
    drinks_per_day: NDArray[np.float64],
    method: Literal["fixed", "neighbour_mean", "linear"],
    *,
    value_drinks: float = 0.0,
    max_gap_days: int | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Fill interior gaps of missing days.

    Parameters
    ----------
    drinks_per_day
        Shape ``(N, D)``, US standard drinks per day, NaN = missing.
    method
        ``"fixed"`` (``value_drinks`` every gap day), ``"neighbour_mean"`` (mean of the reported
        days on either side of the gap; abstcal's "uniform"), ``"linear"`` (linear interpolation
        between them).
    value_drinks
        Fill value for ``"fixed"``, US standard drinks (>= 0).
    max_gap_days
        Fill only gaps of at most this many days (None = any length).

    Returns
    -------
    (filled, imputed)
        The filled copy and a boolean mask of the imputed cells.
    """
    if method not in IMPUTATION_METHODS:
        raise InputError(f"imputation method {method!r}: allowed {list(IMPUTATION_METHODS)}")
    if not (np.isfinite(value_drinks) and value_drinks >= 0):
        raise InputError(f"imputation value {value_drinks!r}: must be finite and >= 0 drinks")
    if max_gap_days is not None and not (isinstance(max_gap_days, int) and max_gap_days >= 1):
        raise InputError(f"max_gap_days = {max_gap_days!r}: must be an integer >= 1 or None")
    x = np.asarray(drinks_per_day, dtype=np.float64)
    n, d = x.shape
    obs = ~np.isnan(x)
    idx = np.broadcast_to(np.arange(d), (n, d))
    prev = np.maximum.accumulate(np.where(obs, idx, -1), axis=1)
    nxt = np.minimum.accumulate(np.where(obs, idx, d)[:, ::-1], axis=1)[:, ::-1]
    gap = ~obs & (prev >= 0) & (nxt < d)
    if max_gap_days is not None:
        gap &= (nxt - prev - 1) <= max_gap_days
    rows = np.broadcast_to(np.arange(n)[:, None], (n, d))
    left = x[rows, np.clip(prev, 0, d - 1)]
    right = x[rows, np.clip(nxt, 0, d - 1)]
    if method == "fixed":
        fill = np.full((n, d), float(value_drinks))
    elif method == "neighbour_mean":
        fill = 0.5 * (left + right)
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = (idx - prev) / (nxt - prev)
        fill = left + (right - left) * frac
    out = np.where(gap, fill, x)
    return out, gap
