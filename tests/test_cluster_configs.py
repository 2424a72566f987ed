"""Cluster configurations, checked without a cloud: Ray's schema, `ray up`'s own validation,
the project's invariants (cluster/check.py), KubeRay manifests, and the README's commands."""
from __future__ import annotations

import copy
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("cluster_check", REPO / "cluster" / "check.py")
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)

kuberay = check._kuberay()  # cluster/check_kuberay.py, the KubeRay half of the checks

LAUNCHER = check.LAUNCHER_CONFIGS


def config(path: str) -> dict:
    return yaml.safe_load((REPO / path).read_text())


@pytest.mark.parametrize("path", LAUNCHER)
def test_launcher_config_validates_against_the_installed_rays_schema(path):
    import ray

    schema_file = Path(ray.__file__).parent / "autoscaler" / "ray-schema.json"
    assert schema_file.is_file()
    schema = check.ray_schema()
    assert schema["title"] == "Ray AutoScaler" and schema["additionalProperties"] is False
    jsonschema.validate(config(path), schema)  # raises with the offending path


@pytest.mark.parametrize("path", LAUNCHER)
def test_ray_up_would_accept_the_config(path):
    """prepare_config + validate_config: what `ray up` runs before it contacts the cloud."""
    assert check.launcher_problems(config(path), path) == []


@pytest.mark.parametrize("path", LAUNCHER)
def test_launcher_config_keeps_the_projects_invariants(path):
    assert check.invariant_problems(config(path), path) == []


@pytest.mark.parametrize("path", LAUNCHER)
def test_setup_installs_exactly_the_tested_versions(path):
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    cfg = config(path)
    commands = [*cfg["setup_commands"], *cfg.get("head_setup_commands", []), *cfg.get("worker_setup_commands", [])]
    installed = {canonicalize_name(r.name): r for r in map(Requirement, check.pip_requirements(commands))}
    wanted = check.pyproject_requirements()
    assert set(wanted) <= set(installed), f"not installed: {sorted(set(wanted) - set(installed))}"
    tested = check.tested_versions()
    for name, req in wanted.items():
        version = [s.version for s in installed[name].specifier if s.operator == "=="]
        assert len(version) == 1 and req.specifier.contains(version[0]), f"{path}: {installed[name]} vs {req}"
        assert name not in tested or version == [tested[name]], f"{path}: {installed[name]} vs tested {tested[name]}"
        assert set(req.extras) <= set(installed[name].extras)
    assert str(installed["torch"]) == "torch==2.13.0" and str(installed["ray"]) == "ray[default,tune]==2.60.0"


def test_cloud_configs_share_images_and_code_mounts():
    aws, gcp = config("cluster.yaml"), config("cluster/gcp.yaml")
    assert aws["docker"] == gcp["docker"]
    assert aws["file_mounts"] == gcp["file_mounts"] == config("cluster/onprem.yaml")["file_mounts"]
    assert aws["setup_commands"][1:] == gcp["setup_commands"][1:]  # all but the storage root


def test_storage_roots_are_shared_storage():
    roots = {p: check.exported(config(p)["setup_commands"])["GNAS_STORE"] for p in LAUNCHER}
    assert roots["cluster.yaml"].startswith("s3://")
    assert roots["cluster/gcp.yaml"].startswith("gs://")
    assert roots["cluster/onprem.yaml"] == "/mnt/gnas/studies"  # verified to be NFS at setup
    assert all(check.storage_problem(r) is None for r in roots.values())


@pytest.mark.parametrize("root, shared", [
    ("s3://bucket/gnas", True), ("gs://bucket", True), ("/mnt/gnas/studies", True),
    ("/tmp/gnas", False), ("/dev/shm/x", False), ("results", False), ("~/results", False),
    ("s3://", False), ("hdfs://nn/x", False), ("", False), ("s3://KEY:SECRET@bucket/gnas", False),
])
def test_storage_root_rule(root, shared):
    assert (check.storage_problem(root) is None) is shared


def _break(path, edit):
    cfg = copy.deepcopy(config(path))
    edit(cfg)
    return check.schema_problems(cfg, path) + check.invariant_problems(cfg, path)


def _replace_in(key, old, new):
    def edit(cfg):
        cfg[key] = [c.replace(old, new) for c in cfg[key]]
    return edit


@pytest.mark.parametrize("path, edit, expected", [
    ("cluster.yaml", lambda c: c["available_node_types"]["head"].update(resources={"CPU": 8}),
     "head node type must declare resources {CPU: 0}"),
    ("cluster.yaml", _replace_in("head_start_ray_commands", "--num-cpus=0 ", ""), "--num-cpus=0"),
    ("cluster/onprem.yaml", _replace_in("head_start_ray_commands", "--num-cpus=0 ", ""), "--num-cpus=0"),
    ("cluster.yaml", lambda c: c["available_node_types"]["gpu_worker"].update(resources={"CPU": 8}),
     "declares no GPU"),
    ("cluster.yaml", lambda c: c["available_node_types"]["gpu_worker"].update(min_workers=2),
     "min_workers 0"),
    ("cluster.yaml", lambda c: c["available_node_types"]["gpu_worker"]["node_config"].pop("InstanceMarketOptions"),
     "is not spot"),
    ("cluster/gcp.yaml", lambda c: c["available_node_types"]["gpu_worker"]["node_config"]["scheduling"].pop("onHostMaintenance"),
     "onHostMaintenance"),
    ("cluster/gcp.yaml", lambda c: c["available_node_types"]["gpu_worker"].pop("initialization_commands"),
     "wait for the NVIDIA driver"),
    ("cluster.yaml", _replace_in("setup_commands", "s3://CHANGE-ME-gnas-bucket/gnas", "/tmp/gnas"), "node-local"),
    ("cluster/onprem.yaml", lambda c: c["setup_commands"].pop(0), "NFS mount"),
    ("cluster.yaml", _replace_in("setup_commands", '"torch==2.13.0"', '"torch>=2.13"'), "constraints.txt) has torch==2.13.0"),
    ("cluster/gcp.yaml", _replace_in("setup_commands", ' "optuna==5.0.0"', ""), "optuna<6,>=5.0.0 is not installed"),
    ("cluster.yaml", lambda c: c["docker"].update(worker_image="rayproject/ray:2.59.0-py311-gpu"),
     "has Ray 2.59.0"),
    ("cluster.yaml", lambda c: c["docker"].update(worker_image="rayproject/ray:2.60.0-py312-gpu"),
     "different Pythons"),
    ("cluster.yaml", lambda c: c["provider"]["security_group"]["IpPermissions"].append(
        {"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 9000, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}),
     "8265 (dashboard / job API)"),
    ("cluster.yaml", _replace_in("head_start_ray_commands", "127.0.0.1", "0.0.0.0"), "--dashboard-host=127.0.0.1"),
    ("cluster/gcp.yaml", _replace_in("worker_start_ray_commands", "RAY_AUTH_MODE=token ", ""), "RAY_AUTH_MODE=token"),
    ("cluster.yaml", _replace_in("setup_commands", "WANDB_MODE=offline", "WANDB_MODE=online"), "WANDB_MODE=offline"),
    ("cluster.yaml", lambda c: c.update(head_node_typo="head"), "Additional properties are not allowed"),
])
def test_the_checker_catches_a_broken_config(path, edit, expected):
    problems = _break(path, edit)
    assert any(expected in p for p in problems), problems


def test_kuberay_manifests_parse_and_keep_the_invariants():
    assert kuberay.kuberay_problems() == []
    cluster_docs = check.load_yaml_docs(check.RAYCLUSTER)
    job = check.load_yaml_docs(check.RAYJOB)
    assert [d["kind"] for d in cluster_docs] == ["RayCluster", "NetworkPolicy"]
    assert [d["kind"] for d in job] == ["RayJob", "NetworkPolicy"]


def test_the_checker_refuses_a_manifest_that_exposes_rays_ports():
    """The RayJob as shipped before: pods labelled app=gnas-job, no policy selecting them."""
    job = check.load_yaml_docs(check.RAYJOB)
    exposed = [d for d in job if d["kind"] != "NetworkPolicy"]
    problems = kuberay.exposure_problems(exposed, "rayjob.yaml")
    assert {p.split(" pods ")[0] for p in problems} == {
        "rayjob.yaml: RayJob submitter", "rayjob.yaml: RayJob head", "rayjob.yaml: RayJob worker group 'gpu'"}
    assert all("8265 dashboard / job API" in p and "open to every pod" in p for p in problems)
    policy = copy.deepcopy(next(d for d in job if d["kind"] == "NetworkPolicy"))
    for opening in ({}, {"from": []}, {"from": [{"namespaceSelector": {}}]},
                    {"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}, {"from": [{"podSelector": {}}]}):
        policy["spec"]["ingress"] = [opening]  # a rule that admits everyone is no restriction
        assert len(kuberay.exposure_problems([*exposed, policy], "rayjob.yaml")) == 3, opening
    cluster = check.load_yaml_docs(check.RAYCLUSTER)
    relabelled = copy.deepcopy(cluster)
    relabelled[0]["spec"]["headGroupSpec"]["template"]["metadata"]["labels"] = {"app": "other"}
    assert kuberay.exposure_problems(relabelled, "rc") == [
        p for p in kuberay.exposure_problems(relabelled, "rc") if "RayCluster head" in p] != []
    assert kuberay.exposure_problems(cluster, "rc") == kuberay.exposure_problems(job, "rj") == []


def test_kuberay_carries_the_same_images_and_pins_as_the_launcher_configs():
    def images(spec):
        pods = [spec["headGroupSpec"]["template"]] + [g["template"] for g in spec["workerGroupSpecs"]]
        return {c["image"] for p in pods for c in p["spec"]["containers"]}

    rc = check.load_yaml_docs(check.RAYCLUSTER)[0]["spec"]
    rj = check.load_yaml_docs(check.RAYJOB)[0]["spec"]
    docker = config("cluster.yaml")["docker"]
    assert images(rc) == images(rj["rayClusterSpec"]) == {docker["head_image"], docker["worker_image"]}
    runtime_env = yaml.safe_load(rj["runtimeEnvYAML"])
    launcher_pins = set(check.pip_requirements(config("cluster.yaml")["setup_commands"]))
    k8s_pins = set(runtime_env["pip"]["packages"])
    assert k8s_pins == launcher_pins - {"ray[default,tune]==2.60.0"}  # Ray: from the image
    assert runtime_env["pip"] == yaml.safe_load((REPO / check.RUNTIME_ENV).read_text())["pip"]


def test_kuberay_checker_catches_broken_manifests():
    rc = check.load_yaml_docs(check.RAYCLUSTER)[0]["spec"]
    edits = {
        "num-cpus must be": lambda s: s["headGroupSpec"]["rayStartParams"].update({"num-cpus": "2"}),
        "ClusterIP": lambda s: s["headGroupSpec"].update(serviceType="LoadBalancer"),
        "no nvidia.com/gpu": lambda s: s["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resources"]["limits"].pop("nvidia.com/gpu"),
        "must come from a Secret": lambda s: s["headGroupSpec"]["template"]["spec"]["containers"][0]["env"].append(
            {"name": "WANDB_API_KEY", "value": "0123456789abcdef"}),
        "rayVersion": lambda s: s.update(rayVersion="2.59.0"),
        "authOptions": lambda s: s.pop("authOptions"),
    }
    for expected, edit in edits.items():
        spec = copy.deepcopy(rc)
        edit(spec)
        problems = kuberay.raycluster_spec_problems(spec, "rc")
        assert any(expected in p for p in problems), (expected, problems)
    drift = kuberay.runtime_env_problems({"pip": {"packages": ["torch==2.12.0"]}}, "env", "rayproject/ray:2.60.0-py311")
    assert "env: installs torch==2.12.0, the tested set (constraints.txt) has torch==2.13.0" in drift


def test_no_credentials_in_cluster_files(tmp_path):
    assert check.secret_problems() == []
    (tmp_path / "cluster").mkdir()
    (tmp_path / "cluster.yaml").write_text("env: {WANDB_API_KEY: " + "a" * 40 + "}\n")
    (tmp_path / "cluster" / "x.yaml").write_text("key: AKIA" + "A" * 16 + "\n")
    assert sorted(check.secret_problems(tmp_path)) == [
        "cluster.yaml: contains a W&B API key", "cluster/x.yaml: contains an AWS access key id"]


def test_cluster_yaml_and_ray_cluster_yaml_are_one_config(tmp_path):
    """`ray up cluster.yaml` and `ray up ray_cluster.yaml` read the same bytes: one file, a link."""
    alias, real = REPO / "ray_cluster.yaml", REPO / "cluster.yaml"
    assert alias.is_symlink() and not real.is_symlink() and alias.resolve() == real.resolve()
    assert yaml.safe_load(alias.read_text()) == config("cluster.yaml")
    assert check.alias_problems() == []
    (tmp_path / "cluster.yaml").write_text(real.read_text())
    (tmp_path / "ray_cluster.yaml").write_text(real.read_text())  # a copy: equal today, drifts tomorrow
    assert check.alias_problems(tmp_path) == ["ray_cluster.yaml: must be a symbolic link to cluster.yaml (a copy drifts)"]


def _policy(path):
    return copy.deepcopy(next(d for d in check.load_yaml_docs(path) if d["kind"] == "NetworkPolicy"))


def test_rayjob_admits_its_job_api_only_to_the_operator_pod_in_the_operators_namespace():
    policy = _policy(check.RAYJOB)
    rules = [r for r in policy["spec"]["ingress"] if r.get("ports")]
    assert len(rules) == 1 and [p["port"] for p in rules[0]["ports"]] == [8265]
    (peer,) = rules[0]["from"]  # one entry: namespace AND pod
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "kuberay-system"}
    assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "kuberay-operator"}
    job = check.load_yaml_docs(check.RAYJOB)
    others = [d for d in job if d["kind"] != "NetworkPolicy"]
    assert kuberay.exposure_problems(job, "rj") == []
    # the operator's label in any namespace (the policy as reviewed), or namespace and pod as two
    # entries (either one admits): each leaves the job's pods open
    any_namespace = copy.deepcopy(policy)
    any_namespace["spec"]["ingress"][1]["from"][0]["namespaceSelector"] = {}
    split = copy.deepcopy(policy)
    split["spec"]["ingress"][1]["from"] = [{"namespaceSelector": peer["namespaceSelector"]},
                                           {"podSelector": peer["podSelector"]}]
    for broken in (any_namespace, split):
        problems = kuberay.exposure_problems([*others, broken], "rj")
        assert len(problems) == 3 and all("open to every pod" in p for p in problems), problems
    assert kuberay.peer_problem(any_namespace["spec"]["ingress"][1]["from"][0]).startswith("namespaceSelector {}")
    assert "add a podSelector" in kuberay.peer_problem(split["spec"]["ingress"][1]["from"][0])


@pytest.mark.parametrize("path", [check.RAYCLUSTER, check.RAYJOB])
def test_both_network_policies_limit_egress(path):
    policy = _policy(path)
    assert "Egress" in policy["spec"]["policyTypes"] and kuberay.egress_problems(policy, path) == []
    own = policy["spec"]["podSelector"]["matchLabels"]
    unported = [r for r in policy["spec"]["egress"] if not r.get("ports")]
    assert [r["to"] for r in unported] == [[{"podSelector": {"matchLabels": own}}]]  # Ray's ports: own pods only
    dns = next(r for r in policy["spec"]["egress"] if {p["port"] for p in r.get("ports", [])} == {53})
    assert dns["to"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "kube-system"}
    world = [r for r in policy["spec"]["egress"] if r["to"][0].get("ipBlock", {}).get("cidr") == "0.0.0.0/0"]
    assert len(world) == 1 and world[0]["ports"] == [{"port": 443, "protocol": "TCP"}]


@pytest.mark.parametrize("edit, expected", [
    (lambda s: s.update(policyTypes=["Ingress"]), "no egress limit"),
    (lambda s: s["egress"].append({"ports": [{"port": 6379}]}), "has no 'to'"),
    (lambda s: s["egress"].append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 6379}]}),
     "reaches 0.0.0.0/0"),
    (lambda s: s["egress"].append({"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}), "every port"),
    (lambda s: s["egress"].append({"to": [{"podSelector": {}}]}), "pods other than its own"),
    (lambda s: s["egress"].append({"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"a": "b"}}}],
                                   "ports": [{"port": 80}]}), "every namespace"),
    (lambda s: s.update(egress=[r for r in s["egress"] if r.get("ports", [{}])[0].get("port") != 53]), "no DNS rule"),
])
def test_the_checker_catches_open_egress(edit, expected):
    policy = _policy(check.RAYJOB)
    edit(policy["spec"])
    problems = kuberay.egress_problems(policy, "rj")
    assert any(expected in p for p in problems), problems
    assert kuberay.egress_problems(_policy(check.RAYCLUSTER), "rc") == []


def test_the_smoke_study_is_a_valid_fractional_gpu_spec():
    assert check.smoke_spec_problems() == []


def test_check_script_reports_ok():
    done = subprocess.run([sys.executable, "cluster/check.py"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("ok: cluster.yaml")


def test_readme_names_only_existing_files_and_real_cli_options():
    from orchestrator.cli import parser

    readme = (REPO / "cluster" / "README.md").read_text()
    for path in set(re.findall(r"(?<![\w/.-])((?:cluster|tests)/[\w./-]+\.(?:ya?ml|py|md|sh)|(?:ray_)?cluster\.yaml)", readme)):
        assert (REPO / path).exists(), path
    run_options = {o for a in parser()._subparsers._group_actions[0].choices["run"]._actions for o in a.option_strings}
    for command in re.findall(r"python -m orchestrator run [^\n`]*", readme):
        for option in re.findall(r"(?<=\s)--[a-z-]+", command):
            assert option in run_options, f"{option} in: {command}"
    simulate_options = {o for a in _simulate_parser()._actions for o in a.option_strings}
    for command in re.findall(r"python cluster/simulate\.py [^\n`]*", readme):
        for option in re.findall(r"(?<=\s)--[a-z-]+", command):
            assert option in simulate_options, f"{option} in: {command}"


def _simulate_parser():
    spec = importlib.util.spec_from_file_location("cluster_simulate", REPO / "cluster" / "simulate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.parser()
