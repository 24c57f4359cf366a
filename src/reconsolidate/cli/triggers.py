"""``reconsolidate triggers`` (personal trigger profiles) and ``reconsolidate simulate-diary``."""

from __future__ import annotations

import io
import json
import math
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer

from reconsolidate._io import to_jsonable
from reconsolidate.exceptions import InputError

__all__ = ["register", "run_triggers", "write_synthetic_diary"]


def _fail_lines(exc: InputError) -> typer.Exit:
    """One ``error:`` line per problem on stderr, exit code 2."""
    for line in str(exc).splitlines() or [""]:
        typer.echo(f"error: {line}", err=True)
    return typer.Exit(2)


def run_triggers(
    diary: Path,
    *,
    mapping: Path | None = None,
    participants_file: Path | None = None,
    participant: list[str] | None = None,
    level: float = 0.95,
    top_k: int = 3,
    min_effect_points: float = 5.0,
    min_exposures: int = 5,
    min_own_data_share: float = 0.5,
    residual_variance: str = "per_person",
    simulate: bool = False,
    simulate_options: dict[str, Any] | None = None,
    simulate_out: Path | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Read, fit and summarise (and optionally simulate targeted vs generic retrieval);
    returns the JSON-ready result and the warnings raised."""
    from reconsolidate.triggers import TriggerModel, read_ema, read_participant_list

    known = read_participant_list(participants_file) if participants_file else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = read_ema(diary, mapping=mapping, participants=known)
        model = TriggerModel(
            level=level,
            top_k=top_k,
            min_effect_points=min_effect_points,
            min_exposures=min_exposures,
            min_own_data_share=min_own_data_share,
            residual_variance=residual_variance,  # type: ignore[arg-type]
        )
        profiles = model.fit(d)
        result = profiles.to_dict(participant or None)
        if simulate:
            from reconsolidate.triggers.targeting import compare_retrieval, report_markdown

            opts = dict(simulate_options or {})
            if simulate_out is None:
                result["simulation"] = compare_retrieval(profiles, d, participant or None, **opts)
            else:
                from reconsolidate._io import atomic_dir

                with atomic_dir(simulate_out, kind="retrieval simulation") as tmp:
                    sim = compare_retrieval(
                        profiles, d, participant or None, out_dir=tmp / "runs", **opts
                    )
                    result["simulation"] = sim
                    clean = to_jsonable(result)
                    (tmp / "profiles.json").write_text(
                        json.dumps({k: v for k, v in clean.items() if k != "simulation"},
                                   indent=2) + "\n"
                    )
                    (tmp / "comparison.json").write_text(
                        json.dumps(clean["simulation"], indent=2) + "\n"
                    )
                    (tmp / "report.md").write_text(report_markdown(sim) + "\n")
    msgs = [str(w.message) for w in caught]
    if d.unmapped_tags:
        top = ", ".join(f"{t!r} ({k})" for t, k in list(d.unmapped_tags.items())[:8])
        msgs.append(
            f"{len(d.unmapped_tags)} tag(s) neither mapped to a cue nor ignored: {top}"
        )
    result["source"] = str(diary)
    result["mapping"] = None if mapping is None else str(mapping)
    return to_jsonable(result), msgs


def _print_simulation(sim: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(
        title="simulated targeted vs generic retrieval + ketamine (d = targeted - generic; "
        "combined = triggers + generic cues)",
        title_justify="left",
    )
    cols = (
        "participant", "targeted cues", "PDA %", "dPDA", "PHDD %", "dPHDD", "d drinks/wk %",
        "combined dPDA",
    )
    for col in cols:
        table.add_column(col, justify="left" if col in cols[:2] else "right")
    for pid, r in sim["participants"].items():
        if "skipped" in r:
            table.add_row(pid, f"skipped: {r['skipped']}", "", "", "", "", "", "")
            continue
        t, d = r["arms"]["targeted"], r["difference_targeted_minus_generic"]
        f = lambda v: "-" if v is None else f"{v:+.1f}"  # noqa: E731
        g = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
        table.add_row(
            pid,
            ", ".join(r["targeted_cues"]),
            g(t["percent_days_abstinent"]),
            f(d["percent_days_abstinent"]),
            g(t["percent_heavy_drinking_days"]),
            f(d["percent_heavy_drinking_days"]),
            f(d["drinks_per_week_change_pct"]),
            f(r.get("difference_combined_minus_generic", {}).get("percent_days_abstinent")),
        )
    console.print(table)
    coh = sim.get("cohort_difference_targeted_minus_generic", {})
    if coh.get("n_participants"):
        parts = [
            f"{label} {coh[k]['mean']:+.2f}"
            for k, label in (
                ("percent_days_abstinent", "dPDA"),
                ("percent_heavy_drinking_days", "dPHDD"),
                ("drinks_per_week_change_pct", "d drinks/wk %"),
            )
            if coh.get(k)
        ]
        console.print(
            f"cohort ({coh['n_participants']} participants, mean of targeted - generic): "
            + ", ".join(parts)
        )


def _print_tables(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    level_pct = round(100 * result["level"])
    for pid, prof in result["participants"].items():
        table = Table(
            title=f"participant {pid}: {prof['n_entries']} entries, baseline craving "
            f"{prof['baseline_craving']:.0f}/100",
            title_justify="left",
        )
        table.add_column("#", justify="right")
        table.add_column("cue")
        table.add_column("effect", justify="right")
        table.add_column(f"{level_pct}% interval", justify="right", no_wrap=True)
        table.add_column("drink OR", justify="right")
        table.add_column("n", justify="right")
        table.add_column("note")
        for r, t in enumerate(prof["triggers"], 1):
            note = "RETRIEVAL CUE" if t["recommended"] else ""
            if t["thin_evidence"]:
                note = f"thin evidence: {t['thin_reason']}"
            orr = f"{t['drink_odds_ratio']:.2f}" if "drink_odds_ratio" in t else "-"
            table.add_row(
                str(r),
                t["cue"],
                f"{t['effect']:+.1f}",
                f"[{t['interval'][0]:+.1f}, {t['interval'][1]:+.1f}]",
                orr,
                str(t["exposures"]),
                note,
            )
        console.print(table)
        console.print(
            "effect: craving points (0-100) when the cue is present; drink OR: odds ratio of "
            "drinking before the next entry; n: entries with the cue"
        )
        rec = prof["recommended_retrieval_cues"]
        shown = ", ".join(rec) if rec else f"none ({prof['fallback']})"
        console.print(f"recommended retrieval cues: {shown}")
        console.print()


def write_synthetic_diary(
    out: Path,
    *,
    patients: int,
    weeks: float,
    seed: int = 0,
    prompts_per_day: int = 5,
    vocabulary: str = "cue",
    generator: str = "simulator",
    cohort: str = "das2019",
    learning: bool = False,
    truth_replicates: int = 100,
) -> tuple[Path, Path]:
    """Simulate a diary and write it (CSV, or Parquet for ``.parquet``) and its truth sidecar.

    Both files are written atomically; the sidecar is ``<out stem>.truth.json`` beside it.
    ``generator`` is ``"simulator"`` (memory + behaviour modules,
    :func:`~reconsolidate.triggers.synthetic.simulate_diary_from_simulator`) or
    ``"stand-in"`` (:func:`~reconsolidate.triggers.synthetic.simulate_diary`).
    """
    from reconsolidate._io import atomic_write_bytes, atomic_write_json, atomic_write_text
    from reconsolidate.triggers.synthetic import simulate_diary, simulate_diary_from_simulator

    if generator == "simulator":
        syn = simulate_diary_from_simulator(
            patients, weeks, seed=seed, prompts_per_day=prompts_per_day,
            vocabulary=vocabulary, cohort=cohort, learning=learning,
            truth_replicates=truth_replicates,
        )
    elif generator == "stand-in":
        syn = simulate_diary(
            patients, weeks, seed=seed, prompts_per_day=prompts_per_day, vocabulary=vocabulary
        )
    else:
        raise InputError(f"--generator {generator!r}: allowed simulator, stand-in")
    import pandas as pd

    frame = pd.DataFrame(syn.columns)
    if out.suffix.lower() in {".parquet", ".pq"}:
        import pyarrow as pa
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buf)
        atomic_write_bytes(out, buf.getvalue())
    else:
        atomic_write_text(out, frame.to_csv(index=False, float_format="%.10g"))
    truth_path = out.with_name(out.stem + ".truth.json")
    truth = syn.truth()
    truth["diary"] = out.name
    truth["weeks"] = weeks
    truth["prompts_per_day"] = prompts_per_day
    truth["vocabulary"] = vocabulary
    if generator == "simulator":
        truth["cohort"] = cohort
        truth["learning"] = learning
        truth["truth_replicates"] = truth_replicates
    atomic_write_json(truth_path, truth)
    return out, truth_path


def register(app: typer.Typer) -> None:
    """Add ``triggers`` and ``simulate-diary`` to the command line."""

    @app.command("triggers")
    def triggers(
        diary: Annotated[
            Path, typer.Argument(help="EMA diary, CSV or Parquet (see docs/triggers.md).")
        ],
        mapping: Annotated[
            Path | None,
            typer.Option("--mapping", help="TOML file mapping diary tags to cue classes."),
        ] = None,
        participant: Annotated[
            list[str] | None,
            typer.Option("--participant", help="Show only this participant (repeatable)."),
        ] = None,
        participants: Annotated[
            Path | None,
            typer.Option(
                "--participants",
                help="Known participants (CSV with participant_id, or one per line); "
                "entries of anyone else are errors.",
            ),
        ] = None,
        json_out: Annotated[
            str | None,
            typer.Option("--json", help="Write the JSON result to this file, or - for stdout."),
        ] = None,
        level: Annotated[float, typer.Option("--level", help="Interval probability.")] = 0.95,
        top_k: Annotated[
            int, typer.Option("--top-k", help="At most this many retrieval cues.")
        ] = 3,
        min_effect: Annotated[
            float,
            typer.Option(
                "--min-effect",
                help="Craving points (0-100) a recommended cue's lower bound must exceed.",
            ),
        ] = 5.0,
        min_exposures: Annotated[
            int,
            typer.Option("--min-exposures", help="Fewer exposures flag a cue as thin evidence."),
        ] = 5,
        min_own_share: Annotated[
            float,
            typer.Option(
                "--min-own-share",
                help="A smaller share of precision from the person's own entries flags thin "
                "evidence.",
            ),
        ] = 0.5,
        pooled_residual: Annotated[
            bool,
            typer.Option(
                "--pooled-residual",
                help="One craving noise level for everyone (default: per person, shrunk).",
            ),
        ] = False,
        simulate: Annotated[
            bool,
            typer.Option(
                "--simulate",
                help="Simulate each participant's virtual twins under targeted vs generic "
                "retrieval + ketamine (trial engine).",
            ),
        ] = False,
        out: Annotated[
            Path | None,
            typer.Option(
                "--out",
                help="With --simulate: directory for profiles.json, comparison.json, "
                "report.md and one run directory per participant (written atomically).",
            ),
        ] = None,
        patients_per_arm: Annotated[
            int, typer.Option("--patients-per-arm", help="Virtual twins per arm (--simulate).")
        ] = 200,
        follow_up_days: Annotated[
            int, typer.Option("--follow-up-days", help="Days after the session (--simulate).")
        ] = 90,
        cohort: Annotated[
            str, typer.Option("--cohort", help="Cohort preset of the twins (--simulate).")
        ] = "das2019",
        seed: Annotated[int, typer.Option("--seed", help="Trial seed (--simulate).")] = 0,
    ) -> None:
        """Rank each participant's drinking cues (craving effect, interval, drinking odds)."""
        if out is not None and not simulate:
            raise _fail_lines(InputError("--out is only used with --simulate"))
        # the flags' ranges, named as typed (the fitter's own messages name its parameters)
        flag_problem = (
            f"--level {level}: allowed: 0 < level < 1 (e.g. 0.95)" if not 0 < level < 1 else
            f"--top-k {top_k}: allowed: >= 1" if top_k < 1 else
            f"--min-exposures {min_exposures}: allowed: >= 0" if min_exposures < 0 else
            f"--min-own-share {min_own_share}: allowed: 0 to 1"
            if not 0 <= min_own_share <= 1 else
            f"--min-effect {min_effect}: must be finite" if not math.isfinite(min_effect) else
            None)
        if flag_problem is not None:
            raise _fail_lines(InputError(flag_problem))
        if json_out not in (None, "-"):
            from reconsolidate._io import check_output_file

            check_output_file(json_out, "--json")  # before the work: a typo creates nothing
        try:
            result, msgs = run_triggers(
                diary,
                mapping=mapping,
                participants_file=participants,
                participant=participant,
                level=level,
                top_k=top_k,
                min_effect_points=min_effect,
                min_exposures=min_exposures,
                min_own_data_share=min_own_share,
                residual_variance="pooled" if pooled_residual else "per_person",
                simulate=simulate,
                simulate_options={
                    "patients_per_arm": patients_per_arm,
                    "follow_up_days": follow_up_days,
                    "cohort": cohort,
                    "seed": seed,
                },
                simulate_out=out,
            )
        except InputError as exc:
            raise _fail_lines(exc) from None
        for m in msgs:
            typer.echo(f"warning: {m}", err=True)
        if json_out == "-":
            typer.echo(json.dumps(result, allow_nan=False))
            return
        if json_out is not None:
            from reconsolidate._io import atomic_write_json

            atomic_write_json(json_out, result)
        _print_tables(result)
        if "simulation" in result:
            _print_simulation(result["simulation"])

    @app.command("simulate-diary")
    def simulate_diary_cmd(
        patients: Annotated[int, typer.Option("--patients", help="Number of participants.")],
        weeks: Annotated[float, typer.Option("--weeks", help="Diary length in weeks.")],
        out: Annotated[Path, typer.Option("--out", help="Output diary (.csv or .parquet).")],
        seed: Annotated[int, typer.Option("--seed", help="Random seed (non-negative).")] = 0,
        prompts_per_day: Annotated[
            int, typer.Option("--prompts-per-day", help="EMA prompts a day (1-5).")
        ] = 5,
        vocabulary: Annotated[
            str,
            typer.Option(
                "--vocabulary",
                help="'cue': tags are cue class names; 'natural': everyday tags "
                "(read with examples/ema/mapping.toml).",
            ),
        ] = "cue",
        generator: Annotated[
            str,
            typer.Option(
                "--generator",
                help="'simulator': memory + behaviour modules of the trial engine; "
                "'stand-in': the simple additive generative model.",
            ),
        ] = "simulator",
        cohort: Annotated[
            str, typer.Option("--cohort", help="Cohort preset (simulator generator).")
        ] = "das2019",
        learning: Annotated[
            bool,
            typer.Option(
                "--learning/--no-learning",
                help="Let cue memories learn during the diary (simulator generator).",
            ),
        ] = False,
        truth_replicates: Annotated[
            int,
            typer.Option(
                "--truth-replicates",
                help="Replicate diaries per person for the drinking truth (simulator "
                "generator; time grows with it, memory stays bounded).",
            ),
        ] = 100,
    ) -> None:
        """Write a synthetic EMA diary with planted per-person cue effects (+ .truth.json)."""
        from reconsolidate._io import check_output_file
        from reconsolidate.triggers.synthetic import check_diary_args

        check_output_file(out, "--out")
        # the generators' own check, naming the flags the user typed (not n_patients)
        check_diary_args(patients, weeks, prompts_per_day, 0.0, seed, vocabulary, flags=True)
        if truth_replicates < 1:
            raise InputError(f"--truth-replicates {truth_replicates}: must be >= 1")
        try:
            path, truth = write_synthetic_diary(
                out,
                patients=patients,
                weeks=weeks,
                seed=seed,
                prompts_per_day=prompts_per_day,
                vocabulary=vocabulary,
                generator=generator,
                cohort=cohort,
                learning=learning,
                truth_replicates=truth_replicates,
            )
        except InputError as exc:
            raise _fail_lines(exc) from None
        typer.echo(f"wrote {path} and {truth} (planted cue effects)")
