"""Shared infrastructure: named random streams, strict configuration, atomic output, CLI errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconsolidate._config import StrictModel, load_toml_model
from reconsolidate._io import (
    MARKER,
    OWNER,
    STALE_PARTIAL_HOURS,
    _process_start,
    atomic_dir,
    atomic_write_json,
    check_output_file,
)
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


def _partial(parent: Path, name: str, owner: dict | None, age_hours: float = 0.0) -> Path:
    """A partial directory as atomic_dir names them, with an owner file and an age."""
    d = parent / name
    d.mkdir()
    (d / "outcomes.parquet").write_bytes(b"half")
    if owner is not None:
        (d / OWNER).write_text(json.dumps(owner))
    if age_hours:
        t = time.time() - age_hours * 3600.0
        for f in d.iterdir():
            os.utime(f, (t, t))
        os.utime(d, (t, t))
    return d


def test_atomic_dir_removes_the_partial_directory_of_a_killed_run(tmp_path: Path) -> None:
    """A run killed outright (SIGKILL: no cleanup can run) leaves its hidden partial directory;
    the next atomic_dir for the same path removes it, since its owner's pid is dead."""
    out = tmp_path / "run"
    code = ("import sys, time\nfrom reconsolidate._io import atomic_dir\n"
            "with atomic_dir(sys.argv[1]) as d:\n"
            "    (d / 'outcomes.parquet').write_bytes(b'half')\n"
            "    print(d, flush=True)\n    time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE,
                            text=True)
    try:
        partial = Path(proc.stdout.readline().strip())  # type: ignore[union-attr]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    assert partial.parent == tmp_path and partial.name.startswith(".run.")
    assert json.loads((partial / OWNER).read_text())["pid"] == proc.pid
    assert partial.is_dir() and not out.exists()  # what SIGKILL leaves
    with atomic_dir(out) as d:
        (d / "a").write_text("a")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "a"]  # the owner file is not kept


def test_atomic_dir_keeps_partial_directories_in_use_or_of_other_outputs(tmp_path: Path) -> None:
    """Partial directories of a live process (another run writing the same path, here this
    process) are kept, as are those of other output names and, without an owner file or from
    another host, recent ones; unowned ones untouched for STALE_PARTIAL_HOURS are removed."""
    me = {"pid": os.getpid(), "host": socket.gethostname(),
          "started": _process_start(os.getpid())}
    live = _partial(tmp_path, ".run.abcd1234.partial", me)
    live_pid_only = _partial(tmp_path, ".run.abcd1235.partial", {"pid": os.getpid()})
    fresh_unowned = _partial(tmp_path, ".run.abcd1236.partial", None)
    other_host = _partial(tmp_path, ".run.abcd1237.partial",
                          {"pid": 1, "host": socket.gethostname() + "-elsewhere"})
    old_unowned = _partial(tmp_path, ".run.abcd1238.partial", None,
                           age_hours=STALE_PARTIAL_HOURS + 1)
    dead = {"pid": 2**22 + 12345, "host": socket.gethostname()}  # above Linux's pid_max
    other_name = _partial(tmp_path, ".run2.abcd1239.partial", dead)
    not_partial = _partial(tmp_path, ".run.abcd1230.partial.keep", dead)
    with atomic_dir(tmp_path / "run") as d:
        (d / "a").write_text("a")
    for kept in (live, live_pid_only, fresh_unowned, other_host, other_name, not_partial):
        assert (kept / "outcomes.parquet").read_bytes() == b"half", kept.name
    assert not old_unowned.exists()


def test_atomic_dir_removes_a_partial_of_a_pid_now_used_by_another_process(
    tmp_path: Path,
) -> None:
    """In a container every run may get the same pid: a live pid whose start time is not the
    recorded one belongs to a later process, and the directory is stale."""
    if _process_start(os.getpid()) is None:
        pytest.skip("no /proc/PID/stat on this system: start times cannot be compared")
    reused = _partial(tmp_path, ".run.abcd1234.partial",
                      {"pid": os.getpid(), "host": socket.gethostname(), "started": "1"})
    with atomic_dir(tmp_path / "run"):
        pass
    assert not reused.exists()


def test_check_output_file_refuses_missing_directories(tmp_path: Path) -> None:
    check_output_file(tmp_path / "a.png", "--plot")  # an existing directory: fine
    missing = tmp_path / "no" / "such" / "a.png"
    with pytest.raises(InputError) as exc:
        check_output_file(missing, "--plot")
    assert str(exc.value) == (f"--plot {str(missing)!r}: directory {missing.parent} does not "
                              "exist")
    assert not (tmp_path / "no").exists()
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="is not a directory"):
        check_output_file(tmp_path / "f" / "a.png", "--plot")
    with pytest.raises(InputError, match="is a directory"):
        check_output_file(tmp_path, "--json")


def test_atomic_dir_moves_the_earlier_directory_aside_under_a_fresh_name(tmp_path: Path) -> None:
    """A directory an interrupted run left while moving the earlier output aside does not stop
    the next run (the aside name was fixed by pid, which containers reuse: the move failed after
    all the work), and is removed once a complete directory is in place again."""
    out = tmp_path / "run"
    with atomic_dir(out, kind="trial run") as d:
        (d / "a.txt").write_text("1")
    left = tmp_path / ".run.abcd1234.old"  # as a killed run leaves it, not empty
    left.mkdir()
    (left / "a.txt").write_text("0")
    legacy = tmp_path / f".run.old-{os.getpid()}"  # the earlier fixed name, this very pid
    legacy.mkdir()
    (legacy / "a.txt").write_text("0")
    with atomic_dir(out, kind="trial run") as d:
        (d / "a.txt").write_text("2")
    assert (out / "a.txt").read_text() == "2"
    assert not left.exists()  # cleared: a complete directory is in place
    assert sorted(p.name for p in tmp_path.iterdir()) == [legacy.name, "run"]


def test_atomic_dir_names_the_directory_asked_for_when_it_cannot_start(tmp_path: Path,
                                                                      monkeypatch) -> None:
    """An OSError creating the hidden partial directory names the output asked for, not
    '.NAME.XXXXXXXX.partial' (review: `--out /proc/x` showed the hidden name)."""
    import tempfile

    def refuse(*_a, **_k):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".out.abcdefgh.partial"))

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    with pytest.raises(PermissionError) as exc, atomic_dir(tmp_path / "out"):
        pass  # pragma: no cover
    assert exc.value.filename == str(tmp_path / "out")
    assert not list(tmp_path.iterdir())
