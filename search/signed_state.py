"""Signs Tune's state each time Tune saves it (`sweetspot.signing` says why and what).

Tune saves the experiment state into the driver's local staging folder (the experiment state, the
searcher's state, then each callback's `get_state()`), and only then uploads that folder to the
results folder. `get_state` is therefore the hook "the state was just saved": this callback signs
the staging folder there, and `state-signature.json` travels to the results folder in the same
upload as the files it signs: at the end of a run, on Ctrl-C (Tune saves once more), and every
periodic save in between, so a driver killed with SIGKILL leaves its last upload signed. Only what
this driver wrote is signed; a file changed in the results folder afterwards does not verify.
`tuner.pkl`, which the Tuner writes straight to the results folder before the run, is hashed when
the first trial is added (a resumed run finds it among the staged files).

Each signature is bound to the results folder and the run (`signing.sign`'s `results`, `run_id`), and
covers `sweetspot.yaml` by the digest of the bytes the runner wrote. A resume restores from the private
copy `signing.verified_copy` checked: `verified_filesystem` serves those bytes to Tune for every signed
file (Tune reads them through the storage filesystem it is given), and passes everything else through.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow
import pyarrow.fs
from ray import tune

from sweetspot import layout, signing, storage

TUNER_FILE = "tuner.pkl"


class SignStateCallback(tune.Callback):
    """Signs the driver's staging folder each time Tune saves the experiment state into it."""

    def __init__(self, results: str, run_id: str, config_digest: str):
        self.results, self.run_id, self.config_digest = results, run_id, config_digest
        self._staging: str | None = None
        self.tuner_digest: str | None = None  # of the tuner.pkl bytes the runner wrote (`write_tuner_state`)

    def __getstate__(self):  # pickled into tuner.pkl: what binds the signature, no run-time state (and never the key)
        return {
            "results": self.results,
            "run_id": self.run_id,
            "config_digest": self.config_digest,
            "_staging": None,
            "tuner_digest": None,
        }

    def on_trial_add(self, iteration, trials, trial, **info):
        self._find_staging(trials)

    def on_step_begin(self, iteration, trials, **info):
        self._find_staging(trials)

    def get_state(self):
        if self._staging is not None:
            self._sign()
        return None  # nothing of ours to restore: Tune writes no callback-states file for it

    def _find_staging(self, trials) -> None:
        """The staging folder is known only through a trial's storage context. Tune's first save
        can precede the first trial, and the next one come minutes later: so the first save is
        signed here, and the signature written to the results folder as well as staged."""
        if self._staging is not None:
            return
        context = next((t.storage for t in trials if getattr(t, "storage", None) is not None), None)
        if context is None:
            return
        self._staging = context.experiment_driver_staging_path
        fs, results = context.storage_filesystem, context.experiment_fs_path
        if signing.state_files(self._staging):
            self._sign()
            with fs.open_output_stream(f"{results}/{layout.SIGNATURE_FILE}") as f:
                f.write(Path(self._staging, layout.SIGNATURE_FILE).read_bytes())

    def _sign(self) -> None:
        staged = signing.state_files(self._staging)
        extra = {layout.CONFIG_FILE: self.config_digest}
        if self.tuner_digest and TUNER_FILE not in staged:  # a new run: the runner wrote it straight to the results folder
            extra[TUNER_FILE] = self.tuner_digest
        # Tune's syncer copies the staging folder file by file: the signature's temporary file goes beside it.
        tmp_dir = str(Path(self._staging).parent)
        signing.sign(self._staging, extra=extra, results=self.results, run_id=self.run_id, tmp_dir=tmp_dir)


def write_tuner_state(tuner, folder: str) -> str:
    """Writes `tuner.pkl` again from the Tuner's state and returns the digest of those bytes: what is
    signed is what was written, not what the folder holds when the first trial starts."""
    from ray import cloudpickle

    data = cloudpickle.dumps(tuner._local_tuner.__getstate__())
    storage.write_bytes(storage.join(folder, TUNER_FILE), data)
    return signing.digest(data)


def signer(callbacks) -> SignStateCallback | None:
    return next((c for c in callbacks or () if isinstance(c, SignStateCallback)), None)


class _VerifiedView(pyarrow.fs.FileSystemHandler):
    """A filesystem over `base` that serves the verified bytes for the signed files of the results
    folder (by full path) until this process writes, moves or deletes one; everything else passes
    through. Pickled (into a trial's storage context) as the plain pass-through."""

    def __init__(self, base: pyarrow.fs.FileSystem, verified: dict[str, bytes] | None = None):
        self.base, self.verified = base, dict(verified or {})

    def __reduce__(self):
        return _VerifiedView, (self.base,)

    def __eq__(self, other):
        return isinstance(other, _VerifiedView) and self.base.equals(other.base)

    def _forget(self, *paths: str) -> None:
        for path in paths:
            self.verified.pop(path.rstrip("/"), None)
            prefix = path.rstrip("/") + "/"
            for p in [p for p in self.verified if p.startswith(prefix)]:
                self.verified.pop(p)

    def get_type_name(self):
        return "sweetspot-verified"

    def normalize_path(self, path):
        return self.base.normalize_path(path)

    def get_file_info(self, paths):
        return self.base.get_file_info(paths)

    def get_file_info_selector(self, selector):
        return self.base.get_file_info(selector)

    def create_dir(self, path, recursive):
        self.base.create_dir(path, recursive=recursive)

    def delete_dir(self, path):
        self._forget(path)
        self.base.delete_dir(path)

    def delete_dir_contents(self, path, missing_dir_ok=False):
        self._forget(path)
        self.base.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self):
        self.verified.clear()
        self.base.delete_dir_contents("/", accept_root_dir=True)

    def delete_file(self, path):
        self._forget(path)
        self.base.delete_file(path)

    def move(self, src, dest):
        self._forget(src, dest)
        self.base.move(src, dest)

    def copy_file(self, src, dest):
        self._forget(dest)
        if src.rstrip("/") in self.verified:
            with self.base.open_output_stream(dest) as f:
                f.write(self.verified[src.rstrip("/")])
        else:
            self.base.copy_file(src, dest)

    def open_input_stream(self, path):
        data = self.verified.get(path.rstrip("/"))
        return pyarrow.BufferReader(data) if data is not None else self.base.open_input_stream(path)

    def open_input_file(self, path):
        data = self.verified.get(path.rstrip("/"))
        return pyarrow.BufferReader(data) if data is not None else self.base.open_input_file(path)

    def open_output_stream(self, path, metadata):
        self._forget(path)
        return self.base.open_output_stream(path, metadata=metadata)

    def open_append_stream(self, path, metadata):
        self._forget(path)
        return self.base.open_append_stream(path, metadata=metadata)


def verified_filesystem(folder: str, verified: dict[str, bytes]) -> tuple[pyarrow.fs.FileSystem, str]:
    """The filesystem (and the folder's path in it) that `Tuner.restore` reads the results folder
    through: `verified` (relative path -> bytes, from `signing.verified_copy`) for the signed files."""
    if storage.is_uri(folder):
        base, path = pyarrow.fs.FileSystem.from_uri(folder)
    else:
        base, path = pyarrow.fs.LocalFileSystem(), str(Path(folder).resolve())
    path = path.rstrip("/")
    return pyarrow.fs.PyFileSystem(_VerifiedView(base, {f"{path}/{rel}": data for rel, data in verified.items()})), path
