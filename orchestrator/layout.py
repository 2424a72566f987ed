"""Where everything lies under a store root: the one place that names its folders and files.

::

    ROOT/gnas-store.json                           the store's format (orchestrator.store)
    ROOT/trials|archs|history/study=S/trainable=T/  the Parquet tables (orchestrator.store)
    ROOT/tune/<study>/                             Ray Tune's experiment (orchestrator.run), or its
        part-0000/, part-0001/ …                   parts, one Tune experiment each
        gnas-study.json                            the spec it ran with (compared on --resume)
        driver.json                                the running driver's host and pid
    ROOT/optuna/<study>.log                        a search's Optuna journal (orchestrator.search)
    ROOT/wandb/<study>/                            offline W&B runs (orchestrator.tracking)
    ROOT/studies/<name>/study.json                 a published study's manifest and report (studies/)

Imports nothing of the orchestrator but :mod:`orchestrator.storage`, so every module may import
it; folder names are never typed anywhere else.
"""
from __future__ import annotations

import json
import re
from typing import Any

from orchestrator.storage import StorageRoot

FORMAT_FILE = "gnas-store.json"
TABLES = ("trials", "archs", "history")
TUNE_DIR = "tune"
SPEC_FILE = "gnas-study.json"
DRIVER_FILE = "driver.json"
OPTUNA_DIR = "optuna"
WANDB_DIR = "wandb"
STUDIES_DIR = "studies"
MANIFEST_FILE = "study.json"
PART = re.compile(r"part-\d+")  # trial folders always hold "_": never a part's name


def tune_folder(location: StorageRoot, study: str) -> str:
    """``ROOT/tune/<study>``: the study's Tune experiment, or the folders of its parts."""
    return location.join(TUNE_DIR, study)


def part_folder(location: StorageRoot, study: str, k: int) -> str:
    """The folder of the ``k``-th Tune experiment of a study run in parts."""
    return location.join(TUNE_DIR, study, f"part-{k:04d}")


def spec_path(location: StorageRoot, study: str) -> str:
    return location.join(TUNE_DIR, study, SPEC_FILE)


def driver_path(location: StorageRoot, study: str) -> str:
    return location.join(TUNE_DIR, study, DRIVER_FILE)


def optuna_journal_path(location: StorageRoot, study: str) -> str:
    return location.join(OPTUNA_DIR, f"{study}.log")


def study_folder(location: StorageRoot, name: str) -> str:
    """``ROOT/studies/<name>``: a published study's manifest, report and figures."""
    return location.join(STUDIES_DIR, name)


def saved_spec(location: StorageRoot, study: str) -> dict[str, Any] | None:
    """The spec ``study`` started with (plain data, as ``StudySpec.to_dict`` writes it), or
    ``None`` when it never started; ``ValueError`` when its file is damaged."""
    path = spec_path(location, study)
    return json.loads(location.read_bytes(path)) if location.is_file(path) else None
