"""``reconsolidate power SPEC.toml --patients-per-arm 30,60,120``: power and sample size."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from reconsolidate.exceptions import InputError

__all__ = ["register"]


def _int_list(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"{flag} {text!r}: expected whole numbers separated by commas, "
                         "e.g. 30,60,120") from None
    if not values:
        raise InputError(f"{flag} {text!r}: expected whole numbers separated by commas, "
                         "e.g. 30,60,120")
    return values


def _pct(v: float) -> str:
    return f"{100.0 * v:.0f}"


def _cell(b: dict[str, Any]) -> str:
    """"74 [61-84]": power, % (Wilson 95% CI)."""
    return f"{_pct(b['power'])} [{_pct(b['ci_low'])}-{_pct(b['ci_high'])}]"


def _estimate(c: dict[str, Any]) -> str:
    v = c["by_n"][-1]["median_estimate"]
    if v is None:
        return "-"
    return f"{v:.2f}" if c["kind"] == "hazard_ratio" else f"{v:+.1f}"


def _run(spec_path: Path, sizes_text: str | None, replicates: int, alpha: float,
         target_power: float, endpoints_text: str | None, seed: int | None, workers: int,
         chunk_size: int, json_out: str | None, uncalibrated: bool) -> None:
    from reconsolidate._config import load_toml_model
    from reconsolidate.endpoints import COMPARISON_ENDPOINTS, REPORTED_COMPARISONS
    from reconsolidate.trial.engine import RegimenError, check_regimens
    from reconsolidate.trial.power import estimate_power
    from reconsolidate.trial.spec import TrialSpec

    if json_out not in (None, "-"):
        from reconsolidate._io import check_output_file

        check_output_file(json_out, "--json")
    if workers < 1:
        raise InputError(f"--workers {workers}: must be >= 1")
    if chunk_size < 1:
        raise InputError(f"--chunk-size {chunk_size}: must be >= 1")
    if seed is not None and seed < 0:
        raise InputError(f"--seed {seed}: must be >= 0")
    endpoints = list(REPORTED_COMPARISONS)
    if endpoints_text is not None:
        endpoints = [e.strip() for e in endpoints_text.split(",") if e.strip()]
        for e in endpoints or [endpoints_text]:
            if e not in COMPARISON_ENDPOINTS:
                raise InputError(f"--endpoints {e!r}: allowed {', '.join(COMPARISON_ENDPOINTS)}")
    spec = load_toml_model(spec_path, TrialSpec)
    if seed is not None:
        spec = spec.model_copy(update={"seed": seed})
    sizes = ([spec.patients_per_arm] if sizes_text is None
             else _int_list(sizes_text, "--patients-per-arm"))
    try:
        check_regimens(spec, spec_path.parent)
    except RegimenError as exc:  # the spec file's name in front, as `trial` does
        raise InputError(f"{spec_path}: {exc}") from None

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  console=console, transient=True,
                  disable=json_out == "-" or not console.is_terminal) as progress:
        tasks: dict[str, Any] = {}

        def on_progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                what = ("simulating patients" if phase == "simulate"
                        else "analysing replicate trials")
                tasks[phase] = progress.add_task(f"power {spec.name}: {what}", total=total)
            progress.update(tasks[phase], completed=done, total=total)

        result = estimate_power(
            spec, spec_path.parent, sizes, replicates=replicates, alpha=alpha,
            endpoints=endpoints, target_power=target_power, workers=workers,
            chunk_size=chunk_size, calibrated=not uncalibrated, progress=on_progress)

    for w in result["warnings"]:  # model-domain notes, on stderr as `trial` prints them
        console.print(f"[yellow]note:[/yellow] {w}", highlight=False, soft_wrap=True)
    if json_out is not None:
        text = json.dumps(result) + "\n"
        if json_out == "-":
            sys.stdout.write(text)
            return
        from reconsolidate._io import atomic_write_text

        atomic_write_text(json_out, text)
    _print_table(result)


def _print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    sizes = result["patients_per_arm"]
    target = result["target_power"]
    table = Table(
        title=f"{result['spec']} (seed {result['seed']}): power, % of {result['replicates']} "
        f"simulated trials with p < {result['alpha']:g} in the arm's favour (Wilson 95% CI), "
        f"each arm vs {result['reference_arm']}",
        caption=f"{result['design']}; {result['test']}. Estimate: median over the replicates "
        f"at {sizes[-1]} per arm (difference, arm minus reference, or hazard ratio: < 1 = "
        "fewer first heavy days in the arm). Significant results against the arm and the "
        "two-sided rejection rate (the type-I error between equal arms): --json.")
    table.add_column("arm")
    table.add_column("endpoint")
    for n in sizes:
        table.add_column(f"n = {n}", justify="right")
    table.add_column("estimate", justify="right")
    if target is not None:
        table.add_column(f"n for {_pct(target)}%", justify="right")
    for c in result["comparisons"]:
        row = [c["arm"], c["label"], *(_cell(b) for b in c["by_n"]), _estimate(c)]
        if target is not None:
            reach = c["smallest_n_for_target"]
            row.append(str(reach) if reach is not None else f"> {sizes[-1]}")
        table.add_row(*row)
    out = Console() if sys.stdout.isatty() else Console(width=180)
    out.print(table)
    t = result["timings"]
    out.print(f"{t['patient_days']:,.0f} patient-days simulated in {t['simulate_seconds']:.1f} s; "
              f"{result['replicates'] * len(sizes)} trials analysed in "
              f"{t['analyse_seconds']:.1f} s")


def register(app: typer.Typer) -> None:
    """Add the ``power`` command to the root app."""

    @app.command("power")
    def power(
        spec: Path = typer.Argument(..., help="trial spec TOML file"),  # noqa: B008
        patients_per_arm: str | None = typer.Option(
            None, "--patients-per-arm",
            help="arm sizes to evaluate, comma-separated (e.g. 30,60,120; default: the spec's)"),
        replicates: int = typer.Option(
            200, "--replicates", help="simulated trials per arm size (2-1000)"),
        alpha: float = typer.Option(0.05, "--alpha", help="two-sided significance level"),
        target_power: float = typer.Option(
            0.8, "--target-power", help="report the smallest arm size reaching this power"),
        endpoints: str | None = typer.Option(
            None, "--endpoints",
            help="comma-separated endpoints to compare (default: the report's comparisons)"),
        seed: int | None = typer.Option(None, "--seed", help="override the spec's seed"),
        workers: int = typer.Option(1, "--workers", help="worker processes"),
        chunk_size: int = typer.Option(
            5000, "--chunk-size", help="patients per work unit (results do not depend on it)"),
        json_out: str | None = typer.Option(
            None, "--json",
            help="'-' prints the result as one JSON object on stdout (instead of the table); "
            "FILE writes it to FILE (its directory must exist) and prints the table"),
        uncalibrated: bool = typer.Option(
            False, "--uncalibrated",
            help="use the code's documented defaults, not the shipped calibrated parameters"),
    ) -> None:
        """Power and sample size of a trial design: share of simulated parallel-group trials
        in which each arm differs significantly from the reference arm, per arm size."""
        _run(spec, patients_per_arm, replicates, alpha, target_power, endpoints, seed, workers,
             chunk_size, json_out, uncalibrated)
