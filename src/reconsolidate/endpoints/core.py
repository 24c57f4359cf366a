"""Per-participant drinking endpoints over a (participants x days) drinks matrix.

Everything here works on plain arrays so that simulated trials and real Timeline Followback (TLFB)
diaries are scored by exactly the same code:

- ``drinks_per_day``: shape ``(N, D)``, US standard drinks (14 g ethanol) per day, ``NaN`` for a
  missing day; column 0 is the first day of the analysis window.
- ``is_female``: shape ``(N,)`` bool; selects the sex-specific heavy-day and WHO thresholds.

The fused kernel (:func:`compute_endpoints`, numba, one pass over the matrix, parallel over
participants) is the fast path; ``backend="numpy"`` is an independent array implementation used
as its oracle in the tests.

Missing data are handled explicitly through :class:`MissingDataHandling` (intent-to-treat with
missing days counted as heavy / abstinent / a fixed amount / excluded from the denominators, or
responders-only), as abstcal does for smoking (software-anchors.md section 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from reconsolidate._threads import run_split
from reconsolidate.exceptions import InputError

__all__ = [
    "ABSTINENT_LAST_MIN_FRACTION",
    "GRAMS_ETHANOL_PER_UK_UNIT",
    "GRAMS_ETHANOL_PER_US_STANDARD_DRINK",
    "HEAVY_DRINKS_MEN",
    "HEAVY_DRINKS_WOMEN",
    "WHO_LEVEL_NAMES",
    "WHO_REDUCTION_MIN_FRACTION",
    "WHO_THRESHOLDS_G_PER_DAY_MEN",
    "WHO_THRESHOLDS_G_PER_DAY_WOMEN",
    "MissingDataHandling",
    "ParticipantEndpoints",
    "compute_endpoints",
    "default_abstinent_last_min_days",
    "drinks_per_drinking_day",
    "heavy_threshold_drinks",
    "percent_days_abstinent",
    "percent_heavy_drinking_days",
    "who_risk_level",
]

# --- conventions (clinical-evidence.md section 6) ---------------------------------------------
#: US standard drink, grams of ethanol (NIAAA; clinical-evidence.md section 6 [S]; CONTRACTS.md).
GRAMS_ETHANOL_PER_US_STANDARD_DRINK = 14.0
#: UK unit, grams of ethanol (10 mL ethanol; clinical-evidence.md section 6 [U]; CONTRACTS.md).
GRAMS_ETHANOL_PER_UK_UNIT = 8.0
#: Heavy drinking day, men: >= 5 US standard drinks (> 4), FDA 2015 draft guidance "Alcoholism:
#: Developing Drugs for Treatment" and NIAAA; Dakwar 2020 uses the same
#: (clinical-evidence.md section 6 [P]).
HEAVY_DRINKS_MEN = 5.0
#: Heavy drinking day, women: >= 4 US standard drinks (> 3), same sources.
HEAVY_DRINKS_WOMEN = 4.0
#: WHO risk drinking levels, men: upper bounds of low / medium / high in grams of ethanol per day
#: (low 0-40, medium 41-60, high 61-100, very high >= 101), WHO 2000 International Guide as
#: tabulated in BMJ Open (clinical-evidence.md section 6 [P]). A level is the number of bounds
#: exceeded, so 40.5 g/day is "medium".
WHO_THRESHOLDS_G_PER_DAY_MEN = (40.0, 60.0, 100.0)
#: WHO risk drinking levels, women (low 0-20, medium 21-40, high 41-60, very high >= 61), same
#: source.
WHO_THRESHOLDS_G_PER_DAY_WOMEN = (20.0, 40.0, 60.0)
#: Names of WHO levels 0..3 (abstinence falls in "low", as in the table's 0-40 / 0-20 g rows).
WHO_LEVEL_NAMES = ("low", "medium", "high", "very_high")

#: Default share of the last K window days that must be counted (observed, or filled by the
#: missing-data handling) for a participant to be classified on "abstinent in the last K days":
#: at least half, rounded up (14 of 28 days, 7 of 14). ASSUMPTION (a design choice, no published
#: rule found): below half the window the classification would rest more on unobserved days than
#: on observed ones (one reported day among 28 would make a participant "abstinent"). Under ITT
#: with missing days filled (heavy / abstinent / a number of drinks) every day is counted, so the
#: rule only matters when missing days are excluded. Set ``abstinent_last_min_days`` to change it.
ABSTINENT_LAST_MIN_FRACTION = 0.5
#: Share of the window's days (rounded up) that must carry an amount for the WHO-level reduction
#: responder endpoints to be assessed. ASSUMPTION, the same design choice as
#: :data:`ABSTINENT_LAST_MIN_FRACTION`: below half, the level would rest more on unobserved than
#: on observed days (one reported dry day and a dropout would be a two-level responder). Below
#: it a participant is a non-responder under ``missing_days = "heavy"`` (missing = failure, as
#: for PSNHDD) and not assessable (NaN) otherwise.
WHO_REDUCTION_MIN_FRACTION = 0.5


def default_abstinent_last_min_days(k_days: int) -> int:
    """Counted days a participant needs among the last ``k_days`` to be assessable for
    "abstinent in the last K days" by default: :data:`ABSTINENT_LAST_MIN_FRACTION` of K,
    rounded up, at least 1."""
    return max(1, math.ceil(ABSTINENT_LAST_MIN_FRACTION * k_days))

_MODE_EXCLUDE, _MODE_FILL_HEAVY, _MODE_FILL_VALUE = 0, 1, 2


@dataclass(frozen=True)
class MissingDataHandling:
    """How missing diary days enter the endpoints; always explicit.

    Parameters
    ----------
    population
        ``"itt"`` (intent-to-treat: every participant is scored, missing days are handled as
        ``missing_days`` says) or ``"responders_only"`` (only participants with no missing day in
        the window are scored; the others get ``NaN`` and ``included == False``), as abstcal's
        ``mode="itt"`` / ``"ro"``.
    missing_days
        Under ITT: ``"heavy"`` (a missing day is classified as a heavy drinking day: the
        conservative FDA-style convention, and "relapse or dropout" for time-to-event as in
        Dakwar 2019/2020; it classifies the day and invents no amount, so the amount endpoints
        (drinks per drinking day, drinks per week, total drinks, grams per day, WHO risk level
        and the changes from baseline) are over the observed days only: the project's
        convention), ``"abstinent"`` (counts as 0 drinks), a number of US standard drinks
        (>= 0; counted as that amount), or ``"exclude"`` (missing days leave every denominator;
        rates are over observed days; time-to-event is censored at the last observed day).
    """

    population: Literal["itt", "responders_only"] = "itt"
    missing_days: str | float = "heavy"

    def __post_init__(self) -> None:
        if self.population not in ("itt", "responders_only"):
            raise InputError(
                f"population = {self.population!r}: allowed 'itt' or 'responders_only'"
            )
        m = self.missing_days
        if isinstance(m, str):
            if m not in ("heavy", "abstinent", "exclude"):
                raise InputError(
                    f"missing_days = {m!r}: allowed 'heavy', 'abstinent', 'exclude' or a number "
                    "of standard drinks >= 0"
                )
        elif isinstance(m, bool) or not (isinstance(m, int | float) and np.isfinite(m)
                                         and m >= 0):
            raise InputError(f"missing_days = {m!r}: a number of drinks must be finite and >= 0")

    @property
    def label(self) -> str:
        """Short description, recorded in outputs (e.g. ``"itt, missing days = heavy"``)."""
        if self.population == "responders_only":
            return "responders_only (participants with a complete window)"
        return f"itt, missing days = {self.missing_days}"

    @property
    def amount_basis(self) -> str:
        """The days the amount endpoints are computed over, in words (recorded in outputs)."""
        m = self.missing_days
        if self.population == "responders_only":
            return "observed days (complete windows)"
        if m == "heavy":
            return "observed days (a missing day is classified as heavy, with no amount)"
        if m == "exclude":
            return "observed days"
        return f"counted days (a missing day = {0.0 if m == 'abstinent' else float(m):g} drinks)"

    def _mode(self) -> tuple[int, float]:
        m = self.missing_days
        if m == "exclude":
            return _MODE_EXCLUDE, 0.0
        if m == "heavy":
            return _MODE_FILL_HEAVY, 0.0
        if m == "abstinent":
            return _MODE_FILL_VALUE, 0.0
        return _MODE_FILL_VALUE, float(m)


@dataclass(frozen=True)
class ParticipantEndpoints:
    """Per-participant endpoints over one analysis window; every array has shape ``(N,)``.

    Rates are ``NaN`` where undefined (no counted day, or excluded under responders-only).
    Binary endpoints are float 1.0 / 0.0 / ``NaN``. Times are in days from the window start:
    an event on the first window day has time 1; a censored participant's time is the number of
    days followed (last counted day + 1).
    """

    n_days_window: int
    included: NDArray[np.bool_]  # scored (False = excluded: responders-only, or nothing counted)
    n_days_observed: NDArray[np.int64]  # days with a diary value (reported, imputed or overridden)
    n_days_missing: NDArray[np.int64]
    n_days_counted: NDArray[np.int64]  # days in the denominators after missing-day handling
    percent_days_abstinent: NDArray[np.float64]  # % of counted days with 0 drinks
    percent_drinking_days: NDArray[np.float64]  # % of counted days with > 0 drinks
    percent_heavy_drinking_days: NDArray[np.float64]  # % of counted days at/above the threshold
    # amounts are over the days with an amount: counted days, less the missing days that
    # missing_days = "heavy" classifies as heavy (they have no amount)
    drinks_per_drinking_day: NDArray[np.float64]  # US standard drinks / drinking day
    drinks_per_week: NDArray[np.float64]  # US standard drinks / 7 days
    total_drinks: NDArray[np.float64]  # US standard drinks
    grams_per_day: NDArray[np.float64]  # mean g ethanol / day
    who_risk_level: NDArray[np.float64]  # 0 low, 1 medium, 2 high, 3 very high
    no_heavy_drinking_days: NDArray[np.float64]  # PSNHDD responder after the grace period
    # no drinking day in the last K window days; NaN = not assessable (fewer than
    # settings["abstinent_last_min_days"] counted days there) or not scored
    abstinent_last_days: NDArray[np.float64]
    days_to_first_drink: NDArray[np.float64]
    first_drink_observed: NDArray[np.bool_]  # event indicator (False = censored)
    days_to_first_heavy_day: NDArray[np.float64]
    first_heavy_day_observed: NDArray[np.bool_]
    baseline_drinks_per_week: NDArray[np.float64]  # NaN when no baseline was given
    change_drinks_per_week: NDArray[np.float64]  # window minus baseline
    baseline_who_risk_level: NDArray[np.float64]
    who_level_reduction: NDArray[np.float64]  # baseline level minus window level
    who_reduction_1_level: NDArray[np.float64]  # 1.0 if reduced by >= 1 level
    who_reduction_2_levels: NDArray[np.float64]  # 1.0 if reduced by >= 2 levels
    settings: dict = field(default_factory=dict)  # thresholds, handling, grace, K (for outputs)

    @property
    def n(self) -> int:
        """Number of participants."""
        return int(self.included.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """Every per-participant array by name (for tables)."""
        return {name: getattr(self, name) for name in self.arrays_fields()}

    @classmethod
    def arrays_fields(cls) -> list[str]:
        """The names of the per-participant arrays (:meth:`arrays`), in field order."""
        return [f.name for f in fields(cls) if f.name not in ("n_days_window", "settings")]

    @classmethod
    def from_columns(cls, columns: Any, source: str = "the table") -> ParticipantEndpoints:
        """The endpoints held as columns of a table (a trial's ``outcomes.parquet`` as a
        DataFrame, or a dict of arrays), one per field of :meth:`arrays`.

        Raises
        ------
        InputError
            When ``columns`` lacks an endpoint column (naming ``source``).
        """
        names = cls.arrays_fields()
        missing = [f for f in names if f not in columns]
        if missing:
            raise InputError(f"{source} lacks endpoint columns: {', '.join(missing[:5])}")
        return cls(n_days_window=0, **{f: np.asarray(columns[f]) for f in names})

    def subset(self, mask: ArrayLike) -> ParticipantEndpoints:
        """The endpoints of the participants selected by a boolean mask or index array."""
        sel = np.asarray(mask)
        kw = {name: arr[sel] for name, arr in self.arrays().items()}
        return ParticipantEndpoints(
            n_days_window=self.n_days_window, settings=dict(self.settings), **kw
        )


def heavy_threshold_drinks(
    is_female: ArrayLike,
    *,
    heavy_drinks_men: float = HEAVY_DRINKS_MEN,
    heavy_drinks_women: float = HEAVY_DRINKS_WOMEN,
) -> NDArray[np.float64]:
    """Per-participant heavy-drinking-day threshold in US standard drinks (a day is heavy at >=).

    Parameters
    ----------
    is_female
        Shape ``(N,)`` bool.
    heavy_drinks_men, heavy_drinks_women
        Thresholds, US standard drinks per day (defaults: 5 and 4, FDA 2015 / NIAAA).
    """
    for name, v in (("heavy_drinks_men", heavy_drinks_men), ("heavy_drinks_women",
                                                            heavy_drinks_women)):
        if not (np.isfinite(v) and v > 0):
            raise InputError(f"{name} = {v!r}: must be a finite number of drinks > 0")
    fem = np.asarray(is_female, dtype=bool)
    return np.where(fem, float(heavy_drinks_women), float(heavy_drinks_men))


#: Matrices with at least this many cells are split over threads by default
#: (:func:`_row_counts_threaded`); smaller ones (e.g. the trial engine's chunks) run on the
#: calling thread: threads do not pay off on small inputs.
PARALLEL_MIN_CELLS = 2_000_000


@numba.njit(cache=True, nogil=True)
def _row_counts_kernel(x, thr, mode, fill_value, grace_days, last_k):  # pragma: no cover (jit)
    n, d = x.shape
    counted = np.zeros(n, np.int64)
    missing = np.zeros(n, np.int64)
    drinking = np.zeros(n, np.int64)
    heavy = np.zeros(n, np.int64)
    total = np.zeros(n, np.float64)
    amount_days = np.zeros(n, np.int64)
    amount_drinking = np.zeros(n, np.int64)
    first_drink = np.full(n, -1, np.int64)
    first_heavy = np.full(n, -1, np.int64)
    last_counted = np.full(n, -1, np.int64)
    heavy_after_grace = np.zeros(n, np.int64)
    counted_after_grace = np.zeros(n, np.int64)
    drank_last = np.zeros(n, np.int64)
    counted_last = np.zeros(n, np.int64)
    invalid = np.zeros(n, np.int64)
    start_last = d - last_k
    for i in range(n):
        t = thr[i]
        c = 0
        m = 0
        dr = 0
        hv = 0
        tot = 0.0
        ad = 0
        adr = 0
        fd = -1
        fh = -1
        lc = -1
        hag = 0
        cag = 0
        dl = 0
        cl = 0
        bad = 0
        for j in range(d):
            v = np.float64(x[i, j])
            amount = True  # the day's amount enters the amount endpoints
            if v != v:  # NaN: missing day
                m += 1
                if mode == 0:
                    continue
                if mode == 1:
                    v = t  # classified as a heavy day; no amount is invented
                    amount = False
                else:
                    v = fill_value
            elif v < 0.0 or v == np.inf:
                bad += 1
                continue
            c += 1
            if amount:
                ad += 1
                tot += v
                if v > 0.0:
                    adr += 1
            lc = j
            if j >= grace_days:
                cag += 1
            if j >= start_last:
                cl += 1
            if v > 0.0:
                dr += 1
                if fd < 0:
                    fd = j
                if j >= start_last:
                    dl += 1
                if v >= t:
                    hv += 1
                    if fh < 0:
                        fh = j
                    if j >= grace_days:
                        hag += 1
        counted[i] = c
        missing[i] = m
        drinking[i] = dr
        heavy[i] = hv
        total[i] = tot
        amount_days[i] = ad
        amount_drinking[i] = adr
        first_drink[i] = fd
        first_heavy[i] = fh
        last_counted[i] = lc
        heavy_after_grace[i] = hag
        counted_after_grace[i] = cag
        drank_last[i] = dl
        counted_last[i] = cl
        invalid[i] = bad
    return (counted, missing, drinking, heavy, total, first_drink, first_heavy, last_counted,
            heavy_after_grace, counted_after_grace, drank_last, counted_last, invalid,
            amount_days, amount_drinking)


def _row_counts_threaded(x, thr, mode, fill_value, grace_days, last_k):
    """:func:`_row_counts_kernel` on row blocks split over threads
    (:func:`reconsolidate._threads.run_split`); the same results for any split (rows are
    independent)."""
    parts = run_split(lambda lo, hi: _row_counts_kernel(x[lo:hi], thr[lo:hi], mode, fill_value,
                                                        grace_days, last_k),
                      x.shape[0], "endpoints")
    if len(parts) == 1:
        return parts[0]
    return tuple(np.concatenate(col) for col in zip(*parts, strict=True))


def _row_counts_numpy(x, thr, mode, fill_value, grace_days, last_k):
    """Array implementation of :func:`_row_counts_kernel` (the oracle of the fast path)."""
    _n, d = x.shape
    x = x.astype(np.float64)
    miss = np.isnan(x)
    invalid = (~miss) & ((x < 0) | np.isposinf(x))
    if mode == _MODE_EXCLUDE:
        v = np.where(miss, np.nan, x)
    elif mode == _MODE_FILL_HEAVY:
        v = np.where(miss, thr[:, None], x)
    else:
        v = np.where(miss, fill_value, x)
    v = np.where(invalid, np.nan, v)
    cnt = ~np.isnan(v)
    vv = np.where(cnt, v, 0.0)
    drink = cnt & (vv > 0)
    hv = drink & (vv >= thr[:, None])
    # amounts: a day filled as heavy is classified only, its amount is not counted
    amt = cnt & ~miss if mode == _MODE_FILL_HEAVY else cnt
    va = np.where(amt, vv, 0.0)
    cols = np.arange(d)

    def first(mask):
        return np.where(mask.any(axis=1), mask.argmax(axis=1), -1).astype(np.int64)

    last_counted = np.where(cnt.any(axis=1), d - 1 - cnt[:, ::-1].argmax(axis=1), -1)
    after = cols >= grace_days
    lastk = cols >= d - last_k
    return (
        cnt.sum(1).astype(np.int64), miss.sum(1).astype(np.int64),
        drink.sum(1).astype(np.int64), hv.sum(1).astype(np.int64), va.sum(1),
        first(drink), first(hv), last_counted.astype(np.int64),
        (hv & after).sum(1).astype(np.int64), (cnt & after).sum(1).astype(np.int64),
        (drink & lastk).sum(1).astype(np.int64), (cnt & lastk).sum(1).astype(np.int64),
        invalid.sum(1).astype(np.int64),
        amt.sum(1).astype(np.int64), (amt & (va > 0)).sum(1).astype(np.int64),
    )


def who_risk_level(
    grams_per_day: ArrayLike,
    is_female: ArrayLike,
) -> NDArray[np.float64]:
    """WHO risk drinking level (0 low, 1 medium, 2 high, 3 very high) from mean g ethanol/day.

    The level is the number of sex-specific bounds exceeded (men 40/60/100 g, women 20/40/60 g;
    WHO 2000 via BMJ Open, clinical-evidence.md section 6). ``NaN`` in gives ``NaN`` out.

    ASSUMPTION: the input is mean grams per calendar day over the window (total grams / days with
    an amount), as in the FDA-qualified WHO-level endpoint of Witkiewitz et al. (average daily
    consumption) [mem: not checked against the paper text]; clinical-evidence.md's table header
    says "per drinking day": pass ``grams per drinking day`` here if that definition is wanted.
    """
    g = np.asarray(grams_per_day, dtype=np.float64)
    fem = np.asarray(is_female, dtype=bool)
    tm = np.asarray(WHO_THRESHOLDS_G_PER_DAY_MEN)
    tw = np.asarray(WHO_THRESHOLDS_G_PER_DAY_WOMEN)
    b = np.where(fem[..., None], tw, tm)
    level = (g[..., None] > b).sum(axis=-1).astype(np.float64)
    return np.where(np.isnan(g), np.nan, level)


def compute_endpoints(
    drinks_per_day: ArrayLike,
    is_female: ArrayLike,
    *,
    handling: MissingDataHandling | None = None,
    heavy_drinks_men: float = HEAVY_DRINKS_MEN,
    heavy_drinks_women: float = HEAVY_DRINKS_WOMEN,
    grace_days: int = 0,
    abstinent_last_days: int = 28,
    abstinent_last_min_days: int | None = None,
    baseline_drinks_per_week: ArrayLike | None = None,
    grams_per_drink: float = GRAMS_ETHANOL_PER_US_STANDARD_DRINK,
    sex_known: ArrayLike | None = None,
    backend: Literal["numba", "numpy"] = "numba",
    parallel: bool | None = None,
) -> ParticipantEndpoints:
    """Every per-participant endpoint over one analysis window in one pass.

    Parameters
    ----------
    drinks_per_day
        Shape ``(N, D)``: US standard drinks per day (float32 or float64), ``NaN`` = missing day;
        column 0 is the first window day. Negative or infinite values are an error.
    is_female
        Shape ``(N,)`` bool.
    handling
        Missing-data handling; default :class:`MissingDataHandling` ``()`` = ITT with missing days
        classified as heavy drinking days (days abstinent / drinking / heavy, the responder
        endpoints, times to first drink / heavy day), while the amount endpoints
        (``drinks_per_drinking_day``, ``drinks_per_week``, ``total_drinks``, ``grams_per_day``,
        ``who_risk_level``, ``change_drinks_per_week`` and the WHO reductions) are over the
        observed days only (``NaN`` with none): no amount is invented for a missing day.
    heavy_drinks_men, heavy_drinks_women
        Heavy-drinking-day thresholds, US standard drinks/day (a day is heavy at >= threshold).
    grace_days
        Grace period for the "no heavy drinking days" responder endpoint (PSNHDD): heavy days on
        window days ``0 .. grace_days-1`` are ignored. Falk et al. 2010 recommend 1-2 months
        (clinical-evidence.md section 6 [P]); default 0 (no grace).
    abstinent_last_days
        K for "abstinent in the last K days of the window" (clipped to the window length).
        Default 28 days: the "last 4 weeks of treatment" of Falk/Witkiewitz et al. 2019 JAMA
        Psychiatry (clinical-evidence.md section 6 [P]).
    abstinent_last_min_days
        Fewest counted days (observed, or filled by the missing-data handling) among those last
        K days for a participant to be classified; below it the participant is not assessable
        (``NaN``, left out of the denominator), whatever the counted days show. Default ``None``
        = :data:`ABSTINENT_LAST_MIN_FRACTION` of K rounded up (14 of 28 days); must lie in
        ``1 .. K`` (K after clipping to the window), days.
    baseline_drinks_per_week
        Shape ``(N,)``, US standard drinks/week before treatment (``NaN`` = unknown); enables the
        change from baseline and the WHO-level reductions.
    grams_per_drink
        Grams of ethanol per unit of ``drinks_per_day`` (14 = US standard drink).
    sex_known
        Shape ``(N,)`` bool or None (all known). Participants with unknown sex get ``NaN`` WHO
        levels; they are allowed only when the two heavy thresholds are equal.
    backend
        ``"numba"`` (fused kernel) or ``"numpy"`` (reference implementation).
    parallel
        numba backend only: run row blocks on ``numba.get_num_threads()`` threads. Default:
        only for matrices of at least :data:`PARALLEL_MIN_CELLS` cells.

    Returns
    -------
    ParticipantEndpoints
    """
    handling = MissingDataHandling() if handling is None else handling
    x = np.asarray(drinks_per_day)
    if x.dtype not in (np.float32, np.float64):
        try:
            x = x.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise InputError(f"drinks_per_day: not numeric ({exc})") from None
    if x.ndim != 2:
        raise InputError(f"drinks_per_day: expected shape (participants, days), got {x.shape}")
    n, d = x.shape
    fem = np.asarray(is_female, dtype=bool).reshape(-1)
    if fem.shape != (n,):
        raise InputError(f"is_female: expected shape ({n},), got {fem.shape}")
    if d == 0:
        raise InputError("drinks_per_day: the analysis window has no days")
    if not (isinstance(grace_days, int | np.integer) and 0 <= grace_days < d):
        raise InputError(f"grace_days = {grace_days!r}: must be an integer in [0, {d - 1}]")
    if not (isinstance(abstinent_last_days, int | np.integer) and abstinent_last_days >= 1):
        raise InputError(f"abstinent_last_days = {abstinent_last_days!r}: must be an integer >= 1")
    if not (np.isfinite(grams_per_drink) and grams_per_drink > 0):
        raise InputError(f"grams_per_drink = {grams_per_drink!r}: must be > 0")
    known = np.ones(n, bool) if sex_known is None else np.asarray(sex_known, bool).reshape(-1)
    if known.shape != (n,):
        raise InputError(f"sex_known: expected shape ({n},), got {known.shape}")
    if not known.all() and heavy_drinks_men != heavy_drinks_women:
        raise InputError(
            f"{int((~known).sum())} participant(s) have no sex but the heavy-day threshold is "
            "sex-specific; give their sex or use one threshold for both sexes"
        )
    k = int(min(abstinent_last_days, d))
    if abstinent_last_min_days is None:
        min_last = default_abstinent_last_min_days(k)
    elif (isinstance(abstinent_last_min_days, int | np.integer)
          and not isinstance(abstinent_last_min_days, bool) and 1 <= abstinent_last_min_days <= k):
        min_last = int(abstinent_last_min_days)
    else:
        raise InputError(
            f"abstinent_last_min_days = {abstinent_last_min_days!r}: must be an integer in "
            f"[1, {k}] (K = abstinent_last_days = {abstinent_last_days} clipped to the "
            f"{d}-day window)"
        )
    thr = heavy_threshold_drinks(
        fem, heavy_drinks_men=heavy_drinks_men, heavy_drinks_women=heavy_drinks_women
    )
    mode, fill = handling._mode()
    if backend == "numba":
        if not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)
        use_par = (x.size >= PARALLEL_MIN_CELLS) if parallel is None else bool(parallel)
        kernel = _row_counts_threaded if use_par else _row_counts_kernel
        res = kernel(x, thr, mode, fill, int(grace_days), k)
    elif backend == "numpy":
        res = _row_counts_numpy(x, thr, mode, fill, int(grace_days), k)
    else:
        raise InputError(f"backend = {backend!r}: allowed 'numba' or 'numpy'")
    (counted, missing, drinking, heavy, total, first_drink, first_heavy, last_counted,
     heavy_after_grace, counted_after_grace, drank_last, counted_last, invalid,
     amount_days, amount_drinking) = res
    if invalid.any():
        rows = np.flatnonzero(invalid)[:5].tolist()
        raise InputError(
            f"drinks_per_day: {int(invalid.sum())} negative or infinite value(s) "
            f"(participant rows {rows}...); drinks must be finite and >= 0, NaN for missing"
        )

    included = counted > 0
    if handling.population == "responders_only":
        included &= missing == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = np.where(included, counted, np.nan).astype(np.float64)
        pda = 100.0 * (counted - drinking) / denom
        pdd = 100.0 * drinking / denom
        phdd = 100.0 * heavy / denom
        # amount endpoints over the days with an amount: under missing_days = "heavy" a missing
        # day is classified as heavy above but has no amount (none is invented for it)
        amount_denom = np.where(included & (amount_days > 0), amount_days, np.nan)
        ddd = np.where(included & (amount_drinking > 0), total / amount_drinking, np.nan)
        dpw = 7.0 * total / amount_denom
        tot = np.where(included & (amount_days > 0), total, np.nan)
        gpd = grams_per_drink * total / amount_denom
        level = np.where(known, who_risk_level(gpd, fem), np.nan)
        nhdd = np.where(included & (counted_after_grace > 0),
                        (heavy_after_grace == 0).astype(np.float64), np.nan)
        # not assessable (NaN) below min_last counted days: a drinking day seen there would
        # settle "not abstinent", but classifying only those and dropping the unconfirmed
        # abstainers would bias the share abstinent downwards
        abst_last = np.where(included & (counted_last >= min_last),
                             (drank_last == 0).astype(np.float64), np.nan)

    def tte(first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        event = included & (first >= 0)
        t = np.where(event, first + 1, last_counted + 1).astype(np.float64)
        return np.where(included, t, np.nan), event

    t_drink, e_drink = tte(first_drink)
    t_heavy, e_heavy = tte(first_heavy)

    if baseline_drinks_per_week is None:
        base = np.full(n, np.nan)
    else:
        base = np.asarray(baseline_drinks_per_week, dtype=np.float64).reshape(-1)
        if base.shape != (n,):
            raise InputError(f"baseline_drinks_per_week: expected shape ({n},), got {base.shape}")
        if np.any(base < 0):
            raise InputError("baseline_drinks_per_week: negative values")
    base_level = np.where(known, who_risk_level(base / 7.0 * grams_per_drink, fem), np.nan)
    reduction = base_level - level
    # the responder endpoints need amounts on enough of the window's days (see
    # WHO_REDUCTION_MIN_FRACTION); under "heavy" a participant short of them is a non-responder
    min_amount_days = math.ceil(WHO_REDUCTION_MIN_FRACTION * d)
    enough = amount_days >= min_amount_days
    red_ok = ~np.isnan(reduction) & enough
    failed = np.zeros(n, bool)
    if mode == _MODE_FILL_HEAVY:
        failed = included & ~enough & ~np.isnan(base_level)

    def responder(levels: int) -> np.ndarray:
        return np.where(red_ok, (reduction >= levels).astype(np.float64),
                        np.where(failed, 0.0, np.nan))
    settings = {
        "handling": handling.label,
        "heavy_drinks_men": float(heavy_drinks_men),
        "heavy_drinks_women": float(heavy_drinks_women),
        "grace_days": int(grace_days),
        "abstinent_last_days": k,
        "abstinent_last_min_days": min_last,
        "grams_per_drink": float(grams_per_drink),
        "amount_basis": handling.amount_basis,
        "who_basis": "mean grams per day over the amount_basis days",
        "who_reduction_min_amount_days": min_amount_days,
    }
    return ParticipantEndpoints(
        n_days_window=d,
        included=included,
        n_days_observed=(d - missing).astype(np.int64),
        n_days_missing=missing,
        n_days_counted=counted,
        percent_days_abstinent=pda,
        percent_drinking_days=pdd,
        percent_heavy_drinking_days=phdd,
        drinks_per_drinking_day=ddd,
        drinks_per_week=dpw,
        total_drinks=tot,
        grams_per_day=gpd,
        who_risk_level=level,
        no_heavy_drinking_days=nhdd,
        abstinent_last_days=abst_last,
        days_to_first_drink=t_drink,
        first_drink_observed=e_drink,
        days_to_first_heavy_day=t_heavy,
        first_heavy_day_observed=e_heavy,
        baseline_drinks_per_week=base,
        change_drinks_per_week=dpw - base,
        baseline_who_risk_level=base_level,
        who_level_reduction=reduction,
        who_reduction_1_level=responder(1),
        who_reduction_2_levels=responder(2),
        settings=settings,
    )


def percent_days_abstinent(
    drinks_per_day: ArrayLike, is_female: ArrayLike, **kwargs
) -> NDArray[np.float64]:
    """Percent days abstinent (PDA) per participant, %; see :func:`compute_endpoints`."""
    return compute_endpoints(drinks_per_day, is_female, **kwargs).percent_days_abstinent


def percent_heavy_drinking_days(
    drinks_per_day: ArrayLike, is_female: ArrayLike, **kwargs
) -> NDArray[np.float64]:
    """Percent heavy drinking days (PHDD) per participant, %; see :func:`compute_endpoints`."""
    return compute_endpoints(drinks_per_day, is_female, **kwargs).percent_heavy_drinking_days


def drinks_per_drinking_day(
    drinks_per_day: ArrayLike, is_female: ArrayLike, **kwargs
) -> NDArray[np.float64]:
    """Drinks per drinking day (DDD), US standard drinks; see :func:`compute_endpoints`."""
    return compute_endpoints(drinks_per_day, is_female, **kwargs).drinks_per_drinking_day
