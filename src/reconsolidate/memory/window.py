"""Reconsolidation window: NMDA occupancy weighted by the lability left after a retrieval.

The damage a drug does to restabilisation depends on the occupancy integral weighted by the
exponential decay of lability, ``I_w = int occ(t) exp(-(t - t_ret)/tau) dt`` over t >= t_ret
(occupancy x min). A drug given hours after retrieval meets no lability and does nothing.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reconsolidate.memory.params import MemoryParams
from reconsolidate.pharmacology.pd import exp_weighted_occupancy_integral

__all__ = ["damage_fraction", "window_mean_weight", "window_weighted_occupancy_min"]


def window_weighted_occupancy_min(
    times_min: ArrayLike, occupancy: ArrayLike, retrieval_min: float, tau_min: float
) -> NDArray[np.float64]:
    """Exact integral of the piecewise-linear occupancy times ``exp(-(t - retrieval)/tau)``.

    Parameters
    ----------
    times_min
        Sample times (min), increasing, shape (T,).
    occupancy
        NMDA occupancy in [0, 1] at those times, shape (T,) or (N, T).
    retrieval_min
        Time of the destabilising retrieval (min) on the same clock.
    tau_min
        Lability time constant (min).

    Returns
    -------
    ndarray, shape (N,)
        Weighted integral in occupancy x min over [retrieval, last sample]; occupancy before the
        retrieval does not count, and is 0 after the last sample.
    """
    t = np.asarray(times_min, dtype=np.float64)
    occ = np.atleast_2d(np.asarray(occupancy, dtype=np.float64))
    if t.ndim != 1 or occ.shape[1] != t.size or t.size < 2:
        raise ValueError("times_min must be (T,) with T >= 2 and occupancy (N, T)")
    if np.any(np.diff(t) < 0):
        raise ValueError("times_min must be increasing")
    if retrieval_min >= t[-1]:
        return np.zeros(occ.shape[0])
    # the closed form lives with the other occupancy integrals (also used by the trial engine
    # through the pharmacology engine's nmda_exposure(weight_tau_min=...))
    return exp_weighted_occupancy_integral(
        t, occ, max(float(retrieval_min), float(t[0])), float(t[-1]), float(tau_min),
        origin_min=float(retrieval_min),
    )


def window_mean_weight(
    window_start_min: ArrayLike, window_stop_min: ArrayLike, tau_min: float
) -> NDArray[np.float64]:
    """Mean of ``exp(-s/tau)`` over a window [start, stop] given in minutes after retrieval.

    Multiplying a plain occupancy integral over the window by this factor gives the weighted
    integral exactly when occupancy is constant over the window (and approximately otherwise).
    A window that ends before the retrieval gives 0; the part before retrieval is ignored.
    """
    a = np.maximum(np.asarray(window_start_min, dtype=np.float64), 0.0)
    b = np.asarray(window_stop_min, dtype=np.float64)
    a, b = np.broadcast_arrays(a, b)
    width = b - a
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = tau_min * (np.exp(-a / tau_min) - np.exp(-b / tau_min)) / width
    return np.where(width > 0, mean, np.where(b >= a, np.exp(-a / tau_min), 0.0))


def damage_fraction(
    weighted_occupancy_min: ArrayLike, lability: ArrayLike, params: MemoryParams
) -> NDArray[np.float64]:
    """Fraction of a memory lost when restabilisation meets NMDA blockade.

    ``D = D_max * (1 - exp(-L * I_w / I_scale))``: grows with the window-weighted occupancy
    integral ``I_w`` and the memory's lability ``L`` in [0, 1], and saturates (plateau).
    """
    x = np.asarray(lability, dtype=np.float64) * np.asarray(weighted_occupancy_min,
                                                            dtype=np.float64)
    return params.restabilization_damage_max * -np.expm1(
        -np.maximum(x, 0.0) / params.restabilization_occupancy_scale_min
    )
