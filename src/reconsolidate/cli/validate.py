"""``reconsolidate validate``: every calibration target with the default parameters."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from reconsolidate.exceptions import InputError

__all__ = ["register"]


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def _fmt_predicted(v: object, passed: bool, interval: tuple[float, float]) -> str:
    """The prediction; a failing one shown with as many digits as it takes not to read as a
    value on its bound (-6.998 against -6.999 showed as -7, a bound and a FAIL)."""
    text = _fmt(v)
    if passed or not isinstance(v, float):
        return text
    for digits in range(2, 9):
        if all(f"{v:.{digits}g}" != f"{b:.{digits}g}" for b in interval):
            return f"{v:.{digits}g}" if len(f"{v:.{digits}g}") > len(text) else text
    return repr(v)


def register(app: typer.Typer) -> None:
    """Add the ``validate`` command to the root app."""

    @app.command("validate")
    def validate_cmd(
        targets: Path | None = typer.Argument(  # noqa: B008
            None, help="targets TOML (default: the shipped calibration/targets.toml)"
        ),
        json_out: str | None = typer.Option(
            None, "--json",
            help="'-' prints {\"targets\": [...]} as one JSON object on stdout; a file "
            "name writes it there (the directory must exist) and prints the table"
        ),
        target: list[str] = typer.Option(  # noqa: B008
            [], "--target", help="only this target id (repeatable)"
        ),
        patients_per_arm: int | None = typer.Option(
            None, "--patients-per-arm", help="override the scenario sizes"
        ),
    ) -> None:
        """Predict every published target with the default parameters: pass/fail."""
        from reconsolidate._io import atomic_write_text, check_output_file
        from reconsolidate.calibration.validate import validate

        if json_out not in (None, "-"):
            check_output_file(json_out, "--json")  # before the work: the directory must exist
        if patients_per_arm is not None and patients_per_arm < 2:
            raise InputError(f"--patients-per-arm {patients_per_arm}: must be >= 2")
        res = validate(targets, target_ids=list(target) or None,
                       patients_per_arm=patients_per_arm)
        if json_out == "-":
            sys.stdout.write(json.dumps(res) + "\n")
            return
        if json_out is not None:  # a file, and the table below (as trial, pk and paradigm do)
            atomic_write_text(json_out, json.dumps(res, indent=2) + "\n")
        from rich.console import Console
        from rich.table import Table

        prov = res["calibration"]
        diagnostic = [r for r in res["targets"] if r.get("weight", 1.0) == 0.0]
        fitted = [r for r in res["targets"] if r.get("weight", 1.0) != 0.0]
        title = (f"calibration targets: {sum(r['passed'] for r in fitted)}/{len(fitted)} fitted "
                 "targets pass"
                 + (f"; diagnostics (weight 0, not fitted): "
                    f"{sum(r['passed'] for r in diagnostic)}/{len(diagnostic)} pass"
                    if diagnostic else "")
                 + f" (parameters: {prov.get('status', 'calibrated')}"
                 + (f", {prov.get('date_utc')}" if prov.get("date_utc") else "") + ")")
        table = Table(title=title)
        for col in ("target", "arm", "window", "published", "interval", "predicted", ""):
            table.add_column(col, justify="right" if col in ("predicted",) else "left")
        for r in res["targets"]:
            lo, hi = r["interval"]
            table.add_row(
                r["id"], r["arm"], f"{r['window_days'][0]}..{r['window_days'][1]}",
                _fmt(r["published"]), f"[{_fmt(lo)}, {_fmt(hi)}]",
                _fmt_predicted(r["predicted"], r["passed"], (lo, hi)),
                ("[green]pass[/green]" if r["passed"] else "[red]FAIL[/red]")
                + (" (diagnostic, weight 0)" if r.get("weight", 1.0) == 0.0 else ""),
            )
        console = Console(width=None if sys.stdout.isatty() else 200)
        console.print(table)
        lab = res["lab"]
        lo = res["loss"]
        fit_loss = prov.get("loss")
        # the recorded loss is comparable only for the files the fit was made against
        same_files = all(prov.get(k, res.get(k)) == res.get(k) for k in
                         ("targets_sha256", "lab_sha256", "scenarios_sha256"))
        if not isinstance(fit_loss, int | float) or target:
            note = ""
        elif same_files:
            note = f" (the fit recorded {fit_loss:.4g})"
        else:
            note = (" (the shipped fit was made against other targets, scenario or laboratory "
                    "files: its recorded loss does not apply)")
        console.print(f"loss: targets {lo['targets']:.4g} + laboratory penalty "
                      f"{lo['lab_penalty']:.4g} = {lo['total']:.4g}" + note)
        sizes = ", ".join(f"{k} {v}" for k, v in res["patients_per_arm"].items())
        console.print(f"simulated patients per arm: {sizes} (a prediction carries the Monte Carlo "
                      "error of its size: --patients-per-arm N scores the same targets on more "
                      "patients, the first ones the same people)", highlight=False)
        if lab["n_checks"]:
            console.print(f"laboratory paradigms (memory constraints): {lab['n_passed']}/"
                          f"{lab['n_checks']} checks pass, penalty {lab['penalty']:.4g}")
            for f in lab["failed"]:
                console.print(f"  [red]FAIL[/red] {f['paradigm']}: {f['description']} "
                              f"({f['value']:.3f} vs {f['bound']:.3f})")
