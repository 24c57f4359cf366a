"""Import of drinking diaries (TLFB), participant tables and biomarkers; privacy; imputation.

>>> from reconsolidate.data import load_trial_data
>>> diary = b"id,date,amount\\nA1,2024-01-02,0\\nA1,2024-01-03,6\\nB2,2024-01-02,\\n"
>>> people = (b"id,sex,arm,randomization_date\\nA1,M,ketamine,2024-01-02\\n"
...           b"B2,F,midazolam,2024-01-02\\n")
>>> data = load_trial_data(diary, people, salt="example-salt")
>>> data.first_study_day, data.drinks_per_day.shape
(0, (2, 2))
"""

from reconsolidate.data._table import DataValidationError, Problem, read_table
from reconsolidate.data.diary import (
    DayStatus,
    DiaryOptions,
    DrinkingData,
    load_run_dir,
    load_trial_data,
    read_run_metadata,
)
from reconsolidate.data.impute import IMPUTATION_METHODS, impute_missing_days
from reconsolidate.data.privacy import date_shift_days, new_salt, pseudonymise_ids

__all__ = [
    "IMPUTATION_METHODS",
    "DataValidationError",
    "DayStatus",
    "DiaryOptions",
    "DrinkingData",
    "Problem",
    "date_shift_days",
    "impute_missing_days",
    "load_run_dir",
    "load_trial_data",
    "new_salt",
    "pseudonymise_ids",
    "read_run_metadata",
    "read_table",
]
