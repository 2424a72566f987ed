"""Image data offline: Fashion-MNIST (standard IDX files) and CIFAR-10 (python batches).

Both readers take a folder, never download: the GHN trainable trains real networks, and CI
machines have no network. Fashion-MNIST comes from Debian's ``dataset-fashion-mnist`` package
(``apt-get install -y dataset-fashion-mnist`` puts the four IDX ``.gz`` files under
:data:`DEBIAN_FASHION_MNIST`) or from any folder holding the standard files, gzipped or not;
CIFAR-10 from the standard ``cifar-10-batches-py`` folder.

The CIFAR-10 batches are pickles. They are read with a restricted unpickler that can build
nothing but plain containers, byte/str/int values and numpy arrays — a pickle naming any other
callable is refused with :class:`UnsafePickleError` before it runs.

Arrays returned: images ``(N, C, H, W)`` uint8, labels ``(N,)`` int64.
"""
from __future__ import annotations

import gzip
import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "DEBIAN_FASHION_MNIST",
    "FASHION_MNIST_ENV",
    "ImageSet",
    "UnsafePickleError",
    "default_fashion_mnist_dir",
    "load_cifar10",
    "load_fashion_mnist",
    "read_cifar_batch",
    "read_idx",
    "write_idx",
]

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_ENV = "FASHION_MNIST_DIR"  # overrides the Debian location
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# IDX type codes (the third magic byte) → big-endian numpy dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class ImageSet:
    """A dataset's official train and test splits.

    Attributes:
        x_train, x_test: ``(N, C, H, W)`` uint8 images.
        y_train, y_test: ``(N,)`` int64 class labels in ``0..n_classes-1``.
        name: ``"fashion-mnist"`` or ``"cifar10"``.
        source: the folder read.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    source: str

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    @property
    def channels(self) -> int:
        return int(self.x_train.shape[1])


# ============================================================================ IDX
def read_idx(path: str | Path) -> np.ndarray:
    """One IDX file (gzipped when its name ends in ``.gz``) as a numpy array in native byte order.

    Raises ``ValueError`` for a bad magic number, an unknown type code or a size that does
    not match the header.
    """
    path = Path(path)
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int(v) for v in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{path}: IDX header says {expected} bytes, file holds {len(raw)}")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` (uint8/int8/int16/int32/float32/float64) as an IDX file; gzipped when
    ``path`` ends in ``.gz``. The inverse of :func:`read_idx` (tests, user conversions)."""
    array = np.asarray(array)
    for code, name in _IDX_DTYPES.items():
        if np.dtype(name).newbyteorder("=") == array.dtype:
            break
    else:
        raise ValueError(f"IDX cannot hold dtype {array.dtype}")
    body = (bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
            + array.astype(np.dtype(_IDX_DTYPES[code])).tobytes())
    path = Path(path)
    path.write_bytes(gzip.compress(body, mtime=0) if path.suffix == ".gz" else body)


def default_fashion_mnist_dir() -> Path:
    """``$FASHION_MNIST_DIR`` when set, else where the Debian package installs the files."""
    return Path(os.environ.get(FASHION_MNIST_ENV) or DEBIAN_FASHION_MNIST)


def _idx_file(folder: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    raise ValueError(
        f"Fashion-MNIST file {stem}[.gz] not found in {folder}; install the Debian package "
        f"(apt-get install -y dataset-fashion-mnist) or point image_dir / ${FASHION_MNIST_ENV} "
        "at a folder holding the four standard IDX files")


def load_fashion_mnist(folder: str | Path | None = None) -> ImageSet:
    """The four standard IDX files of ``folder`` (default :func:`default_fashion_mnist_dir`).

    Any MNIST-format folder works (MNIST itself, KMNIST): images ``(N, 1, H, W)`` uint8.
    """
    folder = Path(folder) if folder is not None else default_fashion_mnist_dir()
    if not folder.is_dir():
        raise ValueError(f"Fashion-MNIST folder not found: {folder} (apt-get install -y dataset-fashion-mnist, "
                         f"or set image_dir / ${FASHION_MNIST_ENV})")
    parts = {k: read_idx(_idx_file(folder, v)) for k, v in IDX_FILES.items()}
    for split in ("train", "test"):
        x, y = parts[f"{split}_images"], parts[f"{split}_labels"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{folder}: {split} images {x.shape} and labels {y.shape} do not match")
    return ImageSet(parts["train_images"][:, None].astype(np.uint8), parts["train_labels"].astype(np.int64),
                    parts["test_images"][:, None].astype(np.uint8), parts["test_labels"].astype(np.int64),
                    "fashion-mnist", str(folder))


# ============================================================================ CIFAR-10
class UnsafePickleError(ValueError):
    """A pickle asked for something other than containers, scalars and numpy arrays."""


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    # Protocol-2 pickles written by Python 3 rebuild ``bytes`` as _codecs.encode(str, 'latin1').
    if encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class _ArrayUnpickler(pickle.Unpickler):
    """Builds only what the CIFAR batches hold: dict/list/bytes/str/int (pickle opcodes, no
    globals needed) and numpy arrays (``_reconstruct`` + ``ndarray`` + ``dtype``)."""

    def find_class(self, module: str, name: str):
        if (module, name) in (("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")):
            return _numpy_reconstruct()
        if (module, name) == ("numpy", "ndarray"):
            return np.ndarray
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        raise UnsafePickleError(f"refusing to load {module}.{name} from a CIFAR batch")


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return _reconstruct


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One ``cifar-10-batches-py`` batch (``data_batch_k`` / ``test_batch``): images
    ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` int64.

    The file is a pickled dict (Python 2 era: bytes keys) holding ``data`` ``(N, 3072)`` uint8
    (row-major R, G, B planes of 32×32) and ``labels`` (a list of ints).
    """
    path = Path(path)
    try:
        obj = _ArrayUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except UnsafePickleError:
        raise
    except Exception as e:  # truncated or not a pickle at all
        raise ValueError(f"{path}: not a CIFAR-10 python batch ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: not a CIFAR-10 python batch (expected a dict, got {type(obj).__name__})")
    entries = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}
    if "data" not in entries or "labels" not in entries:
        raise ValueError(f"{path}: a CIFAR-10 batch needs 'data' and 'labels', found {sorted(map(str, entries))}")
    data = np.asarray(entries["data"])
    labels = np.asarray(entries["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise ValueError(f"{path}: data {data.dtype}{data.shape} / labels {labels.shape} are not CIFAR-10's")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(folder: str | Path) -> ImageSet:
    """A ``cifar-10-batches-py`` folder: every ``data_batch_*`` present (5 in the release),
    and ``test_batch``."""
    folder = Path(folder)
    train_files = sorted(folder.glob("data_batch_*"))
    if not train_files or not (folder / "test_batch").is_file():
        raise ValueError(f"{folder}: expected data_batch_* and test_batch (the cifar-10-batches-py folder)")
    xs, ys = zip(*(read_cifar_batch(p) for p in train_files))
    x_test, y_test = read_cifar_batch(folder / "test_batch")
    return ImageSet(np.concatenate(xs), np.concatenate(ys), x_test, y_test, "cifar10", str(folder))
