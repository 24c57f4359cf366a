"""Shared infrastructure: named random streams, strict configuration, atomic output, CLI errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconsolidate._config import StrictModel, load_toml_model
from reconsolidate._io import atomic_dir, atomic_write_json
from reconsolidate._random import PatientStream
from reconsolidate.exceptions import InputError


@given(
    seed=st.integers(0, 2**32),
    draws=st.integers(1, 9),
    n=st.integers(1, 60),
    cut=st.integers(0, 60),
)
def test_stream_is_independent_of_chunking(seed: int, draws: int, n: int, cut: int) -> None:
    cut = min(cut, n)
    s = PatientStream(seed, "test", draws)
    whole = s.uniform(0, n)
    parts = np.concatenate([s.uniform(0, cut), s.uniform(cut, n)])
    assert np.array_equal(whole, parts)
    assert whole.shape == (n, draws)
    assert np.all((whole > 0) & (whole < 1))


def test_streams_differ_by_name_seed_and_key() -> None:
    a = PatientStream(1, "a", 4).uniform(0, 100)
    assert not np.array_equal(a, PatientStream(1, "b", 4).uniform(0, 100))
    assert not np.array_equal(a, PatientStream(2, "a", 4).uniform(0, 100))
    assert not np.array_equal(a, PatientStream(1, "a", 4, 7).uniform(0, 100))


def test_stream_distribution() -> None:
    z = PatientStream(11, "normals", 2).normal(0, 200_000).ravel()
    assert abs(z.mean()) < 0.01
    assert abs(z.std() - 1) < 0.01
    u = PatientStream(11, "u", 1).uniform(0, 200_000).ravel()
    hist, _ = np.histogram(u, bins=10, range=(0, 1))
    assert np.all(np.abs(hist / len(u) - 0.1) < 0.005)


class _Cfg(StrictModel):
    weight_kg: float
    name: str = "x"


def test_strict_model_names_unknown_key(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('weight_kg = 70\nwieght = 3\n')
    with pytest.raises(InputError, match=r"unknown key 'wieght'"):
        load_toml_model(f, _Cfg)


def test_strict_model_names_field_and_value(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('weight_kg = "heavy"\n')
    with pytest.raises(InputError, match=r"field 'weight_kg' = 'heavy'"):
        load_toml_model(f, _Cfg)
    f.write_text("name = 'a'\n")
    with pytest.raises(InputError, match=r"field 'weight_kg' is required"):
        load_toml_model(f, _Cfg)
    f.write_text("weight_kg = [\n")
    with pytest.raises(InputError, match="invalid TOML"):
        load_toml_model(f, _Cfg)
    with pytest.raises(InputError, match="file not found"):
        load_toml_model(tmp_path / "missing.toml", _Cfg)


def test_atomic_dir_leaves_nothing_on_failure(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(RuntimeError), atomic_dir(out) as d:
        atomic_write_json(d / "a.json", {"x": 1})
        raise RuntimeError("boom")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
    with atomic_dir(out) as d:
        atomic_write_json(d / "a.json", {"x": 2})
    assert json.loads((out / "a.json").read_text()) == {"x": 2}
    # replacing an existing result directory is atomic too
    with atomic_dir(out) as d:
        atomic_write_json(d / "b.json", {"y": 3})
    assert sorted(p.name for p in out.iterdir()) == [".reconsolidate-output", "b.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_atomic_dir_never_replaces_what_it_did_not_write(tmp_path: Path) -> None:
    """A user's folder, a file, or an output of another kind (a trial run as the --out of an
    analysis) is refused before any work, and left exactly as it was; an empty folder and an
    earlier output of the same kind are replaced."""
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    ran: list[int] = []
    with pytest.raises(InputError, match=r"precious.*never replaced"), atomic_dir(precious):
        ran.append(1)
    assert ran == [] and (precious / "thesis.txt").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a directory"), atomic_dir(tmp_path / "file"):
        pass
    run = tmp_path / "run"
    with atomic_dir(run, kind="trial run") as d:
        (d / "outcomes.parquet").write_bytes(b"data")
    with pytest.raises(InputError, match=r"holds a trial run"), atomic_dir(run, kind="analysis"):
        pass
    assert (run / "outcomes.parquet").read_bytes() == b"data"
    with atomic_dir(run, kind="trial run") as d:
        (d / "outcomes.parquet").write_bytes(b"new")
    assert (run / "outcomes.parquet").read_bytes() == b"new"
    empty = tmp_path / "empty"
    empty.mkdir()
    with atomic_dir(empty) as d:
        (d / "a").write_text("a")
    assert (empty / "a").exists()


def test_outputs_get_the_usual_permissions_and_strict_json(tmp_path: Path) -> None:
    """Files and directories appear with the permissions of the umask (not the private ones of
    their temporary names), and JSON has no NaN (strict parsers reject it)."""
    import os

    old = os.umask(0o022)
    os.umask(old)
    with atomic_dir(tmp_path / "out") as d:
        atomic_write_json(d / "a.json", {"x": np.array([1.0, np.nan]), "y": np.float64("inf")})
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o777 & ~old
    assert (tmp_path / "out" / "a.json").stat().st_mode & 0o777 == 0o666 & ~old
    assert json.loads((tmp_path / "out" / "a.json").read_text(),
                      parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}")) == {
        "x": [1.0, None], "y": None}


def test_cli_version_and_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    from reconsolidate import __version__
    from reconsolidate.cli import main

    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out
    assert main(["no-such-command"]) == 2


def test_to_jsonable_turns_numpy_and_nan_into_plain_json() -> None:
    from reconsolidate._io import to_jsonable

    out = to_jsonable({"a": np.float64("nan"), 2: [np.int64(3), (np.float32(1.5), float("inf"))]})
    assert out == {"a": None, "2": [3, [1.5, None]]}
    assert json.loads(json.dumps(out, allow_nan=False)) == out


class _Inner(StrictModel):
    start_min: float
    dose_mg: float


class _Outer(StrictModel):
    name: str = "x"
    step: tuple[_Inner, ...] = ()
    extra: _Inner | None = None


def test_unknown_key_message_lists_the_allowed_keys_of_its_submodel(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("nmae = 'a'\n")
    with pytest.raises(InputError, match=r"unknown key 'nmae' \(allowed: name, step, extra\)"):
        load_toml_model(f, _Outer)
    f.write_text("[[step]]\nstart_min = 0\ndose_mg = 1\ndose = 3\n")
    with pytest.raises(InputError, match=r"'step\[0\]\.dose' \(allowed: start_min, dose_mg\)"):
        load_toml_model(f, _Outer)
    f.write_text("[extra]\nstart_min = 0\ndose_mg = 1\nrate = 2\n")
    with pytest.raises(InputError, match=r"'extra\.rate' \(allowed: start_min, dose_mg\)"):
        load_toml_model(f, _Outer)
