"""Import and validate Timeline Followback (TLFB) diaries, participant tables and biomarkers.

Input (CSV, TSV or Parquet, long form):

- **diary**: one row per participant-day: participant id (``participant_id``, ``patient_id``,
  ``id``, ``subject_id``, ``subject``), the day as a calendar date (``date``) or a study day
  (``study_day``, ``day``, or an integer ``date`` counter as abstcal's ``use_raw_date=False``),
  and the amount (``drinks``, ``standard_drinks``, ``drinks_reported``, ``std_drinks``,
  ``amount``; or ``uk_units``). abstcal's ``id,date,amount`` loads as is. An empty amount cell,
  ``NA`` or ``.`` is a missing day (kept as missing); any other word (``none``, ``nan``, ...) is
  a problem, since ``none`` may mean 0 drinks. The diary's days are its own: study day 0 is not
  added when the diary does not have it.
- **participants**: id, ``sex`` (M/F, male/female), ``arm``, ``randomization_date`` (required
  when the diary has calendar dates; study day 0 = that date), optional ``weight_kg`` and
  ``baseline_drinks_per_week``.
- **biomarkers** (optional): id, date or study day, and ``etg_positive`` (positive/negative,
  1/0, true/false) or ``etg_ng_ml`` with a user-given cutoff. A positive result on a day
  self-reported as abstinent overrides that day to a drinking day (missing days stay missing).

Every problem (file, line, column, what) is collected and reported together in one
:class:`~reconsolidate.data.DataValidationError` (an ``InputError``); nothing is dropped
silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, ValidationError, model_validator

from reconsolidate._config import StrictModel, format_validation_error
from reconsolidate.data._table import (
    NUMBER_MISSING_SHOWN,
    DataValidationError,
    Problem,
    Problems,
    Table,
    auto_slash_dates,
    column_codes,
    column_days,
    column_floats,
    column_strings,
    first_cell_with,
    is_missing_token,
    read_table,
    slash_dates_ambiguous,
)
from reconsolidate.data.impute import impute_missing_days
from reconsolidate.data.privacy import date_shift_days, new_salt, pseudonymise_ids
from reconsolidate.endpoints.core import (
    GRAMS_ETHANOL_PER_UK_UNIT,
    GRAMS_ETHANOL_PER_US_STANDARD_DRINK,
)
from reconsolidate.exceptions import InputError

__all__ = [
    "DayStatus",
    "DiaryOptions",
    "DrinkingData",
    "load_run_dir",
    "load_trial_data",
]

ID_ALIASES = ("participant_id", "patient_id", "id", "subject_id", "subject", "pid", "record_id",
              "participant")
DAY_ALIASES = ("study_day", "day")
DATE_ALIASES = ("date",)
DRINKS_ALIASES = ("drinks", "standard_drinks", "drinks_reported", "std_drinks", "amount")
UK_ALIASES = ("uk_units",)
SEX_ALIASES = ("sex", "gender")
ARM_ALIASES = ("arm", "group", "treatment", "condition")
RAND_ALIASES = ("randomization_date", "randomisation_date", "rand_date", "day0_date")
WEIGHT_ALIASES = ("weight_kg",)
BASELINE_ALIASES = ("baseline_drinks_per_week",)
BIO_BOOL_ALIASES = ("etg_positive", "positive", "result", "etg")
BIO_NUM_ALIASES = ("etg_ng_ml",)

_FEMALE = frozenset({"f", "female", "w", "woman"})
_MALE = frozenset({"m", "male", "man"})
_POS = frozenset({"positive", "pos", "1", "true", "yes", "y", "+"})
_NEG = frozenset({"negative", "neg", "0", "false", "no", "n", "-"})

#: Grams of ethanol per unit of each accepted amount unit.
UNIT_GRAMS = {
    "us_standard_drinks": GRAMS_ETHANOL_PER_US_STANDARD_DRINK,
    "uk_units": GRAMS_ETHANOL_PER_UK_UNIT,
    "grams": 1.0,
}


class DayStatus(IntEnum):
    """Provenance of each participant-day in :attr:`DrinkingData.status`."""

    MISSING = 0  # a diary row without an amount (empty, NA, .)
    REPORTED = 1
    IMPUTED = 2
    BIOMARKER_OVERRIDE = 3
    NO_ROW = 4  # no diary row for the day: a missing day (``DiaryOptions.absent_days``)
    NO_ROW_ABSTINENT = 5  # no row, inside the participant's own diary: 0 drinks (absent_days)


class DiaryOptions(StrictModel):
    """Import options (validated; unknown keys are errors).

    Attributes
    ----------
    units
        Unit of the diary amounts when the column is not ``uk_units``: ``us_standard_drinks``
        (14 g), ``uk_units`` (8 g) or ``grams``; converted to US standard drinks explicitly.
    date_format
        ``"auto"`` (ISO ``YYYY-MM-DD``; ``MM/DD/YYYY`` if no value is ISO), ``"iso"`` or a
        ``strptime`` format. ``auto`` refuses slash dates when every one read (diary,
        participants and biomarker files together) has day and month <= 12: then nothing says
        whether ``01/03/2024`` is 1 March or 3 January, and the format must be given.
    study_window_days
        (first, last) allowed study day, inclusive. ASSUMPTION: default -365 .. 1095 days around
        randomisation: TLFB covers up to 24 months back (Sobell & Sobell 1992,
        clinical-evidence.md section 6 [P]) and trials follow up to about 3 years; a date outside
        is almost surely a typo (e.g. the wrong year). Set it to your protocol's window.
    duplicates
        ``"error"`` (default) or resolve duplicate participant-days by ``"max"``, ``"min"`` or
        ``"mean"`` (each resolution is counted in the provenance, as abstcal's
        ``check_duplicates``).
    max_drinks_per_day
        Largest plausible amount, US standard drinks/day. ASSUMPTION: 100 drinks = 1.4 kg
        ethanol, far beyond a survivable day; larger values are entry errors (e.g. grams typed
        as drinks).
    require_sex
        Missing sex is an error (needed by the sex-specific heavy-day and WHO thresholds).
    imputation, imputation_value_drinks, imputation_max_gap_days
        Interior-gap imputation (``none``, ``fixed``, ``neighbour_mean``, ``linear``).
    etg_cutoff_ng_ml
        Cutoff for a numeric ``etg_ng_ml`` biomarker column (>= cutoff = positive); required when
        that column is used (no default: laboratories differ).
    biomarker_override_drinks
        Drinks assigned to a self-reported abstinent day contradicted by a positive biomarker.
        ASSUMPTION: 1 US standard drink, the least amount that makes it a drinking day (EtG
        shows that drinking happened, not how much).
    absent_days
        What a day without a diary row is. ``"missing"`` (default): a missing day, scored by the
        endpoints' missing-data handling (a heavy drinking day under ``missing_days =
        "heavy"``). ``"abstinent"``: a day between the participant's own first and last diary
        rows that has no row is a day without drinking (0 drinks), for exports that list
        drinking days only; days outside that span stay missing. Both are counted in the
        provenance.
    max_problems
        How many problems to list before stopping the list (all are counted).
    """

    units: Literal["us_standard_drinks", "uk_units", "grams"] = "us_standard_drinks"
    date_format: str = "auto"
    study_window_days: tuple[int, int] = (-365, 1095)
    duplicates: Literal["error", "max", "min", "mean"] = "error"
    max_drinks_per_day: float = Field(100.0, gt=0)
    require_sex: bool = True
    imputation: Literal["none", "fixed", "neighbour_mean", "linear"] = "none"
    imputation_value_drinks: float = Field(0.0, ge=0)
    imputation_max_gap_days: int | None = Field(None, ge=1)
    etg_cutoff_ng_ml: float | None = Field(None, gt=0)
    biomarker_override_drinks: float = Field(1.0, gt=0)
    absent_days: Literal["missing", "abstinent"] = "missing"
    max_problems: int = Field(50, ge=1)

    @model_validator(mode="after")
    def _check_window(self) -> DiaryOptions:
        a, b = self.study_window_days
        if a > b:
            raise ValueError(f"study_window_days first day {a} is after last day {b}")
        return self


@dataclass
class DrinkingData:
    """Validated diaries as a participants x days matrix (the endpoints' input).

    Attributes
    ----------
    participant_ids
        Original identifiers, shape ``(N,)``: never written to outputs (use :attr:`pseudonyms`).
    pseudonyms
        Keyed-hash pseudonyms, shape ``(N,)``.
    arm, is_female, sex_known
        Shape ``(N,)``.
    first_study_day
        Study day of column 0 of :attr:`drinks_per_day`: the diary's first day (day 0 is not
        added to a diary that starts later, e.g. on day 1).
    drinks_per_day
        Shape ``(N, D)``, US standard drinks/day, NaN = missing day.
    status
        Shape ``(N, D)`` :class:`DayStatus` codes (uint8).
    weight_kg, table_baseline_drinks_per_week
        Shape ``(N,)`` from the participants table (NaN = not given).
    randomization_day
        Days since 1970-01-01 of each participant's randomisation (NaN if not given).
    provenance
        Files, units and conversion, imputation, biomarker overrides, duplicate resolutions,
        pseudonymisation: recorded in every output.
    """

    participant_ids: np.ndarray
    pseudonyms: np.ndarray
    arm: np.ndarray
    is_female: np.ndarray
    sex_known: np.ndarray
    first_study_day: int
    drinks_per_day: np.ndarray
    status: np.ndarray
    weight_kg: np.ndarray
    table_baseline_drinks_per_week: np.ndarray
    randomization_day: np.ndarray
    provenance: dict = field(default_factory=dict)
    _salt: bytes = field(default=b"", repr=False)

    @property
    def n_participants(self) -> int:
        return int(self.participant_ids.size)

    @property
    def study_days(self) -> np.ndarray:
        """Study day of each matrix column, shape ``(D,)``."""
        return np.arange(self.first_study_day, self.first_study_day + self.drinks_per_day.shape[1])

    @property
    def last_study_day(self) -> int:
        return self.first_study_day + self.drinks_per_day.shape[1] - 1

    def window(self, start_day: int, end_day: int) -> np.ndarray:
        """Drinks for study days ``start_day .. end_day`` inclusive, shape ``(N, L)``.

        Days outside the diary's range are missing (NaN).
        """
        return self._days(self.drinks_per_day, start_day, end_day, np.nan)

    def days_without_row(self, start_day: int, end_day: int) -> np.ndarray:
        """Days of ``start_day .. end_day`` without a diary row, per participant, shape ``(N,)``
        (days outside the diary's range included; days set to 0 by ``absent_days =
        "abstinent"`` not)."""
        st = self._days(self.status, start_day, end_day, DayStatus.NO_ROW)
        return (st == DayStatus.NO_ROW).sum(axis=1)

    def _days(self, matrix: np.ndarray, start_day: int, end_day: int, fill: Any) -> np.ndarray:
        """Columns ``start_day .. end_day`` of a (N, D) participant-day matrix; ``fill`` where
        the diary has no such day."""
        if end_day < start_day:
            raise InputError(f"window {start_day}:{end_day}: the end is before the start")
        out = np.full((matrix.shape[0], end_day - start_day + 1), fill, dtype=matrix.dtype)
        lo = max(start_day, self.first_study_day)
        hi = min(end_day, self.last_study_day)
        if lo <= hi:
            out[:, lo - start_day: hi - start_day + 1] = \
                matrix[:, lo - self.first_study_day: hi - self.first_study_day + 1]
        return out

    def baseline_drinks_per_week(
        self, start_day: int | None = None, end_day: int = -1
    ) -> tuple[np.ndarray, str]:
        """Baseline US standard drinks/week per participant and where it came from.

        Mean over the observed diary days ``start_day .. end_day`` (default: every day before day
        0) times 7; participants with no observed baseline day fall back to the participants
        table's ``baseline_drinks_per_week`` (NaN if neither).
        """
        start = self.first_study_day if start_day is None else start_day
        base = np.full(self.n_participants, np.nan)
        source = "none"
        if end_day >= start and start <= self.last_study_day:
            w = self.window(start, end_day)
            obs = (~np.isnan(w)).sum(axis=1)
            with np.errstate(invalid="ignore"):
                base = np.where(obs > 0, 7.0 * np.nansum(w, axis=1) / np.maximum(obs, 1), np.nan)
            if (obs > 0).any():
                source = f"diary study days {start}..{end_day}"
        fill = np.isnan(base) & ~np.isnan(self.table_baseline_drinks_per_week)
        if fill.any():
            base = np.where(fill, self.table_baseline_drinks_per_week, base)
            source = (source + " + " if source != "none" else "") + \
                "participants table baseline_drinks_per_week"
        return base, source

    def to_long_table(self, *, pseudonymise: bool = True, shift_dates_days: int | None = None
                      ) -> dict[str, np.ndarray]:
        """Long participant-day table (columns as arrays) for output.

        Identifiers are pseudonyms unless ``pseudonymise=False``. With ``shift_dates_days`` and
        known randomisation dates, a ``date`` column shifted per participant by up to that many
        days is added (:func:`~reconsolidate.data.privacy.date_shift_days`).
        """
        n, d = self.drinks_per_day.shape
        ids = self.pseudonyms if pseudonymise else self.participant_ids
        out = {
            "participant": np.repeat(ids, d),
            "arm": np.repeat(self.arm, d),
            "study_day": np.tile(self.study_days, n).astype(np.int32),
            "drinks": self.drinks_per_day.reshape(-1),
            "status": np.array([s.name.lower() for s in DayStatus], dtype=object)[
                self.status.reshape(-1)],
        }
        if shift_dates_days is not None and not np.all(np.isnan(self.randomization_day)):
            shift = date_shift_days(self.pseudonyms, self._salt, shift_dates_days)
            base = np.repeat(self.randomization_day + shift, d) + out["study_day"]
            dates = np.full(base.size, np.datetime64("NaT"), dtype="datetime64[D]")
            ok = ~np.isnan(base)
            dates[ok] = base[ok].astype(np.int64).astype("datetime64[D]")
            out["date"] = dates
        return out


def _options(options: DiaryOptions | dict | None) -> DiaryOptions:
    if options is None:
        return DiaryOptions()
    if isinstance(options, DiaryOptions):
        return options
    try:
        return DiaryOptions.model_validate(options)
    except ValidationError as exc:
        raise InputError(
            format_validation_error(exc, source="diary options", limit=5, model=DiaryOptions)
        ) from None


def _need(table: Table, aliases: tuple[str, ...], what: str) -> str:
    col = table.find(aliases)
    if col is None:
        raise DataValidationError([Problem(
            table.name, 1, None,
            f"no {what} column; expected one of {list(aliases)}, found {list(table.columns)}")])
    return col


@dataclass
class _Participants:
    labels: np.ndarray  # sorted unique original ids
    line_of: np.ndarray
    arm: np.ndarray
    is_female: np.ndarray
    sex_known: np.ndarray
    rand_day: np.ndarray
    weight_kg: np.ndarray
    baseline: np.ndarray
    name: str
    has_rand: bool
    rand_col: str = "randomization_date"
    # a randomisation date was given but did not parse (reported once, as not a date)
    rand_unparsed: np.ndarray | None = None


def _parse_participants(t: Table, opts: DiaryOptions, problems: Problems) -> _Participants:
    idc = _need(t, ID_ALIASES, "participant id")
    armc = _need(t, ARM_ALIASES, "arm")
    sexc = t.find(SEX_ALIASES)
    if sexc is None and opts.require_sex:
        raise DataValidationError([Problem(
            t.name, 1, None, f"no sex column (needed for sex-specific heavy-day and WHO "
            f"thresholds); expected one of {list(SEX_ALIASES)}, found {list(t.columns)}")])
    codes, labels = column_codes(t, idc)
    blank = codes < 0
    if blank.any():
        problems.add_many(t.name, t.lines[blank], idc, "missing participant id")
    order = np.argsort(codes, kind="stable")
    sc = codes[order]
    dup = (sc[1:] == sc[:-1]) & (sc[1:] >= 0)
    for k in np.flatnonzero(dup)[: opts.max_problems].tolist():
        problems.add(t.name, t.lines[order[k + 1]], idc,
                     f"duplicate participant id {labels[sc[k]]!r} (first on line "
                     f"{t.lines[order[k]]})")
    n = labels.size
    valid_rows = np.flatnonzero(~blank)
    _, first_pos = np.unique(codes[valid_rows], return_index=True)
    first_row = valid_rows[first_pos].astype(np.int64)  # first row of each participant
    line_of = t.lines[first_row] if n else np.zeros(0, np.int64)

    arms = column_strings(t, armc)[first_row] if n else np.zeros(0, object)
    for r in np.flatnonzero([is_missing_token(a) for a in arms.tolist()]).tolist():
        problems.add(t.name, line_of[r], armc, "missing arm")
    is_female = np.zeros(n, bool)
    sex_known = np.zeros(n, bool)
    if sexc is not None and n:
        for r, s in enumerate(column_strings(t, sexc)[first_row].tolist()):
            low = s.lower()
            if low in _FEMALE:
                is_female[r], sex_known[r] = True, True
            elif low in _MALE:
                sex_known[r] = True
            elif is_missing_token(s):
                if opts.require_sex:
                    problems.add(t.name, line_of[r], sexc,
                                 "missing sex (needed for the sex-specific heavy-day threshold; "
                                 "or give one threshold for both, e.g. --heavy-drinks 5:5)")
            elif opts.require_sex:
                problems.add(t.name, line_of[r], sexc,
                             f"{s[:20]!r} is not a sex the sex-specific thresholds know; "
                             "allowed M/F, male/female (or one threshold for both, e.g. "
                             "--heavy-drinks 5:5, which takes any value)")
            # else: another value (other, X, diverse) with one threshold for both: sex unknown,
            # as a missing one (no WHO level, which is sex-specific)
    randc = t.find(RAND_ALIASES)
    rand_day = np.full(n, np.nan)
    rand_unparsed = np.zeros(n, bool)
    if randc is not None and n:
        sub = Problems(limit=t.n_rows + 1)
        days, _ = column_days(t, randc, sub, date_format=opts.date_format, allow_counter=False)
        bad_lines = set()
        for p in sub.items:  # a missing date is only a problem if the diary needs it (below)
            if p.message != "missing date":
                problems.add(p.file, p.line, p.column, p.message)
                bad_lines.add(p.line)
        rand_day = days[first_row]
        rand_unparsed = np.isin(t.lines[first_row], list(bad_lines))
    weight = np.full(n, np.nan)
    wc = t.find(WEIGHT_ALIASES)
    if wc is not None and n:
        w = column_floats(t, wc, problems, what="a weight in kg")
        bad = w <= 0
        if bad.any():
            problems.add_many(t.name, t.lines[bad], wc, "weight must be > 0 kg")
        weight = w[first_row]
    base = np.full(n, np.nan)
    bc = t.find(BASELINE_ALIASES)
    if bc is not None and n:
        b = column_floats(t, bc, problems, what="drinks per week")
        bad = b < 0
        if bad.any():
            problems.add_many(t.name, t.lines[bad], bc, "baseline drinks per week must be >= 0")
        base = b[first_row]
    return _Participants(labels, line_of, arms.astype(str), is_female, sex_known, rand_day,
                         weight, base, t.name, randc is not None,
                         randc or "randomization_date", rand_unparsed)


def _map_ids(t: Table, idc: str, part: _Participants, problems: Problems, what: str
             ) -> np.ndarray:
    """Participant index (into part.labels) of each row; -1 where blank or unknown."""
    codes, labels = column_codes(t, idc)
    blank = codes < 0
    if blank.any():
        problems.add_many(t.name, t.lines[blank], idc, "missing participant id")
    if part.labels.size and labels.size:
        plab = part.labels.astype(str)
        pos = np.clip(np.searchsorted(plab, labels.astype(str)), 0, plab.size - 1)
        lab_to_part = np.where(plab[pos] == labels.astype(str), pos, -1)
    else:
        lab_to_part = np.full(labels.size, -1, np.int64)
    pidx = np.full(codes.size, -1, np.int64)
    if labels.size:
        pidx[~blank] = lab_to_part[codes[~blank]]
    unknown = (~blank) & (pidx < 0)
    for r in np.flatnonzero(unknown)[: problems.limit].tolist():
        problems.add(t.name, t.lines[r], idc,
                     f"{what} for unknown participant {labels[codes[r]][:40]!r} "
                     f"(not in {part.name})")
    problems.n_total += max(int(unknown.sum()) - min(int(unknown.sum()), problems.limit), 0)
    return pidx


def _day_column(t: Table) -> str:
    """The day column of a diary or biomarker table (a study day column first, else ``date``)."""
    dayc = t.find(DAY_ALIASES)
    datec = t.find(DATE_ALIASES)
    if dayc is None and datec is None:
        raise DataValidationError([Problem(
            t.name, 1, None, f"no day column; expected one of {list(DATE_ALIASES + DAY_ALIASES)}"
            f", found {list(t.columns)}")])
    return dayc if dayc is not None else datec


def _refuse_ambiguous_dates(opts: DiaryOptions, columns: list[tuple[Table, str | None, bool]]
                            ) -> None:
    """Refuse ``date_format="auto"`` when every slash date read is ambiguous.

    ``columns``: (table, column or None, whether integer day counters are allowed) of every date
    column read together (diary, participants' randomisation dates, biomarkers), so that one
    file's unambiguous date (a field > 12) settles the layout for all of them.
    """
    if opts.date_format != "auto":
        return
    found = [(t, col, auto_slash_dates(t, col, allow_counter=counter))
             for t, col, counter in columns if col is not None]
    values = [v for *_, vals in found for v in vals]
    if not slash_dates_ambiguous(values):
        return
    t, col, vals = next(f for f in found if f[2])
    line, first = first_cell_with(t, col, vals) or (None, sorted(vals)[0])
    files = " and ".join(dict.fromkeys(f[0].name for f in found if f[2]))
    raise DataValidationError([Problem(
        t.name, line, col,
        f"{first!r} is ambiguous: day and month are <= 12 in every slash date of {files}, so "
        "DD/MM/YYYY and MM/DD/YYYY both fit; give --date-format '%d/%m/%Y' (DD/MM/YYYY) or "
        "--date-format '%m/%d/%Y' (MM/DD/YYYY) (allowed: auto, iso or a strptime format)")])


def _study_days(t: Table, part: _Participants, pidx: np.ndarray, opts: DiaryOptions,
                problems: Problems) -> np.ndarray:
    col = _day_column(t)
    days, calendar = column_days(t, col, problems, date_format=opts.date_format,
                                 counter_only=col == t.find(DAY_ALIASES))
    if calendar:
        if not part.has_rand:
            raise DataValidationError([Problem(
                part.name, 1, None, f"{t.name} has calendar dates, so the participants file needs "
                f"a randomization date column (one of {list(RAND_ALIASES)})")])
        known = pidx >= 0
        rd = np.full(days.size, np.nan)
        rd[known] = part.rand_day[pidx[known]]
        need = known & np.isnan(rd) & ~np.isnan(days)
        if part.rand_unparsed is not None and part.rand_unparsed.size:  # reported: not a date
            need &= ~part.rand_unparsed[np.maximum(pidx, 0)]
        for p in np.unique(pidx[need])[: problems.limit].tolist():
            problems.add(part.name, part.line_of[p], part.rand_col,
                         f"missing randomization date for {part.labels[p][:40]!r} "
                         f"(needed: {t.name} has calendar dates)")
        days = days - rd
    a, b = opts.study_window_days
    out = ~np.isnan(days) & ((days < a) | (days > b))
    if out.any():
        problems.add_many(t.name, t.lines[out], col,
                          f"{'date' if calendar else 'study day'} outside the study window "
                          f"(study days {a}..{b} from randomisation)")
        days = np.where(out, np.nan, days)
    return days


def _resolve_duplicates(t: Table, idc: str, pidx, day, values, policy, problems, what
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    ok = (pidx >= 0) & ~np.isnan(day)
    rows = np.flatnonzero(ok)
    if rows.size == 0:
        return rows, day[rows], values[rows], 0
    key = pidx[rows].astype(np.int64) * (1 << 32) + (day[rows].astype(np.int64) + (1 << 31))
    order = np.argsort(key, kind="stable")
    rows, key = rows[order], key[order]
    same = key[1:] == key[:-1]
    if not same.any():
        return rows, day[rows], values[rows], 0
    if policy == "error":
        for k in np.flatnonzero(same)[: problems.limit].tolist():
            problems.add(t.name, t.lines[rows[k + 1]], None,
                         f"duplicate {what}: same participant and day as line {t.lines[rows[k]]}")
        problems.n_total += max(int(same.sum()) - problems.limit, 0)
        return rows, day[rows], values[rows], 0
    start = np.flatnonzero(np.concatenate([[True], ~same]))
    v = values[rows]
    fn = {"max": np.fmax.reduceat, "min": np.fmin.reduceat}.get(policy)
    if fn is not None:
        res = fn(v, start)
    else:
        s = np.add.reduceat(np.nan_to_num(v), start)
        c = np.add.reduceat((~np.isnan(v)).astype(float), start)
        with np.errstate(invalid="ignore"):
            res = np.where(c > 0, s / np.maximum(c, 1), np.nan)
    return rows[start], day[rows[start]], res, int(same.sum())


def _check_amounts(t: Table, idc: str, col: str, amount: np.ndarray, unit: str, factor: float,
                   opts: DiaryOptions, problems: Problems) -> None:
    """Negative and implausible amounts, each named with its value, participant and day.

    ``amount`` is in US standard drinks (the file's value times ``factor``).
    """
    neg = amount < 0
    huge = amount > opts.max_drinks_per_day
    if not (neg.any() or huge.any()):
        return
    raw = column_strings(t, col)
    ids = column_strings(t, idc)
    dayc = t.find(DAY_ALIASES) or t.find(DATE_ALIASES)
    days = column_strings(t, dayc) if dayc is not None else np.full(raw.size, "?", object)
    in_units = "" if unit == "us_standard_drinks" else f" {unit} = "

    def where(i: int) -> str:
        return f"participant {str(ids[i])[:40]!r}, {dayc} {days[i]}"

    def shown(i: int) -> str:
        return f"{raw[i]}{in_units}{amount[i]:.4g}" if in_units else str(raw[i])

    for i in np.flatnonzero(neg)[: problems.limit].tolist():
        problems.add(t.name, t.lines[i], col,
                     f"negative number of drinks: {shown(i)} ({where(i)}); allowed 0 or more "
                     f"US standard drinks, or {NUMBER_MISSING_SHOWN} for a missing day")
    for i in np.flatnonzero(huge)[: problems.limit].tolist():
        problems.add(t.name, t.lines[i], col,
                     f"implausible: {shown(i)} US standard drinks ({where(i)}), more than "
                     f"{opts.max_drinks_per_day:g} in a day; check the units (--units "
                     "us_standard_drinks, uk_units or grams)")
    # beyond the listed ones, count the rest
    problems.n_total += max(int(neg.sum()) - problems.limit, 0) + \
        max(int(huge.sum()) - problems.limit, 0)


def load_trial_data(
    diary: str | Path | bytes,
    participants: str | Path | bytes,
    biomarkers: str | Path | bytes | None = None,
    *,
    options: DiaryOptions | dict | None = None,
    salt: bytes | str | None = None,
    names: tuple[str, str, str] | None = None,
) -> DrinkingData:
    """Read, validate and assemble diaries into a :class:`DrinkingData`.

    Parameters
    ----------
    diary, participants, biomarkers
        Paths (CSV/TSV/Parquet) or file contents as bytes.
    options
        :class:`DiaryOptions` or a dict of them.
    salt
        Pseudonymisation key (>= 8 bytes); default: random per run.
    names
        File names for messages when passing bytes.

    Raises
    ------
    DataValidationError
        Every problem found (file, line, column, message), up to ``max_problems`` listed.
    """
    opts = _options(options)
    problems = Problems(limit=opts.max_problems)
    nd, npn, nb = names or (None, None, None)
    pt = read_table(participants, name=npn, problems=problems)
    if pt.has_no_records:
        # nothing to score; every diary row would be reported as an unknown participant
        raise DataValidationError([pt.no_records_problem("one row per participant")])
    dt = read_table(diary, name=nd, problems=problems)
    if dt.has_no_records:
        # a header-only diary would be scored as every participant missing every day; said
        # first, as nothing else about it (columns, dates) means anything
        raise DataValidationError([dt.no_records_problem("one row per participant-day")])
    bt = None if biomarkers is None else read_table(biomarkers, name=nb, problems=problems)
    # one reading of slash dates for every file: they share the randomisation dates
    # (a missing column is reported below, in the order of the checks)
    _refuse_ambiguous_dates(opts, [
        # a study-day column holds day counters, never dates: only a date column is read so
        (dt, None if dt.find(DAY_ALIASES) else dt.find(DATE_ALIASES), True),
        (pt, pt.find(RAND_ALIASES), False),
        *([] if bt is None else [(bt, None if bt.find(DAY_ALIASES) else bt.find(DATE_ALIASES),
                                  True)]),
    ])
    part = _parse_participants(pt, opts, problems)
    idc = _need(dt, ID_ALIASES, "participant id")
    amount_col = dt.find(DRINKS_ALIASES)
    unit = opts.units
    if amount_col is None:
        amount_col = dt.find(UK_ALIASES)
        unit = "uk_units"
    if amount_col is None:
        raise DataValidationError([Problem(
            dt.name, 1, None, f"no drinks column; expected one of "
            f"{list(DRINKS_ALIASES + UK_ALIASES)}, found {list(dt.columns)}")])
    pidx = _map_ids(dt, idc, part, problems, "diary row")
    day = _study_days(dt, part, pidx, opts, problems)
    factor = UNIT_GRAMS[unit] / GRAMS_ETHANOL_PER_US_STANDARD_DRINK
    amount = column_floats(dt, amount_col, problems, what="a number of drinks") * factor
    _check_amounts(dt, idc, amount_col, amount, unit, factor, opts, problems)
    rows, rday, rval, n_dup = _resolve_duplicates(dt, idc, pidx, day, amount, opts.duplicates,
                                                  problems, "diary day")
    # biomarkers are validated before raising so that every file's problems are reported at once
    bio = None
    if bt is not None:
        *bio, n_untested = _parse_biomarkers(bt, part, opts, problems)
    problems.raise_if_any()

    n = part.labels.size
    if n == 0:
        raise DataValidationError([Problem(pt.name, None, None, "no participants")])
    if rday.size == 0:  # unreachable after the checks above (every row used or a problem)
        raise DataValidationError([Problem(dt.name, None, None, "no usable diary row")])
    # the diary's own days: day 0 is not added (a diary from day 1 on would otherwise get a
    # missing day 0, scored as a heavy day under the default handling), nor are biomarker days
    # outside the diary (they hold no report to override)
    first, last = int(rday.min()), int(rday.max())
    d = last - first + 1
    drinks = np.full((n, d), np.nan)
    status = np.full((n, d), DayStatus.NO_ROW, np.uint8)
    p, c = pidx[rows], (rday - first).astype(np.int64)
    drinks[p, c] = rval
    status[p, c] = np.where(np.isnan(rval), DayStatus.MISSING, DayStatus.REPORTED)
    # days without a row: each participant's own span is from their first to their last row
    no_row = status == DayStatus.NO_ROW
    own_first = np.full(n, d, np.int64)
    own_last = np.full(n, -1, np.int64)
    np.minimum.at(own_first, p, c)
    np.maximum.at(own_last, p, c)
    cols = np.arange(d)
    inside = no_row & (cols >= own_first[:, None]) & (cols <= own_last[:, None])
    if opts.absent_days == "abstinent":
        drinks[inside] = 0.0
        status[inside] = DayStatus.NO_ROW_ABSTINENT
    prov: dict = {
        "files": {"diary": dt.name, "participants": pt.name},
        "units_in": unit,
        "units_out": "us_standard_drinks (14 g ethanol)",
        "conversion_factor_to_us_standard_drinks": factor,
        "n_participants": int(n),
        "n_diary_rows": int(dt.n_rows),
        "n_missing_day_rows": int(np.isnan(rval).sum()),
        "duplicates_policy": opts.duplicates,
        "n_duplicate_rows_resolved": n_dup,
        "study_window_days": list(opts.study_window_days),
        "n_participants_without_diary_rows": int(n - np.unique(p).size),
        # the grid runs from the diary's first to its last day for everyone
        "n_participant_days_without_row": int(no_row.sum()),
        "n_participant_days_without_row_inside_own_diary": int(inside.sum()),
        "absent_days": (
            "a day without a row between a participant's own first and last rows = 0 drinks; "
            "outside that span a missing day" if opts.absent_days == "abstinent"
            else "a day without a row = a missing day"),
    }
    if bio is not None:
        bp, bd, bpos = bio
        bc = (bd - first).astype(np.int64)
        inside = (bc >= 0) & (bc < d)
        # only a self-reported abstinent day is contradicted; a missing day stays missing (the
        # endpoints' missing-data handling applies), since EtG gives no amount; a day outside
        # the diary's days is a missing day too
        cell = np.full(bp.size, np.nan)
        cell[inside] = drinks[bp[inside], bc[inside]]
        hit = bpos & (cell == 0)
        drinks[bp[hit], bc[hit]] = opts.biomarker_override_drinks
        status[bp[hit], bc[hit]] = DayStatus.BIOMARKER_OVERRIDE
        key = bp.astype(np.int64) * (1 << 32) + (bc + (1 << 31))  # one per participant-day
        prov["files"]["biomarkers"] = nb or str(biomarkers)
        prov["biomarker_rule"] = (
            f"positive result on a self-reported abstinent day -> "
            f"{opts.biomarker_override_drinks:g} US standard drink(s); missing days stay missing")
        prov["n_biomarker_rows"] = int(bp.size)
        prov["n_biomarker_rows_without_result"] = int(n_untested)
        prov["n_days_overridden_by_biomarker"] = int(np.unique(key[hit]).size)
        on_missing = bpos & np.isnan(cell)
        prov["n_positive_biomarker_on_missing_days"] = int(np.unique(key[on_missing]).size)
    prov["imputation"] = {"method": opts.imputation}
    if opts.imputation != "none":
        filled, imp = impute_missing_days(drinks, opts.imputation,
                                          value_drinks=opts.imputation_value_drinks,
                                          max_gap_days=opts.imputation_max_gap_days)
        drinks = filled
        status[imp] = DayStatus.IMPUTED
        prov["imputation"].update(
            value_drinks=opts.imputation_value_drinks if opts.imputation == "fixed" else None,
            max_gap_days=opts.imputation_max_gap_days, n_days_imputed=int(imp.sum()),
            scope="interior gaps between two reported days only")
    user_salt = salt is not None
    key = salt if user_salt else new_salt()
    pseudo = pseudonymise_ids(part.labels, key)
    prov["pseudonymisation"] = {
        "method": "HMAC-SHA-256 keyed hash, 'P' + 16 hex digits",
        "salt": "user-given (not stored)" if user_salt else "random per run (not stored)",
    }
    return DrinkingData(
        participant_ids=part.labels.astype(object),
        pseudonyms=pseudo,
        arm=part.arm,
        is_female=part.is_female,
        sex_known=part.sex_known,
        first_study_day=first,
        drinks_per_day=drinks,
        status=status,
        weight_kg=part.weight_kg,
        table_baseline_drinks_per_week=part.baseline,
        randomization_day=part.rand_day,
        provenance=prov,
        _salt=key.encode() if isinstance(key, str) else key,
    )


def _parse_biomarkers(t: Table, part: _Participants, opts: DiaryOptions, problems: Problems
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    if t.has_no_records:
        # a biomarker file given but empty is almost surely the wrong file
        problems.add(t.name, None, None, t.no_records_problem(
            "one row per biomarker test").message)
    idc = _need(t, ID_ALIASES, "participant id")
    pidx = _map_ids(t, idc, part, problems, "biomarker row")
    day = _study_days(t, part, pidx, opts, problems)
    bc = t.find(BIO_BOOL_ALIASES)
    nc = t.find(BIO_NUM_ALIASES)
    if bc is None and nc is None:
        raise DataValidationError([Problem(
            t.name, 1, None, f"no biomarker result column; expected one of "
            f"{list(BIO_BOOL_ALIASES + BIO_NUM_ALIASES)}, found {list(t.columns)}")])
    pos = np.zeros(t.n_rows, bool)
    valid = np.ones(t.n_rows, bool)
    n_untested = 0
    if bc is not None:
        for i, s in enumerate(column_strings(t, bc).tolist()):
            low = s.lower()
            if low in _POS:
                pos[i] = True
            elif is_missing_token(s):  # no sample that day: not a result (counted)
                valid[i] = False
                n_untested += 1
            elif low not in _NEG:
                valid[i] = False
                problems.add(t.name, t.lines[i], bc,
                             f"{s[:20]!r} is not a result; allowed positive/negative, 1/0")
    else:
        if opts.etg_cutoff_ng_ml is None:
            raise DataValidationError([Problem(
                t.name, 1, nc, "numeric EtG needs etg_cutoff_ng_ml (laboratory cutoff, ng/mL)")])
        v = column_floats(t, nc, problems, what="a concentration in ng/mL")
        valid = ~np.isnan(v)
        n_untested = int((~valid).sum())
        neg = valid & (v < 0)
        if neg.any():
            problems.add_many(t.name, t.lines[neg], nc, "negative concentration")
        pos = valid & (v >= opts.etg_cutoff_ng_ml)
    ok = (pidx >= 0) & ~np.isnan(day) & valid
    return pidx[ok], day[ok], pos[ok], n_untested


def _select_replicate(rd: Path, replicate: int | None
                      ) -> tuple[bytes | Path, bytes | Path, int | None]:
    """Patients / drinking tables restricted to one replicate when the run holds several."""
    import io

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    pp, dp = rd / "patients.parquet", rd / "drinking.parquet"
    try:
        schema = pq.read_schema(pp)
    except Exception as exc:
        raise InputError(f"{pp}: cannot read Parquet: {exc}".splitlines()[0]) from None
    if "replicate" not in schema.names:
        if replicate is not None:
            raise InputError(f"{pp}: no 'replicate' column, so --replicate cannot be used")
        return dp, pp, None
    try:
        patients = pq.read_table(pp)
        reps = sorted({int(r) for r in patients.column("replicate").to_pylist() if r is not None})
    except Exception as exc:
        raise InputError(f"{pp}: cannot read column 'replicate': {exc}".splitlines()[0]) from None
    if replicate is None:
        if len(reps) <= 1:
            return dp, pp, (reps[0] if reps else None)
        raise InputError(f"{rd} holds {len(reps)} replicates {reps[:10]}"
                         f"{'...' if len(reps) > 10 else ''}; choose one with --replicate R "
                         "(replicates are separate trials and are not pooled)")
    if replicate not in reps:
        raise InputError(f"--replicate {replicate}: not in {rd}; available {reps[:20]}")
    sel = patients.filter(pc.equal(patients.column("replicate"), replicate))
    drinking = pq.read_table(dp)
    drinking = drinking.filter(pc.is_in(drinking.column("patient_id"),
                                        value_set=sel.column("patient_id").combine_chunks()))

    def _bytes(t: pa.Table) -> bytes:
        buf = io.BytesIO()
        pq.write_table(t, buf)
        return buf.getvalue()

    return _bytes(drinking), _bytes(sel), replicate


def read_run_metadata(run_dir: str | Path) -> dict | None:
    """A trial run directory's ``metadata.json`` (None if it has none); invalid JSON raises
    :class:`InputError` naming the file."""
    import json

    mp = Path(run_dir) / "metadata.json"
    if not mp.is_file():
        return None
    try:
        return json.loads(mp.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{mp}: invalid JSON: {exc}") from None


def load_run_dir(run_dir: str | Path, *, options: DiaryOptions | dict | None = None,
                 salt: bytes | str | None = None, replicate: int | None = None,
                 biomarkers: str | Path | None = None) -> tuple[DrinkingData, dict]:
    """Load a simulated trial run directory (CONTRACTS.md) with the same code as real diaries.

    Uses ``patients.parquet`` (patient_id, arm, sex) and ``drinking.parquet`` (patient_id,
    study_day, drinks_reported); ``drinks_true`` is never read. When ``patients.parquet`` has a
    ``replicate`` column with several values, one replicate must be chosen (replicates are
    separate simulated trials and are never pooled). Returns the data and the run's
    ``metadata.json`` (empty dict if absent). ``biomarkers`` (e.g. the run's own
    ``drinking.parquet``, whose ``etg_positive`` column is a simulated EtG result; blank = no
    sample) applies the biomarker override exactly as for real diaries.
    """
    rd = Path(run_dir)
    for f in ("patients.parquet", "drinking.parquet"):
        if not (rd / f).is_file():
            raise InputError(f"{rd}: not a run directory: {f} is missing "
                             "(expected spec.toml, metadata.json, patients.parquet, "
                             "drinking.parquet)")
    opts = _options(options)
    if "study_window_days" not in opts.model_fields_set:
        # simulated runs may span long follow-ups: unless the user set a window, accept any day
        opts = opts.model_copy(update={"study_window_days": (-100_000, 100_000)})
    if "max_drinks_per_day" not in opts.model_fields_set:
        # the bound catches entry errors in hand-made diaries; a simulated report is machine
        # written, and the recall noise of a long lag can put a rare report of a 40-drink day
        # above 100 (session 16: `analyze RUN --baseline=-28:-1` refused an untreated run)
        opts = opts.model_copy(update={"max_drinks_per_day": math.inf})
    diary, people, rep = _select_replicate(rd, replicate)
    data = load_trial_data(diary, people, biomarkers, options=opts, salt=salt,
                           names=(str(rd / "drinking.parquet"), str(rd / "patients.parquet"),
                                  str(biomarkers)))
    meta = read_run_metadata(rd) or {}
    data.provenance["run_dir"] = str(rd)
    data.provenance["replicate"] = rep
    return data, meta
