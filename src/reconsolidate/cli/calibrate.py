"""``reconsolidate calibrate [TARGETS] --out DIR``: fit the free parameters (optuna, Dask)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import typer

from reconsolidate.exceptions import InputError

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``calibrate`` command to the root app."""

    @app.command("calibrate")
    def calibrate_cmd(
        targets: Path | None = typer.Argument(  # noqa: B008
            None, help="targets TOML (default: the shipped calibration/targets.toml)"
        ),
        out: Path = typer.Option(  # noqa: B008
            ..., "--out",
            help="output directory (written atomically); holds fitted.toml and a copy of the "
            "targets file with its scenario files, so `reconsolidate validate DIR/targets.toml` "
            "works",
        ),
        scheduler: str | None = typer.Option(
            None, "--scheduler", help="Dask scheduler address tcp://HOST:PORT (default: local)"
        ),
        budget: int = typer.Option(48, "--budget", help="parameter sets evaluated"),
        seed: int = typer.Option(0, "--seed", help="sampler seed"),
        batch_size: int = typer.Option(
            8, "--batch-size", help="trials per batch (same batch size -> same result)"
        ),
        patients_per_arm: int | None = typer.Option(
            None, "--patients-per-arm", help="override the scenario sizes"
        ),
        sampler: str = typer.Option(
            "tpe", "--sampler",
            help="tpe (global search) or cmaes (local search from --start; needs the cmaes "
            "package, in the parallel extra)",
        ),
        start: Path | None = typer.Option(  # noqa: B008
            None, "--start",
            help="refine a fit: a fitted.toml whose values are the first trial and the centre "
            "of the search box",
        ),
        radius: float = typer.Option(
            1.0, "--radius",
            help="with --start: half-width of the search box as a fraction of each "
            "parameter's declared range (log scale for log parameters); 0.5 or more searches "
            "the declared ranges",
        ),
        json_out: str | None = typer.Option(
            None, "--json", help="'-' prints the fitted parameters as one JSON object; a file "
            "name writes it there (the directory must exist)"
        ),
    ) -> None:
        """Calibrate the free (ASSUMPTION) parameters to published targets."""
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        from reconsolidate._io import atomic_write_text, check_output_dir, check_output_file
        from reconsolidate.calibration.fit import calibrate, write_calibration

        if json_out not in (None, "-"):
            check_output_file(json_out, "--json")  # before the work: the directory must exist
        check_output_dir(out, "--out")  # refused after an hour's fit otherwise
        if patients_per_arm is not None and patients_per_arm < 2:
            raise InputError(f"--patients-per-arm {patients_per_arm}: must be >= 2")
        console = Console(stderr=True)
        with Progress(
            TextColumn("[bold]calibration"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} trials"),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=console,
            disable=json_out == "-",
        ) as progress:
            task = progress.add_task("calibrate", total=budget, info="")

            def _cb(batch: int, done: int, total: int, best: float) -> None:
                progress.update(task, completed=done,
                                info=f"batch {batch + 1}, best loss {best:.4g}")
                if not console.is_terminal and json_out != "-":
                    console.print(f"batch {batch + 1}: {done}/{total} trials, "
                                  f"best loss {best:.4g}")

            res = calibrate(targets, budget=budget, seed=seed, batch_size=batch_size,
                            scheduler=scheduler, patients_per_arm=patients_per_arm,
                            sampler=sampler, start=start, radius=radius, progress=_cb)
        argv = ["calibrate"]
        if targets is not None:
            argv.append(str(targets))
        argv += ["--out", str(out), "--budget", str(budget), "--seed", str(seed),
                 "--batch-size", str(batch_size)]
        if patients_per_arm is not None:
            argv += ["--patients-per-arm", str(patients_per_arm)]
        if sampler != "tpe":
            argv += ["--sampler", sampler]
        if start is not None:
            argv += ["--start", str(start), "--radius", repr(radius)]
        cmd = "reconsolidate " + " ".join(shlex.quote(a) for a in argv)
        write_calibration(res, out, command=cmd)
        if json_out is not None:
            text = json.dumps({"out_dir": str(out), "best_loss": res.best_loss,
                               "best_params": res.best_params,
                               "settings": {k: v for k, v in res.settings.items()
                                            if k != "parameters"}})
            if json_out == "-":
                sys.stdout.write(text + "\n")
                return
            atomic_write_text(json_out, text + "\n")  # and the summary below
        out_console = Console(width=None if sys.stdout.isatty() else 160)
        out_console.print(f"best loss {res.best_loss:.4g} after {budget} trials "
                          f"({res.timings['wall_seconds']:.1f} s); written to {out}")
        for k, v in sorted(res.best_params.items()):
            out_console.print(f"  {k} = {v:.6g}")
