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
    """"74 [61-84]": power, % (Wilson 95% CI); "(21 against)" when that many trials were
    significant against the arm (a 0% power that hides a harmful arm would mislead)."""
    text = f"{_pct(b['power'])} [{_pct(b['ci_low'])}-{_pct(b['ci_high'])}]"
    k = b["n_significant_against_arm"]
    if k:
        text += f" ({k} against)"
    return text


def _estimate(c: dict[str, Any]) -> str:
    b = c["by_n"][-1]
    v = b["median_estimate"]
    if v is None:
        return "-"
    f = "{:.2f}" if c["kind"] == "hazard_ratio" else "{:+.1f}"
    return (f.format(v) + f" [{f.format(b['estimate_p2_5'])}, "
            f"{f.format(b['estimate_p97_5'])}]")


def _run(spec_path: Path, sizes_text: str, replicates: int, alpha: float,
         target_power: float, endpoints_text: str | None, seed: int | None, workers: int,
         chunk_size: int, json_out: str | None, uncalibrated: bool, adjust: str = "none",
         missing_days: str | None = None) -> None:
    from reconsolidate._config import load_toml_model
    from reconsolidate.cli.trial import check_run_options
    from reconsolidate.endpoints import COMPARISON_ENDPOINTS, REPORTED_COMPARISONS
    from reconsolidate.trial.engine import RegimenError, check_regimens
    from reconsolidate.trial.power import ADJUSTMENTS, MISSING_DAYS, estimate_power
    from reconsolidate.trial.spec import TrialSpec

    check_run_options(json_out, workers, chunk_size, seed)
    if adjust not in ADJUSTMENTS:
        raise InputError(f"--adjust {adjust!r}: allowed {', '.join(ADJUSTMENTS)}")
    if missing_days is not None and missing_days not in MISSING_DAYS:
        raise InputError(f"--missing-days {missing_days!r}: allowed {', '.join(MISSING_DAYS)}")
    endpoints = list(REPORTED_COMPARISONS)
    if endpoints_text is not None:
        endpoints = [e.strip() for e in endpoints_text.split(",") if e.strip()]
        for e in endpoints or [endpoints_text]:
            if e not in COMPARISON_ENDPOINTS:
                raise InputError(f"--endpoints {e!r}: allowed {', '.join(COMPARISON_ENDPOINTS)}")
    spec = load_toml_model(spec_path, TrialSpec)
    if seed is not None:
        spec = spec.model_copy(update={"seed": seed})
    sizes = _int_list(sizes_text, "--patients-per-arm")
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
            endpoints=endpoints, target_power=target_power, adjust=adjust,
            missing_days=missing_days, workers=workers,
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
    reps = result["replicates"]
    table = Table(
        title=f"{result['spec']} (seed {result['seed']}): power, % of {reps} simulated trials "
        f"with p < {result['alpha']:g} in the arm's favour (Wilson 95% CI), vs "
        f"{result['reference_arm']}",
        caption=f"{result['design']}; {result['test']}. Estimate: median over the replicates "
        f"at the largest size [2.5-97.5 percentiles] (difference, arm minus reference, or "
        "hazard ratio: < 1 = fewer first heavy days in the arm). '(k against)': k of the "
        f"{reps} trials significant against the arm. 'n for target': the smallest size "
        "reaching it; '?' when its interval does not clear the target (add replicates). Main "
        "effects of a factorial design pool the other factor's arms.")
    table.add_column("comparison")
    table.add_column("endpoint")
    for n in sizes:
        per_arm = result["arm_sizes"][str(n)]
        uneven = len(set(per_arm.values())) > 1
        # with unequal allocation "n" is the size of an arm of allocation 1: say what each is
        table.add_column(f"n = {n}" + (f" ({'/'.join(str(v) for v in per_arm.values())}; "
                                       f"N = {sum(per_arm.values())})" if uneven else ""),
                         justify="right")
    table.add_column("estimate", justify="right")
    if target is not None:
        table.add_column(f"n for {_pct(target)}%", justify="right")
    for c in result["comparisons"]:
        who = (f"{c['arm']} vs {c['reference']}" if c["contrast"] == "arm" else
               f"{c['contrast']}: {c['arm']} vs {c['reference']}")
        label = c["label"] + (" - no difference in any trial" if c["no_difference"] else "")
        row = [who, label, *(_cell(b) for b in c["by_n"]), _estimate(c)]
        if target is not None:
            reach, sure = c["smallest_n_for_target"], c["smallest_n_for_target_ci"]
            row.append(f"> {sizes[-1]}" if reach is None
                       else str(reach) if sure == reach else f"{reach}?")
        table.add_row(*row)
    out = Console() if sys.stdout.isatty() else Console(width=200)
    out.print(table)
    t = result["timings"]
    out.print(f"{t['patient_days']:,.0f} patient-days simulated in {t['simulate_seconds']:.1f} s; "
              f"{reps * len(sizes)} trials analysed in {t['analyse_seconds']:.1f} s")


def register(app: typer.Typer) -> None:
    """Add the ``power`` command to the root app."""

    @app.command("power")
    def power(
        spec: Path = typer.Argument(..., help="trial spec TOML file"),  # noqa: B008
        patients_per_arm: str = typer.Option(
            ..., "--patients-per-arm",
            help="arm sizes to evaluate, comma-separated (e.g. 20,30,40,60): patients of an "
            "arm of allocation 1"),
        replicates: int = typer.Option(
            200, "--replicates", help="simulated trials per arm size (2-1000)"),
        alpha: float = typer.Option(0.05, "--alpha", help="two-sided significance level"),
        target_power: float = typer.Option(
            0.8, "--target-power", help="report the smallest arm size reaching this power"),
        endpoints: str | None = typer.Option(
            None, "--endpoints",
            help="comma-separated endpoints to compare (default: the report's comparisons); "
            "give the primary one alone for a sample size"),
        adjust: str = typer.Option(
            "none", "--adjust",
            help="multiplicity adjustment across the arms compared with the reference: none, "
            "holm, bonferroni"),
        missing_days: str | None = typer.Option(
            None, "--missing-days",
            help="replace the spec's [analysis] missing_days: exclude, heavy, abstinent"),
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
             chunk_size, json_out, uncalibrated, adjust, missing_days)
