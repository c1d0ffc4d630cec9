"""Files under a local folder or a storage URI (`s3://`, `gs://`, `file://`), for reading a results
folder and writing its report. pyarrow is imported only for URIs.

Example:
    >>> import tempfile; d = tempfile.mkdtemp()
    >>> write_bytes(join(d, "a", "b.txt"), b"hi"); read_bytes(join(d, "a", "b.txt"))
    b'hi'
    >>> list_dir(join(d, "a"))
    [('b.txt', False)]
"""

from __future__ import annotations

import os
from pathlib import Path

from search.storage import is_uri, join

__all__ = ["is_uri", "join", "exists", "is_dir", "read_bytes", "read_text", "write_bytes", "list_dir"]


def _fs(location: str):
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri(location)  # (filesystem, path inside it)


def _type(location: str):
    import pyarrow.fs

    fs, path = _fs(location)
    return fs.get_file_info(path).type, pyarrow.fs.FileType


def exists(location: str) -> bool:
    if not is_uri(location):
        return Path(location).exists()
    kind, types = _type(location)
    return kind != types.NotFound


def is_dir(location: str) -> bool:
    if not is_uri(location):
        return Path(location).is_dir()
    kind, types = _type(location)
    return kind == types.Directory


def read_bytes(location: str) -> bytes | None:
    """The file's bytes, or None when it does not exist."""
    if not is_uri(location):
        path = Path(location)
        return path.read_bytes() if path.is_file() else None
    if not exists(location):
        return None
    fs, path = _fs(location)
    with fs.open_input_stream(path) as f:
        return f.read()


def read_text(location: str) -> str | None:
    data = read_bytes(location)
    return None if data is None else data.decode("utf-8")


def write_bytes(location: str, data: bytes) -> None:
    """Writes `data`; a local file is replaced atomically (a temporary file renamed over it)."""
    if not is_uri(location):
        target = Path(location)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        return
    fs, path = _fs(location)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as f:  # object stores replace whole objects on close
        f.write(data)


def list_dir(location: str) -> list[tuple[str, bool]]:
    """(name, is a folder) of the folder's entries, sorted by name; [] when it does not exist."""
    if not is_uri(location):
        path = Path(location)
        return sorted((p.name, p.is_dir()) for p in path.iterdir()) if path.is_dir() else []
    import pyarrow.fs

    fs, path = _fs(location)
    if fs.get_file_info(path).type != pyarrow.fs.FileType.Directory:
        return []
    infos = fs.get_file_info(pyarrow.fs.FileSelector(path, recursive=False))
    return sorted((info.base_name, info.type == pyarrow.fs.FileType.Directory) for info in infos)
