"""Reading CSV / Parquet tables into columns, collecting problems with file, line and column.

Every failure to read (bad bytes, broken CSV quoting, corrupt Parquet) becomes a
:class:`DataValidationError` (an :class:`~reconsolidate.exceptions.InputError`); nothing else
escapes, whatever the input (this is fuzz-tested).
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reconsolidate.exceptions import InputError

__all__ = ["Coded", "DataValidationError", "Problem", "Problems", "Table", "read_table"]

_EPOCH = _dt.date(1970, 1, 1)
#: Tokens read as an empty (missing) cell in a text column (ids, arms, sex, dates, biomarker
#: results), case-insensitive.
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", ".", "missing"})
#: The only tokens read as a missing value in a numeric column (amounts of drinks, weights,
#: concentrations), case-insensitive: an empty cell, ``NA`` (R, SPSS exports) and ``.`` (SAS,
#: Stata). Any other word is refused: in a TLFB diary ``none`` may mean 0 drinks as well as
#: "not reported", and a missing day counts as heavy under the default handling, so a word must
#: never become a missing day by guesswork.
NUMBER_MISSING_TOKENS = frozenset({"", "na", "."})
#: How :data:`NUMBER_MISSING_TOKENS` are written in messages.
NUMBER_MISSING_SHOWN = "an empty cell, NA or ."
#: Words that may mean zero as well as "not reported" in a numeric column.
_AMBIGUOUS_ZERO_WORDS = frozenset({"none", "nil", "no", "zero", "nothing", "never"})
#: ``D/M/YYYY`` or ``M/D/YYYY`` (1 or 2 digits each), the layouts ``date_format="auto"`` guesses.
_SLASH_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


@dataclass(frozen=True)
class Problem:
    """One problem in an input file: where (file, line or row, column) and what."""

    file: str
    line: int | None  # CSV: physical line number (1-based, header = 1); Parquet: row + 1
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line is not None else "")
        col = f" column '{self.column}'" if self.column else ""
        return f"{where}:{col} {self.message}"


class DataValidationError(InputError):
    """Invalid input data; :attr:`problems` lists every problem found (up to a limit).

    The message is one line for a single problem (``diary.csv:3: column 'amount' ...``), else a
    header with the count and one indented line per problem.
    """

    def __init__(self, problems: Sequence[Problem], n_total: int | None = None) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p.line or 0))
        self.n_total = len(self.problems) if n_total is None else n_total
        if self.n_total == 1 and len(self.problems) == 1:
            # one problem: one line naming file (line, column) and what is wrong
            super().__init__(str(self.problems[0]))
            return
        shown = "\n".join(f"  {p}" for p in self.problems)
        more = self.n_total - len(self.problems)
        tail = f"\n  ... and {more} more problem(s)" if more > 0 else ""
        super().__init__(f"{self.n_total} problem(s) in the input data:\n{shown}{tail}")


@dataclass
class Problems:
    """Collector of problems across files; :meth:`raise_if_any` raises them together."""

    limit: int = 50
    items: list[Problem] = field(default_factory=list)
    n_total: int = 0

    def add(self, file: str, line: int | None, column: str | None, message: str) -> None:
        self.n_total += 1
        if len(self.items) < self.limit:
            self.items.append(Problem(file, None if line is None else int(line), column, message))

    def add_many(self, file: str, lines: np.ndarray, column: str | None, message: str) -> None:
        """Add one problem per line number (vectorised checks)."""
        lines = np.asarray(lines).reshape(-1)
        room = max(self.limit - len(self.items), 0)
        for ln in lines[:room].tolist():
            self.items.append(Problem(file, int(ln), column, message))
        self.n_total += int(lines.size)

    def raise_if_any(self) -> None:
        if self.n_total:
            raise DataValidationError(self.items, self.n_total)

    def __bool__(self) -> bool:
        return self.n_total > 0


@dataclass
class Table:
    """Columns of one input file, each a list of str (CSV) or a numpy array (Parquet).

    ``lines`` holds the line (CSV) or row + 1 (Parquet) of each record, for messages.
    """

    name: str
    columns: dict[str, list | np.ndarray]
    lines: np.ndarray
    kind: str  # "csv" or "parquet"
    calendar: set[str] = field(default_factory=set)  # columns holding days since 1970-01-01
    #: data records in the file, including CSV records rejected for a wrong field count
    #: (None: equal to :attr:`n_rows`)
    n_records: int | None = None

    @property
    def n_rows(self) -> int:
        """Records kept (well-formed), each with its entry in :attr:`lines`."""
        return int(self.lines.size)

    @property
    def has_no_records(self) -> bool:
        """True for a file with a header but no data record (blank lines do not count)."""
        return (self.n_rows if self.n_records is None else self.n_records) == 0

    def no_records_problem(self, what: str) -> Problem:
        """The problem of a header-only file; ``what`` says what each row should be."""
        only = "the column names" if self.kind == "parquet" else "a header line"
        return Problem(self.name, None, None, f"no data rows (only {only}); expected {what}")

    def find(self, aliases: Sequence[str]) -> str | None:
        """The first column whose (lower-cased, stripped) name is one of ``aliases``."""
        for a in aliases:
            if a in self.columns:
                return a
        return None


def _decode(data: bytes, name: str) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        enc, data = "utf-8", data[3:]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        enc = "utf-16"
    else:
        enc = "utf-8"
    try:
        return data.decode(enc)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1 if enc == "utf-8" else None
        raise DataValidationError([Problem(
            name, line, None,
            f"not valid {enc.upper()} text ({exc.reason} at byte {exc.start}); save the file as "
            "UTF-8 CSV")]) from None


def _read_csv(data: bytes, name: str, problems: Problems) -> Table:
    text = _decode(data, name)
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise DataValidationError([Problem(name, line, None, "contains NUL bytes: not a text CSV")])
    first = text.split("\n", 1)[0]
    delim = "\t" if ("\t" in first and "," not in first) else (
        ";" if (";" in first and "," not in first) else ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, strict=True)
    try:
        header = None
        rows: list[list[str]] = []
        lines: list[int] = []
        prev_end = 0
        for rec in reader:
            start = prev_end + 1
            prev_end = reader.line_num
            if not rec or not "".join(rec).strip():
                continue  # blank line: carries no record
            if header is None:
                header = [c.strip().lower() for c in rec]
                header_line = start
                continue
            rows.append(rec)
            lines.append(start)
    except csv.Error as exc:
        raise DataValidationError([Problem(name, reader.line_num, None,
                                           f"malformed CSV: {exc}")]) from None
    if header is None:
        raise DataValidationError([Problem(name, None, None, "empty file: no header row")])
    seen = set()
    head = Problems()
    for i, h in enumerate(header):
        if not h:
            head.add(name, header_line, None, f"header field {i + 1} is empty")
        elif h in seen:
            head.add(name, header_line, h, "duplicate column name")
        seen.add(h)
    head.raise_if_any()
    ncol = len(header)
    good = []
    keep_lines = []
    for rec, ln in zip(rows, lines, strict=True):
        if len(rec) != ncol:
            problems.add(name, ln, None,
                         f"expected {ncol} fields ({','.join(header)}), got {len(rec)}")
            continue
        keep_lines.append(ln)
        good.append(rec)
    columns = list(zip(*good, strict=True)) if good else [()] * ncol
    cols: dict[str, list] = {h: [v.strip() for v in c] for h, c in zip(header, columns,
                                                                         strict=True)}
    return Table(name, cols, np.asarray(keep_lines, dtype=np.int64), "csv",
                 n_records=len(rows))


@dataclass(frozen=True)
class Coded:
    """A string column stored as integer codes into ``labels`` (code -1 = null)."""

    codes: np.ndarray
    labels: np.ndarray  # object array of str


def _read_parquet(data: bytes, name: str) -> Table:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        tbl = pq.read_table(pa.BufferReader(data))
        names = [str(c) for c in tbl.column_names]
        n_rows = int(tbl.num_rows)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, UnicodeDecodeError, ...
        raise DataValidationError([Problem(name, None, None,
                                           f"cannot read Parquet: {exc}".splitlines()[0][:300])]
                                  ) from None
    cols: dict[str, list | np.ndarray | Coded] = {}
    calendar: set[str] = set()
    for i, cname in enumerate(names):
        key = cname.strip().lower()
        if key in cols:
            raise DataValidationError([Problem(name, 1, key, "duplicate column name")])
        try:
            col = tbl.column(i)
            t = col.type
            if pa.types.is_dictionary(t):
                col = col.cast(t.value_type)
                t = t.value_type
            if pa.types.is_date(t) or pa.types.is_timestamp(t):
                days = col.cast(pa.date32()).cast(pa.int32()).cast(pa.float64())
                cols[key] = np.asarray(days.fill_null(np.nan).to_numpy(), dtype=np.float64)
                calendar.add(key)
            elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
                arr = col.cast(pa.float64()).fill_null(np.nan).to_numpy()
                cols[key] = np.asarray(arr, dtype=np.float64)
            else:
                enc = pc.dictionary_encode(col.cast(pa.string())).combine_chunks()
                codes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False)
                labels = np.asarray(enc.dictionary.to_pylist(), dtype=object)
                cols[key] = Coded(np.asarray(codes, dtype=np.int64), labels)
        except Exception as exc:  # unsupported types, invalid UTF-8 in strings, ...
            raise DataValidationError([Problem(
                name, None, key, f"unsupported or corrupt column: {exc}".splitlines()[0][:300])]
            ) from None
    return Table(name, cols, np.arange(2, n_rows + 2, dtype=np.int64), "parquet", calendar)


def read_table(
    source: str | Path | bytes,
    *,
    name: str | None = None,
    kind: str | None = None,
    problems: Problems | None = None,
) -> Table:
    """Read a CSV/TSV (UTF-8 or UTF-16 with BOM) or Parquet table.

    Parameters
    ----------
    source
        A path, or the file's bytes (then give ``name`` for messages).
    name
        File name used in messages (default: the path).
    kind
        ``"csv"`` or ``"parquet"``; default from the extension or the ``PAR1`` magic bytes.
    problems
        Collector for row-level problems (wrong field counts); created if None and raised.
    """
    own = problems is None
    problems = Problems() if problems is None else problems
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
        name = name or "<input>"
    else:
        p = Path(source)
        name = name or str(p)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise DataValidationError([Problem(name, None, None, "file not found")]) from None
        except IsADirectoryError:
            raise DataValidationError([Problem(name, None, None, "is a directory")]) from None
        except OSError as exc:
            raise DataValidationError([Problem(name, None, None, f"cannot read: {exc}")]) from None
        if kind is None and p.suffix.lower() in (".parquet", ".pq"):
            kind = "parquet"
    if kind is None:
        kind = "parquet" if data[:4] == b"PAR1" else "csv"
    if kind not in ("csv", "parquet"):
        raise InputError(f"{name}: unknown table kind {kind!r}: allowed 'csv' or 'parquet'")
    table = _read_parquet(data, name) if kind == "parquet" else _read_csv(data, name, problems)
    if own:
        problems.raise_if_any()
    return table


# ---------------------------------------------------------------------------------------------
# typed column extraction (problems are collected, never raised here)


def is_missing_token(s: str) -> bool:
    return s.strip().lower() in MISSING_TOKENS


def column_strings(table: Table, col: str) -> np.ndarray:
    """The column as an object array of stripped strings ('' for null)."""
    v = table.columns[col]
    if isinstance(v, Coded):
        lab = np.array([str(x).strip() for x in v.labels.tolist()] + [""], dtype=object)
        return lab[v.codes]  # code -1 picks the trailing ""
    if col in table.calendar:
        return np.array(["" if np.isnan(d) else (_EPOCH + _dt.timedelta(days=int(d))).isoformat()
                         for d in v], dtype=object)
    if isinstance(v, np.ndarray) and v.dtype == np.float64:
        return np.array(["" if np.isnan(x) else (str(int(x)) if x == int(x) and abs(x) < 1e15
                                                 else repr(float(x))) for x in v], dtype=object)
    if isinstance(v, list):  # CSV cells are stripped str already
        out = np.empty(len(v), dtype=object)
        out[:] = v
        return out
    return np.array(["" if x is None else str(x).strip() for x in v], dtype=object)


def column_floats(
    table: Table, col: str, problems: Problems, *, what: str = "a number"
) -> np.ndarray:
    """Column as float64; a missing value -> NaN; text that is not a number -> problem, NaN.

    Only :data:`NUMBER_MISSING_TOKENS` (an empty cell, ``NA``, ``.``) are missing values; any
    other text that is not a number (``none``, ``nan``, ``null``, ``missing``, ...) is a problem,
    so that no word becomes a missing day by guesswork. Non-finite values ('inf') are problems
    too. Returns the values and records a problem for each unparseable cell.
    """
    v = table.columns[col]
    if isinstance(v, np.ndarray) and col not in table.calendar:
        out = np.array(v, dtype=np.float64)
        bad = np.isinf(out)
        if bad.any():
            problems.add_many(table.name, table.lines[bad], col, f"not finite: expected {what}")
            out[bad] = np.nan
        return out
    strs = column_strings(table, col)
    out = np.full(strs.size, np.nan)
    cache: dict[str, float] = {}
    for i, s in enumerate(strs.tolist()):
        if s in cache:
            out[i] = cache[s]
            continue
        val = np.nan
        if s.lower() not in NUMBER_MISSING_TOKENS:
            try:
                val = float(s.replace("_", "x"))  # reject Python's 1_000 digit grouping
            except (ValueError, OverflowError):
                val = None
            if val is None or np.isnan(val):  # 'nan' text is not a missing-value code
                problems.add(table.name, table.lines[i], col, _not_a_number(s, what))
                continue
            if not np.isfinite(val):
                problems.add(table.name, table.lines[i], col, f"{_show(s)} is not finite")
                continue
        cache[s] = val
        out[i] = val
    return out


def _not_a_number(s: str, what: str) -> str:
    """The problem of a numeric cell ``s`` that is not a number (nor a missing-value code)."""
    low = s.strip().lower()
    if low in _AMBIGUOUS_ZERO_WORDS and "drink" in what:  # "none" = 0 drinks, or no report?
        return (f"{_show(s)} is ambiguous (zero, or not reported?): write 0 for none, or "
                f"{NUMBER_MISSING_SHOWN} for a missing value")
    if low in MISSING_TOKENS or low.isalpha():
        return (f"{_show(s)} is not {what}; a missing value is written as "
                f"{NUMBER_MISSING_SHOWN}")
    if re.fullmatch(r"[+-]?\d+,\d+", low):  # 1,5: a decimal comma (a semicolon CSV)
        return f"{_show(s)} is not {what}; a decimal comma? write {low.replace(',', '.')}"
    return f"{_show(s)} is not {what}"


def _show(s: str, n: int = 40) -> str:
    r = repr(s)
    return r if len(r) <= n else r[: n - 4] + "...'"


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_date(s: str, date_format: str) -> int | None:
    """Days since 1970-01-01 of a date string, or None if it does not parse."""
    try:
        if date_format == "iso":
            if len(s) > 32:
                return None
            d = _dt.date.fromisoformat(s[:10]) if ("T" in s or " " in s) and len(s) > 10 \
                else _dt.date.fromisoformat(s)
        else:
            try:
                d = _dt.datetime.strptime(s, date_format).date()
            except ValueError:
                # an ISO date (YYYY-MM-DD) cannot be misread, whatever format the other files
                # use: a DD/MM diary with ISO randomisation dates is read as it is meant
                if not _ISO_DATE.fullmatch(s):
                    raise
                d = _dt.date.fromisoformat(s)
    except (ValueError, OverflowError, TypeError):
        return None
    return (d - _EPOCH).days


def _is_day_counter(s: str) -> bool:
    """An integer study-day counter such as ``-3`` or ``28`` (at most 7 digits)."""
    t = s[1:] if s[:1] in "+-" else s
    return t.isdigit() and t.isascii() and len(t) <= 7


def _day_number(s: str) -> float | None:
    """A study-day counter written as a number: ``-3``, ``28``, or an integral float such as
    ``3.0`` (R and pandas exports); None for anything else."""
    if _is_day_counter(s):
        return float(int(s))
    try:
        v = float(s)
    except ValueError:
        return None
    if math.isfinite(v) and v == round(v) and abs(v) <= 1e6:
        return float(v)
    return None


def _auto_format(nonblank: set[str] | list[str]) -> str:
    """``date_format="auto"``'s reading of a column's distinct non-blank values: ``"iso"`` if any
    of (up to 1000 of) them is ISO 8601, else ``"%m/%d/%Y"`` (abstcal's US layout)."""
    probe = sorted(nonblank)[:1000]
    if probe and not any(parse_date(s, "iso") is not None for s in probe):
        return "%m/%d/%Y"
    return "iso"


def auto_slash_dates(table: Table, col: str, *, allow_counter: bool = True) -> list[str]:
    """The distinct ``D/M/YYYY``-shaped values that ``date_format="auto"`` would read as
    ``MM/DD/YYYY`` in this column (empty for typed, ISO or day-counter columns)."""
    v = table.columns[col]
    if col in table.calendar or isinstance(v, np.ndarray):
        return []
    nonblank = {s for s in set(column_strings(table, col).tolist()) if not is_missing_token(s)}
    if not nonblank or (allow_counter and all(_is_day_counter(s) for s in nonblank)):
        return []
    if _auto_format(nonblank) == "iso":
        return []
    return [s for s in nonblank if _SLASH_DATE.match(s)]


def slash_dates_ambiguous(values: Sequence[str]) -> bool:
    """True when there are slash dates and each fits both DD/MM/YYYY and MM/DD/YYYY (both
    fields <= 12), so that nothing in them says which field is the month."""
    fields = [m.groups()[:2] for m in map(_SLASH_DATE.match, values) if m]
    return bool(fields) and all(int(a) <= 12 and int(b) <= 12 for a, b in fields)


def first_cell_with(table: Table, col: str, values: Sequence[str]) -> tuple[int, str] | None:
    """Line (CSV) or row + 1 (Parquet) and value of the first cell of ``col`` holding one of
    ``values`` (None if there is none)."""
    strs = column_strings(table, col).astype(str)
    hit = np.flatnonzero(np.isin(strs, list(values)))
    return (int(table.lines[hit[0]]), str(strs[hit[0]])) if hit.size else None


def column_days(
    table: Table, col: str, problems: Problems, *, date_format: str = "auto",
    allow_counter: bool = True, counter_only: bool = False,
) -> tuple[np.ndarray, bool]:
    """Parse a date or integer day-counter column.

    Returns ``(days, is_calendar)``: days since 1970-01-01 when the column holds dates, else the
    integer counters (study days); NaN where missing or unparseable (each unparseable cell is a
    problem; a missing cell is a problem too, since a diary row needs its day). A column with no
    value at all is not taken for calendar dates (nothing says it holds dates).

    ``date_format``: ``"auto"`` (ISO 8601 ``YYYY-MM-DD``, or ``MM/DD/YYYY`` for the whole column
    if no value is ISO), ``"iso"``, or a ``strptime`` format such as ``"%d/%m/%Y"``. Whether
    ``auto``'s ``MM/DD/YYYY`` reading is ambiguous is for the caller to check
    (:func:`auto_slash_dates`, :func:`slash_dates_ambiguous`), over every file read together.
    ``counter_only``: the column holds study days whatever they look like (a ``study_day``
    column): integers or integral floats such as ``3.0``; anything else is a problem.
    """
    v = table.columns[col]
    if col in table.calendar:
        days = np.asarray(v, dtype=np.float64)
        miss = np.isnan(days)
        if miss.any():
            problems.add_many(table.name, table.lines[miss], col, "missing date")
        return days, True
    if isinstance(v, np.ndarray):
        days = np.array(v, dtype=np.float64)
        bad = ~np.isfinite(days) | (days != np.round(days)) | (np.abs(days) > 1e6)
        if bad.any():
            problems.add_many(table.name, table.lines[bad], col, "day is not an integer")
            days[bad] = np.nan
        return days, False
    strs = column_strings(table, col).tolist()
    uniq = set(strs)
    missing_u = {s for s in uniq if is_missing_token(s)}
    nonblank_u = [s for s in uniq if s not in missing_u]

    if counter_only:
        day_lut = {s: _day_number(s) for s in nonblank_u}
        out = np.array([np.nan if (x := day_lut.get(s)) is None else x for s in strs],
                       dtype=np.float64)
        for i in np.flatnonzero(np.isnan(out)).tolist():
            s = strs[i]
            problems.add(table.name, table.lines[i], col, "missing day" if s in missing_u else
                         f"{_show(s)} is not a study day (an integer such as -3 or 28)")
        return out, False
    counter = allow_counter and all(_is_day_counter(s) for s in nonblank_u)
    if counter:
        lut: dict[str, float] = {s: float(int(s)) for s in nonblank_u}
        what = "missing day"
    else:
        fmt = _auto_format(nonblank_u) if date_format == "auto" else date_format
        lut = {}
        for s in nonblank_u:
            d = parse_date(s, fmt)
            lut[s] = np.nan if d is None else float(d)
        what = "missing date"
        if date_format == "auto" and fmt != "iso":
            # auto's US reading of a column without ISO dates: say how to read DD/MM instead
            hint = "MM/DD/YYYY; for DD/MM/YYYY give --date-format '%d/%m/%Y'"
        else:
            shown = "YYYY-MM-DD" if fmt == "iso" else fmt
            hint = (f"{shown}; another layout needs --date-format (auto, iso or a strptime "
                    "format such as '%d/%m/%Y')")
    out = np.array([lut.get(s, np.nan) for s in strs], dtype=np.float64)
    bad = np.isnan(out)
    for i in np.flatnonzero(bad).tolist():
        s = strs[i]
        if s in missing_u:
            problems.add(table.name, table.lines[i], col, what)
        else:
            problems.add(table.name, table.lines[i], col,
                         f"{_show(s)} is not a date (expected {hint})")
    return out, not counter


def column_codes(table: Table, col: str) -> tuple[np.ndarray, np.ndarray]:
    """Identifier column as ``(codes, labels)``: labels sorted unique stripped strings; blank
    cells get code -1."""
    v = table.columns[col]
    if isinstance(v, Coded) and v.labels.size and all(
            isinstance(x, str) and x == x.strip() and not is_missing_token(x)
            for x in v.labels.tolist()):
        order = np.argsort(v.labels.astype(str), kind="stable")
        labels = v.labels[order]
        rank = np.empty(order.size, np.int64)
        rank[order] = np.arange(order.size)
        codes = np.where(v.codes < 0, -1, rank[np.maximum(v.codes, 0)])
        return codes, labels
    strs = column_strings(table, col).astype(str)
    uniq, inv = np.unique(strs, return_inverse=True)
    blank_u = np.array([is_missing_token(s) for s in uniq.tolist()], dtype=bool)
    keep = np.flatnonzero(~blank_u)
    remap = np.full(uniq.size, -1, np.int64)
    remap[keep] = np.arange(keep.size)  # uniq is sorted, so labels stay sorted
    return remap[inv.reshape(-1)], uniq[keep].astype(object)
