"""Drinking endpoints for real TLFB diaries and simulated trials, with their statistics.

Array level (no pandas): a drinks matrix ``(N, D)`` in US standard drinks per day, ``NaN`` for a
missing day, column 0 = first day of the analysis window, and ``is_female (N,)``.

>>> import numpy as np
>>> from reconsolidate.endpoints import compute_endpoints, MissingDataHandling
>>> drinks = np.array([[0.0, 6.0, np.nan, 0.0], [4.0, 0.0, 0.0, 0.0]])
>>> ep = compute_endpoints(drinks, [False, True], handling=MissingDataHandling("itt", "exclude"))
>>> ep.percent_days_abstinent.round(1).tolist(), ep.percent_heavy_drinking_days.round(1).tolist()
([66.7, 75.0], [33.3, 25.0])
"""

from reconsolidate.endpoints.core import (
    ABSTINENT_LAST_MIN_FRACTION,
    GRAMS_ETHANOL_PER_UK_UNIT,
    GRAMS_ETHANOL_PER_US_STANDARD_DRINK,
    HEAVY_DRINKS_MEN,
    HEAVY_DRINKS_WOMEN,
    WHO_LEVEL_NAMES,
    WHO_THRESHOLDS_G_PER_DAY_MEN,
    WHO_THRESHOLDS_G_PER_DAY_WOMEN,
    MissingDataHandling,
    ParticipantEndpoints,
    compute_endpoints,
    drinks_per_drinking_day,
    heavy_threshold_drinks,
    percent_days_abstinent,
    percent_heavy_drinking_days,
    who_risk_level,
)
from reconsolidate.endpoints.stats import (
    MAX_ABS_LOG_ODDS_RATIO,
    MIN_GEE_CLUSTERS_PER_ARM,
    KaplanMeier,
    cox_hazard_ratio,
    gee_daily_abstinence,
    hedges_g,
    kaplan_meier,
    mean_difference,
    risk_difference,
)
from reconsolidate.endpoints.summary import (
    BENEFIT_DIRECTION,
    BINARY_ENDPOINTS,
    COMPARISON_ENDPOINTS,
    COMPARISON_LABELS,
    CONTINUOUS_ENDPOINTS,
    HIGHER_IS_BETTER,
    REPORTED_COMPARISONS,
    abstinence_matrix,
    compare_arms,
    comparison_estimate,
    favours_arm,
    summarize_arms,
)

__all__ = [
    "ABSTINENT_LAST_MIN_FRACTION",
    "BENEFIT_DIRECTION",
    "BINARY_ENDPOINTS",
    "COMPARISON_ENDPOINTS",
    "COMPARISON_LABELS",
    "CONTINUOUS_ENDPOINTS",
    "GRAMS_ETHANOL_PER_UK_UNIT",
    "GRAMS_ETHANOL_PER_US_STANDARD_DRINK",
    "HEAVY_DRINKS_MEN",
    "HEAVY_DRINKS_WOMEN",
    "HIGHER_IS_BETTER",
    "MAX_ABS_LOG_ODDS_RATIO",
    "MIN_GEE_CLUSTERS_PER_ARM",
    "REPORTED_COMPARISONS",
    "WHO_LEVEL_NAMES",
    "WHO_THRESHOLDS_G_PER_DAY_MEN",
    "WHO_THRESHOLDS_G_PER_DAY_WOMEN",
    "KaplanMeier",
    "MissingDataHandling",
    "ParticipantEndpoints",
    "abstinence_matrix",
    "compare_arms",
    "comparison_estimate",
    "compute_endpoints",
    "cox_hazard_ratio",
    "drinks_per_drinking_day",
    "favours_arm",
    "gee_daily_abstinence",
    "heavy_threshold_drinks",
    "hedges_g",
    "kaplan_meier",
    "mean_difference",
    "percent_days_abstinent",
    "percent_heavy_drinking_days",
    "risk_difference",
    "summarize_arms",
    "who_risk_level",
]
