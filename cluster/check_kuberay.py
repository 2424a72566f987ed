"""Offline checks of the KubeRay manifests (``cluster/kuberay/``), the KubeRay half of
``cluster/check.py`` (which runs them; ``python cluster/check.py``).

They parse, carry the same Ray version, images and pins as the launcher configs
(``runtime-env.yaml`` and the RayJob's runtime env — accepted by Ray's own ``RuntimeEnv``), the
head runs no trials behind a ClusterIP service, workers have GPUs and scale to zero, W&B's key
comes only from a Secret, the RayJob stores to shared storage, and every pod they start (head,
workers, a RayJob's submitter) is selected by a NetworkPolicy of its own file that

* admits named pods only (:func:`exposure_problems`) — a peer from other namespaces names its
  namespace *and* its pod in one ``from`` entry (a label alone can be set by anyone, in any
  namespace: :func:`peer_problem`);
* limits egress (:func:`egress_problems`): DNS to the cluster's DNS pods, Ray's ports to the
  job's own pods, the store (and the Kubernetes API, PyPI) over HTTPS only — nothing else.
"""
from __future__ import annotations

import importlib.util
import shlex
import sys
from pathlib import Path
from typing import Any


def _common():
    """``cluster/check.py`` (the shared readers and rules), one module however either file is reached."""
    name = "gnas_cluster_check"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("check.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_c = _common()
REPO = _c.REPO
RAYCLUSTER, RAYJOB, RUNTIME_ENV, RAY_PORTS = _c.RAYCLUSTER, _c.RAYJOB, _c.RUNTIME_ENV, _c.RAY_PORTS
load_yaml, load_yaml_docs, storage_problem = _c.load_yaml, _c.load_yaml_docs, _c.storage_problem
pin_problems, image_problems, ray_pin, python_tag = _c.pin_problems, _c.image_problems, _c.ray_pin, _c.python_tag

def _containers(pod_template: dict[str, Any]) -> list[dict[str, Any]]:
    return pod_template.get("spec", {}).get("containers", [])


def raycluster_spec_problems(spec: dict[str, Any], where: str) -> list[str]:
    """Invariants of a RayCluster spec (a RayCluster's, or a RayJob's ``rayClusterSpec``)."""
    problems: list[str] = []

    def bad(message: str) -> None:
        problems.append(f"{where}: {message}")

    if str(spec.get("rayVersion")) != ray_pin():
        bad(f"rayVersion {spec.get('rayVersion')!r}, pyproject pins Ray {ray_pin()}")
    if spec.get("authOptions", {}).get("mode") != "token":
        bad("authOptions.mode must be token")
    head = spec.get("headGroupSpec", {})
    if str(head.get("rayStartParams", {}).get("num-cpus")) != "0":
        bad("headGroupSpec.rayStartParams.num-cpus must be \"0\" (the head runs no trials)")
    if head.get("serviceType", "ClusterIP") != "ClusterIP" or head.get("enableIngress"):
        bad("the head service must be ClusterIP without Ingress (never reachable from the internet)")
    head_containers = _containers(head.get("template", {}))
    images = {"head": [c.get("image") for c in head_containers]}
    for c in head_containers:
        problems += image_problems(c.get("image"), f"{where}: head")
        if c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu"):
            bad("the head asks for a GPU")
    groups = spec.get("workerGroupSpecs", [])
    if not groups:
        bad("no worker group")
    for group in groups:
        name = group.get("groupName")
        if group.get("minReplicas") != 0 or int(group.get("maxReplicas", 0)) < 1:
            bad(f"worker group {name!r} must scale from minReplicas 0 to maxReplicas >= 1")
        if str(group.get("rayStartParams", {}).get("num-gpus", "")) == "0":
            bad(f"worker group {name!r} hides its GPUs (num-gpus 0)")
        for c in _containers(group.get("template", {})):
            if int(c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0)) < 1:
                bad(f"worker group {name!r}: container {c.get('name')!r} has no nvidia.com/gpu limit")
            problems += image_problems(c.get("image"), f"{where}: worker group {name!r}", gpu=True)
            images.setdefault("workers", []).append(c.get("image"))
    pythons = {python_tag(i) for i in images["head"] + images.get("workers", [])}
    if len(pythons) > 1:
        bad(f"head and workers run different Pythons: {sorted(map(str, pythons))}")
    pods = [head.get("template", {})] + [g.get("template", {}) for g in groups]
    for pod in pods:
        for c in _containers(pod):
            env = {e["name"]: e for e in c.get("env", [])}
            key = env.get("WANDB_API_KEY")
            if key is not None and "secretKeyRef" not in key.get("valueFrom", {}):
                bad(f"container {c.get('name')!r}: WANDB_API_KEY must come from a Secret (valueFrom.secretKeyRef)")
            if env.get("WANDB_MODE", {}).get("value") != "offline":
                bad(f"container {c.get('name')!r}: WANDB_MODE must default to offline")
            if "RAY_AUTH_TOKEN" in env and "value" in env["RAY_AUTH_TOKEN"]:
                bad(f"container {c.get('name')!r}: RAY_AUTH_TOKEN written into the manifest")
            if (why := storage_problem(env.get("GNAS_STORE", {}).get("value"))) is not None:
                bad(f"container {c.get('name')!r}: GNAS_STORE: {why}")
    return problems


def runtime_env_problems(runtime_env: dict[str, Any], where: str, ray_image: str) -> list[str]:
    """Ray must accept the runtime env; its pip list must carry pyproject's pins."""
    from ray.runtime_env import RuntimeEnv

    unknown = set(runtime_env) - set(RuntimeEnv.known_fields)
    if unknown:
        return [f"{where}: unknown runtime-env fields {sorted(unknown)}"]
    try:
        RuntimeEnv(**runtime_env)
    except Exception as exc:  # noqa: BLE001 - Ray's own verdict, reported as is
        return [f"{where}: Ray rejects the runtime env: {exc}"]
    pip = runtime_env.get("pip", {})
    packages = pip.get("packages", []) if isinstance(pip, dict) else pip
    problems = pin_problems(packages, where, ray_image=ray_image)
    if any(p.split("[")[0].split("=")[0].strip().lower() == "ray" for p in packages):
        problems.append(f"{where}: do not pip-install Ray in a runtime env (the image pins it)")
    return problems


def _pod_templates(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, pod template) of every pod a RayCluster or RayJob document starts."""
    spec = doc.get("spec", {})
    if doc.get("kind") == "RayJob":
        out = [("submitter", spec["submitterPodTemplate"])] if "submitterPodTemplate" in spec else []
        spec = spec.get("rayClusterSpec", {})
    else:
        out = []
    out.append(("head", spec.get("headGroupSpec", {}).get("template", {})))
    out += [(f"worker group {g.get('groupName')!r}", g.get("template", {})) for g in spec.get("workerGroupSpecs", [])]
    return out


WORLD = ("0.0.0.0/0", "::/0")
HTTPS = {(443, "TCP")}


def _labels(selector: Any) -> bool:
    return bool(selector) and bool(selector.get("matchLabels") or selector.get("matchExpressions"))


def peer_problem(peer: dict[str, Any]) -> str | None:
    """Why one NetworkPolicy peer (a ``from`` / ``to`` entry) reaches more than named pods of a
    named namespace — ``None`` when it does not. A pod label alone is no identity (anyone who may
    create a pod may set it), so a peer in another namespace names that namespace (by
    ``kubernetes.io/metadata.name``, which the API server sets) *and* the pod, in one entry."""
    if not peer:
        return "an empty peer matches everything"
    if "ipBlock" in peer:
        return "admits the whole internet" if peer["ipBlock"].get("cidr") in WORLD else None
    if "namespaceSelector" in peer:
        if not _labels(peer["namespaceSelector"]):
            return "namespaceSelector {} matches every namespace: name the namespace"
        if not _labels(peer.get("podSelector")):
            return "matches every pod of the selected namespaces: add a podSelector to the same entry"
        return None
    if not _labels(peer.get("podSelector")):
        return "podSelector {} matches every pod of the namespace"
    return None


def _restricting(policy: dict[str, Any]) -> bool:
    """An ingress NetworkPolicy whose every rule names whom it admits (no rule open to all)."""
    spec = policy.get("spec", {})
    if "Ingress" not in spec.get("policyTypes", []):
        return False
    for rule in spec.get("ingress", []):
        peers = rule.get("from") or []
        if not peers:
            return False  # a rule without "from" admits every source
        if any(peer_problem(peer) for peer in peers):
            return False
    return True


def _ports(rule: dict[str, Any]) -> set[tuple[Any, str]]:
    return {(p.get("port"), p.get("protocol", "TCP")) for p in rule.get("ports") or []}


def egress_problems(policy: dict[str, Any], where: str) -> list[str]:
    """A NetworkPolicy's egress limits: Ray's ports only to the pods it selects itself, DNS (port
    53) only to named pods of a named namespace, anything beyond the cluster over HTTPS (443)
    only, a single address (/32: a metadata server) on named ports only; nothing else leaves."""
    spec = policy.get("spec", {})
    name = f"{where}: NetworkPolicy {policy.get('metadata', {}).get('name')!r}"
    if "Egress" not in spec.get("policyTypes", []):
        return [f"{name}: no egress limit (policyTypes lacks Egress): its pods may connect anywhere"]
    own = (spec.get("podSelector") or {}).get("matchLabels")
    problems, dns = [], False
    for i, rule in enumerate(spec.get("egress", [])):
        peers, ports = rule.get("to") or [], _ports(rule)
        if not peers:
            problems.append(f"{name}: egress rule {i} has no 'to': it reaches every destination")
        for peer in peers:
            if "ipBlock" in peer:
                cidr = peer["ipBlock"].get("cidr", "")
                if not ports or (not cidr.endswith("/32") and not ports <= HTTPS):
                    problems.append(f"{name}: egress rule {i} reaches {cidr} on {sorted(ports) or 'every port'}"
                                    " (beyond the cluster: HTTPS 443 only; a single /32 address on named ports)")
            elif "namespaceSelector" in peer:
                if (why := peer_problem(peer)) or not ports:
                    problems.append(f"{name}: egress rule {i}: {why or 'no ports'}")
                dns = dns or {p for p, _ in ports} == {53}
            elif peer.get("podSelector", {}).get("matchLabels") != own:
                problems.append(f"{name}: egress rule {i}: pods other than its own ({peer.get('podSelector')})")
    if not dns:
        problems.append(f"{name}: no DNS rule (port 53 to the cluster's DNS pods in their namespace)")
    return problems


def exposure_problems(docs: list[dict[str, Any]], where: str) -> list[str]:
    """Pods of a manifest that no restricting NetworkPolicy of the same manifest selects: their
    Ray ports (GCS, dashboard / job API, client) would be open to every pod of the cluster."""
    policies = [d for d in docs if d.get("kind") == "NetworkPolicy" and _restricting(d)]
    ports = ", ".join(f"{p} {what}" for p, what in RAY_PORTS.items() if p != 8076)
    problems = []
    for doc in docs:
        if doc.get("kind") not in ("RayCluster", "RayJob"):
            continue
        for name, pod in _pod_templates(doc):
            labels = set((pod.get("metadata", {}).get("labels") or {}).items())
            covered = any(set(p["spec"].get("podSelector", {}).get("matchLabels", {}).items()) <= labels
                          and p["spec"].get("podSelector", {}).get("matchLabels") for p in policies)
            if not covered:
                problems.append(f"{where}: {doc['kind']} {name} pods ({ports}) are open to every pod of the cluster;"
                                " add a NetworkPolicy that selects their labels and admits only the job's own pods")
    return problems


def kuberay_problems(repo: Path = REPO) -> list[str]:
    problems: list[str] = []
    cluster_docs = load_yaml_docs(repo / RAYCLUSTER)
    job_docs = load_yaml_docs(repo / RAYJOB)
    kinds = {d.get("kind"): d for d in cluster_docs + job_docs}
    for kind in ("RayCluster", "RayJob"):
        if kind not in kinds:
            problems.append(f"cluster/kuberay: no {kind}")
    if problems:
        return problems
    for doc in (kinds["RayCluster"], kinds["RayJob"]):
        if doc.get("apiVersion") != "ray.io/v1":
            problems.append(f"{doc['kind']}: apiVersion must be ray.io/v1")
    cluster_spec = kinds["RayCluster"]["spec"]
    job_spec = kinds["RayJob"]["spec"]
    problems += raycluster_spec_problems(cluster_spec, RAYCLUSTER)
    problems += raycluster_spec_problems(job_spec.get("rayClusterSpec", {}), f"{RAYJOB}: rayClusterSpec")

    # The RayJob's cluster is the RayCluster: same images, start parameters and resources.
    def shape(spec: dict[str, Any]) -> Any:
        head = spec.get("headGroupSpec", {})
        return (spec.get("rayVersion"), head.get("rayStartParams"),
                [(c.get("image"), c.get("resources")) for c in _containers(head.get("template", {}))],
                [(g.get("rayStartParams"), g.get("minReplicas"), g.get("maxReplicas"),
                  [(c.get("image"), c.get("resources")) for c in _containers(g.get("template", {}))])
                 for g in spec.get("workerGroupSpecs", [])])
    if shape(cluster_spec) != shape(job_spec.get("rayClusterSpec", {})):
        problems.append(f"{RAYJOB}: rayClusterSpec differs from {RAYCLUSTER} (images, start parameters or resources)")

    problems += exposure_problems(cluster_docs, RAYCLUSTER)
    problems += exposure_problems(job_docs, RAYJOB)
    for docs, where in ((cluster_docs, RAYCLUSTER), (job_docs, RAYJOB)):
        for policy in (d for d in docs if d.get("kind") == "NetworkPolicy"):
            problems += egress_problems(policy, where)

    image = _containers(cluster_spec["headGroupSpec"]["template"])[0].get("image")
    import yaml

    runtime_env = yaml.safe_load(job_spec.get("runtimeEnvYAML", "")) or {}
    problems += runtime_env_problems(runtime_env, f"{RAYJOB}: runtimeEnvYAML", image)
    shared = load_yaml(repo / RUNTIME_ENV)
    problems += runtime_env_problems(shared, RUNTIME_ENV, image)
    if shared.get("pip") != runtime_env.get("pip"):
        problems.append(f"{RAYJOB}: its pip list differs from {RUNTIME_ENV}")

    words = shlex.split(job_spec.get("entrypoint", ""))
    out = words[words.index("--out") + 1] if "--out" in words[:-1] else None
    if (why := storage_problem(out)) is not None:
        problems.append(f"{RAYJOB}: entrypoint --out: {why}")
    if "--address" in words[:-1] and words[words.index("--address") + 1] != "auto":
        problems.append(f"{RAYJOB}: inside a job the entrypoint must use --address auto")
    return problems


