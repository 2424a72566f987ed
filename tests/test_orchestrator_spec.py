"""Study specs: parsing, freezing, expansion, and every bad spec refused before launch."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from orchestrator import cli
from orchestrator.run import check_cluster_resources, preflight
from orchestrator.search import config_id, example_configs, replicates
from orchestrator.spec import SpecError, StudySpec, load_spec

GOOD = """
name: toy-ablation
trainable: toy
config: {steps: 2}
grid: {level: [0.0, 0.5]}
search:
  w_adv: {type: float, low: 0.0, high: 1.0}
  noise: {type: float, low: 1e-3, high: 0.5, log: true}
seeds: [0, 1, 2]
metric: top5_pct
mode: max
samples: 4
query_budget: 50
resources: {cpu: 0.5, gpu: 0.25}
scheduler: {kind: auto, max_t: 2}
storage: store
"""


def write(tmp_path: Path, text: str, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_yaml_spec_is_typed_frozen_and_round_trips(tmp_path):
    spec = load_spec(write(tmp_path, GOOD))
    assert spec.seeds == (0, 1, 2) and spec.grid["level"] == (0.0, 0.5)
    assert spec.search[1].low == 1e-3 and spec.search[1].log  # YAML's "1e-3" text is a number
    assert spec.resources.gpu == 0.25 and spec.query_budget == 50
    assert spec.scheduler_kind == "asha"  # auto: single objective with a search
    assert spec.replicates == 6 and spec.num_trials == 24
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.samples = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        spec.config["steps"] = 3  # type: ignore[index]
    assert StudySpec.from_dict(spec.to_dict()) == spec


def test_grid_times_seeds_expands_exactly(tmp_path):
    spec = dataclasses.replace(load_spec(write(tmp_path, GOOD)), grid={"level": [0.0, 0.5], "n_archs": [4, 8]})
    reps = replicates(spec)
    assert len(reps) == 2 * 2 * 3
    assert {(r["level"], r["n_archs"], r["seed"]) for r in reps} == {
        (lv, n, s) for lv in (0.0, 0.5) for n in (4, 8) for s in (0, 1, 2)}
    configs = example_configs(spec)
    assert all(c["query_budget"] == 50 and c["steps"] == 2 for c in configs)
    # seeds of one config share its id; any other difference separates ids
    assert len({config_id(c) for c in configs}) == 4
    assert config_id({"a": 1, "seed": 0}) == config_id({"seed": 9, "a": 1}) != config_id({"a": 2, "seed": 0})


def test_variants_multiply_the_replicates_and_reach_the_trainable_merged(tmp_path):
    spec = load_spec(write(tmp_path, GOOD + "variants: {base: {}, long: {steps: 5, n_archs: 3}}\n"))
    assert spec.replicates == 2 * 2 * 3 and spec.num_trials == 4 * 12
    reps = replicates(spec)
    assert [r["variant"] for r in reps[:7:6]] == ["base", "long"]
    configs = example_configs(spec)  # what validate_config and the trainable see
    assert all("variant" not in c for c in configs)
    assert sorted({(c["steps"], c.get("n_archs")) for c in configs}) == [(2, None), (5, 3)]
    assert StudySpec.from_dict(spec.to_dict()) == spec


def test_multi_objective_defaults_to_fifo_and_refuses_asha(tmp_path):
    text = GOOD.replace("metric: top5_pct\nmode: max", "metric: [top5_pct, queries]\nmode: [max, min]")
    spec = load_spec(write(tmp_path, text.replace("kind: auto", "kind: fifo")))
    assert spec.multi_objective and spec.scheduler_kind == "fifo"
    with pytest.raises(SpecError, match="asha needs a single objective"):
        load_spec(write(tmp_path, text.replace("kind: auto", "kind: asha")))


BAD = {
    "misspelt key": (GOOD.replace("seeds:", "semds:"), "unknown key 'semds' (did you mean 'seeds'?)"),
    "misspelt nested key": (GOOD.replace("{cpu: 0.5,", "{cpus: 0.5,"), "unknown key 'resources.cpus'"),
    "unknown trainable": (GOOD.replace("trainable: toy", "trainable: toyy"), "unknown trainable 'toyy'"),
    "unimportable target": (GOOD.replace("trainable: toy", "trainable: 'nope.mod:train'"), "cannot import"),
    "negative budget": (GOOD.replace("query_budget: 50", "query_budget: -5"), "query_budget must be a non-negative"),
    "missing data path": (GOOD.replace("{steps: 2}", "{steps: 2, data_path: /no/such/table.csv}"),
                          "data_path does not exist: /no/such/table.csv"),
    "config rejected": (GOOD.replace("{steps: 2}", "{steps: 0}"), "steps must be a positive integer"),
    "reserved key": (GOOD.replace("{steps: 2}", "{steps: 2, seed: 3}"), "config.seed is set by the orchestrator"),
    "empty range": (GOOD.replace("low: 0.0, high: 1.0", "low: 1.0, high: 0.0"), "low (1.0) must be below high (0.0)"),
    "samples without search": (GOOD.split("search:")[0] + "metric: top5_pct\nsamples: 3\nstorage: store\n",
                               "samples=3 needs searched parameters"),
    "missing metric": (GOOD.replace("metric: top5_pct\n", ""), "missing required key 'metric'"),
    "bad mode": (GOOD.replace("mode: max", "mode: maximum"), "mode of 'top5_pct' must be 'min' or 'max'"),
    "negative gpu": (GOOD.replace("gpu: 0.25", "gpu: -1"), "resources.gpu must be >= 0"),
    "not yaml": ("name: [unclosed\n", "not valid YAML"),
    "variant on a grid axis": (GOOD + "variants: {hi: {level: 0.5}}\n", "variants.hi.level is also a grid axis"),
    "variant sets the seed": (GOOD + "variants: {hi: {seed: 1}}\n", "variants.hi.seed is set by the orchestrator"),
    "variant not a mapping": (GOOD + "variants: {hi: 3}\n", "variants.hi must be a mapping"),
    "variant rejected by trainable": (GOOD + "variants: {bad: {steps: 0}}\n", "steps must be a positive integer"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_spec_is_one_error_line_exit_2_and_writes_nothing(case, tmp_path, monkeypatch, capsys):
    text, message = BAD[case]
    monkeypatch.chdir(tmp_path)  # the spec's relative store root lands here if anything is written
    spec = write(tmp_path, text)
    assert cli.main(["run", str(spec)]) == cli.EXIT_BAD_SPEC
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]


def test_missing_spec_file_is_an_error(tmp_path, capsys):
    assert cli.main(["run", str(tmp_path / "absent.yaml")]) == cli.EXIT_BAD_SPEC
    assert capsys.readouterr().err.startswith("error: cannot read study spec")


def test_gpu_request_without_gpus_is_refused_by_the_cli_before_starting_ray(tmp_path):
    """A fresh process (no Ray running) with no visible GPU: refused, nothing written."""
    spec = write(tmp_path, GOOD)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run([sys.executable, "-m", "orchestrator", "run", str(spec)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == ("error: resources.gpu=0.25 but the cluster has no GPUs"
                                   " (set resources.gpu: 0, or run on a cluster with GPUs)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.yaml"]


def test_resource_check_compares_with_the_cluster(tmp_path):
    spec = load_spec(write(tmp_path, GOOD))
    check_cluster_resources(spec, {"CPU": 2, "GPU": 1})
    with pytest.raises(SpecError, match="no GPUs"):
        check_cluster_resources(spec, {"CPU": 2})
    with pytest.raises(SpecError, match="resources.cpu=4 per trial but the cluster has 2 CPUs"):
        check_cluster_resources(dataclasses.replace(spec, resources=dataclasses.replace(spec.resources, cpu=4)),
                                {"CPU": 2, "GPU": 1})


def test_existing_study_needs_resume_and_an_unchanged_spec(tmp_path):
    spec = dataclasses.replace(load_spec(write(tmp_path, GOOD)), storage=str(tmp_path / "store"))
    (tmp_path / "store" / "tune" / spec.name).mkdir(parents=True)
    with pytest.raises(SpecError, match="already exists .* pass --resume"):
        preflight(spec)
    (tmp_path / "store" / "tune" / spec.name / "gnas-study.json").write_text(
        json.dumps({**spec.to_dict(), "samples": 99}))
    with pytest.raises(SpecError, match=r"the spec changed since it started \(samples\)"):
        preflight(spec, resume=True)


def test_a_saved_spec_that_predates_a_key_had_its_default(tmp_path):
    from orchestrator.run import spec_changes

    spec = load_spec(write(tmp_path, GOOD))
    older = {k: v for k, v in json.loads(json.dumps(spec.to_dict())).items() if k != "trials_per_experiment"}
    assert spec_changes(older, spec) == []
    assert spec_changes(older, dataclasses.replace(spec, trials_per_experiment=5)) == ["trials_per_experiment"]


def test_cli_help_and_validation_import_no_heavy_modules():
    code = ("import sys, orchestrator.cli, orchestrator.run, orchestrator.spec, orchestrator.search, "
            "orchestrator.store, orchestrator.tracking, trainables.toy; "
            "print(sorted(m for m in ('ray', 'torch', 'wandb', 'optuna') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
    help_ = subprocess.run([sys.executable, "-m", "orchestrator", "run", "--help"], capture_output=True,
                           text=True, timeout=60)
    assert help_.returncode == 0 and "--resume" in help_.stdout and "--no-wandb" in help_.stdout


@pytest.mark.parametrize("text, seeds", [("[4, 2]", (4, 2)), ("{count: 3}", (0, 1, 2)), ("{range: [5, 8]}", (5, 6, 7))])
def test_seeds_are_a_list_a_count_or_a_range(tmp_path, text, seeds):
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.replace("seeds: [0, 1, 2]", f"seeds: {text}"))
    assert load_spec(path).seeds == seeds


@pytest.mark.parametrize("text, message", [
    ("3", "seeds: 3 is ambiguous; write seeds: [3] for the single seed 3, or seeds: {count: 3} for seeds 0..2"),
    ("{count: 0}", "needs an integer N >= 1"),
    ("{range: [3, 1]}", "needs integers A < B"),
    ("{first: 3}", "seeds must be a list, {count: N} or {range: [A, B]}"),
])
def test_a_bare_integer_or_a_malformed_seed_form_names_the_fix(tmp_path, text, message):
    path = tmp_path / "s.yaml"
    path.write_text(GOOD.replace("seeds: [0, 1, 2]", f"seeds: {text}"))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert message in str(err.value) and "\n" not in str(err.value)
