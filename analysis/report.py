"""Text and JSON views of a results folder."""

from __future__ import annotations

from typing import Any

from analysis.results import Results
from trainable import keys


def _fmt(x: Any, spec: str) -> str:
    return format(x, spec) if isinstance(x, (int, float)) else "-"


def format_table(results: Results) -> str:
    """A table of trials sorted by their best metric, with the majority-label floor under it."""
    metric = results.metric
    header = f"{'trial_id':<12} {'status':<14} {'optimizer':<9} {'lr':>9} {'wd':>8} {'epochs':>6} {'best ' + metric:>12}"
    lines = [header, "-" * len(header)]
    for t in results.ranked():
        c = t.config
        best = t.best(metric, results.mode).get(metric)
        lines.append(
            f"{t.trial_id:<12} {t.status:<14} {str(c.get('optimizer', '-')):<9} {_fmt(c.get('lr'), '9.2e')} "
            f"{_fmt(c.get('weight_decay'), '8.2g')} {t.epochs:>6} {_fmt(best, '12.4f')}"
        )
    floor = results.majority_p1
    lines.append("")
    lines.append(f"{len(results.trials)} trials in {results.folder}")
    if floor is not None:
        lines.append(f"majority-label floor ({keys.MAJORITY_P1}, validation P@1 of always predicting the most frequent train label): {floor:.4f}")
    return "\n".join(lines)


def to_json(results: Results) -> dict[str, Any]:
    """The machine-readable summary printed by `sweetspot analyze --json`."""
    return {
        "folder": str(results.folder),
        "metric": results.metric,
        "mode": results.mode,
        keys.MAJORITY_P1: results.majority_p1,
        "trials": [
            {
                "trial_id": t.trial_id,
                "status": t.status,
                "config": t.config,
                "epochs": t.epochs,
                "best": t.best(results.metric, results.mode),
                "history": t.history,
                "error": t.error,
            }
            for t in results.ranked()
        ],
    }
