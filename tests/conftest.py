"""Shared fixtures: the real benchmark data beside the repo, one Ray per session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` relative to the repo root; skips when a user's machine lacks it."""
    if not (SHARED_DATA / "nb201.csv").is_file():
        pytest.skip(f"real benchmark tables not found at {SHARED_DATA} (CI has them; see README)")
    return SHARED_DATA
