"""Diary import: layouts, validation messages, units, biomarkers, imputation, privacy."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconsolidate.data import (
    DataValidationError,
    DayStatus,
    date_shift_days,
    impute_missing_days,
    load_trial_data,
    pseudonymise_ids,
)
from reconsolidate.exceptions import InputError

NAN = np.nan
PEOPLE = (b"id,sex,arm,randomization_date,weight_kg,baseline_drinks_per_week\n"
          b"A1,M,ketamine,2024-01-02,80,35\n"
          b"B2,F,midazolam,2024-01-02,60,\n")
SALT = "test-salt-123"


def _load(diary: bytes, people: bytes = PEOPLE, bio: bytes | None = None, **opts):
    return load_trial_data(diary, people, bio, options=opts or None, salt=SALT,
                           names=("diary.csv", "participants.csv", "etg.csv"))


def test_abstcal_layout_loads_as_is() -> None:
    diary = (b"id,date,amount\nA1,2024-01-01,6\nA1,2024-01-02,0\nA1,2024-01-04,3\n"
             b"B2,2024-01-02,\nB2,2024-01-03,4\n")
    d = _load(diary)
    assert d.first_study_day == -1 and d.last_study_day == 2
    np.testing.assert_array_equal(d.study_days, [-1, 0, 1, 2])
    np.testing.assert_array_equal(d.drinks_per_day,
                                  [[6, 0, np.nan, 3], [np.nan, np.nan, 4, np.nan]])
    assert d.status[1, 1] == DayStatus.MISSING  # blank amount row: a missing day, kept
    assert d.provenance["n_missing_day_rows"] == 1
    np.testing.assert_array_equal(d.is_female, [False, True])
    np.testing.assert_array_equal(d.arm, ["ketamine", "midazolam"])


def test_us_dates_and_day_counters_and_tsv() -> None:
    us = b"id,date,amount\nA1,01/01/2024,6\nA1,01/02/2024,0\n"
    iso = b"id,date,amount\nA1,2024-01-01,6\nA1,2024-01-02,0\n"
    # every slash date fits DD/MM and MM/DD: the layout must be given (see the UK test below)
    us_people = PEOPLE.replace(b"2024-01-02", b"01/02/2024")  # one format for every file
    np.testing.assert_array_equal(_load(us, us_people, date_format="%m/%d/%Y").drinks_per_day,
                                  _load(iso).drinks_per_day)
    # a day field > 12 (12/31) says MM/DD/YYYY, for the other dates too
    us2 = b"id,date,amount\nA1,12/31/2023,3\nA1,01/01/2024,6\nA1,01/02/2024,0\n"
    np.testing.assert_array_equal(_load(us2).drinks_per_day, [[3, 6, 0], [NAN, NAN, NAN]])
    counter = b"id,date,amount\nA1,-1,6\nA1,0,0\n"  # abstcal use_raw_date=False
    np.testing.assert_array_equal(_load(counter).drinks_per_day, _load(iso).drinks_per_day)
    tsv = b"participant_id\tstudy_day\tdrinks\nA1\t-1\t6\nA1\t0\t0\n"
    np.testing.assert_array_equal(_load(tsv).drinks_per_day, _load(iso).drinks_per_day)
    bom16 = "id,date,amount\nA1,2024-01-01,6\nA1,2024-01-02,0\n".encode("utf-16")
    np.testing.assert_array_equal(_load(bom16).drinks_per_day, _load(iso).drinks_per_day)


def test_parquet_equals_csv(tmp_path) -> None:
    diary = b"id,date,amount\nA1,2024-01-01,6\nA1,2024-01-02,0\nB2,2024-01-03,4\n"
    pq.write_table(pa.table({"participant_id": ["A1", "A1", "B2"],
                             "study_day": pa.array([-1, 0, 1], pa.int32()),
                             "drinks": [6.0, 0.0, 4.0]}), tmp_path / "d.parquet")
    pq.write_table(pa.table({"participant_id": ["A1", "B2"], "sex": ["M", "F"],
                             "arm": ["ketamine", "midazolam"]}), tmp_path / "p.parquet")
    a = load_trial_data(tmp_path / "d.parquet", tmp_path / "p.parquet", salt=SALT)
    b = _load(diary)
    np.testing.assert_array_equal(a.drinks_per_day, b.drinks_per_day)
    np.testing.assert_array_equal(a.pseudonyms, b.pseudonyms)


def test_every_problem_named_with_file_line_column() -> None:
    diary = (b"id,date,amount\n"
             b"A1,2024-01-02,0\n"       # line 2 ok
             b"A1,2024-01-03,-6\n"      # line 3 negative
             b"B2,2024-01-02,x\n"       # line 4 non-numeric
             b"ZZ,2024-01-02,1\n"       # line 5 unknown participant
             b"A1,2024-01-02,3\n"       # line 6 duplicate of line 2
             b"B2,2034-01-02,2\n"       # line 7 outside the window
             b"B2,2024-13-02,2\n"       # line 8 unparseable date
             b"A1,2024-01-09\n"         # line 9 truncated row
             b"A1,2024-01-10,1e9\n")    # line 10 implausible amount
    people = b"id,sex,arm,randomization_date\nA1,M,ketamine,2024-01-02\nB2,,midazolam,2024-01-02\n"
    with pytest.raises(DataValidationError) as exc:
        _load(diary, people)
    msg = str(exc.value)
    for expected in [
        "participants.csv:3: column 'sex' missing sex",
        "diary.csv:3: column 'amount' negative",
        "diary.csv:4: column 'amount' 'x' is not a number",
        "diary.csv:5: column 'id' diary row for unknown participant 'ZZ'",
        "diary.csv:6: duplicate diary day: same participant and day as line 2",
        "diary.csv:7: column 'date' date outside the study window",
        "diary.csv:8: column 'date' '2024-13-02' is not a date",
        "diary.csv:9: expected 3 fields",
        "diary.csv:10: column 'amount' implausible",
    ]:
        assert expected in msg, (expected, msg)
    assert exc.value.n_total == 9
    assert isinstance(exc.value, InputError)


def test_problem_list_is_limited_but_counted() -> None:
    rows = b"".join(b"A1,2024-01-%02d,-1\n" % (i + 1) for i in range(30))
    with pytest.raises(DataValidationError) as exc:
        _load(b"id,date,amount\n" + rows, max_problems=5)
    assert len(exc.value.problems) == 5 and exc.value.n_total == 30
    assert "and 25 more" in str(exc.value)


def test_missing_columns_and_randomization_date() -> None:
    with pytest.raises(DataValidationError, match="no drinks column"):
        _load(b"id,date,beer\nA1,2024-01-01,1\n")
    with pytest.raises(DataValidationError, match="randomization date column"):
        _load(b"id,date,amount\nA1,2024-01-01,1\n", b"id,sex,arm\nA1,M,k\n")
    with pytest.raises(DataValidationError,
                       match=r"participants\.csv:2: column 'randomization_date'"):
        _load(b"id,date,amount\nA1,2024-01-01,1\n", b"id,sex,arm,randomization_date\nA1,M,k,\n")


def test_missing_sex_allowed_when_not_required() -> None:
    people = b"id,sex,arm\nA1,,k\n"
    d = _load(b"id,day,drinks\nA1,0,1\n", people, require_sex=False)
    assert not d.sex_known[0]
    with pytest.raises(DataValidationError, match="missing sex"):
        _load(b"id,day,drinks\nA1,0,1\n", people)


def test_uk_units_converted_explicitly() -> None:
    a = _load(b"id,date,uk_units\nA1,2024-01-02,7\n")
    assert a.drinks_per_day[0, 0] == pytest.approx(7 * 8 / 14)  # 7 UK units = 4 US drinks
    b = _load(b"id,date,drinks\nA1,2024-01-02,7\n", units="uk_units")
    assert b.drinks_per_day[0, 0] == pytest.approx(4.0)
    assert b.provenance["conversion_factor_to_us_standard_drinks"] == pytest.approx(8 / 14)
    g = _load(b"id,date,drinks\nA1,2024-01-02,28\n", units="grams")
    assert g.drinks_per_day[0, 0] == pytest.approx(2.0)


def test_biomarker_overrides_self_reported_abstinence() -> None:
    diary = b"id,date,amount\nA1,2024-01-02,0\nA1,2024-01-03,0\nA1,2024-01-04,6\nA1,2024-01-05,0\n"
    bio = (b"id,date,etg_positive\nA1,2024-01-03,positive\nA1,2024-01-04,positive\n"
           b"A1,2024-01-05,negative\n")
    d = _load(diary, bio=bio)
    np.testing.assert_array_equal(d.drinks_per_day[0], [0, 1, 6, 0])
    assert d.status[0, 1] == DayStatus.BIOMARKER_OVERRIDE
    assert d.status[0, 2] == DayStatus.REPORTED
    assert d.provenance["n_days_overridden_by_biomarker"] == 1
    # a positive result on a missing day leaves it missing (no amount is known), counted
    m = _load(b"id,date,amount\nA1,2024-01-02,0\nA1,2024-01-03,\n",
              bio=b"id,date,etg_positive\nA1,2024-01-03,1\nA1,2024-01-02,\n")
    assert np.isnan(m.drinks_per_day[0, 1]) and m.drinks_per_day[0, 0] == 0
    assert m.provenance["n_positive_biomarker_on_missing_days"] == 1
    assert m.provenance["n_biomarker_rows_without_result"] == 1
    num = b"id,date,etg_ng_ml\nA1,2024-01-03,800\nA1,2024-01-05,100\n"
    d2 = _load(diary, bio=num, etg_cutoff_ng_ml=500)
    np.testing.assert_array_equal(d2.drinks_per_day[0], [0, 1, 6, 0])
    with pytest.raises(DataValidationError, match="etg_cutoff_ng_ml"):
        _load(diary, bio=num)
    with pytest.raises(DataValidationError, match=r"etg\.csv:2: column 'etg_positive'"):
        _load(diary, bio=b"id,date,etg_positive\nA1,2024-01-03,maybe\n")


def test_imputation_methods_hand_values() -> None:
    x = np.array([[np.nan, 2.0, np.nan, np.nan, 8.0, np.nan], [0, np.nan, 4, np.nan, np.nan, 1]])
    f, m = impute_missing_days(x, "linear")
    np.testing.assert_allclose(f[0], [np.nan, 2, 4, 6, 8, np.nan])  # edges stay missing
    np.testing.assert_allclose(f[1], [0, 2, 4, 3, 2, 1])
    f, _ = impute_missing_days(x, "neighbour_mean")
    np.testing.assert_allclose(f[0], [np.nan, 2, 5, 5, 8, np.nan])
    f, _ = impute_missing_days(x, "fixed", value_drinks=1.0, max_gap_days=1)
    np.testing.assert_allclose(f[1], [0, 1, 4, np.nan, np.nan, 1])
    assert m.sum() == 5
    d = _load(b"id,day,drinks\nA1,0,2\nA1,3,8\n", imputation="linear")
    np.testing.assert_allclose(d.drinks_per_day[0], [2, 4, 6, 8])
    assert (d.status[0, 1:3] == DayStatus.IMPUTED).all()
    assert d.provenance["imputation"]["n_days_imputed"] == 2


def test_duplicate_policies() -> None:
    diary = b"id,day,drinks\nA1,0,2\nA1,0,6\n"
    with pytest.raises(DataValidationError, match="duplicate"):
        _load(diary)
    assert _load(diary, duplicates="max").drinks_per_day[0, 0] == 6
    assert _load(diary, duplicates="mean").drinks_per_day[0, 0] == 4
    assert _load(diary, duplicates="min").provenance["n_duplicate_rows_resolved"] == 1


def test_invalid_options_are_input_errors() -> None:
    with pytest.raises(InputError, match="units"):
        _load(b"id,day,drinks\nA1,0,2\n", units="pints")
    with pytest.raises(InputError, match="study_window_days"):
        _load(b"id,day,drinks\nA1,0,2\n", study_window_days=(5, 1))


def test_window_and_baseline() -> None:
    d = _load(b"id,day,drinks\nA1,-2,7\nA1,-1,0\nA1,0,2\nB2,1,1\n")
    np.testing.assert_array_equal(d.window(0, 3), [[2, np.nan, np.nan, np.nan],
                                                   [np.nan, 1, np.nan, np.nan]])
    base, src = d.baseline_drinks_per_week()
    # A1 from the diary (mean 3.5/day -> 24.5/week); B2 has no baseline (table blank)
    np.testing.assert_allclose(base, [24.5, np.nan])
    assert "diary" in src
    d2 = _load(b"id,day,drinks\nA1,0,2\n")
    base2, src2 = d2.baseline_drinks_per_week()
    np.testing.assert_allclose(base2, [35.0, np.nan])  # from the participants table
    assert "participants table" in src2


def test_pseudonyms_keyed_and_stable() -> None:
    ids = ["A1", "B2", "A1"]
    p1 = pseudonymise_ids(ids, "salt-one-x")
    assert p1[0] == p1[2] != p1[1]
    np.testing.assert_array_equal(p1, pseudonymise_ids(ids, "salt-one-x"))
    assert not set(p1) & set(pseudonymise_ids(ids, "salt-two-x"))
    with pytest.raises(InputError):
        pseudonymise_ids(ids, "short")


def test_date_shift_keeps_intervals() -> None:
    s = date_shift_days(["a", "b", "c"] * 2, "salt-xyz-1", 30)
    assert np.all(np.abs(s) <= 30)
    np.testing.assert_array_equal(s[:3], s[3:])
    d = _load(b"id,date,amount\nA1,2024-01-02,0\nA1,2024-01-05,1\n")
    t = d.to_long_table(shift_dates_days=30)
    dates = t["date"][t["participant"] == d.pseudonyms[0]]
    assert np.all(np.diff(dates).astype(int) == 1)
    assert abs(int((dates[0] - np.datetime64("2024-01-02")).astype(int))) <= 30


@settings(max_examples=25, deadline=None)
@given(ids=st.lists(st.text("ABCDEFGHJKLMNPQRSTUVWXYZ", min_size=6, max_size=10), min_size=1,
                    max_size=6, unique=True), seed=st.integers(0, 2**31))
def test_outputs_contain_no_original_identifier(ids, seed) -> None:
    ids = ["ID-" + i for i in ids]
    rng = np.random.default_rng(seed)
    people = "id,sex,arm,randomization_date\n" + "".join(
        f"{i},{'MF'[k % 2]},{'ab'[k % 2]},2024-01-02\n" for k, i in enumerate(ids))
    diary = "id,date,amount\n" + "".join(
        f"{i},2024-01-{d:02d},{rng.integers(0, 8)}\n" for i in ids for d in range(1, 6))
    data = load_trial_data(diary.encode(), people.encode())  # random per-run salt
    t = data.to_long_table(shift_dates_days=10)
    buf = io.BytesIO()
    pq.write_table(pa.table({k: np.asarray(v).astype(str) for k, v in t.items()}), buf)
    text = buf.getvalue() + repr(t).encode() + repr(data.provenance).encode()
    for i in ids:
        assert i.encode() not in text


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31))
def test_row_order_does_not_matter(seed) -> None:
    rng = np.random.default_rng(seed)
    rows = [f"{p},{d},{rng.integers(0, 9) if rng.random() > 0.2 else ''}"
            for p in ("A1", "B2") for d in range(-3, 10)]
    perm = rng.permutation(len(rows))
    a = _load(("id,day,drinks\n" + "\n".join(rows)).encode())
    b = _load(("id,day,drinks\n" + "\n".join(rows[i] for i in perm)).encode())
    np.testing.assert_array_equal(a.drinks_per_day, b.drinks_per_day)
    np.testing.assert_array_equal(a.status, b.status)


def test_parquet_calendar_date_columns(tmp_path) -> None:
    import datetime as dt

    pq.write_table(pa.table({
        "id": ["A1", "A1", "B2"],
        "date": pa.array([dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)],
                         pa.date32()),
        "amount": [6.0, 0.0, 4.0]}), tmp_path / "d.parquet")
    pq.write_table(pa.table({
        "id": ["A1", "B2"], "sex": ["M", "F"], "arm": ["k", "m"],
        "randomization_date": pa.array([dt.datetime(2024, 1, 2, 9, 30), dt.datetime(2024, 1, 2)],
                                       pa.timestamp("s"))}), tmp_path / "p.parquet")
    a = load_trial_data(tmp_path / "d.parquet", tmp_path / "p.parquet", salt=SALT)
    csv = _load(b"id,date,amount\nA1,2024-01-01,6\nA1,2024-01-02,0\nB2,2024-01-03,4\n")
    np.testing.assert_array_equal(a.drinks_per_day, csv.drinks_per_day)
    assert a.first_study_day == csv.first_study_day == -1


@pytest.mark.parametrize(("which", "content", "expected"), [
    ("diary", b"id,date,amount\n", "diary.csv: no data rows (only a header line); expected one "
     "row per participant-day"),
    ("diary", b"id,date,amount\r\n\r\n  \n", "diary.csv: no data rows"),
    ("participants", b"id,sex,arm,randomization_date\n", "participants.csv: no data rows (only "
     "a header line); expected one row per participant"),
    ("biomarkers", b"id,date,etg_positive\n", "etg.csv: no data rows (only a header line); "
     "expected one row per biomarker test"),
])
def test_header_only_files_are_rejected_in_one_line(which, content, expected) -> None:
    """A header-only diary used to load as every participant missing every day (and be scored
    in full); now one problem, one line, naming the file."""
    diary = b"id,date,amount\nA1,2024-01-02,0\nB2,2024-01-02,3\n"
    people, bio = PEOPLE, None
    if which == "diary":
        diary = content
    elif which == "participants":
        people = content
    else:
        bio = content
    with pytest.raises(DataValidationError) as exc:
        _load(diary, people, bio)
    msg = str(exc.value)
    assert msg.startswith(expected) and "\n" not in msg
    assert len(exc.value.problems) == 1


def test_zero_row_parquet_and_malformed_rows_are_not_header_only() -> None:
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": pa.array([], pa.string()), "study_day": pa.array([], pa.int32()),
                             "drinks": pa.array([], pa.float64())}), buf)
    with pytest.raises(DataValidationError,
                       match=r"^diary\.csv: no data rows \(only the column names\)"):
        _load(buf.getvalue())
    # rows that all have the wrong field count are reported as such, not as "no data rows"
    with pytest.raises(DataValidationError) as exc:
        _load(b"id,date,amount\nA1,2024-01-02\n")
    assert "expected 3 fields" in str(exc.value) and "no data rows" not in str(exc.value)
    # several problems keep the counted multi-line layout
    with pytest.raises(DataValidationError, match=r"^2 problem\(s\) in the input data:\n  "):
        _load(b"id,date,amount\nA1,2024-01-02,-1\nB2,2024-01-02,-2\n")


def test_day_range_is_the_diarys_own() -> None:
    """Day 0 used to be added to every diary (a diary of days 1..3 got a missing day 0, scored
    as a heavy day); biomarker days outside the diary add no day either."""
    d = _load(b"id,day,drinks\nA1,1,0\nA1,3,2\nB2,2,1\n")
    assert (d.first_study_day, d.last_study_day) == (1, 3)
    np.testing.assert_array_equal(d.drinks_per_day, [[0, NAN, 2], [NAN, 1, NAN]])
    # a positive EtG on day 1 overrides A1's reported 0; on day 9 (no diary day) it is a
    # positive on a missing day
    b = _load(b"id,day,drinks\nA1,1,0\nA1,3,2\nB2,2,1\n",
              bio=b"id,day,etg_positive\nA1,1,1\nA1,9,1\n")
    assert (b.first_study_day, b.last_study_day) == (1, 3)
    np.testing.assert_array_equal(b.drinks_per_day[0], [1, NAN, 2])
    assert b.provenance["n_days_overridden_by_biomarker"] == 1
    assert b.provenance["n_positive_biomarker_on_missing_days"] == 1


def test_slash_dates_read_together_over_every_file() -> None:
    """Ambiguous dates (both fields <= 12) in every file are refused with the flag to use; one
    unambiguous date in any of the files (here a randomisation on 02/29) settles MM/DD."""
    diary = b"id,date,amount\nA1,03/01/2024,2\nA1,03/02/2024,0\n"
    people = b"id,sex,arm,randomization_date\nA1,M,k,03/01/2024\nB2,F,m,03/01/2024\n"
    with pytest.raises(DataValidationError) as exc:
        _load(diary, people)
    msg = str(exc.value)
    assert msg.startswith("diary.csv:2: column 'date' '03/01/2024' is ambiguous: day and month "
                          "are <= 12 in every slash date of diary.csv and participants.csv")
    assert "--date-format '%d/%m/%Y'" in msg and "\n" not in msg
    d = _load(diary, people.replace(b"B2,F,m,03/01/2024", b"B2,F,m,02/29/2024"))
    np.testing.assert_array_equal(d.drinks_per_day[0], [2, 0])
    assert d.first_study_day == 0
    uk = _load(diary, people, date_format="%d/%m/%Y")  # 3 January and 3 February 2024
    assert (uk.first_study_day, uk.last_study_day) == (0, 31)


@pytest.mark.parametrize(("column", "cell"), [("amount", "none"), ("amount", "NaN"),
                                              ("amount", "null"), ("weight_kg", "none")])
def test_number_columns_accept_only_empty_na_and_dot_as_missing(column, cell) -> None:
    base = b"id,date,amount\nA1,2024-01-02,0\nB2,2024-01-02,NA\nB2,2024-01-03,.\n"
    diary, people = base, PEOPLE
    if column == "amount":
        diary = base + f"A1,2024-01-03,{cell}\n".encode()
    else:
        people = PEOPLE.replace(b",80,", f",{cell},".encode())
    with pytest.raises(DataValidationError) as exc:
        _load(diary, people)
    where = "diary.csv:5: column 'amount'" if column == "amount" else \
        "participants.csv:2: column 'weight_kg'"
    assert str(exc.value).startswith(f"{where} {cell!r} is ")
    d = _load(base)  # NA and . are missing days
    np.testing.assert_array_equal(d.drinks_per_day, [[0, NAN], [NAN, NAN]])
    assert d.provenance["n_missing_day_rows"] == 2


def test_days_without_a_row_are_counted_and_absent_days_abstinent_fills_them() -> None:
    """A diary listing drinking days only: the days without a row are missing by default (and
    counted), or 0 drinks between each participant's own first and last rows with
    absent_days = "abstinent" (review, session 12: such a diary scored 89% heavy days)."""
    diary = (b"id,study_day,drinks\nA1,-2,0\nA1,1,6\nA1,4,0\n"
             b"B2,0,3\nB2,2,0\n")
    d = _load(diary)
    assert d.first_study_day == -2 and d.last_study_day == 4
    no_row_a1 = np.isnan(d.drinks_per_day[0]) & (d.status[0] == DayStatus.NO_ROW)
    assert no_row_a1.tolist() == [False, True, True, False, True, True, False]
    assert d.provenance["n_participant_days_without_row"] == 4 + 5
    # inside the own span: A1 -1, 0, 2, 3; B2 1
    assert d.provenance["n_participant_days_without_row_inside_own_diary"] == 5
    assert d.days_without_row(0, 4).tolist() == [3, 3]
    assert d.days_without_row(-5, 6).tolist() == [4 + 5, 5 + 5]  # days beyond the diary too
    a = _load(diary, absent_days="abstinent")
    np.testing.assert_array_equal(a.drinks_per_day[0], [0, 0, 0, 6, 0, 0, 0])
    np.testing.assert_array_equal(a.drinks_per_day[1], [NAN, NAN, 3, 0, 0, NAN, NAN])
    assert (a.status == DayStatus.NO_ROW_ABSTINENT).sum() == 5
    assert a.days_without_row(0, 4).tolist() == [0, 2]  # B2's days 3, 4 stay missing
    assert "0 drinks" in a.provenance["absent_days"]
    long = a.to_long_table()
    assert "no_row_abstinent" in set(long["status"]) and "no_row" in set(long["status"])


def test_study_day_column_takes_integral_floats_and_never_dates() -> None:
    """R and pandas write study days as 0.0, 1.0: read as days (they were taken for calendar
    dates and refused); a fraction or a word is named as not a study day."""
    d = _load(b"id,study_day,drinks\nA1,0.0,1\nA1,1.0,2\nB2,-1.00,0\n")
    assert (d.first_study_day, d.last_study_day) == (-1, 1)
    with pytest.raises(DataValidationError) as exc:
        _load(b"id,study_day,drinks\nA1,0.5,1\nA1,x,2\nB2,01/02/2024,0\n")
    msgs = [p.message for p in exc.value.problems]
    assert msgs == ["'0.5' is not a study day (an integer such as -3 or 28)",
                    "'x' is not a study day (an integer such as -3 or 28)",
                    "'01/02/2024' is not a study day (an integer such as -3 or 28)"]


def test_iso_randomisation_dates_with_a_day_month_format() -> None:
    """--date-format '%d/%m/%Y' for a UK diary still reads ISO randomisation dates; an
    unreadable one is reported once, naming its own column (it was also reported as
    'missing randomization date', naming randomization_date)."""
    diary = b"id,date,drinks\nA1,01/03/2024,1\nA1,02/03/2024,2\nB2,01/03/2024,0\n"
    people = b"id,sex,arm,rand_date\nA1,M,a,2024-03-01\nB2,F,b,2024-03-01\n"
    d = _load(diary, people, date_format="%d/%m/%Y")
    assert (d.first_study_day, d.last_study_day) == (0, 1)
    with pytest.raises(DataValidationError) as exc:
        _load(diary, people.replace(b"B2,F,b,2024-03-01", b"B2,F,b,2024-13-01"),
              date_format="%d/%m/%Y")
    probs = exc.value.problems
    assert len(probs) == 1 and probs[0].column == "rand_date"
    assert "'2024-13-01' is not a date" in probs[0].message


def test_other_sex_values_need_only_one_threshold() -> None:
    """'other' (or X) is refused while the thresholds are sex-specific, naming the way out;
    with one threshold for both (require_sex False) it is an unknown sex, as a blank one."""
    people = b"id,sex,arm\nA1,other,a\nB2,F,b\n"
    diary = b"id,study_day,drinks\nA1,0,1\nB2,0,2\n"
    with pytest.raises(DataValidationError, match="one threshold for both"):
        _load(diary, people)
    d = _load(diary, people, require_sex=False)
    np.testing.assert_array_equal(d.sex_known, [False, True])


def test_decimal_comma_is_named() -> None:
    """A semicolon CSV with decimal commas: the problem says what to write instead."""
    with pytest.raises(DataValidationError) as exc:
        _load(b"id;study_day;drinks\nA1;0;1,5\nB2;0;2\n")
    assert exc.value.problems[0].message == ("'1,5' is not a number of drinks; a decimal "
                                             "comma? write 1.5")
