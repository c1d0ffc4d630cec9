"""Which score definition flips a verdict between the two seeds of a configuration least often, on
the committed ground-truth tables: the measurement behind trainable/score.py's choice.

    python bench/score_flips.py [--tables bench/tables] [--docs docs/analysis.md]

For each configuration (optimizer, lr, weight decay) with two seeds, each candidate reads each seed at
the budget and says whether it trains (trainable/score.py's `qualifies`: >= (1 + δ)·F and > F, F the
majority-label floor + `train.collapse_p1_margin`); a *flip* is a configuration whose two seeds
disagree. Evaluations with constant predictions (`collapse.constant_predictions`) never count as
training under any candidate. The candidates:

- best over all evaluations <= the budget (mid-epoch ones included: what the analysis read before);
- best over epoch ends <= the budget (trainable/score.py's score);
- the last epoch end;
- the mean of the last two epoch ends (a constant-prediction one among them: it does not train).

Writes the table between its markers in docs/analysis.md (bench/docsection.py). No Ray; seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.docsection import write_section
from sweetspot.trainable import keys
from sweetspot.trainable import score as score_rule
from sweetspot.trainable.config import TrainConfig

REPO = Path(__file__).resolve().parents[1]
TABLES = REPO / "bench" / "tables"
DOCS = REPO / "docs" / "analysis.md"
SECTION = "score-flips"


def _value(rows: list[dict[str, Any]], fraction: float) -> list[float]:
    """Each row's val_p1, or NaN where it cannot count (constant predictions, diverged, missing)."""
    return [r[keys.VAL_P1] if score_rule.counts(r, entropy_fraction=fraction) else math.nan for r in rows]


def _best(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return max(finite) if finite else math.nan


def _mean_last2(values: list[float]) -> float:
    last = values[-2:]
    return statistics.fmean(last) if last and all(math.isfinite(v) for v in last) else math.nan


def candidates(budget: float, fraction: float) -> dict[str, Callable[[list[dict[str, Any]]], float]]:
    def within(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in rows if isinstance(r.get(keys.EPOCH), (int, float)) and r[keys.EPOCH] <= budget + score_rule.EPOCH_TOL]

    def ends(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return within(score_rule.epoch_end_rows(rows))

    return {
        "best over all evaluations": lambda rows: _best(_value(within(rows), fraction)),
        "best over epoch ends (the score)": lambda rows: score_rule.score(rows, budget=budget, entropy_fraction=fraction).value,
        "last epoch end": lambda rows: (_value(ends(rows), fraction) or [math.nan])[-1],
        "mean of the last 2 epoch ends": lambda rows: _mean_last2(_value(ends(rows), fraction)),
    }


def flips(table: dict[str, Any], *, delta: float = score_rule.DEFAULT_DELTA) -> tuple[dict[str, int], int]:
    """Per candidate, the configurations whose first two seeds disagree; and how many configurations have two."""
    train = TrainConfig(
        **{
            k: v
            for k, v in (table["config"].get("train") or {}).items()
            if k in ("collapse_entropy_fraction", "collapse_p1_margin")
        }
    )
    budget = float((table["config"].get("train") or {}).get("epochs", 3))
    by: dict[tuple, list[list[dict[str, Any]]]] = {}
    for t in table["trials"]:
        c = t["config"]
        by.setdefault((c["optimizer"], round(math.log10(c["lr"]), 6), c.get("weight_decay", 0.0)), []).append(t["history"])
    pairs = [h[:2] for h in by.values() if len(h) >= 2]
    out = {}
    for name, read in candidates(budget, train.collapse_entropy_fraction).items():
        n = 0
        for pair in pairs:
            verdicts = []
            for rows in pair:
                floor = next((r[keys.MAJORITY_P1] for r in rows if isinstance(r.get(keys.MAJORITY_P1), (int, float))), None)
                ok = floor is not None and score_rule.qualifies(read(rows), floor=floor + train.collapse_p1_margin, delta=delta)
                verdicts.append(ok)
            n += verdicts[0] != verdicts[1]
        out[name] = n
    return out, len(pairs)


def render(tables: Path = TABLES) -> str:
    rows, names = [], None
    for path in sorted(tables.glob("*.json")):
        counts, pairs = flips(json.loads(path.read_text()))
        if not pairs:
            continue
        names = list(counts)
        rows.append(f"| `{path.name}` | {pairs} | " + " | ".join(str(counts[n]) for n in names) + " |")
    header = [
        "| table | configurations with 2 seeds | " + " | ".join(names or []) + " |",
        "|---|---|" + "---|" * len(names or []),
    ]
    return "\n".join(header + rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=Path, default=TABLES)
    parser.add_argument("--docs", type=Path, default=DOCS)
    args = parser.parse_args()
    body = render(args.tables)
    print(body)
    write_section(SECTION, body, docs=args.docs)


if __name__ == "__main__":
    main()
