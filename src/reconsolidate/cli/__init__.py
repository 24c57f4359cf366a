"""Command line: ``reconsolidate <command>``.

Each command lives in its own module (``cli/pk.py``, ``cli/paradigm.py``, ...) exposing
``register(app)``; :data:`COMMAND_MODULES` lists them in the order ``--help`` shows them.
User errors (:class:`~reconsolidate.exceptions.InputError`) become one line on stderr and exit
code 2, never a traceback.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

from reconsolidate.exceptions import InputError

__all__ = ["COMMAND_MODULES", "app", "main", "usage_error_line"]

COMMAND_MODULES: tuple[str, ...] = (
    "trial", "power", "analyze", "triggers", "pk", "paradigm", "calibrate", "validate", "report"
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


#: Short texts for pydantic's type errors on command-line values (the CLI parses with pydantic).
_EXPECTED = {
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "int_type": "must be an integer",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
}


def _option_name(param: Any) -> str:
    """``--patients-per-arm`` for an option, the metavar-like name for an argument."""
    opts = [o for o in getattr(param, "opts", []) if o.startswith("--")]
    if opts:
        return max(opts, key=len)
    return str(getattr(param, "name", None) or "value")


def _given_value(argv: list[str], param: Any) -> str | None:
    """The text given for ``param`` on the command line (``--opt VALUE`` or ``--opt=VALUE``)."""
    opts = list(getattr(param, "opts", []))
    for i, arg in enumerate(argv):
        for o in opts:
            if arg == o and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(o + "="):
                return arg[len(o) + 1:]
    return None


def usage_error_line(exc: Exception, argv: list[str]) -> str:
    """One line for a command-line usage error (bad option value, unknown option, ...).

    A bad value reads ``--patients-per-arm = 'abc': must be an integer``; other usage errors keep
    click's text and point to the command's ``--help``.
    """
    from pydantic import ValidationError

    param = getattr(exc, "param", None)
    cause = exc.__cause__
    message = str(getattr(exc, "message", exc)).strip()
    if param is not None and type(exc).__name__ == "BadParameter":
        name = _option_name(param)
        value: Any = _given_value(argv, param)
        what = message
        if isinstance(cause, ValidationError) and cause.errors():
            first = cause.errors(include_url=False)[0]
            if value is None:
                value = first.get("input")
            what = _EXPECTED.get(first.get("type", ""), what)
        what = what[:1].lower() + what[1:]
        return f"{name} = {value!r}: {what}" if value is not None else f"{name}: {what}"
    text = exc.format_message() if hasattr(exc, "format_message") else message  # type: ignore[attr-defined]
    text = " ".join(str(text).split())
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        text += f" (see '{ctx.command_path} --help')"
    return text


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``reconsolidate`` console script; returns the exit code.

    Usage errors (an unknown option, a value of the wrong type) exit with code 2 (click's
    convention) after one line on stderr, and so does every
    :class:`~reconsolidate.exceptions.InputError` raised while a command runs, and every
    :class:`OSError` about a named file (an output path the system refuses to write).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = app(args=args, prog_name="reconsolidate", standalone_mode=False)
    except SystemExit as exc:  # a command that calls sys.exit itself
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except typer.TyperException as exc:  # click's usage errors (vendored by typer)
        if type(exc).__name__ == "NoArgsIsHelpError":
            return 2  # no arguments: the help has been printed
        typer.echo(f"error: {usage_error_line(exc, args)}", err=True)
        return int(getattr(exc, "exit_code", 2))
    except InputError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except OSError as exc:
        # a path the system refuses (a missing directory, no permission, /proc): the user's
        # input, as one line; an OSError without a file name is not about the input: re-raised
        if exc.filename is None:
            raise
        where = f"'{exc.filename}'" + (f" -> '{exc.filename2}'" if exc.filename2 else "")
        typer.echo(f"error: {where}: {exc.strerror or exc}", err=True)
        return 2
    except typer.Abort:
        typer.echo("Aborted!", err=True)
        return 1
    return code if isinstance(code, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
