"""Where a study's files live: a local/NFS folder or an object store (``s3://``, ``gs://``).

:func:`resolve_root` is the one place that turns a store root (what ``--out`` / a spec's
``storage`` says) into a pyarrow filesystem and a path on it — a :class:`StorageRoot`. The
Parquet store (:mod:`orchestrator.store`), Ray Tune's experiment (``RunConfig(storage_path,
storage_filesystem)``, ``Tuner.restore``, ``Tuner.can_restore``; :mod:`orchestrator.run`) and
the store callback all go through it, so a root means the same thing everywhere.

**Local roots** (a path; ``file://`` too) get :func:`atomic_local_filesystem`. Ray Tune writes
its experiment state (trial table, searcher state) into a staging folder and copies it to the
storage path in a background thread, file by file, in place. A driver killed during that copy
leaves an empty or half-written state file behind; ``Tuner.restore`` then fails to read it, logs
the error and — measured with Ray 2.60 — quietly *restarts the study from scratch*. Giving Tune
a storage filesystem whose every written file appears atomically (written to a hidden temporary
file, then renamed over the target) removes that window: after a crash, each file holds either
its previous or its new complete content.

**Object-store roots** get ``pyarrow.fs.FileSystem.from_uri`` (``S3FileSystem``,
``GcsFileSystem``); credentials and endpoint come from the node, never from the project's
files (a root carrying credentials is refused): the instance profile / service account, or the
usual variables (``AWS_ACCESS_KEY_ID``…,
``AWS_ENDPOINT_URL_S3`` for an S3-compatible endpoint; query options such as
``?endpoint_override=…&scheme=http`` in the URI work too). There no rename is needed: an object
becomes visible only when its upload completes (a single PUT, or a multipart upload's final
*complete* request), so a reader sees the previous object or the new whole one, never a part.
S3 roots are opened with ``allow_delayed_open`` so that a small object is one PUT.

The filesystem object travels to Ray's workers inside Tune's storage context (pickled) and is
saved in Tune's ``tuner.pkl``: it carries the endpoint it was resolved with but no credentials
— each worker finds its own, as on a cluster every node has its instance profile (measured
with pyarrow 26.0.1: ``AWS_ENDPOINT_URL_S3`` is read by ``from_uri`` and pickled as
``endpoint_override``; the keys are not).
"""
from __future__ import annotations

import fnmatch
import io
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pyarrow
import pyarrow.fs as pafs

TYPE_NAME = "atomic-local"
OBJECT_STORE_SCHEMES = ("s3", "gs", "gcs")


class StorageError(ValueError):
    """A store root that cannot be used (bad URI, unknown scheme, unreachable store)."""


@dataclass(frozen=True)
class StorageRoot:
    """A store root resolved to ``filesystem`` + ``path`` (``uri``: how to name it to people)."""

    uri: str  # "s3://bucket/prefix[?options]" or an absolute local path: resolves to this again
    path: str  # the root on ``filesystem``: "bucket/prefix" or the absolute path
    filesystem: pafs.FileSystem = field(repr=False, compare=False)

    @property
    def is_local(self) -> bool:
        return self.uri.startswith("/")

    def join(self, *parts: str) -> str:
        """The path of ``parts`` under the root, on :attr:`filesystem`."""
        return str(PurePosixPath(self.path, *parts))

    def uri_of(self, path: str) -> str:
        """``path`` (on the filesystem) as people should read it: with the root's scheme, no options."""
        if self.is_local:
            return path
        return self.uri.split("://", 1)[0] + "://" + path

    # ------------------------------------------------------------------ reading
    def exists(self, path: str) -> bool:
        return self.filesystem.get_file_info(path).type != pafs.FileType.NotFound

    def is_file(self, path: str) -> bool:
        return self.filesystem.get_file_info(path).type == pafs.FileType.File

    def read_bytes(self, path: str) -> bytes:
        with self.filesystem.open_input_stream(path) as stream:
            return stream.readall()

    def files(self, base: str, pattern: str = "*") -> list[str]:
        """Files under ``base`` (recursively) whose name matches ``pattern``, sorted; none if
        ``base`` does not exist. Names starting with "." or "_" (writers' temporaries) never match."""
        selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
        return sorted(info.path for info in self.filesystem.get_file_info(selector)
                      if info.type == pafs.FileType.File and not info.base_name.startswith((".", "_"))
                      and fnmatch.fnmatchcase(info.base_name, pattern))

    # ------------------------------------------------------------------ writing
    def remove(self, path: str) -> None:
        """Delete the file ``path``; one already gone is no error."""
        try:
            self.filesystem.delete_file(path)
        except FileNotFoundError:
            pass

    def write_bytes(self, path: str, data: bytes) -> None:
        """Make ``path`` hold ``data``, all at once: readers see the old content or the new.

        Local: a hidden temporary file in the same folder, renamed over ``path``. Object
        store: one upload of the whole object, which becomes visible only when it completes.
        """
        if self.is_local:
            directory, name = os.path.split(path)
            os.makedirs(directory, exist_ok=True)
            tmp = os.path.join(directory, f".tmp-{name}-{uuid.uuid4().hex}")  # ".": hidden from readers
            try:
                with open(tmp, "wb") as out:
                    out.write(data)
                os.replace(tmp, path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            return
        out = self.filesystem.open_output_stream(path)
        out.write(data)  # the whole object in one write: nothing is sent before it is complete
        out.close()


def resolve_root(root: "str | os.PathLike[str] | StorageRoot") -> StorageRoot:
    """The :class:`StorageRoot` of ``root``: a local path, ``file://``, ``s3://`` or ``gs://``.

    Raises :class:`StorageError` (one line) for any other scheme, a URI without a bucket, or an
    object store pyarrow cannot open. Nothing is created.
    """
    if isinstance(root, StorageRoot):
        return root
    text = os.fspath(root).strip()
    if not text:
        raise StorageError("the store root is empty")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme in ("", "file") or len(scheme) == 1:  # a path (a drive letter is no scheme)
        local = parts.path if scheme == "file" else text
        path = str(Path(local).expanduser().absolute())
        return StorageRoot(uri=path, path=path, filesystem=atomic_local_filesystem())
    if scheme not in OBJECT_STORE_SCHEMES:
        raise StorageError(f"store root {text!r}: unsupported scheme {scheme}://; use a path, s3:// or gs://")
    if not parts.hostname:
        raise StorageError(f"store root {text!r} names no bucket")
    if parts.username or parts.password:
        raise StorageError("the store root carries credentials; take them from the environment or the"
                           " instance profile / service account instead")
    query = dict(parse_qsl(parts.query))
    if scheme == "s3":
        query.setdefault("allow_delayed_open", "true")  # a small object is one PUT
    uri = urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), ""))
    try:
        filesystem, path = pafs.FileSystem.from_uri(uri)
    except (OSError, ValueError, pyarrow.ArrowException) as exc:
        raise StorageError(f"store root {text!r}: {exc}".splitlines()[0]) from None
    uri = urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), parts.query, ""))
    return StorageRoot(uri=uri, path=path.rstrip("/"), filesystem=filesystem)


def atomic_local_filesystem() -> pafs.PyFileSystem:
    """A pyarrow filesystem over local paths whose output files are written atomically."""
    return pafs.PyFileSystem(AtomicLocalHandler())


class _AtomicFile(io.FileIO):
    """A file written under a hidden temporary name and renamed to ``path`` on close."""

    def __init__(self, path: str) -> None:
        directory, name = os.path.split(path)
        self._final = path
        super().__init__(os.path.join(directory, f".{name}.tmp-{uuid.uuid4().hex[:8]}"), "wb")

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        os.replace(self.name, self._final)


class AtomicLocalHandler(pafs.FileSystemHandler):
    """``LocalFileSystem``, except that new files (and copies) appear atomically."""

    def __init__(self) -> None:
        self._fs = pafs.LocalFileSystem()

    def __reduce__(self):
        return (AtomicLocalHandler, ())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AtomicLocalHandler)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def get_type_name(self) -> str:
        return TYPE_NAME

    def normalize_path(self, path: str) -> str:
        return self._fs.normalize_path(path)

    def get_file_info(self, paths):
        return self._fs.get_file_info(paths)

    def get_file_info_selector(self, selector):
        return self._fs.get_file_info(selector)

    def create_dir(self, path: str, recursive: bool) -> None:
        self._fs.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self._fs.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self._fs.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        raise PermissionError("refusing to delete the contents of the filesystem root")

    def delete_file(self, path: str) -> None:
        self._fs.delete_file(path)

    def move(self, src: str, dest: str) -> None:
        self._fs.move(src, dest)

    def copy_file(self, src: str, dest: str) -> None:
        with open(src, "rb") as source, _AtomicFile(dest) as target:
            shutil.copyfileobj(source, target)

    def open_input_stream(self, path: str):
        return self._fs.open_input_stream(path)

    def open_input_file(self, path: str):
        return self._fs.open_input_file(path)

    def open_output_stream(self, path: str, metadata):
        return pyarrow.PythonFile(_AtomicFile(path), mode="w")

    def open_append_stream(self, path: str, metadata):
        return self._fs.open_append_stream(path)  # logs that grow; appends cannot be atomic
