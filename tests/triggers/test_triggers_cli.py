"""``reconsolidate triggers`` and ``reconsolidate simulate-diary`` through the CLI entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reconsolidate.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "ema"


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_json_profiles_are_ranked_strongest_first(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(
        capsys,
        ["triggers", str(EXAMPLES / "diary.csv"), "--mapping", str(EXAMPLES / "mapping.toml"),
         "--json", "-"],
    )
    truth = json.loads((EXAMPLES / "diary.truth.json").read_text(),
                       parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
    assert set(out["participants"]) == set(truth["participants"])
    hits = 0
    for pid, prof in out["participants"].items():
        effects = [t["effect"] for t in prof["triggers"]]
        assert effects == sorted(effects, reverse=True)
        for t in prof["triggers"]:
            assert t["interval"][0] <= t["effect"] <= t["interval"][1]
            assert {"cue", "effect", "interval", "drink_log_odds", "thin_evidence"} <= set(t)
        rec = prof["recommended_retrieval_cues"]
        assert rec == [t["cue"] for t in prof["triggers"] if t["recommended"]]
        assert len(rec) <= 3
        hits += prof["triggers"][0]["cue"] == truth["participants"][pid]["strongest_cue"]
    assert hits >= 11  # 12 participants, 3 weeks: the planted trigger comes first


def test_participant_filter_and_options(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(
        capsys,
        ["triggers", str(EXAMPLES / "diary.csv"), "--mapping", str(EXAMPLES / "mapping.toml"),
         "--participant", "P00003", "--top-k", "1", "--level", "0.8", "--json", "-"],
    )
    assert list(out["participants"]) == ["P00003"]
    assert len(out["participants"]["P00003"]["recommended_retrieval_cues"]) == 1
    assert out["level"] == 0.8
    assert main(["triggers", str(EXAMPLES / "diary.csv"), "--participant", "nobody"]) == 2
    assert "participant 'nobody' is not in the diary" in capsys.readouterr().err
    assert main(["triggers", str(EXAMPLES / "diary.csv"), "--level", "1.5"]) == 2
    assert "--level 1.5" in capsys.readouterr().err


def test_table_output_and_unmapped_tag_warning(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["triggers", str(EXAMPLES / "diary.csv"), "--participant", "P00001"]) == 0
    captured = capsys.readouterr()
    assert "participant P00001" in captured.out
    assert "recommended retrieval cues:" in captured.out
    # without the mapping every tag is a cue: nothing is unmapped
    assert "neither mapped" not in captured.err


def test_invalid_diary_exits_2_with_one_line_per_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(
        "participant_id,timestamp,tags,craving,drinks\n"
        "a,2025-01-01T10:00,pub,120,0\n"
        "a,2025-01-01T09:00,pub,20,-2\n"
        "z,2025-01-01T09:00,pub,20,0\n"
    )
    q = tmp_path / "ids.txt"
    q.write_text("a\n")
    assert main(["triggers", str(p), "--participants", str(q)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4
    assert all(line.startswith(f"error: {p}:") for line in err)
    joined = "\n".join(err)
    assert f"{p}:2: craving 120 outside 0-100" in joined
    assert f"{p}:3: negative drinks -2" in joined
    assert f"{p}:3: timestamp" in joined
    assert f"{p}:4: participant_id 'z' is not in the participant list" in joined


def test_simulate_diary_writes_diary_and_truth_atomically(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "syn.parquet"
    assert main(["simulate-diary", "--patients", "30", "--weeks", "8", "--out", str(out),
                 "--seed", "4"]) == 0
    # strict JSON (no NaN: JavaScript's JSON.parse rejects it)
    truth = json.loads((tmp_path / "syn.truth.json").read_text(),
                       parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
    assert len(truth["participants"]) == 30 and "live_day" in truth["generator"]
    capsys.readouterr()
    prof = _json(capsys, ["triggers", str(out), "--json", "-"])
    top = sum(
        p["triggers"][0]["cue"] == truth["participants"][pid]["strongest_cue"]
        for pid, p in prof["participants"].items()
    )
    assert top >= 27
    assert sorted(tmp_path.iterdir()) == [out, tmp_path / "syn.truth.json"]  # no temp files
    assert main(["simulate-diary", "--patients", "0", "--weeks", "1", "--out", str(out)]) == 2
    assert "--patients 0: must be >= 1" in capsys.readouterr().err
    assert main(["simulate-diary", "--patients", "3", "--weeks", "1", "--out", str(out),
                 "--generator", "magic"]) == 2
    assert "--generator 'magic': allowed simulator, stand-in" in capsys.readouterr().err
    standin = tmp_path / "standin.csv"
    assert main(["simulate-diary", "--patients", "3", "--weeks", "1", "--out", str(standin),
                 "--generator", "stand-in"]) == 0
    assert "stand-in" in json.loads((tmp_path / "standin.truth.json").read_text())["generator"]


def test_json_to_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "profiles.json"
    assert main(["triggers", str(EXAMPLES / "diary.csv"), "--json", str(dest)]) == 0
    assert "participants" in json.loads(dest.read_text())


def test_natural_vocabulary_round_trip_and_subprocess_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    diary = tmp_path / "d.csv"
    assert main(["simulate-diary", "--patients", "15", "--weeks", "4", "--out", str(diary),
                 "--vocabulary", "natural", "--seed", "2", "--generator", "stand-in"]) == 0
    capsys.readouterr()
    out = _json(
        capsys,
        ["triggers", str(diary), "--mapping", str(EXAMPLES / "mapping.toml"), "--json", "-"],
    )
    assert len(out["participants"]) == 15 and out["unmapped_tags"] == {}
    # once through a real process: exit code 2, one clean line, no traceback
    bad = tmp_path / "bad.csv"
    bad.write_text("participant_id,timestamp,tags,craving,drinks\na,never,pub,1,0\n")
    run = [sys.executable, "-m", "reconsolidate"]
    r = subprocess.run([*run, "triggers", str(bad)], capture_output=True, text=True, check=False)
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"error: {bad}:2: unparseable timestamp 'never' (expected ISO 8601, e.g. 2025-03-01T18:30)"
    )
    assert "Traceback" not in r.stderr


def test_output_files_need_an_existing_directory(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no" / "diary.csv"
    assert main(["simulate-diary", "--patients", "2", "--weeks", "1", "--out", str(missing)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --out '{missing}': directory {missing.parent} does not exist")
    diary = tmp_path / "d.csv"
    assert main(["simulate-diary", "--patients", "2", "--weeks", "1", "--out", str(diary)]) == 0
    capsys.readouterr()
    js = tmp_path / "no" / "t.json"
    assert main(["triggers", str(diary), "--json", str(js)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --json '{js}': directory {js.parent} does not exist")
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize(("argv", "expect"), [
    (["--top-k", "0"], "error: --top-k 0: allowed: >= 1"),
    (["--level", "1.5"], "error: --level 1.5: allowed: 0 < level < 1 (e.g. 0.95)"),
    (["--min-exposures", "-1"], "error: --min-exposures -1: allowed: >= 0"),
    (["--min-own-share", "2"], "error: --min-own-share 2.0: allowed: 0 to 1"),
])
def test_bad_flag_values_are_named_by_their_flag(argv: list[str], expect: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["triggers", str(EXAMPLES / "diary.csv"), *argv]) == 2
    assert capsys.readouterr().err.strip() == expect


@pytest.mark.parametrize(("argv", "expect"), [
    (["--patients", "0"], "error: --patients 0: must be >= 1"),
    (["--weeks", "0"], "error: --weeks 0: must be > 0"),
    (["--prompts-per-day", "7"], "error: --prompts-per-day 7: allowed 1-5"),
    (["--seed", "-1"], "error: --seed -1: must be a non-negative integer"),
    (["--vocabulary", "x"], "error: --vocabulary 'x': allowed cue, natural"),
])
def test_simulate_diary_flags_are_named(argv: list[str], expect: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Errors name the flag typed, not the library's parameter (n_patients, prompts_per_day)."""
    args = {"--patients": "2", "--weeks": "1"}
    args.update(dict(zip(argv[::2], argv[1::2], strict=True)))
    flat = [x for kv in args.items() for x in kv]
    assert main(["simulate-diary", *flat, "--out", str(tmp_path / "d.csv")]) == 2
    assert capsys.readouterr().err.strip() == expect
    assert not list(tmp_path.iterdir())
