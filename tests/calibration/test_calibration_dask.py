"""A small calibration through a real Dask cluster (scheduler + 2 worker processes on
127.0.0.1) gives exactly the local result; the CLI writes the fitted file atomically."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reconsolidate.calibration import load_fitted, load_targets
from reconsolidate.calibration.fit import calibrate
from reconsolidate.cli import main

# The Dakwar 2020 targets: the shortest scenario (49 simulated days), so the test stays fast.
IDS = ["dakwar2020_ketamine_pda_21d", "dakwar2020_midazolam_pda_21d",
       "dakwar2020_heavy_days_difference_21d"]
SMALL = dict(budget=4, seed=11, batch_size=2, patients_per_arm=12, target_ids=IDS)


def test_calibration_dask_cluster_equals_local() -> None:
    distributed = pytest.importorskip("dask.distributed")
    local = calibrate(**SMALL)
    batches: list[tuple[int, int]] = []
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        remote = calibrate(**SMALL, scheduler=cluster.scheduler_address,
                           progress=lambda b, done, total, best: batches.append((b, done)))
    assert batches == [(0, 2), (1, 4)]
    assert [h["params"] for h in remote.history] == [h["params"] for h in local.history]
    assert [h["loss"] for h in remote.history] == [h["loss"] for h in local.history]
    assert [h["predicted"] for h in remote.history] == [h["predicted"] for h in local.history]
    assert remote.best_params == local.best_params
    assert remote.best_loss == local.best_loss
    # a different seed explores different parameters (the seed matters)
    other = calibrate(**{**SMALL, "seed": 12, "budget": 2})
    assert other.history[0]["params"] != local.history[0]["params"]


def test_calibration_cli_writes_fitted_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cal"
    args = ["calibrate", "--out", str(out), "--budget", "2", "--seed", "3", "--batch-size", "2",
            "--patients-per-arm", "8", "--json", "-"]
    # the CLI calibrates to every target; shrink the work by a targets file with Dakwar only
    lt = load_targets()
    text = lt.path.read_text(encoding="utf-8")
    small = tmp_path / "targets.toml"
    blocks = text.split("[[targets]]")
    keep = [b for b in blocks[1:] if 'scenario = "dakwar2020"' in b]
    head = blocks[0]
    tail = "[[parameters]]" + blocks[-1].split("[[parameters]]", 1)[1]
    # Dakwar's arms receive MET, not alcohol education: that parameter would be constrained by
    # no target of this file, which calibrate refuses
    params = tail.split("[[parameters]]")
    tail = "".join("[[parameters]]" + b for b in params[1:]
                   if "therapy.education." not in b.split("why", 1)[0])
    keep[-1] = keep[-1].split("[[parameters]]", 1)[0]
    small.write_text(head + "".join("[[targets]]" + b for b in keep) + tail, encoding="utf-8")
    (tmp_path / "scenarios").symlink_to(lt.base / "scenarios")
    assert main([*args[:1], str(small), *args[1:]]) == 0
    res = json.loads(capsys.readouterr().out)
    fitted = load_fitted(out / "fitted.toml")
    assert fitted["parameters"] == res["best_params"]
    prov = fitted["provenance"]
    assert prov["seed"] == 3 and prov["budget"] == 2 and prov["version"]
    assert prov["command"].startswith("reconsolidate calibrate ") and "--seed 3" in prov["command"]
    assert prov["date_utc"].endswith("Z")
    hist = json.loads((out / "history.json").read_text())
    assert len(hist) == 2 and all("params" in h and "loss" in h for h in hist)
    for p in lt.parameters:
        if p.name.startswith("therapy.education."):
            assert p.name not in fitted["parameters"]
            continue
        assert p.low <= fitted["parameters"][p.name] <= p.high
    assert (out / "targets.toml").read_text() == small.read_text()
    # user errors: one line, exit 2
    assert main(["calibrate", "--out", str(tmp_path / "x"), "--budget", "0"]) == 2
    assert "error: --budget 0" in capsys.readouterr().err
    assert main(["calibrate", "--out", str(tmp_path / "x"), "--scheduler", "nonsense"]) == 2
    assert "tcp://HOST:PORT" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_calibration_validate_cli_json(capsys: pytest.CaptureFixture) -> None:
    ids = ["dakwar2020_ketamine_pda_21d", "dakwar2020_relapse_hazard_ratio_21d"]
    argv = ["validate", "--json", "-", "--patients-per-arm", "10"]
    for i in ids:
        argv += ["--target", i]
    assert main(argv) == 0
    res = json.loads(capsys.readouterr().out)
    assert [t["id"] for t in res["targets"]] == ids
    assert res["patients_per_arm"] == {"dakwar2020": 10}  # the override, per scored scenario
    for t in res["targets"]:
        assert set(t) >= {"id", "source", "published", "predicted", "interval", "passed"}
        lo, hi = t["interval"]
        assert t["passed"] == (t["predicted"] is not None and lo <= t["predicted"] <= hi)
    # once through a subprocess, as a user runs it
    r = subprocess.run([sys.executable, "-m", "reconsolidate", "validate", "--json", "-",
                        "--patients-per-arm", "10", "--target", ids[0]],
                       capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode == 0, r.stderr
    sub = json.loads(r.stdout)
    assert sub["targets"][0]["predicted"] == res["targets"][0]["predicted"]
    assert main(["validate", "--target", "nope"]) == 2
    assert "unknown target id" in capsys.readouterr().err
