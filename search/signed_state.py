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
"""

from __future__ import annotations

from pathlib import Path

from ray import tune

from sweetspot import layout, signing

TUNER_FILE = "tuner.pkl"


class SignStateCallback(tune.Callback):
    """Signs the driver's staging folder each time Tune saves the experiment state into it."""

    def __init__(self):
        self._staging: str | None = None
        self._tuner_digest: str | None = None

    def __getstate__(self):  # pickled into tuner.pkl: no run-time state (and never the key)
        return {"_staging": None, "_tuner_digest": None}

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
        if not Path(self._staging, TUNER_FILE).is_file():  # a new run: the Tuner wrote it straight to the results folder
            try:
                with fs.open_input_stream(f"{results}/{TUNER_FILE}") as f:
                    self._tuner_digest = signing.digest(f.read())
            except OSError:  # none to sign: a resume would find no experiment
                self._tuner_digest = None
        if signing.state_files(self._staging):
            self._sign()
            with fs.open_output_stream(f"{results}/{layout.SIGNATURE_FILE}") as f:
                f.write(Path(self._staging, layout.SIGNATURE_FILE).read_bytes())

    def _sign(self) -> None:
        staged = signing.state_files(self._staging)
        extra = {TUNER_FILE: self._tuner_digest} if self._tuner_digest and TUNER_FILE not in staged else None
        signing.sign(self._staging, extra=extra)
