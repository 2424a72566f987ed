"""A run in its own network, PID and mount namespaces, and what it may leave behind: the helpers
of ``cluster/up_local.py`` (processes of a root or a node, listeners, peers, the namespaces'
PID 1, the machines' venv).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SSHD = "/usr/sbin/sshd"
NAMESPACES = ["unshare", "--net", "--pid", "--fork", "--mount-proc"]


class Failed(Exception):
    """A step or a check that did not hold."""


def marked(root: str, me: int | None = None) -> list:
    """Live processes started for ``root``: their command line, working directory, environment
    or an open file names it. (Ray renames its agents and workers, ``ray::DashboardAgent``…,
    writing the title over their arguments and environment; their log files still name it.)"""
    import psutil

    skip = {os.getpid()} | ({me} if me else set())
    try:
        skip |= {p.pid for p in psutil.Process().parents()}
    except psutil.Error:
        pass
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        if proc.pid in skip or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            hit = any(root in part for part in proc.info["cmdline"] or ()) or root in proc.cwd()
            hit = hit or any(root in value for value in proc.environ().values())
            hit = hit or any(root in _link(f"/proc/{proc.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{proc.pid}/fd"))
        except (psutil.Error, OSError):
            continue
        if hit:
            found.append(proc)
    return found


def _link(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def stop_node(node_dir: str, force: bool = False, grace_s: float = 10.0) -> int:
    """``ray stop`` for one loopback node: SIGTERM (SIGKILL with ``force``) to the processes of
    ``node_dir`` only — then SIGKILL to any still alive after ``grace_s``. Returns how many."""
    import psutil

    procs = [p for p in marked(node_dir) if _name(p) != "sshd"]
    for proc in procs:
        try:
            proc.send_signal(signal.SIGKILL if force else signal.SIGTERM)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=grace_s)
    return len(procs)


def _name(proc) -> str:
    import psutil

    try:
        return proc.name()
    except psutil.Error:
        return ""


def listeners() -> list[str]:
    """``ss -ltnp`` of this (network) namespace: local address:port and process, one per line."""
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    return [f"{line.split()[3]} {line.split()[-1] if 'users:' in line else ''}".strip() for line in out.splitlines()]


def peers() -> set[str]:
    """Remote addresses of every TCP connection in this namespace (``ss -tn``)."""
    out = subprocess.run(["ss", "-Htn"], capture_output=True, text=True, check=True).stdout
    return {line.split()[4].rsplit(":", 1)[0].strip("[]") for line in out.splitlines() if len(line.split()) > 4}


def _write_exec(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def _wait(probe, timeout: float, message: str, details) -> Any:
    """Poll ``probe`` (every 0.5 s) until it returns something truthy; :class:`Failed` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = probe()
        if got:
            return got
        time.sleep(0.5)
    raise Failed(f"{message} within {timeout:.0f} s\n{details()}")


def init(argv: list[str]) -> int:
    """PID 1 of the namespace: run ``argv``, reap every orphan until it exits, return its status.
    When PID 1 exits the kernel kills whatever is still alive in the namespace."""
    child = subprocess.Popen(argv)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 1
        if pid == child.pid:
            return os.waitstatus_to_exitcode(status)


def prerequisites() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network, PID and mount namespaces; sshd)"
    for tool, package in ((SSHD, "openssh-server"), ("rsync", "rsync"), ("ssh", "openssh-client"),
                          ("ssh-keygen", "openssh-client"), ("unshare", "util-linux"), ("ss", "iproute2"),
                          ("ip", "iproute2")):
        if shutil.which(tool) is None:
            return f"{tool} not found: apt-get install {package}"
    probe = subprocess.run([*NAMESPACES, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create namespaces here (unshare: {probe.stderr.strip()})"
    return None


def build_venv(venv: Path) -> None:
    """The machines' Python: this checkout's venv plus Ray's ``default`` extra (the dashboard and
    job API: ``onprem.yaml`` installs ``ray[default,tune]``, the project itself needs only
    ``ray[tune]``). A venv of its own that reads the checkout's through a ``.pth`` file, so
    nothing is installed into the checkout's venv. Needs PyPI (run outside the namespaces)."""
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "gnas_checkout.pth").write_text(f"import site; site.addsitedir({sysconfig.get_path('purelib')!r})\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--disable-pip-version-check", "-c", str(REPO / "constraints.txt"), "ray[default]==2.60.0"],
                   check=True, stdout=subprocess.DEVNULL)
    for name in ("ray", "gnas"):  # the checkout's entry points, run by this venv's interpreter
        script = (Path(sys.executable).parent / name).read_text().split("\n", 1)[1]
        _write_exec(venv / "bin" / name, f"#!{venv / 'bin' / 'python'}\n{script}")
