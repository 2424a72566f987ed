"""A SIGKILLed driver's local Ray does not linger: the reaper ends its agents and workers.

Ray alone keeps the dashboard and runtime-env agents ~60 s after the driver dies
(``bench/ray_teardown.py`` prints both figures). No timing is asserted here: the watcher ends
only after it has signalled what is left, and Ray's agents, left alone, outlive it by far — so
every Ray process being gone when the watcher ends is the reaper's doing.
"""
from __future__ import annotations

import json
import os
import signal
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
DRIVER = """
import json, os, time
import psutil, ray
ray.init(num_cpus=1, include_dashboard=False)
from orchestrator import reaper
watcher = reaper.watch()
@ray.remote
def pid():
    return os.getpid()
worker = ray.get(pid.remote())
node = ray._private.worker._global_node
agents = [c.pid for r in node.all_processes["raylet"] for c in psutil.Process(r.process.pid).children()]
print("PIDS " + json.dumps({"watcher": watcher, "agents": agents, "worker": worker}), flush=True)
time.sleep(600)
"""


def test_killing_the_driver_ends_its_ray_agents_and_workers():
    ray_tmp = tempfile.mkdtemp(prefix="gnas-r-")  # short: Ray's socket paths live under it
    env = {**os.environ, "RAY_TMPDIR": ray_tmp, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(REPO)}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        line = next(line for line in driver.stdout if line.startswith("PIDS "))
    finally:
        if driver.poll() is not None:
            raise AssertionError(f"the driver exited ({driver.returncode}) before starting Ray")
    pids = json.loads(line[5:])
    ray_procs = [psutil.Process(p) for p in [*pids["agents"], pids["worker"]]]
    names = {p.name() for p in ray_procs}
    assert any("DashboardAgent" in n for n in names) and any("RuntimeEnvAgent" in n for n in names), names
    watcher = psutil.Process(pids["watcher"])
    assert watcher.ppid() == driver.pid and os.getsid(watcher.pid) != os.getsid(driver.pid)  # its own session

    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    driver.stdout.close()
    watcher.wait(timeout=300)  # ends after signalling what was left
    alive = [p for p in ray_procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    shutil.rmtree(ray_tmp, ignore_errors=True)
    assert not alive, [p.name() for p in alive]
