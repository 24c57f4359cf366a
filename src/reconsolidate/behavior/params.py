"""Parameters of daily drinking behaviour (TOML table ``[behavior]`` of a trial spec).

No validated model of daily drinking driven by cue exposure exists (memory-models.md §4.10), so
the structure follows the project's proposal (memory-models.md §8 item 4): cues arrive as random
events (Grasman, Grasman & van der Maas 2016, PLoS ONE 11:e0158323 [abs]), cue-elicited craving
enters a logistic drinking decision together with a self-control/motivation state (the coupled
craving / self-control picture of Grasman 2016), and the incentive value of a cue scales the amount
(incentive salience, Zhang et al. 2009 [abs]). Every number below is an ASSUMPTION with its
reason.

The defaults below are the code's documented defaults, not the values a trial runs with: 14 of
these parameters were calibrated to published trials (``reconsolidate calibrate``,
docs/calibration.md), and ``reconsolidate.trial.make_plan`` fills every parameter a spec does not
set itself with its fitted value from ``src/reconsolidate/calibration/fitted.toml``
(:func:`reconsolidate.calibration.defaults.apply_calibrated_defaults`). The defaults apply only
with ``--uncalibrated`` (``calibrated=False``). docs/trial-spec.md lists both, ``[behavior]``.
"""

from __future__ import annotations

from pydantic import Field

from reconsolidate._config import StrictModel

__all__ = ["AMOUNT_HABIT_THRESHOLD_FRACTION", "BehaviorParams"]

#: ASSUMPTION: the share of a patient's usual habit (exponentially weighted share of drinking
#: days) below which the amount of a drinking day falls (BehaviorParams.amount_habit_elasticity).
#: Half: the habit of the lightest usual drinkers (1.4 days a week) has a relative SD of about
#: 0.31 at the calibrated time constant (21 days), so their usual pattern falls below half on
#: about 4% of days (independent daily draws; session-16 review).
AMOUNT_HABIT_THRESHOLD_FRACTION = 0.5


class BehaviorParams(StrictModel):
    """Daily cue -> craving -> drinking parameters (all dimensionless unless the name says)."""

    background_craving: float = Field(
        0.1,
        ge=0,
        lt=1,
        description=(
            "ASSUMPTION: craving on a day without any cue exposure (habit, interoceptive state), "
            "combined with cue craving as 1 - (1 - b) prod(1 - CR_c)"
        ),
    )
    craving_weight_logit: float = Field(
        4.0,
        ge=0,
        le=20,
        description=(
            "ASSUMPTION: log-odds of drinking per unit craving; large enough that a day with "
            "strong cues and a day without differ clearly, as in cue-reactivity studies"
        ),
    )
    amount_craving_elasticity: float = Field(
        0.5,
        ge=0,
        le=3,
        description=(
            "ASSUMPTION: drinks on a drinking day scale as (craving / usual craving)^elasticity"
        ),
    )
    amount_cv: float = Field(
        0.3, ge=0, le=2, description="ASSUMPTION: day-to-day CV of drinks on a drinking day"
    )
    amount_motivation_reduction_per_logit: float = Field(
        0.15,
        ge=0,
        le=2,
        description=(
            "ASSUMPTION: a motivated drinker who does drink drinks less (controlled drinking): "
            "amount x exp(-rate x motivation)"
        ),
    )
    amount_habit_elasticity: float = Field(
        0.5,
        ge=0,
        le=3,
        description=(
            "ASSUMPTION: a drinker whose recent drinking has fallen well below their usual "
            "drinks less per drinking day: amount x min(1, habit / (0.5 x usual habit))^"
            "elasticity (AMOUNT_HABIT_THRESHOLD_FRACTION = 0.5), habit being the exponentially "
            "weighted share of recent drinking days (habit_time_constant_days). Acquired "
            "(functional) tolerance is built by drinking and fades with abstinence, and it is "
            "what lets a heavy drinker drink heavily (NIAAA Alcohol Alert No. 28, 1995, "
            "'Alcohol and Tolerance' [S]); so a lapse after weeks without drinking is smaller "
            "than a usual drinking day, and the amount climbs back only as drinking resumes "
            "(re-escalation). The factor is 1 down to half the usual habit, which a usual "
            "pattern's own fluctuations rarely reach, so it leaves baseline drinking as it was; "
            "0 switches it off. Shape and threshold are assumptions; the elasticity is "
            "calibrated (COMBINE's drinkers without a heavy day)"
        ),
    )
    min_drinks_per_drinking_day: float = Field(
        1.0, gt=0, description="ASSUMPTION: a drinking day has at least this many US drinks"
    )
    max_drinks_per_day: float = Field(
        40.0, gt=0, description="ASSUMPTION: physiological cap on US drinks per day"
    )
    drinking_probability_bounds: tuple[float, float] = Field(
        (0.02, 0.98),
        description=(
            "ASSUMPTION: baseline daily drinking probability is clipped to this range before the "
            "intercept is calibrated (0 or 7 drinking days a week would need infinite log-odds)"
        ),
    )
    quit_motivation_logit: float = Field(
        4.0,
        ge=0,
        le=20,
        description=(
            "ASSUMPTION: lift in motivation (log-odds against drinking) of a treatment seeker on "
            "the quit day; with its half-life it gives months-long relapse in line with the loose "
            "prior that about three in four return to heavy drinking within 6-12 months [S]"
        ),
    )
    quit_motivation_half_life_days: float = Field(
        60.0, gt=0, description="ASSUMPTION: half-life of the quit-day motivation lift, days"
    )
    motivation_cv: float = Field(
        0.5,
        ge=0,
        le=3,
        description=(
            "ASSUMPTION: between-patient CV of the response to motivational lifts (quit "
            "attempt, therapy sessions): patient i's lifts are scaled by a mean-one log-normal "
            "multiplier. Readiness to change varies widely between patients; without it every "
            "treatment seeker would relapse on the same schedule"
        ),
    )
    therapy_motivation_half_life_days: float = Field(
        30.0, gt=0, description="ASSUMPTION: half-life of therapy-session motivation lifts, days"
    )
    lapse_recommitment_logit: float = Field(
        0.0,
        ge=0,
        le=2,
        description=(
            "ASSUMPTION: motivation (log-odds against drinking) that each drinking day adds to "
            "the quit lift of a treatment seeker from their quit day on (the same for every "
            "patient, not scaled by the motivation multiplier): a lapse renews the resolve (its "
            "consequences, the clinician's response at the next visit), the counterpart of the "
            "abstinence-violation loss. It is a negative feedback of drinking on motivation, "
            "so treatment seekers who drink again settle at drinking less often instead of "
            "returning to their usual pattern: bouts of drinking alternating with abstinence "
            "were the commonest pattern of daily drinkers who relapsed after treatment (46%, "
            "20% daily drinking again; Pickens et al. 1985 Alcohol Clin Exp Res, PMID 3893196 "
            "[abs]), and in COMBINE 19% of those who drank at all during the 16 weeks drank on "
            "60% or more of the days of month 4 (Ray, Krull & Leggio 2010 Front Psychiatry "
            "1:26, doi:10.3389/fpsyt.2010.00026 [abs]; a calibration target). Pickens "
            "describes a pattern in the year after treatment, not this mechanism. The renewal "
            "does not fade when treatment ends (no target covers the months after it): in the "
            "COMBINE-like scenario the year after the 16 weeks has 71.8% true days abstinent, "
            "against 59-69% across COMBINE's arms a year later [S] and 52.7% with step 17's "
            "fit, which had no renewal (docs/trial-spec.md, Known limitations). 0 switches "
            "it off; size calibrated"
        ),
    )
    abstinence_violation_fraction: float = Field(
        0.1,
        ge=0,
        le=1,
        description=(
            "ASSUMPTION: fraction of the motivation lifts lost on each drinking day (Marlatt's "
            "abstinence-violation effect; relapse-prevention therapy targets it)"
        ),
    )
    ketamine_motivation_logit_per_intensity: float = Field(
        1.0,
        ge=0,
        le=20,
        description=(
            "ASSUMPTION: non-specific ketamine pathway, lift in motivation (log-odds) per unit of "
            "the pharmacology engine's psychedelic_intensity_peak; mystical-type experience "
            "mediated ketamine's effect on at-risk drinking (Rothberg et al. 2021 J "
            "Psychopharmacol 35:150 [P abstract]); size to be calibrated"
        ),
    )
    ketamine_motivation_half_life_days: float = Field(
        14.0,
        gt=0,
        description=(
            "ASSUMPTION: half-life of the transient part of the ketamine motivation lift, days "
            "(an after-glow of a few weeks); the rest, ketamine_lasting_fraction, has its own "
            "half-life of months (calibrated: 83% of the lift, half-life 487 days, so the "
            "non-specific effect of one infusion lasts beyond a year)"
        ),
    )
    habit_weight_logit: float = Field(
        2.0,
        ge=0,
        le=20,
        description=(
            "ASSUMPTION: log-odds of drinking per unit of habit above its baseline (habit = "
            "exponentially weighted share of recent drinking days). Drinking sustains itself: a "
            "spell of drinking less lowers later drinking, as in the two stable states of "
            "Grasman, Grasman & van der Maas 2016 PLoS ONE 11:e0158323 [abs] and the relapse "
            "hazard that falls with time abstinent (Kirshenbaum, Olsen & Bickel 2009 J Subst "
            "Abuse Treat 36:8, PMID 18571890 [P abstract]). 2 gives a loop gain "
            "weight x p(1 - p) of at most 0.5 (at p = 0.5): a spell of drinking less is "
            "amplified and outlasts its cause (4 would reach the edge of bistability on its "
            "own). With the cue memories' own feedback the loop can be bistable for light "
            "drinkers: at the calibrated 2.67, untreated patients of the COMBINE-like cohort who "
            "usually drink on 1.5-3 days a week nearly keep their frequency on average (2.57 -> "
            "2.66 days a week in months 10-12) but split both ways, 15% of them near abstinence "
            "and 18% 1.5 or more days a week above their usual (python "
            "tools/untreated_stability.py; docs/trial-spec.md, [behavior]); calibrated under "
            "the untreated-stability targets of calibration/targets.toml, which bound the "
            "cohort's mean and the light drinkers' mean deviation"
        ),
    )
    extinction_opportunity_fraction: float = Field(
        1.0,
        ge=0,
        le=1,
        description=(
            "ASSUMPTION (phenomenological: daily-life extinction is weaker than "
            "reinforcement): share of the cue exposures of a day without drinking that are "
            "extinction trials (drinking was an option and did not happen); the others (an "
            "advert on the way to work, a pub passed at lunchtime) are taken to carry no "
            "expectation of a drink and leave the cue memory as it was, while still adding "
            "their response to the day's craving. Motivated by, not shown in, the extinction "
            "literature: extinction is new learning whose expression is bound to its context "
            "(Bouton 2004 Learn Mem 11:485, doi:10.1101/lm.78804 [abs]) and cue exposure "
            "transfers poorly to daily life (Conklin & Tiffany 2002 Addiction 97:155, "
            "doi:10.1046/j.1360-0443.2002.00014.x [abs]). Asymmetric by construction: every "
            "cue met on a drinking day is still reinforced, so a small share pushes light "
            "drinkers up. None on a day of inpatient detoxification, where no drink is an "
            "option. 1 makes every such exposure outside detoxification an extinction trial "
            "(the model before session 14, where detoxification days counted too); with it the "
            "cue memories' feedback and the habit's drive untreated light drinkers to "
            "abstinence within a year (67% of those usually drinking on 1.5-3 days a week end "
            "near abstinence with the shipped fit's other values: python "
            "tools/untreated_stability.py --behavior extinction_opportunity_fraction=1; 15% at "
            "the calibrated 0.553, while 18% drink on 1.5 or more days a week above their "
            "usual). Decided by the day's exposure number "
            "itself (given an exposure, u / p_exposure is uniform), so no random stream moves"
        ),
    )
    habit_time_constant_days: float = Field(
        22.0,
        gt=0,
        le=365,
        description=(
            "time constant of the habit's exponential average, days. ASSUMPTION that the "
            "time course of everyday habits carries over to drinking: 22 d [D] from the median "
            "66 days to 95% of asymptotic automaticity (Lally et al. 2010 Eur J Soc Psychol "
            "40:998, doi:10.1002/ejsp.674; range 18-254 d [P], median [S]) under its "
            "y = a - b exp(-x / tau) fit (66 d = 3 tau); habit decay stabilised within 1-65 days "
            "in an alcohol group (Edgren, Baretta & Inauen 2025 Appl Psychol Health Well Being "
            "17:e12612, PMID 39456116 [P])"
        ),
    )
    ketamine_lasting_fraction: float = Field(
        0.2,
        ge=0,
        le=1,
        description=(
            "ASSUMPTION: share of the non-specific ketamine lift that lasts months (its own "
            "half-life, ketamine_lasting_half_life_days) rather than weeks: a psychedelic "
            "experience can change drinking for a year (Krupitsky & Grinenko 1997, 66% vs 24% "
            "abstinent at 1 year after ketamine psychedelic therapy [S]; clinical-evidence.md "
            "section 4); to be calibrated"
        ),
    )
    ketamine_lasting_half_life_days: float = Field(
        180.0,
        gt=0,
        le=3650,
        description=(
            "ASSUMPTION: half-life of the lasting part of the ketamine lift, days (of the order of "
            "the 1-year follow-ups of Krupitsky 1997 [S] and Krupitsky 2007 [P abstract])"
        ),
    )
    recruitment_regression_logit: float = Field(
        0.5,
        ge=0,
        le=5,
        description=(
            "ASSUMPTION: participants recruited by screening who do not seek treatment "
            "(Cohort.recruited_by_screening) drink less after enrolment without any intervention: "
            "regression to the mean from recruitment at a drinking high (Finney 2008 Addiction "
            "103:10, PMID 17999707 [P abstract]) and assessment reactivity (McCambridge & Kypri "
            "2011 PLoS ONE 6:e23748, doi:10.1371/journal.pone.0023748 [P abstract]: -13.7 g/week). "
            "Modelled as a motivation (log-odds against drinking) that grows from 0 on day 0 "
            "towards this value with recruitment_regression_half_life_days; untreated and "
            "assessment-only arms of alcohol trials reduced consumption by 14% (Moyer & Finney "
            "2002 J Subst Abuse Treat 23:247, doi:10.1016/S0740-5472(02)00264-7 [P abstract]) to "
            "28% (screened hazardous drinkers, women, assessment only: Song et al. 1994 Cochrane "
            "Colloquium abstract [P]), the interval of calibration target "
            "das2019_assessment_only_units_change_9mo"
        ),
    )
    recruitment_regression_half_life_days: float = Field(
        60.0,
        gt=0,
        le=730,
        description=(
            "ASSUMPTION: half-life of the approach to that long-run level, days (no published "
            "decay time; follow-ups of 6-12 months see it)"
        ),
    )
    lab_urge_noise_sd: float = Field(
        8.0, ge=0, le=50, description="ASSUMPTION: SD of a lab urge rating, points on 0-100"
    )
    lab_liking_noise_sd: float = Field(
        8.0, ge=0, le=50, description="ASSUMPTION: SD of a lab liking rating, points on 0-100"
    )
    lab_liking_floor: float = Field(
        0.35,
        ge=0,
        le=1,
        description=(
            "ASSUMPTION: liking of beer (0-1) that does not depend on the cue-alcohol memory "
            "(taste); liking = floor + (1 - floor) x mean CR of the lab cues"
        ),
    )
