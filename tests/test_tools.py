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


def test_who_nonresponders_adds_up_and_bounds_the_papers_rule(tmp_path: Path, capsys) -> None:
    import re

    from reconsolidate.trial import load_trial_spec, make_plan, run_trial

    examples = ROOT / "examples" / "trials"
    plan = make_plan(load_trial_spec(examples / "placebo-natural-history.toml"), examples, 150)
    run_trial(plan, out_dir=tmp_path / "run")
    tool = _load("who_nonresponders")
    assert tool.main([str(tmp_path / "run"), "--arm", plan.arms[0].name, "--window", "84:111",
                      "--baseline=-40:-12"]) == 0
    out = capsys.readouterr().out
    one = float(re.search(r">= 1-level reduction: ([0-9.]+)%", out).group(1))
    m = re.search(r"nonresponders \(one level\): (\d+) = missing (\d+) \+ low baseline (\d+) "
                  r"\+ the rest (\d+)", out)
    assert int(m.group(1)) == int(m.group(2)) + int(m.group(3)) + int(m.group(4))
    assert int(m.group(1)) == round(150 * (1 - one / 100))
    paper = re.search(r"the paper's rule\): >= 1 level ([0-9.]+)%, >= 2 levels ([0-9.]+)%", out)
    assert float(paper.group(1)) <= one and float(paper.group(2)) <= float(paper.group(1))
    with pytest.raises(SystemExit):
        tool.main([str(tmp_path / "run"), "--arm", "nope", "--window", "84:111",
                   "--baseline=-40:-12"])
