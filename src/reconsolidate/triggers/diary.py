"""Reading and validating EMA (ecological momentary assessment) diaries for trigger profiles.

File format
-----------
CSV (comma-separated, UTF-8, one header line) or Parquet, one row per diary entry:

Column names are case-insensitive (``Participant_ID`` is ``participant_id``); the CSV
delimiter is a comma.

``participant_id``
    Any non-empty text.
``timestamp``
    ISO 8601 date-time of the entry (``2025-03-01T18:30``, ``2025-03-01 18:30:00+01:00``).
    Entries of one participant must be strictly increasing in time in file order (rows of
    different participants may be interleaved). Offsets are converted to UTC for the order of
    entries; naive times are taken as they are. Calendar days and weekdays (the exposure rates
    of ``triggers --simulate``) are those of each entry's own local time (the wall clock the
    participant saw: ``21:00-05:00`` on a Friday is a Friday evening).
``craving``
    Craving (urge to drink) at the entry on a 0-100 scale; empty = not answered.
``drinks``
    US standard drinks (14 g ethanol) drunk since the participant's previous entry, >= 0;
    empty = not answered.
context tags, either or both of
    ``tags``: an open vocabulary of ``;``-separated tags (``home;after work;tired``), case and
    surrounding blanks ignored; and/or one boolean column per tag named ``tag:<name>`` holding
    ``1/0``, ``true/false``, ``yes/no`` or empty (= not present).

A mapping file (TOML, see :class:`CueMapping`) groups tags into the simulator's cue classes;
without one, every distinct tag is its own cue.

Every problem found is reported as ``FILE:LINE: problem`` (Parquet: ``FILE: row N: problem``),
up to :data:`MAX_PROBLEMS` of them, in one :class:`~reconsolidate.exceptions.InputError`.
"""

from __future__ import annotations

import csv
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from reconsolidate._config import StrictModel, load_toml_model
from reconsolidate.exceptions import DomainWarning, InputError

__all__ = [
    "MAX_PROBLEMS",
    "REQUIRED_COLUMNS",
    "CueMapping",
    "EMADiary",
    "build_diary",
    "load_mapping",
    "read_ema",
    "read_participant_list",
]

#: Columns every diary must have (tags come from ``tags`` and/or ``tag:<name>`` columns).
REQUIRED_COLUMNS: tuple[str, ...] = ("participant_id", "timestamp", "craving", "drinks")
#: At most this many problems are listed in one error.
MAX_PROBLEMS = 20

_TRUE = frozenset({"1", "true", "yes", "y", "t", "1.0"})
_FALSE = frozenset({"0", "false", "no", "n", "f", "", "0.0"})
_CUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


def _norm_tag(tag: str) -> str:
    return " ".join(tag.strip().lower().split())


class CueMapping(StrictModel):
    """Which diary tags stand for which cue class.

    TOML layout::

        ignore = ["alone", "tired"]        # known tags that are not drinking cues

        [cues]
        home_after_work = ["home after work", "evening at home"]
        pub_bar = ["pub", "bar"]

    Tags are matched case-insensitively with blanks collapsed. A tag may belong to several cue
    classes. Tags that are neither mapped nor ignored are counted and reported, not errors
    (the vocabulary is open).
    """

    cues: dict[str, list[str]]
    ignore: list[str] = Field(default_factory=list)

    @field_validator("cues")
    @classmethod
    def _check_cues(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        if not v:
            raise ValueError("at least one cue class is needed")
        for name, tags in v.items():
            if not _CUE_NAME.match(name):
                raise ValueError(
                    f"cue name {name!r} must be letters, digits, '_' or '-' (no blanks)"
                )
            if not tags or any(not _norm_tag(t) for t in tags):
                raise ValueError(f"cue {name!r} needs a non-empty list of non-empty tags")
        return v

    def tag_to_cues(self) -> dict[str, tuple[str, ...]]:
        """Normalised tag -> the cue classes it belongs to."""
        out: dict[str, list[str]] = {}
        for cue, tags in self.cues.items():
            for t in tags:
                lst = out.setdefault(_norm_tag(t), [])
                if cue not in lst:
                    lst.append(cue)
        return {k: tuple(v) for k, v in out.items()}

    def ignored(self) -> frozenset[str]:
        """Normalised tags to ignore."""
        return frozenset(_norm_tag(t) for t in self.ignore)


def load_mapping(path: str | Path) -> CueMapping:
    """Read a tag -> cue mapping file (TOML); problems raise :class:`InputError`."""
    return load_toml_model(path, CueMapping)


@dataclass(frozen=True)
class EMADiary:
    """A validated EMA diary as arrays, rows sorted by participant then time.

    Attributes
    ----------
    participant_ids
        ``(P,)`` participant identifiers, in order of first appearance in the file.
    participant_index
        ``(N,)`` int64, index into ``participant_ids`` of each entry.
    time_s
        ``(N,)`` int64 entry times, seconds since 1970-01-01 (UTC where an offset was given).
    cues
        ``(C,)`` cue class names (columns of ``exposure``).
    exposure
        ``(N, C)`` bool, cue class present at the entry.
    craving_0_100
        ``(N,)`` float craving on the 0-100 scale, NaN = not answered.
    drinks_std
        ``(N,)`` float US standard drinks since the previous entry, NaN = not answered.
    line
        ``(N,)`` int64 source line (CSV) or 1-based row (Parquet) of each entry.
    source
        File name the diary came from.
    local_day
        ``(N,)`` int64 calendar day of each entry in its own local time (days since
        1970-01-01; the UTC day where no offset was given), or None (then ``time_s // 86400``).
    unmapped_tags
        Tag -> number of entries carrying it, for tags a mapping neither mapped nor ignored.
    """

    participant_ids: np.ndarray
    participant_index: np.ndarray
    time_s: np.ndarray
    cues: tuple[str, ...]
    exposure: np.ndarray
    craving_0_100: np.ndarray
    drinks_std: np.ndarray
    line: np.ndarray
    source: str = "<memory>"
    unmapped_tags: dict[str, int] = field(default_factory=dict)
    local_day: np.ndarray | None = None

    def calendar_day(self) -> np.ndarray:
        """``(N,)`` local calendar day of each entry (days since 1970-01-01)."""
        return self.local_day if self.local_day is not None else self.time_s // 86400

    @property
    def n_participants(self) -> int:
        """Number of participants P."""
        return len(self.participant_ids)

    @property
    def n_entries(self) -> int:
        """Number of diary entries N."""
        return len(self.participant_index)

    def drank_next(self) -> np.ndarray:
        """``(N,)`` float: 1 if the participant drank before their next entry, 0 if not.

        NaN for a participant's last entry and where the next entry's drinks are missing.
        This lagged outcome makes "cue now -> drinking afterwards" the quantity estimated.
        """
        n = self.n_entries
        out = np.full(n, np.nan)
        if n > 1:
            same = self.participant_index[1:] == self.participant_index[:-1]
            nxt = self.drinks_std[1:]
            val = np.where(np.isnan(nxt), np.nan, (nxt > 0).astype(float))
            out[:-1] = np.where(same, val, np.nan)
        return out


class _Problems:
    def __init__(self, source: str, parquet: bool) -> None:
        self.source = source
        self.parquet = parquet
        self.items: list[tuple[int, str]] = []
        self.total = 0

    def add(self, line: int | None, msg: str) -> None:
        self.total += 1
        if len(self.items) < MAX_PROBLEMS:
            self.items.append((-1 if line is None else int(line), msg))

    def add_many(self, lines: np.ndarray, fmt: str, values: Iterable[object]) -> None:
        k = len(lines)
        self.total += k
        room = max(MAX_PROBLEMS - len(self.items), 0)
        vals = list(values)[:room]
        for ln, v in zip(lines[:room], vals, strict=True):
            self.items.append((int(ln), fmt.format(v)))

    def raise_if_any(self) -> None:
        if not self.total:
            return
        msgs = []
        for ln, msg in sorted(self.items, key=lambda t: t[0]):
            if ln < 0:
                msgs.append(f"{self.source}: {msg}")
            elif self.parquet:
                msgs.append(f"{self.source}: row {ln}: {msg}")
            else:
                msgs.append(f"{self.source}:{ln}: {msg}")
        if self.total > len(self.items):
            msgs.append(f"{self.source}: ... and more problems ({self.total} in total)")
        raise InputError("\n".join(msgs))


def _read_csv_columns(path: Path) -> tuple[list[str], list[tuple[str, ...]], np.ndarray]:
    """Header, column tuples and source line numbers of a CSV file (blank lines skipped)."""
    src = str(path)
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, strict=True)
            try:
                header = next(reader)
            except StopIteration:
                raise InputError(f"{src}: empty file, expected a header line") from None
            header = [h.strip() for h in header]
            width = len(header)
            rows: list[list[str]] = []
            lines: list[int] = []
            bad: list[tuple[int, int]] = []
            for rec in reader:
                if not rec or all(not f.strip() for f in rec):
                    continue
                if len(rec) != width:
                    bad.append((reader.line_num, len(rec)))
                    if len(bad) >= MAX_PROBLEMS:
                        break
                    continue
                rows.append(rec)
                lines.append(reader.line_num)
    except FileNotFoundError:
        raise InputError(f"{src}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{src}: is a directory, expected a CSV or Parquet file") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{src}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        line = getattr(reader, "line_num", 0)
        raise InputError(f"{src}:{line}: malformed CSV: {exc}") from None
    if bad:
        raise InputError(
            "\n".join(f"{src}:{ln}: {n} fields, the header has {width}" for ln, n in bad)
        )
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    return header, cols, np.asarray(lines, dtype=np.int64)


# the zone designator after a time of day (a date alone, 2025-03-01, has none)
_OFFSET = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)$",
                     re.IGNORECASE)


def _utc_offsets_s(values: np.ndarray) -> np.ndarray:
    """UTC offset (s) of each ISO 8601 time written with one (``+01:00``, ``-0500``, ``Z``),
    0 for naive times and for timestamps without a zone."""
    if values.dtype.kind == "M":
        return np.zeros(values.size, np.int64)
    out = np.zeros(values.size, np.int64)
    for i, v in enumerate(values.tolist()):
        m = _OFFSET.search(str(v).strip()) if v is not None else None
        if m is None or m.group(1).upper() == "Z":
            continue
        t = m.group(1).replace(":", "")
        minutes = int(t[3:5]) if len(t) > 3 else 0
        out[i] = (1 if t[0] == "+" else -1) * (3600 * int(t[1:3]) + 60 * minutes)
    return out


def _read_parquet_columns(path: Path) -> tuple[list[str], list[np.ndarray], np.ndarray]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = str(path)
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise InputError(f"{src}: file not found") from None
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InputError(f"{src}: unreadable Parquet file: {str(exc).splitlines()[0]}") from None
    header = [str(n) for n in table.column_names]
    cols = []
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
            cols.append(col.to_pandas().to_numpy())
        elif pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
            cols.append(col.to_pandas().to_numpy(dtype=np.float64, na_value=np.nan))
        else:
            cols.append(np.asarray(col.to_pylist(), dtype=object))
    lines = np.arange(1, table.num_rows + 1, dtype=np.int64)
    return header, cols, lines


def read_participant_list(path: str | Path) -> list[str]:
    """Participant identifiers: a CSV with a ``participant_id`` column, or one id per line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{p}: file not found") from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: cannot read participant list: {exc}") from None
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        raise InputError(f"{p}: empty participant list")
    first = next(csv.reader([lines[0]]))
    names = [h.strip() for h in first]
    if "participant_id" in names:
        k = names.index("participant_id")
        try:
            rows = list(csv.reader(lines[1:]))
        except csv.Error as exc:
            raise InputError(f"{p}: malformed CSV: {exc}") from None
        return [r[k].strip() for r in rows if len(r) > k and r[k].strip()]
    return [ln.strip() for ln in lines]


def _to_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return np.nan


def _parse_number(values: object) -> tuple[np.ndarray, np.ndarray]:
    """Floats (NaN for empty cells) and a mask of cells that are not empty and not finite
    numbers (text, ``nan``, ``inf``, overflow)."""
    arr = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
    if arr.dtype.kind in "fiub":
        out = arr.astype(np.float64)
        return out, np.isinf(out)
    cells = [("" if v is None else str(v).strip()) for v in arr.tolist()]
    empty = np.fromiter((c == "" for c in cells), dtype=bool, count=len(cells))
    filled = ["nan" if c == "" else c for c in cells]
    try:
        num = np.asarray(filled, dtype=str).astype(np.float64) if filled else np.zeros(0)
    except (ValueError, OverflowError):
        num = np.fromiter((_to_float(c) for c in filled), dtype=np.float64, count=len(filled))
    bad = ~empty & ~np.isfinite(num)
    return np.where(empty, np.nan, num), bad


def read_ema(
    path: str | Path,
    mapping: CueMapping | str | Path | None = None,
    participants: Iterable[str] | None = None,
) -> EMADiary:
    """Read and validate an EMA diary (CSV or Parquet; see the module docstring for the format).

    Parameters
    ----------
    path
        The diary file; ``.parquet``/``.pq`` is read as Parquet, anything else as CSV.
    mapping
        A :class:`CueMapping` or the path of its TOML file; ``None`` = every tag is a cue.
    participants
        Known participant identifiers; entries of anyone else are errors.

    Returns
    -------
    EMADiary

    Raises
    ------
    InputError
        Naming file, line and problem for every problem found (up to :data:`MAX_PROBLEMS`).
    """
    p = Path(path)
    if isinstance(mapping, (str, Path)):
        mapping = load_mapping(mapping)
    parquet = p.suffix.lower() in {".parquet", ".pq"}
    if parquet:
        header, cols, lines = _read_parquet_columns(p)
    else:
        header, cols, lines = _read_csv_columns(p)
    return build_diary(
        dict(zip(header, cols, strict=True)),
        lines,
        source=str(p),
        mapping=mapping,
        participants=participants,
        parquet=parquet,
        header=header,
    )


def build_diary(
    columns: Mapping[str, object],
    lines: np.ndarray | None = None,
    *,
    source: str = "<memory>",
    mapping: CueMapping | None = None,
    participants: Iterable[str] | None = None,
    parquet: bool = True,
    header: list[str] | None = None,
) -> EMADiary:
    """Validate diary columns (name -> sequence of cells) and build an :class:`EMADiary`.

    This is the single validation path behind :func:`read_ema`; it can also be called with
    in-memory columns (e.g. a dict of lists or a pandas DataFrame's columns).
    """
    header = list(columns) if header is None else header
    # column names are case-insensitive (as in `analyze`): Participant_ID is participant_id
    header = [str(h).strip().lower() for h in header]
    columns = {str(k).strip().lower(): v for k, v in columns.items()}
    n = len(next(iter(columns.values()))) if columns else 0
    lines = np.arange(1, n + 1, dtype=np.int64) if lines is None else np.asarray(lines)
    probs = _Problems(source, parquet)

    seen: set[str] = set()
    for h in header:
        if h in seen:
            probs.add(None, f"duplicate column {h!r}")
        seen.add(h)
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    tag_cols = [h for h in header if h.startswith("tag:")]
    if missing:
        probs.add(None, f"missing column(s) {', '.join(missing)} (found: {', '.join(header)})")
    if "tags" not in header and not tag_cols:
        probs.add(None, "no context tags: need a 'tags' column and/or 'tag:<name>' columns")
    known = {*REQUIRED_COLUMNS, "tags", *tag_cols}
    extra = [h for h in header if h not in known]
    if extra:
        probs.add(
            None,
            f"unknown column(s) {', '.join(map(repr, extra))} (allowed: "
            f"{', '.join(REQUIRED_COLUMNS)}, tags, tag:<name>)",
        )
    if any(not h[4:].strip() for h in tag_cols):
        probs.add(None, "a 'tag:' column needs a tag name after the colon")
    probs.raise_if_any()
    if n == 0:
        raise InputError(f"{source}: no diary entries")

    # participant ids
    pid_raw = np.asarray(columns["participant_id"], dtype=object)
    pid = np.array(["" if v is None else str(v).strip() for v in pid_raw], dtype=object)
    empty_pid = pid == ""
    probs.add_many(lines[empty_pid], "empty participant_id{}", [""] * int(empty_pid.sum()))
    if participants is not None:
        allowed = {str(x).strip() for x in participants}
        unknown = ~np.isin(pid, np.array(sorted(allowed), dtype=object)) & ~empty_pid
        probs.add_many(
            lines[unknown], "participant_id {!r} is not in the participant list", pid[unknown]
        )

    # timestamps
    traw = columns["timestamp"]
    tarr = np.asarray(traw) if not isinstance(traw, np.ndarray) else traw
    if tarr.dtype.kind == "M":
        ts = pd.to_datetime(pd.Series(tarr), utc=True, errors="coerce")
    else:
        ts = pd.to_datetime(
            pd.Series(tarr, dtype=object).astype(str).str.strip(),
            utc=True,
            errors="coerce",
            format="ISO8601",
        )
    bad_t = ts.isna().to_numpy()
    probs.add_many(
        lines[bad_t], "unparseable timestamp {!r} (expected ISO 8601, e.g. 2025-03-01T18:30)",
        np.asarray(tarr, dtype=object)[bad_t],
    )
    time_s = np.where(bad_t, 0, ts.to_numpy(dtype="datetime64[s]", na_value=np.datetime64(0, "s"))
                      .astype(np.int64))
    # each entry's own wall clock (UTC + its offset) for calendar days and weekdays
    local_s = time_s + _utc_offsets_s(tarr)

    craving, bad_c = _parse_number(columns["craving"])
    probs.add_many(lines[bad_c], "craving {!r} is not a number", np.asarray(
        columns["craving"], dtype=object)[bad_c])
    out_c = ~bad_c & ~np.isnan(craving) & ((craving < 0) | (craving > 100))
    probs.add_many(lines[out_c], "craving {:g} outside 0-100", craving[out_c])
    answered_c = craving[~bad_c & ~np.isnan(craving)]
    if answered_c.size >= 20 and answered_c.max() <= 10:
        # a 0-10 rating read as 0-100 shrinks every effect tenfold (and --min-effect, in
        # points of 0-100, then means ten times more)
        warnings.warn(DomainWarning(
            f"{source}: craving never exceeds {answered_c.max():g} in {answered_c.size} "
            "answers: if it was rated 0-10, multiply it by 10 (the method reads 0-100)"),
            stacklevel=2)

    drinks, bad_d = _parse_number(columns["drinks"])
    probs.add_many(lines[bad_d], "drinks {!r} is not a number", np.asarray(
        columns["drinks"], dtype=object)[bad_d])
    neg = ~bad_d & (drinks < 0)
    probs.add_many(lines[neg], "negative drinks {:g}", drinks[neg])
    huge = ~bad_d & (drinks > 100)
    probs.add_many(
        lines[huge], "drinks {:g} since the last entry is implausible (> 100 standard drinks)",
        drinks[huge],
    )

    # tags: parse each distinct 'tags' cell once (diaries repeat a few tag sets many times)
    if "tags" in columns:
        tags_raw = np.asarray(columns["tags"], dtype=object)
        strs = np.array(
            ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
             for v in tags_raw],
            dtype=object,
        )
        inv, uniq = pd.factorize(strs)  # hashing: linear time on object arrays
        uniq_sets = [
            frozenset(t for t in (_norm_tag(x) for x in str(u).split(";")) if t) for u in uniq
        ]
    else:
        inv = np.zeros(n, dtype=np.int64)
        uniq_sets = [frozenset()]
    inv = np.asarray(inv, dtype=np.int64).ravel()
    uniq_counts = np.bincount(inv, minlength=len(uniq_sets))
    col_masks: list[tuple[str, np.ndarray]] = []
    for col in tag_cols:
        vals = np.asarray(columns[col], dtype=object)
        sv = np.array(
            ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip().lower()
             for v in vals],
            dtype=object,
        )
        is_true = np.isin(sv, list(_TRUE))
        is_bad = ~is_true & ~np.isin(sv, list(_FALSE))
        probs.add_many(
            lines[is_bad], f"column {col!r}: {{!r}} is not a boolean (1/0, true/false, yes/no)",
            vals[is_bad],
        )
        col_masks.append((_norm_tag(col[4:]), is_true))

    # order of entries within participants (only among parseable rows)
    ok_rows = ~empty_pid & ~bad_t
    # participant codes in order of first appearance (hashing, linear time)
    pidx, upid = pd.factorize(pid)
    pidx = pidx.astype(np.int64)
    if ok_rows.any():
        order = np.argsort(pidx, kind="stable")  # group by participant, keep file order
        order = order[ok_rows[order]]
        same = pidx[order][1:] == pidx[order][:-1]
        t_sorted = time_s[order]
        not_after = same & (t_sorted[1:] <= t_sorted[:-1])
        rows_bad = order[1:][not_after]
        prev_rows = order[:-1][not_after]
        for rb, rp in zip(rows_bad[:MAX_PROBLEMS], prev_rows[:MAX_PROBLEMS], strict=True):
            probs.add(
                int(lines[rb]),
                f"timestamp {ts.iloc[rb].isoformat()} of participant {pid[rb]!r} is not after "
                f"the previous entry ({ts.iloc[rp].isoformat()}, line {lines[rp]}): "
                f"entries must be in time order",
            )
        probs.total += max(int(not_after.sum()) - MAX_PROBLEMS, 0)
    probs.raise_if_any()

    # cue classes
    tag_count: dict[str, int] = {}
    for s_, k_ in zip(uniq_sets, uniq_counts, strict=True):
        for t in s_:
            tag_count[t] = tag_count.get(t, 0) + int(k_)
    for name, mask in col_masks:
        if mask.any():
            tag_count[name] = tag_count.get(name, 0) + int(mask.sum())
    unmapped: dict[str, int] = {}
    if mapping is None:
        cues = tuple(sorted(tag_count))
        tag_map = {t: (t,) for t in cues}
    else:
        cues = tuple(mapping.cues)
        tag_map = mapping.tag_to_cues()
        ign = mapping.ignored()
        unmapped = {t: k for t, k in tag_count.items() if t not in tag_map and t not in ign}
    cue_pos = {c: j for j, c in enumerate(cues)}
    uniq_exposure = np.zeros((len(uniq_sets), len(cues)), dtype=bool)
    for k_, s_ in enumerate(uniq_sets):
        for t in s_:
            for c in tag_map.get(t, ()):
                uniq_exposure[k_, cue_pos[c]] = True
    exposure = uniq_exposure[inv]
    for name, mask in col_masks:
        for c in tag_map.get(name, ()):
            exposure[:, cue_pos[c]] |= mask

    # participants in order of first appearance; rows sorted by participant then time
    pindex = pidx
    order = np.lexsort((time_s, pindex))
    return EMADiary(
        participant_ids=np.asarray([str(x) for x in upid], dtype=object),
        participant_index=pindex[order],
        time_s=time_s[order],
        cues=cues,
        exposure=exposure[order],
        craving_0_100=craving[order],
        drinks_std=drinks[order],
        line=lines[order].astype(np.int64),
        source=source,
        unmapped_tags=dict(sorted(unmapped.items(), key=lambda kv: (-kv[1], kv[0]))),
        local_day=(local_s // 86400)[order],
    )
