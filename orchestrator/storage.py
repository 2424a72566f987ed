"""Where Ray Tune keeps a study's experiment: a local (or NFS) filesystem with atomic writes.

Ray Tune writes its experiment state (trial table, searcher state) into a staging folder and
copies it to the storage path in a background thread, file by file, in place. A driver killed
during that copy leaves an empty or half-written state file behind; ``Tuner.restore`` then
fails to read it, logs the error and — measured with Ray 2.60 — quietly *restarts the study
from scratch*. Giving Tune a storage filesystem whose every written file appears atomically
(written to a hidden temporary file, then renamed over the target) removes that window: after
a crash, each file holds either its previous or its new complete content.
"""
from __future__ import annotations

import io
import os
import shutil
import uuid

import pyarrow
import pyarrow.fs as pafs

TYPE_NAME = "atomic-local"


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
