"""Figures of the run report, rendered with matplotlib (Agg) to inline base64 PNG.

Each function takes plain arrays and returns a ``data:image/png;base64,...`` URI, so the HTML
needs no network and no external file.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np

__all__ = [
    "km_figure",
    "memory_figure",
    "pk_figure",
    "png_data_uri",
    "weekly_drinking_figure",
]

_COLORS = ("#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#7b4b94", "#00798c", "#6c757d")


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def png_data_uri(fig: Any) -> str:
    """Render a matplotlib figure to a PNG data URI and close it."""
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def pk_figure(
    time_min: np.ndarray,
    plasma_ng_ml: np.ndarray,
    occupancy: np.ndarray,
    *,
    retrieval_end_min: float | None,
    window_stop_min: float,
    lability_tau_min: float,
    title: str,
) -> str:
    """Plasma ketamine and NMDA occupancy of a typical patient, reconsolidation window shaded.

    Times are minutes from the start of the infusion; the window runs from the end of the
    retrieval to ``window_stop_min``; the darker band is the first lability time constant (where
    most of the restabilisation weight lies). ``retrieval_end_min`` None: a session without
    retrieval, no window drawn.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.2, 3.6))
    if retrieval_end_min is not None:
        ax.axvspan(retrieval_end_min, window_stop_min, color="#f4d35e", alpha=0.25,
                   label="reconsolidation window (6 h after retrieval)")
        ax.axvspan(retrieval_end_min, retrieval_end_min + lability_tau_min, color="#ee964b",
                   alpha=0.3, label=f"first lability time constant ({lability_tau_min:g} min)")
    ax.plot(time_min, plasma_ng_ml, color=_COLORS[0], lw=2, label="plasma ketamine")
    ax.set_xlabel("time from start of infusion (min)")
    ax.set_ylabel("plasma ketamine (ng/mL)", color=_COLORS[0])
    ax2 = ax.twinx()
    ax2.plot(time_min, occupancy, color=_COLORS[1], lw=2, ls="--", label="NMDA occupancy")
    ax2.set_ylabel("NMDA receptor occupancy (0-1)", color=_COLORS[1])
    ax2.set_ylim(0, max(0.05, float(np.nanmax(occupancy)) * 1.15))
    if retrieval_end_min is not None:
        ax.axvline(retrieval_end_min, color="k", lw=1, ls=":")
    ax.set_title(title, fontsize=10)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper right")
    return png_data_uri(fig)


def weekly_drinking_figure(
    weeks: np.ndarray, series: dict[str, dict[str, np.ndarray]], *, ylabel: str,
    visit_weeks: list[float] | None = None,
) -> str:
    """Mean weekly drinking by arm with 95% CI (dark band) and interquartile range (light band).

    ``series[arm]`` has arrays ``mean``, ``ci_low``, ``ci_high``, ``q25``, ``q75`` (reported)
    and optionally ``true`` (drawn dashed) over ``weeks`` (study weeks; week 0 starts on day 0).
    ``visit_weeks``: assessment visits, marked by grey ticks at the top.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.2, 3.6))
    for k, (arm, s) in enumerate(series.items()):
        c = _COLORS[k % len(_COLORS)]
        ax.fill_between(weeks, s["q25"], s["q75"], color=c, alpha=0.08, lw=0)
        ax.fill_between(weeks, s["ci_low"], s["ci_high"], color=c, alpha=0.3, lw=0)
        ax.plot(weeks, s["mean"], color=c, lw=2, label=f"{arm} (reported)")
        if "true" in s:
            ax.plot(weeks, s["true"], color=c, lw=1.2, ls="--", alpha=0.9,
                    label=f"{arm} (true)")
    for k, w in enumerate(visit_weeks or []):
        ax.axvline(w, ymin=0.94, ymax=1.0, color="#888", lw=1.5,
                   label="TLFB visit" if k == 0 else None)
    ax.axvline(0, color="k", lw=1, ls=":")
    ax.set_xlabel("study week (week 0 starts at the first treatment session)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("mean (line), 95% CI of the mean (dark band), interquartile range (light band)",
                 fontsize=9)
    return png_data_uri(fig)


def km_figure(curves: dict[str, tuple[Any, np.ndarray, np.ndarray]], *, xlabel: str,
              end_days: float | None = None) -> str:
    """Kaplan-Meier step curves with censoring marks and the numbers at risk.

    ``curves[arm] = (km, durations_days, events)``: the arm's
    :class:`~reconsolidate.endpoints.KaplanMeier` and the durations and event flags it was
    estimated from (NaN durations: not scored). Each curve runs flat from its last event to its
    last follow-up time; a "|" marks each censoring time (a patient followed that long without
    the event); the numbers still at risk (durations >= t) are printed below the axis at its
    ticks. ``end_days``: the x-axis ends there (the follow-up).
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.2, 3.6))
    rows = []
    for k, (arm, (km, dur, ev)) in enumerate(curves.items()):
        c = _COLORS[k % len(_COLORS)]
        d = np.asarray(dur, float)
        e = np.asarray(ev, bool)
        ok = ~np.isnan(d)
        d, e = d[ok], e[ok]
        last = float(d.max()) if d.size else 0.0
        tt = np.concatenate([[0.0], np.asarray(km.time_days, float), [last]])
        ss = np.concatenate([[1.0], np.asarray(km.survival, float),
                             [km.survival[-1] if len(km.survival) else 1.0]])
        ax.step(tt, ss, where="post", color=c, lw=2, label=arm)
        cens = np.unique(d[~e])
        if cens.size:
            ax.plot(cens, km.survival_at(cens), ls="none", marker="|", ms=7, mew=1.2, color=c)
        rows.append((arm, c, np.sort(d)))
    ax.set_ylim(0, 1.02)
    if end_days is not None:
        ax.set_xlim(0, end_days)
    ax.set_ylabel("free of heavy drinking (Kaplan-Meier)")
    if curves:
        ax.legend(fontsize=8)
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        ax.set_xlabel(xlabel + "  (| censored; numbers at risk below)")
        ax.annotate("at risk", xy=(0, 0), xycoords="axes fraction", xytext=(-8, -40),
                    textcoords="offset points", ha="right", fontsize=7)
        for k, (_arm, c, ds) in enumerate(rows):
            for t in ticks:
                n = int(ds.size - np.searchsorted(ds, t, side="left"))
                ax.annotate(str(n), xy=(t, 0), xycoords=("data", "axes fraction"),
                            xytext=(0, -40 - 10 * k), textcoords="offset points", ha="center",
                            fontsize=7, color=c)
    else:  # e.g. no reported follow-up day (every visit missed): say so instead of a blank
        ax.set_xlabel(xlabel)
        ax.text(0.5, 0.5, "no arm has a reported follow-up day", ha="center", va="center",
                transform=ax.transAxes)
    return png_data_uri(fig)


def memory_figure(
    days: dict[str, np.ndarray],
    panels: list[tuple[str, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]],
) -> str:
    """Per-arm memory time courses, one stacked panel per measure, day 0 marked.

    Parameters
    ----------
    days
        ``days[arm]``: study days of the arm's snapshots (0 = first treatment session).
    panels
        ``(ylabel, {arm: (mean, band_low, band_high)})`` per panel, arrays over ``days[arm]``;
        the band is drawn shaded (NaN leaves a gap).
    """
    plt = _plt()
    fig, axes = plt.subplots(len(panels), 1, figsize=(7.2, 2.6 * len(panels) + 0.6),
                             sharex=True, squeeze=False)
    for ax, (ylabel, series) in zip(axes[:, 0], panels, strict=True):
        for k, (arm, (mean, low, high)) in enumerate(series.items()):
            c = _COLORS[k % len(_COLORS)]
            ax.fill_between(days[arm], low, high, color=c, alpha=0.25, lw=0)
            ax.plot(days[arm], mean, color=c, lw=2, label=arm,
                    marker="o" if len(days[arm]) <= 12 else None, ms=3)
        ax.axvline(0, color="k", lw=1, ls=":", label="day 0: first treatment session")
        ax.set_ylabel(ylabel)
    axes[0, 0].legend(fontsize=8)
    axes[0, 0].set_title("mean over patients (line), 95% CI of the mean (band)", fontsize=9)
    axes[-1, 0].set_xlabel("study day")
    return png_data_uri(fig)
