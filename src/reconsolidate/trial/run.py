"""Running a trial: deterministic chunking, an optional process pool, streamed atomic output.

The work is split into tasks (arm, replicate, patient range) of ``chunk_size`` patients, in a
fixed order. Workers simulate tasks in any order; the parent consumes results in task order and
streams them into Parquet writers that emit row groups of a fixed number of rows, so the files
are byte-identical for any worker count and any chunk size. At most ``2 x workers`` tasks are in
flight, so memory stays bounded for any number of patients.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import queue
import re
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from reconsolidate import __version__
from reconsolidate._io import atomic_dir, atomic_write_json, atomic_write_text
from reconsolidate.endpoints import ParticipantEndpoints, summarize_arms
from reconsolidate.population.cohorts import UK_UNITS_PER_US_DRINK
from reconsolidate.trial.engine import (
    ChunkResult,
    TrialPlan,
    add_domain_counts,
    domain_warnings,
    simulate_chunk,
)
from reconsolidate.trial.engine import warm_up as warm_up_kernels
from reconsolidate.trial.observation import NEVER

__all__ = ["ROW_GROUP_ROWS", "TrialResult", "abstinent_last_key",
           "abstinent_last_span_days", "dropout_day_column", "resolved_spec_toml", "run_trial",
           "summarize"]

ROW_GROUP_ROWS = 1 << 20  # fixed Parquet row-group size: output independent of chunking

# what a run directory of an earlier version (before outputs were marked) may hold: such a
# directory is replaced, anything else that is not a marked trial run is refused
_RUN_FILES = frozenset({"spec.toml", "metadata.json", "patients.parquet", "drinking.parquet",
                        "outcomes.parquet", "memory.parquet", "report.html"})


@dataclass
class TrialResult:
    """Summary and timings of a run."""

    summary: dict[str, dict[str, Any]]
    timings: dict[str, float]
    out_dir: Path | None
    #: Model-domain warnings of the run (PK covariates outside a model's validated range,
    #: psychedelic intensities extrapolated or capped), each with its count of ketamine
    #: patient-sessions; also in ``metadata.json`` under ``"warnings"``.
    warnings: list[str] = field(default_factory=list)
    #: Each chunk's per-patient outcomes (the arrays of ``outcomes.parquet``) as ``(arm,
    #: replicate, first patient index, outcomes)``, in the order of the tasks (replicate, arm,
    #: patients): per-replicate analyses (:mod:`reconsolidate.trial.power`) need no run
    #: directory. The run keeps them for its summary anyway.
    outcome_chunks: list[tuple[str, int, int, dict[str, np.ndarray]]] = field(
        default_factory=list)


class _FixedRowGroupWriter:
    """Parquet writer whose row groups always hold ROW_GROUP_ROWS rows (the last may be short)."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        # dictionary encoding only for the text columns: on the simulated floats (drinks,
        # memory) it never pays and its attempt cost ~30% of their write time
        text = [f.name for f in schema if pa.types.is_string(f.type)]
        self._writer = pq.ParquetWriter(path, schema, compression="zstd", use_dictionary=text)
        self._pending: list[pa.Table] = []
        self._rows = 0

    def write(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._rows += table.num_rows
        while self._rows >= ROW_GROUP_ROWS:
            self._flush(ROW_GROUP_ROWS)

    def _flush(self, rows: int) -> None:
        t = pa.concat_tables(self._pending)
        self._writer.write_table(t.slice(0, rows), row_group_size=rows)
        rest = t.slice(rows)
        self._pending = [rest] if rest.num_rows else []
        self._rows = rest.num_rows

    def close(self) -> None:
        if self._rows:
            self._flush(self._rows)
        self._writer.close()


class _BackgroundWriter:
    """Turns chunk results into tables and writes them, in order, in a thread of its own, so
    that writing overlaps the simulation of the next chunks (the compiled kernels and Parquet's
    encoder both release the GIL). At most two chunks wait in its queue (bounded memory); an
    error in the thread is raised in the caller at the next ``put`` or at ``close``."""

    def __init__(self, out: Path, tables: Callable[[ChunkResult], dict[str, pa.Table]]) -> None:
        self._out = out
        self._tables = tables
        self._writers: dict[str, _FixedRowGroupWriter] = {}
        self._queue: queue.Queue[ChunkResult | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self.busy_seconds = 0.0
        self._thread = threading.Thread(target=self._run, name="parquet-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (r := self._queue.get()) is not None:
            if self._error is not None:
                continue  # keep draining so that put() never blocks forever
            t0 = time.perf_counter()
            try:
                for name, t in self._tables(r).items():
                    if name not in self._writers:
                        self._writers[name] = _FixedRowGroupWriter(
                            self._out / f"{name}.parquet", t.schema)
                    self._writers[name].write(t)
            except BaseException as exc:  # re-raised in the caller
                self._error = exc
            self.busy_seconds += time.perf_counter() - t0

    def put(self, r: ChunkResult) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(r)

    def stop(self) -> None:
        """End the thread without closing the files (the run directory is discarded)."""
        self._error = self._error or RuntimeError("stopped")
        self._queue.put(None)
        self._thread.join()

    def close(self) -> None:
        """Write what is queued, close the files, and raise the thread's error if any."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error
        t0 = time.perf_counter()
        for w in self._writers.values():
            w.close()
        self.busy_seconds += time.perf_counter() - t0


def _tasks(plan: TrialPlan, chunk_size: int) -> list[tuple[int, int, int, int]]:
    out = []
    for rep in range(plan.spec.replicates):
        for arm in plan.arms:
            for s in range(0, arm.n_patients, chunk_size):
                out.append((arm.index, rep, s, min(s + chunk_size, arm.n_patients)))
    return out


def _run_task(plan: TrialPlan, task: tuple[int, int, int, int], prefix_dir: str) -> ChunkResult:
    return simulate_chunk(plan, *task, prefix_dir=prefix_dir)


def _worker_init() -> None:
    # One numba thread per worker process: the workers already use the cores.
    import signal

    import numba

    numba.set_num_threads(1)
    # Ctrl-C reaches the whole process group: the parent alone unwinds (it cancels the queued
    # tasks and removes the partial run directory); each worker would print a traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _results(plan: TrialPlan, tasks: list, workers: int) -> Iterator[ChunkResult]:
    # the arms' common histories (engine.prefix_groups) pass between tasks through files in a
    # private directory, so that workers share them too; removed when the run ends
    with tempfile.TemporaryDirectory(prefix="reconsolidate-prefixes-") as prefix_dir:
        if workers <= 1:
            for t in tasks:
                yield _run_task(plan, t, prefix_dir)
            return
        # "spawn", not fork: forking a process whose numba/OpenMP threads already ran is unsafe.
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                 initializer=_worker_init) as pool:
            pending: deque[Future] = deque()
            it = iter(tasks)
            try:
                for t in it:
                    pending.append(pool.submit(_run_task, plan, t, prefix_dir))
                    if len(pending) >= 2 * workers:
                        break
                while pending:
                    try:
                        res = pending.popleft().result()
                    except BrokenProcessPool as exc:
                        raise RuntimeError(
                            "a worker process died. With --workers > 1 (spawned processes), a "
                            "script that calls run_trial must guard its entry point with "
                            "`if __name__ == \"__main__\":`; otherwise see the worker's error "
                            "above"
                        ) from exc
                    nxt = next(it, None)
                    if nxt is not None:
                        pending.append(pool.submit(_run_task, plan, nxt, prefix_dir))
                    yield res
            except BaseException:
                # the run failed or was interrupted (SIGTERM, Ctrl-C): the chunks in flight are
                # lost anyway, so stop the workers now and drop the queued tasks. Waiting for
                # them could take a chunk's time, or forever: after a SIGTERM to the process
                # group killed one worker, the pool joins a surviving one blocked on sending its
                # result (CPython 3.11). (``_processes``: the pool's own, no public accessor.)
                procs = list((getattr(pool, "_processes", None) or {}).values())
                for proc in procs:
                    with contextlib.suppress(Exception):
                        proc.terminate()
                for proc in procs:
                    with contextlib.suppress(Exception):
                        proc.join(timeout=10.0)
                # A worker ended while sending its result leaves half a message in the result
                # pipe, and the pool's manager thread waits for the rest forever (this process
                # holds the pipe's write end too), so shutdown(wait=True) hung (3 of 12 SIGTERMs
                # at random moments of a 2-worker run). With the workers gone, closing that end
                # turns the wait into an end-of-file, which the manager takes for a broken
                # pool. (``_result_queue``: the pool's own, no public accessor.)
                result_queue = getattr(pool, "_result_queue", None)
                with contextlib.suppress(Exception):
                    result_queue._writer.close()  # type: ignore[union-attr]
                pool.shutdown(wait=True, cancel_futures=True)
                raise


def _patient_ids(r: ChunkResult) -> list[str]:
    rep = f"r{r.replicate}-" if r.replicate else ""
    return [f"{r.arm}-{rep}{i:06d}" for i in r.patients.index]


def _patients_table(r: ChunkResult) -> pa.Table:
    cols: dict[str, Any] = {
        "patient_id": pa.array(_patient_ids(r), pa.string()),
        "arm": pa.array([r.arm] * r.patients.n, pa.string()),
        "replicate": pa.array(np.full(r.patients.n, r.replicate, np.int32)),
        "sex": pa.array(np.where(r.patients.is_female, "F", "M").tolist(), pa.string()),
    }
    for name, arr in r.patients.columns().items():
        if name == "index":
            cols["patient_index"] = pa.array(arr.astype(np.int64))
        else:
            cols[name] = pa.array(arr)
    cols["psychedelic_intensity_peak"] = pa.array(r.psychedelic_intensity_peak)
    cols["restabilisation_occupancy_integral_min"] = pa.array(r.restabilisation_occupancy_min)
    cols["restabilisation_weighted_occupancy_integral_min"] = pa.array(
        r.restabilisation_weighted_occupancy_min)
    cols["dropout_day"] = pa.array(dropout_day_column(r.observation.dropout_day))
    return pa.table(cols)


def dropout_day_column(dropout_day: np.ndarray) -> np.ndarray:
    """Study day of dropout as written to the run's tables (int32; -1 = did not drop out).

    The observation model codes "never" as the int32 maximum (it compares as later than any
    day); the tables use -1, a value nobody can mistake for a day."""
    d = np.asarray(dropout_day)
    return np.where(d < NEVER, d, -1).astype(np.int32)


def _drinking_table(r: ChunkResult, first_day: int, etg: bool) -> pa.Table:
    n, d = r.drinks_true.shape
    ids = pa.array(_patient_ids(r), pa.string())
    cols: dict[str, Any] = {
        "patient_id": ids.take(pa.array(np.repeat(np.arange(n), d))),
        "study_day": pa.array(np.tile(np.arange(first_day, first_day + d, dtype=np.int32), n)),
        "drinks_true": pa.array(r.drinks_true.ravel()),
        "drinks_reported": pa.array(r.observation.drinks_reported.ravel()),
    }
    if etg:
        cols["etg_positive"] = pa.array(r.observation.etg_positive.ravel())
    return pa.table(cols)


def _memory_table(r: ChunkResult) -> pa.Table:
    """Long memory table of a chunk: one row per (patient, snapshot day), patient-major."""
    n, k = r.cue_reactivity.shape
    ids = pa.array(_patient_ids(r), pa.string())
    return pa.table({
        "arm": pa.array([r.arm] * (n * k), pa.string()),
        "replicate": pa.array(np.full(n * k, r.replicate, np.int32)),
        "patient_id": ids.take(pa.array(np.repeat(np.arange(n), k))),
        "study_day": pa.array(np.tile(np.asarray(r.memory_days, np.int32), n)),
        "cue_reactivity": pa.array(r.cue_reactivity.ravel()),
        "acquisition_weight": pa.array(r.acquisition_weight.ravel()),
    })


def _outcomes_table(r: ChunkResult) -> pa.Table:
    cols: dict[str, Any] = {
        "patient_id": pa.array(_patient_ids(r), pa.string()),
        "arm": pa.array([r.arm] * r.patients.n, pa.string()),
        # as in patients.parquet: per-replicate analyses need no join
        "replicate": pa.array(np.full(r.patients.n, r.replicate, np.int32)),
    }
    for name, arr in r.outcomes.items():
        if name == "dropout_day":
            arr = dropout_day_column(arr)
        cols[name] = pa.array(np.asarray(arr))
    return pa.table(cols)


def abstinent_last_span_days(abstinent_last_days: int, n_days_window: int = 0) -> int:
    """Days that "abstinent in the last K days" covers: K, or the window if that is shorter.

    Parameters
    ----------
    abstinent_last_days
        K of the spec's ``[analysis] abstinent_last_days``, days.
    n_days_window
        Days in the analysis window (the follow-up); 0 = unknown (K is returned).
    """
    # compute_endpoints scores the last min(K, window) days: name what was scored
    return min(abstinent_last_days, n_days_window) if n_days_window > 0 else abstinent_last_days


def abstinent_last_key(abstinent_last_days: int, n_days_window: int = 0) -> str:
    """Summary key of "% abstinent in the last K days", e.g. ``abstinent_last_14_days_pct``.

    K (days) is :func:`abstinent_last_span_days` of the same arguments, so the key follows the
    spec's ``[analysis] abstinent_last_days`` instead of a fixed 14.
    """
    return f"abstinent_last_{abstinent_last_span_days(abstinent_last_days, n_days_window)}_days_pct"


def summarize(
    arms: list[str],
    outcomes: dict[str, list[dict[str, np.ndarray]]],
    n_days_window: int = 0,
    abstinent_last_days: int = 14,
    missing_days: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Per-arm summary (the CLI table and ``--json``) from per-patient outcome arrays.

    Parameters
    ----------
    arms
        Arm names, in output order.
    outcomes
        Per arm, the chunks' per-patient outcome arrays (``engine._outcomes``).
    n_days_window
        Days in the analysis window (the follow-up), days.
    abstinent_last_days
        K the outcomes were computed with (``[analysis] abstinent_last_days``), days; names
        the keys ``abstinent_last_{K}_days_pct`` and ``confirmed_abstinent_last_{K}_days_pct``
        (:func:`abstinent_last_key`).
    missing_days
        The outcomes' missing-day handling (``[analysis] missing_days``), reported in each
        row as ``missing_days`` with ``n_scored`` (patients included under it); None leaves
        the key out.
    """
    out: dict[str, dict[str, Any]] = {}
    last_key = abstinent_last_key(abstinent_last_days, n_days_window)
    ep_fields = set(ParticipantEndpoints.arrays_fields())
    for arm in arms:
        parts = outcomes[arm]
        cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        n = len(cat["included"])
        ep = ParticipantEndpoints(
            n_days_window=n_days_window, **{k: cat[k] for k in ep_fields}
        )
        s = summarize_arms(ep, np.full(n, arm))[arm]
        base = _nanmean(cat["baseline_drinks_per_week"])
        now = _nanmean(cat["drinks_per_week"])
        # the change from baseline on the same patients (those with both figures): a dropout
        # has a baseline but no follow-up figure
        both = np.isfinite(cat["baseline_drinks_per_week"]) & np.isfinite(cat["drinks_per_week"])
        pbase = _nanmean(cat["baseline_drinks_per_week"][both])
        pnow = _nanmean(cat["drinks_per_week"][both])
        tbase = _nanmean(cat["true_baseline_drinks_per_week"])
        tnow = _nanmean(cat["true_drinks_per_week"])

        def _f(v: float) -> float | None:
            return float(v) if np.isfinite(v) else None

        row: dict[str, Any] = {
            "n": n,
            **({"missing_days": missing_days} if missing_days is not None else {}),
            # patients with a counted follow-up day: the denominator of the means below
            "n_scored": s["n_scored"],
            "percent_days_abstinent": s["percent_days_abstinent"],
            "percent_heavy_drinking_days": s["percent_heavy_drinking_days"],
            "drinks_per_week_baseline": _f(base),
            "drinks_per_week": _f(now),
            "uk_units_per_week_baseline": _f(base * UK_UNITS_PER_US_DRINK),
            "uk_units_per_week": _f(now * UK_UNITS_PER_US_DRINK),
            "drinks_per_week_change_pct": (
                _f(100.0 * (pnow - pbase) / pbase) if pbase > 0 else None
            ),
            last_key: s["percent_abstinent_last_days"],
            # its denominator: patients with enough counted days in the last K (the others are
            # not assessable under missing_days = "exclude"; endpoints.compute_endpoints)
            "n_" + last_key.removesuffix("_pct"): s["n_abstinent_last_days"],
            "median_days_to_first_heavy_day": s["median_days_to_first_heavy_day"],
            "urge_change": _f(_nanmean(cat["urge_change"])) if "urge_change" in cat else None,
            "liking_change": (
                _f(_nanmean(cat["liking_change"])) if "liking_change" in cat else None
            ),
            "percent_no_heavy_drinking_days": s["percent_no_heavy_drinking_days"],
            "dropout_pct": _f(100.0 * np.mean(cat["dropped_out"])),
            "true_percent_days_abstinent": _f(_nanmean(cat["true_percent_days_abstinent"])),
            "true_percent_heavy_drinking_days": _f(
                _nanmean(cat["true_percent_heavy_drinking_days"])
            ),
            "true_drinks_per_week_change_pct": (
                _f(100.0 * (tnow - tbase) / tbase) if tbase > 0 else None
            ),
            # the true drinking on the reported days only: reported minus these is the recall
            # error, these minus true_* the effect of missing data
            "true_observed_percent_days_abstinent": _f(
                _nanmean(cat["true_observed_percent_days_abstinent"])),
            "true_observed_percent_heavy_drinking_days": _f(
                _nanmean(cat["true_observed_percent_heavy_drinking_days"])),
        }
        if not np.any(np.isfinite(cat["percent_days_abstinent"])):
            # say why every reported endpoint is null (e.g. missed_visit_prob = 1, or everyone
            # dropped out before the first follow-up visit)
            row["note"] = ("no patient has a reported follow-up day (every follow-up visit "
                           "missed or dropped out before it): reported endpoints not estimable")
        if "confirmed_abstinent_last_days" in cat:
            row["confirmed_" + last_key] = _f(
                100.0 * _nanmean(cat["confirmed_abstinent_last_days"])
            )
        out[arm] = row
    return out


def _nanmean(x: np.ndarray) -> float:
    """Mean of the finite values; NaN (without numpy's empty-slice warning) if there are none."""
    x = np.asarray(x, dtype=np.float64)
    ok = np.isfinite(x)
    return float(x[ok].mean()) if ok.any() else math.nan


def _calibration_provenance() -> dict[str, Any]:
    from reconsolidate.calibration.defaults import calibration_provenance

    return calibration_provenance()


def _write_report(run_dir: Path) -> None:
    import warnings

    try:
        from reconsolidate.report.build import write_report

        write_report(run_dir)
    except Exception as exc:  # the report must never cost the user the simulated trial
        warnings.warn(f"report.html not written: {exc}", RuntimeWarning, stacklevel=2)


def _git_commit() -> str | None:
    try:
        r = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return r.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _leading_comments(text: str) -> list[str]:
    """The comment lines that open a TOML text (up to its first key or table)."""
    out: list[str] = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            break
        out.append(line.rstrip())
    while out and not out[-1]:
        out.pop()
    return out


# an array of scalars as tomli_w writes it: one item a line (no nested arrays or tables)
_MULTILINE_ARRAY = re.compile(r"^(?P<head>[^\n]* = \[)\n(?P<items>(?: +[^\n\[\]{}]+,\n)+) *\]$",
                              re.MULTILINE)


def _compact_arrays(text: str, width: int = 100) -> str:
    """Short arrays of scalars on one line (``lab_days = [-2, 7]``), as people write them."""

    def _join(m: re.Match[str]) -> str:
        items = [x.strip().removesuffix(",") for x in m["items"].splitlines()]
        one = f"{m['head']}{', '.join(items)}]"
        return one if len(one) <= width else m[0]

    return _MULTILINE_ARRAY.sub(_join, text)


def _comment(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")  # a path must not end the comment line


def resolved_spec_toml(
    spec_path: str | Path,
    *,
    seed: int | None = None,
    patients_per_arm: int | None = None,
    uncalibrated: bool = False,
) -> str:
    """The text of a run directory's ``spec.toml``: the spec as run, self-contained.

    The original file's keys with the command-line overrides applied and every regimen file
    inlined as a table (the spec names them relative to its own directory, which the run
    directory is not), so that ``reconsolidate trial RUN_DIR/spec.toml`` from any working
    directory reproduces the run's tables byte for byte. A header comment names the original
    file, the overrides and the inlined files, followed by the original's opening comments (TOML
    writers drop the other comments).

    Parameters
    ----------
    spec_path
        The trial spec TOML file that was run.
    seed
        ``--seed`` override (None: the spec's).
    patients_per_arm
        ``--patients-per-arm`` override, patients (None: the spec's).
    uncalibrated
        The run used ``--uncalibrated``; the header says to repeat it (the spec has no key
        for it).

    Raises
    ------
    InputError
        The spec or a regimen file it names cannot be read as TOML.
    """
    import tomllib

    import tomli_w

    from reconsolidate._config import read_toml

    path = Path(spec_path)
    raw = read_toml(path)
    original = path.read_text(encoding="utf-8")
    overrides = []
    if seed is not None:
        raw["seed"] = int(seed)
        overrides.append(f"seed = {int(seed)} (--seed)")
    if patients_per_arm is not None:
        raw["patients_per_arm"] = int(patients_per_arm)
        overrides.append(f"patients_per_arm = {int(patients_per_arm)} (--patients-per-arm)")
    inlined = []
    protocols = raw.get("protocols")
    for pname, prot in (protocols.items() if isinstance(protocols, dict) else ()):
        sessions = prot.get("sessions") if isinstance(prot, dict) else None
        for k, ses in enumerate(sessions if isinstance(sessions, list) else ()):
            reg = ses.get("regimen") if isinstance(ses, dict) else None
            if isinstance(reg, str):
                src = (path.parent / reg).resolve()
                ses["regimen"] = read_toml(src)
                inlined.append(f"protocols.{pname}.sessions[{k}].regimen = {reg!r} ({src})")
    body = tomli_w.dumps(raw)
    compact = _compact_arrays(body)
    if tomllib.loads(compact) == tomllib.loads(body):  # never trade correctness for looks
        body = compact
    header = [
        f"# The spec of the trial run in this directory, as run (reconsolidate {__version__}):",
        "# `reconsolidate trial spec.toml` reproduces the run's tables from any directory.",
        f"# Original spec: {_comment(str(path.resolve()))}",
        "# Command-line overrides applied: " + ("; ".join(overrides) or "none"),
    ]
    if inlined:
        header.append("# Regimen files inlined (the original names them relative to itself):")
        header += [f"#   {_comment(x)}" for x in inlined]
    if uncalibrated:
        header.append("# Run with --uncalibrated: give it again to reproduce the run.")
    opening = _leading_comments(original)
    if opening:
        header += ["#", "# Opening comments of the original spec:", *opening]
    return "\n".join(header) + "\n\n" + body


def run_trial(
    plan: TrialPlan,
    *,
    out_dir: str | Path | None,
    spec_text: str | None = None,
    workers: int = 1,
    chunk_size: int = 5000,
    progress: Callable[[int, int], None] | None = None,
    write_drinking: bool = True,
    report: bool = False,
    warm_up: bool = True,
) -> TrialResult:
    """Simulate every arm and write the run directory (atomically) if ``out_dir`` is given.

    Parameters
    ----------
    plan
        The resolved trial.
    out_dir
        Run directory (layout: docs/trial-spec.md, "Output directory") or None to only
        summarise.
    spec_text
        The text written as ``spec.toml``: the spec as run, which should reproduce the run by
        itself (:func:`resolved_spec_toml`; the CLI writes that). A spec file's text verbatim
        only does when it names no regimen file and the run overrode nothing.
    workers
        Processes (1 = in this process).
    chunk_size
        Patients per task (does not change any result).
    progress
        Called with (0, patients total) once the compiled kernels are ready (after the warm-up)
        and with (patients done, patients total) after each chunk.
    write_drinking
        Write ``drinking.parquet`` (the long daily table; by far the largest file).
        ``memory.parquet`` (the memory snapshots every ``spec.memory_every_days``) is always
        written.
    report
        Also write ``report.html`` (``reconsolidate.report``) into the run directory before it
        appears; a report failure is warned about and does not lose the simulated trial.
    warm_up
        First run every compiled kernel on a few patients per arm
        (:func:`reconsolidate.trial.engine.warm_up`): numba compiles them on the first run after
        an install (about 30 s) and loads them from its cache otherwise. Its time is reported
        apart (``timings["warm_up_seconds"]``), so that ``simulate_seconds`` and the
        patient-days per second measure the simulation alone, also on a first run; with
        ``workers`` > 1 the workers then load the kernels instead of each compiling them.
    """
    if chunk_size < 1 or workers < 1:
        raise ValueError("chunk_size and workers must be >= 1")
    spec = plan.spec
    tasks = _tasks(plan, chunk_size)
    total = sum(t[3] - t[2] for t in tasks)
    arm_names = [a.name for a in plan.arms]
    outcomes: dict[str, list[dict[str, np.ndarray]]] = {a: [] for a in arm_names}
    chunks: list[tuple[str, int, int, dict[str, np.ndarray]]] = []
    timings = {"simulate_seconds": 0.0, "write_seconds": 0.0, "warm_up_seconds": 0.0}
    if warm_up:
        t_warm = time.perf_counter()
        warm_up_kernels(plan, chunk_size)
        timings["warm_up_seconds"] = time.perf_counter() - t_warm
    if progress is not None:
        progress(0, total)
    patient_days = total * (spec.burn_in_days + spec.n_observed_days)
    # fewer may be simulated: the arms' common history before randomisation once per group
    # (engine.prefix_groups), counted as the chunks report it (with several workers an arm may
    # not find that history in time and simulate it itself)
    simulated_days = 0
    domain_counts: dict[str, tuple[int, int]] = {}

    def _tables(r: ChunkResult) -> dict[str, pa.Table]:
        tables = {
            "patients": _patients_table(r),
            "outcomes": _outcomes_table(r),
            "memory": _memory_table(r),
        }
        if write_drinking:
            tables["drinking"] = _drinking_table(r, spec.first_day, spec.observation.etg)
        return tables

    def _consume(tmp: Path | None) -> None:
        nonlocal simulated_days
        writer = _BackgroundWriter(tmp, _tables) if tmp is not None else None
        done = 0
        t0 = time.perf_counter()
        waited = 0.0  # main-thread time spent handing chunks to the writer or waiting for it
        try:
            for r in _results(plan, tasks, workers):
                outcomes[r.arm].append(r.outcomes)
                chunks.append((r.arm, r.replicate, r.start, r.outcomes))
                simulated_days += r.simulated_patient_days
                add_domain_counts(domain_counts, r.domain_counts)
                if writer is not None:
                    tw = time.perf_counter()
                    writer.put(r)
                    waited += time.perf_counter() - tw
                done += r.patients.n
                if progress is not None:
                    progress(done, total)
        except BaseException:
            if writer is not None:
                writer.stop()  # the run failed: end the thread, keep the first error
            raise
        if writer is not None:
            tw = time.perf_counter()
            writer.close()
            waited += time.perf_counter() - tw
        timings["write_seconds"] = writer.busy_seconds if writer is not None else 0.0
        timings["simulate_seconds"] = time.perf_counter() - t0 - waited

    if out_dir is None:
        _consume(None)
        summary = summarize(arm_names, outcomes, spec.follow_up_days,
                            spec.analysis.abstinent_last_days, spec.analysis.missing_days)
    else:
        with atomic_dir(out_dir, kind="trial run", legacy_files=_RUN_FILES) as tmp:
            _consume(tmp)
            summary = summarize(arm_names, outcomes, spec.follow_up_days,
                                spec.analysis.abstinent_last_days, spec.analysis.missing_days)
            atomic_write_text(tmp / "spec.toml", spec_text if spec_text is not None else (
                "# run_trial() was called without the spec's text (spec_text=None): this run\n"
                "# cannot be re-run from here; metadata.json holds the resolved spec\n"
                "# (resolved_parameters.spec) and each arm's ketamine regimens.\n"))
            timings_out = {
                **timings,
                "patient_days": float(patient_days),
                "simulated_patient_days": float(simulated_days),
                "patient_days_per_second": patient_days / max(timings["simulate_seconds"], 1e-9),
            }
            atomic_write_json(
                tmp / "metadata.json",
                {
                    "version": __version__,
                    "git_commit": _git_commit(),
                    "seed": spec.seed,
                    "spec_name": spec.name,
                    "workers": workers,
                    "chunk_size": chunk_size,
                    "arms": {
                        a.name: {
                            "n_patients": a.n_patients,
                            "protocol": a.protocol_name,
                            "therapy": a.therapy.model_dump(),
                            "cohort": a.cohort.model_dump(),
                            # the resolved ketamine regimen of each session (by session index):
                            # the spec names files relative to itself, which the run directory
                            # does not hold (the report draws the PK figure from these)
                            "regimens": {str(j): r.model_dump(mode="json")
                                         for j, r in sorted(a.regimens.items())},
                        }
                        for a in plan.arms
                    },
                    "resolved_parameters": {
                        "spec": spec.model_dump(mode="json"),
                        "memory": plan.memory_params.as_dict(),
                    },
                    "units": {
                        "drinks": "US standard drinks (14 g ethanol) per day",
                        "study_day": "days; 0 = first treatment session; < 0 baseline",
                        "lab ratings": "0-100 visual analogue",
                        "cue_reactivity": "mean conditioned response over the cue classes, 0-1",
                        "acquisition_weight": "mean cue-alcohol acquisition weight over the "
                        "cue classes, 0-1",
                        # patients.parquet
                        "age_years": "years",
                        "weight_kg": "kg",
                        "drinks_per_drinking_day": "US standard drinks per drinking day (true "
                        "usual drinking)",
                        "drinking_days_per_week": "days per week (true usual drinking)",
                        "patients.baseline_drinks_per_week": "US standard drinks per week, TRUE "
                        "usual drinking (drinks per drinking day x drinking days per week)",
                        "patients.baseline_uk_units_per_week": "UK units (8 g ethanol) per "
                        "week, true usual drinking",
                        "acquisition_strength_*": "cue-alcohol acquisition strength, 0-1",
                        "psychedelic_intensity_peak": "dimensionless (Bowdle 1998 scale, "
                        "capped at an ASSUMED 2)",
                        "restabilisation_*occupancy_integral_min": "NMDA receptor occupancy "
                        "(0-1) x min over the restabilisation windows, summed over sessions",
                        "dropout_day": "study day; -1 = did not drop out",
                        # outcomes.parquet
                        "outcomes.baseline_drinks_per_week": "US standard drinks per week over "
                        "the reported (TLFB) baseline days",
                        "percent_*": "% of the counted days of the follow-up (0-100)",
                        "drinks_per_week, change_drinks_per_week": "US standard drinks per week",
                        "total_drinks": "US standard drinks",
                        "grams_per_day": "g ethanol per day",
                        "who_risk_level": "WHO drinking risk level, 0 low .. 3 very high",
                        "days_to_first_*": "days from day 0 (day 0 = 1)",
                        "urge_*, liking_*": "0-100 visual analogue",
                    },
                    "calibration": (
                        _calibration_provenance()
                        if plan.calibrated
                        else {"status": "not applied (uncalibrated documented defaults)"}
                    ),
                    "summary": summary,
                    "warnings": plan.notes + domain_warnings(domain_counts),
                    "timings": timings_out,
                },
            )
            if report:
                _write_report(tmp)
    timings["patient_days"] = float(patient_days)
    timings["simulated_patient_days"] = float(simulated_days)
    return TrialResult(summary=summary, timings=timings, out_dir=Path(out_dir) if out_dir else None,
                       warnings=plan.notes + domain_warnings(domain_counts),
                       outcome_chunks=chunks)
