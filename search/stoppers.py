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

from collections import defaultdict
from typing import Any

from ray import tune

from sweetspot.trainable import keys
from sweetspot.trainable.collapse import collapsed_epochs


class CollapseStopper(tune.Stopper):
    """Ends a trial once `collapsed` has held at every evaluation through `patience` consecutive
    epoch ends (`collapsed_epochs`).

    A patience above 1 matters: a healthy run often predicts only the majority label after its
    first epoch and recovers in the second (measured on go_emotions with MiniLM at lr 1e-4).
    """

    def __init__(self, patience: int):
        self.patience = patience
        self._run: dict[str, list[dict[str, Any]]] = defaultdict(list)  # a trial's newest collapsed run

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        row = {k: result.get(k) for k in (keys.EPOCH, keys.COLLAPSED)}
        self._run[trial_id] = self._run[trial_id] + [row] if row[keys.COLLAPSED] else []
        return collapsed_epochs(self._run[trial_id]) >= self.patience

    def stop_all(self) -> bool:
        return False


class DivergedStopper(tune.Stopper):
    """Ends a trial that reported `diverged` (the trainable also ends itself; this makes the
    stop explicit to Tune and holds for any trainable that reports the key)."""

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return bool(result.get(keys.DIVERGED))

    def stop_all(self) -> bool:
        return False
