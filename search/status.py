"""`sweetspot status`: the run records of a search, while it runs or after (no Ray needed)."""

from __future__ import annotations

from typing import Any

from sweetspot import layout, storage
from sweetspot.search.config import ConfigError
from sweetspot.trainable import keys


def read_status(folder: str) -> dict[str, Any]:
    """The summary the search keeps in `<folder>/summary.json` (see search/records.py)."""
    summary_file = storage.join(folder, layout.SUMMARY_FILE)
    if not storage.exists(summary_file):
        raise ConfigError(f"{folder}: no {layout.SUMMARY_FILE} (not a sweetspot results folder, or the search has not started)")
    try:
        return layout.read_summary(storage.read_text(summary_file), where=summary_file)
    except layout.LayoutError as e:
        raise ConfigError(str(e)) from None


def _fmt(x: Any, spec: str) -> str:
    return format(x, spec) if isinstance(x, (int, float)) and not isinstance(x, bool) else "-"


def format_status(summary: dict[str, Any]) -> str:
    metric = summary["metric"]
    counts: dict[str, int] = {}
    lines = [f"{'trial_id':<12} {'status':<14} {'optimizer':<9} {'lr':>9} {'wd':>8} {'seed':>4} {'epochs':>6} "
             f"{'last ' + metric:>12} {'best ' + metric:>12}  error"]
    for t in summary["trials"]:
        counts[t["status"]] = counts.get(t["status"], 0) + 1
        c = t["config"]
        seed = c.get("seed", c.get("__trial_index__"))
        lines.append(f"{t['trial_id']:<12} {t['status']:<14} {str(c.get('optimizer', '-')):<9} {_fmt(c.get('lr'), '9.2e')} "
                     f"{_fmt(c.get('weight_decay'), '8.2g')} {_fmt(seed, '4d')} {t['epochs']:>6} "
                     f"{_fmt(t['last'].get(metric), '12.4f')} {_fmt(t['best'].get(metric), '12.4f')}  {t.get('error') or ''}")
    lines.append("")
    lines.append(", ".join(f"{n} {status}" for status, n in sorted(counts.items())) + f"  (updated {summary['updated']})")
    return "\n".join(lines)
