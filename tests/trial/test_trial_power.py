"""`reconsolidate.trial.power` and `reconsolidate power`: power by simulated replicate trials."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reconsolidate._config import load_toml_model
from reconsolidate.cli import main
from reconsolidate.exceptions import InputError
from reconsolidate.trial.engine import make_plan
from reconsolidate.trial.power import estimate_power
from reconsolidate.trial.run import run_trial
from reconsolidate.trial.spec import TrialSpec

REGIMEN = (Path(__file__).resolve().parents[2] / "examples" / "regimens"
           / "das2019.toml").resolve()

# two arms, RET+KET against RET+PBO (or, with {same}, two identical placebo arms), a short
# burn-in and follow-up: cheap enough for a few hundred patients per test
SPEC = """
name = "power-test"
seed = 11
patients_per_arm = 20
baseline_days = 14
burn_in_days = 10
follow_up_days = {follow}

[cohort]
preset = "das2019"

[analysis]
missing_days = "exclude"
abstinent_last_days = 14

[protocols.ret_ket]
sessions = [
  {{ day = 0, retrieval = "alcohol_prediction_error", drug = "ketamine", regimen = "{reg}" }},
]

[protocols.ret_pbo]
sessions = [{{ day = 0, retrieval = "alcohol_prediction_error", drug = "saline" }}]

[[arms]]
name = "active"
protocol = "{active}"

[[arms]]
name = "placebo"
protocol = "ret_pbo"
"""


def _spec(tmp_path: Path, active: str = "ret_ket", follow: int = 56) -> Path:
    p = tmp_path / "power.toml"
    p.write_text(SPEC.format(reg=REGIMEN, active=active, follow=follow))
    return p


def _load(path: Path) -> TrialSpec:
    return load_toml_model(path, TrialSpec)


def _by_arm_patient(chunks: list) -> dict[tuple[str, int, str], np.ndarray]:
    out: dict[tuple[str, int, str], list] = {}
    for arm, rep, start, o in chunks:
        for k, v in o.items():
            out.setdefault((arm, rep, k), []).append((start, v))
    return {k: np.concatenate([v for _, v in sorted(x, key=lambda t: t[0])])
            for k, x in out.items()}


def test_a_smaller_trial_is_the_first_patients_of_a_larger_one(tmp_path: Path) -> None:
    # estimate_power simulates the largest size once and takes each arm's first patients for
    # the smaller ones: that must be exactly what a run at the smaller size gives (oracle)
    spec = _load(_spec(tmp_path, follow=30)).model_copy(
        update={"replicates": 2, "shared_patients": False})
    small = run_trial(make_plan(spec, tmp_path, 12, calibrated=False), out_dir=None,
                      chunk_size=5)
    large = run_trial(make_plan(spec, tmp_path, 21, calibrated=False), out_dir=None,
                      chunk_size=8)
    a, b = _by_arm_patient(small.outcome_chunks), _by_arm_patient(large.outcome_chunks)
    assert {k[:2] for k in a} == {(arm, r) for arm in ("active", "placebo") for r in (0, 1)}
    for key, v in a.items():
        assert len(v) == 12
        np.testing.assert_array_equal(v, b[key][:12], err_msg=str(key))
    # the two replicates are different trials
    assert not np.array_equal(a[("active", 0, "percent_days_abstinent")],
                              a[("active", 1, "percent_days_abstinent")])


def test_identical_arms_reject_at_about_alpha(tmp_path: Path) -> None:
    # two arms with the same treatment: the share of significant replicates is the type-I
    # error, which must sit near alpha. Arms sharing their patients (the spec's default) would
    # give identical arms and no rejection at all: the lower bound catches that.
    path = _spec(tmp_path, active="ret_pbo")
    res = estimate_power(_load(path), tmp_path, [40], replicates=200, alpha=0.05,
                         endpoints=["percent_days_abstinent", "percent_heavy_drinking_days",
                                    "time_to_first_heavy_day"], calibrated=False)
    assert res["reference_arm"] == "placebo"
    assert len(res["comparisons"]) == 3
    for c in res["comparisons"]:
        (b,) = c["by_n"]
        # 200 replicates at a true 5%: the central 99.9% of Binomial(200, 0.05) is 2 to 21
        rejected = round(b["rejection_rate"] * 200)
        assert 2 <= rejected <= 21, (c["endpoint"], b)
        assert rejected == b["n_significant"] + b["n_significant_against_arm"]
        # either direction alike: neither count alone holds nearly all the rejections
        assert b["n_significant"] <= 0.85 * rejected + 1, (c["endpoint"], b)
        assert b["n_significant_against_arm"] <= 0.85 * rejected + 1, (c["endpoint"], b)
        assert b["n_not_estimable"] == 0


def test_power_grows_with_arm_size_for_a_real_effect(tmp_path: Path) -> None:
    path = _spec(tmp_path)
    # (the calibrated effect on the first heavy day within 56 days is small: power 0.45 at 100
    # per arm, 0.6 at 160 and 0.63 at 200 with the session-16 fit; 0.7 at 100 with session 14's)
    res = estimate_power(_load(path), tmp_path, [200, 10, 30], replicates=40,
                         endpoints=["percent_days_abstinent", "time_to_first_heavy_day"],
                         target_power=0.5)
    assert res["patients_per_arm"] == [10, 30, 200]
    assert res["arm_sizes"] == {str(n): {"active": n, "placebo": n} for n in (10, 30, 200)}
    for c in res["comparisons"]:
        power = [b["power"] for b in c["by_n"]]
        assert power[2] > power[0], (c["endpoint"], power)
        assert power[2] >= 0.5, (c["endpoint"], power)
        # the estimate says ketamine after retrieval helps: more abstinent days, lower hazard
        est = c["by_n"][2]["median_estimate"]
        assert (est > 0) if c["kind"] == "mean_difference" else (est < 1), (c["endpoint"], est)
        reach = c["smallest_n_for_target"]
        first = next(b["patients_per_arm"] for b in c["by_n"] if b["power"] >= 0.5)
        assert reach == first
        for b in c["by_n"]:
            assert 0.0 <= b["ci_low"] <= b["power"] <= b["ci_high"] <= 1.0
            assert b["n_significant"] == round(b["power"] * 40)
            assert b["power"] <= b["rejection_rate"]
        # with this effect, a significant result against ketamine is rare
        assert c["by_n"][2]["n_significant_against_arm"] == 0


def test_workers_and_chunks_do_not_change_the_result(tmp_path: Path) -> None:
    path = _spec(tmp_path, follow=30)
    kw = dict(replicates=6, endpoints=["percent_days_abstinent", "time_to_first_heavy_day"],
              calibrated=False)
    one = estimate_power(_load(path), tmp_path, [10, 20], **kw)
    two = estimate_power(_load(path), tmp_path, [10, 20], workers=2, chunk_size=7, **kw)
    one.pop("timings")
    two.pop("timings")
    assert one == two


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"patients_per_arm": [1]}, "each must be an integer >= "),
    ({"patients_per_arm": []}, "at least one arm size"),
    ({"replicates": 1}, "replicates 1: must be 2 to 1000"),
    ({"alpha": 0.5}, "alpha 0.5: must be between 0 and 0.5"),
    ({"target_power": 1.0}, "target power 1.0: must be between 0 and 1"),
    ({"endpoints": ["pda"]}, "endpoint 'pda': allowed percent_days_abstinent, "),
])
def test_bad_arguments_are_refused(tmp_path: Path, kwargs: dict, match: str) -> None:
    args = {"patients_per_arm": [10], **kwargs}
    with pytest.raises(InputError, match=match):
        estimate_power(_load(_spec(tmp_path)), tmp_path, args.pop("patients_per_arm"), **args)


def test_a_run_whose_outcomes_would_not_fit_in_memory_is_refused(tmp_path: Path) -> None:
    # 1000 replicates x 2 arms x 5000 patients: about 12 GB of outcomes, refused at once
    with pytest.raises(InputError, match=r"1000 replicates x 10000 patients at the largest "
                                         r"size: about 12.0 GB .* allowed up to 6 GB"):
        estimate_power(_load(_spec(tmp_path)), tmp_path, [10, 5000], replicates=1000)


def test_one_arm_spec_is_refused(tmp_path: Path) -> None:
    spec = _load(_spec(tmp_path))
    one = spec.model_copy(update={"arms": spec.arms[:1]})
    with pytest.raises(InputError, match="has one arm"):
        estimate_power(one, tmp_path, [10], replicates=2)


def test_cli_json_and_table(tmp_path: Path, capsys) -> None:
    path = _spec(tmp_path, follow=30)
    code = main(["power", str(path), "--patients-per-arm", "10,20", "--replicates", "4",
                 "--endpoints", "percent_days_abstinent,time_to_first_heavy_day",
                 "--uncalibrated", "--json", "-"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["patients_per_arm"] == [10, 20] and out["replicates"] == 4
    assert [(c["endpoint"], c["arm"]) for c in out["comparisons"]] == [
        ("percent_days_abstinent", "active"), ("time_to_first_heavy_day", "active")]
    assert out["alpha"] == 0.05 and out["target_power"] == 0.8
    # FILE: the same object written, and the table printed
    f = tmp_path / "power.json"
    code = main(["power", str(path), "--patients-per-arm", "10,20", "--replicates", "4",
                 "--endpoints", "percent_days_abstinent,time_to_first_heavy_day",
                 "--uncalibrated", "--json", str(f)])
    assert code == 0
    table = capsys.readouterr().out
    assert "% days abstinent (difference, points)" in table and "n = 20" in table
    again = json.loads(f.read_text())
    out.pop("timings")
    again.pop("timings")
    assert again == out


@pytest.mark.parametrize(("args", "message"), [
    (["--patients-per-arm", "10,x"], "--patients-per-arm '10,x': expected whole numbers"),
    (["--patients-per-arm", "1"], "patients per arm 1: each must be an integer >= "),
    (["--alpha", "0.7"], "alpha 0.7: must be between 0 and 0.5"),
    (["--endpoints", "pda"], "--endpoints 'pda': allowed percent_days_abstinent"),
    (["--replicates", "1"], "replicates 1: must be 2 to 1000"),
    (["--workers", "0"], "--workers 0: must be >= 1"),
    (["--adjust", "sidak"], "--adjust 'sidak': allowed none, holm, bonferroni"),
    (["--missing-days", "ignore"], "--missing-days 'ignore': allowed"),
    (["--json", "/nonexistent-dir/x.json"], "--json"),
])
def test_cli_errors_are_one_line_exit_2(tmp_path: Path, capsys, args: list[str],
                                        message: str) -> None:
    if "--patients-per-arm" not in args:
        args = [*args, "--patients-per-arm", "10"]
    code = main(["power", str(_spec(tmp_path)), *args])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err, err


FACTORIAL = """
name = "power-factorial"
seed = 5
patients_per_arm = 20
baseline_days = 14
burn_in_days = 10
follow_up_days = 42

[cohort]
preset = "das2019"

[protocols.ret_ket]
sessions = [
  {{ day = 0, retrieval = "alcohol_prediction_error", drug = "ketamine", regimen = "{reg}" }},
]

[protocols.ret_pbo]
sessions = [{{ day = 0, retrieval = "alcohol_prediction_error", drug = "saline" }}]

[factorial]
protocols = ["ret_ket", "ret_pbo"]
therapies = ["mbrp", "none"]
"""


def test_factorial_designs_use_the_control_cell_and_add_main_effects(tmp_path: Path) -> None:
    """A 2 x 2: the reference is control x control (ret_pbo+none; by name alone the first
    control-named arm, ret_pbo+mbrp, mixed the factors), and each factor's main effect pools
    the other factor's arms (twice the patients of an arm)."""
    path = tmp_path / "factorial.toml"
    path.write_text(FACTORIAL.format(reg=REGIMEN))
    res = estimate_power(_load(path), tmp_path, [10, 20], replicates=6,
                         endpoints=["percent_days_abstinent"], calibrated=False)
    assert res["reference_arm"] == "ret_pbo+none"
    got = {(c["contrast"], c["arm"], c["reference"]) for c in res["comparisons"]}
    assert got == {("arm", "ret_ket+mbrp", "ret_pbo+none"), ("arm", "ret_ket+none", "ret_pbo+none"),
                   ("arm", "ret_pbo+mbrp", "ret_pbo+none"), ("protocol", "ret_ket", "ret_pbo"),
                   ("therapy", "mbrp", "none"),
                   ("interaction", "ret_ket x mbrp", "additive effects")}
    main = next(c for c in res["comparisons"] if c["contrast"] == "protocol")
    cell = next(c for c in res["comparisons"] if c["arm"] == "ret_ket+none")
    for bm, bc in zip(main["by_n"], cell["by_n"], strict=True):
        assert bm["mean_n_arm"] == pytest.approx(2 * bc["mean_n_arm"], rel=0.15)


def test_holm_and_bonferroni_match_statsmodels() -> None:
    from statsmodels.stats.multitest import multipletests

    from reconsolidate.trial.power import _adjusted

    rng = np.random.default_rng(3)
    for m in (1, 2, 3, 5):
        for _ in range(20):
            p = list(rng.uniform(0, 0.2, m))
            for method in ("holm", "bonferroni"):
                np.testing.assert_allclose(_adjusted(p, method),
                                           multipletests(p, method=method)[1], rtol=1e-12)
    # a comparison that could not be estimated is left out of the family
    assert _adjusted([0.01, None, 0.04], "holm") == [0.02, None, 0.04]
    assert _adjusted([0.01, 0.3], "none") == [0.01, 0.3]


def test_adjustment_and_missing_day_rule_change_what_they_should(tmp_path: Path) -> None:
    path = _spec(tmp_path, follow=30)
    spec = _load(path).model_copy(update={"arms": [
        *_load(path).arms, _load(path).arms[0].model_copy(update={"name": "active2"})]})
    kw = dict(replicates=8, endpoints=["percent_days_abstinent"], calibrated=False)
    plain = estimate_power(spec, tmp_path, [12], **kw)
    holm = estimate_power(spec, tmp_path, [12], adjust="holm", **kw)
    assert "Holm-adjusted" in holm["test"] and holm["adjust"] == "holm"
    for a, b in zip(plain["comparisons"], holm["comparisons"], strict=True):
        assert b["by_n"][0]["n_significant"] <= a["by_n"][0]["n_significant"]
        assert b["by_n"][0]["median_estimate"] == a["by_n"][0]["median_estimate"]
    heavy = estimate_power(spec, tmp_path, [12], missing_days="heavy", **kw)
    assert heavy["analysis"]["missing_days"] == "heavy"
    assert plain["analysis"]["missing_days"] == "exclude"
    with pytest.raises(InputError, match="adjust 'sidak': allowed none, holm, bonferroni"):
        estimate_power(spec, tmp_path, [12], adjust="sidak", **kw)
    with pytest.raises(InputError, match="missing days 'ignore': allowed"):
        estimate_power(spec, tmp_path, [12], missing_days="ignore", **kw)


def test_report_reference_arm_of_a_factorial_run() -> None:
    from reconsolidate.report.build import reference_arm

    arms = ["saline3+mbrp", "saline3+education", "ketamine3+mbrp", "ketamine3+education"]
    fac = {"protocols": ["ketamine3", "saline3"], "therapies": ["mbrp", "education"]}
    assert reference_arm(arms, fac) == "saline3+education"
    assert reference_arm(arms) == "saline3+mbrp"  # by name alone (no factorial given)


def test_factorial_interaction_is_the_difference_of_differences() -> None:
    """(m[p+t] - m[p+t0]) - (m[p0+t] - m[p0+t0]) with a Welch-Satterthwaite t test, checked on
    4 cells of known percent days abstinent against a direct scipy computation."""
    from scipy import stats

    from reconsolidate.endpoints import MissingDataHandling, compute_endpoints
    from reconsolidate.trial.power import _interaction_rows

    rng = np.random.default_rng(4)
    cells = ["k+m", "k+e", "s+m", "s+e"]
    drinks = (rng.random((4 * 6, 28)) < np.repeat([0.2, 0.4, 0.5, 0.7], 6)[:, None]) * 6.0
    ep = compute_endpoints(drinks, np.zeros(24, bool),
                           handling=MissingDataHandling("itt", "exclude"))
    labels = np.repeat(cells, 6)
    (row,) = _interaction_rows(ep, labels, {"k x m": ("k+m", "k+e", "s+m", "s+e")},
                               ["percent_days_abstinent"], "none")
    v = {c: ep.percent_days_abstinent[labels == c] for c in cells}
    m = {c: v[c].mean() for c in cells}
    assert row[5] == pytest.approx((m["k+m"] - m["k+e"]) - (m["s+m"] - m["s+e"]))
    parts = [v[c].var(ddof=1) / 6 for c in cells]
    df = sum(parts) ** 2 / sum(x**2 / 5 for x in parts)
    p = 2 * stats.t.sf(abs(row[5]) / np.sqrt(sum(parts)), df)
    assert row[4] == pytest.approx(p)
    assert row[:4] == ("interaction", "percent_days_abstinent", "k x m",
                       "difference_of_differences")


def test_factorial_power_reports_the_interaction(tmp_path: Path) -> None:
    path = tmp_path / "factorial.toml"
    path.write_text(FACTORIAL.format(reg=REGIMEN))
    res = estimate_power(_load(path), tmp_path, [10], replicates=4,
                         endpoints=["percent_days_abstinent", "time_to_first_heavy_day"],
                         calibrated=False)
    inter = [c for c in res["comparisons"] if c["contrast"] == "interaction"]
    assert [(c["arm"], c["endpoint"]) for c in inter] == [("ret_ket x mbrp",
                                                           "percent_days_abstinent")]
    assert inter[0]["reference"] == "additive effects"
    assert inter[0]["label"].endswith("interaction (difference of differences)")
