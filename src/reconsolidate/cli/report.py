"""``reconsolidate report RUN_DIR``: write RUN_DIR/report.html (self-contained)."""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to the root app."""

    @app.command("report")
    def report_cmd(
        run_dir: Path = typer.Argument(..., help="run directory of `reconsolidate trial`"),  # noqa: B008
    ) -> None:
        """Write RUN_DIR/report.html: protocol, PK, memory, drinking, KM, endpoints, calibration."""
        from reconsolidate.report import write_report

        out = write_report(run_dir)
        typer.echo(f"report written to {out}")
