"""Command line: ``reconsolidate <command>``.

Each command lives in its own module (``cli/pk.py``, ``cli/paradigm.py``, ...) exposing
``register(app)``; :data:`COMMAND_MODULES` lists them in the order ``--help`` shows them.
User errors (:class:`~reconsolidate.exceptions.InputError`) become one line on stderr and exit
code 2, never a traceback.
"""

from __future__ import annotations

import importlib
import sys

import typer

from reconsolidate.exceptions import InputError

__all__ = ["COMMAND_MODULES", "app", "main"]

COMMAND_MODULES: tuple[str, ...] = (
    "trial", "analyze", "triggers", "pk", "paradigm", "calibrate", "validate", "report"
)

app = typer.Typer(
    name="reconsolidate",
    help="Simulate, plan and analyse ketamine-assisted memory-reconsolidation therapy for AUD.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from reconsolidate import __version__

        typer.echo(__version__)
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="Print the version."
    ),
) -> None:
    """Simulate, plan and analyse ketamine-assisted memory-reconsolidation therapy for AUD."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"reconsolidate.cli.{_name}").register(app)


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr and return the exit (code 2) to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``reconsolidate`` console script; returns the exit code.

    Usage errors exit with code 2 (click's convention), and so does every
    :class:`~reconsolidate.exceptions.InputError` raised while a command runs.
    """
    try:
        app(args=argv, prog_name="reconsolidate")
    except SystemExit as exc:  # typer's standalone mode ends every run this way
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except InputError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
