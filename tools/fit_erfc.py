"""Fit the coefficients of the vectorisable erfc of ``reconsolidate.memory.population``.

``erfc(a) = t exp(-a^2 + g(t))`` for a >= 0, with ``t = 1 / (1 + a / 2)`` in (0, 1] and
``g(t) = log(erfcx(a) / t)`` smooth (analytic) on [0, 1]; ``g`` is fitted by least squares in
Chebyshev polynomials of ``u = 2 t - 1`` on 200 Chebyshev nodes, against scipy's ``erfcx``
(relative error ~1e-15). Degree 22 fits ``g`` within 1e-14; the compiled erfc is then within a
relative 2e-13 for a <= 7.9 (its exp is clamped at exp(-64) beyond). The tests in
tests/memory/test_memory_population_fast.py check both and that this script reproduces the
shipped coefficients.

    python tools/fit_erfc.py     # prints the coefficient tuple pasted into population.py
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial import chebyshev
from scipy.special import erfcx

DEGREE = 22
NODES = 200


def fit(degree: int = DEGREE, nodes: int = NODES) -> np.ndarray:
    """Chebyshev coefficients of ``g`` in ``u = 2 t - 1`` (lowest degree first)."""
    u = np.cos(np.pi * (np.arange(nodes) + 0.5) / nodes)
    t = 0.5 * (u + 1.0)
    a = 2.0 * (1.0 - t) / t
    return chebyshev.chebfit(u, np.log(erfcx(a) / t), degree)


if __name__ == "__main__":
    c = fit()
    print("_ERFC_CHEB = np.array([")
    for x in c:
        print(f"    {float(x)!r},")
    print("])")
