"""``reconsolidate pk``: ketamine plasma / effect-site concentrations and NMDA occupancy.

Examples::

    reconsolidate pk --list-models
    reconsolidate pk --model domino --weight-kg 70 --regimen examples/regimens/dakwar2020.toml
    reconsolidate pk --model domino --weight-kg 70 --regimen examples/regimens/dakwar2020.toml \\
        --at 2,10,30,52,60,120 --json -
    reconsolidate pk --model kamp --weight-kg 82 --regimen examples/regimens/tci-plasma-350.toml \\
        --plot tci.png
"""

from __future__ import annotations

import io
import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import typer

from reconsolidate.exceptions import ExtrapolationWarning, InputError

__all__ = ["DEFAULT_TIMES_MIN", "pk", "register", "run_pk"]

#: Times shown when ``--at`` is omitted (min after the start of the first administration); the
#: end of every infusion / TCI phase is added, since that is where infusion peaks occur.
DEFAULT_TIMES_MIN: tuple[float, ...] = (0, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240)

#: Windows (min after time 0) of the occupancy integrals in the readable table.
_INTEGRAL_WINDOWS_MIN: tuple[float, ...] = (60.0, 120.0, 240.0)

_PLOT_SUFFIXES = (".png", ".pdf", ".svg")


def _parse_float(text: str | None, option: str, allowed: str) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{option} = {text!r}: not a number; allowed: {allowed}") from None
    if not math.isfinite(value):
        raise InputError(f"{option} = {text!r}: allowed: {allowed}")
    return value


#: Latest --at time: a week after the first dose, far past any ketamine exposure (the exact
#: solution's cost grows with the span of times asked for).
MAX_TIME_MIN = 7 * 24 * 60.0


def _parse_times(text: str) -> np.ndarray:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise InputError(f"--at = {text!r}: expected comma-separated minutes, e.g. 2,10,30")
    out = []
    for p in parts:
        try:
            v = float(p)
        except ValueError:
            raise InputError(
                f"--at = {text!r}: {p!r} is not a number; expected comma-separated minutes"
            ) from None
        if not math.isfinite(v) or v < 0 or v > MAX_TIME_MIN:
            raise InputError(
                f"--at = {text!r}: times must be minutes from 0 to {MAX_TIME_MIN:g} (7 days), "
                f"got {p!r}"
            )
        out.append(v)
    return np.array(out)


def run_pk(
    *,
    model: str,
    weight_kg: float,
    regimen_path: Path,
    times_min: np.ndarray | None = None,
    sex: str | None = None,
    age_years: float | None = None,
    ke0_per_min: float | None = None,
) -> dict[str, Any]:
    """Simulate one patient; return a JSON-ready dict (values exact at ``time_min``)."""
    from reconsolidate.pharmacology import get_model, load_regimen, occupancy_integral, simulate
    from reconsolidate.pharmacology.pd import psychedelic_intensity

    m = get_model(model)
    regimen = load_regimen(regimen_path)
    if times_min is None:
        ends = [x.stop_min for x in regimen.infusion] + [x.stop_min for x in regimen.tci]
        times_min = np.unique(np.array([*DEFAULT_TIMES_MIN, *ends], dtype=float))
    caught: list[str] = []
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always", ExtrapolationWarning)
        res = simulate(m, regimen, weight_kg, times_min, sex=sex, age_years=age_years,
                       ke0_per_min=ke0_per_min)
        # A fine exact grid (every 0.1 min, plus all events) for the peak and the integrals.
        horizon = max(regimen.end_min + 240.0, float(np.max(times_min)), 240.0)
        fine = np.unique(np.concatenate([
            np.arange(0.0, horizon + 1e-9, 0.1), _events(regimen), times_min,
        ]))
        dense = simulate(m, regimen, weight_kg, fine, sex=sex, age_years=age_years,
                         ke0_per_min=ke0_per_min)
    for w in rec:
        if issubclass(w.category, ExtrapolationWarning) and str(w.message) not in caught:
            caught.append(str(w.message))
    if age_years is None and m.age_range_years is not None and m.age_range_years[1] <= 18:
        # a paediatric model run for an adult weight without an age says nothing otherwise
        lo, hi = m.age_range_years
        caught.append(f"model '{m.name}' was developed in children (age {lo:g}-{hi:g} years: "
                      f"{m.range_source}); no --age-years given, so the age range is not "
                      "checked: for an adult choose an adult model (--list-models)")
    if m.analyte != "racemic":
        caught.append(f"model '{m.name}' describes {m.analyte}, not racemic ketamine: a "
                      "racemic regimen's dose is all given as that enantiomer, and the "
                      "occupancy uses its own affinity (trial specs refuse this model)")
    # the peaks: the maximum, timed at the first sample within 0.1% of it (a TCI plateau is
    # reached once, then held: the argmax of a held level lands on a rounding excess later on)
    i_peak = _first_peak(dense.plasma_ng_ml[0])
    i_peak_ce = _first_peak(dense.effect_site_ng_ml[0])
    peak_cp = float(dense.plasma_ng_ml[0].max())
    peak_ce = float(dense.effect_site_ng_ml[0].max())
    integrals = {
        f"0-{int(h)}": float(occupancy_integral(fine, dense.nmda_occupancy, 0.0, h)[0])
        for h in _INTEGRAL_WINDOWS_MIN
    }
    return {
        "model": m.name,
        "model_source": m.describe(),
        "weight_kg": float(weight_kg),
        "sex": sex,
        "age_years": age_years,
        "regimen": regimen.name or str(regimen_path),
        "regimen_file": str(regimen_path),
        "dose_mg": float(res.dose_mg[0]),
        "ke0_per_min": res.ke0_per_min,
        "time_min": [float(t) for t in res.time_min],
        "plasma_ng_ml": [float(v) for v in res.plasma_ng_ml[0]],
        "effect_site_ng_ml": [float(v) for v in res.effect_site_ng_ml[0]],
        "nmda_occupancy": [float(v) for v in res.nmda_occupancy[0]],
        "peak_plasma_ng_ml": peak_cp,
        "peak_plasma_time_min": float(fine[i_peak]),
        "peak_effect_site_ng_ml": peak_ce,
        "peak_effect_site_time_min": float(fine[i_peak_ce]),
        # the trial engine's non-specific ketamine pathway reads this (pharmacology.pd)
        "psychedelic_intensity": float(psychedelic_intensity(np.array([peak_ce]))[0]),
        "occupancy_integral_min": integrals,
        "warnings": caught,
        "_dense": dense,
    }


def _first_peak(c: np.ndarray, rel_tol: float = 1e-3) -> int:
    """Index of the first sample within ``rel_tol`` (0.1%) of the maximum of ``c``."""
    return int(np.argmax(c >= c.max() * (1.0 - rel_tol)))


def _events(regimen: Any) -> np.ndarray:
    ev = [x.start_min for x in regimen.infusion] + [x.stop_min for x in regimen.infusion]
    ev += [x.start_min for x in regimen.tci] + [x.stop_min for x in regimen.tci]
    ev += [b.time_min for b in regimen.bolus]
    return np.array(ev, dtype=float)


def _print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, width=110)
    console.print(f"[bold]{result['regimen']}[/bold] | model {result['model']} | "
                  f"{result['weight_kg']:g} kg | total dose {result['dose_mg']:.1f} mg | "
                  f"ke0 {result['ke0_per_min']:.4g}/min")
    console.print(result["model_source"], style="dim")
    console.print(f"Peak plasma {result['peak_plasma_ng_ml']:.1f} ng/mL (reached at "
                  f"{result['peak_plasma_time_min']:g} min); peak effect site "
                  f"{result['peak_effect_site_ng_ml']:.1f} ng/mL (at "
                  f"{result['peak_effect_site_time_min']:g} min; psychedelic intensity "
                  f"{result['psychedelic_intensity']:.2f}: effect-site peak / 200 ng/mL, at most "
                  "2, an ASSUMPTION after Bowdle 1998)")
    table = Table(title="Concentrations (exact at these times)")
    for col in ("time (min)", "plasma (ng/mL)", "effect site (ng/mL)", "NMDA occupancy"):
        table.add_column(col, justify="right")
    for t, cp, ce, occ in zip(result["time_min"], result["plasma_ng_ml"],
                              result["effect_site_ng_ml"], result["nmda_occupancy"], strict=True):
        table.add_row(f"{t:g}", f"{cp:.1f}", f"{ce:.1f}", f"{occ:.3f}")
    console.print(table)
    integ = Table(title="NMDA occupancy integral after the start (occupancy x min)")
    integ.add_column("window (min)")
    integ.add_column("integral", justify="right")
    integ.add_column("mean occupancy", justify="right")
    for key, val in result["occupancy_integral_min"].items():
        span = float(key.split("-")[1])
        integ.add_row(key, f"{val:.1f}", f"{val / span:.3f}")
    console.print(integ)


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from reconsolidate._io import atomic_write_bytes

    dense = result["_dense"]
    t = dense.time_min
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    ax1.plot(t, dense.plasma_ng_ml[0], label="plasma")
    ax1.plot(t, dense.effect_site_ng_ml[0], label=f"effect site (ke0 {dense.ke0_per_min:.3g}/min)")
    ax1.set_ylabel("ketamine (ng/mL)")
    ax1.legend()
    ax1.set_title(f"{result['regimen']} | {result['model']} | {result['weight_kg']:g} kg")
    ax2.plot(t, dense.nmda_occupancy[0], color="C2")
    ax2.set_ylabel("NMDA occupancy")
    ax2.set_ylim(0, 1)
    ax2.set_xlabel("time (min)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip(".").lower(), dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def _list_models(as_json: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    from reconsolidate.pharmacology import get_model, list_models

    models = [get_model(n) for n in list_models()]
    if as_json:
        typer.echo(json.dumps({"models": [
            {"name": m.name, "title": m.title, "citation": m.citation, "doi": m.doi,
             "pmid": m.pmid, "confidence": m.confidence, "analyte": m.analyte,
             "compartments": m.n_compartments, "weight_scaling": m.weight_scaling,
             "population": m.population, "sampling_site": m.sampling_site,
             "ke0_per_min": m.ke0_per_min, "ke0_source": m.ke0_source,
             "metabolite": m.metabolite} for m in models]}))
        return
    table = Table(title="Ketamine PK models", show_lines=True)
    for col in ("name", "structure", "source", "confidence"):
        table.add_column(col, overflow="fold")
    for m in models:
        struct = f"{m.n_compartments}-cmt {m.analyte}"
        if m.metabolite:
            struct += f" + {m.metabolite}"
        ids = " ".join(x for x in (f"doi:{m.doi}" if m.doi else "", f"PMID {m.pmid}" if m.pmid
                                   else "") if x)
        table.add_row(m.name, struct, f"{m.citation} {ids}", m.confidence)
    Console(file=sys.stdout, width=140).print(table)


def pk(
    list_models_: bool = typer.Option(False, "--list-models", help="List the PK models."),
    model: str | None = typer.Option(None, "--model", help="PK model name (see --list-models)."),
    weight_kg: str | None = typer.Option(None, "--weight-kg", help="Body weight in kg."),
    regimen: str | None = typer.Option(None, "--regimen", help="Regimen TOML file."),
    at: str | None = typer.Option(None, "--at", help="Comma-separated output times (min)."),
    json_out: str | None = typer.Option(None, "--json", help="Write JSON ('-' = stdout)."),
    plot: str | None = typer.Option(None, "--plot", help="Plot file (.png, .pdf or .svg)."),
    sex: str | None = typer.Option(None, "--sex", help="M or F (Sigtermans 2009 CL factor)."),
    age_years: str | None = typer.Option(None, "--age-years", help="Age in years."),
    ke0_per_min: str | None = typer.Option(None, "--ke0-per-min", help="Override ke0 (1/min)."),
) -> None:
    """Ketamine plasma and effect-site concentrations and NMDA occupancy for one patient."""
    if list_models_:
        _list_models(json_out is not None)
        return
    if model is None:
        raise InputError("--model is required; see `reconsolidate pk --list-models`")
    if weight_kg is None:
        raise InputError("--weight-kg is required: a positive body weight in kg")
    if regimen is None:
        raise InputError("--regimen is required: a regimen TOML file (see examples/regimens/)")
    w = _parse_float(weight_kg, "--weight-kg", "a positive body weight in kg")
    if w is None or not 0 < w <= 400:
        raise InputError(
            f"--weight-kg = {weight_kg!r}: allowed: a body weight in kg, 0 < weight <= 400"
        )
    age = _parse_float(age_years, "--age-years", "a number of years between 0 and 120")
    if age is not None and not 0 <= age <= 120:
        raise InputError(f"--age-years = {age_years!r}: allowed: 0 to 120 years")
    ke0 = _parse_float(ke0_per_min, "--ke0-per-min", "a rate constant > 0 per minute")
    if plot is not None and Path(plot).suffix.lower() not in _PLOT_SUFFIXES:
        raise InputError(f"--plot = {plot!r}: allowed file types: {', '.join(_PLOT_SUFFIXES)}")
    from reconsolidate._io import check_output_file

    # output files need an existing directory (a typo must not create a tree), checked first
    if plot is not None:
        check_output_file(plot, "--plot")
    if json_out not in (None, "-"):
        check_output_file(json_out, "--json")
    if sex is not None and sex.strip().upper() not in {"M", "F", "MALE", "FEMALE"}:
        raise InputError(f"--sex = {sex!r}: allowed: M, F")
    times = _parse_times(at) if at is not None else None
    result = run_pk(model=model, weight_kg=w, regimen_path=Path(regimen), times_min=times,
                    sex=sex, age_years=age, ke0_per_min=ke0)
    for msg in result["warnings"]:
        typer.echo(f"warning: {msg}", err=True)
    if plot is not None:
        _plot(result, Path(plot))
    public = {k: v for k, v in result.items() if not k.startswith("_")}
    if json_out is not None:
        text = json.dumps(public)
        if json_out == "-":
            typer.echo(text)
        else:
            from reconsolidate._io import atomic_write_text

            atomic_write_text(json_out, text + "\n")
    if json_out != "-":
        _print_table(public)


def register(app: typer.Typer) -> None:
    """Add ``pk`` to the command line."""
    app.command("pk")(pk)
