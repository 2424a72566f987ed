"""Few-label NB201 predictors: the pretrained graph VAE against a from-scratch GNN and a random forest.

    python bench/graphvae_predictor.py [--seeds 5] [--seed0 0] [--labels 39,100,156,469,1000]
        [--variants '{"name": {"pretrain": "all", ...predictor keys}}'] [--vae-set '{"epochs": 12}']
        [--tuning] [--cache /tmp/gvpred-cache] [--jsonl rows.jsonl] [--data-dir ../shared/data]

Protocol (``trainables.graphvae.predictor``): per seed an isomorphism-class split of NB201
(``train_fraction`` 0.9 of the distinct functions, :func:`iso_split`: no test cell computes the
same function as a training cell); ``M`` labelled training cells (:func:`pick_labels`, the same
cells for every method); labels ``cifar10-valid/valid/200`` (validation; the test field is
never read); Kendall τ of each method's predictions against that field on every test cell.

Methods (``--variants`` replaces them; each is a predictor config plus the keys below). The
defaults (:data:`DEFAULT_VARIANTS`): ``pretrained`` (transductive pretraining, canonical cells,
the predictor's defaults) and ``scratch`` (the same without pretraining, at its own best encoder
rate 3e-3); the random forest always runs.

* ``pretrain`` ``"all"`` — the encoder of a ``graphvae.train`` trial with ``n_labels = 0`` (no
  oracle query: reconstruction + β·KL only) on all 15,625 cells, the test cells included
  *without labels* (the transductive semi-supervised setting of arch2vec); ``"train"`` — the
  same trial with ``train_fraction`` 0.9 at the seed, so it sees the training side of the split
  only (inductive); ``"canonical"`` — on the isomorphism classes' representatives only (one
  cell per function, test functions included, see ``canonical`` below); ``"none"`` — a fresh
  encoder of the same architecture (the ablation).
  With ``recon_weight`` > 0 the fine-tuning keeps fitting recon + β·KL on the cells pretraining
  saw (all cells for ``"all"`` and ``"none"``, the training side for ``"train"``), unlabelled;
  with ``pseudo_steps`` > 0 those cells are pseudo-labelled by the ensemble (self-training).
  One pretraining per (setting, seed, VAE config), cached under ``--cache``, reused for every
  label count (pretraining sees no label); ``"pretrainings": n`` starts the ensemble's members
  from ``n`` pretrainings of different seeds (member ``k`` from pretraining ``k mod n``).
  ``"canonical": true`` feeds every cell (labelled, test, unlabelled) as its isomorphism
  class's representative (:func:`iso_representatives`, the member with the most ``none`` ops:
  dead edges read as cuts), so the predictor is invariant to the class by construction.
* ``rf`` — ``bench/graphvae_measure.py``'s random forest on one-hot ops.

``--tuning`` measures on cells apart from the measurement: the test cells of measurement seeds
0–4 are withheld from both sides (:func:`iso_split`'s ``withheld``), and the split's seed is the
given one (use 100+). Prints per-seed rows, then mean ± 95 % CI over seeds
(:func:`trainables.stats.seed_ci`) and each method's paired difference to the baselines
(:func:`studies.kit.paired`), Holm-corrected within each method's family of comparisons (two
baselines × the label counts, :func:`studies.kit.holm`).
One process, one torch thread. Not part of the tests.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from graphvae_measure import NB201_EVAL, NB201_LABEL, TRAIN_SHARE, _train, rf_predict  # noqa: E402

MEASUREMENT_SEEDS = range(5)
DEFAULT_VARIANTS: dict[str, dict] = {   # predictor defaults unless set; chosen on tuning seeds 100-101
    "pretrained": {"pretrain": "all", "canonical": True},
    "scratch": {"pretrain": "none", "encoder_lr": 3e-3, "canonical": True},   # its own best rate
}
BASELINES = ("scratch", "rf")
BENCH_KEYS = ("pretrain", "canonical", "pretrainings")   # variant keys of this script, not the predictor's
EXTRA_PRETRAIN_SEEDS = 10_000   # pretraining k > 0 of split seed s runs at seed 10,000 + 100·s + k (no overlap)


def pretrained_state(setting: str, seed: int, data_dir: str, vae_set: dict, cache: Path,
                     csv_rows: np.ndarray | None = None) -> tuple[dict, float]:
    """The state dict of a label-free ``graphvae.train`` trial (cached) and its wall seconds (0 if
    cached). ``csv_rows``: train on these rows of ``nb201.csv`` only (a bring-your-own table)."""
    from trainables import graphvae

    config = {"space": "nb201", "data_dir": data_dir, "label_field": NB201_LABEL, "eval_field": NB201_EVAL,
              "seed": seed, "n_labels": 0, "w_perf": 0.0, "ascent_steps": 0, "ascent_queries": 0,
              "n_samples": 10, "train_fraction": TRAIN_SHARE if setting == "train" else 1.0, **vae_set}
    key = {**config, "rows": None if csv_rows is None else hashlib.sha1(np.sort(csv_rows).tobytes()).hexdigest()}
    tag = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
    where = cache / f"{setting}-s{seed}-{tag}"
    wall = 0.0
    if csv_rows is not None and not (where / "done").exists():
        import tempfile

        from graphvae_measure import _write_nb201_table

        config["data_dir"] = str(_write_nb201_table(Path(data_dir), np.sort(csv_rows), Path(tempfile.mkdtemp())))
    if not (where / "done").exists():
        final, ckpt, wall = _train(config)
        assert final["queries"] == 0, "pretraining queried labels"
        shutil.copytree(ckpt, where / "ckpt", dirs_exist_ok=True)
        (where / "done").write_text(json.dumps({"config": config, "wall_s": wall, "final": {
            k: v for k, v in final.items() if isinstance(v, (int, float))}}))
    trained = graphvae.load_model(where / "ckpt")
    assert trained.state["lab_idx"] == [], "pretraining labelled cells"
    return {k: v.detach().clone() for k, v in trained.model.state_dict().items()}, wall


def run_seed(seed: int, sizes: list[int], variants: dict, args, table, codec_arrays) -> list[dict]:
    from scipy.stats import kendalltau

    from trainables.graphvae import DEFAULTS
    from trainables.graphvae.predictor import PredictorConfig, fit, iso_representatives, iso_split, pick_labels

    y = table.column(NB201_LABEL)
    withheld = None
    if args.tuning:
        withheld = np.zeros(len(table), dtype=bool)
        for s in MEASUREMENT_SEEDS:
            withheld[iso_split(table.keys, y, s, TRAIN_SHARE)[1]] = True
    train, test = iso_split(table.keys, y, seed, TRAIN_SHARE, withheld)
    lab, adj = codec_arrays
    rep = iso_representatives(table.keys, (lab == table.space.vocab.index("none")).sum(1))
    canonical = (lab[rep], adj[rep])
    vae_set = json.loads(args.vae_set)
    dims = {"n_nodes": lab.shape[1], "n_ops": len(table.space.ops), "hidden": vae_set.get("hidden", DEFAULTS["hidden"]),
            "latent": vae_set.get("latent", DEFAULTS["latent"])}
    states: dict[str, tuple[dict | None, float]] = {"none": (None, 0.0)}
    rows = []
    for n in sizes:
        pick = pick_labels(train, n, seed)
        for name, v in variants.items():
            setting = v.get("pretrain", "all")
            if setting not in states:
                rows_csv = table.extras["arch_index"].astype(np.int64)[np.unique(rep)] if setting == "canonical" else None
                states[setting] = pretrained_state(setting, seed, args.data_dir, vae_set, Path(args.cache), rows_csv)
                print(f"pretrain {setting} seed {seed}: {states[setting][1]:.0f} s", flush=True)
            state = states[setting][0]
            n_pre = int(v.get("pretrainings", 1))
            if n_pre > 1 and state is not None:   # an ensemble over pretrainings (member k: pretraining k mod n)
                key = f"{setting}x{n_pre}"
                if key not in states:
                    more = [pretrained_state(setting, EXTRA_PRETRAIN_SEEDS + 100 * seed + k, args.data_dir, vae_set,
                                             Path(args.cache)) for k in range(1, n_pre)]
                    states[key] = ([state, *[m[0] for m in more]], sum(m[1] for m in more))
                    print(f"pretrain {key} seed {seed}: {states[key][1]:.0f} s", flush=True)
                state = states[key][0]
            cfg = PredictorConfig.from_config({k: x for k, x in v.items() if k not in BENCH_KEYS})
            lab, adj = canonical if v.get("canonical") else codec_arrays
            pool = train if setting == "train" else np.arange(len(table))  # what the pretraining saw
            t0 = time.perf_counter()
            pred = fit(state, dims, lab[pick], adj[pick], y[pick], cfg, seed,
                       unlabelled=(lab[pool], adj[pool]) if cfg.recon_weight > 0 or cfg.pseudo_steps > 0 else None)
            p = pred.predict(lab[test], adj[test])
            rows.append({"method": name, "seed": seed, "n_labels": n, "tau": float(kendalltau(p, y[test])[0]),
                         "fit_s": time.perf_counter() - t0, "n_test": len(test)})
        t0 = time.perf_counter()
        p = rf_predict(table, pick, test, seed)
        rows.append({"method": "rf", "seed": seed, "n_labels": n, "tau": float(kendalltau(p, y[test])[0]),
                     "fit_s": time.perf_counter() - t0, "n_test": len(test)})
        for r in rows[-len(variants) - 1:]:
            print(json.dumps({k: round(x, 4) if isinstance(x, float) else x for k, x in r.items()}), flush=True)
    return rows


def markdown(rows: list[dict], methods: list[str]) -> str:
    import pandas as pd

    from studies import kit
    from trainables.stats import seed_ci

    frame = pd.DataFrame(rows)
    sizes = sorted(frame["n_labels"].unique())
    head = "| labels | " + " | ".join(methods) + " |"
    lines = [head, "|" + "---|" * (len(methods) + 1)]
    for n in sizes:
        cells = []
        for m in methods:
            ci = seed_ci(frame[(frame.method == m) & (frame.n_labels == n)].sort_values("seed")["tau"].tolist())
            cells.append(f"{ci['mean']:.3f} [{ci['lo']:.3f}, {ci['hi']:.3f}]" if ci["n"] > 1 else f"{ci['mean']:.3f}")
        lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
    for m in methods:   # one Holm family per method: its differences to every baseline at every size
        if m in BASELINES:
            continue
        pairs = [{"a": m, "b": b, "n_labels": n, **kit.paired(frame, m, b, "tau", {"n_labels": n})}
                 for b in BASELINES if b in methods for n in sizes]
        if not pairs:
            continue
        table = kit.holm(pd.DataFrame(pairs))
        lines += ["", "| method − baseline | labels | Δτ [95 % CI] | paired t p | Holm p | verdict |",
                  "|---|---|---|---|---|---|"]
        for r in table.itertuples():
            lines.append(f"| {r.a} − {r.b} | {r.n_labels:,} | {r.diff:+.3f} [{r.lo:+.3f}, {r.hi:+.3f}] "
                         f"| {r.p_t:.3g} | {r.p_holm:.3g} | {r.verdict} |")
        lines += ["", f"{m}: " + kit.correction_note(table)]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--seed0", type=int, default=0)
    p.add_argument("--labels", default="39,100,156,469,1000")
    p.add_argument("--variants", default=None, help="JSON {name: {pretrain: all|train|none, predictor keys}}")
    p.add_argument("--vae-set", default="{}", help="JSON overrides of the pretraining graph-VAE config")
    p.add_argument("--tuning", action="store_true", help="withhold the measurement seeds' test cells")
    p.add_argument("--cache", default="/tmp/gvpred-cache")
    p.add_argument("--jsonl", default=None, help="append the per-seed rows here")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    a = p.parse_args()
    try:
        sizes = [int(s) for s in a.labels.split(",")]
        variants = DEFAULT_VARIANTS if a.variants is None else json.loads(a.variants)
        json.loads(a.vae_set)
        from trainables.graphvae.predictor import PredictorConfig

        for name, v in variants.items():
            if name == "rf" or v.get("pretrain", "all") not in ("all", "train", "canonical", "none"):
                raise ValueError(f"variant {name!r}: the name rf is taken; pretrain is all, train, canonical or none")
            PredictorConfig.from_config({k: x for k, x in v.items() if k not in BENCH_KEYS})
        if not Path(a.data_dir, "nb201.csv").exists():
            raise ValueError(f"no nb201.csv in {a.data_dir}")
        if a.tuning and any(v.get("pretrain") == "train" for v in variants.values()):
            raise ValueError("--tuning with pretrain 'train' is not defined (the tuning split withholds cells)")
        if a.tuning and a.seed0 < max(MEASUREMENT_SEEDS) + 1:
            raise ValueError("--tuning needs seeds apart from the measurement seeds 0-4 (use --seed0 100)")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    import torch

    torch.set_num_threads(1)
    # what every trial sets (trainables/common.py): a pretraining run in this process would set
    # it anyway, and a fit must not depend on whether its encoder came from the cache
    torch.use_deterministic_algorithms(True, warn_only=True)
    from trainables.graphvae import GraphCodec
    from trainables.spaces import load_table

    table = load_table("nb201", Path(a.data_dir))
    codec = GraphCodec(table.space)
    arrays = codec.to_arrays([table.arch(r) for r in range(len(table))])
    t0 = time.perf_counter()
    rows = []
    for s in range(a.seed0, a.seed0 + a.seeds):
        rows += run_seed(s, sizes, variants, a, table, arrays)
        if a.jsonl:
            with open(a.jsonl, "a") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows if r["seed"] == s)
    print(f"\nNB201, label field {NB201_LABEL}, iso-class split, seeds {a.seed0}..{a.seed0 + a.seeds - 1}"
          f"{' (tuning: measurement test cells withheld)' if a.tuning else ''}, {time.perf_counter() - t0:.0f} s; "
          f"variants {json.dumps(variants)}; VAE {a.vae_set}\n")
    print(markdown(rows, [*variants, "rf"]))


if __name__ == "__main__":
    main()
