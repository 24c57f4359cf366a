"""Covariate distributions that a cohort (or a trial spec) declares explicitly.

Each distribution is a strict pydantic model tagged by ``dist`` and maps uniforms in (0, 1) to
values by inversion (``ppf``), so that a patient's covariate depends only on that patient's
counter-based random numbers (:class:`~reconsolidate._random.PatientStream`), never on chunking.
Bounds (``low``/``high``) truncate by inversion inside the bounds, not by clipping, so the
truncated distribution keeps its shape.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator
from scipy.special import ndtr, ndtri

from reconsolidate._config import StrictModel

__all__ = ["Distribution", "Fixed", "LogNormal", "Normal", "Uniform", "range_problem"]


def _truncated_normal_ppf(
    u: np.ndarray, mu: float, sd: float, low: float, high: float
) -> np.ndarray:
    a = ndtr((low - mu) / sd) if math.isfinite(low) else 0.0
    b = ndtr((high - mu) / sd) if math.isfinite(high) else 1.0
    p = a + u * (b - a)
    return np.clip(mu + sd * ndtri(p), low, high)


class Fixed(StrictModel):
    """Every patient gets ``value``."""

    dist: Literal["fixed"] = "fixed"
    value: float

    def ppf(self, u: np.ndarray) -> np.ndarray:
        return np.full(np.shape(u), float(self.value))

    @property
    def mean(self) -> float:
        return float(self.value)

    @property
    def bounds(self) -> tuple[float, float, bool]:
        """``(lowest, highest, lowest_excluded)``: the range of the values ``ppf`` gives."""
        return float(self.value), float(self.value), False


class Normal(StrictModel):
    """Normal(mean, sd), truncated to [low, high] by inversion."""

    dist: Literal["normal"] = "normal"
    mean: float
    sd: float = Field(ge=0)
    # unbounded by default: the configs' finite-number rule (StrictModel) has this exception
    low: float = Field(-math.inf, allow_inf_nan=True, description="lower bound (-inf: none)")
    high: float = Field(math.inf, allow_inf_nan=True, description="upper bound (inf: none)")

    @model_validator(mode="after")
    def _check(self) -> Normal:
        if not self.low < self.high:
            raise ValueError(f"need low < high, got low={self.low}, high={self.high}")
        if not self.low <= self.mean <= self.high:
            raise ValueError(f"mean {self.mean} lies outside [{self.low}, {self.high}]")
        return self

    def ppf(self, u: np.ndarray) -> np.ndarray:
        if self.sd == 0:
            return np.full(np.shape(u), float(self.mean))
        return _truncated_normal_ppf(np.asarray(u), self.mean, self.sd, self.low, self.high)

    @property
    def bounds(self) -> tuple[float, float, bool]:
        """``(lowest, highest, lowest_excluded)``: the range of the values ``ppf`` gives."""
        if self.sd == 0:
            return float(self.mean), float(self.mean), False
        return float(self.low), float(self.high), False


class LogNormal(StrictModel):
    """Log-normal with the given ``median`` and coefficient of variation ``cv``, truncated."""

    dist: Literal["lognormal"] = "lognormal"
    median: float = Field(gt=0)
    cv: float = Field(ge=0, description="coefficient of variation of the untruncated distribution")
    low: float = Field(0.0, ge=0)
    high: float = Field(math.inf, allow_inf_nan=True, description="upper bound (inf: none)")

    @model_validator(mode="after")
    def _check(self) -> LogNormal:
        if not self.low < self.high:
            raise ValueError(f"need low < high, got low={self.low}, high={self.high}")
        if not self.low <= self.median <= self.high:
            raise ValueError(f"median {self.median} lies outside [{self.low}, {self.high}]")
        return self

    @property
    def sigma(self) -> float:
        return math.sqrt(math.log1p(self.cv**2))

    def ppf(self, u: np.ndarray) -> np.ndarray:
        mu = math.log(self.median)
        if self.cv == 0:
            return np.full(np.shape(u), float(self.median))
        lo = math.log(self.low) if self.low > 0 else -math.inf
        hi = math.log(self.high) if math.isfinite(self.high) else math.inf
        return np.exp(_truncated_normal_ppf(np.asarray(u), mu, self.sigma, lo, hi))

    @property
    def mean(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2)

    @property
    def bounds(self) -> tuple[float, float, bool]:
        """``(lowest, highest, lowest_excluded)``: the range of the values ``ppf`` gives.

        Without a lower bound (``low = 0``) the values are exp(...) > 0: 0 itself is excluded.
        """
        if self.cv == 0:
            return float(self.median), float(self.median), False
        return float(self.low), float(self.high), self.low == 0


class Uniform(StrictModel):
    """Uniform on [low, high]."""

    dist: Literal["uniform"] = "uniform"
    low: float
    high: float

    @model_validator(mode="after")
    def _check(self) -> Uniform:
        if not self.low <= self.high:
            raise ValueError(f"need low <= high, got low={self.low}, high={self.high}")
        return self

    def ppf(self, u: np.ndarray) -> np.ndarray:
        return self.low + np.asarray(u) * (self.high - self.low)

    @property
    def bounds(self) -> tuple[float, float, bool]:
        """``(lowest, highest, lowest_excluded)``: the range of the values ``ppf`` gives."""
        return float(self.low), float(self.high), False


Distribution = Annotated[Fixed | Normal | LogNormal | Uniform, Field(discriminator="dist")]
"""A covariate distribution: ``{dist = "normal" | "lognormal" | "uniform" | "fixed", ...}``."""


def _interval(low: float, high: float, low_open: bool) -> str:
    return f"{'(' if low_open else '['}{low:g}, {high:g}{')' if math.isinf(high) else ']'}"


def range_problem(
    dist: Fixed | Normal | LogNormal | Uniform,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    what: str,
) -> str | None:
    """Why ``dist`` can give values outside the allowed range, or None if it cannot.

    A covariate must be bounded by its distribution (``low``/``high`` truncate by inversion), not
    clipped afterwards: clipping piles the out-of-range probability on the boundary value.

    Parameters
    ----------
    dist
        The covariate distribution.
    low, high
        The allowed range (``high`` may be ``math.inf``).
    low_open
        ``low`` itself is not allowed (e.g. a positive quantity).
    what
        What the covariate is, with its unit (``"drinking days per week"``).

    Returns
    -------
    str | None
        ``"gives values in [a, b]; drinking days per week must lie in [0, 7] (...)"``.
    """
    lo, hi, lo_excluded = dist.bounds
    ok_low = lo > low or (lo == low and (not low_open or lo_excluded))
    ok_high = hi <= high
    if ok_low and ok_high:
        return None
    allowed = _interval(low, high, low_open)
    if isinstance(dist, Fixed) or lo == hi:
        return f"gives {lo:g}; {what} must lie in {allowed}"
    return (
        f"gives values in {_interval(lo, hi, lo_excluded)}; {what} must lie in {allowed}: "
        f"set low and high (bounds truncate the distribution) or move it inside"
    )
