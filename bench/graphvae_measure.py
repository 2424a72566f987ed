"""Graph VAE on NB201 and ENAS-6: reconstruction, prior samples, predictors, latent ascent.

    python bench/graphvae_measure.py [--seeds 10] [--seed-offset K] [--procs 2] [--data-dir ../shared/data]
                                     [--only nb201,enas6,rf] [--labels 100,1000,all]
                                     [--set '{"epochs": 8}'] [--set-enas '{"latent": 32}']
                                     [--md bench/graphvae_results.md] [--json results.json]

Every run is one ``graphvae.train`` trial (the trainable itself, plain session); the numbers on
held-out cells come from its final checkpoint (:func:`graphvae.load_model`).

* **NB201** — a 90 % / 10 % split of the 15,625 *cells* per seed (14,062 train, 1,563 test,
  the split the issue's random-forest figures use). Training sees only its 90 %: the script
  writes them as a bring-your-own table (``trainables/spaces/table.py``) and the trial runs on
  it. Labels ``cifar10-valid/valid/200`` for ``n_labels`` of the training cells (100, 1,000,
  all); evaluation field ``cifar10/test/200``.
* **ENAS-6** — ``train_fraction = 0.9`` (keys are cells here), labels and evaluation
  ``cifar10/valid/ws`` on every training cell.
* **RF** — scikit-learn's random forest (100 trees) on one-hot ops, on the same NB201 splits
  and label counts; also on an isomorphism-class split (NB201's ``iso_class``: no test cell
  computes the same function as a training cell) for context.

Per run: reconstruction accuracy on the test cells (exact graph match; ``μ`` + argmax, and
D-VAE's protocol: 10 ``z ~ q(z|G)`` × 10 stochastic decodings); validity, uniqueness and
novelty of the trial's 1,000 prior samples (its final report); predictor Kendall τ and RMSE on
the test cells (performance: the label field; complexity: params); the latent ascent's queried
cells, scored on the full table (a search over the whole space would get their labels): test
accuracy of the best-by-label one, mean test accuracy, share in the top 5 % of the space, and
the queries spent (labels + ascent). Mean ± 95 % CI over seeds (``trainables.stats.mean_ci``).
Seeds run in a pool of ``--procs`` processes with one torch thread each. Not part of the tests.

Seeds (bench/seeds.py): without ``--seed-offset`` a fresh block of ``--seeds`` is drawn at
random above 1,000,000 and printed with the flags that rerun it; the Markdown names the block.
Tuning runs name a block below 1,000,000.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.seeds import add_seed_arguments, seed_block  # noqa: E402

NB201_LABEL, NB201_EVAL = "cifar10-valid/valid/200", "cifar10/test/200"
ENAS_FIELD = "cifar10/valid/ws"
TRAIN_SHARE = 0.9
RF_ISSUE = {100: 0.43, 1000: 0.72, "all": 0.90}  # the issue's random-forest τ (cell split)


def nb201_split(n_cells: int, seed: int) -> np.ndarray:
    """Training rows of the seeded 90 % cell split (``floor(0.9 · n)`` cells)."""
    rng = np.random.default_rng([seed, 201])
    return np.sort(rng.choice(n_cells, size=int(TRAIN_SHARE * n_cells), replace=False))


def _write_nb201_table(data_dir: Path, rows: np.ndarray, out: Path) -> Path:
    """The training cells as a bring-your-own table (CSV + YAML spec); returns the spec."""
    import pyarrow.csv as pacsv

    t = pacsv.read_csv(data_dir / "nb201.csv").take(rows)
    cols = ["arch_str", "cifar10valid_valid_200ep", "cifar10_test_200ep", "params_mb"]
    pacsv.write_csv(t.select(cols), out / "train.csv")
    spec = out / "train.yaml"
    spec.write_text("space: nb201\npath: train.csv\narch: {format: nb201_string, column: arch_str}\n"
                    f"fields: {{cifar10valid_valid_200ep: {NB201_LABEL}, cifar10_test_200ep: {NB201_EVAL}}}\n"
                    "extras: {params_mb: params}\n")
    return spec


def _recon(tr, archs, noise_scale: float, seed: int, n_z: int = 10, n_dec: int = 10) -> tuple[float, float]:
    """(μ + argmax exact-match share, D-VAE protocol exact-match share) on ``archs``."""
    import torch

    lab, adj = tr.codec.to_arrays(archs)
    L, A = torch.from_numpy(lab), torch.from_numpy(adj)
    with torch.no_grad():
        mu, logvar = tr.model.encode(L, A)
    out_lab, out_adj = tr.model.decode(mu)
    det = float(((out_lab == lab).all(1) & (out_adj == adj).all((1, 2))).mean())
    g = torch.Generator().manual_seed(seed)
    hits = 0
    for _ in range(n_z):
        z = mu + noise_scale * torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g)
        for _ in range(n_dec):
            dl, da = tr.model.decode(z, stochastic=True, generator=g)
            hits += int(((dl == lab).all(1) & (da == adj).all((1, 2))).sum())
    return det, hits / (n_z * n_dec * len(archs))


def _predictor(tr, archs, perf: np.ndarray, params: np.ndarray | None) -> dict[str, float]:
    from scipy.stats import kendalltau

    p, c = tr.predict(archs)
    out = {"tau_perf": float(kendalltau(p, perf)[0]), "rmse_perf": float(np.sqrt(np.mean((p - perf) ** 2)))}
    if params is not None:
        out["tau_params"] = float(kendalltau(c, params)[0])
        out["rmse_params"] = float(np.sqrt(np.mean((c - params) ** 2)))
    return out


def _search(trained_ckpt: str, table, label_field: str, eval_field: str) -> dict[str, float]:
    """The ascent's queried cells scored on the full table."""
    from trainables import graphvae
    from trainables.degrade import top_threshold

    archs, _ = graphvae.read_ascent(trained_ckpt)
    rows = table.rows(archs)
    known = rows >= 0
    lab = np.where(known, table.column(label_field)[np.maximum(rows, 0)], np.nan)
    acc = np.where(known, table.column(eval_field)[np.maximum(rows, 0)], np.nan)
    thr = top_threshold(table.column(eval_field), 5.0)
    out = {"asc_queried": float(len(archs)), "asc_in_table": float(known.sum())}
    out["asc_acc_mean"] = float(np.nanmean(acc)) if known.any() else float("nan")
    out["asc_top5"] = float(np.mean(np.nan_to_num(acc, nan=-np.inf) >= thr)) if len(archs) else float("nan")
    out["asc_acc_best"] = float(acc[int(np.nanargmax(lab))]) if np.isfinite(lab).any() else float("nan")
    return out


def _train(config: dict) -> tuple[dict, str, float]:
    from trainables import graphvae, reporting

    t0 = time.perf_counter()
    with reporting.plain_session() as session:
        graphvae.train(config)
        final = session.reports[-1].metrics
        ckpt = tempfile.mkdtemp(prefix="gv-final-")
        import shutil
        shutil.copytree(session.last_checkpoint, ckpt, dirs_exist_ok=True)
    return final, ckpt, time.perf_counter() - t0


def setup(kind: str, seed: int, n_labels, data_dir, overrides: dict) -> dict:
    """One run's trial config, its table and held-out rows (``kind``: nb201 | enas6)."""
    from trainables.degrade import visible_mask
    from trainables.spaces import load_table

    data_dir = Path(data_dir)
    if kind == "nb201":
        table = load_table("nb201", data_dir)
        order = table.extras["arch_index"].astype(np.int64)   # table rows → CSV rows
        train_rows = nb201_split(len(table), seed)
        spec = _write_nb201_table(data_dir, train_rows, Path(tempfile.mkdtemp()))
        config = {"space": "nb201", "data_dir": str(spec), "label_field": NB201_LABEL, "eval_field": NB201_EVAL,
                  "seed": seed, "n_labels": None if n_labels == "all" else n_labels, **overrides}
        test = np.nonzero(~np.isin(order, train_rows))[0]
        label_field, eval_field = NB201_LABEL, NB201_EVAL
    else:
        table = load_table("enas6", data_dir)
        config = {"space": "enas6", "data_dir": str(data_dir), "label_field": ENAS_FIELD, "eval_field": ENAS_FIELD,
                  "train_fraction": TRAIN_SHARE, "seed": seed, **overrides}
        lab = table.column(ENAS_FIELD)
        test = np.nonzero(~visible_mask(np.zeros(len(table), bool), table.keys, lab, TRAIN_SHARE, seed))[0]
        label_field = eval_field = ENAS_FIELD
    return {"kind": kind, "seed": seed, "n_labels": n_labels, "config": config, "table": table, "test": test,
            "label_field": label_field, "eval_field": eval_field, "overrides": overrides}


def evaluate(run: dict, final: dict, ckpt: str, wall: float) -> dict:
    """The held-out figures of one finished run (``run`` from :func:`setup`)."""
    from trainables import graphvae

    table, test = run["table"], run["test"]
    out: dict = {"kind": run["kind"], "seed": run["seed"], "n_labels": run["n_labels"]}
    tr = graphvae.load_model(ckpt)
    archs = [table.arch(r) for r in test]
    cfg = graphvae.VAEConfig.from_config({**graphvae.DEFAULTS, **run["overrides"]})
    out["recon"], out["recon_dvae"] = _recon(tr, archs, cfg.noise_scale, run["seed"])
    out.update(_predictor(tr, archs, table.column(run["label_field"])[test], table.extras["params"][test]))
    out.update(_search(ckpt, table, run["label_field"], run["eval_field"]))
    for k in ("validity", "uniqueness", "novelty", "queries", "n_labels", "n_train"):
        out[f"final_{k}"] = float(final[k])
    out["n_test"], out["wall"] = len(test), wall
    return out


def _job(args: tuple) -> dict:
    kind, seed, n_labels, data_dir, overrides = args
    import torch

    torch.set_num_threads(1)
    if "gv-measure-" not in str(tempfile.tempdir):  # once per worker: private checkpoint copies
        tempfile.tempdir = tempfile.mkdtemp(prefix="gv-measure-")
    run = setup(kind, seed, n_labels, data_dir, overrides)
    final, ckpt, wall = _train(run["config"])
    return evaluate(run, final, ckpt, wall)


def rf_predict(table, train_rows: np.ndarray, test_rows: np.ndarray, seed: int) -> np.ndarray:
    """scikit-learn's random forest (100 trees) on one-hot ops of NB201's 6 edges, fit on
    ``train_rows``' labels (``NB201_LABEL``) → predictions for ``test_rows``."""
    from sklearn.ensemble import RandomForestRegressor

    y = table.column(NB201_LABEL)
    X = np.eye(5)[table.genotypes].reshape(len(table), -1)
    rf = RandomForestRegressor(n_estimators=100, random_state=seed, n_jobs=1).fit(X[train_rows], y[train_rows])
    return rf.predict(X[test_rows])


def _rf_job(args: tuple) -> list[dict]:
    seed, sizes, data_dir = args
    from scipy.stats import kendalltau

    from trainables.graphvae.predictor import iso_split, pick_labels
    from trainables.spaces import load_table

    table = load_table("nb201", Path(data_dir))
    y = table.column(NB201_LABEL)
    order = table.extras["arch_index"].astype(np.int64)
    cell = np.isin(order, nb201_split(len(table), seed))
    splits = {"cell": (np.nonzero(cell)[0], np.nonzero(~cell)[0]),
              "iso": iso_split(table.keys, y, seed, TRAIN_SHARE)}
    out = []
    for split, (tr, te) in splits.items():
        for n in sizes:
            m = len(tr) if n == "all" else n
            p = rf_predict(table, pick_labels(tr, m, seed), te, seed)
            out.append({"kind": f"rf-{split}", "seed": seed, "n_labels": n, "n_train": m,
                        "tau_perf": float(kendalltau(p, y[te])[0]), "rmse_perf": float(np.sqrt(np.mean((p - y[te]) ** 2)))})
    return out


# ============================================================================ report
def _ci(rows: list[dict], key: str, digits: int = 3, scale: float = 1.0) -> str:
    from trainables.stats import mean_ci

    m, h, n = mean_ci([r[key] * scale for r in rows if key in r])
    if n == 0:
        return "—"
    return f"{m:.{digits}f}" if not np.isfinite(h) else f"{m:.{digits}f} ± {h:.{digits}f}"


def markdown(results: list[dict], settings: dict) -> str:
    lines = [f"Settings: {json.dumps(settings)}", ""]
    runs = [r for r in results if r["kind"] in ("nb201", "enas6")]
    if runs:
        lines += ["| space | labels | recon (μ, argmax) | recon (D-VAE 10×10) | validity | uniqueness | novelty "
                  "| τ perf | RMSE perf | τ params | RMSE params | ascent best test | ascent mean test "
                  "| ascent top-5 % | ascent queried | queries | wall s |",
                  "|" + "---|" * 17]
        for kind in ("nb201", "enas6"):
            for n in ("100", "1000", "all"):
                rs = [r for r in runs if r["kind"] == kind and str(r["n_labels"]) == n]
                if not rs:
                    continue
                lab = {"all": f"all ({int(rs[0]['final_n_labels']):,})"}.get(n, n)
                lines.append(
                    f"| {kind} | {lab} | {_ci(rs, 'recon', 2, 100)} % | {_ci(rs, 'recon_dvae', 2, 100)} % "
                    f"| {_ci(rs, 'final_validity', 1, 100)} % | {_ci(rs, 'final_uniqueness', 1, 100)} % "
                    f"| {_ci(rs, 'final_novelty', 1, 100)} % | {_ci(rs, 'tau_perf')} | {_ci(rs, 'rmse_perf', 2)} "
                    f"| {_ci(rs, 'tau_params')} | {_ci(rs, 'rmse_params', 4)} | {_ci(rs, 'asc_acc_best', 2)} "
                    f"| {_ci(rs, 'asc_acc_mean', 2)} | {_ci(rs, 'asc_top5', 2)} | {_ci(rs, 'asc_queried', 1)} "
                    f"| {_ci(rs, 'final_queries', 0)} | {_ci(rs, 'wall', 0)} |")
        lines.append("")
    rf = [r for r in results if r["kind"].startswith("rf-")]
    if rf:
        lines += ["Predictor Kendall τ on held-out NB201 cells (`cifar10-valid/valid/200`), ours vs random forest:",
                  "", "| training labels | graph VAE (cell split) | RF (cell split) | issue's RF | RF (iso-class split) |",
                  "|---|---|---|---|---|"]
        for n in ("100", "1000", "all"):
            ours = [r for r in runs if r["kind"] == "nb201" and str(r["n_labels"]) == n]
            cell = [r for r in rf if r["kind"] == "rf-cell" and str(r["n_labels"]) == n]
            iso = [r for r in rf if r["kind"] == "rf-iso" and str(r["n_labels"]) == n]
            label = f"{int(cell[0]['n_train']):,}" if cell else n
            lines.append(f"| {label} | {_ci(ours, 'tau_perf')} | {_ci(cell, 'tau_perf')} | "
                         f"{RF_ISSUE[n if n == 'all' else int(n)]:.2f} | {_ci(iso, 'tau_perf')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_seed_arguments(p, default_count=10)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    p.add_argument("--only", default="nb201,enas6,rf")
    p.add_argument("--labels", default="100,1000,all")
    p.add_argument("--set", default="{}", help="JSON overrides of the graph-VAE config")
    p.add_argument("--set-enas", default="{}", help="further JSON overrides for ENAS-6 runs")
    p.add_argument("--json", default=None, help="write the raw per-seed results here")
    p.add_argument("--md", default=None, help="write the Markdown table here")
    p.add_argument("--reuse", default=None, help="a previous --json file: its rows not run again now (kind, "
                                                 "label count and seed) join the table")
    a = p.parse_args()
    overrides = {"n_samples": 1000, **json.loads(a.set)}
    only = set(a.only.split(","))
    sizes = [s if s == "all" else int(s) for s in a.labels.split(",")]
    block = seed_block(a)
    seeds = block.seeds
    jobs = []
    if "nb201" in only:
        jobs += [("nb201", s, n, a.data_dir, overrides) for n in sizes for s in seeds]
    if "enas6" in only:
        enas = {**overrides, **json.loads(a.set_enas)}
        jobs += [("enas6", s, "all", a.data_dir, enas) for s in seeds]
    t0 = time.perf_counter()
    results: list[dict] = []
    if a.reuse:  # every earlier row this invocation does not run again (same kind, labels and seed)
        def rerun(r: dict) -> bool:
            group = "rf" if r["kind"].startswith("rf-") else r["kind"]
            same_labels = group == "enas6" or str(r["n_labels"]) in {str(n) for n in sizes}
            return group in only and same_labels and r["seed"] in seeds

        results += [r for r in json.loads(Path(a.reuse).read_text()) if not rerun(r)]
    if "rf" in only:
        for s in seeds:
            results += _rf_job((s, sizes, a.data_dir))
        print(f"random forest done in {time.perf_counter() - t0:.0f} s", flush=True)
    # the longest jobs first, so the pool's tail is short
    jobs.sort(key=lambda j: (j[0] != "enas6", j[2] != "all"))
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(a.procs) as pool:
        for r in pool.imap_unordered(_job, jobs):
            results.append(r)
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}), flush=True)
    settings = {"seeds": block.label, "rerun": block.rerun, "config": overrides, "enas6 config": json.loads(a.set_enas),
                "wall_s": round(time.perf_counter() - t0), "reused": a.reuse}
    md = markdown(results, settings)
    print(md)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    if a.md:
        Path(a.md).write_text(md)


if __name__ == "__main__":
    main()
