"""The maintenance scripts under tools/ that the docs cite run and refuse bad input cleanly."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_untreated_stability_reports_both_tails_and_takes_behavior_overrides(capsys) -> None:
    tool = _load("untreated_stability")
    assert tool.main(["--patients", "300", "--days", "60",
                      "--behavior", "extinction_opportunity_fraction=0.25"]) == 0
    out = capsys.readouterr().out
    assert "extinction opportunity 0.25" in out
    assert ">= 1.5 days/week above usual" in out and "under 4 days a week:" in out


@pytest.mark.parametrize(("arg", "message"), [
    ("extinction_opportunity_fraction", "expected NAME=VALUE"),
    ("habit_weight_logit=x", "VALUE must be a number"),
    ("no_such_field=1", "behavior.no_such_field"),
    ("extinction_opportunity_fraction=2", "behavior.extinction_opportunity_fraction"),
])
def test_untreated_stability_names_a_bad_override(arg: str, message: str, capsys) -> None:
    tool = _load("untreated_stability")
    with pytest.raises(SystemExit) as e:
        tool.main(["--patients", "10", "--days", "5", "--behavior", arg])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
