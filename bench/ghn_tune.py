"""Tune the GHN on the *validation* cells only (never on the held-out measurement cells).

    python bench/ghn_tune.py run --name NAME [--seeds 0 1] [--set '{"iterations": 1000}'] [--scorings b1]
                                 [--finetune 10 20 50]
    python bench/ghn_tune.py table [--names A B ...] [--dir DIR]

``run`` trains one GHN per seed in this process (one torch thread), exactly as the ``ghn``
trainable's trial does (the same ``GHNRun``: the held-out cells *and* the validation cells
are excluded from the cells it trains on), keeps exponential moving averages of its weights
with several decays on the side, scores the validation cells with snapshots of the weights at
50 % and 75 % of the run, and at the end writes the predicted-weight scores of the validation
cells for every *variant* — weights (last, an EMA, or a snapshot) × scoring (the validation
split as one BN batch of 1,000 images, as 4 batches of 250, or 3,000 images in 3 batches; the
last two for the last weights only, and only when ``--scorings`` names them) —
to ``--dir``/NAME-seedS.json. It computes no score on the held-out cells.

``table`` reads those files and the validation cells' ground truth from the store
(``bench/ghn_measure.py --only gt`` trains it, two training seeds, cached; nothing is trained
here) and prints Kendall τ (and ρ, top-10 % overlap) per variant and seed, with the mean (the
``snapshots`` variant: the z-scored losses of both snapshots and the last weights averaged), plus
the ground truth's own seed-to-seed τ and the parameter-count baseline on the same cells.
Not part of the test run.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from ghn_measure import SETTINGS, VAL_CELLS, _n_params  # noqa: E402

HELDOUT = 100  # the measurement's held-out cells: excluded from training, never scored here
DECAYS = (0.99, 0.995, 0.998)
SCORINGS = {"b1": (1000, 1), "b4": (1000, 4), "v3000": (3000, 3)}  # name → (validation images, BN batches)
CHECKPOINTS = (0.5, 0.75)  # fractions of the run whose snapshot is scored too (a temporal ensemble)
FULL_SCORING = ("last",)  # weights scored every way; the EMAs by b1 only (time; it250 and it500 ran
#                           with ("last", "ema0.995"), and the other scorings changed no τ by over 0.02)


def _base(extra: dict) -> dict:
    return {**SETTINGS, "n_eval_cells": HELDOUT, "n_val_cells": VAL_CELLS, **extra}


def run(name: str, seeds, extra: dict, out: Path, decays=DECAYS, scorings=tuple(SCORINGS),
        checkpoints=CHECKPOINTS, finetune=()) -> None:
    import torch

    from trainables import ghn

    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        path = out / f"{name}-seed{seed}.json"
        if path.exists():
            print(f"{path} exists: skipped", flush=True)
            continue
        cfg = ghn.GHNConfig.from_config({**_base(extra), "seed": seed, "ema_decay": 0.0})
        trial = ghn.GHNRun(cfg, ghn.Device("cpu"))
        shadows = {d: [torch.zeros_like(p) for p in trial.ghn.parameters()] for d in decays}
        t0 = time.perf_counter()
        trial.ghn.train()
        scores: dict[str, dict] = {}
        at = {int(round(f * cfg.iterations)): f for f in checkpoints}
        ckpt_s = 0.0
        while trial.iteration < cfg.iterations:
            trial.train_step()
            if trial.iteration in at and trial.iteration < cfg.iterations:  # a snapshot's scores (b1)
                t2 = time.perf_counter()
                acc, loss = ghn.predicted_scores(trial.ghn, cfg, trial.splits, trial.val_cells, batches=1)
                scores[f"ckpt{at[trial.iteration]}|b1"] = {"acc": acc.tolist(), "loss": loss.tolist()}
                ckpt_s += time.perf_counter() - t2
            for d, sh in shadows.items():
                ghn.ema_update(sh, trial.ghn, d)
            if trial.iteration % 100 == 0:
                print(f"{name} seed {seed}: it {trial.iteration} loss {np.mean(trial.losses[-100:]):.3f} "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)
        train_s = time.perf_counter() - t0 - ckpt_s
        models = {"last": trial.ghn, **{f"ema{d}": ghn.averaged_ghn(trial.ghn, sh, d, trial.iteration)
                                       for d, sh in shadows.items()}}
        t1 = time.perf_counter()
        for sname, (n_img, batches) in ((k, SCORINGS[k]) for k in scorings):
            splits = ghn.load_splits(cfg.dataset, cfg.image_dir, cfg.resolution, cfg.train_size, n_img,
                                     cfg.test_size, cfg.data_seed)
            assert splits.fingerprint == trial.splits.fingerprint  # the same train/test data
            for wname, model in models.items():
                if sname != "b1" and wname not in FULL_SCORING:
                    continue
                acc, loss = ghn.predicted_scores(model, cfg, splits, trial.val_cells, batches=batches)
                scores[f"{wname}|{sname}"] = {"acc": acc.tolist(), "loss": loss.tolist()}
        for steps in finetune:  # the last weights fine-tuned, and the same steps from a fresh initialisation
            tuned = dataclasses.replace(cfg, rank_finetune_steps=steps)
            acc, loss = ghn.predicted_scores(trial.ghn, tuned, trial.splits, trial.val_cells, batches=1)
            scores[f"last|ft{steps}"] = {"acc": acc.tolist(), "loss": loss.tolist()}
            scores[f"scratch|ft{steps}"] = scratch_scores(tuned, trial.splits, trial.val_cells, seed)
        path.write_text(json.dumps({
            "name": name, "seed": seed, "config": {k: v for k, v in extra.items()}, "train_s": train_s,
            "score_s": time.perf_counter() - t1, "cells": [list(g) for g in trial.val_cells],
            "excluded_heldout": len(trial.heldout), "final_loss": float(np.mean(trial.losses[-100:])),
            "scores": scores}))
        print(f"{name} seed {seed}: trained {train_s:.0f} s, scored {time.perf_counter() - t1:.0f} s -> {path}",
              flush=True)


def scratch_scores(cfg, splits, cells, seed: int) -> dict[str, list[float]]:
    """Validation scores of ``cells`` after ``cfg.rank_finetune_steps`` steps of the GHN's
    fine-tuning (:func:`trainables.ghn.finetuned`) from the networks' own initialisation (seeded by
    ``seed`` and the cell) instead of predicted weights: what the GHN's weights add."""
    import torch

    from trainables import ghn

    acc, loss = [], []
    for g in cells:
        program = ghn._graph(cfg, splits, g).program
        net = ghn.CellNetwork(program, torch.Generator().manual_seed(seed * 100_003 + int("".join(map(str, g)), 5)))
        w = ghn.finetuned(program, dict(net.weights), cfg, splits, cfg.rank_finetune_steps)
        a, lo = ghn.validation_scores(program, w, splits)
        acc.append(a)
        loss.append(lo)
    return {"acc": acc, "loss": loss}


def ground_truth(store: Path, cells) -> np.ndarray:
    """``(n_cells, n_train_seeds)`` trained accuracies of the validation cells, from the store."""
    from trainables import ghn

    cfg = ghn.GHNConfig.from_config(_base({}))
    splits = ghn._splits(cfg)
    known = ghn._read_cache(str(store))
    missing = [(g, s) for g in cells for s in cfg.train_seeds if ghn.gt_key(cfg, splits, g, s) not in known]
    if missing:
        raise SystemExit(f"{len(missing)} validation trainings are not in the store: run "
                         f"bench/ghn_measure.py --only gt first")
    return np.array([[known[ghn.gt_key(cfg, splits, g, s)][0] for s in cfg.train_seeds] for g in cells])


def table(out: Path, store: Path, names=None) -> str:
    from scipy import stats as st

    from trainables import ghn
    from trainables.stats import mean_ci

    files = sorted(out.glob("*.json"))
    runs = [json.loads(f.read_text()) for f in files]
    if names:
        runs = [r for r in runs if r["name"] in names]
    if not runs:
        raise SystemExit(f"no runs under {out}")
    cells = [tuple(g) for g in runs[0]["cells"]]
    gt = ground_truth(store, cells)
    true = gt.mean(axis=1)
    lines = [f"Validation cells: {len(cells)} (seed {ghn.GHNConfig().val_cells_seed}, disjoint from the "
             f"{HELDOUT} held-out cells), trained accuracy {true.min():.1f}–{true.max():.1f} % "
             f"(mean {true.mean():.1f} %).",
             f"Ground truth seed-to-seed τ on them: {st.kendalltau(gt[:, 0], gt[:, 1]).statistic:.3f}; "
             f"parameter-count τ: "
             f"{st.kendalltau([_n_params(ghn.cell_string(g), SETTINGS) for g in cells], true).statistic:.3f}.", "",
             "| candidate | weights | scoring | τ per GHN seed | τ mean ± 95 % CI | ρ mean | top-10 % overlap mean "
             "| τ by acc mean | GHN training s (mean) |", "|---|---|---|---|---|---|---|---|---|"]
    by: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        assert [tuple(g) for g in r["cells"]] == cells
        snaps = [v for k, v in r["scores"].items() if k.startswith("ckpt")]
        if snaps and "last|b1" in r["scores"]:  # temporal ensemble: snapshots' and last weights' z-scores averaged
            members = snaps + [r["scores"]["last|b1"]]
            r["scores"]["snapshots|b1"] = {k: np.mean([st.zscore(x[k]) for x in members], axis=0).tolist()
                                           for k in ("acc", "loss")}
        for variant, sc in r["scores"].items():
            by.setdefault((r["name"], variant), []).append({"seed": r["seed"], "train_s": r["train_s"], **sc})
    for (name, variant), rs in sorted(by.items()):
        rs.sort(key=lambda x: x["seed"])
        res = [ghn.ranking_scores(-np.asarray(x["loss"]), true) for x in rs]
        taus = [x["tau"] for x in res]
        m, h, _ = mean_ci(taus)
        w, s = variant.split("|")
        lines.append(f"| {name} | {w} | {s} | " + ", ".join(f"{x['seed']}: {t:.3f}" for x, t in zip(rs, taus))
                     + f" | {m:.3f}" + (f" ± {h:.3f}" if np.isfinite(h) else "")
                     + f" | {np.mean([x['spearman'] for x in res]):.3f}"
                     + f" | {np.mean([x['top10_overlap'] for x in res]):.2f}"
                     + f" | {np.mean([ghn.ranking_scores(np.asarray(x['acc']), true)['tau'] for x in rs]):.3f}"
                     + f" | {np.mean([x['train_s'] for x in rs]):.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("run", "table"))
    ap.add_argument("--name", help="the candidate's name (run)")
    ap.add_argument("--names", nargs="*", help="only these candidates (table)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--set", default="{}", help="JSON overrides of the GHN config (the candidate)")
    ap.add_argument("--scorings", nargs="+", choices=tuple(SCORINGS), default=list(SCORINGS),
                    help="validation scorings to compute (run; b1 alone saves ~1 min per seed)")
    ap.add_argument("--finetune", type=int, nargs="*", default=[],
                    help="also score the last weights after this many SGD steps each (rank_finetune_steps), and the "
                         "same steps from the networks' initialisation (run)")
    ap.add_argument("--dir", default=str(Path.home() / ".cache" / "gnas-ghn-tune"))
    ap.add_argument("--store", default=str(Path.home() / ".cache" / "gnas-ghn-store"))
    args = ap.parse_args()
    out = Path(args.dir).expanduser()
    if args.what == "run":
        if not args.name:
            raise SystemExit("run needs --name")
        run(args.name, args.seeds, json.loads(args.set), out, scorings=tuple(args.scorings), finetune=args.finetune)
    else:
        print(table(out, Path(args.store).expanduser(), args.names))


if __name__ == "__main__":
    main()
