"""Files of a results folder on a local path, an NFS mount, or a `s3://` / `gs://` / `file://`
URI (pyarrow filesystems, the same ones Ray Tune uses for `storage_path`). pyarrow is imported only
for URIs. Used by the search (writing run records) and by the analysis (reading results, writing
the report); no Ray here.

Example:
    >>> join("s3://bucket/runs", "quickstart", "summary.json")
    's3://bucket/runs/quickstart/summary.json'
    >>> import tempfile; d = tempfile.mkdtemp()
    >>> write_bytes(join(d, "a", "b.txt"), b"hi"); read_bytes(join(d, "a", "b.txt")), read_text(join(d, "nope"))
    (b'hi', None)
    >>> list_dir(join(d, "a"))
    [('b.txt', False)]
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def is_uri(location: str) -> bool:
    return "://" in location


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts]) if is_uri(base) else str(Path(base, *parts))


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
    """The file's text (UTF-8), or None when it does not exist."""
    data = read_bytes(location)
    return None if data is None else data.decode("utf-8")


def write_bytes(location: str, data: bytes, *, tmp_dir: str | None = None) -> None:
    """Writes `data`; a local file is replaced atomically (a temporary file in the same folder, or in
    `tmp_dir` on the same file system, flushed to disk, renamed over it), so readers never see half of
    it, and after a crash the file is the old one or the new one. (`tmp_dir`: for a folder another
    process copies file by file, where a temporary file could vanish between its listing and its copy.)
    Object stores replace whole objects on close."""
    if not is_uri(location):
        target = Path(location)
        target.parent.mkdir(parents=True, exist_ok=True)
        name = f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp"  # one per writer
        tmp = Path(tmp_dir, name) if tmp_dir else target.with_name(name)
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())  # the data on disk before the rename makes it the file
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return
    fs, path = _fs(location)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as f:
        f.write(data)


def write_text(location: str, text: str, *, tmp_dir: str | None = None) -> None:
    write_bytes(location, text.encode("utf-8"), tmp_dir=tmp_dir)


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


def delete_dir(location: str) -> None:
    if not is_uri(location):
        import shutil

        shutil.rmtree(location)
        return
    fs, path = _fs(location)
    fs.delete_dir(path)


def move(source: str, destination: str) -> None:
    """Renames a file or folder (on a URI: pyarrow's move, a copy and delete on object stores)."""
    if not is_uri(source):
        Path(destination).parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, destination)
        return
    fs, path = _fs(source)
    fs.create_dir(_fs(destination)[1].rsplit("/", 1)[0], recursive=True)
    fs.move(path, _fs(destination)[1])


def is_empty_dir(location: str) -> bool:
    return not list_dir(location)
