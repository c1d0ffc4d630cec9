"""`sweetspot status`: the run records of a search, while it runs or after (no Ray needed)."""

from __future__ import annotations

from typing import Any

from sweetspot import layout, storage
from sweetspot.search.config import ConfigError


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
    lines = [
        f"{'trial_id':<12} {'status':<14} {'optimizer':<9} {'lr':>9} {'wd':>8} {'seed':>4} {'epochs':>6} "
        f"{'last ' + metric:>12} {'best ' + metric:>12}  error"
    ]
    for t in summary["trials"]:
        counts[t["status"]] = counts.get(t["status"], 0) + 1
        c = t["config"]
        seed = c.get("seed", c.get("__trial_index__"))
        lines.append(
            f"{t['trial_id']:<12} {t['status']:<14} {str(c.get('optimizer', '-')):<9} {_fmt(c.get('lr'), '9.2e')} "
            f"{_fmt(c.get('weight_decay'), '8.2g')} {_fmt(seed, '4d')} {t['epochs']:>6} "
            f"{_fmt(t['last'].get(metric), '12.4f')} {_fmt(t['best'].get(metric), '12.4f')}  {t.get('error') or ''}"
        )
    lines.append("")
    lines.append(", ".join(f"{n} {status}" for status, n in sorted(counts.items())) + f"  (updated {summary['updated']})")
    return "\n".join(lines)


def list_runs(storage_path: str) -> list[dict[str, Any]]:
    """The searches under `storage_path` (folders with a `summary.json` or `sweetspot.yaml`), by name:
    their state from run.json (`running` / `finished` / `interrupted` / `failed`; `-` when unknown),
    trial counts by status and when the records were last written."""
    import json

    if not storage.is_dir(storage_path):
        raise ConfigError(f"{storage_path}: no such folder (pass a results folder, or --storage-path)")
    runs = []
    for name, is_dir in sorted(storage.list_dir(storage_path)):
        folder = storage.join(storage_path, name)
        if not is_dir or not (
            storage.exists(storage.join(folder, layout.SUMMARY_FILE)) or storage.exists(storage.join(folder, layout.CONFIG_FILE))
        ):
            continue
        try:
            run = json.loads(storage.read_text(storage.join(folder, layout.RUN_FILE)) or "{}")
        except ValueError:
            run = {}
        try:
            summary = read_status(folder)
        except ConfigError:
            summary = {"trials": [], "updated": None}
        counts: dict[str, int] = {}
        for t in summary["trials"]:
            counts[t["status"]] = counts.get(t["status"], 0) + 1
        runs.append(
            {
                "name": name,
                "folder": folder,
                "state": run.get("state") or "-",
                "trials": len(summary["trials"]),
                "statuses": counts,
                "updated": summary.get("updated"),
            }
        )
    return runs


def format_runs(runs: list[dict[str, Any]], storage_path: str) -> str:
    if not runs:
        return f"no searches under {storage_path}"
    width = max(len(r["name"]) for r in runs)
    lines = [f"{'name':<{width}}  {'state':<11} {'trials':>6}  statuses  (under {storage_path})"]
    for r in runs:
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(r["statuses"].items())) or "-"
        lines.append(f"{r['name']:<{width}}  {r['state']:<11} {r['trials']:>6}  {statuses}")
    return "\n".join(lines)
