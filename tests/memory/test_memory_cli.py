"""``reconsolidate paradigm``: listing, schema, JSON and table output, plots and input errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reconsolidate.cli import main

BUILTIN_DIR = Path(__file__).resolve().parents[2] / "src" / "reconsolidate" / "memory" / "paradigms"


def test_list(capsys):
    assert main(["paradigm", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("nader2000", "monfils2009", "das2019-lab", "reinstatement"):
        assert name in out
    assert "prediction error" in out  # phenomena are listed too


def test_schema_is_json_schema(capsys):
    assert main(["paradigm", "--schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["type"] == "object"
    assert {"cues", "contexts", "phases", "conditions", "checks"} <= set(schema["properties"])
    assert schema.get("additionalProperties") is False


def test_json_output(capsys):
    assert main(["paradigm", "sevenster2013", "--model", "population", "--json", "-"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["paradigm"] == "sevenster2013" and d["model"] == "population"
    assert set(d["conditions"]) == {"PE+KET", "PE+PBO", "noPE+KET", "noPE+PBO"}
    for c in d["conditions"].values():
        assert 0.0 <= c["response"] <= 1.0
    assert all(isinstance(c["passed"], bool) for c in d["checks"])
    assert all(c["passed"] for c in d["checks"])


def test_table_and_plot(capsys, tmp_path):
    png = tmp_path / "plot.png"
    assert main(["paradigm", "renewal", "--plot", str(png), "--parameters", "defaults"]) == 0
    out = capsys.readouterr().out
    assert "ABA" in out and "PASS" in out and "memory parameters: defaults" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temporary file


def _bad(tmp_path: Path, old: str, new: str) -> Path:
    text = (BUILTIN_DIR / "nader2000.toml").read_text()
    assert old in text
    p = tmp_path / "bad.toml"
    p.write_text(text.replace(old, new, 1))
    return p


@pytest.mark.parametrize(("old", "new", "expect"), [
    ('primary_test = "ltm"', 'primary_test = "ltm"\ncolour = "red"', "unknown key 'colour'"),
    ('{ test = "ltm", delay_h = 24 },', '{ test = "ltm", delay_h = -24 },', "delay_h"),
    ('regimen = "zarate-0.5mgkg-40min"', 'regimen = "no-such-regimen"', "no-such-regimen"),
    ('regimen = "zarate-0.5mgkg-40min"', 'regimen = "missing.toml"', "file not found"),
    ('trials = [{ cue = "tone", reward = false }]', 'trials = [{ cue = "bell", reward = false }]',
     "cue 'bell' is not declared"),
    ('{ phase = "retrieval", delay_h = 24 },',
     '{ phase = "retrieval", delay_h = 24, delay_min = 3 },',
     "at most one of"),
    # a typo in primary_test used to fall back silently to each condition's last test
    ('primary_test = "ltm"', 'primary_test = "ltn"',
     "primary_test = 'ltn': not a test of this paradigm; valid: ltm"),
    # a test that only some conditions have would mix measures across conditions
    ('{ test = "ltm", delay_h = 24 },', '{ test = "ltm2", delay_h = 24 },',
     "primary_test = 'ltm': conditions NoRET+KET have no such test; valid (tests of every "
     "condition): (none)"),
    # review: absurd intervals ran silently; a condition without a test crashed the table
    ('{ test = "ltm", delay_h = 24 },', '{ test = "ltm", delay_days = 1e300 },',
     "delay_days' = 1e+300: must be less than or equal to 3650"),
    ('iti_min = 2.0', 'iti_min = 1e-300', "iti_min' = 1e-300: must be greater than or equal to "
     "0.01"),
    ('steps = [\n  { phase = "acquisition" },\n  { phase = "retrieval", delay_h = 24 },\n'
     '  { drug = "ketamine", delay_min = 1 },\n  { test = "stm", delay_h = 4 },\n'
     '  { test = "ltm", delay_h = 20 },\n]',
     'steps = [{ phase = "acquisition" }]',
     "condition 'RET+KET' has no test step"),
])
def test_bad_paradigm_files_exit_2_with_one_line(tmp_path, capsys, old, new, expect):
    path = _bad(tmp_path, old, new)
    assert main(["paradigm", str(path), "--json", "-"]) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0]


def test_unknown_paradigm_and_model(capsys):
    assert main(["paradigm", "nosuch"]) == 2
    assert "built-in" in capsys.readouterr().err
    assert main(["paradigm", "nader2000", "--model", "fancy"]) == 2
    assert "reference, population" in capsys.readouterr().err


def test_subprocess_json():
    out = subprocess.run([sys.executable, "-m", "reconsolidate", "paradigm", "doyere2007",
                          "--model", "population", "--json", "-"],
                         capture_output=True, text=True, check=True)
    d = json.loads(out.stdout)
    c = d["conditions"]
    assert c["RET+KET"]["tests"]["cs_n"] > 0.9 * c["RET+PBO"]["tests"]["cs_n"]


def test_regimen_file_relative_to_paradigm(tmp_path, capsys):
    (tmp_path / "regs").mkdir()
    src = BUILTIN_DIR / "regimens" / "zarate-0.5mgkg-40min.toml"
    (tmp_path / "regs" / "my-regimen.toml").write_text(src.read_text())
    path = _bad(tmp_path, 'regimen = "zarate-0.5mgkg-40min"', 'regimen = "regs/my-regimen.toml"')
    assert main(["paradigm", str(path), "--model", "population", "--json", "-"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert all(c["passed"] for c in d["checks"])


@pytest.mark.parametrize("option", ["--plot", "--json"])
def test_output_file_in_a_missing_directory_is_an_input_error(tmp_path, capsys, option):
    """A missing directory of --plot / --json is an input error (exit 2, one line naming the
    option, the value and the directory), checked before the paradigm runs; nothing is
    created (it used to make the whole tree, however far up)."""
    target = tmp_path / "nonexistent_root_dir" / "a" / ("b.png" if option == "--plot" else "b.json")
    assert main(["paradigm", "nader2000", option, str(target)]) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    assert cap.err.strip().splitlines() == [
        f"error: {option} {str(target)!r}: directory {target.parent} does not exist"]
    assert not (tmp_path / "nonexistent_root_dir").exists()


def test_subprocess_plot_in_a_missing_directory_exits_2_without_traceback(tmp_path):
    target = tmp_path / "missing" / "p.png"
    r = subprocess.run([sys.executable, "-m", "reconsolidate", "paradigm", "nader2000",
                        "--plot", str(target)], capture_output=True, text=True, check=False)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"error: --plot {str(target)!r}: directory {target.parent} does not exist"]
    assert not target.parent.exists()


def test_json_file_is_written_atomically(tmp_path, capsys):
    out = tmp_path / "nader.json"
    assert main(["paradigm", "nader2000", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["paradigm"] == "nader2000"
    assert "PASS" in capsys.readouterr().out  # the table is still printed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nader.json"]  # no temporary file


@pytest.mark.parametrize(("name", "model"), [("xue2012", "reference"),
                                             ("sevenster2013", "population"),
                                             ("nader2000", "population"),
                                             ("monfils2009", "reference")])
def test_plot_names_the_phases_and_tests_along_the_x_axis(tmp_path, name, model):
    """The x axis names every phase and test of the paradigm at its stretch of trials, shared
    by the conditions (xue2012's NoRet-Ext lacks the retrieval phase: the others' phases still
    line up), and each condition's points fall inside the stretches of its own phases."""
    from matplotlib.figure import Figure

    from reconsolidate._io import to_jsonable
    from reconsolidate.cli.paradigm import _figure, _layout, _plot, _points
    from reconsolidate.memory.paradigm import run_paradigm

    result = to_jsonable(run_paradigm(name, model).to_dict())
    fig = _figure(result)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    phases = {p["phase"] for c in result["conditions"].values() for p in _points(c)
              if p["kind"] != "test"}
    tests = {p["label"] for c in result["conditions"].values() for p in _points(c)
             if p["kind"] == "test"}
    named = {part for label in labels for part in label.split(" / ")}
    assert phases | tests <= named and phases and tests
    italic = {part for t in ax.get_xticklabels() if t.get_fontstyle() == "italic"
              for part in t.get_text().split(" / ")}
    assert italic == tests
    assert set(ax.get_legend_handles_labels()[1]) == set(result["conditions"])
    slots, xs = _layout(result)
    for cname, c in result["conditions"].items():
        for x, p in zip(xs[cname], _points(c), strict=True):
            slot = next(s for s in slots if s.start <= x < s.start + s.width)
            want = p["label"] if p["kind"] == "test" else p["phase"]
            assert want in slot.name.split(" / ")
    png = tmp_path / "p.png"
    _plot(result, str(png))
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 8 * 120 and height == 5 * 120  # figsize (in) x 120 dpi
    if name == "xue2012":  # the phase the NoRet-Ext condition lacks leaves a gap in its line
        assert [s.name for s in slots][:3] == ["history", "retrieval", "extinction"]
        retrieval = slots[1]
        assert not [x for x in xs["NoRet-Ext"]
                    if retrieval.start <= x < retrieval.start + retrieval.width]
    if name == "monfils2009":  # the unsignalled rewards keep their phase (no cue: no line)
        assert [(s.kind, s.name) for s in slots][-2:] == [("phase", "reinstatement"),
                                                          ("test", "reinstatement")]


def test_parameters_default_to_the_calibrated_memory(capsys):
    """`paradigm` runs the memory the trial engine uses (the shipped fit) unless told
    otherwise, says so, and lists the calibrated values that differ from the code defaults;
    the two sets give different numbers."""
    from reconsolidate.calibration.defaults import calibrated_parameters

    assert main(["paradigm", "renewal", "--model", "population", "--json", "-"]) == 0
    cal = json.loads(capsys.readouterr().out)
    assert cal["parameters"]["set"] == "calibrated"
    fitted = {k.removeprefix("memory.") for k in calibrated_parameters() if k.startswith("memory.")}
    assert set(cal["parameters"]["changed"]) == fitted
    assert main(["paradigm", "renewal", "--model", "population", "--json", "-",
                 "--parameters", "defaults"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["parameters"]["set"] == "defaults" and d["parameters"]["changed"] == {}
    assert d["conditions"] != cal["conditions"]
    assert main(["paradigm", "renewal"]) == 0
    assert "memory parameters: calibrated" in capsys.readouterr().out
    assert main(["paradigm", "renewal", "--parameters", "fitted"]) == 2
    assert "--parameters 'fitted': allowed calibrated, defaults" in capsys.readouterr().err


def test_strict_exits_1_when_a_check_fails(tmp_path, capsys):
    # a check that cannot hold: RET+KET's long-term response above 2
    path = _bad(tmp_path, 'primary_test = "ltm"', 'primary_test = "ltm"\n\n[[checks]]\n'
                'description = "impossible"\na = "RET+KET:ltm"\nrelation = "above"\n'
                'b_value = 2.0')
    assert main(["paradigm", str(path), "--json", "-"]) == 0  # without --strict: a result
    capsys.readouterr()
    assert main(["paradigm", str(path), "--strict"]) == 1
    cap = capsys.readouterr()
    assert "FAIL" in cap.out and "impossible" in cap.out
    assert cap.err.strip() == "error: 1 of 5 checks failed (first: impossible)"
    assert main(["paradigm", "nader2000", "--strict", "--json", "-"]) == 0


def test_plot_breaks_a_line_where_its_condition_skips_a_phase():
    """monfils2009's Ext condition has no retrieval phase: its line must not run across it."""
    import math

    from reconsolidate.cli.paradigm import _figure
    from reconsolidate.memory.paradigm import run_paradigm

    fig = _figure(run_paradigm("monfils2009").to_dict())
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    ext_x = list(lines["Ext"].get_xdata())
    full_x = list(lines["Ret-10min-Ext"].get_xdata())
    assert any(isinstance(v, float) and math.isnan(v) for v in ext_x)
    assert not any(isinstance(v, float) and math.isnan(v) for v in full_x[:60])
