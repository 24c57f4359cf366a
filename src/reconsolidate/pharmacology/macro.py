"""Macro-constant (eigenvalue) solution of 2- and 3-compartment models, as in STANPUMP.

This is the second, independent exact implementation used to cross-check the matrix-exponential
solver (:mod:`reconsolidate.pharmacology.solver`) and to reproduce the stanpumpR golden numbers.

Exponents: roots of the characteristic polynomial, trigonometric solution of the cubic
(stanpumpR ``R/cube.R``, STANPUMP ``CUBE.C``). Coefficients (unit bolus, plasma):
``C_i = (k21 - l_i)(k31 - l_i) / (V1 prod_{j != i}(l_j - l_i))``; unit-rate infusion ``C_i/l_i``;
effect site ``E_i = C_i ke0 / (ke0 - l_i)``, ``E_4 = -sum E_i`` (stanpumpR ``R/getDrugPK.R``).
Exact recursion for piecewise-constant input (stanpumpR ``advanceState``):
``s_i <- s_i e^{-l_i d} + C_i bolus + (C_i/l_i) R (1 - e^{-l_i d})``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["macro_constants", "simulate_macro"]


def _roots(k10: float, k12: float, k21: float, k13: float | None, k31: float | None) -> np.ndarray:
    if k13 is None or k31 is None or k13 == 0.0:
        s = k10 + k12 + k21
        d = math.sqrt(s * s - 4.0 * k10 * k21)
        return np.array([(s + d) / 2.0, (s - d) / 2.0])
    a0 = k10 * k21 * k31
    a1 = k10 * k31 + k21 * k31 + k21 * k13 + k10 * k21 + k31 * k12
    a2 = k10 + k12 + k13 + k21 + k31
    p = a1 - a2 * a2 / 3.0
    q = 2.0 * a2**3 / 27.0 - a1 * a2 / 3.0 + a0
    r1 = math.sqrt(-(p**3) / 27.0)
    phi = math.acos(min(1.0, max(-1.0, -q / 2.0 / r1))) / 3.0
    r2 = 2.0 * math.exp(math.log(r1) / 3.0)
    lam = [-(math.cos(phi + k * 2.0 * math.pi / 3.0) * r2 - a2 / 3.0) for k in range(3)]
    return np.sort(np.array(lam))[::-1]


def macro_constants(
    v1_l: float,
    k10: float,
    k12: float,
    k21: float,
    k13: float | None = None,
    k31: float | None = None,
    ke0_per_min: float | None = None,
) -> dict[str, np.ndarray | float]:
    """Exponents and coefficients of the unit-bolus and unit-infusion responses.

    Parameters
    ----------
    v1_l
        Central volume (L).
    k10, k12, k21, k13, k31
        Micro rate constants (1/min); omit ``k13``/``k31`` for two compartments.
    ke0_per_min
        Effect-site rate constant (1/min); ``None`` skips the effect-site coefficients.

    Returns
    -------
    dict
        ``lambda_per_min`` (descending), ``c`` (1/L, plasma after a unit bolus of 1 mg),
        ``c_over_lambda`` (L^-1 min, unit-rate infusion), and with ke0 also ``e`` (1/L) and
        ``e4`` (1/L).
    """
    lam = _roots(k10, k12, k21, k13, k31)
    n = lam.size
    c = np.empty(n)
    for i in range(n):
        num = k21 - lam[i]
        if n == 3:
            num *= k31 - lam[i]  # type: ignore[operator]
        # residue of (s + k21)(s + k31) / (V1 prod_j (s + l_j)) at s = -l_i
        den = v1_l * np.prod([lam[j] - lam[i] for j in range(n) if j != i])
        c[i] = num / den
    out: dict[str, np.ndarray | float] = {"lambda_per_min": lam, "c": c, "c_over_lambda": c / lam}
    if ke0_per_min is not None:
        e = c * ke0_per_min / (ke0_per_min - lam)
        out["e"] = e
        out["e4"] = float(-e.sum())
    return out


def simulate_macro(
    macro: dict[str, np.ndarray | float],
    ke0_per_min: float,
    edges_min: np.ndarray,
    rates_mg_per_min: np.ndarray,
    boluses: list[tuple[float, float]],
    times_min: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Plasma and effect-site concentrations (mg/L) by the exact virtual-compartment recursion.

    Parameters
    ----------
    macro
        Output of :func:`macro_constants` (with ke0).
    ke0_per_min
        The same ke0 as used for ``macro``.
    edges_min
        Increasing segment edges (min), length K + 1; the rate is 0 outside.
    rates_mg_per_min
        Rate of each of the K segments (mg/min).
    boluses
        ``(time_min, dose_mg)`` pairs.
    times_min
        Non-decreasing output times (min).
    """
    lam = np.asarray(macro["lambda_per_min"], dtype=float)
    c = np.asarray(macro["c"], dtype=float)
    lam_e = np.append(lam, ke0_per_min)
    c_e = np.append(np.asarray(macro["e"], dtype=float), float(macro["e4"]))  # type: ignore[arg-type]
    events = sorted({0.0, *map(float, edges_min), *(b[0] for b in boluses), *map(float, times_min)})
    sp = np.zeros_like(lam)
    se = np.zeros_like(lam_e)
    values: dict[float, tuple[float, float]] = {}
    edges = np.asarray(edges_min, dtype=float)
    for j, t in enumerate(events):
        dose = sum(d for tb, d in boluses if tb == t)
        sp += c * dose
        se += c_e * dose
        values[t] = (float(sp.sum()), float(se.sum()))
        if j + 1 < len(events):
            d = events[j + 1] - t
            k = np.searchsorted(edges, t, side="right") - 1
            r = float(rates_mg_per_min[k]) if 0 <= k < len(rates_mg_per_min) else 0.0
            ep, ee = np.exp(-lam * d), np.exp(-lam_e * d)
            sp = sp * ep + (c / lam) * r * (1.0 - ep)
            se = se * ee + (c_e / lam_e) * r * (1.0 - ee)
    cp = np.array([values[float(t)][0] for t in times_min])
    ce = np.array([values[float(t)][1] for t in times_min])
    return cp, ce
