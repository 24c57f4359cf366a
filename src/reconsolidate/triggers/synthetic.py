"""Synthetic EMA diaries with planted, known per-person cue effects.

STAND-IN GENERATIVE MODEL. This module does not (yet) run the simulator's memory population
model or the behaviour module's drinking decision: when it was written those APIs did not
exist. It states its own small generative model, which is exactly the model
:mod:`reconsolidate.triggers.model` assumes for the cue effects (additive cue effects on
craving; logistic drinking), with deliberately non-normal person-level distributions (uniform
effects and one planted, clearly stronger trigger) so that recovery tests are not circular:

* ``P`` participants answer ``prompts_per_day`` prompts a day (ASSUMPTION: 5 a day at about
  9, 12, 15, 18 and 21 h with +-45 min jitter, typical of EMA alcohol studies, which use 4-8);
  each prompt is unanswered with probability ``missing_prob`` (ASSUMPTION 0.1) and then
  absent from the diary.
* Cue class ``c`` is present at a prompt with probability ``q_pc`` ~ U(0.08, 0.25) per person
  (ASSUMPTION), doubled on Friday-Sunday for the social cues ``pub_bar`` and
  ``social_event`` (ASSUMPTION: weekend drinking contexts), capped at 0.6.
* Craving (0-100) = ``a_p + sum_c b_pc x_c + e``, ``a_p`` ~ U(12, 28) points,
  ``e`` ~ N(0, s_p^2), ``s_p`` ~ U(7, 13) points, rounded to an integer and clipped to 0-100
  (ASSUMPTION: the scale values used; the clipping slightly biases effects, see tests).
* Planted effects (craving points): one strongest cue per person drawn uniformly,
  ``b`` ~ U(25, 40); the others ``b`` ~ U(0, 12) (ASSUMPTION: a dominant personal trigger
  as the issue describes; the 13-point minimum gap makes "the top cue" well defined).
* Drinking before the next prompt: ``logit P = d0_p + sum_c g_pc x_c`` with ``d0_p`` ~
  U(-3.0, -1.8) and ``g_pc = 0.05 b_pc`` log-odds per craving point of cue effect
  (ASSUMPTION: drinking follows cue-driven craving); drinks given drinking = 1 + Poisson(1.5)
  US standard drinks (ASSUMPTION).

All random numbers come from :class:`~reconsolidate._random.PatientStream`, so participant
``i``'s diary is the same whatever ``n_patients`` is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit

from reconsolidate._random import PatientStream
from reconsolidate.exceptions import InputError

__all__ = ["DEFAULT_CUES", "FILLER_TAGS", "NATURAL_TAGS", "SyntheticDiary", "simulate_diary"]

#: Cue classes of the stand-in generator (the trial engine's cue environment names them
#: in ``reconsolidate.population``; this tuple is the mapping target used until then).
DEFAULT_CUES: tuple[str, ...] = (
    "home_after_work",
    "pub_bar",
    "social_event",
    "sound_of_glasses",
    "sight_of_alcohol",
    "stress",
)
_SOCIAL = ("pub_bar", "social_event")
#: Everyday tags a participant might type for each default cue class (used with
#: ``vocabulary="natural"``; examples/ema/mapping.toml maps them back).
NATURAL_TAGS: dict[str, tuple[str, ...]] = {
    "home_after_work": ("home", "after work", "evening at home"),
    "pub_bar": ("pub", "bar"),
    "social_event": ("party", "friends over", "birthday"),
    "sound_of_glasses": ("clinking glasses", "sound of glasses"),
    "sight_of_alcohol": ("beer advert", "saw beer", "supermarket drinks aisle"),
    "stress": ("stressed", "argument", "deadline"),
}
#: Filler tags with no planted effect (the example mapping ignores them).
FILLER_TAGS: tuple[str, ...] = ("alone", "tired", "commuting")
_PROMPT_HOURS = (9.0, 12.0, 15.0, 18.0, 21.0)
_EPOCH_S = 1_735_689_600  # 2025-01-01T00:00:00Z, a Wednesday; day 0 of every synthetic diary


@dataclass(frozen=True)
class SyntheticDiary:
    """A synthetic diary (columns as :func:`~reconsolidate.triggers.diary.build_diary` takes)
    and its planted truth.

    Attributes
    ----------
    columns
        ``participant_id``, ``timestamp`` (ISO 8601 strings), ``tags`` (cue names joined by
        ``;``), ``craving`` (0-100), ``drinks`` (US standard drinks since the previous entry).
    cues
        ``(C,)`` cue class names.
    participant_ids
        ``(P,)``.
    craving_effect
        ``(P, C)`` planted craving effects (points on the 0-100 scale).
    drink_log_odds
        ``(P, C)`` planted drinking log odds ratios.
    strongest
        ``(P,)`` int, index of each person's planted strongest cue.
    baseline_craving, residual_sd, drink_intercept
        ``(P,)`` the other planted person parameters.
    """

    columns: dict[str, np.ndarray]
    cues: tuple[str, ...]
    participant_ids: np.ndarray
    craving_effect: np.ndarray
    drink_log_odds: np.ndarray
    strongest: np.ndarray
    baseline_craving: np.ndarray
    residual_sd: np.ndarray
    drink_intercept: np.ndarray
    seed: int

    def truth(self) -> dict[str, Any]:
        """The planted truth as JSON-ready data."""
        return {
            "generator": "reconsolidate.triggers.synthetic (stand-in generative model; "
            "not the memory/behaviour simulator)",
            "seed": self.seed,
            "cues": list(self.cues),
            "units": {
                "craving_effect": "craving points (0-100 scale) when the cue is present",
                "drink_log_odds": "log odds ratio of drinking before the next entry",
            },
            "participants": {
                str(pid): {
                    "strongest_cue": self.cues[int(self.strongest[i])],
                    "craving_effect": dict(
                        zip(self.cues, map(float, self.craving_effect[i]), strict=True)
                    ),
                    "drink_log_odds": dict(
                        zip(self.cues, map(float, self.drink_log_odds[i]), strict=True)
                    ),
                    "baseline_craving": float(self.baseline_craving[i]),
                    "residual_sd": float(self.residual_sd[i]),
                    "drink_intercept_log_odds": float(self.drink_intercept[i]),
                }
                for i, pid in enumerate(self.participant_ids)
            },
        }


def simulate_diary(
    n_patients: int,
    weeks: float,
    *,
    seed: int = 0,
    prompts_per_day: int = 5,
    missing_prob: float = 0.1,
    cues: tuple[str, ...] = DEFAULT_CUES,
    vocabulary: str = "cue",
) -> SyntheticDiary:
    """Simulate an EMA diary with planted per-person cue effects (stand-in model above).

    Parameters
    ----------
    n_patients
        Number of participants, >= 1.
    weeks
        Diary length in weeks (> 0; whole days are simulated).
    seed
        Non-negative integer seed.
    prompts_per_day
        Prompts a day, 1-5 (at the first ``prompts_per_day`` of 9, 12, 15, 18, 21 h).
    missing_prob
        Probability a prompt is not answered, in [0, 0.9].
    cues
        Cue class names, at least 2.
    vocabulary
        ``"cue"``: the ``tags`` column holds the cue class names themselves (no mapping file
        needed); ``"natural"``: everyday tags from :data:`NATURAL_TAGS` (one drawn per present
        cue) plus filler tags (:data:`FILLER_TAGS`, each with probability 0.2), to be read
        with a mapping file such as examples/ema/mapping.toml. The tag draws use their own
        stream, so both vocabularies give the same cravings and drinks.
    """
    if n_patients < 1:
        raise InputError(f"n_patients = {n_patients}; must be >= 1")
    if not weeks > 0:
        raise InputError(f"weeks = {weeks}; must be > 0")
    if not 1 <= prompts_per_day <= len(_PROMPT_HOURS):
        raise InputError(f"prompts_per_day = {prompts_per_day}; allowed 1-{len(_PROMPT_HOURS)}")
    if not 0 <= missing_prob <= 0.9:
        raise InputError(f"missing_prob = {missing_prob}; allowed 0-0.9")
    if len(cues) < 2 or len(set(cues)) != len(cues):
        raise InputError("cues: need at least 2 distinct cue names")
    if seed < 0:
        raise InputError(f"seed = {seed}; must be a non-negative integer")
    if vocabulary not in ("cue", "natural"):
        raise InputError(f"vocabulary = {vocabulary!r}; allowed: 'cue', 'natural'")
    if vocabulary == "natural" and not set(cues) <= set(NATURAL_TAGS):
        raise InputError(
            f"vocabulary 'natural' knows the cues {', '.join(NATURAL_TAGS)} only"
        )
    n, c = int(n_patients), len(cues)
    n_days = max(round(weeks * 7), 1)
    n_prompts = n_days * prompts_per_day

    # person-level parameters: 4 + 2C draws each
    u = PatientStream(seed, "triggers.synthetic.person", 4 + 2 * c).uniform(0, n)
    baseline = 12.0 + 16.0 * u[:, 0]
    resid_sd = 7.0 + 6.0 * u[:, 1]
    d0 = -3.0 + 1.2 * u[:, 2]
    strongest = np.minimum((u[:, 3] * c).astype(np.int64), c - 1)
    effect = 12.0 * u[:, 4 : 4 + c]
    top = 25.0 + 15.0 * u[:, 4 : 4 + c]
    is_top = np.arange(c)[None, :] == strongest[:, None]
    effect = np.where(is_top, top, effect)
    q = 0.08 + 0.17 * u[:, 4 + c : 4 + 2 * c]
    g = 0.05 * effect

    # prompt-level draws: C cue draws + noise + drink + amount + missing + jitter per prompt
    per = c + 5
    e = PatientStream(seed, "triggers.synthetic.entries", n_prompts * per).uniform(0, n)
    e = e.reshape(n, n_prompts, per)
    day = np.repeat(np.arange(n_days), prompts_per_day)
    hour = np.tile(np.asarray(_PROMPT_HOURS[:prompts_per_day]), n_days)
    weekday = (day + 2) % 7  # 2025-01-01 is a Wednesday (Mon = 0)
    weekend = weekday >= 4  # Friday, Saturday, Sunday
    social = np.isin(np.asarray(cues), _SOCIAL)
    qq = np.where(weekend[None, :, None] & social[None, None, :], 2 * q[:, None, :], q[:, None, :])
    x = e[:, :, :c] < np.minimum(qq, 0.6)  # (P, T, C)
    from scipy.special import ndtri

    noise = ndtri(e[:, :, c]) * resid_sd[:, None]
    latent = baseline[:, None] + np.einsum("ptc,pc->pt", x, effect) + noise
    craving = np.clip(np.rint(latent), 0.0, 100.0)
    p_drink = expit(d0[:, None] + np.einsum("ptc,pc->pt", x, g))
    drank_after = e[:, :, c + 1] < p_drink
    amount = 1.0 + _poisson_quantile(e[:, :, c + 2], 1.5)
    answered = e[:, :, c + 3] >= missing_prob
    jitter_min = np.rint((e[:, :, c + 4] - 0.5) * 90.0)
    t_s = (_EPOCH_S + day[None, :] * 86400 + hour[None, :] * 3600 + jitter_min * 60).astype(
        np.int64
    )

    # drinks reported at an answered prompt = drinking after every prompt since the last
    # answered one (drinking after prompt t is reported at the next answered prompt)
    drink_amt = np.where(drank_after, amount, 0.0)
    cum = np.cumsum(drink_amt, axis=1)
    prev_cum = np.concatenate([np.zeros((n, 1)), cum[:, :-1]], axis=1)  # drinks before t
    rows_p, rows_t = np.nonzero(answered)
    # cumulative drinks before this prompt minus cumulative before the previous answered one
    before = prev_cum[rows_p, rows_t]
    first = np.ones(len(rows_p), dtype=bool)
    first[1:] = rows_p[1:] != rows_p[:-1]
    prev_before = np.concatenate([[0.0], before[:-1]])
    reported = np.where(first, 0.0, before - prev_before)

    pids = np.array([f"P{i:05d}" for i in range(n)], dtype=object)
    xs = x[rows_p, rows_t]
    if vocabulary == "cue":
        tags = _cue_tags(xs, cues)
    else:
        nf = len(FILLER_TAGS)
        v = PatientStream(seed, "triggers.synthetic.tags", n_prompts * (c + nf)).uniform(0, n)
        v = v.reshape(n, n_prompts, c + nf)[rows_p, rows_t]
        tags = _natural_tags(xs, v, cues)
    ts = np.datetime_as_string(t_s[rows_p, rows_t].astype("datetime64[s]"), unit="m")
    columns = {
        "participant_id": pids[rows_p],
        "timestamp": ts.astype(object),
        "tags": tags,
        "craving": craving[rows_p, rows_t],
        "drinks": reported,
    }
    return SyntheticDiary(
        columns=columns,
        cues=tuple(cues),
        participant_ids=pids,
        craving_effect=effect,
        drink_log_odds=g,
        strongest=strongest,
        baseline_craving=baseline,
        residual_sd=resid_sd,
        drink_intercept=d0,
        seed=int(seed),
    )


def _cue_tags(xs: np.ndarray, cues: tuple[str, ...]) -> np.ndarray:
    """``;``-joined cue names of each row of ``xs`` (N, C), one join per distinct pattern."""
    c = len(cues)
    code = xs.astype(np.int64) @ (np.int64(1) << np.arange(c, dtype=np.int64))
    ucode, inv = np.unique(code, return_inverse=True)
    cue_arr = np.asarray(cues, dtype=object)
    utags = np.array(
        [";".join(cue_arr[((cd >> np.arange(c)) & 1).astype(bool)]) for cd in ucode], dtype=object
    )
    return utags[inv.ravel()]


def _natural_tags(xs: np.ndarray, v: np.ndarray, cues: tuple[str, ...]) -> np.ndarray:
    """Everyday tags: one of each present cue's :data:`NATURAL_TAGS`, plus filler tags."""
    c = len(cues)
    out = np.empty(len(xs), dtype=object)
    choice = [
        np.minimum((v[:, j] * len(NATURAL_TAGS[cue])).astype(np.int64),
                   len(NATURAL_TAGS[cue]) - 1)
        for j, cue in enumerate(cues)
    ]
    filler = v[:, c:] < 0.2
    for i in range(len(xs)):  # small example files only; the "cue" vocabulary is vectorised
        parts = [NATURAL_TAGS[cue][choice[j][i]] for j, cue in enumerate(cues) if xs[i, j]]
        parts += [f for f, on in zip(FILLER_TAGS, filler[i], strict=True) if on]
        out[i] = ";".join(parts)
    return out


def _poisson_quantile(u: np.ndarray, mean: float) -> np.ndarray:
    """Poisson(mean) quantile of uniforms ``u`` by inversion of the tabulated CDF (exact)."""
    k = np.arange(200)
    log_pmf = k * np.log(mean) - mean - np.cumsum(np.log(np.maximum(k, 1)))
    cdf = np.cumsum(np.exp(log_pmf))
    return np.searchsorted(cdf, u, side="left").astype(np.float64)
