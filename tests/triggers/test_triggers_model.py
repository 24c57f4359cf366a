"""Mixed-model engine: statsmodels MixedLM as oracle, per-person closed forms from raw rows,
the logistic posterior modes against scipy, shrinkage and separation behaviour."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit

from reconsolidate.triggers import (
    build_diary,
    cells_from_diary,
    cue_cells,
    fit_craving_mixed,
    fit_drinking_mixed,
    simulate_diary,
)


def _small_panel(seed: int = 5, n_people: int = 30, n_rows: int = 40):
    rng = np.random.default_rng(seed)
    pid = np.repeat(np.arange(n_people), n_rows)
    x = rng.random((n_people * n_rows, 2)) < 0.35
    slopes = np.column_stack(
        [20 + 5 * rng.standard_normal(n_people), 8 + 6 * rng.standard_normal(n_people),
         3 + 4 * rng.standard_normal(n_people)]
    )
    noise = 7 * rng.standard_normal(len(pid))
    y = slopes[pid, 0] + np.einsum("nc,nc->n", x, slopes[pid, 1:]) + noise
    return pid, x, y


def test_pooled_model_equals_statsmodels_mixedlm_ml() -> None:
    """Oracle: with one residual variance the model IS MixedLM's random-slopes model; both are
    ML fits of the same likelihood, so hyper-parameters and BLUPs agree up to optimiser
    tolerance (EM stops at a 1e-10 change; MixedLM's L-BFGS at its own gradient tolerance,
    which leaves ~1e-3 points^2 in T): 1e-4 points on means and SDs, 1e-3 on BLUPs and 1e-2
    points^2 on T entries (of size 10-40) are far below any reported digit."""
    import pandas as pd
    import statsmodels.formula.api as smf

    pid, x, y = _small_panel()
    cells = cue_cells(pid, x, y, np.full(len(y), np.nan), 30)
    fit = fit_craving_mixed(cells, residual_variance="pooled", tol=1e-10, max_iter=20000)
    assert fit.converged
    df = pd.DataFrame({"y": y, "x1": x[:, 0].astype(float), "x2": x[:, 1].astype(float), "g": pid})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm = smf.mixedlm("y ~ x1 + x2", df, groups="g", re_formula="~x1 + x2").fit(
            reml=False, method=["lbfgs"], maxiter=2000
        )
    np.testing.assert_allclose(fit.mu, sm.fe_params.to_numpy(), atol=1e-4)
    np.testing.assert_allclose(fit.between_cov, sm.cov_re.to_numpy(), atol=1e-2)
    np.testing.assert_allclose(fit.residual_sd, np.sqrt(sm.scale), atol=1e-4)
    blup = np.array([sm.random_effects[g].to_numpy() for g in range(30)]) + sm.fe_params.to_numpy()
    np.testing.assert_allclose(fit.mean, blup, atol=1e-3)


def test_posterior_means_match_per_person_closed_form_from_raw_rows() -> None:
    """Oracle for the cell aggregation: given the fitted (mu, T, sigma_p), each person's
    posterior computed from that person's raw rows with plain numpy equals the fast path."""
    pid, x, y = _small_panel(seed=9, n_people=12)
    y = y.copy()
    y[::7] = np.nan  # missing answers
    fit = fit_craving_mixed(cue_cells(pid, x, y, np.full(len(y), np.nan), 12))
    t_inv = np.linalg.inv(fit.between_cov)
    for p in range(12):
        rows = (pid == p) & ~np.isnan(y)
        xd = np.column_stack([np.ones(rows.sum()), x[rows]])
        s2 = fit.residual_sd[p] ** 2
        prec = xd.T @ xd / s2 + t_inv
        mean = np.linalg.solve(prec, xd.T @ y[rows] / s2 + t_inv @ fit.mu)
        np.testing.assert_allclose(fit.mean[p], mean, rtol=1e-9, atol=1e-9)
        # the reported covariance adds the uncertainty of mu: never smaller than the posterior
        assert np.all(np.diag(fit.cov[p]) >= np.diag(np.linalg.inv(prec)) - 1e-12)


def test_logistic_modes_match_scipy_on_raw_rows() -> None:
    syn = simulate_diary(25, 4, seed=2)
    d = build_diary(syn.columns)
    fit = fit_drinking_mixed(cells_from_diary(d))
    assert fit.converged
    t_inv = np.linalg.inv(fit.between_cov)
    dn = d.drank_next()
    for p in (0, 7, 19):
        rows = (d.participant_index == p) & ~np.isnan(dn)
        xd = np.column_stack([np.ones(rows.sum()), d.exposure[rows]])
        yy = dn[rows]

        def negpost(b, xd=xd, yy=yy):
            eta = xd @ b
            r = b - fit.mu
            return -(yy @ eta - np.logaddexp(0, eta).sum()) + 0.5 * r @ t_inv @ r

        def grad(b, xd=xd, yy=yy):
            return -(xd.T @ (yy - expit(xd @ b))) + t_inv @ (b - fit.mu)

        res = minimize(negpost, fit.mu, jac=grad, method="BFGS", options={"gtol": 1e-10})
        np.testing.assert_allclose(fit.mean[p], res.x, atol=1e-5)


def test_shrinkage_follows_the_amount_of_own_data() -> None:
    """A person with few entries is pulled towards the population mean more than one with
    many; a person without any craving answer gets exactly the population mean."""
    pid, x, y = _small_panel(seed=3, n_people=20)
    keep = (pid != 0) | (np.arange(len(pid)) % 40 < 5)  # person 0: only 5 entries
    y2 = np.where(pid == 1, np.nan, y)  # person 1: no craving answers at all
    cells = cue_cells(pid[keep], x[keep], y2[keep], np.full(keep.sum(), np.nan), 20)
    fit = fit_craving_mixed(cells)
    share = fit.own_data_share()
    assert np.all(share[0] < share[2:].min(axis=0))
    np.testing.assert_allclose(fit.mean[1], fit.mu, atol=1e-9)
    assert np.all(share[1] < 1e-6)


def test_separation_gives_finite_estimates() -> None:
    """Someone who drank after every pub entry (and never otherwise) has an infinite ML
    slope; the population prior keeps the estimate finite and positive."""
    syn = simulate_diary(30, 4, seed=4)
    d = build_diary(syn.columns)
    dn = d.drank_next()
    j = d.cues.index("pub_bar")
    p0 = d.participant_index == 0
    dn[p0] = np.where(d.exposure[p0, j], 1.0, 0.0)
    dn[p0 & (np.r_[d.participant_index[1:], -1] != 0)] = np.nan
    cells = cue_cells(d.participant_index, d.exposure, d.craving_0_100, dn, d.n_participants)
    fit = fit_drinking_mixed(cells)
    assert np.all(np.isfinite(fit.mean)) and np.all(np.isfinite(fit.cov))
    assert fit.mean[0, j + 1] > np.max(np.delete(fit.mean[:, j + 1], 0))


def test_residual_variance_choice_is_validated() -> None:
    from reconsolidate.exceptions import InputError

    pid, x, y = _small_panel(n_people=3, n_rows=10)
    cells = cue_cells(pid, x, y, np.full(len(y), np.nan), 3)
    with pytest.raises(InputError, match="allowed: 'per_person', 'pooled'"):
        fit_craving_mixed(cells, residual_variance="robust")  # type: ignore[arg-type]
    few = cue_cells(pid[:2], x[:2], y[:2], np.full(2, np.nan), 1)
    with pytest.raises(InputError, match="too few to fit"):
        fit_craving_mixed(few)


def test_numba_newton_kernel_matches_the_vectorised_numpy_path() -> None:
    """Oracle for the compiled fast path: the same Laplace-EM with the numpy engine (the
    kernel stops each person at a 1e-9 step, numpy all at once: ~1e-8 differences)."""
    syn = simulate_diary(60, 6, seed=13)
    cells = cells_from_diary(build_diary(syn.columns))
    fast = fit_drinking_mixed(cells)
    slow = fit_drinking_mixed(cells, engine="numpy")
    assert fast.n_iter == slow.n_iter
    np.testing.assert_allclose(fast.mean, slow.mean, atol=1e-7)
    np.testing.assert_allclose(fast.cov, slow.cov, atol=1e-7)
    np.testing.assert_allclose(fast.between_cov, slow.between_cov, atol=1e-7)


def test_profiles_do_not_depend_on_participant_order() -> None:
    """Exchangeability: reversing the order in which participants appear in the file
    permutes the rows of the result and changes nothing else."""
    from reconsolidate.triggers import TriggerModel

    syn = simulate_diary(40, 3, seed=17)
    cols = syn.columns
    pid = cols["participant_id"]
    order = np.lexsort((np.arange(len(pid)), -np.searchsorted(syn.participant_ids, pid)))
    rev = {k: v[order] for k, v in cols.items()}
    a = TriggerModel().fit(build_diary(cols))
    b = TriggerModel().fit(build_diary(rev))
    assert list(b.participant_ids) == list(a.participant_ids[::-1])
    np.testing.assert_allclose(b.craving.mean[::-1], a.craving.mean, atol=1e-7)
    np.testing.assert_allclose(b.drinking.mean[::-1], a.drinking.mean, atol=1e-6)
    assert np.array_equal(b.rank[::-1], a.rank)
