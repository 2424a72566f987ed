"""`ray up` for real: cluster/onprem.yaml on loopback "machines", a study through the job API,
a worker lost mid-study, `ray down`, nothing left (cluster/up_local.py does the steps; this test
checks what they left: the store's rows, the summary, the machine).

Runs where the run can: as root, with Debian's openssh-server and rsync (`.ci/run` installs
them), permission to create network/PID/mount namespaces and PyPI for Ray's ``default`` extra;
otherwise it is skipped with the reason. It touches no other Ray on the machine: the cluster
lives in its own network and PID namespaces, and its `ray stop` is scoped to each node.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.store import Store

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "cluster" / "up_local.py"
HEAD, WORKERS = "127.0.0.1", ("127.0.0.2", "127.0.0.3")
STUDY = "degradation-smoke-nbgraph"


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (namespaces, sshd)"
    for tool, package in (("/usr/sbin/sshd", "openssh-server"), ("rsync", "rsync"), ("unshare", "util-linux")):
        if shutil.which(tool) is None:
            return f"{tool} not installed (apt-get install {package})"
    probe = subprocess.run(["unshare", "--net", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create namespaces here: {probe.stderr.strip()}"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


def _expected_trials() -> dict[str, int]:
    """Trials per part of the smoke study as up_local.py runs it (holdout_top, graphpnas), from the
    study's own preset tables: (clean + each level) x seeds for the generator, seeds per reference."""
    from studies import degradation

    seeds = degradation.SEEDS["smoke"]
    levels = len(degradation.KINDS["holdout_top"].levels["smoke"])
    return {f"{STUDY}-graphpnas": (1 + levels) * seeds, f"{STUDY}-references": len(degradation.REFERENCES) * seeds}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ray-up")
    store, logs, summary = tmp / "store", tmp / "logs", tmp / "summary.json"
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "--store", str(store), "--logs", str(logs),
                             "--summary", str(summary)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=420)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # unshare --kill-child takes the whole namespace with it
        out, err = proc.communicate()
        pytest.fail(f"up_local.py timed out\n{out[-3000:]}\n{err[-3000:]}")
    result = json.loads(summary.read_text()) if summary.exists() else {}
    return {"code": proc.returncode, "out": out, "err": err, "summary": result, "store": store, "logs": logs}


def test_ray_up_runs_a_study_through_the_job_api_and_loses_a_worker_without_losing_a_row(run):
    s = run["summary"]
    assert run["code"] == 0 and "failed" not in s, (s.get("failed"), run["err"][-3000:])
    assert s["job_status"] == "SUCCEEDED"
    # Ray's launcher, the job API and the CLI, as a user types them
    commands = s["commands"]
    assert commands[1].startswith("ray up -y") and commands[-1].endswith("ray stop")
    assert any(c.startswith("ray job submit --address http://127.0.0.1:8265 --working-dir . --no-wait -- gnas study "
                            "degradation --preset smoke") for c in commands)
    assert any(c.startswith("ray down -y") for c in commands)

    # the cluster: a head that offers no CPU to trials, the two workers its autoscaler started
    nodes = {n["ip"]: n for n in s["nodes"]}
    assert set(nodes) == {HEAD, *WORKERS} and nodes[HEAD]["head"] and nodes[HEAD]["CPU"] == 0
    assert all(nodes[w]["CPU"] > 0 and not nodes[w]["head"] for w in WORKERS)
    assert {n["ip"] for n in s["nodes_after_kill"]} == {HEAD, WORKERS[0]}  # the killed machine stayed dead
    assert s["killed"]["ip"] == WORKERS[1] and s["killed"]["processes"] > 0

    # the store, read here: every trial exactly once, all finished, none on the head
    expected = _expected_trials()
    rows = Store(run["store"]).read_pandas("trials")
    assert rows.groupby("study").size().to_dict() == expected
    assert rows["trial_id"].is_unique and (rows["status"] == "TERMINATED").all()
    assert set(rows["node_ip"]) <= set(WORKERS) and HEAD not in set(rows["node_ip"])
    # the trials that were running on the killed worker failed there and finished on the other one
    failed = {p.parent.name for p in (run["store"] / "tune").rglob("error.txt")}  # Tune's record of a failure
    retried = rows[[any(t in d for d in failed) for t in rows["trial_id"]]]
    assert len(retried) >= 1, f"no trial was lost with the killed worker: {failed}"
    assert set(retried["node_ip"]) == {WORKERS[0]} and (retried["status"] == "TERMINATED").all()
    report = run["store"] / "studies" / STUDY / "report.md"
    assert report.is_file()  # the driver ran the whole study, report included

    # the job's logs were followed to the end
    followed = (run["logs"] / "job_logs.txt").read_text()
    total = sum(expected.values())
    assert f"{total}/{total} trials: {total} done" in followed


def test_only_loopback_listens_and_is_contacted_and_the_dashboard_is_on_127_0_0_1(run):
    s = run["summary"]
    assert s["interfaces"] == ["lo"]
    for snapshot in ("listeners_up", "listeners_mid_study"):
        addresses = [line.split()[0].rsplit(":", 1)[0].strip("[]") for line in s[snapshot]]
        assert addresses and all(a.startswith(("127.", "::ffff:127.")) or a in ("*", "0.0.0.0") for a in addresses)
        assert any(line.startswith("127.0.0.1:8265 ") for line in s[snapshot]), s[snapshot]
        assert any(line.startswith("127.0.0.1:22 ") for line in s[snapshot])  # the run's own sshd
    assert s["peers_mid_study"] and all(p.startswith(("127.", "::ffff:127.")) for p in s["peers_mid_study"])


def test_token_auth_is_on_and_the_rendered_config_is_onprem_yaml(run):
    import yaml

    config = yaml.safe_load((run["logs"] / "cluster.yaml").read_text())
    onprem = yaml.safe_load((REPO / "cluster" / "onprem.yaml").read_text())
    assert config["provider"] == {"type": "local", "head_ip": HEAD, "worker_ips": list(WORKERS)}
    assert config["file_mounts"] == onprem["file_mounts"] and config["rsync_exclude"] == onprem["rsync_exclude"]
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        assert all("RAY_AUTH_MODE=token" in c for c in config[key] if "ray start" in c)
    assert "--num-cpus=0" in config["head_start_ray_commands"][-1]
    assert "--dashboard-host=127.0.0.1" in config["head_start_ray_commands"][-1]
    assert "export RAY_AUTH_MODE=token" in config["setup_commands"][1]
    assert "--address http://127.0.0.1:8265" in " ".join(run["summary"]["commands"])
    assert run["summary"]["job_api_without_token"] in (401, 403)  # the job API refuses a request without the token


def test_nothing_of_the_run_is_left(run):
    s = run["summary"]
    assert s["left_inside"] == {"processes": [], "listeners": []}  # after ray down, inside the namespace
    assert s["left_outside"] == {"processes": [], "root_exists": False, "control_dir_exists": False}
    assert not Path(s["root"]).exists()
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        assert not any(s["root"] in part for part in proc.info["cmdline"] or ()), proc
