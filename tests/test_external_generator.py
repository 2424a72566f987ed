"""An out-of-tree generator passes gnas's contract suite from its own tests (issue: the contract
suite importable). It is copied outside the repository and run by its own pytest, with Ray
workers finding it through PYTHONPATH, as a user's package would be found once installed."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent / "external_generator"


def test_an_out_of_tree_generator_passes_the_contract_suite(tmp_path):
    for name in ("frequency_generator.py", "contract_check.py"):
        shutil.copy(HERE / name, tmp_path / name)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # the user's own settings, not gnas's
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "RAY_AUTH_MODE": "disabled"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "contract_check.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    assert "failed" not in last and "11 passed" in last and "1 skipped" in last, last
