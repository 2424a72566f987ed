"""Studies on multi-node Ray without a cloud.

1. ``cluster/simulate.py``: a cluster simulated in one process (``ray.cluster_utils.Cluster``)
   shaped like ``cluster.yaml`` — a head with no CPUs for trials, two workers with one
   logical GPU each — runs the cluster smoke study (trials at 0.25 GPU) and loses a worker
   mid-study.
2. A Ray head started as a separate process (``ray start --head``), reached by the
   orchestrator's own command line (``python -m orchestrator run … --address``).

Both run in subprocesses with a private Ray temp dir, so neither the Ray that other test
files share in this pytest process nor any other Ray on the machine is touched. Teardown
kills exactly what these tests started (their process trees, and processes whose command
line names their private temp dir) — never ``ray stop``, which stops every Ray on the host.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from orchestrator.store import Store

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "cluster" / "smoke.yaml"
WORKER_1, WORKER_2 = "127.0.10.1", "127.0.10.2"  # cluster/simulate.py's worker addresses


def smoke_spec(tmp_path: Path, name: str, seeds=None, **config) -> Path:
    """cluster/smoke.yaml under another name, storing under tmp_path, with config overrides."""
    data = yaml.safe_load(SMOKE.read_text())
    data.update(name=name, storage=str(tmp_path / "store"))
    data["config"].update(config)
    if seeds is not None:
        data["seeds"] = list(seeds)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reap(root: str, procs=()) -> None:
    """Kill ``procs`` with their descendants, and every process whose command line names ``root``."""
    import psutil

    victims = {}
    for proc in procs:
        try:
            parent = psutil.Process(proc.pid)
            victims[parent.pid] = parent
            victims.update({child.pid: child for child in parent.children(recursive=True)})
        except psutil.Error:
            pass
    for candidate in psutil.process_iter(["cmdline"]):
        if any(root in part for part in candidate.info["cmdline"] or ()):
            victims[candidate.pid] = candidate
    victims.pop(os.getpid(), None)
    for victim in victims.values():
        try:
            victim.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(list(victims.values()), timeout=10)


@pytest.fixture
def ray_tmp():
    """A private, short Ray temp dir (Ray's Unix sockets live under it; 108-byte limit)."""
    root = tempfile.mkdtemp(prefix="gt-", dir="/tmp")
    yield root
    reap(root)
    shutil.rmtree(root, ignore_errors=True)


def environment(root: str) -> dict[str, str]:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_TMPDIR": root}
    env.pop("RAY_ADDRESS", None)
    return env


def run(command: list[str], env: dict[str, str], timeout: float) -> tuple[int, str, str]:
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        reap(env["RAY_TMPDIR"], [proc])
        out, err = proc.communicate()
        pytest.fail(f"timed out after {timeout} s: {' '.join(command)}\n{err[-4000:]}")
    return proc.returncode, out, err


def test_study_on_a_simulated_cluster_packs_gpus_and_survives_losing_a_worker(tmp_path, ray_tmp):
    # Event-driven, whatever the load: every trial holds before its second step while the hold
    # file exists, so all 8 run at once (4 per worker's GPU); worker 2 is removed once its 4 have
    # reported, and only then is the hold released.
    trace, hold = tmp_path / "trace", tmp_path / "hold"
    trace.mkdir()
    hold.mkdir()
    (hold / "hold").touch()
    spec = smoke_spec(tmp_path, "sim", steps=5, sleep_s=0.2, n_archs=4, trace_dir=str(trace),
                      hold_at_step=2, hold_dir=str(hold))
    code, out, err = run([sys.executable, "cluster/simulate.py", str(spec), "--out", str(tmp_path / "store"),
                          "--workers", "2", "--cpus-per-worker", "4", "--gpus-per-worker", "1",
                          "--remove-worker", "2", "--when-trials", "4", "--release", str(hold / "hold")],
                         environment(ray_tmp), timeout=600)
    assert code == 0, err[-4000:]
    summary = json.loads(out.strip().splitlines()[-1])

    # the cluster: a head offering nothing to trials, two workers with one (logical) GPU each
    head = [n for n in summary["nodes"] if n["head"]]
    workers = sorted((n["ip"], n["CPU"], n["GPU"]) for n in summary["nodes"] if not n["head"])
    assert len(head) == 1 and head[0]["CPU"] == 0 and head[0]["GPU"] == 0
    assert workers == [(WORKER_1, 4, 1), (WORKER_2, 4, 1)]

    # the exact row count: every trial once, none lost with the worker, none duplicated
    store = Store(tmp_path / "store")
    rows = store.read_pandas("trials", studies=["sim"])
    assert (summary["trials"], summary["terminated"], summary["errored"]) == (8, 8, 0)
    assert len(rows) == 8 and rows["trial_id"].is_unique and sorted(rows["seed"]) == list(range(8))
    assert (rows["status"] == "TERMINATED").all() and (rows["iteration"] == 5).all()
    assert len(store.read_pandas("archs", studies=["sim"])) == 8 * 4

    # trials ran on the workers only, each on a quarter of a GPU
    assert set(rows["node_ip"]) <= {WORKER_1, WORKER_2}
    assert (rows["gpu_fraction"] == 0.25).all() and (rows["gpu_ids"] == "0").all()

    # 4 trials at 0.25 GPU packed each worker's GPU: worker 2 was running 4 when it was
    # removed, and worker 1's own 4 ran all at the same time
    lost = summary["removed"]["running_there"]
    assert summary["removed"]["ip"] == WORKER_2 and len(lost) == 4
    own = rows[(rows["node_ip"] == WORKER_1) & ~rows["trial_id"].isin(lost)]
    assert len(own) == 4 and own["started_at"].max() < (own["started_at"] + own["wall_s"]).min()

    # the lost trials were retried on the surviving worker (from a checkpoint when one had been
    # reported before the removal; on a loaded machine the removal can come first, so resuming
    # from checkpoints is asserted by test_orchestrator_run's retry test, not here)
    assert set(rows.loc[rows["trial_id"].isin(lost), "node_ip"]) == {WORKER_1}
    starts = [[int(line.split()[1]) for line in log.read_text().splitlines() if line.startswith("start")]
              for log in trace.iterdir()]
    assert sorted(len(s) for s in starts) == [1] * 4 + [2] * 4
    assert all(s[0] == 0 and 0 <= s[1] < 5 for s in starts if len(s) == 2)


def test_study_runs_on_a_ray_started_as_a_separate_process(tmp_path, ray_tmp):
    env = environment(ray_tmp)
    port = free_port()
    log = tmp_path / "head.log"
    with log.open("w") as head_output:
        head = subprocess.Popen(
            [str(Path(sys.executable).with_name("ray")), "start", "--head", f"--port={port}",
             "--num-cpus=2", "--num-gpus=1", f"--temp-dir={ray_tmp}/ray", "--include-dashboard=false",
             f"--dashboard-agent-listen-port={free_port()}", "--disable-usage-stats", "--block"],
            env=env, stdout=head_output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        address_file = Path(ray_tmp, "ray", "ray_current_cluster")  # written once the head is up
        deadline = time.monotonic() + 90
        while not address_file.exists():
            assert head.poll() is None, f"ray start exited:\n{log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"ray start did not come up:\n{log.read_text()[-4000:]}"
            time.sleep(0.2)

        spec = smoke_spec(tmp_path, "remote", seeds=range(4), steps=2, sleep_s=0.0, n_archs=3)
        code, out, err = run([sys.executable, "-m", "orchestrator", "run", str(spec),
                              "--address", f"127.0.0.1:{port}", "--no-wandb", "--quiet"], env, timeout=600)
        assert code == 0, err[-4000:]
        assert out.strip().splitlines()[-1].startswith("study remote: 4 trials (4 done, 0 errored)")
        rows = Store(tmp_path / "store").read_pandas("trials", studies=["remote"])
        assert len(rows) == 4 and (rows["status"] == "TERMINATED").all() and (rows["gpu_fraction"] == 0.25).all()
        # The driver joined *that* Ray — its log and the trials' worker logs are in that
        # Ray's session — rather than starting a Ray of its own.
        logs = Path(ray_tmp, "ray", "session_latest", "logs")
        assert list(logs.glob("python-core-driver-*.log")) and list(logs.glob("worker-*.out"))
    finally:
        import psutil

        try:
            tree = [psutil.Process(head.pid), *psutil.Process(head.pid).children(recursive=True)]
        except psutil.Error:
            tree = []
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops the processes it started
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        psutil.wait_procs(tree, timeout=10)
        reap(ray_tmp, [head])
