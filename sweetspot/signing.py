"""Signed Tune state: `resume` unpickles only state files this user's sweetspot wrote.

Resuming a search (`Tuner.restore`) unpickles Ray Tune's state files from the results folder:
`tuner.pkl`, the newest `experiment_state-*.json` (JSON with embedded cloudpickle blobs),
`search_gen_state-*.json`, `searcher-state-*.pkl`, `callback-states-*.pkl` (all `*.json` and `*.pkl`
at the folder's top, which Tune copies to the driver before restoring), and an errored trial's
`trial_<id>/error.pkl` (read when the resumed run ends). Unpickling runs code, so anyone who can write
the results folder (a shared NFS path, a bucket) could run code on the machine that resumes.

So sweetspot signs them, as Jupyter signs notebooks: `state-signature.json` lists each state file's
SHA-256 under an HMAC keyed by a per-user secret (`$SWEETSPOT_SIGNING_KEY`, else a random key created
once, mode 0600, in `~/.config/sweetspot/signing_key`, or under `$XDG_CONFIG_HOME`). `resume` verifies
before anything is unpickled and refuses a state file that is unsigned or changed, naming it.
`summary.json` and `run.json` (sweetspot's run records and run state, read with `json.loads` only) are not state files.

Pure Python on `sweetspot.storage`: the folder may be a local path or a storage URI.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "tuner.pkl").write_bytes(b"state")
    >>> key = b"k" * 32
    >>> sorted(sign(str(d), key=key)["files"])
    ['tuner.pkl']
    >>> verify(str(d), key=key)
    >>> _ = (d / "tuner.pkl").write_bytes(b"other")
    >>> verify(str(d), key=key)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    sweetspot.signing.SigningError: .../tuner.pkl: changed since sweetspot signed it ...
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from sweetspot import layout, storage

KEY_ENV = "SWEETSPOT_SIGNING_KEY"
FORMAT = 1
TRUST_HINT = ("resuming unpickles it, which runs code from whoever wrote it; "
              "if you trust everyone who can write this folder, pass --trust-results-folder")


class SigningError(ValueError):
    """A state file that does not verify, or an unusable key (shown as one line)."""


def key_file() -> Path:
    """Where the per-user key lives: `$XDG_CONFIG_HOME/sweetspot/signing_key` (default `~/.config`)."""
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "sweetspot" / "signing_key"


def signing_key() -> bytes:
    """This user's signing key: `$SWEETSPOT_SIGNING_KEY`, else the key file, created on first use
    with 32 random bytes (hex) and mode 0600. A key file others can read or write is refused."""
    if os.environ.get(KEY_ENV):
        return os.environ[KEY_ENV].encode()
    path = key_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as e:
        raise SigningError(f"{path}: cannot create the signing key ({e.strerror}); set ${KEY_ENV} instead") from None
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SigningError(f"{path}: the signing key is readable or writable by others (mode {stat.filemode(mode)}); "
                               f"run: chmod 600 {path}")
        key = path.read_text().strip()
    except OSError as e:
        raise SigningError(f"{path}: cannot read the signing key ({e.strerror})") from None
    if not key:
        raise SigningError(f"{path}: the signing key file is empty; delete it and a new key is made")
    return key.encode()


def is_state_file(name: str) -> bool:
    """A top-level file of a results folder that Tune may unpickle on restore (it copies every
    `*.json` and `*.pkl` there to the driver before restoring)."""
    return name.endswith((".json", ".pkl")) and name not in (layout.SUMMARY_FILE, layout.RUN_FILE, layout.SIGNATURE_FILE)


def state_files(folder: str) -> list[str]:
    """The state files of a results folder (or of Tune's driver staging folder), as paths relative
    to it: the top-level `is_state_file`s and each trial's `layout.TRIAL_STATE_FILES`."""
    found = []
    for name, is_dir in storage.list_dir(folder):
        if not is_dir and is_state_file(name):
            found.append(name)
        elif is_dir and name.startswith(layout.TRIAL_PREFIX):
            found += [f"{name}/{f}" for f, sub in storage.list_dir(storage.join(folder, name))
                      if not sub and f in layout.TRIAL_STATE_FILES]
    return sorted(found)


def _read(folder: str, relative: str) -> bytes | None:
    return storage.read_bytes(storage.join(folder, *relative.split("/")))


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _mac(key: bytes, files: dict[str, str]) -> str:
    return hmac.new(key, json.dumps(files, sort_keys=True).encode(), hashlib.sha256).hexdigest()


def file_digest(folder: str, relative: str) -> str | None:
    data = _read(folder, relative)
    return None if data is None else digest(data)


def sign(folder: str, *, key: bytes | None = None, extra: dict[str, str] | None = None) -> dict[str, Any]:
    """Writes `<folder>/state-signature.json` over the folder's state files (plus `extra`: digests
    of state files kept elsewhere, by relative path) and returns it."""
    files = dict(extra or {})
    for relative in state_files(folder):
        data = _read(folder, relative)
        if data is not None:  # gone since it was listed: nothing to sign
            files[relative] = digest(data)
    document = {"format": FORMAT, "files": files, "hmac": _mac(key or signing_key(), files)}
    storage.write_text(storage.join(folder, layout.SIGNATURE_FILE), json.dumps(document, indent=1, sort_keys=True))
    return document


def verify(folder: str, *, key: bytes | None = None) -> None:
    """Returns when every state file of `folder` is signed with this user's key and unchanged;
    raises `SigningError` naming the first one that is not."""
    present = state_files(folder)
    where = storage.join(folder, layout.SIGNATURE_FILE)
    text = storage.read_text(where)
    if text is None:
        if present:
            raise SigningError(f"{storage.join(folder, present[0])}: not signed (no {layout.SIGNATURE_FILE}); {TRUST_HINT}")
        return
    try:
        document = json.loads(text)
        files, mac = document["files"], document["hmac"]
        if not (isinstance(files, dict) and isinstance(mac, str)):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise SigningError(f"{where}: unreadable signature file; {TRUST_HINT}") from None
    if not hmac.compare_digest(_mac(key or signing_key(), files), mac):
        raise SigningError(f"{where}: not signed with this user's key ({KEY_ENV} or {key_file()}); {TRUST_HINT}")
    for relative in present:
        found = file_digest(folder, relative)
        if relative not in files:
            raise SigningError(f"{storage.join(folder, relative)}: not signed (absent from {layout.SIGNATURE_FILE}); {TRUST_HINT}")
        if found is not None and not hmac.compare_digest(found, files[relative]):
            raise SigningError(f"{storage.join(folder, relative)}: changed since sweetspot signed it "
                               f"(by someone else, or by a driver killed while saving); {TRUST_HINT}")
