"""Test-suite configuration.

Hypothesis profiles: locally every run explores new examples (the default profile); CI (``CI`` set
in the environment, as `bash .ci/run` has it) uses the ``ci`` profile, whose examples are derived
from each test's name, so that a submission's result is reproducible and a red run can be replayed
exactly. Counterexamples found locally should be added as explicit regression tests.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
