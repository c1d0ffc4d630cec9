"""The results folder `<storage_path>/<name>`: where it is, and deleting it (and provably nothing else)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlparse

from sweetspot import layout, storage
from sweetspot.search.config import ConfigError, ExperimentConfig


def experiment_dir(config: ExperimentConfig) -> str:
    """`<storage_path>/<name>`: an absolute local path (Tune runs trials in their own working
    directories) or a storage URI."""
    if storage.is_uri(config.storage_path):
        return storage.join(config.storage_path, config.name)
    return str(Path(config.storage_path).expanduser().resolve() / config.name)


def _local_path(location: str) -> Path | None:
    """A local path or `file://` URI as a path; `None` for an object store."""
    if not storage.is_uri(location):
        return Path(location).expanduser()
    parsed = urlparse(location)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


def delete_results(config: ExperimentConfig, folder: str) -> None:
    """Deletes the results folder `<storage_path>/<name>` and provably nothing outside it: `name`
    is one plain folder name, and on a local disk the folder's real path (links resolved) must be
    exactly `<real storage_path>/<name>`."""
    name = layout.check_name(config.name)
    target, parent = _local_path(folder), _local_path(config.storage_path)
    if target is not None and parent is not None:
        inside = target.resolve() == parent.resolve() / name
    else:
        inside = folder == storage.join(config.storage_path, name)
    if not inside:
        where = target.resolve() if target is not None else folder
        raise ConfigError(
            f"{folder}: not deleted: it is {where}, not the folder {name!r} inside storage_path {config.storage_path}"
        )
    storage.delete_dir(folder)


def _lock_file(folder: str) -> Path:
    """The lock of a results folder: in this user's cache, named by the folder's location, so that
    taking it writes nothing beside the results."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sweetspot" / "locks"
    return cache / f"{hashlib.sha256(folder.encode()).hexdigest()[:32]}.lock"


@contextmanager
def folder_lock(folder: str) -> Iterator[None]:
    """Held while a search or resume uses `folder`: a second one on this machine is refused in one
    line instead of racing the first on Tune's state and the study. An advisory `flock`, released by
    the kernel when the process ends however it ends."""
    import fcntl

    path = _lock_file(folder)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise ConfigError(f"{path}: cannot create the results folder's lock ({e.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise ConfigError(
                f"{folder}: another sweetspot search or resume is using this results folder (pid {holder}); "
                f"wait for it to end, or use another `name`"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)
