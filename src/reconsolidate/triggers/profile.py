"""Trigger profiles: ranked per-person cue effects with intervals and a retrieval-cue choice.

:class:`TriggerModel` is the fitter (scikit-learn style: the constructor stores settings,
:meth:`TriggerModel.fit` validates and fits), :class:`TriggerProfiles` the result.

Ranking and recommendation
--------------------------
Cues are ranked by their posterior mean effect on craving (points on the 0-100 scale), the
direct read-out of the cue's memory that a retrieval session reactivates; the effect on the
odds of drinking is reported beside it. A cue is *recommended* for the retrieval session if

* its interval's lower bound exceeds ``min_effect_points`` (the person's craving reliably rises
  by more than that when the cue is present), and
* its evidence is not thin (below), and
* it is among the ``top_k`` strongest such cues.

Evidence is *thin* when the cue was present at fewer than ``min_exposures`` entries, or when
less than ``min_own_data_share`` of the estimate's precision comes from the person's own
entries (``1 - posterior variance / between-person variance``): such an estimate is mostly the
population average and says little about this person. When no cue qualifies the list is
empty and the clinician falls back to generic alcohol cues (reported as ``"fallback"``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from reconsolidate.exceptions import DomainWarning, InputError
from reconsolidate.triggers.diary import EMADiary
from reconsolidate.triggers.model import (
    CueCells,
    MixedFit,
    cells_from_diary,
    fit_craving_mixed,
    fit_drinking_mixed,
)

__all__ = ["TriggerModel", "TriggerProfiles"]

#: Fewer participants than this: the between-person covariance is poorly determined.
MIN_PARTICIPANTS_FOR_POOLING = 5
#: Fewer drinking episodes (or non-drinking outcomes) than this: no drinking model is fitted.
MIN_DRINK_OUTCOMES = 5


@dataclass(frozen=True)
class TriggerProfiles:
    """Fitted trigger profiles of every participant (arrays over participants x cues).

    Attributes
    ----------
    participant_ids
        ``(P,)``.
    cues
        ``(C,)`` cue class names.
    level
        Interval probability (e.g. 0.95).
    craving
        The craving model fit (coefficient 0 = intercept).
    drinking
        The drinking model fit, or None when the diary has too few drinking outcomes.
    exposures
        ``(P, C)`` entries at which each cue was present.
    n_entries
        ``(P,)`` entries per participant.
    rank
        ``(P, C)`` cue indices, strongest craving effect first.
    thin
        ``(P, C)`` bool, evidence too thin (see module docstring).
    recommended
        ``(P, C)`` bool, cue recommended for the retrieval session.
    settings
        The :class:`TriggerModel` settings used.
    unmapped_tags
        Tags in the diary that the mapping neither mapped nor ignored, with counts.
    """

    participant_ids: np.ndarray
    cues: tuple[str, ...]
    level: float
    craving: MixedFit
    drinking: MixedFit | None
    exposures: np.ndarray
    n_entries: np.ndarray
    rank: np.ndarray
    thin: np.ndarray
    recommended: np.ndarray
    settings: dict[str, Any]
    unmapped_tags: dict[str, int]

    @property
    def craving_effect(self) -> np.ndarray:
        """``(P, C)`` posterior mean craving effect, points on the 0-100 scale."""
        return self.craving.mean[:, 1:]

    def craving_interval(self) -> tuple[np.ndarray, np.ndarray]:
        """``(P, C)`` lower and upper interval bounds of the craving effects (points)."""
        lo, hi = self.craving.interval(self.level)
        return lo[:, 1:], hi[:, 1:]

    def own_data_share(self) -> np.ndarray:
        """``(P, C)`` share of each craving estimate's precision from the person's own data."""
        return self.craving.own_data_share()[:, 1:]

    def index_of(self, participant_id: str) -> int:
        """Row of a participant; unknown ids raise :class:`InputError` listing some valid ones."""
        hits = np.flatnonzero(self.participant_ids == str(participant_id))
        if not len(hits):
            some = ", ".join(map(str, self.participant_ids[:10]))
            more = " ..." if len(self.participant_ids) > 10 else ""
            raise InputError(
                f"participant {participant_id!r} is not in the diary (participants: {some}{more})"
            )
        return int(hits[0])

    def profile(self, participant_id: str) -> dict[str, Any]:
        """One participant's profile as JSON-ready data (triggers strongest first)."""
        return self._profiles([self.index_of(participant_id)])[str(participant_id)]

    def _profiles(self, rows: list[int] | np.ndarray) -> dict[str, dict[str, Any]]:
        lo, hi = self.craving_interval()
        eff = self.craving_effect
        share = self.own_data_share()
        if self.drinking is not None:
            dlo, dhi = self.drinking.interval(self.level)
            dmean = self.drinking.mean
        min_exp = self.settings["min_exposures"]
        min_share = self.settings["min_own_data_share"]
        out: dict[str, dict[str, Any]] = {}
        for i in rows:
            triggers = []
            for j in self.rank[i]:
                reason = None
                if self.thin[i, j]:
                    parts = []
                    if self.exposures[i, j] < min_exp:
                        parts.append(f"only {int(self.exposures[i, j])} exposures (< {min_exp})")
                    if share[i, j] < min_share:
                        parts.append(
                            f"own-data share {share[i, j]:.2f} < {min_share}: "
                            "mostly the population average"
                        )
                    reason = "; ".join(parts)
                item: dict[str, Any] = {
                    "cue": self.cues[j],
                    "effect": round(float(eff[i, j]), 3),
                    "interval": [round(float(lo[i, j]), 3), round(float(hi[i, j]), 3)],
                    "exposures": int(self.exposures[i, j]),
                    "own_data_share": round(float(share[i, j]), 3),
                    "thin_evidence": bool(self.thin[i, j]),
                    "thin_reason": reason,
                    "recommended": bool(self.recommended[i, j]),
                }
                if self.drinking is not None:
                    item["drink_log_odds"] = round(float(dmean[i, j + 1]), 4)
                    item["drink_interval"] = [
                        round(float(dlo[i, j + 1]), 4),
                        round(float(dhi[i, j + 1]), 4),
                    ]
                    item["drink_odds_ratio"] = round(float(np.exp(dmean[i, j + 1])), 4)
                triggers.append(item)
            rec = [self.cues[j] for j in self.rank[i] if self.recommended[i, j]]
            out[str(self.participant_ids[i])] = {
                "n_entries": int(self.n_entries[i]),
                "baseline_craving": round(float(self.craving.mean[i, 0]), 3),
                "residual_sd": round(float(self.craving.residual_sd[i]), 3),
                "triggers": triggers,
                "recommended_retrieval_cues": rec,
                "fallback": None if rec else "generic alcohol cues (no personal trigger qualifies)",
            }
        return out

    def to_dict(self, participants: list[str] | None = None) -> dict[str, Any]:
        """All (or the named) participants' profiles plus population estimates and units."""
        rows = (
            np.arange(len(self.participant_ids))
            if participants is None
            else [self.index_of(p) for p in participants]
        )
        tsd = np.sqrt(np.diag(self.craving.between_cov))
        pop: dict[str, Any] = {
            c: {
                "mean_effect": round(float(self.craving.mu[j + 1]), 3),
                "between_person_sd": round(float(tsd[j + 1]), 3),
            }
            for j, c in enumerate(self.cues)
        }
        if self.drinking is not None:
            dsd = np.sqrt(np.diag(self.drinking.between_cov))
            for j, c in enumerate(self.cues):
                pop[c]["mean_drink_log_odds"] = round(float(self.drinking.mu[j + 1]), 4)
                pop[c]["between_person_sd_drink_log_odds"] = round(float(dsd[j + 1]), 4)
        return {
            "participants": self._profiles(rows),
            "cues": list(self.cues),
            "population": pop,
            "level": self.level,
            "units": {
                "effect": "craving points (0-100 scale) when the cue is present",
                "drink_log_odds": "log odds ratio of drinking before the next entry",
            },
            "method": "empirical-Bayes random-slopes mixed models (craving: linear, ML-EM; "
            "drinking: logistic, Laplace-EM); see docs/triggers.md",
            "settings": self.settings,
            "converged": {
                "craving": self.craving.converged,
                "drinking": None if self.drinking is None else self.drinking.converged,
            },
            "unmapped_tags": self.unmapped_tags,
        }


class TriggerModel:
    """Fitter of personal trigger profiles by partial pooling across participants.

    Parameters
    ----------
    level
        Interval probability, in (0, 1); default 0.95.
    min_effect_points
        ASSUMPTION: 5 craving points (0-100 scale) is the smallest cue effect worth building a
        retrieval session around (a quarter of a typical 20-point between-situation craving
        spread); a recommended cue's lower bound must exceed it.
    top_k
        ASSUMPTION: at most 3 personal cues per retrieval session, enough to fill a
        short session as in lab retrieval procedures (Das 2019 used one drink cue).
    min_exposures
        Fewer exposures than this flag a cue as thin evidence (ASSUMPTION: 5).
    min_own_data_share
        Less of the estimate's precision from the person's own data than this flags a cue as
        thin evidence (ASSUMPTION: 0.5, i.e. the estimate is more borrowed than observed).
    residual_variance
        ``"per_person"`` or ``"pooled"`` craving noise (see :func:`fit_craving_mixed`).
    fit_drinking
        Also fit the drinking model.
    between_cov
        Between-person covariance structure, ``"auto"``, ``"full"`` or ``"diagonal"``
        (see :func:`~reconsolidate.triggers.model.fit_craving_mixed`).
    """

    def __init__(
        self,
        level: float = 0.95,
        min_effect_points: float = 5.0,
        top_k: int = 3,
        min_exposures: int = 5,
        min_own_data_share: float = 0.5,
        residual_variance: Literal["per_person", "pooled"] = "per_person",
        fit_drinking: bool = True,
        between_cov: Literal["auto", "full", "diagonal"] = "auto",
    ) -> None:
        self.level = level
        self.min_effect_points = min_effect_points
        self.top_k = top_k
        self.min_exposures = min_exposures
        self.min_own_data_share = min_own_data_share
        self.residual_variance = residual_variance
        self.fit_drinking = fit_drinking
        self.between_cov = between_cov

    def _validate(self) -> None:
        if not 0 < self.level < 1:
            raise InputError(f"level = {self.level}; allowed: 0 < level < 1 (e.g. 0.95)")
        if self.top_k < 1:
            raise InputError(f"top_k = {self.top_k}; allowed: >= 1")
        if self.min_exposures < 0:
            raise InputError(f"min_exposures = {self.min_exposures}; allowed: >= 0")
        if not 0 <= self.min_own_data_share <= 1:
            raise InputError(
                f"min_own_data_share = {self.min_own_data_share}; allowed: 0 to 1"
            )
        if not np.isfinite(self.min_effect_points):
            raise InputError(f"min_effect_points = {self.min_effect_points}; must be finite")
        if self.between_cov not in ("auto", "full", "diagonal"):
            raise InputError(
                f"between_cov = {self.between_cov!r}; allowed: 'auto', 'full', 'diagonal'"
            )
        if self.residual_variance not in ("per_person", "pooled"):
            raise InputError(
                f"residual_variance = {self.residual_variance!r}; "
                "allowed: 'per_person', 'pooled'"
            )

    def settings(self) -> dict[str, Any]:
        """The settings as a dict."""
        return {
            "level": self.level,
            "min_effect_points": self.min_effect_points,
            "top_k": self.top_k,
            "min_exposures": self.min_exposures,
            "min_own_data_share": self.min_own_data_share,
            "residual_variance": self.residual_variance,
            "between_cov": self.between_cov,
        }

    def fit(self, diary: EMADiary) -> TriggerProfiles:
        """Fit profiles to a validated diary (see :func:`~reconsolidate.triggers.read_ema`)."""
        self._validate()
        if not diary.cues:
            raise InputError(f"{diary.source}: no entry carries a tag mapped to a cue class")
        cells = cells_from_diary(diary)
        n_entries = np.bincount(diary.participant_index, minlength=diary.n_participants)
        return self.fit_cells(
            cells, diary.participant_ids, diary.cues, n_entries, diary.unmapped_tags
        )

    def fit_cells(
        self,
        cells: CueCells,
        participant_ids: np.ndarray,
        cues: tuple[str, ...],
        n_entries: np.ndarray,
        unmapped_tags: dict[str, int] | None = None,
    ) -> TriggerProfiles:
        """Fit from pre-aggregated cells (:func:`~reconsolidate.triggers.model.cue_cells`)."""
        self._validate()
        p = cells.n_participants
        if p < MIN_PARTICIPANTS_FOR_POOLING:
            warnings.warn(
                f"{p} participant(s): partial pooling needs several people; with fewer than "
                f"{MIN_PARTICIPANTS_FOR_POOLING} the between-person spread is poorly "
                "determined and the estimates are close to each person's own regression",
                DomainWarning,
                stacklevel=2,
            )
        craving = fit_craving_mixed(
            cells, residual_variance=self.residual_variance, between_cov=self.between_cov
        )
        drinking = None
        if self.fit_drinking:
            k_tot, n_tot = float(cells.k_drink.sum()), float(cells.n_drink.sum())
            if min(k_tot, n_tot - k_tot) >= MIN_DRINK_OUTCOMES:
                drinking = fit_drinking_mixed(cells, between_cov=self.between_cov)
            else:
                warnings.warn(
                    f"only {int(k_tot)} drinking and {int(n_tot - k_tot)} non-drinking "
                    f"outcomes (< {MIN_DRINK_OUTCOMES}): the drinking model is not fitted",
                    DomainWarning,
                    stacklevel=2,
                )
        eff = craving.mean[:, 1:]
        lo = craving.interval(self.level)[0][:, 1:]
        share = craving.own_data_share()[:, 1:]
        rank = np.argsort(-eff, axis=1, kind="stable")
        thin = (cells.exposures < self.min_exposures) | (share < self.min_own_data_share)
        eligible = ~thin & (lo > self.min_effect_points)
        elig_sorted = np.take_along_axis(eligible, rank, axis=1)
        pos = np.cumsum(elig_sorted, axis=1)
        rec_sorted = elig_sorted & (pos <= self.top_k)
        recommended = np.zeros_like(eligible)
        np.put_along_axis(recommended, rank, rec_sorted, axis=1)
        return TriggerProfiles(
            participant_ids=np.asarray(participant_ids, dtype=object),
            cues=tuple(cues),
            level=float(self.level),
            craving=craving,
            drinking=drinking,
            exposures=cells.exposures,
            n_entries=np.asarray(n_entries, dtype=np.int64),
            rank=rank,
            thin=thin,
            recommended=recommended,
            settings=self.settings(),
            unmapped_tags=dict(unmapped_tags or {}),
        )
