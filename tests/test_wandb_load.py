"""Proof under load: a smoke study run while two busy loops saturate both cores leaves every
trial with exactly one complete W&B run (run, history and exit records, read in W&B's format).

graphpnas ends with a ``done: True`` report, which made Tune end the trial's actor while W&B
was still writing (header-only ``.wandb`` files); references ride along as a second part."""
from __future__ import annotations

import subprocess
import sys

import pytest

from orchestrator_helpers import ray_address  # noqa: F401 - fixture
from test_studies import study
from wandb_checks import assert_dashboards_name_real_keys, assert_every_trial_has_one_complete_run

pytestmark = pytest.mark.usefixtures("ray_address")


@pytest.fixture
def busy_cores():
    """Two busy-loop processes (one per core of CI's machine), stopped by their PIDs.

    They run at the niceness Ray gives its workers (15): both cores stay saturated and trials
    share them with the loops, as with other jobs of a busy node. At niceness 0 the loops
    out-weigh the trial workers about 30 to 1, which only makes the test ten times slower.
    """
    loops = [subprocess.Popen([sys.executable, "-c", "import os; os.nice(15)\nwhile True: pass"])
             for _ in range(2)]
    yield loops
    for p in loops:
        p.kill()
        p.wait()


def test_smoke_study_under_load_leaves_every_trial_one_complete_run(busy_cores, tmp_path):
    args = ["--preset", "smoke", "--kinds", "holdout_top", "--trainables", "graphpnas", "--seeds", "2",
            "--quiet", "--out", str(tmp_path)]
    assert study("degradation").main(args) == 0
    assert all(p.poll() is None for p in busy_cores)  # the load lasted the whole study
    # graphpnas: (clean + 1 level) x 2 seeds; references: 3 methods x 2 seeds
    assert assert_every_trial_has_one_complete_run(tmp_path, "degradation-smoke-nbgraph") == 4 + 6
    # the dashboards' definitions are in the study folder, and every panel reads a real key:
    # a section for holdout_top with the study metrics against the level, generator and references
    named = assert_dashboards_name_real_keys(tmp_path, "degradation-smoke-nbgraph")
    assert {("history", "level/holdout_top"), ("history", "holdout_top/graphpnas/top5_pct"),
            ("history", "holdout_top/random_search/top5_pct")} <= named
