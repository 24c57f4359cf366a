"""``reconsolidate trial SPEC.toml``: run a virtual randomized trial."""

from __future__ import annotations

import contextlib
import json
import numbers
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import typer

from reconsolidate.exceptions import InputError

__all__ = ["check_run_options", "register"]

#: Exit code of a run ended by SIGTERM (128 + 15, the shell's convention) or by Ctrl-C (130).
EXIT_SIGTERM = 143
EXIT_SIGINT = 130


class _Terminated(SystemExit):
    """Raised in the main thread when SIGTERM arrives, so that the run unwinds: the partial run
    directory is removed (``_io.atomic_dir``) and worker processes are shut down.

    ``completed`` is True when the signal came as the run finished (its directory is written).
    """

    def __init__(self, code: int, completed: bool = False) -> None:
        super().__init__(code)
        self.completed = completed


#: Seconds after which a SIGTERM that arrived while the process pool was starting a worker is
#: re-sent; that takes milliseconds.
_RESEND_AFTER_S = 0.05


def _in_pool_machinery(frame: FrameType | None) -> bool:
    """Whether the main thread is inside the process pool's own code (starting the pool or a
    worker, submitting a task). An exception raised there breaks it: a worker left without its
    start-up data prints a traceback, a manager thread never started cannot be joined. (The main
    thread waits for results in ``concurrent.futures._base``, where raising is safe.)"""
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if module.startswith("multiprocessing.") or module == "concurrent.futures.process":
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[Callable[[], None]]:
    """While the trial runs, SIGTERM raises :class:`_Terminated` instead of killing the process
    at once (which would leave the hidden partial run directory behind).

    The handler's exception can surface changed or not at all: raised while compiled code calls
    back into Python (numba's unpickling of a constant) it comes out as a ``SystemError``
    chain, and in a finaliser Python prints and drops it. So any error after the signal ends
    the run as a SIGTERM, and the block yields a check, to be called between chunks (the
    progress callback), that raises again once the signal has fired: a dropped exception costs
    at most a chunk's time, and a run that still completes exits as "SIGTERM arrived as the run
    finished" (before, such runs exited 1 with a traceback, or 0 with the new run in place).

    Inside the process pool's code the signal is deferred (re-sent shortly); one still pending
    when the block ends is honoured then, also when the block ends in another error (a SIGTERM
    to the whole process group also kills the workers: the pool breaks). A second SIGTERM during
    the cleanup is ignored, so that the cleanup finishes. Off the main thread (where Python
    cannot install handlers) nothing changes.
    """
    import os
    import threading

    fired = pending = closing = False
    timer: threading.Timer | None = None

    def _handler(signum: int, frame: FrameType | None) -> None:
        nonlocal fired, pending, timer
        if fired:
            return
        if closing or _in_pool_machinery(frame):  # not here: once the pool is consistent again
            pending = True
            if not closing and (timer is None or not timer.is_alive()):
                timer = threading.Timer(_RESEND_AFTER_S, os.kill, (os.getpid(), signum))
                timer.daemon = True
                timer.start()
            return
        fired = True
        raise _Terminated(EXIT_SIGTERM)

    def still_running() -> None:
        if fired and not closing:  # the handler's exception was dropped on its way
            raise _Terminated(EXIT_SIGTERM)

    try:
        previous = signal.signal(signal.SIGTERM, _handler)
    except ValueError:  # not the main thread
        yield lambda: None
        return
    completed = False
    try:
        yield still_running
        completed = True
    except _Terminated:
        raise
    except BaseException as exc:
        closing = True
        if fired or pending:  # the error is the signal's doing (a worker it killed, or the
            fired = True      # handler's exception wrapped by compiled code)
            raise _Terminated(EXIT_SIGTERM) from exc
        raise
    finally:
        closing = True
        if timer is not None:  # no re-send after the handler is gone
            timer.cancel()
            timer.join()
        signal.signal(signal.SIGTERM, previous)
    if (pending or fired) and completed:  # deferred, or its exception dropped on the way
        raise _Terminated(EXIT_SIGTERM, completed=True)


def _columns(abstinent_last_days: int, follow_up_days: int) -> tuple[tuple[str, str, str], ...]:
    """The summary table's (key, label, format) columns; K (days) from the spec's
    ``[analysis] abstinent_last_days``, capped at the follow-up as the endpoint is.

    ``n scored`` (patients with a counted follow-up day) is the denominator of the means; the
    abstinence cell is completed with its count and denominator by :func:`_abstinent_cell`.
    """
    from reconsolidate.trial.run import abstinent_last_key, abstinent_last_span_days

    last = abstinent_last_key(abstinent_last_days, follow_up_days)
    k = abstinent_last_span_days(abstinent_last_days, follow_up_days)
    return (
        ("n", "n", "{:d}"),
        ("n_scored", "n scored", "{:d}"),
        ("dropout_pct", "dropout %", "{:.1f}"),
        ("percent_days_abstinent", "PDA %", "{:.1f}"),
        ("percent_heavy_drinking_days", "PHDD %", "{:.1f}"),
        ("drinks_per_week_change_pct", "drinks/wk change %", "{:+.1f}"),
        (last, f"abstinent last {k} d %", "{:.1f}"),
        ("median_days_to_first_heavy_day", "median days to heavy", "{:.0f}"),
        ("urge_change", "urge change", "{:+.1f}"),
        ("liking_change", "liking change", "{:+.1f}"),
    )


def _fmt(v: object, f: str) -> str:
    if v is None:
        return "-"
    try:
        return f.format(v)
    except (ValueError, TypeError):
        return str(v)


def _abstinent_cell(row: dict[str, object], key: str) -> str:
    """"29.6 (81/274)": the share abstinent in the last K days, %, with the count of abstinent
    patients and the denominator (the assessable patients, ``n_abstinent_last_{K}_days``)."""
    pct = row.get(key)
    den = row.get("n_" + key.removesuffix("_pct"))
    if not isinstance(pct, numbers.Real) or not isinstance(den, numbers.Integral):
        return _fmt(pct, "{:.1f}")
    return f"{pct:.1f} ({round(float(pct) * int(den) / 100.0)}/{int(den)})"


def _missing_days_caption(missing_days: str, k_days: int, k_min_days: int) -> str:
    """One line saying how the table's endpoints treat missing days (``[analysis]
    missing_days``) and who is in their denominators."""
    last = (f"abstinent last {k_days} d: abstinent/assessable, assessable = at least "
            f"{k_min_days} of the last {k_days} days reported")
    if missing_days == "exclude":
        return f"missing days: exclude (available-case: means over n scored; {last})"
    if missing_days == "heavy":
        return ("missing days: heavy (intention-to-treat: a missing day counts as a heavy "
                f"drinking day, every patient is scored; abstinent last {k_days} d: abstinent/n)")
    return (f"missing days: {missing_days} (a missing day counts as abstinent, every patient is "
            f"scored; abstinent last {k_days} d: abstinent/n)")


def check_run_options(json_out: str | None, workers: int, chunk_size: int,
                      seed: int | None) -> None:
    """The checks of the options every simulating command shares (``trial``, ``power``),
    before anything runs: an output file needs an existing directory (a typo must not create
    a tree), workers and chunk size are >= 1, a seed >= 0."""
    if json_out not in (None, "-"):
        from reconsolidate._io import check_output_file

        check_output_file(json_out, "--json")
    if workers < 1:
        raise InputError(f"--workers {workers}: must be >= 1")
    if chunk_size < 1:
        raise InputError(f"--chunk-size {chunk_size}: must be >= 1")
    if seed is not None and seed < 0:
        raise InputError(f"--seed {seed}: must be >= 0")


def _run(
    spec_path: Path | None,
    out: Path | None,
    patients_per_arm: int | None,
    seed: int | None,
    workers: int,
    chunk_size: int,
    json_out: str | None,
    schema: bool,
    no_drinking_table: bool,
    no_report: bool = False,
    uncalibrated: bool = False,
) -> None:
    from reconsolidate._config import load_toml_model
    from reconsolidate.trial.spec import MIN_PATIENTS_PER_ARM, TrialSpec

    if schema:
        typer.echo(json.dumps(TrialSpec.model_json_schema(), indent=2))
        return
    if spec_path is None:
        raise InputError("give a trial spec file (e.g. examples/trials/das2019.toml) or --schema")
    check_run_options(json_out, workers, chunk_size, seed)
    if patients_per_arm is not None and patients_per_arm < MIN_PATIENTS_PER_ARM:
        raise InputError(f"--patients-per-arm {patients_per_arm}: must be >= "
                         f"{MIN_PATIENTS_PER_ARM}")

    # (not load_trial_spec: its regimen-file check is make_plan's below, whose message names
    # the file's full resolved path)
    spec = load_toml_model(spec_path, TrialSpec)
    # the overrides go into the spec itself, so that metadata.json's resolved spec shows the
    # values the run used (make_plan does the same for patients_per_arm)
    if seed is not None:
        spec = spec.model_copy(update={"seed": seed})
    from reconsolidate.trial.engine import RegimenError, make_plan
    from reconsolidate.trial.run import resolved_spec_toml, run_trial

    try:  # (make_plan loads every protocol's regimens, used by an arm or not)
        plan = make_plan(spec, spec_path.parent, patients_per_arm, calibrated=not uncalibrated)
    except RegimenError as exc:  # the spec file's name in front, as for its other errors
        raise InputError(f"{spec_path}: {exc}") from None
    out_dir = out if out is not None else Path("runs") / f"{spec.name}-{spec.seed}"
    # the run directory's spec.toml reproduces the run by itself: overrides applied, regimen
    # files (named relative to the original spec) inlined
    spec_text = resolved_spec_toml(spec_path, seed=seed, patients_per_arm=patients_per_arm,
                                   uncalibrated=uncalibrated)

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} patients"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=json_out == "-" or not console.is_terminal,
    ) as progress:
        total = sum(a.n_patients for a in plan.arms) * spec.replicates
        # an earlier run there is replaced (run_trial's atomic_dir refuses anything else): say so
        replaces = out_dir.is_dir() and any(out_dir.iterdir())
        # the first run after an install compiles the kernels (run_trial's warm-up) before the
        # first patient is simulated: say so instead of showing a bar that does not move
        task = progress.add_task(
            f"trial {spec.name}: preparing the compiled kernels (first run after an install: "
            "~30 s)", total=total)
        try:
            with _sigterm_unwinds() as still_running:
                def on_chunk(done: int, _total: int) -> None:
                    still_running()  # a SIGTERM whose exception was dropped ends the run here
                    progress.update(task, completed=done, description=f"trial {spec.name}")

                result = run_trial(
                    plan,
                    out_dir=out_dir,
                    spec_text=spec_text,
                    workers=workers,
                    chunk_size=chunk_size,
                    progress=on_chunk,
                    write_drinking=not no_drinking_table,
                    report=not no_report,
                )
        except (_Terminated, KeyboardInterrupt) as exc:
            # the partial run directory has been removed on the way here (atomic_dir)
            what, code = (("SIGTERM", EXIT_SIGTERM) if isinstance(exc, _Terminated)
                          else ("Ctrl-C", EXIT_SIGINT))
            progress.stop()
            if getattr(exc, "completed", False):
                typer.echo(f"error: trial {spec.name!r}: SIGTERM arrived as the run finished; "
                           f"run directory {str(out_dir)!r} is complete", err=True)
            else:
                typer.echo(f"error: trial {spec.name!r} interrupted by {what}: run directory "
                           f"{str(out_dir)!r} not written (left as it was)", err=True)
            raise typer.Exit(code) from None

    for w in result.warnings:
        # model-domain notes (also in metadata.json): on stderr, so that --json - stays clean
        console.print(f"[yellow]note:[/yellow] {w}", highlight=False, soft_wrap=True)
    if replaces:
        console.print(f"[yellow]note:[/yellow] replaced the earlier run in {out_dir} (give --out "
                      "DIR to keep runs apart)", highlight=False, soft_wrap=True)
    if json_out is not None:
        text = json.dumps(
            {
                "trial": spec.name,
                "seed": spec.seed,
                "out_dir": str(out_dir),
                "arms": result.summary,
                "timings": result.timings,
                "warnings": result.warnings,
            }
        ) + "\n"
        if json_out == "-":
            sys.stdout.write(text)
            return
        from reconsolidate._io import atomic_write_text

        atomic_write_text(json_out, text)  # and the table below, as pk and paradigm do
    from rich.table import Table

    from reconsolidate.endpoints.core import default_abstinent_last_min_days
    from reconsolidate.trial.run import abstinent_last_key, abstinent_last_span_days

    an = spec.analysis
    k_days = abstinent_last_span_days(an.abstinent_last_days, spec.follow_up_days)
    k_min_days = (an.abstinent_last_min_days if an.abstinent_last_min_days is not None
                  else default_abstinent_last_min_days(k_days))
    pooled = (f", {spec.replicates} replicate trials pooled (n = patients x replicates; "
              "report.html compares within each)" if spec.replicates > 1 else "")
    table = Table(title=f"{spec.name} (seed {spec.seed}): outcomes by arm, days 0-"
                  f"{spec.follow_up_days - 1}, reported TLFB{pooled}",
                  caption=_missing_days_caption(an.missing_days, k_days, k_min_days))
    columns = _columns(an.abstinent_last_days, spec.follow_up_days)
    last = abstinent_last_key(an.abstinent_last_days, spec.follow_up_days)
    table.add_column("arm")
    for _, label, _ in columns:
        table.add_column(label, justify="right")
    for arm, row in result.summary.items():
        table.add_row(arm, *(_abstinent_cell(row, k) if k == last else _fmt(row.get(k), f)
                             for k, _, f in columns))
    out_console = Console() if sys.stdout.isatty() else Console(width=160)
    out_console.print(table)
    pd = result.timings["patient_days"]
    sim = result.timings["simulate_seconds"]
    # patient-days not simulated: arms alike until randomisation (same cohort, therapy and
    # size) simulate that common history once and the others copy it
    copied = pd - result.timings["simulated_patient_days"]
    note = (f" ({copied:,.0f} of them copied, not simulated: arms alike before randomisation "
            "simulate their common days once)" if copied else "")
    warm = result.timings["warm_up_seconds"]
    compiled = (f"; the compiled kernels took {warm:.0f} s to prepare first (compiled on a first "
                "run, loaded from numba's cache later)" if warm >= 5.0 else "")
    out_console.print(
        f"{pd:,.0f} patient-days{note} in {sim:.2f} s ({pd / max(sim, 1e-9):,.0f} per s)"
        f"{compiled}; written to {out_dir}"
    )


def register(app: typer.Typer) -> None:
    """Add the ``trial`` command to the root app."""

    @app.command("trial")
    def trial(
        spec: Path | None = typer.Argument(None, help="trial spec TOML file"),  # noqa: B008
        out: Path | None = typer.Option(  # noqa: B008
            None, "--out", help="run directory (default runs/<spec name>-<seed>)"
        ),
        patients_per_arm: int | None = typer.Option(
            None, "--patients-per-arm", help="override the spec's patients per arm"
        ),
        seed: int | None = typer.Option(None, "--seed", help="override the spec's seed"),
        workers: int = typer.Option(1, "--workers", help="worker processes"),
        chunk_size: int = typer.Option(
            5000, "--chunk-size", help="patients per work unit (results do not depend on it)"
        ),
        json_out: str | None = typer.Option(
            None,
            "--json",
            help="'-' prints the per-arm summary as one JSON object on stdout (instead of the "
            "table); FILE writes it to FILE (its directory must exist) and prints the table. "
            "The run directory is written either way",
        ),
        schema: bool = typer.Option(False, "--schema", help="print the spec's JSON Schema"),
        no_drinking_table: bool = typer.Option(
            False, "--no-drinking-table", help="skip drinking.parquet (large for big runs)"
        ),
        no_report: bool = typer.Option(False, "--no-report", help="do not write report.html"),
        uncalibrated: bool = typer.Option(
            False,
            "--uncalibrated",
            help="use the code's documented defaults, not the shipped calibrated parameters",
        ),
    ) -> None:
        """Run a virtual randomized trial of a ketamine-reconsolidation protocol."""
        _run(spec, out, patients_per_arm, seed, workers, chunk_size, json_out, schema,
             no_drinking_table, no_report, uncalibrated)
