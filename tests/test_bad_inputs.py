"""Bad input, as a new user would give it: one ``error:`` line, exit status 2, nothing written.

Each case runs ``python -m orchestrator run SPEC --out OUT`` in a fresh folder, with Ray's
temporary folder pointed inside it (``RAY_TMPDIR``). It must exit 2, print exactly one stderr
line, starting ``error:``, and leave the output root absent (or as it was), Ray's folder
absent (Ray never started) and the working folder holding only what the case put there.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

BASE = """\
name: bad
trainable: baseline
config: {method: uniform, n_samples: 20}
metric: top5_pct
wandb: {enabled: false}
"""
SEARCH_Q = "search: {q: {type: float, low: 5.0, high: 50.0}}\nsamples: 2\n"


def spec(*lines: str, base: str = BASE, config: str | None = None) -> str:
    text = base if config is None else base.replace("config: {method: uniform, n_samples: 20}", f"config: {config}")
    return text + "".join(line + "\n" for line in lines)


def nb201(config: str) -> str:
    return spec(config="{space: nb201, data_dir: DATA, " + config + "}")


# name → (spec text, extra args, what the one line must mention)
CASES: dict[str, tuple[str, list[str], str]] = {
    # the table
    "metric the trainable never reports (grid)": (spec().replace("top5_pct", "top5_pcnt"), [], "did you mean 'top5_pct'"),
    "metric the trainable never reports (search)": (
        spec(SEARCH_Q, config="{method: marginals, n_samples: 20}").replace("top5_pct", "top5_pcnt"), [],
        "does not report it"),
    "holdout_top_pct is text": (spec(config='{method: uniform, holdout_top_pct: "ten"}'), [],
                                "holdout_top_pct must be a finite number"),
    "--out is a read-only filesystem": (spec(), ["--out", "/proc/sys/gnas-out"], "cannot be written"),
    "--out is an existing file": (spec(), ["--out", "FILE"], "is a file, not a folder"),
    "trainable os:system": (spec().replace("trainable: baseline", 'trainable: "os:system"'), [],
                            "is not registered"),
    "query_budget 0 with random search": (spec("query_budget: 0", config="{method: random_search}"), [],
                                          "query_budget >= 1"),
    "marginals with a budget below its training set": (
        spec("query_budget: 50", config="{method: marginals, n_samples: 20}"), [], "labels its whole training set"),
    # selection on validation
    "search ranked on the evaluation field": (spec(SEARCH_Q, config="{method: marginals, n_samples: 20}"), [],
                                              "rank by 'val_top5_pct'"),
    "asha ranked on the evaluation field": (spec("scheduler: asha"), [], "evaluation (test) field"),
    # seeds
    "seeds as a bare integer": (spec("seeds: 3"), [], "seeds: {count: 3}"),
    "seeds repeat": (spec("seeds: [0, 0]"), [], "repeats a seed"),
    "seeds count zero": (spec("seeds: {count: 0}"), [], "seeds"),
    # the spec file itself
    "misspelt key": (spec("metirc: top5_pct"), [], "did you mean 'metric'"),
    "not YAML": ("name: [unclosed\n", [], "not valid YAML"),
    "not a mapping": ("- name: bad\n", [], "must be a mapping"),
    "name with spaces": (spec().replace("name: bad", "name: my study"), [], "name must be"),
    "samples without search": (spec("samples: 3"), [], "needs searched parameters"),
    "negative cpu": (spec("resources: {cpu: -1}"), [], "resources.cpu"),
    "more GPUs than the machine": (spec("resources: {cpu: 1, gpu: 64}"), [], "GPU"),
    "unknown scheduler": (spec("scheduler: hyperband"), [], "scheduler.kind"),
    "unknown W&B mode": (spec().replace("wandb: {enabled: false}", "wandb: {mode: sometimes}"), [], "wandb.mode"),
    "bad mode": (spec("mode: maximise"), [], "must be 'min' or 'max'"),
    "search low above high": (spec("search: {q: {type: float, low: 50.0, high: 5.0}}", "samples: 2",
                                   config="{method: marginals}"), [], "must be below high"),
    "reserved key in config": (spec(config="{method: uniform, seed: 3}"), [], "set by the orchestrator"),
    "query_budget text": (spec('query_budget: "ten"'), [], "query_budget"),
    "empty grid axis": (spec("grid: {q: []}", config="{method: marginals}"), [], "non-empty list"),
    # the trainable and its config
    "unknown trainable": (spec().replace("trainable: baseline", "trainable: gnn2gn"), [], "did you mean 'gnn2gnn'"),
    "unimportable target": (spec().replace("trainable: baseline", 'trainable: "nosuchpkg.mod:train"'), [],
                            "cannot import"),
    "unknown baseline method": (spec(config="{method: annealing}"), [], "method must be one of"),
    "unknown space": (spec(config="{method: uniform, space: nb301}"), [], "unknown search space"),
    "unknown field": (spec(config="{method: uniform, eval_field: cora/test/999}"), [], "no accuracy field"),
    "train_fraction zero": (spec(config="{method: uniform, train_fraction: 0}"), [], "train_fraction"),
    "negative label noise": (spec(config="{method: uniform, label_noise: -1}"), [], "label_noise"),
    "n_samples zero": (spec(config="{method: uniform, n_samples: 0}"), [], "n_samples"),
    "n_samples text": (spec(config='{method: uniform, n_samples: "many"}'), [], "n_samples must be a whole number"),
    "missing data folder": (spec(config="{method: uniform, space: nb201, data_dir: /nonexistent/data}"), [],
                            "not found"),
    "nb201 folder without nb201.csv": (spec(config="{method: uniform, space: nb201, data_dir: EMPTY}"), [],
                                       "no nb201.csv in"),
    "NATS-Bench release without the trust flag": (
        spec(config="{method: uniform, space: nb201, data_dir: NATS}"), [], "GNAS_TRUST_PICKLES=1"),
    "unknown transfer space": (spec(config="{method: uniform, transfer_space: nb999}"), [], "transfer_space"),
    # the spec file's encoding and keys
    "spec is a binary file": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", [], "not UTF-8 text"),
    "spec is UTF-16": (spec().encode("utf-16"), [], "save the spec as UTF-8"),
    "name twice": (spec("name: other"), [], "key 'name' appears twice"),
    "seeds twice": (spec("seeds: [0]", "seeds: [1]"), [], "key 'seeds' appears twice"),
    "key twice in config": (spec(config="{method: uniform, n_samples: 20, n_samples: 30}"), [],
                            "key 'n_samples' appears twice"),
    # sizes beyond what a machine holds
    "seeds count 10^18": (spec("seeds: {count: 1000000000000000000}"), [], "more than 100,000 seeds"),
    "seeds range 10^18": (spec("seeds: {range: [0, 1000000000000000000]}"), [], "more than 100,000 seeds"),
    "a million trials and more": (spec("seeds: {count: 100000}", "grid: {q: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]}",
                                       config="{method: marginals, n_samples: 20}"), [], "at most 1,000,000"),
    "n_samples 10^18": (spec(config="{method: uniform, n_samples: 1000000000000000000}"), [],
                        "more than 1,000,000 architectures"),
    "query_budget 10^18": (spec("query_budget: 1000000000000000000", config="{method: random_search}"), [],
                           "more cells than any benchmark holds"),
}
DATA_CASES: dict[str, tuple[str, str, str]] = {  # name → (table variant, config, what the line mentions)
    "nb201.csv cut at a line boundary": ("truncated", "method: uniform", "truncated"),
    "evaluation column all NaN": ("eval_nan", "method: uniform", "has no values"),
    "label column all NaN": ("label_nan", "method: uniform", "has no values"),
    "search on a table without a validation field": ("nb101", "method: marginals, n_samples: 20",
                                                     "no separate validation field"),
    "accuracies x10": ("times10", "method: uniform", "accuracies outside 0-100 %"),
    "an accuracy of -50": ("minus50", "method: uniform", "'cifar10-valid/valid/200' holds 1 accuracies outside"),
    "an accuracy of 1e18": ("huge", "method: uniform", "(e.g. 1e+18)"),
}


@pytest.fixture(scope="module")
def bad_tables(tmp_path_factory, shared_data) -> dict[str, Path]:
    """The shared NB201 table cut at a line boundary, and with its evaluation / label column
    blanked (pyarrow writes the copies)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    root = tmp_path_factory.mktemp("tables")
    table = pacsv.read_csv(shared_data / "nb201.csv")
    out = {}
    for name, t in (("truncated", table.slice(0, 7812)),
                    ("eval_nan", _blank(table, "cifar10_test_200ep")),
                    ("label_nan", _blank(table, "cifar10valid_valid_200ep")),
                    ("times10", _scaled(table, "cifar10_test_200ep", 10.0)),
                    ("minus50", _set_first(table, "cifar10valid_valid_200ep", -50.0)),
                    ("huge", _set_first(table, "cifar10_test_200ep", 1e18))):
        folder = root / name
        folder.mkdir()
        pacsv.write_csv(t, folder / "nb201.csv")
        out[name] = folder
    out["nb101"] = shared_data
    assert pa  # noqa: S101 - pyarrow is what wrote them
    return out


def _scaled(table, column: str, factor: float):
    import pyarrow.compute as pc

    i = table.column_names.index(column)
    return table.set_column(i, column, pc.multiply(table.column(column).cast("float64"), factor))


def _set_first(table, column: str, value: float):
    import pyarrow as pa

    i = table.column_names.index(column)
    values = table.column(column).cast("float64").to_pylist()
    return table.set_column(i, column, pa.array([value, *values[1:]], pa.float64()))


def _blank(table, column: str):
    import pyarrow as pa

    i = table.column_names.index(column)
    return table.set_column(i, column, pa.nulls(table.num_rows, pa.float64()))


def _run_bad(tmp_path: Path, text: str, args: list[str]) -> tuple[subprocess.CompletedProcess, Path, set[str]]:
    work = tmp_path / "work"
    work.mkdir()
    if isinstance(text, bytes):
        (work / "spec.yaml").write_bytes(text)
    else:
        (work / "spec.yaml").write_text(text)
    (work / "FILE").write_text("not a folder\n")
    (work / "EMPTY").mkdir()
    (work / "NATS-tss-v1_0-3ffb9-simple").mkdir()  # looks like the official release: read with pickle
    before = {p.name for p in work.iterdir()}
    out = work / "out"
    args = [str(work / a) if a in ("FILE",) else a for a in args]
    if "--out" not in args:
        args = [*args, "--out", str(out)]
    env = {**os.environ, "RAY_TMPDIR": str(tmp_path / "ray"), "WANDB_MODE": "offline", "RAY_AUTH_MODE": "disabled",
           "PYTHONPATH": str(REPO)}
    env.pop("GNAS_TRUST_PICKLES", None)
    proc = subprocess.run([sys.executable, "-m", "orchestrator", "run", str(work / "spec.yaml"), *args],
                          cwd=work, env=env, capture_output=True, text=True, timeout=300)
    return proc, work, before


def _assert_refused(tmp_path: Path, proc: subprocess.CompletedProcess, work: Path, before: set[str], mentions: str):
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    assert mentions in lines[0], lines[0]
    assert not (work / "out").exists()  # nothing written to the store
    assert {p.name for p in work.iterdir()} == before  # nor beside it (no ./results, no wandb/)
    assert (work / "FILE").read_text() == "not a folder\n"
    assert not (tmp_path / "ray").exists()  # Ray never started
    assert proc.stdout == ""


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_exit_2_nothing_written(name, tmp_path):
    text, args, mentions = CASES[name]
    if isinstance(text, str):
        text = text.replace("EMPTY", str(tmp_path / "work" / "EMPTY"))
        text = text.replace("data_dir: NATS", f"data_dir: {tmp_path / 'work' / 'NATS-tss-v1_0-3ffb9-simple'}")
    proc, work, before = _run_bad(tmp_path, text, args)
    _assert_refused(tmp_path, proc, work, before, mentions)


@pytest.mark.parametrize("name", list(DATA_CASES))
def test_bad_benchmark_table_is_one_line_exit_2_nothing_written(name, tmp_path, bad_tables):
    variant, config, mentions = DATA_CASES[name]
    space = "nb101" if variant == "nb101" else "nb201"
    text = spec(config=f"{{space: {space}, data_dir: {bad_tables[variant]}, {config}}}")
    if variant == "nb101":
        text = text.replace("metric: top5_pct", "metric: val_top5_pct") + SEARCH_Q
    proc, work, before = _run_bad(tmp_path, text, [])
    _assert_refused(tmp_path, proc, work, before, mentions)

