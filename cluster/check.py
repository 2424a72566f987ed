"""Offline checks of the cluster configurations — Ray's own validation plus our invariants.

    python cluster/check.py          # prints "ok" or one line per problem (exit status 1)

Needs no cloud, no network and no credentials. For each cluster-launcher config
(``cluster.yaml``, ``cluster/gcp.yaml``, ``cluster/onprem.yaml``):

* it validates against the JSON schema shipped with the installed Ray
  (``ray/autoscaler/ray-schema.json``), then goes through ``prepare_config`` +
  ``validate_config`` as ``ray up`` does before it contacts a cloud;
* the head offers no CPUs to trials (``--num-cpus=0``, and ``resources: {CPU: 0}``), every
  worker type has GPUs and scales to zero; spot (AWS) / preemptible with
  ``onHostMaintenance: TERMINATE`` and a driver wait (GCP); an NFS check (on-prem);
* the studies' storage root (``GNAS_STORE``) is shared storage — ``s3://``, ``gs://`` or an
  absolute path outside node-local places such as ``/tmp`` (on-prem: verified to be NFS);
* the pip install lines carry every ``pyproject.toml`` requirement at exactly the tested version
  of ``constraints.txt`` (inside pyproject's range), and Docker images pin that Ray version and
  one Python version for head and workers;
* security: the dashboard binds 127.0.0.1, no security-group rule opens a port but SSH to
  the world, Ray token auth is on, ulimit is raised; no credentials in any file.

``ray_cluster.yaml`` (the former name) must stay a symbolic link to ``cluster.yaml``: one
config under two names, never two copies. The KubeRay manifests (``cluster/kuberay/``) are
checked by ``cluster/check_kuberay.py`` (NetworkPolicies included), run from here.
"""
from __future__ import annotations

import copy
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[1]
LAUNCHER_CONFIGS = ("cluster.yaml", "cluster/gcp.yaml", "cluster/onprem.yaml")
RAYCLUSTER = "cluster/kuberay/raycluster.yaml"
RAYJOB = "cluster/kuberay/rayjob.yaml"
RUNTIME_ENV = "cluster/kuberay/runtime-env.yaml"
SMOKE_SPEC = "cluster/smoke.yaml"
SCANNED_FOR_SECRETS = ("cluster.yaml", "cluster")
ALIAS = "ray_cluster.yaml"  # the former name of cluster.yaml: a symbolic link to it

RAY_PORTS = {6379: "GCS", 8265: "dashboard / job API", 10001: "Ray client", 8076: "object manager"}
NODE_LOCAL = ("/tmp", "/var/tmp", "/dev/shm", "/run", "/home", "/root")
NETWORK_TAG = "gnas-ray"  # GCP: the firewall rules' target tag (cluster/README.md)
IMAGE = re.compile(r"^rayproject/ray:(?P<ray>\d+\.\d+\.\d+)-(?P<py>py3\d+)(?P<gpu>-gpu|-cu\d+)?$")
SECRETS = {
    "an AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "an AWS secret key": re.compile(r"aws_secret_access_key\s*[:=]", re.I),
    "a private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "a service-account key": re.compile(r"\"private_key(_id)?\"\s*:"),
    "a W&B API key": re.compile(r"WANDB_API_KEY\s*[:=]\s*['\"]?[0-9a-f]{32,}"),
    "a Ray auth token": re.compile(r"RAY_AUTH_TOKEN\s*[:=]\s*['\"]?[A-Za-z0-9+/=_-]{16,}"),
}


# ----------------------------------------------------------------------------- reading
def load_yaml(path: str | Path) -> Any:
    import yaml

    return yaml.safe_load(Path(REPO, path).read_text())


def load_yaml_docs(path: str | Path) -> list[Any]:
    import yaml

    return [d for d in yaml.safe_load_all(Path(REPO, path).read_text()) if d is not None]


def ray_schema() -> dict[str, Any]:
    """The cluster-config JSON schema shipped with the installed Ray."""
    import ray.autoscaler

    return json.loads(Path(ray.autoscaler.__file__).with_name("ray-schema.json").read_text())


def pyproject_requirements(path: str | Path = REPO / "pyproject.toml") -> dict[str, Any]:
    """``{canonical name: packaging Requirement}`` of pyproject's ``[project] dependencies``."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        from pip._vendor import tomli as tomllib
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    deps = tomllib.loads(Path(path).read_text())["project"]["dependencies"]
    return {canonicalize_name(r.name): r for r in map(Requirement, deps)}


def pip_requirements(commands: Iterable[str]) -> list[str]:
    """Requirement strings of every ``pip install`` in ``commands`` (options and paths skipped)."""
    with_value = {"-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-i", "--index-url",
                  "--extra-index-url", "-f", "--find-links", "--target", "-t", "--prefix", "--root"}
    found = []
    for command in commands:
        for part in re.split(r"&&|\|\||;|\n", command):
            words = shlex.split(part)
            if "pip" not in {Path(w).name for w in words} or "install" not in words:
                continue
            args = words[words.index("install") + 1:]
            skip = False
            for word in args:
                if skip:
                    skip = False
                elif word in with_value:
                    skip = True
                elif not word.startswith("-") and not word.startswith((".", "/", "~", "$")):
                    found.append(word)
    return found


def exported(commands: Iterable[str]) -> dict[str, str]:
    """``NAME=value`` pairs the setup commands export (the node environment)."""
    env = {}
    for command in commands:
        for name, value in re.findall(r"export\s+([A-Za-z_][A-Za-z0-9_]*)=([^'\"\s]+)", command):
            env[name] = value
    return env


# ----------------------------------------------------------------------------- pieces
def storage_problem(root: str | None) -> str | None:
    """Why ``root`` is not shared storage every node reaches, or ``None`` when it is."""
    if not root:
        return "no storage root"
    url = urlparse(root)
    if url.scheme in ("s3", "gs"):
        if url.username or url.password:
            return "the root carries credentials (nodes take them from their instance profile / service account)"
        return None if url.hostname else f"{root!r} names no bucket"
    if url.scheme not in ("", "file"):
        return f"{root!r}: use s3://, gs:// or an NFS path"
    path = url.path if url.scheme else root
    if not path.startswith("/"):
        return f"{root!r} is relative: every node would resolve it on its own disk"
    if any(path == p or path.startswith(p + "/") for p in NODE_LOCAL):
        return f"{root!r} is node-local storage: trials on other nodes could not write there"
    return None


def tested_versions(path: str | Path = REPO / "constraints.txt") -> dict[str, str]:
    """``{canonical name: version}`` of the tested exact set (``constraints.txt``); empty without it."""
    from packaging.utils import canonicalize_name

    path = Path(path)
    if not path.is_file():
        return {}
    pins = {}
    for line in path.read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            pins[canonicalize_name(name.split("[")[0])] = version.strip()
    return pins


def pin_problems(requirements: Iterable[str], where: str, ray_image: str | None = None) -> list[str]:
    """How ``requirements`` differ from what the tests ran with (``ray_image``: Ray comes from
    this image): every pyproject requirement installed at exactly constraints.txt's version,
    which must lie in pyproject's range (or, without constraints.txt, exactly pyproject's)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    want = pyproject_requirements()
    tested = tested_versions()
    got = {canonicalize_name(r.name): r for r in map(Requirement, requirements)}
    problems = []
    for name, req in want.items():
        have = got.get(name)
        if have is None:
            if name == "ray" and ray_image is not None:
                problems += image_problems(ray_image, where)
            else:
                problems.append(f"{where}: pyproject's {req} is not installed")
            continue
        pinned = [s.version for s in have.specifier if s.operator == "=="]
        if name not in tested:  # not (yet) in the tested set: one exact version inside pyproject's range
            if len(pinned) != 1 or not req.specifier.contains(pinned[0], prereleases=True):
                problems.append(f"{where}: installs {have}, pyproject pins {req} (pin one version inside it)")
        elif pinned != [tested[name]]:
            problems.append(f"{where}: installs {have}, the tested set (constraints.txt) has {name}=={tested[name]}")
        elif not req.specifier.contains(pinned[0], prereleases=True):
            problems.append(f"{where}: installs {have}, outside pyproject's {req}")
        if not set(req.extras) <= set(have.extras):
            problems.append(f"{where}: installs {have} without pyproject's extras {sorted(req.extras)}")
    return problems


def image_problems(image: str, where: str, gpu: bool | None = None) -> list[str]:
    """The image must be Ray's, with pyproject's Ray version (and a GPU build where asked)."""
    match = IMAGE.match(image or "")
    if match is None:
        return [f"{where}: image {image!r} is not rayproject/ray:<version>-py3XX[-gpu]"]
    pin = ray_pin()
    problems = []
    if match["ray"] != pin:
        problems.append(f"{where}: image {image} has Ray {match['ray']}, pyproject pins {pin}")
    if gpu is True and not match["gpu"]:
        problems.append(f"{where}: GPU nodes need a GPU image (…-gpu), got {image}")
    return problems


def ray_pin() -> str:
    """The Ray version the cluster runs: the tested one (constraints.txt), else pyproject's pin."""
    if (tested := tested_versions().get("ray")) is not None:
        return tested
    spec = pyproject_requirements()["ray"].specifier
    pins = [s.version for s in spec if s.operator == "=="]
    return pins[0] if pins else str(spec)


def python_tag(image: str) -> str | None:
    match = IMAGE.match(image or "")
    return match["py"] if match else None


def open_to_world(rule: dict[str, Any]) -> str | None:
    """What an AWS ingress rule opens to the whole internet besides SSH, or ``None``."""
    world = any(r.get("CidrIp") == "0.0.0.0/0" for r in rule.get("IpRanges", [])) or any(
        r.get("CidrIpv6") == "::/0" for r in rule.get("Ipv6Ranges", []))
    if not world:
        return None
    low, high = rule.get("FromPort", -1), rule.get("ToPort", -1)
    if str(rule.get("IpProtocol")) == "-1" or low == -1:
        return "every port"
    if (low, high) == (22, 22):
        return None
    ray = [f"{port} ({name})" for port, name in RAY_PORTS.items() if low <= port <= high]
    return f"ports {low}-{high}" + (f", Ray's {', '.join(ray)}" if ray else "")


def _flag(commands: Iterable[str], flag: str) -> bool:
    """Whether ``--flag=value`` (or ``--flag value``) appears in the commands."""
    text = " ".join(commands)
    name, _, value = flag.partition("=")
    return re.search(rf"{re.escape(name)}(=|\s+){re.escape(value)}(\s|$|;)", text) is not None


# ----------------------------------------------------------------------------- launcher configs
def schema_problems(config: Any, where: str) -> list[str]:
    """Errors of ``config`` against the installed Ray's cluster-config schema."""
    import jsonschema

    validator = jsonschema.Draft7Validator(ray_schema())
    return [f"{where}: schema: {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
            for e in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.path)))]


def launcher_problems(config: dict[str, Any], where: str) -> list[str]:
    """What ``ray up`` itself checks before contacting a cloud (defaults merged, validated)."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    try:
        validate_config(prepare_config(copy.deepcopy(config)))
    except (Exception, SystemExit) as exc:  # the local provider aborts through click
        message = getattr(exc, "message", None) or (str(exc).strip().splitlines() or [""])[0]
        return [f"{where}: ray up would refuse it: {type(exc).__name__}: {message}"]
    return []


def invariant_problems(config: dict[str, Any], where: str, repo: Path = REPO) -> list[str]:
    """The project's own rules for a cluster-launcher config (see the module docstring)."""
    problems: list[str] = []

    def bad(message: str) -> None:
        problems.append(f"{where}: {message}")

    provider = config["provider"]["type"]
    head_start = config.get("head_start_ray_commands", [])
    worker_start = config.get("worker_start_ray_commands", [])
    setup = [*config.get("setup_commands", []), *config.get("head_setup_commands", [])]
    worker_setup = config.get("worker_setup_commands", [])

    # --- the head runs no trials; workers have GPUs
    if not _flag(head_start, "--num-cpus=0"):
        bad("the head must start with --num-cpus=0 (it runs no trials)")
    if _flag(worker_start, "--num-gpus=0") or _flag(worker_start, "--num-cpus=0"):
        bad("worker_start_ray_commands hide the workers' CPUs or GPUs")
    if provider == "local":
        if "nvidia-smi" not in " ".join(worker_setup):
            bad("on-prem workers must check their GPU (nvidia-smi) in worker_setup_commands")
    else:
        types = config.get("available_node_types", {})
        head = types.get(config.get("head_node_type"), {})
        if head.get("resources", {}).get("CPU") != 0 or head.get("resources", {}).get("GPU", 0):
            bad("the head node type must declare resources {CPU: 0} (no trials, no GPUs)")
        workers = {k: v for k, v in types.items() if k != config.get("head_node_type")}
        if not workers:
            bad("no worker node type")
        for name, node in workers.items():
            gpus = node.get("resources", {}).get("GPU", 0)
            if gpus < 1:
                bad(f"worker type {name!r} declares no GPU")
            if node.get("min_workers", 0) != 0 or node.get("max_workers", 0) < 1:
                bad(f"worker type {name!r} must scale from min_workers 0 to max_workers >= 1")
            node_config = node.get("node_config", {})
            if provider == "aws":
                if node_config.get("InstanceMarketOptions", {}).get("MarketType") != "spot":
                    bad(f"worker type {name!r} is not spot")
                if "IamInstanceProfile" not in node_config:
                    bad(f"worker type {name!r} has no IamInstanceProfile: it could not reach the store bucket")
            if provider == "gcp":
                count = sum(a.get("acceleratorCount", 0) for a in node_config.get("guestAccelerators", []))
                if count != gpus:
                    bad(f"worker type {name!r}: guestAccelerators give {count} GPUs, resources say {gpus}")
                scheduling = node_config.get("scheduling", {})
                if not (isinstance(scheduling, dict) and scheduling.get("preemptible") is True
                        and scheduling.get("onHostMaintenance") == "TERMINATE"
                        and scheduling.get("automaticRestart") is False):
                    bad(f"worker type {name!r}: scheduling must be preemptible, onHostMaintenance "
                        "TERMINATE, automaticRestart false")
                if "nvidia-smi" not in " ".join(node.get("initialization_commands", [])):
                    bad(f"worker type {name!r}: initialization_commands must wait for the NVIDIA driver")
                if not node_config.get("serviceAccounts"):
                    bad(f"worker type {name!r} has no service account: it could not reach the store bucket")
        if provider == "gcp":
            for name, node in types.items():
                if NETWORK_TAG not in node.get("node_config", {}).get("tags", {}).get("items", []):
                    bad(f"node type {name!r} lacks the network tag {NETWORK_TAG!r} its firewall rules target")
        if config.get("idle_timeout_minutes") is None:
            bad("no idle_timeout_minutes: idle GPU workers would never be released")
        if provider == "aws":
            for rule in config["provider"].get("security_group", {}).get("IpPermissions", []):
                if (what := open_to_world(rule)) is not None:
                    bad(f"a security-group rule opens {what} to the internet")
        docker = config.get("docker", {})
        head_image = docker.get("head_image", docker.get("image"))
        worker_image = docker.get("worker_image", docker.get("image"))
        if not (head_image and worker_image):
            bad("no Docker image: nodes would not get a pinned Ray")
        else:
            problems += image_problems(head_image, where) + image_problems(worker_image, where, gpu=True)
            if python_tag(head_image) != python_tag(worker_image):
                bad(f"head and workers run different Pythons ({head_image} vs {worker_image})")

    # --- security: dashboard on loopback, token auth, no credentials
    if _flag(head_start, "--dashboard-host=0.0.0.0") or not _flag(head_start, "--dashboard-host=127.0.0.1"):
        bad("the head must start with --dashboard-host=127.0.0.1 (dashboard and job API stay private)")
    for kind, commands in (("head", head_start), ("worker", worker_start)):
        text = " ".join(commands)
        if "RAY_AUTH_MODE=token" not in text:
            bad(f"{kind}_start_ray_commands must set RAY_AUTH_MODE=token")
        if "ulimit -n" not in text:
            bad(f"{kind}_start_ray_commands must raise the open-files limit (ulimit -n)")
    mounts = config.get("file_mounts", {})
    if "~/.ray/auth_token" not in mounts:
        bad("file_mounts must copy ~/.ray/auth_token (the Ray token) to every node")

    # --- storage, W&B, code
    env = exported(setup)
    if (why := storage_problem(env.get("GNAS_STORE"))) is not None:
        bad(f"GNAS_STORE: {why}")
    elif provider == "local":
        mount = env["GNAS_STORE"].rstrip("/").rsplit("/", 1)[0] or "/"
        if not any("findmnt" in c and "nfs" in c and mount in c for c in setup):
            bad(f"on-prem setup must verify that {mount} is an NFS mount on every node")
    if env.get("WANDB_MODE") != "offline":
        bad("setup must export WANDB_MODE=offline (W&B online only when a job asks)")
    if "WANDB_API_KEY" in env:
        bad("WANDB_API_KEY must not be set by the config (pass it per job from your environment)")
    problems += pin_problems(pip_requirements([*setup, *worker_setup]), where)
    for remote, local in mounts.items():
        if local.startswith("./") and not (repo / local).exists():
            bad(f"file_mounts: {local} does not exist in the repository")
    if ".venv" not in config.get("rsync_exclude", []):
        bad("rsync_exclude must leave out .venv")
    return problems


def launcher_config_problems(path: str, repo: Path = REPO) -> list[str]:
    config = load_yaml(repo / path)
    problems = schema_problems(config, path)
    if problems:
        return problems
    return launcher_problems(config, path) + invariant_problems(config, path, repo)


# ----------------------------------------------------------------------------- KubeRay
def _kuberay():
    """cluster/check_kuberay.py (loaded by path: ``cluster/`` is no package)."""
    import importlib.util
    import types

    name = "gnas_cluster_check_kuberay"
    if name not in sys.modules:
        me = sys.modules.get(__name__)
        if getattr(me, "__file__", None) != __file__:  # loaded by path without registering itself
            me = types.ModuleType("gnas_cluster_check")
            me.__dict__.update(globals())
        sys.modules.setdefault("gnas_cluster_check", me)
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("check_kuberay.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


# ----------------------------------------------------------------------------- the rest
def secret_problems(repo: Path = REPO) -> list[str]:
    """Credentials written into any cluster file (keys, tokens, private keys)."""
    problems = []
    for entry in SCANNED_FOR_SECRETS:
        base = repo / entry
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file()
                                                     and p.suffix in (".yaml", ".yml", ".md", ".py", ".json", ".sh"))
        for path in files:
            if path.resolve() == Path(__file__).resolve():
                continue  # the patterns themselves
            text = path.read_text(errors="replace")
            for what, pattern in SECRETS.items():
                if pattern.search(text):
                    problems.append(f"{path.relative_to(repo)}: contains {what}")
    return problems


def alias_problems(repo: Path = REPO) -> list[str]:
    """``ray_cluster.yaml`` is ``cluster.yaml`` under its former name: a link, never a copy."""
    alias, target = repo / ALIAS, repo / LAUNCHER_CONFIGS[0]
    if not alias.is_symlink():
        return [f"{ALIAS}: must be a symbolic link to {target.name} (a copy drifts)"]
    if alias.resolve() != target.resolve():
        return [f"{ALIAS}: links to {alias.resolve()}, not to {target.name}"]
    return []


def smoke_spec_problems(repo: Path = REPO) -> list[str]:
    from orchestrator.spec import SpecError, load_spec

    try:
        spec = load_spec(repo / SMOKE_SPEC)
    except SpecError as exc:
        return [f"{SMOKE_SPEC}: {exc}"]
    if not 0 < spec.resources.gpu <= 1:
        return [f"{SMOKE_SPEC}: trials should ask for a fraction of a GPU, got {spec.resources.gpu}"]
    return []


def check_all(repo: Path = REPO) -> list[str]:
    """Every problem in every cluster file; an empty list when all is well."""
    problems: list[str] = []
    for path in LAUNCHER_CONFIGS:
        problems += launcher_config_problems(path, repo)
    problems += _kuberay().kuberay_problems(repo)
    problems += alias_problems(repo)
    problems += secret_problems(repo)
    problems += smoke_spec_problems(repo)
    return problems


def main() -> int:
    import logging

    logging.getLogger("ray.autoscaler").setLevel(logging.WARNING)  # prepare_config's chatter
    problems = check_all()
    for problem in problems:
        print(problem)
    if not problems:
        print(f"ok: {', '.join(LAUNCHER_CONFIGS)}, {RAYCLUSTER}, {RAYJOB}, {RUNTIME_ENV}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
