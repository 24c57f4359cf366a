"""Exception and warning classes shared by every stage of the pipeline.

Errors a user can fix (a bad configuration value, a malformed diary) are :class:`InputError`:
the command line prints their one-line message and exits with code 2, never a traceback.
Results that are valid but rest on extrapolation (a patient outside a PK model's fitted range)
raise a :class:`DomainWarning`, in the way lifelines warns about statistical caveats.
"""

from __future__ import annotations

__all__ = [
    "DomainWarning",
    "ExtrapolationWarning",
    "InputError",
    "ReconsolidateError",
]


class ReconsolidateError(Exception):
    """Base class of every error raised on purpose by reconsolidate."""


class InputError(ReconsolidateError, ValueError):
    """Invalid user input: a configuration value, file or argument that is not allowed.

    The message is one line naming the field (or file and line), the value received and
    what is allowed. The command line prints it and exits with code 2.
    """


class DomainWarning(UserWarning):
    """A result is computed, but outside the domain where its model or method is validated."""


class ExtrapolationWarning(DomainWarning):
    """A patient, dose or time lies outside the range a literature model was fitted on."""
