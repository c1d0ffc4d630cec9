"""Tune stoppers that end trials the study would call failed: collapsed or diverged.

Example:
    >>> stop = CollapseStopper(patience=2)
    >>> [stop("t1", {"collapsed": c}) for c in (1, 0, 1, 1)]
    [False, False, False, True]
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ray import tune

from sweetspot.trainable import keys


class CollapseStopper(tune.Stopper):
    """Ends a trial once `collapsed` has held for `patience` consecutive evaluations.

    A patience above 1 matters: a healthy run often predicts only the majority label after its
    first epoch and recovers in the second (measured on go_emotions with MiniLM at lr 1e-4).
    """

    def __init__(self, patience: int):
        self.patience = patience
        self._streak: dict[str, int] = defaultdict(int)

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        self._streak[trial_id] = self._streak[trial_id] + 1 if result.get(keys.COLLAPSED) else 0
        return self._streak[trial_id] >= self.patience

    def stop_all(self) -> bool:
        return False


class DivergedStopper(tune.Stopper):
    """Ends a trial that reported `diverged` (the trainable also ends itself; this makes the
    stop explicit to Tune and holds for any trainable that reports the key)."""

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return bool(result.get(keys.DIVERGED))

    def stop_all(self) -> bool:
        return False
