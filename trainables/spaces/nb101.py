"""NAS-Bench-101: cells of at most 7 nodes and 9 edges, 3 ops, 423,624 unique cells.

Architectures are node-labelled DAGs already (ArchGraph's own form). The space follows the
official ``ModelSpec`` rules: a graph is first *pruned* (nodes on no input→output path are
removed), then checked: output reachable from input, at most 7 nodes, at most 9 edges, every
intermediate op one of :data:`OPS`. Sameness is the official ``hash_module`` fingerprint of
the pruned graph (iterated MD5 hashing of in/out degree + op index), so keys equal the module
hashes of the official ``nasbench_only108.tfrecord`` / ``nasbench_full.tfrecord``.

Genotype (26 positions): the ops of nodes 1..5 (3 choices each) followed by the 21 bits of
the 7×7 upper triangle, row-major over ``i < j``. A graph with ``k < 7`` nodes is embedded
with its first ``k − 1`` nodes at 0..k−2, its output at node 6, and the unused nodes
disconnected with op 0; a valid graph of more than 7 nodes is pruned first. Tables store the
genotype of each cell's pruned graph. :meth:`NB101Space.decode` always returns 7 nodes, which
prune back to the same key.

The official release is read **without TensorFlow**: :func:`load_tfrecord` parses the
TFRecord framing itself (CRC32C-checked) and decodes the ``ModelMetrics`` protobuf with
message classes built at run time (no ``protoc``, no generated module).
"""
from __future__ import annotations

import base64
import csv
import json
import math
import os
import struct
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from trainables.arch import INPUT, OUTPUT, ArchGraph
from trainables.spaces.base import BenchmarkTable, Field, SearchSpace

# Official ALLOWED_OPS order: the op index enters the module hash.
OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
MAX_NODES = 7
MAX_EDGES = 9
NUM_CELLS = 423_624  # unique valid cells (Ying et al., 2019)
LABEL_IDS: dict[str, int] = {INPUT: -1, OUTPUT: -2, **{op: i for i, op in enumerate(OPS)}}
_OP_INDEX = {op: i for i, op in enumerate(OPS)}
N_OP_POS = MAX_NODES - 2  # nodes 1..5
PAIRS: tuple[tuple[int, int], ...] = tuple((i, j) for i in range(MAX_NODES) for j in range(i + 1, MAX_NODES))
_PAIR_INDEX = {p: k for k, p in enumerate(PAIRS)}
GENOTYPE_LEN = N_OP_POS + len(PAIRS)  # 26

CSV_FIELD = str(Field("cifar10", "valid", "108"))
_HASH_CHECKS = 8  # records whose stored hash is recomputed and compared by load_tfrecord


# ------------------------------------------------------------------ conversions
def _parse_matrix(matrix: str | Sequence[Sequence[int]] | np.ndarray) -> np.ndarray:
    if isinstance(matrix, (str, bytes)):
        text = matrix.decode("ascii") if isinstance(matrix, bytes) else matrix
        text = text.strip()
        n = math.isqrt(len(text))
        if n * n != len(text) or n == 0:
            raise ValueError(f"adjacency string of length {len(text)} is not n*n 0/1 digits")
        if set(text) - {"0", "1"}:
            raise ValueError("adjacency string must hold only the digits 0 and 1")
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8).reshape(n, n) - ord("0")
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"adjacency matrix must be square, got shape {m.shape}")
    if not np.isin(m, (0, 1)).all():
        raise ValueError("adjacency matrix must hold only 0/1")
    return m.astype(np.uint8)


def _parse_ops(ops: str | Sequence[str]) -> list[str]:
    if isinstance(ops, str):
        return [o.strip() for o in ops.split(",")]
    return [str(o) for o in ops]


def from_matrix_ops(matrix: str | Sequence[Sequence[int]] | np.ndarray, ops: str | Sequence[str]) -> ArchGraph:
    """Graph of an NB101 ``(matrix, ops)`` pair.

    ``matrix``: ``n×n`` 0/1 (list, array, or the row-major string of ``n*n`` digits used by
    the CSV and the tfrecord); ``ops``: ``n`` labels, ``input`` first and ``output`` last
    (a list, or one comma-joined string). An upper-triangular matrix keeps its node order;
    any other DAG is reordered topologically. Not pruned, not validated against the space.
    """
    m = _parse_matrix(matrix)
    labels = _parse_ops(ops)
    if len(labels) != m.shape[0]:
        raise ValueError(f"{len(labels)} op labels for a {m.shape[0]}-node matrix")
    if not np.tril(m).any():
        src, dst = np.nonzero(m)
        return ArchGraph(tuple(labels), tuple(zip(src.tolist(), dst.tolist())))
    return ArchGraph.from_matrix(m, labels)


def to_matrix_ops(arch: ArchGraph) -> tuple[np.ndarray, list[str]]:
    """``(matrix, ops)`` of ``arch`` as it is (not pruned): ``(n, n)`` uint8 upper-triangular
    adjacency and the ``n`` labels, ``input`` first and ``output`` last."""
    return arch.matrix(), list(arch.ops)


def matrix_string(matrix: np.ndarray) -> str:
    """Row-major ``0/1`` string of a matrix (the CSV / tfrecord form)."""
    return "".join("1" if v else "0" for v in np.asarray(matrix).reshape(-1).tolist())


# ------------------------------------------------------------------------ space
class NB101Space(SearchSpace):
    name = "nb101"
    ops = OPS
    max_nodes = MAX_NODES
    max_edges = MAX_EDGES
    cardinalities = np.array([len(OPS)] * N_OP_POS + [2] * len(PAIRS), dtype=np.int64)

    from_matrix_ops = staticmethod(from_matrix_ops)
    to_matrix_ops = staticmethod(to_matrix_ops)

    def pruned(self, arch: ArchGraph) -> ArchGraph:
        """``arch`` pruned and checked: raises ``ValueError`` naming the first broken rule."""
        for v, op in enumerate(arch.ops[1:-1], start=1):
            if op not in _OP_INDEX:
                raise ValueError(f"unknown NB101 op {op!r} at node {v}; expected one of {', '.join(OPS)}")
        p = arch.prune()
        if not p.connected():
            raise ValueError("NB101 cell is disconnected: output is unreachable from input")
        if p.num_nodes > MAX_NODES:
            raise ValueError(f"NB101 cell has too many nodes after pruning: {p.num_nodes} > {MAX_NODES}")
        if len(p.edges) > MAX_EDGES:
            raise ValueError(f"NB101 cell has too many edges after pruning: {len(p.edges)} > {MAX_EDGES}")
        return p

    def validate(self, arch: ArchGraph) -> None:
        self.pruned(arch)

    def key(self, arch: ArchGraph) -> str:
        """The official NB101 module hash (md5 hex) of the pruned graph."""
        return self.pruned(arch).wl_hash(LABEL_IDS)

    def encode(self, arch: ArchGraph) -> np.ndarray:
        """Genotype of a valid ``arch``: the graph as given when it has at most 7 nodes (so
        ``encode(decode(g)) == g`` and a mutation can reconnect a dormant node), otherwise
        its pruned form; ``k < 7`` nodes are embedded with the output moved to node 6."""
        p = self.pruned(arch)
        return _embed(arch if arch.num_nodes <= MAX_NODES else p)

    def decode(self, genotype: Sequence[int] | np.ndarray) -> ArchGraph:
        g = np.asarray(genotype, dtype=np.int64).reshape(-1)
        if g.shape[0] != GENOTYPE_LEN:
            raise ValueError(f"NB101 genotype has {GENOTYPE_LEN} positions, got {g.shape[0]}")
        if (g < 0).any() or (g >= self.cardinalities).any():
            raise ValueError("NB101 genotype value out of range")
        ops = (INPUT, *(OPS[int(v)] for v in g[:N_OP_POS]), OUTPUT)
        edges = tuple(PAIRS[k] for k in np.nonzero(g[N_OP_POS:])[0].tolist())
        return ArchGraph(ops, edges)

    def size(self) -> int:
        return NUM_CELLS

    def enumerate(self) -> Iterator[ArchGraph]:
        raise NotImplementedError(
            f"nb101: its {NUM_CELLS:,} cells are not enumerated here; load the official tfrecord instead")


def _embed(p: ArchGraph) -> np.ndarray:
    """Genotype of a graph of at most 7 nodes with known ops (output moved to node 6)."""
    k = p.num_nodes
    g = np.zeros(GENOTYPE_LEN, dtype=np.int64)
    for v in range(1, k - 1):
        g[v - 1] = _OP_INDEX[p.ops[v]]
    last = k - 1
    for s, d in p.edges:
        g[N_OP_POS + _PAIR_INDEX[(s, MAX_NODES - 1 if d == last else d)]] = 1
    return g


def _genotype_of_raw(space: NB101Space, adj: str, ops: Sequence[str]) -> np.ndarray:
    """Genotype of a tfrecord's ``(adjacency string, ops)``; equals
    ``space.encode(from_matrix_ops(adj, ops))``, with a pure-Python fast path for the
    official case (upper-triangular, already pruned, valid)."""
    n = math.isqrt(len(adj))
    if n * n == len(adj) and 2 <= n <= MAX_NODES and len(ops) == n and ops[0] == INPUT and ops[-1] == OUTPUT:
        g = [0] * GENOTYPE_LEN
        ok = True
        for v in range(1, n - 1):
            i = _OP_INDEX.get(ops[v])
            if i is None:
                ok = False
                break
            g[v - 1] = i
        fwd = [False] * n
        bwd = [False] * n
        fwd[0] = bwd[n - 1] = True
        edges = []
        if ok:
            for s in range(n):
                row = adj[s * n:(s + 1) * n]
                for d, c in enumerate(row):
                    if c == "1":
                        if d <= s:
                            ok = False
                            break
                        edges.append((s, d))
                    elif c != "0":
                        ok = False
                        break
                if not ok:
                    break
        if ok and len(edges) <= MAX_EDGES:
            for s, d in edges:  # sorted by src: forward reachability in one pass
                if fwd[s]:
                    fwd[d] = True
            for s, d in reversed(edges):  # sorted by src descending; dst > src already done
                if bwd[d]:
                    bwd[s] = True
            if all(fwd) and all(bwd):
                for s, d in edges:
                    g[N_OP_POS + _PAIR_INDEX[(s, MAX_NODES - 1 if d == n - 1 else d)]] = 1
                return np.asarray(g, dtype=np.int64)
    return space.encode(from_matrix_ops(adj, list(ops)))


# ------------------------------------------------------------------ sample CSV
def load_sample_csv(path: str | Path, dedupe: bool = True) -> BenchmarkTable:
    """The shared ``nb101_sample500.csv`` (columns ``matrix, ops, val_accuracy, params_m,
    flops_m``): field ``cifar10/valid/108`` in percent; extras ``params``, ``flops``
    (millions) and ``csv_rows``.

    The CSV's matrices are unpruned random 7-node specs, so several rows can be the same
    NB101 cell (the 500-row sample holds 292 distinct cells); each such row carries the
    accuracy of one randomly drawn training repeat. With ``dedupe`` (default) the table has
    one row per cell (first-seen order): accuracy = mean over its CSV rows, ``params`` and
    ``flops`` from its first row (NASLib counted them on the labelled graph as given, so
    isomorphic variants can differ by a fraction of a percent), ``csv_rows`` = how many rows
    were merged. ``dedupe=False`` keeps every CSV row (keys then repeat).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"NB101 table not found: {path}")
    space = NB101Space()
    need = {"matrix", "ops", "val_accuracy", "params_m", "flops_m"}
    row_of: dict[str, int] = {}
    genotypes, keys, acc, params, flops, count = [], [], [], [], [], []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = need - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            try:
                p = space.pruned(from_matrix_ops(row["matrix"], row["ops"]))
                a = float(row["val_accuracy"])
                pm, fm = float(row["params_m"]), float(row["flops_m"])
            except ValueError as e:
                raise ValueError(f"{path}:{line}: {e}") from None
            k = p.wl_hash(LABEL_IDS)
            r = row_of.get(k) if dedupe else None
            if r is not None:
                acc[r] += a
                count[r] += 1
                continue
            row_of[k] = len(keys)
            genotypes.append(_embed(p))
            keys.append(k)
            acc.append(a)
            params.append(pm)
            flops.append(fm)
            count.append(1)
    if not keys:
        raise ValueError(f"{path}: no rows")
    n = np.asarray(count, dtype=np.float64)
    return BenchmarkTable(space, np.asarray(genotypes, dtype=np.int64).reshape(len(keys), GENOTYPE_LEN),
                          keys, keys, {CSV_FIELD: np.asarray(acc) / n},
                          {"params": np.asarray(params), "flops": np.asarray(flops), "csv_rows": n},
                          source=str(path))


# ------------------------------------------------------------ TFRecord framing
_MASK_DELTA = 0xA282EAD8


@lru_cache(maxsize=1)
def _crc32c():
    try:
        import google_crc32c
    except ImportError:
        raise ImportError("reading or writing the NB101 TFRecord needs the nb101 extra: "
                          "pip install -e '.[nb101]' (google-crc32c, protobuf); the 500-cell CSV needs neither") from None
    return google_crc32c.value


def _masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC32C: ``((crc >> 15) | (crc << 17)) + 0xa282ead8`` mod 2**32."""
    crc = _crc32c()(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def iter_tfrecord(path: str | Path) -> Iterator[bytes]:
    """The data of each record of a TFRecord file, both CRCs verified.

    Raises ``ValueError`` naming the record index and byte offset on a CRC mismatch or a
    truncated record.
    """
    path = Path(path)
    with path.open("rb", buffering=1 << 20) as f:
        index = offset = 0
        while True:
            head = f.read(12)
            if not head:
                return
            if len(head) < 12:
                raise ValueError(f"{path}: record {index} at byte offset {offset}: truncated header")
            length, length_crc = struct.unpack("<QI", head)
            if _masked_crc(head[:8]) != length_crc:
                raise ValueError(f"{path}: record {index} at byte offset {offset}: length CRC mismatch (corrupt file)")
            data = f.read(length)
            foot = f.read(4)
            if len(data) != length or len(foot) != 4:
                raise ValueError(f"{path}: record {index} at byte offset {offset}: truncated data")
            if _masked_crc(data) != struct.unpack("<I", foot)[0]:
                raise ValueError(f"{path}: record {index} at byte offset {offset}: data CRC mismatch (corrupt file)")
            yield data
            index += 1
            offset += 16 + length


def _frame(data: bytes) -> bytes:
    head = struct.pack("<Q", len(data))
    return head + struct.pack("<I", _masked_crc(head)) + data + struct.pack("<I", _masked_crc(data))


# ------------------------------------------------------------ ModelMetrics proto
@lru_cache(maxsize=1)
def _proto_classes() -> tuple[type, type]:
    """``(ModelMetrics, EvaluationData)`` message classes, built from a descriptor at run time
    in a private pool (no protoc; no clash with an installed ``nasbench`` package)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="nasbench/lib/model_metrics.proto",
                                             package="nasbench", syntax="proto2")
    mm = fdp.message_type.add(name="ModelMetrics")
    mm.field.add(name="evaluation_data", number=1, label=F.LABEL_REPEATED, type=F.TYPE_MESSAGE,
                 type_name=".nasbench.EvaluationData")
    mm.field.add(name="trainable_parameters", number=2, label=F.LABEL_OPTIONAL, type=F.TYPE_INT32)
    mm.field.add(name="total_time", number=3, label=F.LABEL_OPTIONAL, type=F.TYPE_DOUBLE)
    ed = fdp.message_type.add(name="EvaluationData")
    for number, name in enumerate(("current_epoch", "training_time", "train_accuracy",
                                   "validation_accuracy", "test_accuracy"), start=1):
        ed.field.add(name=name, number=number, label=F.LABEL_OPTIONAL, type=F.TYPE_DOUBLE)
    ed.field.add(name="checkpoint_path", number=6, label=F.LABEL_OPTIONAL, type=F.TYPE_STRING)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return (message_factory.GetMessageClass(pool.FindMessageTypeByName("nasbench.ModelMetrics")),
            message_factory.GetMessageClass(pool.FindMessageTypeByName("nasbench.EvaluationData")))


EVAL_FIELDS = ("current_epoch", "training_time", "train_accuracy", "validation_accuracy",
               "test_accuracy", "checkpoint_path")


@dataclass(frozen=True)
class NB101Record:
    """One record of the official file: one training run (repeat) of one cell at one budget.

    Units are the official ones: accuracies as fractions in [0, 1], times in seconds.
    ``evaluations`` holds the ``EvaluationData`` entries in order (the last one is the end of
    training), each a dict over :data:`EVAL_FIELDS` (absent fields omitted).
    ``module_hash`` empty means "compute it" when writing.
    """

    matrix: np.ndarray
    ops: tuple[str, ...]
    epochs: int
    evaluations: tuple[dict[str, Any], ...]
    trainable_parameters: int = 0
    total_time: float = 0.0
    module_hash: str = ""


def _decode_record(data: bytes, index: int, path: Path) -> tuple[str, int, str, list[str], Any]:
    try:
        module_hash, epochs, adj, ops, b64 = json.loads(data)
        if not (isinstance(module_hash, str) and isinstance(adj, str) and isinstance(ops, str)
                and isinstance(b64, str)):
            raise TypeError("field types")
        metrics = _proto_classes()[0].FromString(base64.b64decode(b64))
    except Exception as e:  # noqa: BLE001 - any malformed record becomes one ValueError
        raise ValueError(f"{path}: record {index} is not an NB101 record "
                         f"[hash, epochs, adjacency, ops, base64 ModelMetrics]: {e}") from None
    return module_hash, int(epochs), adj, ops.split(","), metrics


def read_tfrecord(path: str | Path) -> Iterator[NB101Record]:
    """Every record of an official NB101 tfrecord, fully decoded (slow path; for tools and
    tests — :func:`load_tfrecord` builds the table directly)."""
    path = Path(path)
    for i, data in enumerate(iter_tfrecord(path)):
        h, epochs, adj, ops, m = _decode_record(data, i, path)
        evals = tuple({f: getattr(e, f) for f in EVAL_FIELDS if e.HasField(f)} for e in m.evaluation_data)
        yield NB101Record(matrix=_parse_matrix(adj), ops=tuple(ops), epochs=epochs, evaluations=evals,
                          trainable_parameters=int(m.trainable_parameters), total_time=float(m.total_time),
                          module_hash=h)


def write_tfrecord(path: str | Path, rows: Iterable[NB101Record | Mapping[str, Any]]) -> int:
    """Write records in the official format (TFRecord framing + CRC32C, JSON
    ``[hash, epochs, adjacency, ops, base64 ModelMetrics]``), atomically. Returns the count.

    Each row is an :class:`NB101Record` or a mapping with the same field names (``matrix``
    may be the 0/1 string, ``ops`` a comma-joined string). The adjacency is written as given;
    a missing ``module_hash`` is computed with :meth:`NB101Space.key`.
    """
    path = Path(path)
    space = NB101Space()
    MM, ED = _proto_classes()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    count = 0
    try:
        with os.fdopen(fd, "wb") as f:
            for row in rows:
                r = row if isinstance(row, Mapping) else row.__dict__
                m = _parse_matrix(r["matrix"])
                ops = _parse_ops(r["ops"])
                h = r.get("module_hash") or space.key(from_matrix_ops(m, ops))
                evals = [ED(**{k: v for k, v in e.items() if k in EVAL_FIELDS}) for e in r["evaluations"]]
                msg = MM(evaluation_data=evals, trainable_parameters=int(r.get("trainable_parameters", 0)),
                         total_time=float(r.get("total_time", 0.0)))
                payload = json.dumps([h, int(r["epochs"]), matrix_string(m), ",".join(ops),
                                      base64.b64encode(msg.SerializeToString()).decode("ascii")])
                f.write(_frame(payload.encode("utf-8")))
                count += 1
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return count


# ------------------------------------------------------------ official table
def load_tfrecord(path: str | Path, epochs: Iterable[int] = (108,)) -> BenchmarkTable:
    """The official ``nasbench_only108.tfrecord`` / ``nasbench_full.tfrecord``, streamed.

    One row per module hash (first-seen order). For each requested budget ``e`` the fields
    ``cifar10/{valid,test,train}/{e}`` hold the mean over the repeats of the final
    evaluation's accuracy, in percent (NaN where a cell lacks that budget). Extras:
    ``params`` (trainable parameters, millions) and ``training_time`` (mean seconds at the
    largest requested budget; with several budgets also ``training_time/{e}``).

    Raises ``ValueError`` on a CRC mismatch, a malformed record, or when a record's stored
    hash differs from :meth:`NB101Space.key` of its graph (checked on the first records).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"NB101 tfrecord not found: {path}")
    budgets = sorted({int(e) for e in epochs})
    if not budgets:
        raise ValueError("load_tfrecord needs at least one epoch budget")
    slot = {e: k for k, e in enumerate(budgets)}
    nb = len(budgets)
    space = NB101Space()
    MM = _proto_classes()[0]
    row_of: dict[str, int] = {}
    raw: list[tuple[str, list[str]]] = []
    params: list[float] = []
    # sums[k] for budget slot k: valid, test, train, time, count (lists indexed by row)
    sums = [[[] for _ in range(5)] for _ in range(nb)]
    checked = 0
    loads, b64decode = json.loads, base64.b64decode
    for i, data in enumerate(iter_tfrecord(path)):
        try:
            h, ep, adj, ops_s, b64 = loads(data)
            k = slot.get(int(ep))
        except Exception:  # noqa: BLE001
            _decode_record(data, i, path)  # raises the descriptive error
            raise
        if checked < _HASH_CHECKS:
            ops_l = ops_s.split(",")
            try:
                mine = space.key(from_matrix_ops(adj, ops_l))
            except ValueError as e:
                raise ValueError(f"{path}: record {i}: graph is not a valid NB101 cell: {e}") from None
            if mine != h:
                raise ValueError(f"{path}: record {i}: stored module hash {h} differs from the computed "
                                 f"NB101 hash {mine}: the file's hash scheme does not match")
            checked += 1
        if k is None:
            continue
        try:
            m = MM.FromString(b64decode(b64))
            final = m.evaluation_data[-1]
        except Exception as e:  # noqa: BLE001
            raise ValueError(f"{path}: record {i}: bad ModelMetrics payload: {e}") from None
        r = row_of.get(h)
        if r is None:
            r = row_of[h] = len(raw)
            raw.append((adj, ops_s.split(",")))
            params.append(m.trainable_parameters / 1e6)
            for s in sums:
                for col in s:
                    col.append(0.0)
        s = sums[k]
        s[0][r] += final.validation_accuracy
        s[1][r] += final.test_accuracy
        s[2][r] += final.train_accuracy
        s[3][r] += final.training_time
        s[4][r] += 1.0
    if not raw:
        raise ValueError(f"{path}: no records with epochs in {budgets}")
    keys = list(row_of)
    genotypes = np.empty((len(keys), GENOTYPE_LEN), dtype=np.int64)
    for r, (adj, ops_l) in enumerate(raw):
        try:
            genotypes[r] = _genotype_of_raw(space, adj, ops_l)
        except ValueError as e:
            raise ValueError(f"{path}: cell {keys[r]}: not a valid NB101 cell: {e}") from None
    metrics: dict[str, np.ndarray] = {}
    extras: dict[str, np.ndarray] = {"params": np.asarray(params, dtype=np.float64)}
    with np.errstate(invalid="ignore", divide="ignore"):
        for e, s in zip(budgets, sums):
            n = np.asarray(s[4])
            n = np.where(n > 0, n, np.nan)
            metrics[f"cifar10/valid/{e}"] = np.asarray(s[0]) / n * 100.0
            metrics[f"cifar10/test/{e}"] = np.asarray(s[1]) / n * 100.0
            metrics[f"cifar10/train/{e}"] = np.asarray(s[2]) / n * 100.0
            t = np.asarray(s[3]) / n
            if nb > 1:
                extras[f"training_time/{e}"] = t
            if e == budgets[-1]:
                extras["training_time"] = t
    return BenchmarkTable(space, genotypes, keys, keys, metrics, extras, source=str(path))


def load_table(path: str | Path, epochs: Iterable[int] = (108,)) -> BenchmarkTable:
    """``.csv`` → :func:`load_sample_csv`; anything else → :func:`load_tfrecord`."""
    return load_sample_csv(path) if str(path).lower().endswith(".csv") else load_tfrecord(path, epochs)
