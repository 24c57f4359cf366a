"""docs/trial-spec.md and the README against the code they describe."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC_DOC = ROOT / "docs" / "trial-spec.md"
FITTED = ROOT / "src" / "reconsolidate" / "calibration" / "fitted.toml"


def _rows(text: str, header: str) -> list[list[str]]:
    """The body rows of the markdown table that starts with ``header``."""
    lines = text[text.index(header):].splitlines()[2:]
    rows = []
    for ln in lines:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip().strip("|").split("|")])
    return rows


def _fitted() -> dict[str, float]:
    with FITTED.open("rb") as fh:
        return tomllib.load(fh)["parameters"]


@pytest.mark.parametrize(
    ("section", "header", "prefix"),
    [
        ("## `[behavior]`", "| field | unit | code default | calibrated | note |", "behavior."),
        ("## Top level", "| `[memory]` field | code default | calibrated |", "memory."),
    ],
)
def test_calibrated_columns_give_the_shipped_fitted_values(section: str, header: str,
                                                           prefix: str) -> None:
    """The parameter tables showed only the code defaults, while runs use the fitted values
    of calibration/fitted.toml (unless --uncalibrated): the `calibrated` column gives those, to
    3 significant digits, for every fitted key of the table and for no other."""
    from reconsolidate.behavior.params import BehaviorParams
    from reconsolidate.memory.params import MemoryParams

    text = SPEC_DOC.read_text(encoding="utf-8")
    text = text[text.index(section):]
    fitted = {k.removeprefix(prefix): v for k, v in _fitted().items() if k.startswith(prefix)}
    seen = set()
    for row in _rows(text, header):
        names = re.findall(r"`([a-z_]+)`", row[0])
        code = row[2 if prefix == "behavior." else 1]
        cal = row[3 if prefix == "behavior." else 2]
        defaults = (BehaviorParams() if prefix == "behavior." else MemoryParams())
        if "[" not in code:  # (drinking_probability_bounds is a pair)
            for name, value in zip(names, code.split(","), strict=True):
                assert float(value) == pytest.approx(float(getattr(defaults, name))), name
        if cal == "-":
            assert not set(names) & set(fitted), names
            continue
        for name, value in zip(names, cal.split(","), strict=True):
            assert float(value) == float(f"{fitted[name]:.3g}"), (name, value, fitted[name])
            seen.add(name)
    assert seen == set(fitted)


def test_therapy_calibrated_values_match_the_fit() -> None:
    text = " ".join(SPEC_DOC.read_text(encoding="utf-8").split())
    fitted = _fitted()
    met = fitted["therapy.met.motivation_logit_per_session"]
    edu = fitted["therapy.education.motivation_logit_per_session"]
    assert (f"a run uses {met:.3g} for `met` and {edu:.3g} for `education`") in text


def test_docs_no_longer_say_calibration_comes_later() -> None:
    import reconsolidate.behavior.params as bp

    assert "comes later" not in SPEC_DOC.read_text(encoding="utf-8")
    assert "later issue" not in (bp.__doc__ or "")
    assert "fitted.toml" in (bp.__doc__ or "")


def test_readme_follow_one_dose_names_the_functions_the_engine_calls() -> None:
    """The README named memory.population.restabilise; the engine calls restabilise_weighted."""
    import inspect

    from reconsolidate.trial import engine

    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    para = readme[readme.index("Follow one dose"):readme.index("## Layout")]
    source = inspect.getsource(engine._session)
    for name in re.findall(r"`memory\.population\.(\w+)` / `(\w+)`", para)[0]:
        assert f"mem.{name}(" in source, name
    for path in ("trial/run.py", "calibration/defaults.py", "pharmacology/pd.py"):
        assert f"`{path}`" in para and (ROOT / "src" / "reconsolidate" / path).is_file()
    assert "`delay_min`" in para and "negative = the drug is already running" in para
    assert "embedded defaults" not in readme


def test_live_day_docstring_says_what_the_caller_must_do() -> None:
    """live_day said 'simulate one day' but lets no time pass: the caller advances the memory
    clock 24 h and decays the lifts (tests/behavior/test_behavior_days.py does both)."""
    from reconsolidate.behavior.daily import live_day

    doc = " ".join((live_day.__doc__ or "").split())
    assert "Simulate one day" not in doc
    assert "It does not let the day pass" in doc
    assert "mem.advance(memory, 24.0)" in doc
    assert "state.decay(params, skill_half_life_days, 1.0)" in doc
