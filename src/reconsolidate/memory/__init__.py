"""Cue-alcohol reward memories with NMDA-gated reconsolidation.

- :mod:`~reconsolidate.memory.params`: :class:`MemoryParams`, shared by both models.
- :mod:`~reconsolidate.memory.reference`: latent-cause-modulated Rescorla-Wagner (Gershman,
  Monfils, Norman & Niv 2017) with NMDA destabilisation and restabilisation gates.
- :mod:`~reconsolidate.memory.population`: reduced per-patient, per-cue state for millions of
  patients (numba kernels), derived from the reference model.
- :mod:`~reconsolidate.memory.subject`: :class:`MemorySubject`, the one interface both models
  offer to a laboratory paradigm (:func:`make_subject` builds either by name).
- :mod:`~reconsolidate.memory.paradigm`: laboratory paradigms as data (TOML) and their checks.
"""

from reconsolidate.memory.params import MemoryParams
from reconsolidate.memory.subject import MODELS, MemorySubject, make_subject

__all__ = ["MODELS", "MemoryParams", "MemorySubject", "make_subject"]
