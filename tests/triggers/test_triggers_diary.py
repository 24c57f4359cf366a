"""EMA diary reading and validation: formats, mapping, every error names file and line, fuzz."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reconsolidate.exceptions import InputError
from reconsolidate.triggers import CueMapping, build_diary, load_mapping, read_ema
from reconsolidate.triggers.diary import read_participant_list

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "ema"

GOOD = """participant_id,timestamp,tags,craving,drinks
a,2025-03-01T08:00,home;Tired,20,0
a,2025-03-01T18:00,pub; friends ,70,0
b,2025-03-01T09:00,,10,
a,2025-03-01T22:00,HOME,30,4
b,2025-03-01T12:00,stress,55,1.5
"""


def _write(tmp_path: Path, text: str, name: str = "d.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_reads_tags_case_insensitively_and_sorts_by_participant_then_time(tmp_path: Path) -> None:
    d = read_ema(_write(tmp_path, GOOD))
    assert list(d.participant_ids) == ["a", "b"]
    assert d.cues == ("friends", "home", "pub", "stress", "tired")
    assert d.participant_index.tolist() == [0, 0, 0, 1, 1]
    assert d.line.tolist() == [2, 3, 5, 4, 6]
    home = d.cues.index("home")
    assert d.exposure[:, home].tolist() == [True, False, True, False, False]
    assert d.craving_0_100.tolist() == [20, 70, 30, 10, 55]
    assert np.isnan(d.drinks_std[3])
    # drinking before the next entry: a: 0 (next 0), 1 (next 4), last -> NaN; b: 1 (1.5), NaN
    got = d.drank_next()
    assert got[:2].tolist() == [0.0, 1.0]
    assert np.isnan(got[2]) and got[3] == 1.0 and np.isnan(got[4])


def test_boolean_tag_columns_and_mapping(tmp_path: Path) -> None:
    text = (
        "participant_id,timestamp,tag:Pub,tag:stressed,tags,craving,drinks\n"
        "x,2025-01-01 10:00,1,no,alone,10,0\n"
        "x,2025-01-01 12:00,false,YES,,40,0\n"
        "x,2025-01-01 14:00,,,mystery,5,0\n"
    )
    mapping = CueMapping(cues={"pub_bar": ["pub", "bar"], "stress": ["Stressed"]}, ignore=["alone"])
    d = read_ema(_write(tmp_path, text), mapping=mapping)
    assert d.cues == ("pub_bar", "stress")
    assert d.exposure.tolist() == [[True, False], [False, True], [False, False]]
    assert d.unmapped_tags == {"mystery": 1}


def test_parquet_gives_the_same_diary_as_csv(tmp_path: Path) -> None:
    csv_path = _write(tmp_path, GOOD)
    frame = pd.read_csv(csv_path, dtype={"tags": str})
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    pq_path = tmp_path / "d.parquet"
    frame.to_parquet(pq_path)
    a, b = read_ema(csv_path), read_ema(pq_path)
    assert a.cues == b.cues
    for name in ("participant_index", "time_s", "exposure"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert np.array_equal(a.craving_0_100, b.craving_0_100, equal_nan=True)
    assert np.array_equal(a.drinks_std, b.drinks_std, equal_nan=True)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("c,2025-03-02T08:00,home,20,0", r"d\.csv:7: participant_id 'c' is not in the participant"),
        ("a,2025-03-01T07:00,home,20,0", r"d\.csv:7: timestamp .* of participant 'a' is not after"),
        ("a,2025-03-01T22:00,home,20,0", r"d\.csv:7: .*not after the previous entry .*line 5"),
        ("a,2025-03-02T08:00,home,101,0", r"d\.csv:7: craving 101 outside 0-100"),
        ("a,2025-03-02T08:00,home,-3,0", r"d\.csv:7: craving -3 outside 0-100"),
        ("a,2025-03-02T08:00,home,high,0", r"d\.csv:7: craving 'high' is not a number"),
        ("a,2025-03-02T08:00,home,20,-1", r"d\.csv:7: negative drinks -1"),
        ("a,2025-03-02T08:00,home,20,lots", r"d\.csv:7: drinks 'lots' is not a number"),
        ("a,2025-03-02T08:00,home,20,inf", r"d\.csv:7: drinks 'inf' is not a number"),
        ("a,yesterday,home,20,0", r"d\.csv:7: unparseable timestamp 'yesterday'"),
        ("a,2025-02-30T08:00,home,20,0", r"d\.csv:7: unparseable timestamp"),
        (",2025-03-02T08:00,home,20,0", r"d\.csv:7: empty participant_id"),
        ("a,2025-03-02T08:00,home,20", r"d\.csv:7: 4 fields, the header has 5"),
    ],
)
def test_each_problem_names_file_line_and_problem(tmp_path: Path, row: str, message: str) -> None:
    p = _write(tmp_path, GOOD + row + "\n")
    with pytest.raises(InputError, match=message):
        read_ema(p, participants=["a", "b"])


def test_all_problems_listed_one_per_line(tmp_path: Path) -> None:
    bad = GOOD + "a,2025-03-02T08:00,home,200,-1\nzz,nope,home,1,0\n"
    with pytest.raises(InputError) as info:
        read_ema(_write(tmp_path, bad), participants=["a", "b"])
    lines = str(info.value).splitlines()
    assert len(lines) == 4
    assert all(line.startswith(str(tmp_path / "d.csv") + ":") for line in lines)
    assert lines[0].endswith("craving 200 outside 0-100") or "craving 200" in " ".join(lines)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"empty file"),
        ("participant_id,timestamp,tags,craving\n", r"missing column\(s\) drinks"),
        ("participant_id,timestamp,craving,drinks\n", r"no context tags"),
        ("participant_id,timestamp,tags,craving,drinks,mood\n", r"unknown column\(s\) 'mood'"),
        ("participant_id,timestamp,tags,craving,drinks\n", r"no diary entries"),
        (
            "participant_id,timestamp,tag:pub,craving,drinks\na,2025-01-01,maybe,1,0\n",
            r"d\.csv:2: column 'tag:pub': 'maybe' is not a boolean",
        ),
        ('participant_id,timestamp,tags,craving,drinks\na,"2025,1,1\n', r"malformed CSV|fields"),
    ],
)
def test_file_level_problems(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        read_ema(_write(tmp_path, text))


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        read_ema(tmp_path / "missing.csv")
    p = tmp_path / "latin1.csv"
    p.write_bytes(GOOD.replace("home", "h\xf6me").encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        read_ema(p)
    q = tmp_path / "bad.parquet"
    q.write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match="unreadable Parquet"):
        read_ema(q)


def test_mapping_file_validation(tmp_path: Path) -> None:
    m = load_mapping(EXAMPLES / "mapping.toml")
    assert "pub_bar" in m.cues and m.tag_to_cues()["pub"] == ("pub_bar",)
    bad = tmp_path / "m.toml"
    bad.write_text('[cues]\npub_bar = ["pub"]\n[extra]\n')
    with pytest.raises(InputError, match="unknown key 'extra'"):
        load_mapping(bad)
    bad.write_text('[cues]\n"pub bar" = ["pub"]\n')
    with pytest.raises(InputError, match="no blanks"):
        load_mapping(bad)
    bad.write_text("[cues]\npub_bar = []\n")
    with pytest.raises(InputError, match="non-empty list"):
        load_mapping(bad)


def test_participant_list_formats(tmp_path: Path) -> None:
    a = tmp_path / "p.csv"
    a.write_text("participant_id,arm\nx,1\ny,2\n")
    b = tmp_path / "p.txt"
    b.write_text("x\n\ny\n")
    assert read_participant_list(a) == ["x", "y"] == read_participant_list(b)


def test_example_diary_reads_with_example_mapping() -> None:
    d = read_ema(EXAMPLES / "diary.csv", mapping=EXAMPLES / "mapping.toml")
    assert d.n_participants == 12
    assert d.cues == tuple(load_mapping(EXAMPLES / "mapping.toml").cues)
    assert d.unmapped_tags == {}
    assert d.exposure.any(axis=0).all()


def test_row_interleaving_does_not_change_the_diary(tmp_path: Path) -> None:
    rows = GOOD.strip().splitlines()
    shuffled = [rows[0], rows[3], rows[5], rows[1], rows[2], rows[4]]  # b first, a in order
    a = read_ema(_write(tmp_path, GOOD, "a.csv"))
    b = read_ema(_write(tmp_path, "\n".join(shuffled) + "\n", "b.csv"))
    assert list(b.participant_ids) == ["b", "a"]
    for pid in ("a", "b"):
        ia = a.participant_index == list(a.participant_ids).index(pid)
        ib = b.participant_index == list(b.participant_ids).index(pid)
        assert np.array_equal(a.time_s[ia], b.time_s[ib])
        assert np.array_equal(a.craving_0_100[ia], b.craving_0_100[ib])


def test_build_diary_from_memory_columns() -> None:
    d = build_diary(
        {
            "participant_id": ["p", "p"],
            "timestamp": ["2025-01-01T10:00", "2025-01-01T11:00"],
            "tags": ["pub", "home"],
            "craving": [10, 20],
            "drinks": [0, 2],
        }
    )
    assert d.cues == ("home", "pub") and d.n_entries == 2


_FUZZ_CELLS = [
    "", " ", "nan", "NaN", "-1", "1e309", "-0", "1e-320", "101", "100", "0", "3.5", "abc",
    "2025-13-01", "2025-01-01T25:00", "0000-00-00", "2025-01-01T10:00+25:00", "9999-12-31T23:59",
    "1677-09-21", "2262-04-12", ";", ";;;", "tag;", "\x00", "é", "\u202e", '"', '""', "a,b",
    "tag:x", "1" * 400, "true", "yes", "2025-01-01T10:00Z",
]


def _fuzz_one(rng: np.random.Generator, base: bytes) -> bytes:
    kind = rng.integers(0, 6)
    data = bytearray(base)
    if kind == 0:  # random byte flips
        for _ in range(int(rng.integers(1, 8))):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        return bytes(data)
    if kind == 1:  # truncation
        return bytes(data[: int(rng.integers(0, len(data)))])
    if kind == 2:  # random bytes
        return rng.bytes(int(rng.integers(0, 200)))
    lines = base.decode().splitlines()
    if kind == 3:  # replace one cell with a nasty value
        i = int(rng.integers(1, len(lines)))
        cells = lines[i].split(",")
        cells[int(rng.integers(0, len(cells)))] = _FUZZ_CELLS[int(rng.integers(len(_FUZZ_CELLS)))]
        lines[i] = ",".join(cells)
    elif kind == 4:  # damage the header
        cells = lines[0].split(",")
        cells[int(rng.integers(0, len(cells)))] = _FUZZ_CELLS[int(rng.integers(len(_FUZZ_CELLS)))]
        lines[0] = ",".join(cells)
    else:  # shuffle, duplicate or drop lines
        body = lines[1:]
        rng.shuffle(body)
        if rng.random() < 0.5 and body:
            body.append(body[0])
        lines = [lines[0], *body[: int(rng.integers(0, len(body) + 1))]]
    return ("\n".join(lines) + "\n").encode("utf-8", errors="surrogateescape")


def test_fuzz_every_malformed_file_ends_in_input_error_or_a_valid_diary(tmp_path: Path) -> None:
    rng = np.random.default_rng(20251125)
    base = (
        b"participant_id,timestamp,tags,tag:pub,craving,drinks\n"
        b"a,2025-03-01T08:00,home;tired,0,20,0\n"
        b"b,2025-03-01T09:00,,1,10,\n"
        b"a,2025-03-01T18:00,pub;friends,yes,70,0\n"
        b"b,2025-03-01T12:00,stress,0,55,1.5\n"
        b"a,2025-03-01T22:00,home,,30,4\n"
    )
    mapping = CueMapping(cues={"pub_bar": ["pub"], "home": ["home"]}, ignore=["tired"])
    outcomes = {"error": 0, "valid": 0}
    path = tmp_path / "f.csv"
    for i in range(2000):
        path.write_bytes(_fuzz_one(rng, base))
        try:
            d = read_ema(path, mapping=mapping if i % 2 else None, participants=["a", "b"])
        except InputError as exc:
            assert str(exc).strip()
            outcomes["error"] += 1
            continue
        outcomes["valid"] += 1
        assert d.exposure.shape == (d.n_entries, len(d.cues))
        ok = ~np.isnan(d.craving_0_100)
        assert np.all((d.craving_0_100[ok] >= 0) & (d.craving_0_100[ok] <= 100))
        assert not np.any(d.drinks_std < 0)
        same = d.participant_index[1:] == d.participant_index[:-1]
        assert np.all(np.diff(d.time_s)[same] > 0)
    assert outcomes["error"] > 400 and outcomes["valid"] > 100, outcomes


def test_column_names_are_case_insensitive_and_0_10_craving_is_flagged(tmp_path: Path) -> None:
    """Participant_ID/Timestamp/Craving read as the lower-case names; a craving column that
    never exceeds 10 over many answers gets a warning (a 0-10 scale read as 0-100)."""
    import warnings

    from reconsolidate.exceptions import DomainWarning

    rows = ["Participant_ID,Timestamp,Craving,Drinks,Tags"]
    for k in range(24):
        rows.append(f"p{k % 2},2025-03-{1 + k // 2:02d}T{18 + k % 2}:00,{k % 10},0,home")
    path = tmp_path / "d.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = read_ema(path)
    assert d.participant_ids.tolist() == ["p0", "p1"] and d.cues == ("home",)
    msgs = [str(w.message) for w in caught if issubclass(w.category, DomainWarning)]
    assert any("multiply it by 10" in m for m in msgs)
