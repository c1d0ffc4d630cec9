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
`sweetspot.yaml` is signed with them: it drives the resumed trials (epochs, dropout, the data fingerprint).

The signature binds the folder: its `binding` (under the HMAC) names the results folder the state was
written for and the search's run id (a random id in `sweetspot.yaml`), and counts the signatures made;
the highest count seen for a folder is kept beside the key, so an older signed state put back is refused
(`verified_copy`), as is a folder copied or moved elsewhere (Tune's state and the study name the old path).
`verified_copy` reads every signed file once and checks those bytes: a resume restores from that
private copy, never from the folder again (no window to swap a file between the check and the load).

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
import tempfile
import time
from pathlib import Path
from typing import Any

from sweetspot import layout, storage

KEY_ENV = "SWEETSPOT_SIGNING_KEY"
FORMAT = 2
MIN_KEY_BYTES = 16  # an HMAC key shorter than this can be guessed
TRUST_HINT = (
    "resuming unpickles it, which runs code from whoever wrote it; "
    "if you trust everyone who can write this folder, pass --trust-results-folder"
)


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
        return _long_enough(os.environ[KEY_ENV].encode(), f"${KEY_ENV}")
    path = key_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            _create_key(path)
    except OSError as e:
        raise SigningError(f"{path}: cannot create the signing key ({e.strerror}); set ${KEY_ENV} instead") from None
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SigningError(
                f"{path}: the signing key is readable or writable by others (mode {stat.filemode(mode)}); run: chmod 600 {path}"
            )
        key = path.read_text().strip()
    except OSError as e:
        raise SigningError(f"{path}: cannot read the signing key ({e.strerror})") from None
    if not key:
        raise SigningError(f"{path}: the signing key file is empty; delete it and a new key is made")
    return _long_enough(key.encode(), str(path))


def _long_enough(key: bytes, where: str) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise SigningError(
            f"{where}: the signing key is {len(key)} bytes, shorter than {MIN_KEY_BYTES}; use a random one, "
            f"e.g. the output of: python -c 'import secrets; print(secrets.token_hex(32))'"
        )
    return key


def _create_key(path: Path) -> None:
    """Writes a new key to a private temporary file and links it into place: the key file appears
    whole or not at all, and of two first runs at once one link wins and both read its key."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".signing_key-")  # mode 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)


def is_state_file(name: str) -> bool:
    """A top-level file of a results folder that Tune may unpickle on restore (it copies every
    `*.json` and `*.pkl` there to the driver before restoring)."""
    return name.endswith((".json", ".pkl")) and name not in (layout.SUMMARY_FILE, layout.RUN_FILE, layout.SIGNATURE_FILE)


def state_files(folder: str) -> list[str]:
    """The signed files of a results folder (or of Tune's driver staging folder), as paths relative
    to it: the top-level `is_state_file`s and `sweetspot.yaml`, and each trial's `layout.TRIAL_STATE_FILES`."""
    found = []
    for name, is_dir in storage.list_dir(folder):
        if not is_dir and (is_state_file(name) or name == layout.CONFIG_FILE):
            found.append(name)
        elif is_dir and name.startswith(layout.TRIAL_PREFIX):
            found += [
                f"{name}/{f}"
                for f, sub in storage.list_dir(storage.join(folder, name))
                if not sub and f in layout.TRIAL_STATE_FILES
            ]
    return sorted(found)


def _read(folder: str, relative: str) -> bytes | None:
    return storage.read_bytes(storage.join(folder, *relative.split("/")))


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _mac(key: bytes, files: dict[str, str], binding: dict[str, Any] | None) -> str:
    signed = files if binding is None else {"files": files, "binding": binding}
    return hmac.new(key, json.dumps(signed, sort_keys=True).encode(), hashlib.sha256).hexdigest()


def file_digest(folder: str, relative: str) -> str | None:
    data = _read(folder, relative)
    return None if data is None else digest(data)


def _seen_file(results: str) -> Path:
    """Where the highest signature count made for the results folder `results` is kept (beside the key)."""
    return key_file().parent / "signed" / digest(results.encode())[:32]


def _seen(results: str) -> int:
    try:
        return int(_seen_file(results).read_text())
    except (OSError, ValueError):
        return 0


def record_newest(folder: str) -> None:
    """Remembers the count of the signature now in `folder` (at the end of a run, and when a resume
    verified it): a signed state older than that is refused from then on. Tune uploads its state
    only now and then, so signatures made in its staging folder are not counted until they land."""
    try:
        counter = (json.loads(storage.read_text(storage.join(folder, layout.SIGNATURE_FILE)) or "{}").get("binding") or {})[
            "counter"
        ]
    except (ValueError, KeyError, TypeError, AttributeError, OSError):
        return
    if isinstance(counter, int):
        _record_seen(folder, counter)


def _record_seen(results: str, counter: int) -> None:
    path = _seen_file(results)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if counter > _seen(results):
            tmp = path.with_name(f".{path.name}-{os.getpid()}")
            tmp.write_text(str(counter))
            os.replace(tmp, path)
    except OSError:  # a read-only home: the folder binding and run id still hold, only rollback goes unseen
        pass


def sign(
    folder: str,
    *,
    key: bytes | None = None,
    extra: dict[str, str] | None = None,
    results: str | None = None,
    run_id: str | None = None,
    tmp_dir: str | None = None,
) -> dict[str, Any]:
    """Writes `<folder>/state-signature.json` over the folder's state files (plus `extra`: digests
    of state files kept elsewhere, by relative path) and returns it. `results` (the results folder the
    state belongs to, `folder` unless it is Tune's staging folder) and `run_id` bind the signature.
    `tmp_dir`: where the file is written before it is renamed into `folder` (`storage.write_bytes`)."""
    files = dict(extra or {})
    for relative in state_files(folder):
        data = _read(folder, relative)
        if data is not None:  # gone since it was listed: nothing to sign
            files[relative] = digest(data)
    binding = None
    if run_id is not None:
        results = results or folder
        binding = {"folder": results, "run_id": run_id, "counter": max(time.time_ns(), _seen(results) + 1)}
    document = {"format": FORMAT, "files": files, "binding": binding, "hmac": _mac(key or signing_key(), files, binding)}
    storage.write_text(
        storage.join(folder, layout.SIGNATURE_FILE), json.dumps(document, indent=1, sort_keys=True), tmp_dir=tmp_dir
    )
    return document


def verify(folder: str, *, key: bytes | None = None) -> None:
    """Returns when every state file of `folder` is signed with this user's key and unchanged;
    raises `SigningError` naming the first one that is not."""
    verified_copy(folder, key=key)


def verified_copy(folder: str, *, key: bytes | None = None, run_id: str | None = None) -> dict[str, bytes]:
    """The folder's signed files, each read once, as verified bytes by relative path: every state file
    signed with this user's key and unchanged; with `run_id`, the signature also bound to this folder,
    this run and no older than the newest this user signed for it. Raises `SigningError` naming the
    first file (or the signature) that is not."""
    present = state_files(folder)
    where = storage.join(folder, layout.SIGNATURE_FILE)
    text = storage.read_text(where)
    if text is None:
        if present:
            raise SigningError(f"{storage.join(folder, present[0])}: not signed (no {layout.SIGNATURE_FILE}); {TRUST_HINT}")
        return {}
    try:
        document = json.loads(text)
        files, mac, binding = document["files"], document["hmac"], document.get("binding")
        if not (isinstance(files, dict) and isinstance(mac, str) and (binding is None or isinstance(binding, dict))):
            raise TypeError
    except (ValueError, KeyError, TypeError, AttributeError):
        raise SigningError(f"{where}: unreadable signature file; {TRUST_HINT}") from None
    if not hmac.compare_digest(_mac(key or signing_key(), files, binding), mac):
        raise SigningError(f"{where}: not signed with this user's key ({KEY_ENV} or {key_file()}); {TRUST_HINT}")
    copy: dict[str, bytes] = {}
    for relative in present:
        data = _read(folder, relative)
        if relative not in files:
            raise SigningError(
                f"{storage.join(folder, relative)}: not signed (absent from {layout.SIGNATURE_FILE}); {TRUST_HINT}"
            )
        if data is None:
            continue
        if not hmac.compare_digest(digest(data), files[relative]):
            raise SigningError(
                f"{storage.join(folder, relative)}: changed since sweetspot signed it "
                f"(by someone else, or by a driver killed while saving); {TRUST_HINT}"
            )
        copy[relative] = data
    if run_id is not None:  # after the files: a changed file is named first, also in a copied folder
        _check_binding(folder, where, binding, run_id)
    return copy


def _check_binding(folder: str, where: str, binding: dict[str, Any] | None, run_id: str) -> None:
    if binding is None:
        raise SigningError(f"{where}: signed without naming its results folder (by an older sweetspot); {TRUST_HINT}")
    if binding.get("folder") != folder:
        raise SigningError(
            f"{folder}: this search's state was written in {binding.get('folder')}; the folder was copied or "
            f"moved, and resuming it would write into the old one (Tune's state and the study name it): "
            f"resume it where it was written, or start a new search"
        )
    if binding.get("run_id") != run_id:
        raise SigningError(
            f"{where}: signed for another run of this search (run id {binding.get('run_id')}, "
            f"{layout.CONFIG_FILE} says {run_id}); {TRUST_HINT}"
        )
    counter = binding.get("counter")
    if not isinstance(counter, int) or counter < _seen(folder):
        raise SigningError(
            f"{where}: an older signed state of this folder than the newest this user signed "
            f"(put back from a copy?); {TRUST_HINT}"
        )
