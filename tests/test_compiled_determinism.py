"""Compiled kernels give the same bits whether numba compiled them in this process or loaded
them from its on-disk cache.

Worker processes load the kernels the first process compiled and cached; if the two versions
rounded differently, a trial's outputs would depend on the number of workers. That happened
once: separately compiled pass functions were inlined (and optimised in place) by LLVM into a
freshly compiled caller but not into a cached one, and results differed in the last bit. Two
subprocesses share a fresh cache directory: the first compiles (and writes the cache), the
second loads it; both run the same small trial (every compiled stage: PK, memory, daily
life, observation, endpoints) and print a digest of its Parquet outputs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

WORKLOAD = textwrap.dedent("""
    import hashlib
    import tempfile
    from pathlib import Path
    from reconsolidate.trial import TrialSpec, load_trial_spec, make_plan, run_trial

    h = hashlib.sha256()
    # a small trial: PK sessions, retrieval (expose), daily life with burn-in rounds and
    # memory snapshots, lab responses, observation, endpoints, Parquet outputs
    spec = load_trial_spec(Path(EXAMPLES) / "das2019.toml")
    spec = TrialSpec.model_validate({**spec.model_dump(), "follow_up_days": 30,
                                     "burn_in_days": 10,
                                     "assessment": {"baseline_visit_day": 0,
                                                    "visit_days": [7, 30]}})
    out = Path(tempfile.mkdtemp())
    run_trial(make_plan(spec, Path(EXAMPLES), 30, calibrated=True), out_dir=out / "t")
    for f in sorted((out / "t").glob("*.parquet")):
        h.update(f.read_bytes())
    print(h.hexdigest())
""")


EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "trials"


def test_fresh_and_cached_kernels_agree_bit_for_bit(tmp_path: Path) -> None:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba_cache"))
    code = f"EXAMPLES = {str(EXAMPLES)!r}\n" + WORKLOAD
    digests = [
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                       text=True, check=True, timeout=600).stdout.strip()
        for _ in range(2)  # the first compiles and writes the cache, the second loads it
    ]
    assert any((tmp_path / "numba_cache").rglob("*.nbc"))  # the second run did use a cache
    assert digests[0] == digests[1]
