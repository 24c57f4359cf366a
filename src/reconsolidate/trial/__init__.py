"""Virtual randomized trials: spec, protocols, observation model, engine and runner.

Public API: :class:`TrialSpec`, :func:`load_trial_spec`, :func:`make_plan`,
:func:`simulate_chunk`, :func:`run_trial`, :class:`ObservationModel`, :func:`observe`.

>>> from reconsolidate.trial import load_trial_spec, make_plan, run_trial  # doctest: +SKIP
>>> spec = load_trial_spec("examples/trials/das2019.toml")                  # doctest: +SKIP
>>> result = run_trial(make_plan(spec, "examples/trials"), out_dir=None)    # doctest: +SKIP
"""

from reconsolidate.trial.engine import make_plan, simulate_chunk
from reconsolidate.trial.observation import Observation, ObservationModel, observe
from reconsolidate.trial.run import TrialResult, run_trial, summarize
from reconsolidate.trial.spec import TrialSpec, load_trial_spec

__all__ = [
    "Observation",
    "ObservationModel",
    "TrialResult",
    "TrialSpec",
    "load_trial_spec",
    "make_plan",
    "observe",
    "run_trial",
    "simulate_chunk",
    "summarize",
]
