"""Fuzz the importer: >= 10,000 malformed files must end in an InputError or a valid result.

Inputs are generated from a fixed seed (deterministic, no flakiness) and parsed in memory:
random bytes, truncated rows and files, wrong types, huge numbers, odd encodings (UTF-16,
Latin-1, BOMs, NUL bytes), broken quoting, shuffled or missing headers, corrupt Parquet.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reconsolidate.data import DrinkingData, load_trial_data
from reconsolidate.exceptions import InputError

N_CHUNKS = 4
N_PER_CHUNK = 2600  # 4 x 2600 = 10,400 inputs

PEOPLE = (b"id,sex,arm,randomization_date,weight_kg\nA1,M,ket,2024-01-02,80\n"
          b"B2,F,mid,2024-01-02,61.5\nC3,f,ket,2024-01-03,\n")
DIARY = (b"id,date,amount\nA1,2024-01-01,6\nA1,2024-01-02,0\nA1,2024-01-03,\nB2,2024-01-02,4\n"
         b"B2,2024-01-03,1.5\nC3,2024-01-04,0\nC3,2024-01-05,12\n")
BIO = b"id,date,etg_positive\nA1,2024-01-02,positive\nB2,2024-01-03,0\n"

JUNK_FIELDS = [
    "", " ", "-1", "1e309", "-1e309", "9" * 400, "nan", "inf", "-inf", "0x10", "1_000", "١٢",
    "½", "true", "None", "NULL", "2024-02-30", "2024-1-1", "01/32/2024", "99999-01-01",
    "-99999999", "2147483648", "\u202e", "é", "\ufeff", "\"", "\"\"", "a,b", "\t", "\r",
    "1.5.2", "+3", "3e2", "1" * 20, "-0", "0.0000001", "💥", "\x00", "\\N", "M", "F", "x" * 70000,
]
ENCODINGS = ["utf-16", "utf-16-le", "utf-16-be", "latin-1", "cp1252", "utf-32", "utf-8-sig"]


def _parquet_bytes() -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"patient_id": ["A1", "B2"], "study_day": pa.array([0, 1], pa.int32()),
                             "drinks_reported": [1.0, None]}), buf)
    return buf.getvalue()


PARQUET = _parquet_bytes()


def _mutate(base: bytes, rng: np.random.Generator) -> bytes:
    kind = int(rng.integers(0, 12))
    if kind == 0:  # random bytes
        return rng.bytes(int(rng.integers(0, 300)))
    if kind == 1:  # truncated anywhere
        return base[: int(rng.integers(0, len(base) + 1))]
    if kind == 2:  # random byte flips
        b = bytearray(base)
        for _ in range(int(rng.integers(1, 6))):
            b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
        return bytes(b)
    text = base.decode()
    lines = text.split("\n")
    if kind == 3:  # a field replaced by junk
        li = int(rng.integers(0, len(lines)))
        cells = lines[li].split(",")
        cells[int(rng.integers(0, len(cells)))] = JUNK_FIELDS[int(rng.integers(len(JUNK_FIELDS)))]
        lines[li] = ",".join(cells)
        return "\n".join(lines).encode("utf-8", "surrogatepass")
    if kind == 4:  # dropped or extra fields
        li = int(rng.integers(0, len(lines)))
        cells = lines[li].split(",")
        if rng.random() < 0.5 and cells:
            cells.pop(int(rng.integers(0, len(cells))))
        else:
            cells.append(JUNK_FIELDS[int(rng.integers(len(JUNK_FIELDS)))])
        lines[li] = ",".join(cells)
        return "\n".join(lines).encode()
    if kind == 5:  # odd encodings, with non-ASCII content
        t = text.replace("A1", "Å1") if rng.random() < 0.5 else text
        return t.encode(ENCODINGS[int(rng.integers(len(ENCODINGS)))])
    if kind == 6:  # shuffled / duplicated / renamed header
        head = lines[0].split(",")
        choice = rng.random()
        if choice < 0.3:
            rng.shuffle(head)
        elif choice < 0.6:
            head[int(rng.integers(len(head)))] = head[0]
        else:
            head[int(rng.integers(len(head)))] = "x"
        lines[0] = ",".join(head)
        return "\n".join(lines).encode()
    if kind == 7:  # broken quoting and line endings
        li = int(rng.integers(0, len(lines)))
        lines[li] = lines[li].replace(",", rng.choice([',"', '",', ',\r', ',\n,', ';']), 1)
        return ("\r\n" if rng.random() < 0.5 else "\n").join(lines).encode()
    if kind == 8:  # huge or negative numbers and many rows
        amounts = ["1e308", "-5", "1e-308", "123456789"]
        extra = [f"A1,2024-01-{int(rng.integers(1, 40)):02d},{rng.choice(amounts)}"
                 for _ in range(int(rng.integers(1, 20)))]
        return "\n".join(lines + extra).encode()
    if kind == 9:  # NUL bytes or a BOM in the middle
        pos = int(rng.integers(0, len(base) + 1))
        junk = rng.choice([b"\x00", b"\xef\xbb\xbf", b"\xff\xfe", b"\x80"])
        return base[:pos] + junk + base[pos:]
    if kind == 10:  # parquet: truncated, garbage after magic, or byte flips
        r = rng.random()
        if r < 0.4:
            return PARQUET[: int(rng.integers(0, len(PARQUET)))]
        if r < 0.7:
            return b"PAR1" + rng.bytes(int(rng.integers(0, 200))) + b"PAR1"
        b = bytearray(PARQUET)
        b[int(rng.integers(4, len(b) - 4))] = int(rng.integers(0, 256))
        return bytes(b)
    # kind 11: blank or header-only files, or only newlines
    return rng.choice([b"", b"\n\n", lines[0].encode(), b"id\n", b",,,\n,,,\n"])


@pytest.mark.parametrize("chunk", range(N_CHUNKS))
def test_fuzz_importer_never_raises_foreign_exceptions(chunk: int) -> None:
    rng = np.random.default_rng(1000 + chunk)
    n_ok = n_err = 0
    for k in range(N_PER_CHUNK):
        target = int(rng.integers(0, 3))  # which file is malformed
        diary = _mutate(DIARY, rng) if target == 0 else DIARY
        people = _mutate(PEOPLE, rng) if target == 1 else PEOPLE
        bio = _mutate(BIO, rng) if target == 2 else (BIO if k % 2 else None)
        try:
            res = load_trial_data(diary, people, bio, salt="fuzz-salt-1",
                                  names=("d.csv", "p.csv", "b.csv"))
        except InputError as exc:
            assert str(exc)  # a message the user can read
            n_err += 1
            continue
        except Exception as exc:  # pragma: no cover - this is the failure being tested
            raise AssertionError(f"input {k} of chunk {chunk} raised {type(exc).__name__}: "
                                 f"{exc!r}\ndiary={diary[:300]!r}\npeople={people[:300]!r}\n"
                                 f"bio={(bio or b'')[:300]!r}") from exc
        assert isinstance(res, DrinkingData)
        assert np.all((res.drinks_per_day >= 0) | np.isnan(res.drinks_per_day))
        n_ok += 1
    assert n_ok + n_err == N_PER_CHUNK
    assert n_ok > 0  # and some inputs are still valid
    assert n_err > N_PER_CHUNK // 10  # the generator does produce malformed input
