"""Synthetic EMA diaries with planted, known per-person cue effects.

Two generators. :func:`simulate_diary_from_simulator` lives each day with the simulator's own
modules (population memory model, behaviour module; see its docstring).
:func:`simulate_diary` is a STAND-IN GENERATIVE MODEL, independent of the simulator: it states
its own small generative model, which is exactly the model
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
from scipy.special import expit, ndtri

from reconsolidate._random import PatientStream
from reconsolidate.exceptions import InputError
from reconsolidate.population.cues import CUE_CLASSES

__all__ = [
    "DEFAULT_CUES",
    "FILLER_TAGS",
    "NATURAL_TAGS",
    "SyntheticDiary",
    "simulate_diary",
    "simulate_diary_from_simulator",
]

#: Cue classes: the simulator's (``reconsolidate.population.cues.CUE_CLASSES``).
DEFAULT_CUES: tuple[str, ...] = tuple(CUE_CLASSES)
_SOCIAL = ("pub_bar", "social_event")
#: Everyday tags a participant might type for each default cue class (used with
#: ``vocabulary="natural"``; examples/ema/mapping.toml maps them back).
NATURAL_TAGS: dict[str, tuple[str, ...]] = {
    "home_evening": ("home", "after work", "evening at home"),
    "pub_bar": ("pub", "bar"),
    "social_event": ("party", "friends over", "birthday"),
    "glasses_sound": ("clinking glasses", "sound of glasses", "bottle opening"),
    "beer_sight": ("beer advert", "saw beer", "supermarket drinks aisle"),
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
    generator: str = "stand-in"

    def truth(self) -> dict[str, Any]:
        """The planted truth as JSON-ready data."""
        return {
            "generator": (
                "reconsolidate.triggers.synthetic stand-in generative model (not the simulator)"
                if self.generator == "stand-in"
                else "simulator: reconsolidate.behavior.daily.live_day with the population "
                "memory model, plus the EMA layer of simulate_diary_from_simulator"
            ),
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
                        zip(self.cues, map(_json_number, self.drink_log_odds[i]), strict=True)
                    ),
                    "baseline_craving": float(self.baseline_craving[i]),
                    "residual_sd": float(self.residual_sd[i]),
                    "drink_intercept_log_odds": _json_number(self.drink_intercept[i]),
                }
                for i, pid in enumerate(self.participant_ids)
            },
        }


def _json_number(x: float) -> float | None:
    """A float for JSON: NaN (not identified) as null."""
    return float(x) if np.isfinite(x) else None


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
    check_diary_args(n_patients, weeks, prompts_per_day, missing_prob, seed, vocabulary)
    if len(cues) < 2 or len(set(cues)) != len(cues):
        raise InputError("cues: need at least 2 distinct cue names")
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
    weekday = (day + 2) % 7  # 2025-01-01 is a Wednesday (Mon = 0)
    weekend = weekday >= 4  # Friday, Saturday, Sunday
    social = np.isin(np.asarray(cues), _SOCIAL)
    qq = np.where(weekend[None, :, None] & social[None, None, :], 2 * q[:, None, :], q[:, None, :])
    x = e[:, :, :c] < np.minimum(qq, 0.6)  # (P, T, C)
    noise = ndtri(e[:, :, c]) * resid_sd[:, None]
    latent = baseline[:, None] + np.einsum("ptc,pc->pt", x, effect) + noise
    craving = np.clip(np.rint(latent), 0.0, 100.0)
    p_drink = expit(d0[:, None] + np.einsum("ptc,pc->pt", x, g))
    drank_after = e[:, :, c + 1] < p_drink
    amount = 1.0 + _poisson_quantile(e[:, :, c + 2], 1.5)
    answered = e[:, :, c + 3] >= missing_prob
    jitter_min = np.rint((e[:, :, c + 4] - 0.5) * 90.0)
    return _assemble(
        x, craving, np.where(drank_after, amount, 0.0), answered, jitter_min, n_days,
        prompts_per_day, tuple(cues), effect, g, strongest, baseline, resid_sd, d0, seed,
        vocabulary, "stand-in",
    )


#: The command-line flags of ``reconsolidate simulate-diary`` that set the generators' arguments.
_FLAGS = {"n_patients": "--patients", "weeks": "--weeks", "prompts_per_day": "--prompts-per-day",
          "missing_prob": "missing_prob", "seed": "--seed", "vocabulary": "--vocabulary"}


def check_diary_args(n_patients: int, weeks: float, prompts_per_day: int, missing_prob: float,
                     seed: int, vocabulary: str, *, flags: bool = False) -> None:
    """Refuse arguments the diary generators cannot use; ``flags``: name the command-line
    flags (``--patients 0: must be >= 1``) instead of the parameters (``n_patients = 0``)."""
    for name, value, ok, allowed in (
        ("n_patients", n_patients, n_patients >= 1, "must be >= 1"),
        ("weeks", weeks, weeks > 0, "must be > 0"),
        ("prompts_per_day", prompts_per_day, 1 <= prompts_per_day <= len(_PROMPT_HOURS),
         f"allowed 1-{len(_PROMPT_HOURS)}"),
        ("missing_prob", missing_prob, 0 <= missing_prob <= 0.9, "allowed 0-0.9"),
        ("seed", seed, seed >= 0, "must be a non-negative integer"),
        ("vocabulary", vocabulary, vocabulary in ("cue", "natural"), "allowed cue, natural"),
    ):
        if not ok:
            shown = repr(value) if isinstance(value, str) else f"{value:g}"
            where = f"{_FLAGS[name]} {shown}" if flags else f"{name} = {shown}"
            raise InputError(f"{where}: {allowed}")


def _assemble(
    x: np.ndarray,
    craving: np.ndarray,
    drink_amt: np.ndarray,
    answered: np.ndarray,
    jitter_min: np.ndarray,
    n_days: int,
    prompts_per_day: int,
    cues: tuple[str, ...],
    effect: np.ndarray,
    lor: np.ndarray,
    strongest: np.ndarray,
    baseline: np.ndarray,
    resid_sd: np.ndarray,
    d0: np.ndarray,
    seed: int,
    vocabulary: str,
    generator: str,
) -> SyntheticDiary:
    """Diary columns from prompt-level arrays ``(P, T[, C])``: drop unanswered prompts, report
    drinks at the next answered prompt, write timestamps and tags."""
    n, n_prompts, c = x.shape
    day = np.repeat(np.arange(n_days), prompts_per_day)
    hour = np.tile(np.asarray(_PROMPT_HOURS[:prompts_per_day]), n_days)
    t_s = (_EPOCH_S + day[None, :] * 86400 + hour[None, :] * 3600 + jitter_min * 60).astype(
        np.int64
    )
    # drinks reported at an answered prompt = drinking after every prompt since the last
    # answered one (drinking after prompt t is reported at the next answered prompt)
    cum = np.cumsum(drink_amt, axis=1)
    prev_cum = np.concatenate([np.zeros((n, 1)), cum[:, :-1]], axis=1)  # drinks before t
    rows_p, rows_t = np.nonzero(answered)
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
        "drinks": np.round(reported, 6),
    }
    return SyntheticDiary(
        columns=columns,
        cues=tuple(cues),
        participant_ids=pids,
        craving_effect=effect,
        drink_log_odds=lor,
        strongest=strongest,
        baseline_craving=baseline,
        residual_sd=resid_sd,
        drink_intercept=d0,
        seed=int(seed),
        generator=generator,
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


def simulate_diary_from_simulator(
    n_patients: int,
    weeks: float,
    *,
    seed: int = 0,
    prompts_per_day: int = 5,
    missing_prob: float = 0.1,
    cohort: str = "das2019",
    vocabulary: str = "cue",
    learning: bool = False,
    truth_replicates: int | None = None,
) -> SyntheticDiary:
    """Simulate an EMA diary with the simulator's own daily life (memory + behaviour modules).

    Each simulated day is one call of :func:`reconsolidate.behavior.daily.live_day` (cue
    exposures at the cohort's rates, craving as the noisy-or of the population memory model's
    per-cue responses, the behaviour module's drinking decision and amount, and learning:
    exposed cues rewarded on drinking days; on a dry day the share
    ``extinction_opportunity_fraction`` of them extinguished), with the behaviour and memory
    parameters the trial engine runs (the shipped calibrated values,
    :func:`reconsolidate.calibration.defaults.calibrated_behavior_params`). The EMA layer on top:

    * planted triggers: each person's acquisition strengths are replaced by one planted
      strongest cue ~ U(0.80, 0.95) and the others ~ U(0.05, 0.40) (ASSUMPTION: a dominant
      personal trigger, as the issue describes; the memory model's response is steep in the
      acquisition strength, so weaker values are needed to leave one cue clearly on top);
    * each cue met on a day is present at one of that day's prompts, drawn uniformly
      (ASSUMPTION); the craving reported at a prompt is 100 x the noisy-or craving of the cues
      present at that prompt (``day_craving`` with the memory responses of that morning), plus
      rating noise ~ N(0, s_p^2), ``s_p`` ~ U(5, 10) points (ASSUMPTION), rounded and clipped;
    * a drinking day's drinks are drunk after the prompt with the highest craving (ties: the
      later one), ASSUMPTION: people drink in the situation that pulls most; they are reported
      at the next answered prompt;
    * planted truth: the craving effect of cue ``c`` on the reported scale, averaged over the
      prompts where the person met it (average marginal effect): the expected reported
      craving with the cue minus without it, the other cues at that prompt as they were
      (clipped-normal means, exact). Craving is a noisy-or of the cues, so effects are
      sub-additive and this, not the effect of the cue alone, is what an additive model
      estimates; a cue never met gets its effect alone,
      ``E[clip(100 (1 - (1 - b)(1 - CR_c)) + noise)] - E[clip(100 b + noise)]`` (``b`` the
      background craving), averaged over days;
    * drinking truth: the log odds ratios that a person's own logistic regression of
      "drank before the next prompt" on the cues present converges to with unlimited data
      from the same process (its pseudo-true value: the fitted model is misspecified here,
      since drinking depends on the whole day's cues and on where the day's craving peaked).
      Computed from ``truth_replicates`` further diaries of every person (same planted
      memory, behaviour and cohort covariates, independent days from the stream
      ``triggers.simulator.truth``; all prompts answered), pooled and fitted per person by
      Newton's method on the counts of the 2^C cue patterns (default 100 replicates, fixed so
      that participant ``i``'s truth does not depend on how many were simulated). A cue that no
      replicate met, or a person who never or always drank after a prompt, gets NaN (null
      in the JSON). The intercept is ``drink_intercept``.

    ``learning=False`` (default) lives each day on a copy of the memory state, so the cue
    memories stay at their planted strengths over the diary: with learning on, the simulator
    rewards every cue met on a drinking day, and for daily drinkers all cue memories saturate
    within a few weeks (every cue's response near 1), which erases the planted differences
    the recovery checks are about. ``cohort`` is a preset of
    :func:`reconsolidate.population.cohorts.get_cohort` (exposure rates, drinking days,
    drinks per drinking day).
    """
    from reconsolidate.behavior.daily import (
        DAILY_DRAWS,
        BehaviorState,
        calibrate_intercept,
        day_craving,
        drinking_probability_target,
    )
    from reconsolidate.calibration.defaults import (
        calibrated_behavior_params,
        calibrated_memory_params,
    )
    from reconsolidate.memory import population as mem
    from reconsolidate.population.cohorts import get_cohort
    from reconsolidate.population.cues import CUE_CLASSES, CueEnvironment
    from reconsolidate.population.sample import sample_patients

    check_diary_args(n_patients, weeks, prompts_per_day, missing_prob, seed, vocabulary)
    n, c = int(n_patients), len(CUE_CLASSES)
    n_days = max(round(weeks * 7), 1)
    k = prompts_per_day
    # the daily life and memory the trial engine runs: the shipped calibrated values
    bp, mp = calibrated_behavior_params(), calibrated_memory_params()
    patients = sample_patients(get_cohort(cohort), CueEnvironment(), seed, 0, n)
    u = PatientStream(seed, "triggers.simulator.planted", 2 + c).uniform(0, n)
    strongest = np.minimum((u[:, 0] * c).astype(np.int64), c - 1)
    is_top = np.arange(c)[None, :] == strongest[:, None]
    acq = np.where(is_top, 0.80 + 0.15 * u[:, 2 : 2 + c], 0.05 + 0.35 * u[:, 2 : 2 + c])
    patients.acquisition_strength = acq
    rating_sd = 5.0 + 5.0 * u[:, 1]
    memory = mem.new_state(acq, mp)
    alpha, kref = calibrate_intercept(patients, mem.response(memory, mp), bp)
    target = drinking_probability_target(patients, bp)
    bstate = BehaviorState.start(alpha, kref, target)

    b = bp.background_craving
    eff_sum = np.zeros((n, c))
    ame_sum = np.zeros((n, c))
    ame_n = np.zeros((n, c))
    present = np.zeros((n, n_days, k, c), dtype=bool)
    craving = np.zeros((n, n_days, k))
    drink_after = np.zeros((n, n_days, k))
    answered = np.zeros((n, n_days, k), dtype=bool)
    jitter_min = np.zeros((n, n_days, k))
    rows = np.arange(n)
    for day in range(n_days):
        weekday = (day + 2) % 7  # day 0 = 2025-01-01, a Wednesday (Mon = 0)
        cr = mem.response(memory, mp)
        # effect on the reported (noisy, clipped) 0-100 scale: cue alone vs no cue
        eff_sum += _clipped_mean(100.0 * (1.0 - (1.0 - b) * (1.0 - cr)), rating_sd[:, None])
        eff_sum -= _clipped_mean(np.full((n, 1), 100.0 * b), rating_sd[:, None])
        ud = PatientStream(seed, "triggers.simulator.day", DAILY_DRAWS(c), day).uniform(0, n)
        up = PatientStream(seed, "triggers.simulator.prompts", c + 3 * k, day).uniform(0, n)
        pres, kappa, drinks, where = _simulator_prompts(
            memory, cr, bstate, patients, bp, mp, ud, up[:, :c], weekday >= 5, k, learning)
        # EMA layer
        noise = ndtri(up[:, c : c + k]) * rating_sd[:, None]
        craving[:, day] = np.clip(np.rint(100.0 * kappa + noise), 0.0, 100.0)
        drink_after[rows, day, where] = drinks
        present[:, day] = pres
        # average marginal effect over the prompts where each cue was met: craving with the
        # cue minus craving without it, other cues at that prompt as they were
        crk = np.repeat(cr, k, axis=0)
        for j in range(c):
            on = pres[:, :, j]
            if not on.any():
                continue
            p_on = pres.copy()
            p_on[:, :, j] = True
            p_off = pres.copy()
            p_off[:, :, j] = False
            k_on = day_craving(crk, p_on.reshape(n * k, c), b).reshape(n, k)
            k_off = day_craving(crk, p_off.reshape(n * k, c), b).reshape(n, k)
            sd = rating_sd[:, None]
            diff = _clipped_mean(100.0 * k_on, sd) - _clipped_mean(100.0 * k_off, sd)
            ame_sum[:, j] += np.where(on, diff, 0.0).sum(axis=1)
            ame_n[:, j] += on.sum(axis=1)
        answered[:, day] = up[:, c + k : c + 2 * k] >= missing_prob
        jitter_min[:, day] = np.rint((up[:, c + 2 * k : c + 3 * k] - 0.5) * 90.0)
    drink_intercept, lor = _drinking_pseudo_truth(
        patients, acq, alpha, kref, target, bp, mp, seed, n_days, k, learning,
        truth_replicates)
    alone = eff_sum / n_days
    effect = np.where(ame_n > 0, ame_sum / np.maximum(ame_n, 1), alone)
    return _assemble(
        present.reshape(n, n_days * k, c),
        craving.reshape(n, n_days * k),
        drink_after.reshape(n, n_days * k),
        answered.reshape(n, n_days * k),
        jitter_min.reshape(n, n_days * k),
        n_days,
        k,
        tuple(CUE_CLASSES),
        effect,
        lor,
        strongest,
        np.full(n, 100.0 * b),
        rating_sd,
        drink_intercept,
        seed,
        vocabulary,
        "simulator",
    )


def _simulator_prompts(memory, cr, bstate, patients, bp, mp, ud, u_slot, weekend, k, learning):
    """One simulated day of the EMA layer: the day's exposures, drinking (behaviour module)
    and the prompts at which the cues were met and after which the drinks were drunk.

    Returns ``(present (n, k, C) bool, craving (n, k) noise-free noisy-or craving at each
    prompt, drinks (n,), prompt after which they were drunk (n,))``."""
    from reconsolidate.behavior.daily import day_craving, live_day

    n, c = cr.shape
    rates = patients.rate_weekend_per_day if weekend else patients.rate_weekday_per_day
    exposed = ud[:, :c] < -np.expm1(-rates)
    # without learning, each day is lived on a copy of the memory (the planted strengths
    # stay what the diary measures); the behavioural state evolves either way
    day_memory = memory if learning else memory.copy()
    drinks = live_day(day_memory, bstate, patients, bp, mp, ud, weekend=weekend)
    slot = np.minimum((u_slot * k).astype(np.int64), k - 1)  # prompt of each cue
    pres = exposed[:, None, :] & (slot[:, None, :] == np.arange(k)[None, :, None])
    kappa = day_craving(
        np.repeat(cr, k, axis=0), pres.reshape(n * k, c), bp.background_craving
    ).reshape(n, k)
    # drinks after the prompt with the highest craving (ties: the later one)
    where = k - 1 - np.argmax(kappa[:, ::-1], axis=1)
    return pres, kappa, drinks, where


#: Replicate diaries per person for the drinking truth (see simulate_diary_from_simulator).
TRUTH_REPLICATES = 100


def _drinking_pseudo_truth(patients, acq, alpha, kref, target, bp, mp, seed, n_days, k,
                           learning, replicates):
    """Pseudo-true ``(intercept (n,), log odds ratios (n, C))`` of each person's logistic
    regression of drinking before the next prompt on the cues present there (see
    :func:`simulate_diary_from_simulator`)."""
    import dataclasses

    from reconsolidate.behavior.daily import DAILY_DRAWS, BehaviorState
    from reconsolidate.memory import population as mem

    n, c = acq.shape
    r = TRUTH_REPLICATES if replicates is None else int(replicates)
    if r < 1:
        raise InputError(f"truth_replicates = {replicates}: must be >= 1")
    n_pat = 1 << c
    bits = (1 << np.arange(c))
    counts = np.zeros((n, n_pat))
    drank = np.zeros((n, n_pat))
    # blocks of persons keep memory bounded (rows i * r + j; each row's random numbers are
    # drawn by its absolute index, so the blocks change nothing)
    block = max(1, _TRUTH_BLOCK_ROWS // r)
    for i0 in range(0, n, block):
        i1 = min(n, i0 + block)
        nb = i1 - i0
        rep = lambda a, i0=i0, i1=i1: np.repeat(np.asarray(a)[i0:i1], r, axis=0)  # noqa: E731
        pr = dataclasses.replace(patients, **{
            f.name: rep(getattr(patients, f.name)) for f in dataclasses.fields(patients)})
        memory = mem.new_state(rep(acq), mp)
        bstate = BehaviorState.start(rep(alpha), rep(kref), rep(target))
        nr = nb * r
        person = np.arange(nr) // r
        rows = np.arange(nr)
        cnt = np.zeros(nb * n_pat)
        drk = np.zeros(nb * n_pat)
        for day in range(n_days):
            cr = mem.response(memory, mp)
            ud = PatientStream(seed, "triggers.simulator.truth.day", DAILY_DRAWS(c), day
                               ).uniform(i0 * r, i1 * r)
            us = PatientStream(seed, "triggers.simulator.truth.prompts", c, day
                               ).uniform(i0 * r, i1 * r)
            pres, _, drinks, where = _simulator_prompts(
                memory, cr, bstate, pr, bp, mp, ud, us, (day + 2) % 7 >= 5, k, learning)
            y = np.zeros((nr, k))
            y[rows, where] = drinks > 0.0
            cell = person[:, None] * n_pat + pres.astype(np.int64) @ bits
            cnt += np.bincount(cell.ravel(), minlength=nb * n_pat)
            drk += np.bincount(cell.ravel(), weights=y.ravel(), minlength=nb * n_pat)
        counts[i0:i1] = cnt.reshape(nb, n_pat)
        drank[i0:i1] = drk.reshape(nb, n_pat)
    return _fit_pattern_logistic(counts, drank, c)


#: Simulated rows (person replicates) held at once by the drinking truth.
_TRUTH_BLOCK_ROWS = 200_000


def _fit_pattern_logistic(counts, drank, c, max_iter=100, tol=1e-10):
    """Per-person logistic regression ``logit P = a + sum_c d_c x_c`` by Newton's method on
    pattern counts: ``counts[p, m]`` trials and ``drank[p, m]`` successes of cue pattern ``m``
    (bit ``c`` = cue ``c`` present). Returns ``(a (P,), d (P, C))``; NaN where not identified
    (a cue never present; a cue after which the person always or never drank, whose log odds
    ratio is infinite: the other cues are then fitted without its prompts; a person who never
    or always drank; no convergence)."""
    n, n_pat = counts.shape
    x = np.column_stack([np.ones(n_pat), (np.arange(n_pat)[:, None] >> np.arange(c)) & 1])
    # a cue after which the person always (or never) drank separates the data: its log odds
    # ratio is infinite and would keep Newton from converging for every coefficient. Such a
    # cue is not identified (NaN); the others are fitted on the prompts without it.
    has = x[:, 1:].astype(bool)  # (patterns, C)
    n_with = counts @ has
    y_with = drank @ has
    separated = (n_with > 0) & ((y_with <= 0.0) | (y_with >= n_with))
    keep = ~(separated.astype(np.float64) @ has.T.astype(np.float64) > 0)  # (P, patterns)
    counts = np.where(keep, counts, 0.0)
    drank = np.where(keep, drank, 0.0)
    theta = np.zeros((n, c + 1))
    ridge = 1e-9 * np.eye(c + 1)  # keeps a cue never present from making H singular
    step_max = np.full(n, np.inf)
    for _ in range(max_iter):
        p = expit(theta @ x.T)
        grad = (drank - counts * p) @ x
        w = counts * p * (1.0 - p)
        hess = np.einsum("pm,mi,mj->pij", w, x, x) + ridge
        step = np.linalg.solve(hess, grad[:, :, None])[:, :, 0]
        step = np.clip(step, -5.0, 5.0)  # damped: far from the optimum, no overshoot
        theta += step
        step_max = np.abs(step).max(axis=1)
        if np.all(step_max < tol):
            break
    met = (counts @ x[:, 1:] > 0) & ~separated  # (P, C) cue present at least once
    total = counts.sum(axis=1)
    yes = drank.sum(axis=1)
    ok = (step_max < 1e-6) & (yes > 0) & (yes < total)
    a = np.where(ok, theta[:, 0], np.nan)
    d = np.where(ok[:, None] & met, theta[:, 1:], np.nan)
    return a, d


def _clipped_mean(mean: np.ndarray, sd: np.ndarray, lo: float = 0.0, hi: float = 100.0):
    """E[clip(X, lo, hi)] for X ~ N(mean, sd^2) (exact censored-normal mean)."""
    from scipy.special import ndtr

    a = (lo - mean) / sd
    bb = (hi - mean) / sd
    phi = lambda z: np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)  # noqa: E731
    return (
        lo * ndtr(a)
        + mean * (ndtr(bb) - ndtr(a))
        + sd * (phi(a) - phi(bb))
        + hi * (1 - ndtr(bb))
    )
