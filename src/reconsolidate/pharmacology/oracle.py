"""Reference ODE solution (scipy ``solve_ivp``) used as the test and benchmark oracle.

Not a production path: it integrates each patient separately, segment by segment (restarting at
every rate change and bolus so that discontinuities are never stepped over), with a tight
tolerance. The exact solver (:mod:`reconsolidate.pharmacology.solver`) must agree with it.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

from reconsolidate.pharmacology.solver import Schedule

__all__ = ["propagate_ode"]

#: Segments shorter than this (min) are advanced by one first-order Taylor step.
_SHORTEST_SEGMENT_MIN = 1e-9


def propagate_ode(
    a: np.ndarray,
    b: np.ndarray,
    obs: np.ndarray,
    schedule: Schedule,
    times_min: np.ndarray,
    *,
    method: str = "LSODA",
    rtol: float = 1e-10,
    atol: float = 1e-16,
) -> np.ndarray:
    """Observed concentrations (mg/L), shape (N, n_obs, T), by numerical integration.

    Same arguments as :func:`reconsolidate.pharmacology.solver.propagate`, plus the
    ``solve_ivp`` method and tolerances (amounts in mg, so ``atol`` 1e-16 mg is negligible).
    """
    times = np.asarray(times_min, dtype=np.float64)
    n_pat, n_obs, n = obs.shape
    edges = np.asarray(schedule.edges_min, dtype=np.float64)
    bt = np.asarray(schedule.bolus_times_min, dtype=np.float64)
    pos = np.unique(times[times >= 0])
    t_end = float(pos.max()) if pos.size else 0.0
    events = np.unique(np.concatenate([[0.0], edges, bt]))
    events = events[events <= t_end]
    bounds = np.append(events, t_end) if events[-1] < t_end else events
    out = np.zeros((n_pat, n_obs, times.size))
    k = edges.size - 1
    for p in range(n_pat):
        ap = a[p]
        x = np.zeros(n)
        values: dict[float, np.ndarray] = {}
        for j in range(bounds.size):
            t0 = float(bounds[j])
            hit = np.nonzero(bt == t0)[0]
            if hit.size:
                x = x + b * schedule.bolus_doses_mg[hit, p].sum()
            if j + 1 == bounds.size:
                if t0 in pos:
                    values[t0] = x
                break
            t1 = float(bounds[j + 1])
            seg = np.searchsorted(edges, t0, side="right") - 1
            r = float(schedule.rates_mg_per_min[seg, p]) if 0 <= seg < k else 0.0
            inside = pos[(pos >= t0) & (pos < t1)]
            if t1 - t0 < _SHORTEST_SEGMENT_MIN:
                # solve_ivp cannot take a step this short (Radau's h -> NaN at subnormal
                # lengths); one Taylor step is exact to O(d^2), ~1e-18 relative here.
                for ti in inside:
                    values[float(ti)] = x + (ti - t0) * (ap @ x + b * r)
                x = x + (t1 - t0) * (ap @ x + b * r)
                continue
            t_eval = np.unique(np.append(inside, t1))
            for meth in (method, "Radau"):
                # LSODA occasionally refuses very short segments ("Unexpected istate");
                # Radau (implicit, order 5) is then used for that segment.
                sol = solve_ivp(
                    lambda _t, y, ap=ap, r=r: ap @ y + b * r,
                    (t0, t1), x, method=meth, t_eval=t_eval, rtol=rtol, atol=atol,
                    jac=lambda _t, _y, ap=ap: ap,
                )
                if sol.success:
                    break
            if not sol.success:  # pragma: no cover - numerical failure is reported, not hidden
                raise RuntimeError(f"solve_ivp failed: {sol.message}")
            for ti, yi in zip(sol.t, sol.y.T, strict=True):
                if ti < t1:
                    values[float(ti)] = yi
            x = sol.y[:, -1].copy()
        for c, t in enumerate(times):
            if t >= 0:
                out[p, :, c] = obs[p] @ values[float(t)]
    return out
