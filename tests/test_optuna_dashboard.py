"""A search keeps its Optuna study in a journal inside the store, and optuna-dashboard serves it:
the study's trials are read back through the dashboard's HTTP API on 127.0.0.1."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from orchestrator.run import run_study
from orchestrator.search import optuna_journal
from orchestrator.spec import SearchParam
from orchestrator_helpers import ray_address, toy_spec, trials  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("ray_address")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, deadline: float):
    """GET ``url`` as JSON, retrying while the server starts (until ``deadline``)."""
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_optuna_dashboard_serves_the_search_from_the_store(tmp_path):
    params = (SearchParam("w_adv", "float", 0.0, 1.0), SearchParam("noise", "float", 0.001, 0.5, log=True))
    spec = toy_spec(tmp_path, "searched", config={"steps": 2}, seeds=(0, 1), search=params, samples=3, search_seed=7)
    run_study(spec, verbose=0)
    journal = Path(optuna_journal(spec))
    assert journal.is_file() and journal.parent == tmp_path / "optuna"
    rows = trials(tmp_path, spec.name)
    means = sorted(rows.groupby("config_id")["top5_pct"].mean().round(9))

    port = _free_port()
    exe = Path(sys.executable).with_name("optuna-dashboard")
    server = subprocess.Popen([str(exe), str(journal), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120  # a start-up allowance on a loaded machine, not a measured time
        studies = _get(f"http://127.0.0.1:{port}/api/studies", deadline)["study_summaries"]
        assert [s["study_name"] for s in studies] == [spec.name]
        detail = _get(f"http://127.0.0.1:{port}/api/studies/{studies[0]['study_id']}?after=0", deadline)
        done = [t for t in detail["trials"] if t["state"] == "Complete"]
        assert len(done) == 3  # one Optuna trial per config; its value is the mean over the seeds
        assert all({p["name"] for p in t["params"]} == {"w_adv", "noise"} for t in done)
        assert sorted(round(t["values"][0], 9) for t in done) == means
    finally:
        server.terminate()
        server.wait(timeout=30)
