"""Reference memory model: latent-cause-modulated Rescorla-Wagner with NMDA gates.

Reimplemented from the equations of Gershman, Monfils, Norman & Niv 2017 (eLife 6:e23763), as
summarised in the project's curated literature notes on memory models (not shipped; no code was
ported):

- prior over latent causes: distance-dependent CRP with a power-law kernel over the (hard MAP)
  assignments of earlier trials, ``P(k) ~ sum_i m_i K(t - t_i)``, ``P(new) ~ alpha``, with real
  time in hours, ``K(dt) = (dt + offset)^-g``;
- feature likelihood: Gaussian with a conjugate N(0, 1) prior on each cause mean;
- US read-out per cause ``w_k . x`` over the cue features (ASSUMPTION, a departure from the
  original: contexts select which memory is inferred through the feature likelihood but carry
  no reward weight, so that each cue's memory is its own, as in the population model and the
  cue specificity of Doyere 2007); conditioned response ``Phi((V - theta)/lambda)``;
- learning: EM with one iteration per ``em_iteration_period_min`` of interval after the
  trial (at most ``max_em_iterations``), Rescorla-Wagner M-step weighted by the posterior.

The protein-synthesis-inhibitor term of the original is replaced by NMDA mechanisms driven by
the pharmacology engine's occupancy time course (project extension, memory-models.md section 8):

- **destabilisation** (Ben Mamou 2006; Milton 2013; Sevenster 2013): after each trial a
  consolidated cause becomes labile in proportion to its posterior only if the trial carried a
  prediction error ``|r - V| >= threshold``; a cause still consolidating (mean trial time less
  than ``consolidation_window_tau_multiple`` (3) lability time constants ago) is labile
  whenever inferred; NMDA occupancy at the trial blocks both (Hill function);
- **restabilisation**: lability decays as ``exp(-dt/tau)``; NMDA occupancy weighted by that
  lability, ``I_w = int occ(t) L(t) dt``, removes ``D = D_max (1 - exp(-I_w/I_scale))`` of the
  labile cause's weights on the features present when it was destabilised, and of its trial
  mass (its hold on inference). A drug hours after retrieval meets no lability;
- a re-opened (destabilised, consolidated) cause keeps the inference while labile
  (``lability_prior_boost_per_h``), so that extinction in the window updates it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

from reconsolidate.memory.params import MemoryParams
from reconsolidate.memory.window import damage_fraction

__all__ = ["ReferenceModel", "TrialResult"]


@dataclass
class TrialResult:
    """What one trial did: prediction, response, posterior and assignment."""

    time_h: float
    prediction: float  # V, reward prediction of the existing memories
    response: float  # CR in [0, 1]
    prediction_error: float  # r - V (NaN for probes)
    posterior: NDArray[np.float64] = field(repr=False)  # over active causes (+ new)
    cause: int  # assigned cause, -1 for probes


class ReferenceModel:
    """LC-RW with NMDA-gated destabilisation and restabilisation, one subject.

    Parameters
    ----------
    n_features
        Number of stimulus features (cues and contexts), D.
    params
        Model parameters (:class:`MemoryParams`).

    Notes
    -----
    Call :meth:`trial` for each trial in time order (``time_h`` non-decreasing), :meth:`drug`
    to apply an NMDA occupancy time course, :meth:`response` to read out without learning.
    """

    def __init__(self, n_features: int, params: MemoryParams | None = None, *,
                 n_cues: int | None = None) -> None:
        self.params = params or MemoryParams()
        self.n_features = int(n_features)
        # features [0, n_cues) are cues and carry reward weights; the rest are contexts, which
        # enter the latent-cause inference (feature likelihood) but predict no reward
        self.n_cues = self.n_features if n_cues is None else int(n_cues)
        self.us_mask = np.zeros(self.n_features)
        self.us_mask[: self.n_cues] = 1.0
        kmax = self.params.max_causes
        self.w = np.zeros((kmax, self.n_features))
        self.count = np.zeros(kmax)  # N_k (scaled down by restabilisation damage)
        self.reward_sum = np.zeros(kmax)  # sum of rewards of the trials assigned to k
        self.feat_sum = np.zeros((kmax, self.n_features))  # S_kd
        self.n_causes = 0
        self.trial_time_h: list[float] = []
        self.trial_cause: list[int] = []
        self.trial_mass: list[float] = []
        self.lability = np.zeros(kmax)
        self.lability_features = np.zeros((kmax, self.n_features))
        self.reopened = np.zeros(kmax, dtype=bool)
        self.lability_time_h = 0.0
        self.time_h = 0.0

    # ------------------------------------------------------------------ inference pieces
    def _lability_now(self, time_h: float) -> NDArray[np.float64]:
        tau_h = self.params.lability_tau_min / 60.0
        return self.lability[: self.n_causes] * math.exp(-(time_h - self.lability_time_h) / tau_h)

    def _prior(self, time_h: float) -> NDArray[np.float64]:
        """Unnormalised prior over the active causes and a new one (last entry)."""
        p = self.params
        k = self.n_causes
        prior = np.zeros(k + 1)
        if self.trial_time_h:
            dt = time_h - np.asarray(self.trial_time_h)
            kern = np.maximum(dt + p.kernel_offset_h, p.kernel_offset_h) ** (-p.kernel_exponent)
            np.add.at(prior, np.asarray(self.trial_cause), kern * np.asarray(self.trial_mass))
        boost = np.where(self.reopened[:k], self._lability_now(time_h), 0.0)
        prior[:k] += p.lability_prior_boost_per_h * boost
        prior[:k] = np.where(self.count[:k] > 0, prior[:k], 0.0)
        prior[k] = p.new_cause_concentration_per_h if k < p.max_causes else 0.0
        return prior

    def _log_lik(self, x: NDArray[np.float64],
                 features: NDArray[np.bool_] | None = None) -> NDArray[np.float64]:
        """Log predictive density of features x (or a subset) under each cause and a new one."""
        sx = self.params.feature_variance
        k = self.n_causes
        n = np.append(self.count[:k], 0.0)[:, None]
        s = np.vstack([self.feat_sum[:k], np.zeros((1, self.n_features))])
        mean = s / (n + sx)
        var = sx / (n + sx) + sx
        terms = -0.5 * ((x - mean) ** 2 / var + np.log(2 * math.pi * var))
        if features is not None:
            terms = terms[:, features]
        return terms.sum(axis=1)

    def _predictive(self, x: NDArray[np.float64], time_h: float) -> NDArray[np.float64]:
        prior = self._prior(time_h)
        ll = self._log_lik(x)
        a = prior * np.exp(ll - ll.max())
        return a / a.sum()

    def _readout(self, q: NDArray[np.float64], x: NDArray[np.float64]) -> float:
        k = self.n_causes
        qs = q[:k].sum()
        if k == 0 or qs <= 0:
            return 0.0
        return float(q[:k] @ (self.w[:k] @ (x * self.us_mask)) / qs)

    def _cr(self, v: float) -> float:
        p = self.params
        return float(ndtr((v - p.cr_threshold) / p.cr_noise))

    # ------------------------------------------------------------------ public API
    def response(self, x: NDArray[np.float64], time_h: float) -> float:
        """Conditioned response to features ``x`` at ``time_h`` (no learning)."""
        x = np.asarray(x, dtype=np.float64)
        return self._cr(self._readout(self._predictive(x, time_h), x))

    def prediction(self, x: NDArray[np.float64], time_h: float) -> float:
        """Reward prediction V of the existing memories for features ``x`` at ``time_h``."""
        x = np.asarray(x, dtype=np.float64)
        return self._readout(self._predictive(x, time_h), x)

    def trial(
        self,
        x: NDArray[np.float64],
        reward: float,
        time_h: float,
        *,
        occupancy: float = 0.0,
        gap_to_next_min: float | None = None,
    ) -> TrialResult:
        """Present features ``x`` with US ``reward`` (1 drink, 0 omitted) at ``time_h``.

        Parameters
        ----------
        occupancy
            NMDA occupancy during the trial, in [0, 1] (blocks destabilisation).
        gap_to_next_min
            Minutes until the next trial (None: long, maximum EM iterations).
        """
        p = self.params
        x = np.asarray(x, dtype=np.float64)
        if time_h < self.time_h:
            raise ValueError("trials must be given in time order")
        self.time_h = time_h
        k = self.n_causes
        cue_free = not (x * self.us_mask).any()
        if cue_free and k > 0:
            # ASSUMPTION: an unsignalled reward (reinstatement) is explained by an existing
            # memory: the unobserved cue features are marginalised out and no new cause is
            # offered; the reward likelihood then picks the memory that predicts reward
            prior = self._prior(time_h)
            ll = self._log_lik(x, features=self.us_mask == 0)
            a = prior * np.exp(ll - ll.max())
            a[k] = 0.0
            q_pred = a / a.sum()
        else:
            q_pred = self._predictive(x, time_h)
        v = self._readout(q_pred, x)
        pe = reward - v
        w = np.vstack([self.w[:k], np.zeros((1, self.n_features))])
        if gap_to_next_min is None:
            n_iter = p.max_em_iterations
        else:
            n_iter = int(min(p.max_em_iterations,
                             max(1, round(gap_to_next_min / p.em_iteration_period_min))))
        q = q_pred
        xu = x * self.us_mask
        # a US without any cue (reinstatement) is attributed by each cause's reward rate
        rate = np.append(self.reward_sum[:k] / np.maximum(self.count[:k], 1e-12), 0.0)
        for _ in range(n_iter):
            pred = rate if cue_free else w @ xu
            e = q_pred * np.exp(-0.5 * (reward - pred) ** 2 / p.us_variance)
            q = e / e.sum()
            w += p.learning_rate * np.outer(q * (reward - pred), xu)
        self.w[:k] = w[:k]
        z = int(np.argmax(q))
        post = q[:k].copy()
        if z == k:  # a new cause
            if k < p.max_causes:
                self.w[k] = w[k]
                self.n_causes += 1
                post = q.copy()
            else:  # no slot left: fold into the most probable existing cause
                z = int(np.argmax(q[:k]))
                post[z] += q[k]
        self.count[z] += 1.0
        self.reward_sum[z] += reward
        self.feat_sum[z] += x
        self.trial_time_h.append(time_h)
        self.trial_cause.append(z)
        self.trial_mass.append(1.0)
        self._destabilise(post, x, pe, occupancy, time_h)
        return TrialResult(time_h, v, self._cr(v), pe, q, z)

    def _destabilise(self, q: NDArray[np.float64], x: NDArray[np.float64], pe: float,
                     occupancy: float, time_h: float) -> None:
        p = self.params
        k = self.n_causes
        tau_h = p.lability_tau_min / 60.0
        consolidating_h = p.consolidation_window_tau_multiple * tau_h
        block = 0.0
        if occupancy > 0:
            oh = occupancy**p.destabilization_block_hill
            block = oh / (oh + p.destabilization_block_occupancy50**p.destabilization_block_hill)
        pe_gate = 1.0 if abs(pe) >= p.destabilization_pe_threshold else 0.0
        times = np.asarray(self.trial_time_h)
        causes = np.asarray(self.trial_cause)
        post = q  # posterior of this trial over the causes that exist after it
        for j in range(k):
            mine = causes == j
            tmean = float(times[mine].mean()) if mine.any() else time_h
            consolidating = time_h - tmean < consolidating_h
            gate = 1.0 if consolidating else pe_gate
            self.lability[j] = post[j] * gate * (1.0 - block)
            self.reopened[j] = (not consolidating) and pe_gate > 0
            self.lability_features[j] = (x * self.us_mask != 0).astype(np.float64)
        self.lability_time_h = time_h

    def drug(self, weighted_occupancy_min: float) -> NDArray[np.float64]:
        """Apply NMDA occupancy weighted by ``exp(-(t - now)/tau)`` from the current time.

        ``weighted_occupancy_min`` is in occupancy x min (see
        :func:`reconsolidate.memory.window.window_weighted_occupancy_min`, with the retrieval
        time set to the current time). Returns the damage fraction per active cause.
        """
        k = self.n_causes
        lab = self._lability_now(self.time_h)
        d = damage_fraction(weighted_occupancy_min, lab, self.params)
        keep_feat = 1.0 - d[:, None] * self.lability_features[:k]
        self.w[:k] *= keep_feat
        # the cause's evidence (trial count, prior mass) loses the retrieved cues' part of it
        # only: a cause that also carries a cue not retrieved keeps that cue's share, so that
        # full damage erases the retrieved cue's memory and not the other's (Doyere 2007; with
        # the whole count cut, damage 1 removed the cause and the unretrieved cue with it:
        # paradigm review). The share is the retrieved cues' part of the cause's cue trials.
        cue_sum = self.feat_sum[:k] * self.us_mask
        total = cue_sum.sum(axis=1)
        share = np.where(total > 0,
                         (cue_sum * self.lability_features[:k]).sum(axis=1)
                         / np.where(total > 0, total, 1.0), 1.0)
        dm = d * share
        self.count[:k] *= 1.0 - dm
        self.reward_sum[:k] *= 1.0 - dm
        self.feat_sum[:k] *= 1.0 - d[:, None] * np.where(self.us_mask > 0,
                                                         self.lability_features[:k],
                                                         share[:, None])
        if self.trial_cause:
            causes = np.asarray(self.trial_cause)
            mass = np.asarray(self.trial_mass) * (1.0 - dm[causes])
            self.trial_mass = mass.tolist()
        return d

    def advance_to(self, time_h: float) -> None:
        """Move the clock to ``time_h`` (no learning)."""
        if time_h < self.time_h:
            raise ValueError("time cannot go backwards")
        self.time_h = time_h
