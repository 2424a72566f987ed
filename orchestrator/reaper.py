"""Ends a driver's local Ray when the driver dies, however it dies.

A local Ray started by ``ray.init`` shares the driver's fate for its GCS and raylet, but not
for the raylet's children: the dashboard and runtime-env agents notice the raylet is gone
within two seconds, then report its "unexpected" death to the GCS — dead too — through
``publish_error_to_driver``, whose RPC waits out a hard-coded 60 s timeout before they exit
(measured: ``bench/ray_teardown.py``; Ray 2.60, ``ray/_private/process_watcher.py``). Workers
take about 30 s.

:func:`watch` starts a small watcher process in its own session (a signal to the driver's
process group does not reach it). It holds the read end of a pipe whose only write end is
the driver's: when the driver exits — ``SIGKILL`` included — the pipe closes, the watcher
gives the processes :data:`GRACE_S` to end on their own (a clean ``ray.shutdown`` does),
then sends ``SIGTERM``, and ``SIGKILL`` to what is left after :data:`TERM_WAIT_S`. It only
ever signals the processes it was told about (pid *and* start time, so a reused pid is safe)
and the workers whose ``RAY_RAYLET_PID`` names this driver's raylet.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Iterable

GRACE_S = 5.0
TERM_WAIT_S = 5.0


def watch() -> int | None:
    """Start the watcher for the local Ray this process just started; its pid (``None`` when
    this process started no Ray node)."""
    import psutil
    import ray

    node = getattr(ray._private.worker, "_global_node", None)
    raylets = [info.process.pid for info in (node.all_processes.get("raylet", []) if node else [])]
    if not raylets:  # connected to a cluster someone else started: not ours to end
        return None
    pids = [info.process.pid for infos in node.all_processes.values() for info in infos]
    for pid in raylets:  # the agents: the raylet's children at start
        try:
            pids += [c.pid for c in psutil.Process(pid).children()]
        except psutil.Error:
            continue
    processes = [_identity(pid) for pid in pids]
    read, write = os.pipe()
    os.set_inheritable(read, True)
    args = json.dumps({"processes": [p for p in processes if p], "raylets": raylets})
    watcher = subprocess.Popen([sys.executable, "-m", "orchestrator.reaper", str(read), args],
                               pass_fds=(read,), start_new_session=True, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True)
    os.close(read)
    os.set_inheritable(write, False)  # children of the driver (Ray's own) must not hold it open
    _held.append(write)
    return watcher.pid


_held: list[int] = []  # the write end stays open for the driver's whole life


def _identity(pid: int) -> tuple[int, float] | None:
    import psutil

    try:
        return pid, psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _alive(processes: Iterable[tuple[int, float]], raylets: Iterable[int]) -> list:
    """The listed processes still running as themselves, and the workers of ``raylets``."""
    import psutil

    out = []
    for pid, created in processes:
        try:
            p = psutil.Process(pid)
            if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            continue
    wanted = {str(r) for r in raylets}
    for p in psutil.process_iter():
        try:
            if p.environ().get("RAY_RAYLET_PID") in wanted and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            continue
    return list({p.pid: p for p in out}.values())


def reap(processes: list[tuple[int, float]], raylets: list[int]) -> None:
    """Wait :data:`GRACE_S`, then ``SIGTERM`` what is left, then ``SIGKILL``."""
    import psutil

    deadline = time.monotonic() + GRACE_S
    while time.monotonic() < deadline and _alive(processes, raylets):
        time.sleep(0.5)
    left = _alive(processes, raylets)
    for p in left:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, left = psutil.wait_procs(left, timeout=TERM_WAIT_S)
    for p in left:
        try:
            p.kill()
        except psutil.Error:
            pass


def main(argv: list[str]) -> int:
    fd, data = int(argv[0]), json.loads(argv[1])
    with os.fdopen(fd, "rb") as pipe:
        pipe.read()  # returns when every write end is closed: the driver is gone
    reap([tuple(p) for p in data["processes"]], data["raylets"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
