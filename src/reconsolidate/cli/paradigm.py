"""``reconsolidate paradigm``: run a laboratory paradigm with a memory model and check it.

Examples::

    reconsolidate paradigm --list
    reconsolidate paradigm --schema
    reconsolidate paradigm nader2000 --model population --json -
    reconsolidate paradigm my_paradigm.toml --plot responding.png
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

import typer

from reconsolidate._io import to_jsonable
from reconsolidate.exceptions import InputError

__all__ = ["paradigm", "register"]


def _table_text(result: dict[str, Any]) -> str:
    from rich.console import Console
    from rich.table import Table

    buf = io.StringIO()
    console = Console(file=buf, width=120, force_terminal=False)
    cond = Table(title=f"{result['paradigm']} ({result['model']} model)")
    cond.add_column("condition")
    cond.add_column("response", justify="right")
    cond.add_column("tests (response)")
    for name, c in result["conditions"].items():
        tests = ", ".join(f"{k}={v:.3f}" for k, v in c["tests"].items())
        cond.add_row(name, f"{c['response']:.3f}", tests)
    console.print(cond)
    checks = Table(title="checks")
    checks.add_column("passed")
    checks.add_column("check")
    checks.add_column("numbers", justify="right")
    for ch in result["checks"]:
        rel = "<=" if ch["relation"] == "below" else ">="
        checks.add_row("PASS" if ch["passed"] else "FAIL", ch["description"],
                       f"{ch['value_a']:.3f} {rel} {ch['bound']:.3f}")
    console.print(checks)
    return buf.getvalue()


def _plot(result: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from reconsolidate._io import atomic_write_bytes

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, c in result["conditions"].items():
        traj = [p for p in c["trajectory"] if p["response"] is not None
                and not (isinstance(p["response"], float) and math.isnan(p["response"]))]
        # one point per trial/test in order; the x axis is the event index (phases differ in
        # duration by orders of magnitude, so clock time would hide the trials)
        xs = list(range(len(traj)))
        ys = [p["response"] for p in traj]
        (line,) = ax.plot(xs, ys, "-", lw=1.2, label=name)
        tx = [i for i, p in enumerate(traj) if p["kind"] == "test"]
        ax.plot(tx, [ys[i] for i in tx], "o", color=line.get_color(), ms=6)
    ax.set_xlabel("trial / test (in order; dots = tests)")
    ax.set_ylabel("conditioned response / craving (0-1)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{result['paradigm']} ({result['model']} model)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def paradigm(
    name_or_file: str | None = typer.Argument(
        None, help="Built-in paradigm name (see --list) or a paradigm TOML file."),
    list_: bool = typer.Option(False, "--list", help="List the built-in paradigms."),
    schema: bool = typer.Option(False, "--schema",
                                help="Print the JSON Schema of a paradigm file."),
    model: str = typer.Option("reference", "--model", help="reference | population"),
    json_out: str | None = typer.Option(None, "--json", help="'-' for stdout, or a file."),
    plot: str | None = typer.Option(None, "--plot",
                                    help="Write a PNG of responding per condition."),
) -> None:
    """Run a laboratory paradigm (phases, drugs, tests) with a memory model and check it."""
    from reconsolidate.memory.paradigm import Paradigm, builtin_paradigms, run_paradigm

    if list_:
        items = builtin_paradigms()
        if json_out == "-":
            typer.echo(json.dumps(items))
        else:
            width = max(len(k) for k in items)
            for k, v in items.items():
                typer.echo(f"{k:<{width}}  {v}")
        return
    if schema:
        typer.echo(json.dumps(Paradigm.model_json_schema(), indent=2))
        return
    if name_or_file is None:
        raise InputError("give a paradigm name or file (see --list), or --list / --schema")
    if model not in ("reference", "population"):
        raise InputError(f"--model {model!r}: allowed reference, population")
    if plot is not None and not plot.lower().endswith(".png"):
        raise InputError(f"--plot {plot!r}: the file name must end in .png")
    result = to_jsonable(run_paradigm(name_or_file, model).to_dict())
    if plot is not None:
        _plot(result, plot)
    if json_out == "-":
        typer.echo(json.dumps(result))
    else:
        if json_out is not None:
            from reconsolidate._io import atomic_write_json

            atomic_write_json(json_out, result)
        typer.echo(_table_text(result), nl=False)


def register(app: typer.Typer) -> None:
    """Add ``paradigm`` to the command line."""
    app.command("paradigm")(paradigm)
