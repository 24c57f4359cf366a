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
from dataclasses import dataclass
from typing import Any

import typer

from reconsolidate._io import atomic_write_bytes, check_output_file, to_jsonable
from reconsolidate.exceptions import InputError

__all__ = ["paradigm", "register"]


def _memory_parameters(which: str) -> tuple[Any, dict[str, Any]]:
    """The memory parameters for ``--parameters`` and their description for the output."""
    from reconsolidate.calibration.defaults import (
        calibrated_memory_params,
        calibrated_parameters,
        calibration_provenance,
        memory_values,
    )
    from reconsolidate.memory.params import MemoryParams

    code = MemoryParams()
    if which == "defaults":
        return code, {"set": "defaults", "source": "the code's documented defaults "
                      "(reconsolidate.memory.params.MemoryParams)", "changed": {}}
    p = calibrated_memory_params()
    prov = calibration_provenance()
    changed = {k: {"calibrated": getattr(p, k), "default": getattr(code, k)}
               for k in sorted(memory_values(calibrated_parameters()))
               if getattr(p, k) != getattr(code, k)}
    return p, {"set": "calibrated",
               "source": f"calibration/fitted.toml ({prov.get('status', 'uncalibrated')}, "
                         f"{prov.get('date_utc', 'no date')}): the trial engine's memory",
               "changed": changed}


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
    used = result.get("parameters")
    if used:
        changed = ", ".join(f"{k} {v['calibrated']:.3g} (default {v['default']:.3g})"
                            for k, v in used["changed"].items())
        console.print(f"memory parameters: {used['set']}, {used['source']}"
                      + (f"; {changed}" if changed else ""))
        if used["set"] == "calibrated" and not all(ch["passed"] for ch in result["checks"]):
            console.print("checks fail with the calibrated parameters: see docs/paradigms.md "
                          "(\"Which parameters\"); --parameters defaults runs the code defaults")
    return buf.getvalue()


@dataclass(frozen=True)
class _Slot:
    """A stretch of the plot's x axis: one phase (its trials) or one test, shared by every
    condition that has it."""

    kind: str  # "phase" or "test"
    name: str  # phase name or test label ("a / b" when conditions differ at this position)
    start: int  # first x position (event index on the common axis)
    width: int  # x positions: the most trials any condition has in it (tests: 1)


def _points(condition: dict[str, Any]) -> list[dict[str, Any]]:
    """The trajectory points, a missing response as NaN: an unsignalled reward (a US alone,
    e.g. reinstatement priming) has no cue to respond to, so its phase keeps its place and
    label on the axis while the line leaves a gap there."""
    out = []
    for p in condition["trajectory"]:
        r = p.get("response")
        out.append({**p, "response": math.nan if r is None else float(r)})
    return out


def _segments(points: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    """Runs of consecutive points of one phase, and single tests: (kind, name, points)."""
    out: list[tuple[str, str, int]] = []
    for p in points:
        kind, name = ("test", str(p.get("label", ""))) if p["kind"] == "test" else (
            "phase", str(p.get("phase", "")))
        if kind == "phase" and out and out[-1][:2] == (kind, name):
            out[-1] = (kind, name, out[-1][2] + 1)
        else:
            out.append((kind, name, 1))
    return out


def _merge(a: list[tuple[str, str, int]], b: list[tuple[str, str, int]]
           ) -> list[tuple[str, str, int]]:
    """Shortest common supersequence of two (kind, name, occurrence) sequences (by LCS)."""
    n, m = len(a), len(b)
    lcs = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            lcs[i][j] = (lcs[i + 1][j + 1] + 1 if a[i] == b[j]
                         else max(lcs[i + 1][j], lcs[i][j + 1]))
    out, i, j = [], 0, 0
    while i < n and j < m:
        if a[i] == b[j]:
            out.append(a[i])
            i, j = i + 1, j + 1
        elif lcs[i + 1][j] >= lcs[i][j + 1]:
            out.append(a[i])
            i += 1
        else:
            out.append(b[j])
            j += 1
    return out + a[i:] + b[j:]


def _layout(result: dict[str, Any]) -> tuple[list[_Slot], dict[str, list[int]]]:
    """The common x axis of the conditions: its slots, and each condition's x positions.

    Conditions whose phases and tests line up (same kinds and lengths in the same order) share
    positions, the names of differing phases joined (``reminder_pe / reminder_no_pe``).
    Otherwise the sequences are merged by name, so that a phase or test one condition lacks
    leaves a gap in its line and the shared ones stay aligned (xue2012's NoRet-Ext has no
    retrieval; its extinction and tests sit under the others').
    """
    segs = {name: _segments(_points(c)) for name, c in result["conditions"].items()}
    shapes = {tuple((k, w) for k, _, w in s) for s in segs.values()}
    if len(shapes) == 1:  # positional: the same structure, possibly other names
        first = next(iter(segs.values()))
        names = [list(dict.fromkeys(s[i][1] for s in segs.values())) for i in range(len(first))]
        keyed = {c: [(i,) for i in range(len(first))] for c in segs}
        order: list[tuple[Any, ...]] = [(i,) for i in range(len(first))]
        info = {(i,): (first[i][0], " / ".join(names[i])) for i in range(len(first))}
    else:  # merged by (kind, name, occurrence)
        keyed = {}
        info = {}
        for c, s in segs.items():
            seen: dict[tuple[str, str], int] = {}
            keys = []
            for kind, name, _ in s:
                occ = seen.get((kind, name), 0)
                seen[(kind, name)] = occ + 1
                keys.append((kind, name, occ))
                info[(kind, name, occ)] = (kind, name)
            keyed[c] = keys
        order = []
        for keys in keyed.values():
            order = _merge(order, keys)
    widths = {k: 0 for k in order}
    for c, s in segs.items():
        for k, (_, _, w) in zip(keyed[c], s, strict=True):
            widths[k] = max(widths[k], w)
    slots, start_of = [], {}
    x = 0
    for k in order:
        slots.append(_Slot(info[k][0], info[k][1], x, widths[k]))
        start_of[k] = x
        x += widths[k]
    xs = {c: [start_of[k] + i for k, (_, _, w) in zip(keyed[c], s, strict=True)
              for i in range(w)] for c, s in segs.items()}
    return slots, xs


def _figure(result: dict[str, Any]) -> Any:
    """The figure of ``--plot``: responding per condition over the trials and tests in order,
    the phases shaded and named along the x axis (tests in italics, drawn as dots).

    Returns
    -------
    matplotlib.figure.Figure
        Not attached to pyplot (no global state; nothing to close).
    """
    from matplotlib.figure import Figure

    slots, xs = _layout(result)
    n_x = sum(s.width for s in slots)
    # about 0.17 in per trial, so that the names of one-trial phases and tests do not collide
    width_in = min(max(8.0, 3.5 + 0.17 * n_x), 20.0)
    fig = Figure(figsize=(width_in, 5.0), layout="constrained")
    ax = fig.subplots()
    shade = 0
    for s in slots:
        lo, hi = s.start - 0.5, s.start + s.width - 0.5
        if s.kind == "phase":
            # alternate shades, so that neighbouring phases stay apart
            ax.axvspan(lo, hi, color="0.5", alpha=0.10 if shade % 2 == 0 else 0.20, lw=0)
            shade += 1
        ax.axvline(hi, color="0.6", lw=0.6, zorder=0)
    styles = ("-", "--", "-.", ":")  # with several conditions, overlapping lines stay apart
    for k, (name, c) in enumerate(result["conditions"].items()):
        pts = _points(c)
        x = xs[name]
        ys = [p["response"] for p in pts]
        # a break (NaN) where the condition skips a slot of another condition (a phase it does
        # not have): its line must not run across that phase as if it had trials there
        lx: list[float] = []
        ly: list[float] = []
        for i, (xi, yi) in enumerate(zip(x, ys, strict=True)):
            if i and xi != x[i - 1] + 1:
                lx.append(math.nan)
                ly.append(math.nan)
            lx.append(xi)
            ly.append(yi)
        (line,) = ax.plot(lx, ly, styles[k % len(styles)], lw=1.4, label=name)
        tx = [i for i, p in enumerate(pts) if p["kind"] == "test"]
        ax.plot([x[i] for i in tx], [ys[i] for i in tx], "o", color=line.get_color(), ms=6)
    ax.set_xlim(-0.5, max(n_x, 1) - 0.5)
    ax.set_xticks([s.start + (s.width - 1) / 2 for s in slots])
    ax.set_xticklabels([s.name for s in slots], fontsize=8)
    # horizontal names when each fits its stretch (~0.07 in per character at 8 pt), else slanted
    in_per_x = 0.8 * width_in / max(n_x, 1)
    fits = all(0.07 * len(s.name) < s.width * in_per_x for s in slots)
    for s, label in zip(slots, ax.get_xticklabels(), strict=True):
        if s.kind == "test":
            label.set_fontstyle("italic")
        if not fits:
            label.set_rotation(60)
            label.set_horizontalalignment("right")
            label.set_rotation_mode("anchor")
    ax.tick_params(axis="x", length=0)
    ax.set_xlabel("phases (shaded; one point per trial) and tests (italic, dots), in order")
    ax.set_ylabel("conditioned response / craving (0-1)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{result['paradigm']} ({result['model']} model)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return fig


def _plot(result: dict[str, Any], path: str) -> None:
    """Write :func:`_figure` as a PNG, atomically."""
    buf = io.BytesIO()
    _figure(result).savefig(buf, format="png", dpi=120)
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
    parameters: str = typer.Option(
        "calibrated", "--parameters",
        help="calibrated: the memory parameters the trial engine uses (the shipped fit, "
        "calibration/fitted.toml); defaults: the code's documented defaults."),
    strict: bool = typer.Option(
        False, "--strict",
        help="Exit with code 1 when a check fails (for scripts and CI; the output is written "
        "either way)."),
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
    if parameters not in ("calibrated", "defaults"):
        raise InputError(f"--parameters {parameters!r}: allowed calibrated, defaults")
    if plot is not None and not plot.lower().endswith(".png"):
        raise InputError(f"--plot {plot!r}: the file name must end in .png")
    # output files need an existing directory (a typo must not create a tree of directories);
    # checked before the paradigm runs
    if plot is not None:
        check_output_file(plot, "--plot")
    if json_out not in (None, "-"):
        check_output_file(json_out, "--json")
    params, used = _memory_parameters(parameters)
    result = to_jsonable(run_paradigm(name_or_file, model, params).to_dict())
    result["parameters"] = used
    if plot is not None:
        _plot(result, plot)
    if json_out == "-":
        typer.echo(json.dumps(result))
    else:
        if json_out is not None:
            text = json.dumps(result, indent=2, allow_nan=False, default=str) + "\n"
            atomic_write_bytes(json_out, text.encode("utf-8"))
        typer.echo(_table_text(result), nl=False)
    failed = [c for c in result["checks"] if not c["passed"]]
    if strict and failed:
        typer.echo(f"error: {len(failed)} of {len(result['checks'])} checks failed "
                   f"(first: {failed[0]['description']})", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``paradigm`` to the command line."""
    app.command("paradigm")(paradigm)
