"""Per-person cue effects on craving and drinking by empirical-Bayes partial pooling.

Method (why this one)
---------------------
For person ``p`` and diary entry ``t`` with cue-presence vector ``x_t`` (0/1 per cue class):

* craving:  ``craving_pt = a_p + sum_c b_pc x_tc + e_pt``,  ``e_pt ~ N(0, sigma_p^2)``;
* drinking: ``logit P(drinks before the next entry) = a'_p + sum_c d_pc x_tc``;
* random intercepts and slopes: ``(a_p, b_p) ~ N(mu, T)`` and ``(a'_p, d_p) ~ N(mu', T')``
  with full between-person covariance matrices ``T``, ``T'``.

``b_pc`` (craving points on the 0-100 scale when cue ``c`` is present, other cues held fixed)
is the person's *cue reactivity*: in the simulator it is the conditioned response of that
cue's memory, the thing a retrieval session targets. ``d_pc`` is the log odds ratio of
drinking after the cue.

The hyper-parameters ``(mu, T, sigma)`` are estimated by maximum likelihood with the EM
algorithm, and each person's effects are their posterior (empirical-Bayes) distribution:

* the craving model is a linear mixed model; its E-step is exact and uses only per-person
  sufficient statistics ``X'X``, ``X'y``, ``y'y``, so persons with a cue never seen (a singular
  ``X'X``) need no special case. With ``residual_variance="pooled"`` the model is exactly
  statsmodels' ``MixedLM(..., re_formula=<all cues>).fit(reml=False)`` (tested as an oracle);
  the default ``"per_person"`` lets each person's craving noise differ, with a scaled
  inverse-chi-square prior (``prior_df`` pseudo-entries) towards the pooled value, so that a
  person with erratic ratings does not get falsely narrow intervals;
* the drinking model is a logistic mixed model fitted by Laplace-EM: per person a
  Newton-Raphson posterior mode under the current normal prior (the prior keeps estimates
  finite under separation, e.g. someone who always drank after the pub), the inverse Hessian
  as posterior covariance, then the same M-step.

Why not a full Bayesian sampler or statsmodels' MixedLM as the engine: the estimator must give
profiles for 10,000 people in seconds and be deterministic; MixedLM takes minutes at that
size and has no logistic counterpart with random slopes beyond variational Bayes. The
empirical-Bayes intervals add the uncertainty of ``mu`` (Morris' correction) but not that of
``T``; with tens of participants or more the latter is small (see docs/triggers.md).

Everything is vectorised across persons: entries are first collapsed into cells
(person x distinct cue pattern), so the per-iteration cost scales with the number of cells,
not the number of entries, and batched ``(P, K, K)`` linear algebra does the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numba
import numpy as np
import scipy.sparse as sp
from scipy.special import expit, ndtri

from reconsolidate.exceptions import InputError
from reconsolidate.triggers.diary import EMADiary

__all__ = [
    "CueCells",
    "MixedFit",
    "cells_from_diary",
    "cue_cells",
    "fit_craving_mixed",
    "fit_drinking_mixed",
]


@dataclass(frozen=True)
class CueCells:
    """Diary entries collapsed into cells (person x distinct cue pattern).

    Attributes
    ----------
    n_participants
        P.
    patterns
        ``(G, C)`` bool, the distinct cue patterns seen.
    cell_person, cell_pattern
        ``(M,)`` int64, person and pattern of each non-empty cell, sorted by person then pattern.
    n_craving, sum_craving, sumsq_craving
        ``(M,)`` entries with a craving answer, and sums of craving and craving squared.
    n_drink, k_drink
        ``(M,)`` entries with a known next-interval drinking outcome, and how many of those
        were followed by drinking.
    exposures
        ``(P, C)`` int64 number of entries where each cue was present.
    """

    n_participants: int
    patterns: np.ndarray
    cell_person: np.ndarray
    cell_pattern: np.ndarray
    n_craving: np.ndarray
    sum_craving: np.ndarray
    sumsq_craving: np.ndarray
    n_drink: np.ndarray
    k_drink: np.ndarray
    exposures: np.ndarray

    @property
    def design(self) -> np.ndarray:
        """``(G, K)`` float design rows ``[1, x_1, ..., x_C]`` of the patterns."""
        g = self.patterns.shape[0]
        return np.hstack([np.ones((g, 1)), self.patterns.astype(np.float64)])

    def person_matrix(self, weights: np.ndarray) -> sp.csr_matrix:
        """``(P, G)`` sparse matrix with ``weights`` (one per cell) at the cells."""
        indptr = np.zeros(self.n_participants + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.cell_person, minlength=self.n_participants), out=indptr[1:])
        return sp.csr_matrix(
            (weights, self.cell_pattern, indptr), shape=(self.n_participants, len(self.patterns))
        )


def cue_cells(
    participant_index: np.ndarray,
    exposure: np.ndarray,
    craving_0_100: np.ndarray,
    drank_next: np.ndarray,
    n_participants: int,
) -> CueCells:
    """Collapse entries into person x cue-pattern cells (vectorised; no loop over persons).

    Parameters
    ----------
    participant_index
        ``(N,)`` int, person of each entry (0..P-1).
    exposure
        ``(N, C)`` bool cue presence.
    craving_0_100
        ``(N,)`` craving, NaN = missing.
    drank_next
        ``(N,)`` 1/0 drank before the next entry, NaN = unknown.
    n_participants
        P (persons without entries get the population prior).
    """
    pidx = np.asarray(participant_index, dtype=np.int64)
    x = np.asarray(exposure, dtype=bool)
    n, c = x.shape
    if c <= 62:
        code = x.astype(np.int64) @ (np.int64(1) << np.arange(c, dtype=np.int64))
        ucode, pat = np.unique(code, return_inverse=True)
        patterns = ((ucode[:, None] >> np.arange(c, dtype=np.int64)) & 1).astype(bool)
    else:
        patterns, pat = np.unique(x, axis=0, return_inverse=True)
    pat = np.asarray(pat, dtype=np.int64).ravel()
    g = len(patterns)
    key = pidx * g + pat
    ukey, cell = np.unique(key, return_inverse=True)
    cell = cell.ravel()
    m = len(ukey)
    y = np.asarray(craving_0_100, dtype=np.float64)
    okc = ~np.isnan(y)
    yz = np.where(okc, y, 0.0)
    d = np.asarray(drank_next, dtype=np.float64)
    okd = ~np.isnan(d)
    dz = np.where(okd, d, 0.0)
    exposures = np.zeros((n_participants, c), dtype=np.int64)
    if n:
        cnt = np.bincount(cell, minlength=m)
        per_pat = sp.csr_matrix(
            (cnt, (ukey // g, ukey % g)), shape=(n_participants, g)
        )
        exposures = np.asarray(per_pat @ patterns.astype(np.int64), dtype=np.int64)
    return CueCells(
        n_participants=int(n_participants),
        patterns=patterns,
        cell_person=(ukey // g).astype(np.int64),
        cell_pattern=(ukey % g).astype(np.int64),
        n_craving=np.bincount(cell, weights=okc, minlength=m),
        sum_craving=np.bincount(cell, weights=yz, minlength=m),
        sumsq_craving=np.bincount(cell, weights=yz * yz, minlength=m),
        n_drink=np.bincount(cell, weights=okd, minlength=m),
        k_drink=np.bincount(cell, weights=dz, minlength=m),
        exposures=exposures,
    )


def cells_from_diary(diary: EMADiary) -> CueCells:
    """:func:`cue_cells` of a validated :class:`EMADiary`."""
    return cue_cells(
        diary.participant_index,
        diary.exposure,
        diary.craving_0_100,
        diary.drank_next(),
        diary.n_participants,
    )


@dataclass(frozen=True)
class MixedFit:
    """Posterior (empirical-Bayes) coefficients of one mixed model, per person.

    Coefficient 0 is the intercept, 1..C the cue effects.

    Attributes
    ----------
    mean
        ``(P, K)`` posterior means.
    cov
        ``(P, K, K)`` posterior covariances, including the uncertainty of ``mu``.
    mu
        ``(K,)`` estimated population mean.
    between_cov
        ``(K, K)`` estimated between-person covariance ``T``.
    residual_sd
        ``(P,)`` residual SD per person (craving points; NaN for the logistic model).
    n_iter
        EM iterations used.
    converged
        Whether the EM tolerance was reached.
    """

    mean: np.ndarray
    cov: np.ndarray
    mu: np.ndarray
    between_cov: np.ndarray
    residual_sd: np.ndarray
    n_iter: int
    converged: bool

    def sd(self) -> np.ndarray:
        """``(P, K)`` posterior standard deviations."""
        return np.sqrt(np.maximum(np.diagonal(self.cov, axis1=1, axis2=2), 0.0))

    def interval(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """Equal-tailed normal posterior interval at ``level`` (e.g. 0.95), each ``(P, K)``."""
        z = float(ndtri(0.5 + level / 2))
        s = self.sd()
        return self.mean - z * s, self.mean + z * s

    def own_data_share(self) -> np.ndarray:
        """``(P, K)`` 1 - posterior variance / between-person variance, in [0, 1].

        Near 1 the estimate rests on the person's own entries; near 0 it is mostly the
        population mean borrowed from everyone else (thin evidence).
        """
        tdiag = np.diagonal(self.between_cov)
        var = np.diagonal(self.cov, axis1=1, axis2=2)
        return np.clip(1.0 - var / np.where(tdiag > 0, tdiag, np.inf), 0.0, 1.0)


#: ASSUMPTION: a full between-person covariance needs at least this many participants per
#: coefficient (K = cues + 1) to be estimated stably; below it ``"auto"`` uses a diagonal ``T``.
PERSONS_PER_COEF_FOR_FULL_COV = 5


def _diagonal_cov(between_cov: str, p: int, k: int) -> bool:
    if between_cov not in ("auto", "full", "diagonal"):
        raise InputError(
            f"between_cov = {between_cov!r}; allowed: 'auto', 'full', 'diagonal'"
        )
    if between_cov == "auto":
        return p < PERSONS_PER_COEF_FOR_FULL_COV * k
    return between_cov == "diagonal"


def _floor_psd(t: np.ndarray, floor: float) -> np.ndarray:
    """Symmetrise and lift eigenvalues to at least ``floor`` (keeps ``T`` invertible)."""
    t = 0.5 * (t + t.T)
    w, v = np.linalg.eigh(t)
    return (v * np.maximum(w, floor)) @ v.T


def _pattern_outer(design: np.ndarray) -> np.ndarray:
    """``(G, K*K)`` flattened outer products of the design rows."""
    g, k = design.shape
    return (design[:, :, None] * design[:, None, :]).reshape(g, k * k)


def _mu_correction(
    post_cov: np.ndarray, t_inv: np.ndarray
) -> np.ndarray:
    """Posterior covariances plus the propagated uncertainty of the estimated ``mu``.

    ``Var(mu_hat) = (sum_p W_p)^-1`` with ``W_p = (T + V_p)^-1 = T^-1 - T^-1 S_p T^-1``
    (Woodbury, valid for singular per-person information), and the posterior mean moves
    with ``mu`` through ``B_p = S_p T^-1`` (Morris 1983, JASA 78:47, eq. 4.1 in spirit).
    """
    b = post_cov @ t_inv  # (P, K, K)
    w = t_inv[None] - t_inv[None] @ post_cov @ t_inv[None]
    wsum = w.sum(axis=0)
    try:
        var_mu = np.linalg.inv(0.5 * (wsum + wsum.T))
    except np.linalg.LinAlgError:
        return post_cov
    return post_cov + b @ var_mu @ np.swapaxes(b, 1, 2)


def _squarem(
    theta0: np.ndarray,
    fixed_point: Callable[[np.ndarray], np.ndarray],
    distance: Callable[[np.ndarray, np.ndarray], float],
    tol: float,
    max_iter: int,
) -> tuple[np.ndarray, int, bool]:
    """Accelerated EM: SQUAREM (Varadhan & Roland 2008, Scand J Stat 35:335, scheme S3).

    Plain EM for variance components crawls when a person's data carry little information
    (e.g. a few drinking episodes); SQUAREM extrapolates two EM steps and falls back to the
    plain step when the extrapolation does not land on a valid parameter. ``max_iter``
    counts EM-map evaluations.
    """
    theta = theta0
    evals = 0
    while evals < max_iter:
        t1 = fixed_point(theta)
        evals += 1
        if distance(t1, theta) < tol:
            return t1, evals, True
        t2 = fixed_point(t1)
        evals += 1
        if distance(t2, t1) < tol:
            return t2, evals, True
        r = t1 - theta
        v = t2 - t1 - r
        nv = float(np.linalg.norm(v))
        alpha = -float(np.linalg.norm(r)) / nv if nv > 0 else -1.0
        alpha = min(alpha, -1.0)
        if alpha == -1.0:
            theta = t2
            continue
        prop = theta - 2 * alpha * r + alpha**2 * v
        try:
            new = fixed_point(prop)  # stabilising EM step from the extrapolated point
            evals += 1
            ok = bool(np.all(np.isfinite(new)))
        except (np.linalg.LinAlgError, FloatingPointError):
            ok = False
        theta = new if ok else t2
    return theta, evals, False


def _pack(mu: np.ndarray, t: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
    parts = [mu, t.ravel()]
    if extra is not None:
        parts.append(extra)
    return np.concatenate(parts)


def _unpack(theta: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return theta[:k], theta[k : k + k * k].reshape(k, k), theta[k + k * k :]


def _hyper_distance(k: int, scale: float) -> Callable[[np.ndarray, np.ndarray], float]:
    """Largest change of ``mu / scale`` and of ``T / scale^2`` between two parameter vectors.

    Measured on the variance scale (not on ``sqrt(diag T)``): near a zero between-person
    variance EM creeps towards the boundary, and a criterion on the SD would then never be
    met although nothing a user sees still changes.
    """

    def dist(a: np.ndarray, b: np.ndarray) -> float:
        mua, ta, _ = _unpack(a, k)
        mub, tb, _ = _unpack(b, k)
        return max(
            float(np.max(np.abs(mua - mub))) / scale,
            float(np.max(np.abs(ta - tb))) / scale**2,
        )

    return dist


def fit_craving_mixed(
    cells: CueCells,
    *,
    residual_variance: Literal["per_person", "pooled"] = "per_person",
    prior_df: float = 4.0,
    tol: float = 1e-8,
    max_iter: int = 3000,
    var_floor: float = 1e-6,
    between_cov: Literal["auto", "full", "diagonal"] = "auto",
) -> MixedFit:
    """Random-intercept, random-slopes linear mixed model of craving, by ML-EM (SQUAREM).

    Parameters
    ----------
    cells
        From :func:`cue_cells`.
    residual_variance
        ``"per_person"`` (default): each person's residual variance, shrunk towards the pooled
        one with ``prior_df`` pseudo-entries; ``"pooled"``: one residual variance (exactly the
        model of statsmodels MixedLM).
    prior_df
        ASSUMPTION: 4 pseudo-entries of prior weight on the pooled residual variance, a weak
        scaled-inverse-chi-square prior (a person with 50 entries keeps >90% own weight)
        that only guards people with very few answers.
    tol
        Convergence: largest change of ``mu`` in units of the pooled residual SD and of ``T``
        in units of the pooled residual variance between EM steps.
    max_iter
        Cap on EM-map evaluations; if reached the estimate is still valid but
        ``converged`` is False.
    var_floor
        Smallest eigenvalue of ``T`` (points^2), keeps ``T^-1`` finite.
    between_cov
        Structure of ``T``: ``"full"`` (correlated person effects: someone who reacts to the
        pub also tends to react to social events), ``"diagonal"``, or ``"auto"`` (default):
        full when there are at least :data:`PERSONS_PER_COEF_FOR_FULL_COV` participants per
        coefficient, else diagonal, since a full ``K x K`` covariance from few people is
        near-singular and would make intervals falsely narrow.
    """
    if residual_variance not in ("per_person", "pooled"):
        raise InputError(
            f"residual_variance = {residual_variance!r}; allowed: 'per_person', 'pooled'"
        )
    p = cells.n_participants
    design = cells.design
    k = design.shape[1]
    outer = _pattern_outer(design)
    diagonal = _diagonal_cov(between_cov, p, k)
    a = np.asarray(cells.person_matrix(cells.n_craving) @ outer).reshape(p, k, k)
    b = np.asarray(cells.person_matrix(cells.sum_craving) @ design)
    cyy = np.bincount(cells.cell_person, weights=cells.sumsq_craving, minlength=p)
    n_p = np.bincount(cells.cell_person, weights=cells.n_craving, minlength=p)
    n_tot = float(n_p.sum())
    if n_tot < k + 1:
        raise InputError(
            f"only {int(n_tot)} craving answers for {k - 1} cue classes: too few to fit"
        )

    def posterior(mu: np.ndarray, t: np.ndarray, s2: np.ndarray):
        t = _floor_psd(t, var_floor)
        t_inv = np.linalg.inv(t)
        post_cov = np.linalg.inv(a / s2[:, None, None] + t_inv[None])
        mean = np.einsum("pij,pj->pi", post_cov, b / s2[:, None] + (t_inv @ mu)[None])
        return mean, post_cov, t, t_inv

    def em_map(theta: np.ndarray) -> np.ndarray:
        mu, t, s2 = _unpack(theta, k)
        s2 = np.maximum(s2, 1e-9)
        mean, post_cov, _, _ = posterior(mu, t, s2)
        mu_new = mean.mean(axis=0)
        dev = mean - mu_new
        t_new = (dev.T @ dev + post_cov.sum(axis=0)) / p
        if diagonal:
            t_new = np.diag(np.diag(t_new))
        rss = (
            cyy
            - 2 * np.einsum("pk,pk->p", mean, b)
            + np.einsum("pi,pij,pj->p", mean, a, mean)
            + np.einsum("pij,pji->p", a, post_cov)
        )
        rss = np.maximum(rss, 0.0)
        s2_pool = max(float(rss.sum()) / n_tot, 1e-9)
        if residual_variance == "pooled":
            s2_new = np.full(p, s2_pool)
        else:
            s2_new = (rss + prior_df * s2_pool) / (n_p + prior_df)
        return _pack(mu_new, 0.5 * (t_new + t_new.T), s2_new)

    # start: pooled OLS for mu and sigma^2; T = residual variance (a wide start)
    a_sum = a.sum(axis=0)
    mu0 = np.linalg.lstsq(a_sum, b.sum(axis=0), rcond=None)[0]
    rss0 = float(cyy.sum() - 2 * mu0 @ b.sum(axis=0) + mu0 @ a_sum @ mu0)
    s2_0 = max(rss0 / max(n_tot - k, 1.0), 1e-6)
    theta0 = _pack(mu0, np.eye(k) * s2_0, np.full(p, s2_0))
    theta, n_iter, converged = _squarem(
        theta0, em_map, _hyper_distance(k, float(np.sqrt(s2_0))), tol, max_iter
    )
    mu, t, s2 = _unpack(theta, k)
    s2 = np.maximum(s2, 1e-9)
    mean, post_cov, t, t_inv = posterior(mu, t, s2)
    full_cov = _mu_correction(post_cov, t_inv)
    return MixedFit(mean, full_cov, mu, t, np.sqrt(s2), n_iter, converged)


def fit_drinking_mixed(
    cells: CueCells,
    *,
    tol: float = 1e-6,
    max_iter: int = 1000,
    var_floor: float = 1e-4,
    max_step: float = 4.0,
    between_cov: Literal["auto", "full", "diagonal"] = "auto",
    engine: Literal["numba", "numpy"] = "numba",
) -> MixedFit:
    """Random-intercept, random-slopes logistic mixed model of drinking, by Laplace-EM.

    Parameters
    ----------
    cells
        From :func:`cue_cells` (uses ``n_drink``, ``k_drink``).
    tol
        Convergence: largest change of ``mu`` (log-odds) and of ``T`` (log-odds^2).
    max_iter
        Cap on EM-map evaluations.
    var_floor
        Smallest eigenvalue of ``T`` (log-odds^2).
    max_step
        Largest Newton step per coefficient (log-odds); damps the first steps.
    between_cov
        Structure of ``T``: ``"full"`` (correlated person effects: someone who reacts to the
        pub also tends to react to social events), ``"diagonal"``, or ``"auto"`` (default):
        full when there are at least :data:`PERSONS_PER_COEF_FOR_FULL_COV` participants per
        coefficient, else diagonal, since a full ``K x K`` covariance from few people is
        near-singular and would make intervals falsely narrow.
    engine
        ``"numba"`` (default): per-person Newton-Raphson in a compiled loop over each
        person's cells; ``"numpy"``: the same iteration vectorised over persons with sparse
        matrices (slower; the test oracle of the kernel).
    """
    if engine not in ("numba", "numpy"):
        raise InputError(f"engine = {engine!r}; allowed: 'numba', 'numpy'")
    p = cells.n_participants
    design = cells.design
    k = design.shape[1]
    outer = _pattern_outer(design)
    diagonal = _diagonal_cov(between_cov, p, k)
    nd, kd = cells.n_drink, cells.k_drink
    if nd.sum() < k + 1:
        raise InputError(
            f"only {int(nd.sum())} entries with a known drinking outcome for {k - 1} cue "
            "classes: too few to fit"
        )
    zc = design[cells.cell_pattern]  # (M, K)
    kd_x = np.asarray(cells.person_matrix(kd) @ design)  # (P, K)

    def hessian(beta: np.ndarray, t_inv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        eta = np.einsum("mk,mk->m", zc, beta[cells.cell_person])
        pi = expit(eta)
        w = nd * pi * (1 - pi)
        hess = np.asarray(cells.person_matrix(w) @ outer).reshape(p, k, k) + t_inv[None]
        return hess, pi

    cell_ptr = np.zeros(p + 1, dtype=np.int64)
    np.cumsum(np.bincount(cells.cell_person, minlength=p), out=cell_ptr[1:])
    nz_count = (design != 0).sum(axis=1).astype(np.int64)
    nz_index = np.zeros(design.shape, dtype=np.int64)
    for g_row, row in enumerate(design != 0):
        cols = np.flatnonzero(row)
        nz_index[g_row, : len(cols)] = cols

    def modes(mu: np.ndarray, t_inv: np.ndarray, beta: np.ndarray, max_newton: int):
        """Posterior modes by Newton-Raphson, and inverse Hessians (numba kernel, or the
        vectorised numpy path that is its test oracle)."""
        if engine == "numba":
            beta = np.ascontiguousarray(beta, dtype=np.float64).copy()
            post_cov = _newton_kernel(
                cell_ptr, cells.cell_pattern, nz_index, nz_count, nd, kd, mu, t_inv, beta,
                max_newton, max_step, 1e-9,
            )
            return beta, post_cov
        for _ in range(max_newton):
            hess, pi = hessian(beta, t_inv)
            grad = kd_x - np.asarray(cells.person_matrix(nd * pi) @ design)
            grad -= (beta - mu) @ t_inv.T
            step = np.linalg.solve(hess, grad[:, :, None])[:, :, 0]
            step = np.clip(step, -max_step, max_step)
            beta = beta + step
            if float(np.max(np.abs(step))) < 1e-9:
                break
        hess, _ = hessian(beta, t_inv)
        return beta, np.linalg.inv(hess)

    # start: pooled logistic intercept; T = 1 log-odds^2 (ASSUMPTION: a wide start)
    rate = (kd.sum() + 0.5) / (nd.sum() + 1.0)
    mu0 = np.zeros(k)
    mu0[0] = np.log(rate / (1 - rate))
    state = {"beta": np.tile(mu0, (p, 1))}

    def em_map(theta: np.ndarray) -> np.ndarray:
        mu, t, _ = _unpack(theta, k)
        t = _floor_psd(t, var_floor)
        t_inv = np.linalg.inv(t)
        beta, post_cov = modes(mu, t_inv, state["beta"], 25)
        state["beta"] = beta
        mu_new = beta.mean(axis=0)
        dev = beta - mu_new
        t_new = (dev.T @ dev + post_cov.sum(axis=0)) / p
        if diagonal:
            t_new = np.diag(np.diag(t_new))
        return _pack(mu_new, 0.5 * (t_new + t_new.T))

    theta, n_iter, converged = _squarem(
        _pack(mu0, np.eye(k)), em_map, _hyper_distance(k, 1.0), tol, max_iter
    )
    mu, t, _ = _unpack(theta, k)
    t = _floor_psd(t, var_floor)
    t_inv = np.linalg.inv(t)
    beta, post_cov = modes(mu, t_inv, state["beta"], 50)
    full_cov = _mu_correction(post_cov, t_inv)
    return MixedFit(beta, full_cov, mu, t, np.full(p, np.nan), n_iter, converged)


@numba.njit(cache=True)
def _newton_kernel(
    cell_ptr: np.ndarray,
    cell_pattern: np.ndarray,
    nz_index: np.ndarray,
    nz_count: np.ndarray,
    n_trials: np.ndarray,
    n_events: np.ndarray,
    mu: np.ndarray,
    t_inv: np.ndarray,
    beta: np.ndarray,
    max_newton: int,
    max_step: float,
    tol: float,
) -> np.ndarray:  # pragma: no cover - compiled; tested against the numpy path
    """Per-person posterior modes (updated in ``beta``) and inverse Hessians, (P, K, K).

    ``nz_index[g, :nz_count[g]]`` are the columns where design row ``g`` is 1 (rows are 0/1).

    For person ``p`` (cells ``cell_ptr[p]:cell_ptr[p+1]``) maximise
    ``sum_m [k_m eta_m - n_m log(1 + e^eta_m)] - (b - mu)' T^-1 (b - mu) / 2`` by Newton
    steps clipped to ``max_step``, until the largest step is below ``tol``.
    """
    n_p, k = beta.shape
    out = np.empty((n_p, k, k))
    hess = np.empty((k, k))
    chol = np.empty((k, k))
    grad = np.empty(k)
    step = np.empty(k)
    unit = np.empty(k)
    for p in range(n_p):
        b = beta[p].copy()
        done = False
        for it in range(max_newton + 1):
            d = b - mu
            for i in range(k):
                acc = 0.0
                for j in range(k):
                    hess[i, j] = t_inv[i, j]
                    acc += t_inv[i, j] * d[j]
                grad[i] = -acc
            for m in range(cell_ptr[p], cell_ptr[p + 1]):
                # design rows are 0/1: visit only the intercept and the cues present
                g = cell_pattern[m]
                cnt = nz_count[g]
                eta = 0.0
                for a in range(cnt):
                    eta += b[nz_index[g, a]]
                pi = 1.0 / (1.0 + np.exp(-eta))
                w = n_trials[m] * pi * (1.0 - pi)
                r = n_events[m] - n_trials[m] * pi
                for a in range(cnt):
                    i = nz_index[g, a]
                    grad[i] += r
                    for c2 in range(cnt):
                        hess[i, nz_index[g, c2]] += w
            if done or it == max_newton:
                break
            _cholesky(hess, chol)
            _chol_solve(chol, grad, step)
            big = 0.0
            for i in range(k):
                s_i = min(max(step[i], -max_step), max_step)
                b[i] += s_i
                big = max(big, abs(s_i))
            if big < tol:
                done = True  # one more pass computes the Hessian at the final mode
        beta[p] = b
        _cholesky(hess, chol)
        for j in range(k):
            for i in range(k):
                unit[i] = 1.0 if i == j else 0.0
            _chol_solve(chol, unit, step)
            for i in range(k):
                out[p, i, j] = step[i]
    return out


@numba.njit(cache=True)
def _cholesky(a: np.ndarray, low: np.ndarray) -> None:  # pragma: no cover - compiled
    """Lower Cholesky factor of the small SPD matrix ``a`` into ``low`` (no allocation)."""
    k = a.shape[0]
    for j in range(k):
        acc = a[j, j]
        for m in range(j):
            acc -= low[j, m] * low[j, m]
        ljj = np.sqrt(max(acc, 1e-300))
        low[j, j] = ljj
        for i in range(j + 1, k):
            acc = a[i, j]
            for m in range(j):
                acc -= low[i, m] * low[j, m]
            low[i, j] = acc / ljj
        for i in range(j):
            low[i, j] = 0.0


@numba.njit(cache=True)
def _chol_solve(low: np.ndarray, rhs: np.ndarray, x: np.ndarray) -> None:  # pragma: no cover
    """Solve ``L L' x = rhs`` by forward and back substitution (no allocation)."""
    k = low.shape[0]
    for i in range(k):
        acc = rhs[i]
        for m in range(i):
            acc -= low[i, m] * x[m]
        x[i] = acc / low[i, i]
    for i in range(k - 1, -1, -1):
        acc = x[i]
        for m in range(i + 1, k):
            acc -= low[m, i] * x[m]
        x[i] = acc / low[i, i]
