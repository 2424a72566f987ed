"""How long a killed driver's local Ray outlives it, without and with ``orchestrator.reaper``.

    python bench/ray_teardown.py [--runs 1]

Each run starts a driver (``ray.init`` as ``orchestrator.run`` starts it, one task to bring up a
worker), records the pids of every Ray process it started (GCS, raylet, agents, workers),
``SIGKILL`` s the driver, and prints the seconds until the last of them is gone (polled every
0.2 s; capped at 120 s). Ray runs in a private temp folder; nothing else is touched.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DRIVER = """
import json, os, sys, time
import psutil, ray
ray.init(num_cpus=1, include_dashboard=False)
if sys.argv[1] == "watch":
    from orchestrator import reaper
    reaper.watch()
@ray.remote
def pid():
    return os.getpid()
worker = ray.get(pid.remote())
node = ray._private.worker._global_node
pids = [i.process.pid for infos in node.all_processes.values() for i in infos] + [worker]
pids += [c.pid for r in node.all_processes["raylet"] for c in psutil.Process(r.process.pid).children()]
print("PIDS " + json.dumps(sorted(set(pids))), flush=True)
time.sleep(600)
"""


def outlives(mode: str) -> float:
    import psutil

    with tempfile.TemporaryDirectory(prefix="gnas-teardown-") as tmp:
        env = {**os.environ, "RAY_TMPDIR": tmp, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(REPO)}
        driver = subprocess.Popen([sys.executable, "-c", DRIVER, mode], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        pids = None
        for line in driver.stdout:
            if line.startswith("PIDS "):
                pids = json.loads(line[5:])
                break
        if pids is None:
            raise RuntimeError(f"the driver did not start Ray (exit {driver.wait()})")
        procs = []
        for pid in pids:
            try:
                procs.append(psutil.Process(pid))
            except psutil.Error:
                pass
        os.kill(driver.pid, signal.SIGKILL)
        killed = time.perf_counter()
        driver.wait()
        while time.perf_counter() - killed < 120:
            alive = [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
            if not alive:
                break
            time.sleep(0.2)
        return time.perf_counter() - killed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=1)
    args = p.parse_args(argv)
    for mode, name in (("plain", "without the reaper (Ray alone)"), ("watch", "with orchestrator.reaper")):
        times = [outlives(mode) for _ in range(args.runs)]
        print(f"{name}: Ray processes outlive a SIGKILLed driver by "
              + ", ".join(f"{t:.1f} s" for t in times), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
