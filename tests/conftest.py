"""Shared fixtures: the real benchmark data beside the repo, one Ray per session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# Ray starts its workers at niceness 15 so that its driver stays responsive. On a CI machine busy
# with other work at niceness 0 they then get a few percent of a core, and a study of a few
# seconds takes many minutes (a subprocess study hit its 600 s timeout under two busy loops).
# The tests' trials and subprocess drivers inherit this and compete as equals.
os.environ.setdefault("RAY_worker_niceness", "0")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` relative to the repo root; skips when a user's machine lacks it."""
    if not (SHARED_DATA / "nb201.csv").is_file():
        pytest.skip(f"real benchmark tables not found at {SHARED_DATA} (CI has them; see README)")
    return SHARED_DATA


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of tiny models: intra-op threads only fight the other
    tests (and Ray's workers) over a 2-core machine. Use with ``usefixtures("one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
