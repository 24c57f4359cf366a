"""Compiled kernels give the same bits whether numba compiled them in this process or loaded
them from its on-disk cache.

Worker processes load the kernels the first process compiled and cached; if the two versions
rounded differently, a trial's outputs would depend on the number of workers. That happened
once: separately compiled pass functions were inlined (and optimised in place) by LLVM into a
freshly compiled caller but not into a cached one, and results differed in the last bit. Two
subprocesses share a fresh cache directory: the first compiles (and writes the cache), the
second loads it; both run the same memory and daily-life workload and a small trial (PK,
observation, endpoints, Parquet outputs) and print a digest.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

WORKLOAD = textwrap.dedent("""
    import hashlib
    import numpy as np
    from reconsolidate._random import CounterStream
    from reconsolidate.behavior import (BehaviorParams, BehaviorState, calibrate_intercept,
                                        drinking_probability_target)
    from reconsolidate.behavior.days import DAY_STREAM, DayPlan, live_days
    from reconsolidate.memory import population as pop
    from reconsolidate.memory.params import MemoryParams
    from reconsolidate.population import CueEnvironment, get_cohort, sample_patients

    h = hashlib.sha256()
    p = MemoryParams()
    rng = np.random.default_rng(0)
    s = pop.new_state(rng.uniform(0, 1, (300, 6)), p, memory_age_h=rng.uniform(0, 200, 300))
    for _ in range(10):
        pop.advance(s, rng.uniform(0.1, 30, 300))
        pop.expose(s, rng.random((300, 6)) < 0.6, rng.random((300, 6)) < 0.4, p,
                   occupancy=np.where(rng.random(300) < 0.3, rng.uniform(0, 1, 300), 0.0))
        h.update(pop.response(s, p).tobytes())
    bp = BehaviorParams()
    pts = sample_patients(get_cohort("das2019"), CueEnvironment(), 3, 0, 200)
    m = pop.new_state(pts.acquisition_strength, p)
    a, k = calibrate_intercept(pts, pop.response(m, p), bp)
    st = BehaviorState.start(a, k, drinking_probability_target(pts, bp))
    days = np.arange(-20, 100)
    drinks = np.zeros((200, days.size))
    plan = DayPlan(days, (days % 7) >= 5, np.zeros(days.size, bool), np.arange(days.size),
                   np.where(days % 7 == 0, np.cumsum(days % 7 == 0) - 1, -1), days < 0)
    snaps = (np.zeros((200, 18)), np.zeros((200, 18)))
    live_days(m, st, pts, bp, p, CounterStream(5, DAY_STREAM, 0), plan, np.full(200, 90.0),
              drinks, snaps, np.zeros((200, 6)))
    for x in (drinks, snaps[0], m.w0, m.n0, m.lab0, st.habit):
        h.update(x.tobytes())
    # a whole small trial: PK sessions, observation, endpoints, Parquet outputs
    import tempfile
    from pathlib import Path
    from reconsolidate.trial import load_trial_spec, make_plan, run_trial
    from reconsolidate.trial.spec import TrialSpec
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
