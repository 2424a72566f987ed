"""Speed of the graph VAE: training throughput and latent ascent + decoding.

    python bench/graphvae_speed.py [--threads 1] [--steps 30] [--data-dir ../shared/data]
                                   [--spaces nb201,enas6] [--set '{"hidden": 64}']

Prints, at the default model size (``graphvae.DEFAULTS``) unless ``--set`` changes it, on CPU
(and on CUDA when ``torch.cuda.is_available()``), for each space:

* **training** — graphs per second through one joint update (``GraphVAERun.update``: encoder pass over
  the batch plus the labelled minibatch riding along, teacher-forced decoder, both predictor
  losses, backward, Adam), timed over ``--steps`` steps after warm-up; counted as the
  ``batch_size`` reconstruction graphs of each step;
* **ascent + decode of 1,000** — ``ascent_steps`` gradient steps from 1,000 encoded training
  cells with an argmax decoding after every step (``graphvae.ascend``), then 1,000
  stochastic decodings from the prior turned into ArchGraphs (what the final report draws).

Not part of the test run.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIGS = {
    "nb201": {"space": "nb201", "label_field": "cifar10-valid/valid/200", "eval_field": "cifar10/test/200"},
    "enas6": {"space": "enas6", "label_field": "cifar10/valid/ws", "eval_field": "cifar10/valid/ws"},
    "nbgraph": {"space": "nbgraph", "dataset": "cora"},
}


def measure(space: str, device: str, data_dir: str, steps: int, overrides: dict) -> dict:
    import torch

    from trainables import common, graphvae

    config = {**CONFIGS[space], "seed": 0, **overrides}
    if space != "nbgraph":
        config["data_dir"] = data_dir
    cfg = graphvae.VAEConfig.from_config({**graphvae.DEFAULTS, **overrides})
    trial = common.open_trial(config, device=device)
    run = graphvae.GraphVAERun(cfg, trial)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    rng = np.random.default_rng(0)
    batches = [torch.as_tensor(rng.choice(len(run.archs), cfg.batch_size, replace=False), device=run.device)
               for _ in range(steps + 3)]
    for idx in batches[:3]:
        run.update(idx)
    sync()
    t = time.perf_counter()
    for idx in batches[3:]:
        run.update(idx)
    sync()
    train_s = (time.perf_counter() - t) / steps
    m = run.model.eval()
    pick = torch.as_tensor(rng.choice(len(run.archs), 1000, replace=False), device=run.device)
    with torch.no_grad():
        z0, _ = m.encode(run.labels[pick], run.adj[pick])
    sync()
    t = time.perf_counter()
    ends, lab, adj = graphvae.ascend(m, z0, cfg.ascent_steps, cfg.step_size, cfg.tradeoff)
    found = run.codec.from_arrays(lab, adj)
    sync()
    ascent_s = time.perf_counter() - t
    g = torch.Generator(device=run.device).manual_seed(0)
    t = time.perf_counter()
    prior = run.codec.from_arrays(*m.decode(torch.randn((1000, cfg.latent), generator=g, device=run.device),
                                            stochastic=True, generator=g))
    sync()
    decode_s = time.perf_counter() - t
    assert len(found) == 1000 * cfg.ascent_steps and len(prior) == 1000
    return {"space": space, "device": device, "n_train": len(run.archs), "batch": cfg.batch_size,
            "label_batch": cfg.label_batch, "step_ms": 1e3 * train_s, "graphs_per_s": cfg.batch_size / train_s,
            "ascent_1000_s": ascent_s, "ascent_steps": cfg.ascent_steps, "prior_decode_1000_s": decode_s}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--spaces", default="nb201,enas6")
    p.add_argument("--set", default="{}", help="JSON overrides of the graph-VAE config")
    a = p.parse_args()
    import torch

    from trainables import graphvae

    torch.set_num_threads(a.threads)
    overrides = json.loads(a.set)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    size = {k: graphvae.DEFAULTS[k] for k in ("hidden", "latent", "batch_size", "label_batch", "ascent_steps")}
    print(f"model: {json.dumps({**size, **{k: v for k, v in overrides.items() if k in size}})}; "
          f"torch threads {a.threads}; torch {torch.__version__}")
    print("| space | device | step (ms) | training graphs/s | ascent of 1,000 × steps + decode (s) "
          "| prior decode of 1,000 (s) |")
    print("|---|---|---|---|---|---|")
    for device in devices:
        for space in a.spaces.split(","):
            r = measure(space, device, a.data_dir, a.steps, overrides)
            print(f"| {space} | {device} | {r['step_ms']:.1f} | {r['graphs_per_s']:,.0f} "
                  f"| {r['ascent_1000_s']:.2f} ({r['ascent_steps']} steps) | {r['prior_decode_1000_s']:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
