"""Files of a results folder on a local path, an NFS mount, or a `s3://` / `gs://` / `file://`
URI (pyarrow filesystems, the same ones Ray Tune uses for `storage_path`).

Example:
    >>> join("s3://bucket/runs", "quickstart", "summary.json")
    's3://bucket/runs/quickstart/summary.json'
"""

from __future__ import annotations

import os
from pathlib import Path


def is_uri(location: str) -> bool:
    return "://" in location


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts]) if is_uri(base) else str(Path(base, *parts))


def _fs(location: str):
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri(location)  # (filesystem, path inside it)


def exists(location: str) -> bool:
    if not is_uri(location):
        return Path(location).exists()
    import pyarrow.fs

    fs, path = _fs(location)
    return fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound


def read_text(location: str) -> str:
    if not is_uri(location):
        return Path(location).read_text(encoding="utf-8")
    fs, path = _fs(location)
    with fs.open_input_stream(path) as f:
        return f.read().decode("utf-8")


def write_text(location: str, text: str) -> None:
    """Writes `text`; a local file is replaced atomically, so readers never see half of it."""
    if not is_uri(location):
        target = Path(location)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
        return
    fs, path = _fs(location)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as f:  # object stores replace whole objects on close
        f.write(text.encode("utf-8"))


def delete_dir(location: str) -> None:
    if not is_uri(location):
        import shutil

        shutil.rmtree(location)
        return
    fs, path = _fs(location)
    fs.delete_dir(path)


def is_empty_dir(location: str) -> bool:
    if not is_uri(location):
        return not Path(location).is_dir() or not any(Path(location).iterdir())
    import pyarrow.fs

    fs, path = _fs(location)
    if fs.get_file_info(path).type == pyarrow.fs.FileType.NotFound:
        return True
    return not fs.get_file_info(pyarrow.fs.FileSelector(path, recursive=False))
