"""bench/gpu.py's CPU dry run: 4 trials packed at 0.25 GPU each on one (logical) device through
Ray Tune, and a CPU trial beside them; and every generator's step setting is a config it accepts."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.store import Store
from trainables import ENTRIES

REPO = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", REPO / "bench" / "gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dry_run_packs_four_trials_on_one_logical_gpu(tmp_path):
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "WANDB_MODE": "offline"}
    done = subprocess.run([sys.executable, "bench/gpu.py", "--dry-run", "--trainables", "toy", "--steps", "1",
                           "--out", str(tmp_path)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "toy: 1 steps; CPU" in done.stdout and "packed 4 x 0.25 GPU" in done.stdout
    store = Store(tmp_path)
    packed = store.read_pandas("trials", studies=["gpu-toy-packed"])
    assert len(packed) == 4 and set(packed["status"]) == {"TERMINATED"}
    assert set(packed["gpu_fraction"]) == {0.25} and set(packed["gpu_ids"]) == {"0"}  # one device, shared
    assert set(packed["device"]) == {"cpu"} and set(packed["iteration"]) == {1}  # dry run: CPU compute
    cpu = store.read_pandas("trials", studies=["gpu-toy-cpu"])
    assert len(cpu) == 1 and cpu["gpu_fraction"].tolist() == [0.0] and cpu["gpu_ids"].tolist() == [""]


def test_a_real_run_without_cuda_is_one_error_line(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the real run would start")
    assert _bench().main(["--trainables", "toy"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no CUDA device")


def test_unknown_trainable_is_one_error_line(capsys):
    assert _bench().main(["--dry-run", "--trainables", "nope"]) == 2
    assert capsys.readouterr().err.startswith("error: no step setting for nope")


@pytest.mark.parametrize("name", [n for n, e in ENTRIES.items() if e.role == "generator"])
def test_every_generator_accepts_its_step_setting(name):
    bench = _bench()
    assert name in bench.GENERATORS
    config = bench.trial_config(name, 3)
    try:
        ENTRIES[name].validate(config)
    except ValueError as exc:
        if name == "ghn" and ("image" in str(exc).lower() or "fashion" in str(exc).lower()):
            pytest.skip(f"the GHN's images are not installed here: {exc}")
        raise
    assert config[bench.STEP_KEYS[name][0]] == 3
