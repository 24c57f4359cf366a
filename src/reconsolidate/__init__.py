"""reconsolidate: ketamine-assisted memory-reconsolidation therapy for AUD, in silico.

The package follows one dose along the mechanistic chain:

``pharmacology`` (infusion -> plasma/effect-site ketamine -> NMDA occupancy)
-> ``memory`` (cue-alcohol memories, destabilisation, NMDA-gated restabilisation, extinction)
-> ``behavior`` (cue exposure -> craving -> drinking)
-> ``trial`` (virtual patients, protocols, arms, observation)
-> ``endpoints`` (drinking endpoints and statistics, shared with real diaries in ``data``).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("reconsolidate")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
