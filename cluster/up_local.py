"""`ray up` of the on-prem config on this one machine, from up to down, with a study between.

    python cluster/up_local.py --store DIR [--logs DIR] [--summary FILE]

Ray's own cluster launcher (``ray up`` / ``ray down``, provider ``local``) drives
``cluster/onprem.yaml`` rendered for loopback "machines": head ``127.0.0.1``, workers
``127.0.0.2`` and ``127.0.0.3``, each reached over SSH through a real ``sshd`` (Debian's
``openssh-server``) with a key made for the run. Then, as a user would:

1. ``ray up`` (the head; its autoscaler brings up both workers over SSH);
2. ``ray job submit`` of the smoke degradation study through ``gnas``, storing to ``--store``
   (a folder every "machine" reaches: they are all this machine), and ``ray job logs -f``;
3. mid-study, worker ``127.0.0.3`` is killed (every process of that node, SIGKILL) once a trial
   runs there: the study must retry its trials on ``127.0.0.2`` and still finish every one;
4. ``ray down``, then ``ray stop`` on each worker (the local provider's ``ray down`` stops Ray
   on the head only), then nothing of the run may be left: no process, no listening port, no file.

Isolation. Everything runs inside new network, PID and mount namespaces (``unshare``, as
root): the only network interface is loopback, so nothing can listen beyond it nor contact
another address (Ray 2.60's GCS and raylets bind every interface — here there is only ``lo``);
ports never clash with another Ray on the machine; and when the run ends the kernel ends
every process it started. Inside, each "machine" has its own home and Ray temp dir under one
private root, chosen by the address the SSH client dialled (``sshd``'s ``ForceCommand``).
``ray stop`` stops every Ray process of the user on a machine — here all three nodes are one
machine — so each node's ``ray`` command is wrapped: ``ray stop`` there stops that node's
processes only (:func:`stop_node`). The ``sshd`` uses its own config, host key and port
inside the namespace; the system's SSH configuration is never read or changed.

Found by running it (Ray 2.60): ``ray up`` of a ``local``-provider config with the autoscaler v2
(the default since 2.50) brought up the head and only one of the two workers (its monitor logged
"Adding 1 nodes to satisfy min count" every 5 s and never launched it), so the launcher runs
with ``RAY_UP_enable_autoscaler_v2=0`` (v1: both workers); the project installs ``ray[tune]``,
and Ray's dashboard and job API need ``ray[default]`` (:func:`loopback.build_venv`); and
``ray down`` stops Ray on the head only, so each worker gets a ``ray stop`` over SSH, as on real
machines.

The rendered config differs from ``onprem.yaml`` only where a loopback run must: the
provider's addresses, the SSH user and key, the store (a folder instead of the NFS mount),
the venv (this checkout's instead of a fresh pinned install: the same pins), no
``nvidia-smi`` (no GPU), and per-node ``--node-ip-address``, ``--temp-dir`` and ports
(several nodes on one host).

Exit status 0 when every step and check passed, 1 when a check failed, 2 when a prerequisite
is missing (one ``error:`` line: sshd, rsync, or permission to create namespaces). The last
stdout line is a JSON summary; ``--logs`` keeps what each command printed.
"""
from __future__ import annotations

import argparse
import copy
import getpass
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from loopback import (NAMESPACES, REPO, SSHD, Failed, _name, _wait, _write_exec, build_venv, init, listeners,
                      marked, peers, prerequisites, stop_node)

ONPREM = REPO / "cluster" / "onprem.yaml"
HEAD, WORKERS = "127.0.0.1", ("127.0.0.2", "127.0.0.3")
VICTIM = WORKERS[1]  # the worker killed mid-study
DASHBOARD = f"http://{HEAD}:8265"
STUDY = ["gnas", "study", "degradation", "--preset", "smoke", "--kinds", "holdout_top", "--trainables", "graphpnas",
         "--address", "auto", "--no-wandb"]
# Several nodes on one host: each its own address, temp dir and ports (raylets starting side by
# side otherwise race for the same free port: "bind: Address already in use", measured). The
# node shell sets GNAS_NODE_IP, GNAS_NODE_DIR and GNAS_NODE_PORTS (a block of 100 per node).
NODE_FLAGS = " ".join([
    "--node-ip-address=$GNAS_NODE_IP", "--temp-dir=$GNAS_NODE_DIR/ray",
    *(f"--{flag}=$((GNAS_NODE_PORTS+{i}))" for i, flag in enumerate(
        ("node-manager-port", "object-manager-port", "metrics-export-port", "dashboard-agent-listen-port",
         "dashboard-agent-grpc-port", "runtime-env-agent-port", "min-worker-port"), start=1)),
    "--max-worker-port=$((GNAS_NODE_PORTS+99))"])
DEADLINE_S = {"up": 240, "workers": 180, "study": 400, "down": 120}


# ----------------------------------------------------------------------------- rendering
def render(onprem: dict[str, Any], root: Path, store: Path, name: str) -> dict[str, Any]:
    """``onprem.yaml`` for the loopback machines under ``root`` (see the module docstring)."""
    cfg = copy.deepcopy(onprem)
    cfg["cluster_name"] = name
    cfg["provider"] = {"type": "local", "head_ip": HEAD, "worker_ips": list(WORKERS)}
    cfg["auth"] = {"ssh_user": getpass.getuser(), "ssh_private_key": str(root / "ssh" / "id_ed25519")}
    setup, seen = [], set()
    for command in cfg["setup_commands"]:
        if "findmnt" in command:  # the NFS check: here the store is a folder of this machine
            setup.append(f"test -d {store} || {{ echo '{store} is missing'; exit 1; }}")
            seen.add("nfs")
        elif command.startswith("printf") and "GNAS_STORE=" in command:
            env = re.sub(r"GNAS_STORE=\S+'", f"GNAS_STORE={store}'", command)
            # per machine: its Ray temp dir; Ray's workers at niceness 0 (ENVIRONMENT.md); the
            # node's `ray stop` scoped to the node (last on PATH's front: after the venv's)
            extra = ("'export RAY_TMPDIR=$GNAS_NODE_DIR' 'export RAY_worker_niceness=0'"
                     f" 'export PATH={root / 'bin'}:$PATH'")
            setup.append(env.replace(" > ~/.gnas_env", f" {extra} > ~/.gnas_env"))
            seen.add("env")
        elif "-m venv" in command:  # the pinned venv: this checkout's (same pins, constraints.txt)
            setup.append(f"ln -sfn {root / 'venv'} ~/gnas-venv")
            seen.add("venv")
        elif "pip install" in command:
            seen.add("pip")
        else:
            setup.append(command)
    if seen != {"nfs", "env", "venv", "pip"}:
        raise Failed(f"{ONPREM.name} changed shape: rendered {sorted(seen)} of nfs, env, venv, pip")
    cfg["setup_commands"] = setup
    cfg["worker_setup_commands"] = [c for c in cfg["worker_setup_commands"] if "nvidia-smi" not in c]
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        cfg[key] = [c.replace(" ray start ", f" ray start {NODE_FLAGS} ") for c in cfg[key]]
        if not any("--node-ip-address" in c for c in cfg[key]):
            raise Failed(f"{ONPREM.name}: no `ray start` in {key}")
    return cfg


NODE_SHELL = """#!/bin/bash
# One loopback "machine": the address the SSH client dialled picks its home and Ray temp dir.
set -- $SSH_CONNECTION
case "$3" in {nodes}) ;; *) echo "not a node of this cluster: $3" >&2; exit 1;; esac
if [ -e {root}/$3/powered-off ]; then exit 255; fi   # a killed machine answers nothing
export GNAS_NODE_IP=$3 GNAS_NODE_DIR={root}/$3 HOME={root}/$3/home GNAS_NODE_PORTS=$((20000 + 100 * ${{3##*.}}))
cd "$HOME" || exit 1
if [ -n "$SSH_ORIGINAL_COMMAND" ]; then exec /bin/bash -c "$SSH_ORIGINAL_COMMAND"; fi
exec /bin/bash --login
"""

RAY_WRAPPER = """#!/bin/bash
# `ray` on a loopback node: `ray stop` stops this node's processes only (all nodes are one host).
if [ "$1" = stop ]; then exec {python} {script} stop-node "$GNAS_NODE_DIR" "${{@:2}}"; fi
exec {ray} "$@"
"""

SSH_WRAPPER = """#!/bin/bash
# ssh on this run's machines: OpenSSH expands a leading ~ (in -i ~/ray_bootstrap_key.pem, which the
# head's autoscaler passes) from the passwd entry, not from $HOME, the node's home here; and it
# reads no SSH client configuration of the host (-F /dev/null).
args=() previous=
for a in "$@"; do
  if [ "$previous" = -i ]; then case "$a" in "~/"*) a="$HOME/${{a#\~/}}";; esac; fi
  args+=("$a") previous=$a
done
exec /usr/bin/ssh -F /dev/null "${{args[@]}}"
"""

SSHD_CONFIG = """# sshd of the loopback cluster: its own key, port and files; loopback addresses only.
Port {port}
{listen}
HostKey {root}/ssh/host_ed25519
PidFile {root}/ssh/sshd.pid
AuthorizedKeysFile {root}/ssh/authorized_keys
AllowUsers {user}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
AllowAgentForwarding no
AllowTcpForwarding no
X11Forwarding no
PermitTunnel no
PrintMotd no
LogLevel ERROR
ForceCommand {root}/node-shell
"""


# ----------------------------------------------------------------------------- the run
class Run:
    """The steps inside the namespaces; ``summary`` collects what the checks saw."""

    def __init__(self, root: Path, store: Path, logs: Path):
        self.root, self.store, self.logs = root, store, logs
        self.name = f"gnas-loopback-{root.name}"  # control_dir() relies on this shape
        self.summary: dict[str, Any] = {"root": str(root), "cluster_name": self.name, "timings_s": {},
                                        "commands": []}
        self.venv_bin = root / "venv" / "bin"
        laptop = root / "laptop"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "GNAS_"))}
        self.env.update(HOME=str(laptop), RAY_TMPDIR=str(laptop / "tmp"), TMPDIR=str(laptop / "tmp"),
                        RAY_AUTH_MODE="token", PATH=f"{self.venv_bin}:{root / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin",
                        RAY_UP_enable_autoscaler_v2="0")  # v2 started one of the two workers: see the docstring
        os.environ.update(self.env)  # this process's own state-API calls: the laptop's token and mode
        self.config = root / "cluster.yaml"
        self.sshd: subprocess.Popen | None = None

    # -- helpers
    def sh(self, label: str, argv: list[str], timeout: float, check: bool = True) -> subprocess.CompletedProcess:
        """Run one user-facing command from the repository root; its output goes to ``logs/label.txt``."""
        self.summary["commands"].append(" ".join(argv))
        started = time.monotonic()
        done = subprocess.run(argv, cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout)
        (self.logs / f"{label}.txt").write_text(f"$ {' '.join(argv)}\n{done.stdout}{done.stderr}")
        self.summary["timings_s"][label] = round(time.monotonic() - started, 1)
        if check and done.returncode != 0:
            raise Failed(f"{label}: exit {done.returncode}\n{(done.stdout + done.stderr)[-3000:]}")
        return done

    def say(self, message: str) -> None:
        print(message, flush=True)

    # -- steps
    def prepare(self) -> None:
        root = self.root
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
        self.summary["interfaces"] = [line.split(":")[1].strip() for line in links.splitlines()]
        # sshd's privilege-separation dir: a private /run in this mount namespace (the host's is untouched)
        (root / "run" / "sshd").mkdir(parents=True)
        subprocess.run(["mount", "--bind", str(root / "run"), "/run"], check=True)
        for ip in (HEAD, *WORKERS):  # each machine's home as a fresh account has it
            (root / ip / "home").mkdir(parents=True)
            (root / ip / "home" / ".bashrc").touch()
        (root / "laptop" / "tmp").mkdir(parents=True)
        ssh = root / "ssh"
        ssh.mkdir(mode=0o700)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "gnas-loopback", "-f",
                        str(ssh / "id_ed25519")], check=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh / "host_ed25519")], check=True)
        shutil.copy(ssh / "id_ed25519.pub", ssh / "authorized_keys")
        nodes = "|".join((HEAD, *WORKERS))
        _write_exec(root / "node-shell", NODE_SHELL.format(nodes=nodes, root=root))
        (root / "bin").mkdir()
        _write_exec(root / "bin" / "ssh", SSH_WRAPPER.format())
        _write_exec(root / "bin" / "ray", RAY_WRAPPER.format(python=sys.executable, script=Path(__file__).resolve(),
                                                             ray=self.venv_bin / "ray"))
        port = 22  # its own port: nothing else listens in this network namespace
        listen = "\n".join(f"ListenAddress {ip}" for ip in (HEAD, *WORKERS))
        (ssh / "sshd_config").write_text(SSHD_CONFIG.format(port=port, listen=listen, root=root, user=getpass.getuser()))
        self.sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", str(ssh / "sshd_config")],
                                     stdout=subprocess.DEVNULL, stderr=open(self.logs / "sshd.txt", "w"))
        _wait(lambda: all(any(line.startswith(f"{ip}:{port} ") for line in listeners()) for ip in (HEAD, *WORKERS)),
              10, "sshd did not start listening", lambda: (self.logs / "sshd.txt").read_text())
        import yaml

        config = render(yaml.safe_load(ONPREM.read_text()), root, self.store, self.name)
        self.config.write_text(yaml.safe_dump(config, sort_keys=False, width=1000))
        (self.logs / "cluster.yaml").write_text(self.config.read_text())
        self.sh("token", ["ray", "get-auth-token", "--generate"], 60)

    def up(self) -> None:
        self.say(f"ray up {self.config.name} (head {HEAD}; workers {', '.join(WORKERS)} by its autoscaler)")
        self.sh("up", ["ray", "up", "-y", "--no-config-cache", str(self.config)], DEADLINE_S["up"])
        started = time.monotonic()
        nodes = _wait(lambda: self.alive_nodes() if len(self.alive_nodes()) == 3 else None, DEADLINE_S["workers"],
                      "the autoscaler did not bring both workers up",
                      lambda: self.sh("status", ["ray", "exec", str(self.config), "ray status"], 60, check=False).stdout)
        self.summary["timings_s"]["workers_after_up"] = round(time.monotonic() - started, 1)
        self.summary["nodes"] = nodes
        self.sh("status", ["ray", "exec", str(self.config), "ray status"], 60)
        self.summary["listeners_up"] = listeners()
        self.summary["job_api_without_token"] = _http_status(f"{DASHBOARD}/api/jobs/")

    def alive_nodes(self) -> list[dict[str, Any]]:
        from ray.util.state import list_nodes

        try:
            nodes = list_nodes(address=DASHBOARD, filters=[("state", "=", "ALIVE")], detail=True,
                               raise_on_missing_output=False)
        except Exception:  # noqa: BLE001 - not up yet
            return []
        return sorted(({"ip": n.node_ip, "head": bool(n.is_head_node), "CPU": n.resources_total.get("CPU", 0),
                        "node_id": n.node_id} for n in nodes), key=lambda n: n["ip"])

    def study(self) -> None:
        from ray.util.state import list_actors

        entry = [*STUDY, "--out", str(self.store)]
        self.say("ray job submit -- " + " ".join(entry))
        started = time.monotonic()
        done = self.sh("submit", ["ray", "job", "submit", "--address", DASHBOARD, "--working-dir", ".", "--no-wait",
                                  "--", *entry], 120)
        job = re.search(r"raysubmit_\w+", done.stdout + done.stderr)
        if job is None:
            raise Failed(f"no job id in:\n{done.stdout}")
        self.summary["job_id"] = job = job.group(0)
        self.summary["commands"].append(f"ray job logs --address {DASHBOARD} -f {job}")
        follow = subprocess.Popen(["ray", "job", "logs", "--address", DASHBOARD, "-f", job], cwd=REPO, env=self.env,
                                  stdout=open(self.logs / "job_logs.txt", "w"), stderr=subprocess.STDOUT)
        victim = next(n["node_id"] for n in self.summary["nodes"] if n["ip"] == VICTIM)
        workers = {n["node_id"] for n in self.summary["nodes"] if not n["head"]}
        seen: set[str] = set()

        def trial_on_victim():
            actors = [a for a in list_actors(address=DASHBOARD, filters=[("state", "=", "ALIVE")], detail=True)
                      if not a.class_name.startswith("_") and a.node_id in workers]
            if actors:  # trial actors: on the workers only (the head offers them no CPU)
                self.summary["timings_s"].setdefault("first_trial_after_submit", round(time.monotonic() - started, 1))
            seen.update(a.class_name for a in actors if a.node_id == victim)
            return bool(seen)

        self.say(f"waiting for a trial on {VICTIM}, then killing that node")
        _wait(trial_on_victim, DEADLINE_S["study"], f"no trial ever ran on {VICTIM}", lambda: "")
        self.summary["timings_s"]["first_trial_on_victim_after_submit"] = round(time.monotonic() - started, 1)
        self.summary["peers_mid_study"] = sorted(peers())
        self.summary["listeners_mid_study"] = listeners()
        (self.root / VICTIM / "powered-off").touch()  # no SSH answer: the autoscaler cannot restart it
        killed = stop_node(str(self.root / VICTIM), force=True)
        self.summary["killed"] = {"ip": VICTIM, "processes": killed, "actors": sorted(seen),
                                  "after_submit_s": round(time.monotonic() - started, 1)}
        self.say(f"killed {VICTIM}: {killed} processes (SIGKILL)")
        try:
            follow.wait(timeout=DEADLINE_S["study"])
        except subprocess.TimeoutExpired:
            follow.kill()
            raise Failed("the study did not finish")
        self.summary["timings_s"]["study"] = round(time.monotonic() - started, 1)
        status = self.sh("job_status", ["ray", "job", "status", "--address", DASHBOARD, job], 60)
        said = re.search(rf"Job '{job}' (\w+)", status.stdout + status.stderr)
        self.summary["job_status"] = said.group(1).upper() if said else "UNKNOWN"
        self.summary["nodes_after_kill"] = self.alive_nodes()
        if self.summary["job_status"] != "SUCCEEDED":
            raise Failed(f"job {job}: {status.stdout}{status.stderr}\n{(self.logs / 'job_logs.txt').read_text()[-3000:]}")

    def down(self) -> None:
        self.say(f"ray down {self.config.name}")
        self.sh("down", ["ray", "down", "-y", str(self.config)], DEADLINE_S["down"])
        key = str(self.root / "ssh" / "id_ed25519")
        started = time.monotonic()
        options = ["-i", key, "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={os.devnull}",
                   "-o", "IdentitiesOnly=yes"]
        self.summary["alive_after_down"] = {ip: sorted(_name(p) for p in marked(str(self.root / ip)))
                                            for ip in (HEAD, *WORKERS)}
        for ip in WORKERS:  # the local provider's `ray down` stops Ray on the head only
            if not (self.root / ip / "powered-off").exists():
                self.sh(f"stop_{ip}", ["ssh", *options, f"{getpass.getuser()}@{ip}", "ray stop"], 60)
        self.summary["timings_s"]["stop_workers"] = round(time.monotonic() - started, 1)
        control = control_dir(self.name)
        for ip in (HEAD, *WORKERS):  # Ray's SSH ControlMasters linger 10 s: close them now
            subprocess.run(["ssh", "-o", f"ControlPath={control}/%C", "-O", "exit", f"{getpass.getuser()}@{ip}"],
                           capture_output=True, env=self.env, timeout=30)

    def teardown(self) -> None:
        """sshd off, then: no process, no listener, and (by the caller) no file left."""
        if self.sshd is not None:
            self.sshd.terminate()
            try:
                self.sshd.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.sshd.kill()
                self.sshd.wait()
        subprocess.run(["umount", "/run"], check=False)

    def leftovers(self) -> dict[str, Any]:
        import psutil

        def others() -> list[str]:
            return [f"{p.pid} {p.info['name']}" for p in psutil.process_iter(["pid", "name", "status"])
                    if p.pid not in (os.getpid(), 1) and p.info["status"] != psutil.STATUS_ZOMBIE]

        try:  # processes SIGTERMed by `ray stop` may take a moment to go
            _wait(lambda: not others(), 30, "", lambda: "")
        except Failed:
            pass
        return {"processes": others(), "listeners": listeners()}


def _http_status(url: str) -> int:
    """The HTTP status of a bare GET (no token): token auth must refuse it."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def inside(args: argparse.Namespace) -> int:
    """The run, inside the namespaces (PID 1's child)."""
    root, logs = Path(args.inside), Path(args.logs)
    run = Run(root, Path(args.store), logs)
    code, stage = 0, "prepare"
    try:
        run.prepare()
        stage = "up"
        run.up()
        stage = "study"
        run.study()
        stage = "down"
        run.down()
        stage = "teardown"
    except Failed as exc:
        code = 1
        run.summary["failed"] = f"{stage}: {exc}"
        print(f"FAILED at {stage}: {exc}", file=sys.stderr, flush=True)
        if stage in ("up", "study"):  # still bring the cluster down, as a user would
            try:
                run.down()
            except (Failed, subprocess.TimeoutExpired) as again:
                print(f"ray down after the failure: {again}", file=sys.stderr)
    finally:
        run.teardown()
        run.summary["left_inside"] = run.leftovers()
        (logs / "summary_inside.json").write_text(json.dumps(run.summary, indent=1))
    return code


# ----------------------------------------------------------------------------- outside
def control_dir(cluster_name: str) -> Path:
    """Where Ray's SSH command runner keeps this cluster's ControlMaster sockets (fixed under /tmp)."""
    import hashlib

    user = hashlib.sha256(getpass.getuser().encode()).hexdigest()[:10]
    return Path("/tmp") / f"ray_ssh_{user}" / hashlib.sha256(cluster_name.encode()).hexdigest()[:10]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", help="the study's store root (a folder; must not exist yet)")
    p.add_argument("--logs", help="folder for each command's output and the rendered config (default: none kept)")
    p.add_argument("--summary", help="also write the JSON summary here")
    p.add_argument("--inside", help=argparse.SUPPRESS)
    p.add_argument("--init", action="store_true", help=argparse.SUPPRESS)
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["stop-node"]:  # the nodes' `ray stop` (RAY_WRAPPER)
        count = stop_node(argv[1], force="--force" in argv[2:] or "-f" in argv[2:])
        print(f"stopped {count} processes of {Path(argv[1]).name}")
        return 0
    args = p.parse_args(argv)
    if args.inside:
        return inside(args)
    if not args.store:
        p.error("--store is required")
    store = Path(args.store).resolve()
    if store.exists():
        print(f"error: --store {store} exists already (the study refuses to start over a store)", file=sys.stderr)
        return 2
    if (why := prerequisites()) is not None:
        print(f"error: {why}", file=sys.stderr)
        return 2
    store.mkdir(parents=True)
    root = Path(tempfile.mkdtemp(prefix="gu-", dir="/tmp"))  # short: Ray's socket paths live below it
    keep = Path(args.logs).resolve() if args.logs else None
    logs = root / "logs"
    logs.mkdir()
    started = time.monotonic()
    try:
        build_venv(root / "venv")
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(root, ignore_errors=True)
        print(f"error: could not build the machines' venv ({exc}); PyPI is needed for ray[default]", file=sys.stderr)
        return 2
    venv_s = round(time.monotonic() - started, 1)
    inner = [str(root / "venv" / "bin" / "python"), str(Path(__file__).resolve()), "--inside", str(root),
             "--store", str(store),
             "--logs", str(logs)]
    # unshare ignores SIGTERM while it waits; SIGKILLed, it takes the namespace's PID 1 (--kill-child)
    # and with it every process of the run
    namespaces = subprocess.Popen([*NAMESPACES, "--kill-child",
                                   sys.executable, str(Path(__file__).resolve()), "--init", "--", *inner])
    signal.signal(signal.SIGTERM, lambda *_: namespaces.kill())
    try:
        code = namespaces.wait()
    finally:
        namespaces.kill()
        namespaces.wait()
    summary = json.loads((logs / "summary_inside.json").read_text()) if (logs / "summary_inside.json").exists() \
        else {"failed": f"the run inside the namespaces exited {code} without a summary"}
    summary.setdefault("timings_s", {})["total"] = round(time.monotonic() - started, 1)
    summary["timings_s"]["venv"] = venv_s
    if keep is not None:
        shutil.copytree(logs, keep, dirs_exist_ok=True)
    control = control_dir(f"gnas-loopback-{root.name}")
    shutil.rmtree(control, ignore_errors=True)
    try:
        control.parent.rmdir()  # only when no other cluster's sockets are there
    except OSError:
        pass
    shutil.rmtree(root, ignore_errors=True)
    summary["left_outside"] = {"processes": [f"{p.pid} {p.name()}" for p in marked(str(root))],
                               "root_exists": root.exists(), "control_dir_exists": control.exists()}
    if args.summary:
        Path(args.summary).write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))
    return code if code in (0, 1) else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--init"]:
        sys.exit(init(sys.argv[3:] if sys.argv[2:3] == ["--"] else sys.argv[2:]))
    sys.exit(main())
