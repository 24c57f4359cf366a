"""Library of published ketamine pharmacokinetic models, each with its provenance.

Every model is a linear mammillary model (central compartment + 1 or 2 peripheral compartments,
optionally one metabolite compartment fed by parent elimination) plus an effect site of
negligible volume (rate constant ke0). Parameters are stored as clearances (L/min) and volumes (L)
at a 70-kg reference and scaled with weight as the source does:

``V = V_70 * (W / 70) ** volume_exponent``, ``CL = CL_70 * (W / 70) ** clearance_exponent``.

Models published as micro-constants with V1 per kg (Domino, Clements, Hijazi) have both exponents
equal to 1, which leaves every rate constant independent of weight, exactly as in STANPUMP and
opentiva. Confidence tags (as in the project's curated literature notes, not shipped): [V]
verified in the cited source, [C] as implemented in the cited code (paper not verified), [D]
derived, [U] unverified.

Sources of code implementations (used as the numerical reference for the parameter values):
STANPUMP ``DRUGS.C`` and stanpumpR ``R/drugs_ketamine.R`` (github.com/StevenLShafer/stanpumpR),
opentiva ``opentiva/ketamine.py`` (github.com/opentiva/opentiva).
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from reconsolidate.exceptions import ExtrapolationWarning, InputError

__all__ = [
    "PARAMETER_NAMES",
    "PKModel",
    "Parameter",
    "get_model",
    "ke0_from_tpeak",
    "list_models",
]

#: Order of the structural parameters (also the slot order of the random effects, so that a
#: patient's eta for CL is the same whichever model is simulated: common random numbers).
PARAMETER_NAMES: tuple[str, ...] = (
    "cl_l_per_min",
    "v1_l",
    "q2_l_per_min",
    "v2_l",
    "q3_l_per_min",
    "v3_l",
    "cl_met_l_per_min",
    "v_met_l",
)
_CLEARANCES = frozenset({"cl_l_per_min", "q2_l_per_min", "q3_l_per_min", "cl_met_l_per_min"})

REFERENCE_WEIGHT_KG = 70.0

#: Sex covariate. Sigtermans 2009 (Anesthesiology 111:892-903, arterial S-ketamine TCI in 10 men
#: and 10 women): women have a 20% higher elimination clearance of S-ketamine and S-norketamine [V,
#: abstract]. ASSUMPTION: applied to the elimination clearance of racemic ketamine as well (the
#: R-enantiomer was not studied), with the published typical value taken as the male value
#: (women x 1.2, men x 1.0), because the literature models here report no sex effect.
FEMALE_CLEARANCE_FACTOR = 1.20


@dataclass(frozen=True)
class Parameter:
    """One published parameter value with its units and source note."""

    name: str
    value: float
    unit: str
    source: str


@dataclass(frozen=True)
class PKModel:
    """A published ketamine PK model with its provenance and validated range.

    Attributes
    ----------
    name
        Short lower-case identifier used by :func:`get_model` and the command line.
    title
        Human-readable name.
    citation, doi, pmid
        Source publication.
    confidence
        Confidence tag of the parameter values ([V], [C], [D], [U]) with a reason.
    analyte
        ``"racemic"`` (racemic ketamine, concentrations are S + R) or ``"S-ketamine"``.
    n_compartments
        Parent compartments (2 or 3).
    parameters_70kg
        Structural parameters at 70 kg in :data:`PARAMETER_NAMES` units (L, L/min); absent keys
        mean the compartment does not exist.
    published_parameters
        The values as published/implemented (e.g. micro-constants), for documentation.
    volume_exponent, clearance_exponent
        Allometric exponents of weight (reference 70 kg).
    weight_scaling
        Text description of the weight scaling, with its source.
    population
        The population the model was fitted on.
    sampling_site
        Arterial / venous / not found.
    weight_range_kg, age_range_years, dose_range_mg_per_kg
        Validated ranges (``None`` = no limit known); outside them simulate() warns with
        :class:`~reconsolidate.exceptions.ExtrapolationWarning`. Each carries its source in
        ``range_source``.
    ke0_tpeak_min
        Time to peak effect after a bolus from which the default ke0 is derived (STANPUMP /
        opentiva convention), and ``ke0_source`` explaining it.
    bsv_cv
        Between-subject coefficient of variation per parameter (log-normal), with
        ``bsv_source``.
    """

    name: str
    title: str
    citation: str
    doi: str
    pmid: str
    confidence: str
    analyte: str
    n_compartments: int
    parameters_70kg: dict[str, float]
    published_parameters: tuple[Parameter, ...]
    volume_exponent: float
    clearance_exponent: float
    weight_scaling: str
    population: str
    sampling_site: str
    weight_range_kg: tuple[float, float] | None
    age_range_years: tuple[float, float] | None
    dose_range_mg_per_kg: tuple[float, float] | None
    range_source: str
    ke0_tpeak_min: float
    ke0_source: str
    bsv_cv: dict[str, float]
    bsv_source: str
    metabolite: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    # ------------------------------------------------------------------ structure
    @property
    def has_metabolite(self) -> bool:
        """Whether the model has a metabolite (norketamine) compartment."""
        return "cl_met_l_per_min" in self.parameters_70kg

    @property
    def n_states(self) -> int:
        """Number of ODE states: parent compartments, metabolite, effect site(s)."""
        return self.n_compartments + (2 if self.has_metabolite else 0) + 1

    @property
    def ke0_per_min(self) -> float:
        """Default effect-site rate constant (1/min), from :attr:`ke0_tpeak_min` at 70 kg."""
        return _default_ke0(self.name)

    # ------------------------------------------------------------------ parameters
    def individual_parameters(
        self,
        weight_kg: np.ndarray,
        *,
        female: np.ndarray | None = None,
        eta: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Individual structural parameters, each an array of shape (N,).

        Parameters
        ----------
        weight_kg
            Body weight in kg, shape (N,).
        female
            Boolean (N,); women get :data:`FEMALE_CLEARANCE_FACTOR` on the elimination clearance.
        eta
            Random effects on the log scale, shape (N, len(PARAMETER_NAMES)), slot order
            :data:`PARAMETER_NAMES`; ``None`` = typical values.
        """
        w = np.asarray(weight_kg, dtype=np.float64) / REFERENCE_WEIGHT_KG
        out: dict[str, np.ndarray] = {}
        for slot, pname in enumerate(PARAMETER_NAMES):
            if pname not in self.parameters_70kg:
                continue
            exponent = self.clearance_exponent if pname in _CLEARANCES else self.volume_exponent
            value = self.parameters_70kg[pname] * w**exponent
            if eta is not None:
                value = value * np.exp(eta[:, slot])
            out[pname] = value
        if female is not None:
            out["cl_l_per_min"] = out["cl_l_per_min"] * np.where(
                np.asarray(female, dtype=bool), FEMALE_CLEARANCE_FACTOR, 1.0
            )
        return out

    def micro_constants(self, weight_kg: float = REFERENCE_WEIGHT_KG) -> dict[str, float]:
        """Typical micro-constants (1/min) and V1 (L) at ``weight_kg`` (documentation, tests)."""
        p = {k: float(v[0]) for k, v in self.individual_parameters(np.array([weight_kg])).items()}
        v1 = p["v1_l"]
        out = {"v1_l": v1, "k10": p["cl_l_per_min"] / v1, "k12": p["q2_l_per_min"] / v1,
               "k21": p["q2_l_per_min"] / p["v2_l"]}
        if self.n_compartments == 3:
            out["k13"] = p["q3_l_per_min"] / v1
            out["k31"] = p["q3_l_per_min"] / p["v3_l"]
        return out

    def domain_violations(
        self,
        weight_kg: np.ndarray,
        age_years: np.ndarray | None = None,
        dose_mg_per_kg: np.ndarray | None = None,
    ) -> list[tuple[str, tuple[float, float], np.ndarray]]:
        """Covariates outside the validated range: ``[(label, range, values outside)]``.

        One entry per covariate (weight in kg, age in years, total dose in mg/kg) that has a
        validated range and at least one patient outside it; empty when all are inside.
        """
        checks = [("weight_kg", weight_kg, self.weight_range_kg)]
        if age_years is not None:
            checks.append(("age_years", age_years, self.age_range_years))
        if dose_mg_per_kg is not None:
            checks.append(("total dose mg/kg", dose_mg_per_kg, self.dose_range_mg_per_kg))
        out = []
        for label, values, rng in checks:
            if rng is None or values is None:
                continue
            v = np.atleast_1d(np.asarray(values, dtype=np.float64))
            outside = (v < rng[0]) | (v > rng[1])
            if outside.any():
                out.append((label, rng, v[outside]))
        return out

    def check_domain(
        self,
        weight_kg: np.ndarray,
        age_years: np.ndarray | None = None,
        dose_mg_per_kg: np.ndarray | None = None,
        *,
        stacklevel: int = 3,
    ) -> None:
        """Warn (:class:`ExtrapolationWarning`) for patients outside the validated range."""
        n = np.atleast_1d(np.asarray(weight_kg)).size
        for label, rng, bad in self.domain_violations(weight_kg, age_years, dose_mg_per_kg):
            warnings.warn(
                f"model '{self.name}': {bad.size} of {n} patient(s) have "
                f"{label} outside the validated range {rng[0]:g}-{rng[1]:g} "
                f"(e.g. {bad[0]:g}); results are extrapolated ({self.range_source})",
                ExtrapolationWarning,
                stacklevel=stacklevel,
            )

    def describe(self) -> str:
        """One-paragraph provenance summary (used by ``reconsolidate pk --list-models``)."""
        ids = ", ".join(x for x in (f"doi:{self.doi}" if self.doi else "",
                                    f"PMID {self.pmid}" if self.pmid else "") if x)
        return f"{self.title}. {self.citation}" + (f" ({ids})" if ids else "") + \
            f". {self.confidence}"


# ---------------------------------------------------------------------------------- helpers
def _from_micro(
    v1_l_per_kg: float, k10: float, k12: float, k21: float, k13: float | None = None,
    k31: float | None = None,
) -> dict[str, float]:
    """Convert per-kg V1 and micro-constants (1/min) to 70-kg clearances and volumes."""
    v1 = v1_l_per_kg * REFERENCE_WEIGHT_KG
    out = {"cl_l_per_min": k10 * v1, "v1_l": v1, "q2_l_per_min": k12 * v1, "v2_l": k12 * v1 / k21}
    if k13 is not None and k31 is not None:
        out["q3_l_per_min"] = k13 * v1
        out["v3_l"] = k13 * v1 / k31
    return out


def _micro_params(v1_l_per_kg: float, ks: dict[str, float], src: str) -> tuple[Parameter, ...]:
    return (
        Parameter("V1", v1_l_per_kg, "L/kg", src),
        *(Parameter(k, v, "1/min", src) for k, v in ks.items()),
    )


_OPENTIVA = "opentiva/ketamine.py (github.com/opentiva/opentiva)"

#: ASSUMPTION (between-subject variability where the source gives none): CV 30% on the
#: elimination clearance (between Fanta 2015's 13% for S-ketamine, Eur J Clin Pharmacol 71:441
#: [V, abstract], and Herd 2007's 38.1% [V]) and 40% on volumes and inter-compartmental
#: clearances (Herd 2007: 19-64%). Random effects are independent (no correlation reported).
_ASSUMED_BSV = {
    "cl_l_per_min": 0.30, "v1_l": 0.40, "q2_l_per_min": 0.40, "v2_l": 0.40,
    "q3_l_per_min": 0.40, "v3_l": 0.40,
}
_ASSUMED_BSV_SOURCE = (
    "ASSUMPTION: CV 30% on CL (between Fanta 2015's 13% and Herd 2007's 38.1%), 40% on volumes "
    "and inter-compartmental clearances (Herd 2007: 19-64%); the source reports none"
)

#: opentiva and STANPUMP derive ketamine ke0 from an assumed time to peak effect after a bolus;
#: opentiva uses 1 min for every ketamine model (ke0 Domino 0.652, Klamp 2.791 [C]). ASSUMPTION:
#: we keep t_peak = 1 min (fast EEG-type equilibration, cf. Sleigh 2019 BJA 123:592, t1/2ke0 23 s
#: [V]) as the default and let the user override ke0 (Olofsen 2012's slower subjective endpoints
#: have mean t1/2ke0 6.1 min, i.e. ke0 ~ 0.11/min [V]).
_KE0_SOURCE = (
    "ASSUMPTION: ke0 chosen so that the effect-site peak after a bolus is at 1 min "
    "(opentiva convention for all ketamine models [C]; cf. Sleigh 2019 EEG t1/2ke0 23 s [V]); "
    "endpoint-dependent, override with ke0_per_min"
)

_MODELS: dict[str, PKModel] = {}


def _register(m: PKModel) -> None:
    _MODELS[m.name] = m


_DOMINO_K = {"k10": 0.4381, "k12": 0.5921, "k13": 0.5900, "k21": 0.2470, "k31": 0.0146}
_register(PKModel(
    name="domino",
    title="Domino 1984 three-compartment model (the STANPUMP ketamine set)",
    citation="Domino EF et al., Clin Pharmacol Ther 1984;36:645-653",
    doi="",
    pmid="",
    confidence=(
        "[C] values as implemented in STANPUMP DRUGS.C, stanpumpR R/drugs_ketamine.R and "
        "opentiva class Domino (three independent implementations agree); original paper not "
        "verified. opentiva cites PMID 7198883, probably a different Domino paper [U]"
    ),
    analyte="racemic",
    n_compartments=3,
    parameters_70kg=_from_micro(0.063, **_DOMINO_K),
    published_parameters=_micro_params(0.063, _DOMINO_K, _OPENTIVA + " / STANPUMP DRUGS.C"),
    volume_exponent=1.0,
    clearance_exponent=1.0,
    weight_scaling="V1 = 0.063 L/kg; rate constants weight-independent (all volumes and "
    "clearances linear in kg) [C]",
    population="adult humans; details of the fitted population not found",
    sampling_site="not found",
    # ASSUMPTION: adult range; the fitted weights and ages are not known (paper not verified).
    weight_range_kg=(40.0, 120.0),
    age_range_years=(18.0, 80.0),
    dose_range_mg_per_kg=None,
    range_source="ASSUMPTION: adult range 18-80 y, 40-120 kg; the fitted range was not found",
    ke0_tpeak_min=1.0,
    ke0_source=_KE0_SOURCE,
    bsv_cv=_ASSUMED_BSV,
    bsv_source=_ASSUMED_BSV_SOURCE,
    notes=("Small V1 (4.4 L at 70 kg) gives high early peaks (559 ng/mL at 2 min for Dakwar).",),
))

_CLEM_K = {"k10": 0.0109, "k12": 0.0186, "k21": 0.0137}
_register(PKModel(
    name="clements250",
    title="Clements & Nimmo 1981 two-compartment model (250 ug/kg bolus data)",
    citation="Clements JA, Nimmo WS, Br J Anaesth 1981;53:27-30",
    doi="10.1093/bja/53.1.27",
    pmid="7459184",
    confidence=(
        "[C] values as implemented in opentiva class Clements250; original paper not verified. "
        "[U] V1 = 1.75 L/kg is unusually large for a central volume: verify before use"
    ),
    analyte="racemic",
    n_compartments=2,
    parameters_70kg=_from_micro(1.7522, **_CLEM_K),
    published_parameters=_micro_params(1.7522, _CLEM_K, _OPENTIVA),
    volume_exponent=1.0,
    clearance_exponent=1.0,
    weight_scaling="V1 = 1.7522 L/kg; rate constants weight-independent [C]",
    population="adult volunteers, 250 ug/kg IV bolus (details not verified)",
    sampling_site="not found",
    weight_range_kg=(40.0, 120.0),
    age_range_years=(18.0, 80.0),
    dose_range_mg_per_kg=None,
    range_source="ASSUMPTION: adult range 18-80 y, 40-120 kg (opentiva sets no limits)",
    ke0_tpeak_min=1.0,
    ke0_source=_KE0_SOURCE + "; opentiva ke0 5.2 [C]",
    bsv_cv=_ASSUMED_BSV,
    bsv_source=_ASSUMED_BSV_SOURCE,
))

_HIJ_K = {"k10": 0.0333, "k12": 0.0088, "k21": 0.0030}
_register(PKModel(
    name="hijazi",
    title="Hijazi 2003 two-compartment model (adult ICU, brain/spinal-cord injury)",
    citation="Hijazi Y et al., Br J Anaesth 2003;90:155-160",
    doi="10.1093/bja/aeg028",
    pmid="12538370",
    confidence=(
        "[V] abstract (CL 36.0 mL/min/kg, t1/2 4.9 h, Vbeta 16 L/kg); rate constants [C] "
        "opentiva class Hijazi; [D] the k's reproduce the abstract's CL and t1/2beta"
    ),
    analyte="racemic",
    n_compartments=2,
    parameters_70kg=_from_micro(1.08, **_HIJ_K),
    published_parameters=_micro_params(1.08, _HIJ_K, _OPENTIVA),
    volume_exponent=1.0,
    clearance_exponent=1.0,
    weight_scaling="V1 = 1.08 L/kg; rate constants weight-independent [C]",
    population="12 adult ICU patients with brain or spinal-cord injury, long-term infusion [V]",
    sampling_site="not found",
    # opentiva sets age_upper = 18, which contradicts the adult cohort (probably an opentiva
    # error, see the notes); we use an adult range instead.
    weight_range_kg=(40.0, 120.0),
    age_range_years=(18.0, 80.0),
    dose_range_mg_per_kg=None,
    range_source="ASSUMPTION: adult range (cohort adult ICU [V]; exact ranges not found)",
    ke0_tpeak_min=1.0,
    ke0_source=_KE0_SOURCE + "; opentiva ke0 4.773 [C]",
    # Hijazi 2003 abstract: CL 36.0 (SD 13.3) mL/min/kg -> CV 37% [V]; volumes ASSUMPTION.
    bsv_cv={**_ASSUMED_BSV, "cl_l_per_min": 13.3 / 36.0},
    bsv_source="CL: CV 37% from the abstract's SD 13.3 of 36.0 mL/min/kg [V]; others "
    + _ASSUMED_BSV_SOURCE,
))

_register(PKModel(
    name="herd",
    title="Herd 2007 two-compartment paediatric model (allometric)",
    citation="Herd DW, Anderson BJ, Holford NHG, Paediatr Anaesth 2007;17:622-629",
    doi="10.1111/j.1460-9592.2006.02145.x",
    pmid="17564643",
    confidence="[V] parameters and variability from the abstract; weight exponents [C] opentiva",
    analyte="racemic",
    n_compartments=2,
    parameters_70kg={
        "cl_l_per_min": 90.0 / 60.0,  # 90 L/h/70 kg [V]
        "v1_l": 38.7,  # L/70 kg [V]
        "q2_l_per_min": 215.0 / 60.0,  # 215 L/h/70 kg [V]
        "v2_l": 102.0,  # L/70 kg [V]
    },
    published_parameters=(
        Parameter("CL", 90.0, "L/h/70 kg", "Herd 2007 abstract [V]"),
        Parameter("V1", 38.7, "L/70 kg", "Herd 2007 abstract [V]"),
        Parameter("Q", 215.0, "L/h/70 kg", "Herd 2007 abstract [V]"),
        Parameter("V2", 102.0, "L/70 kg", "Herd 2007 abstract [V]"),
    ),
    volume_exponent=1.0,
    clearance_exponent=0.75,
    weight_scaling="volumes x (W/70), clearances x (W/70)^0.75 (allometric, [C] opentiva; the "
    "abstract says 'allometric models')",
    population="54 children, 1-1.5 mg/kg IV, emergency-department procedural sedation [V]",
    sampling_site="not found",
    weight_range_kg=(10.8, 74.8),
    age_range_years=(1.0, 14.0),
    dose_range_mg_per_kg=(1.0, 1.5),
    range_source="weight 10.8-74.8 kg, age 1-14 y as in opentiva class Herd [C]; dose 1-1.5 "
    "mg/kg from the abstract [V]",
    ke0_tpeak_min=1.0,
    ke0_source=_KE0_SOURCE + "; here 3.403/min, derived at 70 kg (opentiva ke0 2.995 [C] "
    "is what the same 1-min rule gives at 18 kg); one ke0 at every weight, so with "
    "allometric clearances the peak moves a little with weight (0.92 min at 20 kg)",
    # Herd 2007 abstract: BSV V1 64%, V2 51.7%, CL 38.1%, Q 19% [V].
    bsv_cv={"cl_l_per_min": 0.381, "v1_l": 0.64, "q2_l_per_min": 0.19, "v2_l": 0.517},
    bsv_source="Herd 2007 abstract: CL 38.1%, V1 64%, Q 19%, V2 51.7% [V]",
))

_register(PKModel(
    name="hornik",
    title="Hornik 2018 two-compartment paediatric model (allometric)",
    citation="Hornik CP et al., J Clin Pharmacol 2018",
    doi="10.1002/jcph.1116",
    pmid="29677389",
    confidence="[C] opentiva class Hornik only; not verified against the paper [U]",
    analyte="racemic",
    n_compartments=2,
    parameters_70kg={
        "cl_l_per_min": 38.9 / 60.0,  # 38.9 L/h/70 kg [C]
        "v1_l": 32.8,  # L/70 kg [C]
        "q2_l_per_min": 54.9 / 60.0,  # 54.9 L/h/70 kg [C]
        "v2_l": 152.0,  # L/70 kg [C]
    },
    published_parameters=(
        Parameter("CL", 38.9, "L/h/70 kg", _OPENTIVA + " [C][U]"),
        Parameter("V1", 32.8, "L/70 kg", _OPENTIVA + " [C][U]"),
        Parameter("Q", 54.9, "L/h/70 kg", _OPENTIVA + " [C][U]"),
        Parameter("V2", 152.0, "L/70 kg", _OPENTIVA + " [C][U]"),
    ),
    volume_exponent=1.0,
    clearance_exponent=0.75,
    weight_scaling="volumes x (W/70), clearances x (W/70)^0.75 [C] opentiva",
    population="children 1-18 y [C]",
    sampling_site="not found",
    weight_range_kg=(2.0, 176.0),
    age_range_years=(1.0, 18.0),
    dose_range_mg_per_kg=None,
    range_source="weight 2-176 kg, age 1-18 y as in opentiva class Hornik [C]",
    ke0_tpeak_min=1.0,
    ke0_source=_KE0_SOURCE + "; here 4.626/min, derived at 70 kg (opentiva ke0 4.212 [C] "
    "is what the same 1-min rule gives at 18 kg); one ke0 at every weight, so with "
    "allometric clearances the peak moves a little with weight (0.94 min at 20 kg)",
    bsv_cv=_ASSUMED_BSV,
    bsv_source=_ASSUMED_BSV_SOURCE,
))

_register(PKModel(
    name="kamp",
    title='Kamp 2020 three-compartment set as implemented by opentiva ("Klamp")',
    citation="Kamp J et al., Anesthesiology 2020;133:1192-1213",
    doi="10.1097/ALN.0000000000003577",
    pmid="32997732",
    confidence=(
        "[C] opentiva class Klamp (sic); NOT verified against the paper [U]. The paper's raw-data "
        "model has venous-delay compartments that this set lacks. Totals are plausible against "
        "the meta-analysis (Vss 238 vs 252 L/70 kg, CL 84 vs 79 L/h) [V abstract]"
    ),
    analyte="racemic",
    n_compartments=3,
    parameters_70kg={
        "cl_l_per_min": 84.0 / 60.0,  # 84 L/h/70 kg [C][U]
        "v1_l": 25.0,  # L/70 kg [C][U]
        "q2_l_per_min": 161.0 / 60.0,  # 161 L/h/70 kg [C][U]
        "v2_l": 56.0,  # L/70 kg [C][U]
        "q3_l_per_min": 79.0 / 60.0,  # 79 L/h/70 kg [C][U]
        "v3_l": 157.0,  # L/70 kg [C][U]
    },
    published_parameters=tuple(
        Parameter(n, v, u, _OPENTIVA + " class Klamp [C][U]")
        for n, v, u in (("CL", 84.0, "L/h/70 kg"), ("V1", 25.0, "L/70 kg"),
                        ("Q2", 161.0, "L/h/70 kg"), ("V2", 56.0, "L/70 kg"),
                        ("Q3", 79.0, "L/h/70 kg"), ("V3", 157.0, "L/70 kg"))
    ),
    volume_exponent=1.0,
    clearance_exponent=1.0,
    weight_scaling="all parameters x (W/70) as opentiva does (no 0.75 exponent) [C][U]",
    population="pooled raw data of 14 data sets (meta-analysis of 18 studies) [V abstract]",
    sampling_site="arterial central compartment in the paper's raw-data model [V]; the venous "
    "delay compartments are absent here",
    weight_range_kg=(40.0, 120.0),
    age_range_years=(18.0, 80.0),
    dose_range_mg_per_kg=None,
    range_source="ASSUMPTION: adult range; fitted ranges not found",
    ke0_tpeak_min=1.0,
    ke0_source=_KE0_SOURCE + "; opentiva ke0 2.791 [C]",
    bsv_cv=_ASSUMED_BSV,
    bsv_source=_ASSUMED_BSV_SOURCE,
))

_register(PKModel(
    name="flint",
    title="Flint 2017 S-ketamine two-compartment + S-norketamine model (paediatric ICU)",
    citation="Flint RB et al., Pediatr Anesth 2017;27:1098-1107",
    doi="10.1111/pan.13239",
    pmid="",
    confidence=(
        "[V] as transcribed from Table 3 in nlmixr2lib Flint_2017_s_ketamine.R (compartment "
        "metadata marked unverified there). Norketamine parameters are apparent (CL/Fm, V/Fm); "
        "ASSUMPTION: the 0.87%/h rise of norketamine clearance over time is ignored (linear "
        "time-invariant solver; <6% over 6 h)"
    ),
    analyte="S-ketamine",
    n_compartments=2,
    parameters_70kg={
        "cl_l_per_min": 112.0 / 60.0,  # 112 L/h/70 kg, Flint 2017 Table 3 [V]
        "v1_l": 7.73,  # L/70 kg [V]
        "q2_l_per_min": 196.0 / 60.0,  # 196 L/h/70 kg [V]
        "v2_l": 545.0,  # L/70 kg [V]
        "cl_met_l_per_min": 53.2 / 60.0,  # S-norketamine CL/Fm 53.2 L/h/70 kg [V]
        "v_met_l": 1.0,  # S-norketamine V/Fm fixed at 1 L [V]
    },
    published_parameters=tuple(
        Parameter(n, v, u, "Flint 2017 Table 3 via nlmixr2lib [V]")
        for n, v, u in (("CL", 112.0, "L/h/70 kg"), ("V1", 7.73, "L/70 kg"),
                        ("Q", 196.0, "L/h/70 kg"), ("V2", 545.0, "L/70 kg"),
                        ("CLsnk/Fm", 53.2, "L/h/70 kg"), ("Vsnk/Fm", 1.0, "L (fixed)"))
    ),
    volume_exponent=1.0,
    clearance_exponent=0.75,
    weight_scaling="volumes x (W/70), clearances x (W/70)^0.75 (fixed Holford exponents) [V]",
    population="25 ventilated PICU children 0.02-12.5 y, 3.4-35 kg, S-ketamine 0.3-3.6 "
    "mg/kg/h for 10-141 h [V]",
    sampling_site="plasma (arterial/venous not stated in the transcription)",
    weight_range_kg=(3.4, 35.0),
    age_range_years=(0.02, 12.5),
    dose_range_mg_per_kg=None,
    range_source="Flint 2017 population (nlmixr2lib transcription) [V]",
    ke0_tpeak_min=1.0,
    ke0_source=_KE0_SOURCE + "; the same ke0 is used for S-norketamine (ASSUMPTION)",
    # Flint 2017 Table 3: IIV CL 40.2%, CLsnk 104% [V]; other parameters had none estimated.
    bsv_cv={"cl_l_per_min": 0.402, "cl_met_l_per_min": 1.04},
    bsv_source="Flint 2017 Table 3: CV CL 40.2%, CLsnk/Fm 104% [V] (their correlation 0.506 "
    "is not applied: ASSUMPTION, independent effects)",
    metabolite="S-norketamine",
))


def list_models() -> list[str]:
    """Names of the available PK models, sorted."""
    return sorted(_MODELS)


def get_model(name: str | PKModel) -> PKModel:
    """Return the model called ``name`` (case-insensitive); unknown names raise InputError."""
    if isinstance(name, PKModel):
        return name
    key = str(name).strip().lower()
    if key not in _MODELS:
        raise InputError(f"model = {name!r}: unknown PK model; allowed: {', '.join(list_models())}")
    return _MODELS[key]


# ---------------------------------------------------------------------------------- ke0
def _pk_matrix_typical(model: PKModel, weight_kg: float) -> tuple[np.ndarray, float]:
    from reconsolidate.pharmacology.solver import system_matrices

    p = model.individual_parameters(np.array([weight_kg]))
    a, _, _ = system_matrices(model, p, np.array([1.0]))
    return a[0], float(p["v1_l"][0])


def _tpeak_of_ke0(model: PKModel, ke0: float, weight_kg: float) -> float:
    """Time (min) of the effect-site peak after a unit bolus (exact, via eigendecomposition)."""
    from reconsolidate.pharmacology.macro import macro_constants

    mc = model.micro_constants(weight_kg)
    m = macro_constants(ke0_per_min=ke0, **mc)
    lam = np.append(m["lambda_per_min"], ke0)
    coef = np.append(m["e"], m["e4"])

    def dce(t: float) -> float:
        return float(-(coef * lam * np.exp(-lam * t)).sum())

    from scipy.optimize import brentq

    # Bracket the peak: dCe/dt > 0 just after the bolus, < 0 after the peak.
    lo = 1e-6
    while dce(lo) <= 0:
        lo *= 0.5
        if lo < 1e-12:
            raise RuntimeError("no effect-site peak found")
    hi = 2.0 * lo
    while dce(hi) > 0:
        lo, hi = hi, 2.0 * hi
        if hi > 1e6:
            raise RuntimeError("no effect-site peak found")
    return brentq(dce, lo, hi, xtol=1e-14, rtol=1e-14)


def ke0_from_tpeak(model: str | PKModel, tpeak_min: float,
                   weight_kg: float = REFERENCE_WEIGHT_KG) -> float:
    """ke0 (1/min) such that the effect-site peak after a bolus occurs at ``tpeak_min``.

    Method of stanpumpR ``R/tPeakError.R`` (usual citation Minto et al., Anesthesiology
    2003;99:324 [U]), solved here by root finding on the exact peak time.
    """
    from scipy.optimize import brentq

    m = get_model(model)
    if not tpeak_min > 0:
        raise InputError(f"tpeak_min = {tpeak_min!r}: must be > 0")

    def err(log_ke0: float) -> float:
        try:
            return _tpeak_of_ke0(m, math.exp(log_ke0), weight_kg) - tpeak_min
        except RuntimeError:  # no resolvable peak: ke0 so small that the peak is very late
            return 1e6

    lo, hi = math.log(1e-3), math.log(200.0)
    if err(lo) < 0 or err(hi) > 0:
        raise InputError(f"tpeak_min = {tpeak_min!r}: outside what ke0 in 0.001-200/min gives "
                         f"for model '{m.name}'")
    return math.exp(brentq(err, lo, hi, xtol=1e-13))


@functools.cache
def _default_ke0(name: str) -> float:
    m = _MODELS[name]
    return ke0_from_tpeak(m, m.ke0_tpeak_min)
