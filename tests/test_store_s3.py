"""Object-store roots (``s3://bucket/prefix``) without a cloud: moto's S3 server on 127.0.0.1.

The endpoint and the (dummy) credentials reach everything the way they would on a cluster —
through the environment (``AWS_ENDPOINT_URL_S3``, ``AWS_ACCESS_KEY_ID``…), never through a
file: pyarrow's ``FileSystem.from_uri`` reads them in the driver, and Ray's workers (another
process) inherit them from the Ray the study's driver starts. The end-to-end study therefore
runs ``python -m orchestrator run … --out s3://…`` in a subprocess with its own private Ray
(as ``tests/test_cluster_run.py`` does), so the Ray shared by other test files is untouched.
"""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from orchestrator.storage import StorageError, resolve_root
from orchestrator.rows import provenance
from orchestrator.store import Store, TrialRecord

REPO = Path(__file__).resolve().parents[1]
BUCKET = "gnas-test"
SECRET = "moto-secret-that-must-not-be-stored"  # must never appear in any stored object


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_env():
    """A moto S3 server with one bucket; yields the environment that points AWS clients at it."""
    pytest.importorskip("moto.server", reason="moto is not installed (pip install -e '.[dev]' brings moto[server])")
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "moto-key",
           "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    admin = pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http", access_key="moto-key",
                              secret_key=SECRET, region="us-east-1", allow_bucket_creation=True)
    admin.create_dir(BUCKET)
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        yield env
    server.stop()


def objects(prefix: str) -> dict[str, int]:
    """Every object under ``prefix`` (``bucket/…``) with its size."""
    fs, path = pafs.FileSystem.from_uri(f"s3://{prefix}")
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    return {i.path: i.size for i in infos if i.type == pafs.FileType.File}


def record(trial_id: str, config: dict, value: float, ckpt: str | None = None, status="TERMINATED") -> TrialRecord:
    result = {"top5_pct": value, "training_iteration": 2, "time_total_s": 3600.0, "hostname": "h"}
    return TrialRecord(trial_id=trial_id, trial_name=f"toy_{trial_id}", config=config, result=result,
                       status=status, config_id="c" + trial_id, checkpoint_dir=ckpt, cpus=1.0)


# ----------------------------------------------------------------------------- roots
@pytest.mark.parametrize("root, message", [
    ("hdfs://namenode/gnas", "unsupported scheme hdfs://"),
    ("s3://", "names no bucket"),
    ("s3://AKIAXXXX:secret@bucket/gnas", "carries credentials"),
    ("  ", "empty"),
])
def test_unusable_roots_are_refused_with_one_line(root, message):
    with pytest.raises(StorageError, match=message) as info:
        resolve_root(root)
    assert "\n" not in str(info.value)


def test_local_roots_stay_local_and_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for root in ("store", f"file://{tmp_path}/store", str(tmp_path / "store")):
        location = resolve_root(root)
        assert location.is_local and location.uri == location.path == str(tmp_path / "store")
    assert Store("store") == Store(tmp_path / "store")


def test_cli_refuses_a_bad_root_before_anything_starts(tmp_path, capsys, monkeypatch):
    from orchestrator import cli

    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\ntrainable: toy\nmetric: top5_pct\nmode: max\nwandb: {enabled: false}\n")
    assert cli.main(["run", str(spec), "--out", "hdfs://nn/gnas", "--quiet"]) == cli.EXIT_BAD_SPEC
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: store hdfs://nn/gnas") and "unsupported scheme" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]  # nothing written, no "hdfs:" folder


# ----------------------------------------------------------------------------- the store on S3
def test_store_on_s3_writes_reads_and_replaces_without_duplicates(s3_env, tmp_path):
    root = f"s3://{BUCKET}/store-unit"
    store = Store(root)
    assert store.root == root and not store.has_study("a") and store.read("trials").num_rows == 0
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    pq.write_table(pa.table({"key": ["x", "y", "z"]}), ckpt / "archs.parquet")
    prov = provenance()
    store.write_trial("a", "toy", record("t1", {"seed": 0, "lr": 1}, 1.0, status="ERROR"), prov)
    store.write_trial("a", "toy", record("t1", {"seed": 0, "lr": 1}, 3.0, ckpt=str(ckpt)), prov)  # after a resume
    store.write_trial("b", "pkg.mod:fn", record("t2", {"seed": 1, "lr": 0.5, "k": "x"}, 2.0), prov)

    keys = objects(f"{BUCKET}/store-unit")
    assert sorted(keys) == sorted([f"{BUCKET}/store-unit/gnas-store.json"] + [  # the format marker, and the rows
        f"{BUCKET}/store-unit/{t}/study={s}/trainable={p}/{i}.parquet" for t, s, p, i in (
            ("archs", "a", "toy", "t1"), ("trials", "a", "toy", "t1"), ("trials", "b", "pkg.mod_fn", "t2"))])
    trials = store.read("trials")  # one pyarrow.dataset scan over both studies, schemas unified
    assert trials.num_rows == 2 and pa.types.is_floating(trials.schema.field("config/lr").type)
    frame = store.read_pandas("trials", studies=["a"])
    assert frame["status"].tolist() == ["TERMINATED"] and frame["top5_pct"].tolist() == [3.0]
    assert frame["trainable"].tolist() == ["toy"] and frame["version/pyarrow"].tolist() == [pa.__version__]
    archs = store.read_pandas("archs")
    assert archs["key"].tolist() == ["x", "y", "z"] and set(archs["trial_id"]) == {"t1"}
    assert store.trial_ids("a") == {"t1"} and store.has_study("b") and not store.has_study("c")
    assert store.cost_ledger().set_index("study").loc["a", "cpu_hours"] == 1.0
    with pytest.raises(ValueError, match="unknown table"):
        store.read("nope")


def test_objects_are_put_whole_and_temporaries_are_never_read(s3_env):
    location = resolve_root(f"s3://{BUCKET}/atomic")
    # One PUT per object (allow_delayed_open): nothing is visible before the upload completes.
    assert location.filesystem.__reduce__()[1][0]["allow_delayed_open"] is True
    store = Store(location)
    store.write_trial("s", "toy", record("t1", {"seed": 0}, 1.0), {})
    # A writer that died mid-way leaves no object on S3; a stray "."/"_" object is ignored anyway.
    location.write_bytes(location.join("trials", "study=s", "trainable=toy", ".tmp-t9.parquet"), b"half")
    location.write_bytes(location.join("trials", "study=s", "trainable=toy", "_SUCCESS"), b"")
    assert store.trial_ids("s") == {"t1"} and store.read("trials").num_rows == 1


# ----------------------------------------------------------------------------- a study on S3
SPEC = """
name: s3study
trainable: toy
config: {{steps: 2, n_archs: 3, marker_dir: {markers}}}
grid: {{fail_at_step: [null, 2]}}
seeds: [0, 1]
metric: top5_pct
mode: max
max_failures: 0
concurrency: 2
storage: results
wandb: {{enabled: false}}
"""


def test_study_on_s3_stores_tune_state_and_rows_there_and_resumes(s3_env, tmp_path):
    from test_cluster_run import environment, reap, run  # the same private-Ray helpers

    markers, work = tmp_path / "markers", tmp_path / "work"
    markers.mkdir()
    work.mkdir()
    spec = work / "s3study.yaml"
    spec.write_text(SPEC.format(markers=markers))
    root = f"s3://{BUCKET}/studies"
    temp = os.path.realpath(__import__("tempfile").mkdtemp(prefix="gs3-", dir="/tmp"))
    env = {**environment(temp), **s3_env}
    command = [sys.executable, "-m", "orchestrator", "run", str(spec), "--out", root, "--no-wandb", "--quiet"]
    try:
        # First run: two of the four trials fail once at step 2 (after checkpointing step 1).
        code, out, err = run(command, env, timeout=240)
        assert code == 1, err[-4000:]
        assert "4 trials (2 done, 2 errored)" in out and f"store {root}" in out
        rows = Store(root).read_pandas("trials", studies=["s3study"])
        assert sorted(rows["status"]) == ["ERROR", "ERROR", "TERMINATED", "TERMINATED"]
        stored = objects(f"{BUCKET}/studies/tune/s3study")
        assert any(k.rsplit("/", 1)[-1].startswith("experiment_state-") for k in stored)
        assert any("/checkpoint_000000/" in k for k in stored)  # trial actors upload checkpoints

        # Resume from a copy of the root under another prefix (a moved store): the errored trials
        # continue from their checkpoint objects there, and every row lands in the new root once.
        moved = f"s3://{BUCKET}/moved"
        fs, _ = pafs.FileSystem.from_uri(root)
        pafs.copy_files(f"{BUCKET}/studies", f"{BUCKET}/moved", source_filesystem=fs, destination_filesystem=fs)
        # --verbose: Tune's INFO line naming where it restored from is shown only then
        code, out, err = run([*command[:-4], "--out", moved, "--no-wandb", "--verbose", "--resume"], env, timeout=240)
        assert code == 0, err[-4000:]
        assert "4 trials (4 done, 0 errored)" in out and f"store {moved}" in out
        assert "filesystem=s3, path=gnas-test/moved/tune/s3study/" in out + err  # restored from the copy's objects
        rows = Store(moved).read_pandas("trials", studies=["s3study"])
        assert len(rows) == 4 and rows["trial_id"].is_unique and (rows["status"] == "TERMINATED").all()
        assert (rows["iteration"] == 2).all()
        archs = Store(moved).read_pandas("archs", studies=["s3study"])
        assert len(archs) == 4 * 3 and archs.groupby("trial_id").size().tolist() == [3] * 4
        before = Store(root).read_pandas("trials", studies=["s3study"])  # the original root: untouched
        assert sorted(before["status"]) == ["ERROR", "ERROR", "TERMINATED", "TERMINATED"]
    finally:
        reap(temp)
        __import__("shutil").rmtree(temp, ignore_errors=True)
    assert list(work.iterdir()) == [spec] and not (REPO / "s3:").exists()  # no local "s3:" folder
    fs, path = pafs.FileSystem.from_uri(root)
    for key in objects(f"{BUCKET}/studies"):  # Tune's pickles included: no credentials in the store
        with fs.open_input_stream(key) as stream:
            assert SECRET.encode() not in stream.readall(), key


# ----------------------------------------------------------------------------- a study's folder
def test_study_folder_with_an_object_store_out_is_built_locally_and_copied_to_the_store(s3_env, tmp_path,
                                                                                        monkeypatch, capsys):
    import pandas as pd

    from studies import kit as studykit

    monkeypatch.chdir(tmp_path)
    p = studykit.parser("kit.py", "a study", default_trainables="gnn2gnn", presets_help="")
    seeds = {"smoke": 1, "local": 1, "full": 1}
    out = f"s3://{BUCKET}/kit"
    s = studykit.setup(p.parse_args(["--out", out, "--name", "kit", "--preset", "smoke"]), "kit", seeds)
    assert s.out == out and s.folder == tmp_path / "results" / "studies" / "kit"  # the local default
    part = studykit.Part(studykit.part_spec(s, "p", "toy", {"steps": 1}), method="toy")
    assert part.spec.storage == out
    manifest = studykit.write_manifest(s, [part], {"preset": "smoke"})
    assert f"{BUCKET}/kit/studies/kit/study.json" in objects(f"{BUCKET}/kit")  # published at once
    assert studykit.load_manifest(s) == manifest

    def report(s, manifest, rep):
        rep.add("# kit", f"{len(manifest['parts'])} part")
        rep.table("parts", pd.DataFrame({"name": [e["name"] for e in manifest["parts"]]}))

    # --report-only elsewhere: the manifest comes from the store, the report goes back there
    elsewhere = tmp_path / "elsewhere"
    argv = ["--out", out, "--name", "kit", "--report-only", "--no-wandb", "--report-dir", str(elsewhere)]
    assert studykit.main(argv, p, study_kind="kit", preset_seeds=seeds, build=None, report=report) == 0
    assert f"copied to {out}/studies/kit/" in capsys.readouterr().out
    stored = objects(f"{BUCKET}/kit/studies/kit")
    assert sorted(k.split("/studies/kit/")[1] for k in stored) == [
        "report.md", "study.json", "tables/parts.csv", "tables/parts.parquet"]
    notice, body = (elsewhere / "studies" / "kit" / "report.md").read_text().split("\n\n", 1)
    assert body == "# kit\n1 part\n"  # under the first line: the part never ran, and the report says so
    assert notice.startswith("> **Unfinished study:** 0 of 0+ trials finished (1 of 1 parts unfinished)")
    assert notice.endswith("Resume it: run the study's own command again with --resume")
    assert not any(p.name.startswith("s3") for p in tmp_path.rglob("*"))  # no local "s3:" folder

    code = studykit.main(["--out", "hdfs://nn/x", "--report-only"], p, study_kind="kit", preset_seeds=seeds,
                         build=None, report=report)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == studykit.EXIT_BAD_INPUT and len(err) == 1 and err[0].startswith("error: --out: ")
