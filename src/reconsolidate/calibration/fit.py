"""Calibration with optuna (TPE or CMA-ES), evaluated locally or on a Dask cluster, reproducibly.

Determinism: the sampler is ``optuna.samplers.TPESampler(seed=seed, multivariate=True)`` (or,
with ``sampler="cmaes"``, ``optuna.samplers.CmaEsSampler(seed=seed)``); trials are asked in
fixed-size batches (``batch_size``, independent of the number of workers), each
batch is evaluated (in this process, or through ``dask.distributed.Client.map`` on a cluster)
and told back in ask order before the next batch is asked. Every evaluation is a pure function
of its parameters (the scenarios' seeds are fixed: common random numbers), so the trial history
and the fitted parameters are identical for the same seed, locally or distributed, for any
number of workers.

Refinement: ``start`` (a fitted-parameter file, e.g. the shipped fit) and ``radius`` restrict
the search to a box around the start's values, ``radius`` times each parameter's declared
range on either side (on the log scale for a log parameter), shifted to stay inside the
declared bounds; the start itself is the first trial, so a refinement never ends worse than
its start. CMA-ES then starts from the start's values with a step of a sixth of the box and a
population that is a multiple of the batch size: the textbook local search for a deterministic
loss in 20-odd continuous dimensions (Hansen 2016, arXiv:1604.00772). (Optuna's CMA-ES learns
the search space from a completed trial: the rest of the first batch is drawn uniformly in the
box.)
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import posixpath
import re
import shlex
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconsolidate import __version__
from reconsolidate._io import atomic_dir, atomic_write_json, atomic_write_text, to_jsonable
from reconsolidate.calibration.defaults import load_fitted, render_fitted_toml
from reconsolidate.calibration.predict import evaluate
from reconsolidate.calibration.targets import LoadedTargets, load_targets
from reconsolidate.exceptions import InputError

__all__ = [
    "SAMPLERS",
    "CalibrationResult",
    "bundle_targets",
    "calibrate",
    "search_box",
    "write_calibration",
]


@dataclass
class CalibrationResult:
    """Outcome of a calibration.

    Attributes
    ----------
    best_params
        Fitted parameter values (dotted names).
    best_loss
        Their loss (the targets' loss plus the penalty of failed laboratory checks, when the
        targets file has a ``[lab]`` table).
    best_predicted
        Their predicted value of each target (target order).
    history
        One dict per trial (ask order): ``number``, ``batch``, ``params``, ``loss``, ``predicted``,
        ``target_loss``, ``lab_penalty``, ``lab_passed``, ``lab_checks``.
    settings
        seed, budget, batch size, sampler, targets path and SHA-256, patients per arm, and
        ``unconstrained_parameters``: the free parameters of a therapy no arm of the selected
        targets' scenarios receives (calibrating to a subset, ``target_ids``): searched, but no
        selected target constrains them (the fitted file's provenance names them).
    timings
        ``wall_seconds``.
    """

    best_params: dict[str, float]
    best_loss: float
    best_predicted: list[float]
    history: list[dict[str, Any]]
    settings: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)


def _git_commit() -> str | None:
    """HEAD of the source tree, with ``+dirty`` when tracked files differ from it (then the
    command alone does not reproduce the fit)."""
    import subprocess

    here = Path(__file__).parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                              text=True, timeout=5, check=False).stdout.strip()
        if not head:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True, timeout=5,
                               check=False).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


SAMPLERS = ("tpe", "cmaes")


def _best_trial(history: list[dict[str, Any]]) -> dict[str, Any]:
    """The trial with the lowest loss (the earliest among equals): the fit."""
    return min(history, key=lambda h: (h["loss"], h["number"]))


def _suggest(trial: Any, lt: LoadedTargets,
             box: dict[str, tuple[float, float]]) -> dict[str, float]:
    return {
        p.name: float(trial.suggest_float(p.name, *box[p.name], log=p.log))
        for p in lt.parameters
    }


def search_box(lt: LoadedTargets, start: dict[str, float] | None,
               radius: float) -> dict[str, tuple[float, float]]:
    """Bounds searched for each parameter: the declared ones, or a box around ``start``.

    Parameters
    ----------
    lt
        The loaded targets (their ``[[parameters]]`` declare names, bounds and scales).
    start
        Start values by parameter name, or None for the declared bounds.
    radius
        Half-width of the box as a fraction of each declared range, in (0, 1]; on the log
        scale for a log parameter. A box reaching past a declared bound is shifted inside it
        (same width), so the start may sit off-centre.
    """
    if not 0.0 < radius <= 1.0:
        raise InputError(f"--radius {radius}: must be in (0, 1]")
    if start is None:
        return {p.name: (p.low, p.high) for p in lt.parameters}
    missing = [p.name for p in lt.parameters if p.name not in start]
    if missing:
        raise InputError(f"no value for {', '.join(missing)} (calibrated parameters of "
                         f"{lt.path.name})")
    box = {}
    for p in lt.parameters:
        x = start[p.name]
        if not p.low <= x <= p.high:
            raise InputError(f"{p.name} = {x!r} lies outside its declared bounds "
                             f"[{p.low}, {p.high}]")
        f, inv = (math.log, math.exp) if p.log else (float, float)
        lo_b, hi_b = f(p.low), f(p.high)
        width = min(2.0 * radius * (hi_b - lo_b), hi_b - lo_b)
        lo = min(max(f(x) - 0.5 * width, lo_b), hi_b - width)
        hi = lo + width
        tol = 1e-12 * (hi_b - lo_b)  # a box edge on a bound is that bound, not a rounding of it
        lo_v = p.low if lo <= lo_b + tol else max(inv(lo), p.low)
        hi_v = p.high if hi >= hi_b - tol else min(inv(hi), p.high)
        box[p.name] = (lo_v, hi_v)
    return box


def _make_sampler(optuna: Any, sampler: str, seed: int, budget: int, batch_size: int,
                  n_params: int, x0: dict[str, float] | None) -> tuple[Any, str]:
    if sampler == "tpe":
        n_startup = max(1, min(10, budget // 2))
        s = optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=n_startup)
        return s, (f"optuna {optuna.__version__} TPESampler(seed={seed}, multivariate=True, "
                   f"n_startup_trials={n_startup})")
    try:
        import cmaes  # noqa: F401  (optuna's CmaEsSampler needs it)
    except ImportError:
        raise InputError("--sampler cmaes needs the cmaes package: "
                         "pip install -e '.[parallel]'") from None
    # A generation is told to CMA-ES once popsize of its trials are complete; a popsize that is
    # a multiple of the batch size wastes none (the default 4 + 3 ln n, 12 for 20 parameters,
    # with batches of 8 would ask 16 per generation and use 12).
    default = 4 + math.floor(3.0 * math.log(n_params))
    popsize = batch_size * math.ceil(default / batch_size)
    with warnings.catch_warnings():
        # x0 is deprecated from optuna 4.9 (removal planned for 6.0; pinned < 5): without it
        # CMA-ES would start at the box centre, off the start fit where the box was shifted
        warnings.simplefilter("ignore", FutureWarning)
        s = optuna.samplers.CmaEsSampler(seed=seed, popsize=popsize, x0=x0)
    return s, (f"optuna {optuna.__version__} CmaEsSampler(seed={seed}, popsize={popsize}"
               + (", x0=start" if x0 is not None else "") + ")")


def _refuse_parameters_set_by_scenarios(lt: Any, scenarios: list[str]) -> list[str]:
    """A free parameter that a scenario spec sets itself would be calibrated there (the fit
    overrides it) but ignored once the fit is installed (a spec's own values win): the loss the
    fit records would not be the one it gives. Refuse it up front, naming both."""
    from reconsolidate.calibration.defaults import apply_parameters
    from reconsolidate.trial.spec import load_trial_spec

    probe = {p.name: p.low for p in lt.parameters}
    # every scenario a target of the file uses, each spec read once
    every = sorted({t.scenario for t in lt.targets} | set(scenarios))
    specs = {x: load_trial_spec(lt.scenario_path(x)) for x in every}
    for scen in scenarios:
        skipped: list[str] = []
        # also names an unknown parameter, or a low bound the model refuses, before the fit
        # (they surfaced only at the first evaluation)
        try:
            apply_parameters(specs[scen], probe, only_unset=True, skipped=skipped)
        except InputError as exc:
            raise InputError(f"{lt.path}: [[parameters]]: {exc}") from None
        if skipped:
            raise InputError(
                f"{lt.path}: [[parameters]] {', '.join(skipped)}: scenario {scen!r} "
                f"({lt.scenario_path(scen)}) sets it itself, so the fit would tune a value the "
                "installed fit never uses; allowed: parameters the scenarios leave to the "
                "defaults (remove it from the scenario or from [[parameters]])")
    therapy_of = {x: {str(spec.therapy_of(a).name) for a in spec.all_arms()}
                  for x, spec in specs.items()}
    therapies = set().union(*therapy_of.values())
    # the therapy of each therapy parameter ("therapy.NAME.field")
    named = {p.name: p.name.split(".")[1] for p in lt.parameters
             if p.name.split(".")[0] == "therapy" and len(p.name.split(".")) == 3}
    # a therapy's parameter that no arm of the file's target scenarios receives changes no
    # prediction: the fit would leave it wherever the sampler happened to put it and write
    # that as calibrated (a targets file of the Das trial alone with therapy.met.* free)
    for name, therapy in named.items():
        if therapy not in therapies:
            raise InputError(
                f"{lt.path}: [[parameters]] {name}: no arm of its targets' scenarios "
                f"({', '.join(every)}) receives the {therapy!r} therapy, so no target "
                "constrains it; allowed: parameters of the therapies they simulate "
                f"({', '.join(sorted(therapies - {'none'})) or 'none'}); add a target whose "
                "scenario uses it, or remove it from [[parameters]]")
    # a subset of the targets (target_ids) may leave a therapy's parameters unconstrained: the
    # fit keeps searching them (the file declares them) and the result names them
    reached = set().union(*(therapy_of[x] for x in scenarios))
    return [name for name, therapy in named.items() if therapy not in reached]


def calibrate(
    targets: str | Path | None = None,
    *,
    budget: int = 48,
    seed: int = 0,
    batch_size: int = 8,
    scheduler: str | Any | None = None,
    patients_per_arm: int | None = None,
    target_ids: list[str] | None = None,
    sampler: str = "tpe",
    start: str | Path | None = None,
    radius: float = 1.0,
    progress: Callable[[int, int, int, float], None] | None = None,
) -> CalibrationResult:
    """Fit the free parameters of a targets file.

    Parameters
    ----------
    targets
        Targets file (default: the shipped one).
    budget
        Number of parameter sets evaluated (trials), >= 1.
    seed
        Seed of the sampler (the simulations use the scenarios' own seeds).
    batch_size
        Trials asked and evaluated together (part of the result's definition: the same
        batch size gives the same result on any number of workers).
    scheduler
        None: evaluate in this process. A ``tcp://HOST:PORT`` address or a
        ``dask.distributed.Client`` / ``LocalCluster``: evaluate each batch on that cluster.
    patients_per_arm
        Override the scenario sizes (tests and benchmarks).
    target_ids
        Calibrate to these targets only (default: all).
    sampler
        ``"tpe"`` (global search, the default) or ``"cmaes"`` (local search; best with
        ``start``).
    start
        A fitted-parameter file (``fitted.toml``) whose values are the first trial and the
        centre of the search box (a refinement). Its values of every calibrated parameter
        are needed.
    radius
        Half-width of the search box around ``start`` as a fraction of each parameter's
        declared range, in (0, 1] (1: the declared bounds; ignored without ``start``).
    progress
        Called after each batch with (batch index, trials done, budget, best loss so far).
    """
    try:
        import optuna
    except ImportError:
        raise InputError(
            "calibration needs optuna (not installed): pip install -e '.[parallel]'"
        ) from None

    if budget < 1:
        raise InputError(f"--budget {budget}: must be >= 1")
    if batch_size < 1:
        raise InputError(f"--batch-size {batch_size}: must be >= 1")
    if seed < 0:
        raise InputError(f"--seed {seed}: must be >= 0")
    if sampler not in SAMPLERS:
        raise InputError(f"--sampler {sampler!r}: must be one of {', '.join(SAMPLERS)}")
    lt = load_targets(targets)
    if not lt.parameters:
        raise InputError(f"{lt.path}: no [[parameters]] to calibrate")
    selected = lt.select(target_ids)
    ids = tuple(t.id for t in selected)
    tpath = str(lt.path)
    unconstrained = _refuse_parameters_set_by_scenarios(
        lt, sorted({t.scenario for t in selected}))
    start_info: dict[str, Any] | None = None
    start_params: dict[str, float] | None = None
    if start is not None:
        fitted = load_fitted(start)
        declared = {p.name for p in lt.parameters}
        extra = sorted(set(fitted["parameters"]) - declared)
        if extra:
            # they would silently fall back to the code defaults: the first trial would not be
            # the start fit
            raise InputError(f"--start {start}: {', '.join(extra)} are not calibrated "
                             f"parameters of {lt.path.name}")
        start_params = dict(fitted["parameters"])
        start_info = {"path": str(start),
                      "sha256": hashlib.sha256(Path(start).read_bytes()).hexdigest(),
                      "command": fitted["provenance"].get("command", "unknown"),
                      "git_commit": fitted["provenance"].get("git_commit", "unknown"),
                      "radius": radius}
    elif radius != 1.0:
        raise InputError(f"--radius {radius}: only with --start (a box around a start fit)")
    box = search_box(lt, None, radius)  # the declared bounds; checks the radius
    if start_params is not None:
        try:
            box = search_box(lt, start_params, radius)
        except InputError as exc:
            raise InputError(f"--start {start}: {exc}") from None

    commit = _git_commit()  # the code that runs: taken now, not when the result is written
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        smp, sampler_text = _make_sampler(optuna, sampler, seed, budget, batch_size,
                                          len(lt.parameters), start_params)
    client, own_client = _client(scheduler)
    study = optuna.create_study(direction="minimize", sampler=smp)
    if start_params is not None:
        study.enqueue_trial(start_params)
    history: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    try:
        done = 0
        batch = 0
        while done < budget:
            k = min(batch_size, budget - done)
            trials = [study.ask() for _ in range(k)]
            params = [_suggest(tr, lt, box) for tr in trials]
            if client is None:
                results = [evaluate(p, tpath, ids, patients_per_arm, lt.sha256)
                           for p in params]
            else:
                futs = client.map(evaluate, params, targets_path=tpath, target_ids=ids,
                                  patients_per_arm=patients_per_arm, targets_sha256=lt.sha256,
                                  pure=False)
                results = client.gather(futs)
            for tr, p, r in zip(trials, params, results, strict=True):
                value = r["loss"] if math.isfinite(r["loss"]) else 1e12
                study.tell(tr, value)
                history.append({"number": tr.number, "batch": batch, "params": p,
                                "loss": value, "predicted": r["predicted"],
                                "target_loss": r.get("target_loss", value),
                                "lab_penalty": r.get("lab_penalty", 0.0),
                                "lab_passed": r.get("lab_passed", 0),
                                "lab_checks": r.get("lab_checks", 0)})
            done += k
            best = min(h["loss"] for h in history)
            if progress is not None:
                progress(batch, done, budget, best)
            batch += 1
    finally:
        if own_client and client is not None:
            client.close()
    best = _best_trial(history)
    settings = {
        "seed": seed,
        "budget": budget,
        "batch_size": batch_size,
        "sampler": sampler_text,
        "start": start_info,
        "git_commit": commit or "unknown",
        "targets_path": tpath,
        "targets_sha256": lt.sha256,
        "lab_sha256": lt.lab_sha256,
        "scenarios_sha256": lt.scenarios_sha256,
        "target_ids": list(ids),
        "patients_per_arm": patients_per_arm,
        "parameters": [p.model_dump() for p in lt.parameters],
        # free parameters no arm of the selected targets' scenarios uses (a subset of the
        # targets): searched but constrained by nothing
        "unconstrained_parameters": unconstrained,
    }
    return CalibrationResult(
        best_params=dict(best["params"]),
        best_loss=float(best["loss"]),
        best_predicted=list(best["predicted"]),
        history=history,
        settings=settings,
        timings={"wall_seconds": time.perf_counter() - t0},
    )


def _client(scheduler: str | Any | None) -> tuple[Any, bool]:
    if scheduler is None:
        return None, False
    try:
        from dask.distributed import Client
    except ImportError:
        raise InputError(
            "--scheduler needs dask.distributed: pip install -e '.[parallel]'"
        ) from None

    if isinstance(scheduler, str):
        if not scheduler.startswith(("tcp://", "tls://", "inproc://", "ws://", "wss://")):
            raise InputError(f"--scheduler {scheduler!r}: give an address like tcp://HOST:PORT")
        try:
            return Client(scheduler, timeout="20s"), True
        except OSError as exc:
            raise InputError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
    if isinstance(scheduler, Client):
        return scheduler, False
    return Client(scheduler), True  # a cluster object (LocalCluster, ...)


# Files write_calibration writes itself: a scenario file may not take their place in DIR.
_OUTPUT_FILES = frozenset({"fitted.toml", "history.json", "history.csv", "targets.toml",
                           "summary.json"})


def _inside(path: str) -> str | None:
    """``path`` (relative, POSIX or Windows separators) normalised, or None when it is absolute
    or leaves its folder (``..``): such a file cannot be copied next to the targets file."""
    p = path.replace("\\", "/")
    if posixpath.isabs(p) or re.match(r"^[A-Za-z]:", p):
        return None
    n = posixpath.normpath(p)
    if n in (".", "..") or n.startswith("../"):
        return None
    return n


def _render_toml(data: dict[str, Any]) -> str:
    """TOML text of parsed TOML data (tomli-w); checked by parsing it back."""
    import tomllib

    import tomli_w

    text = tomli_w.dumps(data)
    if tomllib.loads(text) != data:  # pragma: no cover - a bug in the writer, not user input
        raise RuntimeError("TOML writer: the written targets file does not read back equal")
    return text


def bundle_targets(lt: LoadedTargets) -> tuple[bytes, dict[str, bytes], dict[str, str]]:
    """What ``DIR/targets.toml`` and its neighbours must hold for ``DIR`` to be self-contained.

    A targets file names its scenario specs by paths relative to itself, and a scenario spec
    its regimen files relative to the spec. Each scenario whose spec and regimen files lie in
    the targets file's folder (paths without ``..`` leaving it) is copied into ``DIR`` at the
    same relative path, byte for byte; the targets file is then copied unchanged, so its
    SHA-256 is the ``targets_sha256`` of the fit. A scenario reaching outside that folder
    (absolute path, or ``..`` past it) cannot be copied so; the targets file is then rewritten
    with that scenario's spec as an absolute path (valid on this machine only) and a header
    comment naming the original file and its SHA-256.

    Parameters
    ----------
    lt
        The targets the fit read.

    Returns
    -------
    tuple
        (bytes of ``DIR/targets.toml``, ``{relative path: bytes}`` of the scenario and
        regimen files to write next to it, ``{scenario: absolute spec path}`` of the scenarios
        left outside ``DIR``).
    """
    import tomllib

    from reconsolidate.calibration.targets import regimen_refs

    files: dict[str, bytes] = {}
    outside: dict[str, str] = {}
    for name, sc in lt.scenarios.items():
        spec_file = lt.base / sc.spec  # not resolved: a symlinked folder is copied as files
        rel = _inside(sc.spec)
        regimens = regimen_refs(spec_file)
        reg_rel = [None if rel is None else _inside(posixpath.join(posixpath.dirname(rel), r))
                   for r in regimens]
        if rel is None or rel in _OUTPUT_FILES or any(r is None or r in _OUTPUT_FILES
                                                       for r in reg_rel):
            outside[name] = str(lt.scenario_path(name))
            continue
        files[rel] = spec_file.read_bytes()
        for r, rr in zip(regimens, reg_rel, strict=True):
            files[str(rr)] = (spec_file.parent / r).read_bytes()
    raw = lt.path.read_bytes()
    if not outside:
        return raw, files, outside
    data = tomllib.loads(raw.decode("utf-8"))
    for name, path in outside.items():
        data["scenarios"][name]["spec"] = path
    head = (f"# Written by `reconsolidate calibrate`: the targets file {lt.path}\n"
            f"# (sha256 {lt.sha256}, the targets_sha256 of fitted.toml) with the spec of\n"
            f"# scenario(s) {', '.join(sorted(outside))} as absolute path(s): they lie outside\n"
            "# its folder and were not copied here. Comments of the original are not kept.\n\n")
    return (head + _render_toml(data)).encode("utf-8"), files, outside


def write_calibration(
    result: CalibrationResult,
    out_dir: str | Path,
    *,
    command: str | None = None,
) -> Path:
    """Write the run directory atomically.

    Files: ``fitted.toml`` (the fitted parameters with provenance; copy it to
    ``src/reconsolidate/calibration/fitted.toml`` to make it the package default),
    ``history.json`` (every trial), ``history.csv`` (one row per trial), ``targets.toml``
    (copy of the targets used) with the scenario specs and regimen files it names at their
    relative paths (:func:`bundle_targets`: ``reconsolidate validate DIR/targets.toml``
    works, also after ``DIR`` is moved), ``summary.json`` (best predictions vs targets, and
    under ``targets_copy`` the SHA-256 of every copied file).

    Raises
    ------
    InputError
        When the targets file changed since :func:`calibrate` read it (the copy would not be
        what was fitted).
    """
    lt = load_targets(result.settings["targets_path"])
    for key, now, what in (("targets_sha256", lt.sha256, "changed"),
                           ("lab_sha256", lt.lab_sha256, "the [lab] paradigm files changed"),
                           ("scenarios_sha256", lt.scenarios_sha256,
                            "a scenario spec or regimen file changed")):
        fitted = result.settings[key]
        if now != fitted:
            raise InputError(f"{lt.path}: {what} since the calibration read it ({key} "
                             f"{str(now)[:12]}..., fit {str(fitted)[:12]}...); allowed: the "
                             "files the fit used, unchanged")
    targets = lt.select(result.settings["target_ids"])
    targets_bytes, scenario_files, outside = bundle_targets(lt)
    cmd = command or "reconsolidate " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    prov = {
        "command": cmd,
        "seed": result.settings["seed"],
        "budget": result.settings["budget"],
        "batch_size": result.settings["batch_size"],
        "sampler": result.settings["sampler"],
        "date_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "version": __version__,
        "git_commit": result.settings.get("git_commit", "unknown"),
        "targets_sha256": result.settings["targets_sha256"],
        "scenarios_sha256": result.settings["scenarios_sha256"],
        "loss": result.best_loss,
        "n_targets": len(targets),
        "n_targets_passed": sum(
            t.passed(p) for t, p in zip(targets, result.best_predicted, strict=True)
        ),
        "status": "calibrated",
    }
    if result.settings.get("unconstrained_parameters"):
        prov["unconstrained_parameters"] = list(result.settings["unconstrained_parameters"])
    best = _best_trial(result.history)
    if best.get("lab_checks"):
        prov["target_loss"] = best["target_loss"]
        prov["lab_penalty"] = best["lab_penalty"]
        prov["lab_checks"] = best["lab_checks"]
        prov["lab_checks_passed"] = best["lab_passed"]
        prov["lab_sha256"] = result.settings["lab_sha256"]
    start_bytes: bytes | None = None
    if result.settings.get("start"):
        st = result.settings["start"]
        prov["start_sha256"] = st["sha256"]
        prov["start_command"] = st["command"]
        prov["start_git_commit"] = st["git_commit"]
        prov["radius"] = st["radius"]
        # the start itself, next to the fit: the file it names is often the one the fit then
        # replaces (--start src/reconsolidate/calibration/fitted.toml)
        try:
            data = Path(st["path"]).read_bytes()
        except OSError:
            data = None
        if data is not None and hashlib.sha256(data).hexdigest() == st["sha256"]:
            start_bytes = data
            prov["start_copy"] = "start.toml"
        else:
            prov["start_copy"] = "none: the start file changed or vanished during the fit"
    if result.settings.get("patients_per_arm"):
        prov["patients_per_arm"] = result.settings["patients_per_arm"]
    summary = {
        "best_loss": result.best_loss,
        "best_params": result.best_params,
        "targets": [
            {"id": t.id, "published": t.published, "interval": list(t.interval),
             "predicted": (p if math.isfinite(p) else None), "passed": t.passed(p)}
            for t, p in zip(targets, result.best_predicted, strict=True)
        ],
        "settings": result.settings,
        "targets_copy": {
            "sha256": hashlib.sha256(targets_bytes).hexdigest(),
            "identical_to_fitted": not outside,
            "scenarios_outside": outside,
            "files_sha256": {k: hashlib.sha256(v).hexdigest()
                             for k, v in sorted(scenario_files.items())},
        },
        "timings": result.timings,
    }
    names = [p["name"] for p in result.settings["parameters"]]
    rows = ["number,batch,loss,target_loss,lab_penalty,lab_passed," + ",".join(names)]
    for h in result.history:
        rows.append(",".join([str(h["number"]), str(h["batch"]), repr(h["loss"]),
                              repr(h.get("target_loss", h["loss"])),
                              repr(h.get("lab_penalty", 0.0)), str(h.get("lab_passed", 0))]
                             + [repr(h["params"][n]) for n in names]))
    with atomic_dir(out_dir) as tmp:
        atomic_write_text(tmp / "fitted.toml", render_fitted_toml(prov, result.best_params))
        atomic_write_json(tmp / "history.json", to_jsonable(result.history))
        atomic_write_text(tmp / "history.csv", "\n".join(rows) + "\n")
        (tmp / "targets.toml").write_bytes(targets_bytes)  # bytes: the hash must match
        if start_bytes is not None:
            (tmp / "start.toml").write_bytes(start_bytes)  # its sha256 is start_sha256
        for rel, data in scenario_files.items():
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        atomic_write_text(tmp / "summary.json", json.dumps(to_jsonable(summary), indent=2) + "\n")
    return Path(out_dir)
