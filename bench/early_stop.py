"""The early collapse stop (`trainable.collapse.early_verdict`) replayed on the ground-truth tables.

    python bench/early_stop.py [--out docs/benchmarks-early-stop.json]

Each trial of bench/tables/{go_emotions,reuters_all}.json is fed to the rule one report at a time,
as a stopper would see it; the first doomed verdict stops it there. The truth is the analysis's
`trains` rule at the budget (`find_sweet_spots(rule="trains")`): a run is *healthy* when its best
val_p1 over epochs <= the budget reaches (1 + delta) x (majority_p1 + collapse_p1_margin). Reported
per table: the confusion matrix (stopped or kept x healthy or not; a stopped healthy run is an error
whatever the rule saves), the trial-epochs saved (a stopped trial costs the epochs up to its
decision instead of the budget), the share of non-healthy runs stopped within epoch 1; then the
margins (the threshold at which the rule would first stop a healthy run, against the one chosen)
and nearby settings of the rule. Results: docs/benchmarks-early-stop.json and a Markdown table on
stdout. Needs no Ray and no torch; seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from sweetspot.analysis.results import Results, results_from_table
from sweetspot.analysis.sweetspot import SCORED, SweetSpots, find_sweet_spots
from sweetspot.trainable import collapse

REPO = Path(__file__).resolve().parents[1]
TABLES = {name: REPO / "bench" / "tables" / f"{name}.json" for name in ("go_emotions", "reuters_all")}  # the constants' tables
HELD_OUT = {name: REPO / "bench" / "tables" / f"{name}.json" for name in ("reuters_r90",)}  # measured, never tuned on
RULE = {
    "rank_max": collapse.RANK_MAX,
    "plateau_tol": collapse.PLATEAU_TOL,
    "slow_factor": collapse.SLOW_FACTOR,
    "hold_fraction": collapse.HOLD_FRACTION,
    "window_fraction": collapse.WINDOW_FRACTION,
}
# Nearby settings: what each condition buys. The first is the suggested rule (loss on the
# plateau, entropy 0, P@1 at the floor) without the embedding-rank condition.
VARIANTS = {
    "no embedding-rank condition": {"rank_max": math.inf},
    "plateau_tol 0.1": {"plateau_tol": 0.1},
    "plateau_tol 0.5": {"plateau_tol": 0.5},
    "hold 2/9 of the budget": {"hold_fraction": 2 / 9},
    "window 1/3 of the budget": {"window_fraction": 1 / 3},
    "window 2/3 of the budget": {"window_fraction": 2 / 3},
    "two reports make a trend": {"min_reports": 2},
}
# The thresholds that separate healthy from doomed runs, and which way makes the rule stop more.
MARGINS = {"rank_max": "up", "slow_factor": "down", "window_fraction": "up"}
RULE["min_reports"] = collapse.MIN_REPORTS


@dataclass(frozen=True)
class Table:
    name: str
    results: Results
    spots: SweetSpots

    @property
    def budget(self) -> float:
        return float(self.spots.comparison.epoch)


@dataclass(frozen=True)
class Replay:
    """One trial fed to the rule."""

    trial: str  # optimizer lr seed
    healthy: bool
    best_p1: float  # best val_p1 over epochs <= the budget
    stopped_at: float | None  # the epoch of the report the rule stopped it at
    cause: str | None
    reason: str | None


def load(name: str) -> Table:
    path = {**TABLES, **HELD_OUT}[name]
    results = results_from_table(json.loads(path.read_text()), source=str(path.relative_to(REPO)))
    return Table(name, results, find_sweet_spots(results, rule="trains"))


def replay(table: Table, **rule: float) -> list[Replay]:
    """Every trial of `table` under the early rule with `rule`'s constants (RULE's by default)."""
    train = table.results.train_config
    out = []
    for t in table.results.trials:
        score = table.spots.comparison.scores[t.trial_id]
        p = table.results.params(t)
        verdict = None
        for k in range(1, len(t.history) + 1):
            rows = [r for r in t.history[:k] if r.get("epoch", 0) <= table.budget + 1e-9]
            v = collapse.early_verdict(
                rows,
                budget_epochs=table.budget,
                entropy_fraction=train.collapse_entropy_fraction,
                p1_margin=train.collapse_p1_margin,
                **{**RULE, **rule},
            )
            if v.doomed is not None:
                verdict = v
                break
        stopped = verdict is not None and verdict.doomed
        out.append(
            Replay(
                trial=f"{p['optimizer']} {p['lr']:.2g} seed {p['seed']}",
                healthy=score.outcome == SCORED and table.spots.qualifies(score.value),
                best_p1=score.value,
                stopped_at=verdict.epoch if stopped else None,
                cause=verdict.cause if stopped else None,
                reason=verdict.reason if stopped else None,
            )
        )
    return out


def summary(table: Table, replays: list[Replay]) -> dict:
    """The confusion matrix, trial-epochs and the share of non-healthy runs stopped within epoch 1."""
    stopped = [r for r in replays if r.stopped_at is not None]
    unhealthy = [r for r in replays if not r.healthy]
    grid = table.budget * len(replays)  # every trial of the table ran to the budget
    saved = sum(table.budget - r.stopped_at for r in stopped)
    within_1 = [r for r in stopped if r.stopped_at <= 1 + 1e-3]
    return {
        "trials": len(replays),
        "healthy": len(replays) - len(unhealthy),
        "budget_epochs": table.budget,
        "threshold_p1": table.spots.threshold,
        "floor_p1": table.spots.floor,
        "confusion": {
            "stopped_healthy": sum(r.healthy for r in stopped),
            "stopped_unhealthy": sum(not r.healthy for r in stopped),
            "kept_healthy": sum(r.healthy and r.stopped_at is None for r in replays),
            "kept_unhealthy": sum(not r.healthy and r.stopped_at is None for r in replays),
        },
        "unhealthy_stopped_within_epoch_1": len([r for r in within_1 if not r.healthy]),
        "unhealthy_stopped_within_epoch_1_share": len([r for r in within_1 if not r.healthy]) / len(unhealthy)
        if unhealthy
        else None,
        "by_cause": {c: sum(r.cause == c for r in stopped) for c in (collapse.ON_PRIOR, collapse.TOO_SLOW)},
        "trial_epochs": {"grid": grid, "with_stop": grid - saved, "saved": saved, "saved_share": saved / grid},
    }


def first_healthy_stop(tables: list[Table], **rule: float) -> tuple[str, Replay] | None:
    for table in tables:
        for r in replay(table, **rule):
            if r.healthy and r.stopped_at is not None:
                return table.name, r
    return None


def margin(tables: list[Table], field: str, direction: str, *, steps: int = 40) -> dict:
    """The value of `field` at which the rule first stops a healthy run (bisection in log space,
    the other constants as chosen), and that run; None when no value up to x1000 / down to /1000 does."""
    chosen = RULE[field]
    far = chosen * 1000 if direction == "up" else chosen / 1000
    if first_healthy_stop(tables, **{field: far}) is None:
        return {"chosen": chosen, "first_healthy_stop_at": None, "ratio": None, "trial": None}
    safe, bad = math.log(chosen), math.log(far)
    for _ in range(steps):
        mid = (safe + bad) / 2
        safe, bad = (safe, mid) if first_healthy_stop(tables, **{field: math.exp(mid)}) else (mid, bad)
    name, run = first_healthy_stop(tables, **{field: math.exp(bad)})
    return {
        "chosen": chosen,
        "first_healthy_stop_at": math.exp(bad),
        "ratio": math.exp(bad) / chosen,
        "trial": f"{name}: {run.trial} (best P@1 {run.best_p1:.3f})",
        "reason": run.reason,
    }


DEFAULT_OUT = REPO / "docs" / "benchmarks-early-stop.json"


def markdown(result: dict) -> str:
    """The tables of docs/benchmarks.md's section: the confusion and savings per table, the margins,
    nearby settings."""
    lines = [
        "| table | trials | healthy | stopped: healthy | stopped: not healthy | kept: not healthy | "
        "not healthy stopped within epoch 1 | trial-epochs saved |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in result["tables"].items():
        c, e = s["confusion"], s["trial_epochs"]
        lines.append(
            f"| {name} | {s['trials']} | {s['healthy']} | **{c['stopped_healthy']}** | {c['stopped_unhealthy']} | "
            f"{c['kept_unhealthy']} | {s['unhealthy_stopped_within_epoch_1']}/{s['trials'] - s['healthy']} "
            f"({s['unhealthy_stopped_within_epoch_1_share']:.0%}) | {e['saved']:.1f} of {e['grid']:.0f} ({e['saved_share']:.0%}) |"
        )
    held = result.get("held_out", [])
    lines += [
        "",
        f"Held out (no constant chosen on it): {', '.join(held)}."
        if held
        else "Held out: reuters_r90 is not in bench/tables yet; it is measured once it is.",
        "",
        "How close a healthy run came to being stopped: the value at which each threshold would first stop one,",
        "the others as chosen (bisection over the two tuning tables):",
        "",
        "| constant | chosen | first stops a healthy run at | × chosen | that run |",
        "|---|---|---|---|---|",
    ]
    for field, m in result["margins"].items():
        at = "never" if m["first_healthy_stop_at"] is None else f"{m['first_healthy_stop_at']:.3g}"
        ratio = "" if m["ratio"] is None else f"{m['ratio']:.2f}"
        lines.append(f"| {field} | {m['chosen']:.3g} | {at} | {ratio} | {m['trial'] or ''} |")
    names = [n for n in result["tables"] if n not in held]
    lines += [
        "",
        "Nearby settings (healthy runs stopped, share of trial-epochs saved):",
        "",
        "| setting | " + " | ".join(f"{n}: healthy stopped, saved" for n in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for variant, per in {"as chosen": {n: result["tables"][n] for n in names}, **result["variants"]}.items():
        cells = [f"{per[n]['confusion']['stopped_healthy']}, {per[n]['trial_epochs']['saved_share']:.0%}" for n in names]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    tables = [load(name) for name in TABLES]  # the margins and nearby settings: on these only
    measured = tables + [load(name) for name, path in HELD_OUT.items() if path.is_file()]  # held out first in the table
    measured = measured[len(tables) :] + tables
    replays = {t.name: replay(t) for t in measured}

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    # the code that produced the figures; "-dirty" when tracked files differ from it
    commit = (git("rev-parse", "HEAD") + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")) or None
    result = {
        "command": "python bench/early_stop.py",
        "commit": commit,
        "rule": RULE,
        "healthy": "best val_p1 over epochs <= the budget >= (1 + delta) x (majority_p1 + collapse_p1_margin): "
        "find_sweet_spots(rule='trains')",
        "held_out": [name for name in HELD_OUT if name in replays],
        "tables": {
            t.name: {
                **summary(t, replays[t.name]),
                "table": str({**TABLES, **HELD_OUT}[t.name].relative_to(REPO)),
                "stopped": [asdict(r) for r in replays[t.name] if r.stopped_at is not None],
            }
            for t in measured
        },
        "margins": {field: margin(tables, field, direction) for field, direction in MARGINS.items()},
        "variants": {name: {t.name: summary(t, replay(t, **change)) for t in tables} for name, change in VARIANTS.items()},
    }
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(markdown(result))
    if Path(args.out) == DEFAULT_OUT:  # the committed figures: their tables in docs/benchmarks.md too
        from docsection import write_section  # bench/docsection.py

        write_section("early_stop", markdown(json.loads(Path(args.out).read_text())))


if __name__ == "__main__":
    main()
