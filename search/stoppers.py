"""Tune stoppers that end trials the study would call failed: collapsed or diverged.

Like the scheduler, the collapse stopper counts epochs, not reports, so that `train.eval_every_steps`
changes how often it looks, not how long it waits.

Example:
    >>> stop = CollapseStopper(patience=2)
    >>> [stop("t1", {"epoch": e, "collapsed": c}) for e, c in ((1, 1), (2, 0), (3, 1), (4, 1))]
    [False, False, False, True]
    >>> [stop("t2", {"epoch": e, "collapsed": 1}) for e in (0.5, 1, 1.5, 2)]  # reports every half epoch
    [False, False, False, True]
"""

from __future__ import annotations

from typing import Any

from ray import tune

from sweetspot.trainable import keys
from sweetspot.trainable.collapse import SIGNALS, early_verdict


class CollapseStopper(tune.Stopper):
    """Ends a trial once `collapsed` has held at every evaluation through `patience` consecutive
    epoch ends (`collapsed_epochs`).

    A patience above 1 matters: a healthy run often predicts only the majority label after its
    first epoch and recovers in the second (measured on go_emotions with MiniLM at lr 1e-4).
    """

    def __init__(self, patience: int):
        self.patience = patience
        self._ends: dict[str, set[float]] = {}  # a trial in a collapsed run: the epoch ends that run covers

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if not result.get(keys.COLLAPSED):
            self._ends.pop(trial_id, None)  # the run is broken: nothing to keep
            return False
        run = self._ends.setdefault(trial_id, set())
        run.update(float(e) for e in [result.get(keys.EPOCH)] if isinstance(e, (int, float)) and float(e).is_integer())
        if len(run) >= self.patience:
            del self._ends[trial_id]  # the trial ends here
            return True
        return False

    def stop_all(self) -> bool:
        return False


class EarlyCollapseStopper(tune.Stopper):
    """Ends a trial that `trainable.collapse.early_verdict` calls doomed, from the reports of the first
    half of its budget (bench/early_stop.py measures it on the ground-truth tables). It keeps a trial's
    reports, the rule's inputs only, while the rule may still stop it.

    Example:
        >>> on_prior = {"val_pred_entropy": 0.0, "val_true_entropy": 0.8, "val_p1": 0.39, "majority_p1": 0.39,
        ...             "val_embed_rank": 1.0, "train_loss_recent": 0.151, "prior_bce": 0.150}
        >>> stop = EarlyCollapseStopper(budget_epochs=3, entropy_fraction=0.2, p1_margin=0.01)
        >>> [stop("t1", {**on_prior, "epoch": e}) for e in (1 / 3, 2 / 3, 1)]  # a trend: three reports
        [False, False, True]
    """

    def __init__(self, *, budget_epochs: float, entropy_fraction: float, p1_margin: float):
        self.budget_epochs, self.entropy_fraction, self.p1_margin = budget_epochs, entropy_fraction, p1_margin
        self._rows: dict[str, list[dict[str, Any]]] = {}  # an undecided trial's reports, the rule's inputs only
        self._decided: set[str] = set()  # trials the rule can no longer stop (left the floor, or past its window)

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if trial_id in self._decided:
            return False
        rows = self._rows.setdefault(trial_id, [])
        rows.append({k: result[k] for k in SIGNALS if k in result})
        verdict = early_verdict(
            rows, budget_epochs=self.budget_epochs, entropy_fraction=self.entropy_fraction, p1_margin=self.p1_margin
        )
        if verdict.doomed is not None or (verdict.epoch or 0.0) > verdict.window_end:
            del self._rows[trial_id]  # stopped, or decided for good: the rule never reads this trial again
            if verdict.doomed is not True:
                self._decided.add(trial_id)
        return verdict.doomed is True

    def stop_all(self) -> bool:
        return False


class DivergedStopper(tune.Stopper):
    """Ends a trial that reported `diverged` (the trainable also ends itself; this makes the
    stop explicit to Tune and holds for any trainable that reports the key)."""

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return bool(result.get(keys.DIVERGED))

    def stop_all(self) -> bool:
        return False
