"""Is the search still running? A partial report while it is, from files only (no Ray).

The driver writes `run.json` (`sweetspot.layout.RUN_FILE`, search/live.py): `running` with its pid,
host, start time and a heartbeat every `layout.HEARTBEAT_S` seconds, then `finished`,
`interrupted` or `failed`. A driver killed with SIGKILL leaves `running` behind, so `running` is
believed only while the driver is alive:

- on the driver's own host: while its pid exists (`os.kill(pid, 0)`);
- from another host (results on NFS or S3): while the heartbeat is younger than
  `layout.STALE_AFTER_S` (clocks are assumed to agree within that).

A folder without run.json (written before sweetspot recorded it) is `unknown`, and partial when
summary.json still lists trials as pending, running or paused.

A partial report says so: a banner (the state, the trials running / waiting / finished / stopped /
errored, the sweet spots so far marked *provisional*), and while the search runs an HTML
`<meta http-equiv="refresh">` so an open page reloads itself; the final report has neither.

Example:
    >>> state = RunState(state="interrupted", reason="the driver (pid 7 on host h) is gone")
    >>> p = PartialState(run=state, counts={"running": 0, "waiting": 1, "finished": 2, "stopped": 0, "errored": 0})
    >>> p.reload_s is None, format_partial(p).splitlines()[0]
    (True, 'PARTIAL REPORT: the search was interrupted: the driver (pid 7 on host h) is gone.')
"""

from __future__ import annotations

import datetime
import json
import os
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import jinja2

from sweetspot import layout, storage

DEFAULT_RELOAD_S = 60  # how often an open partial page reloads when the driver does not refresh it
MIN_RELOAD_S = 10

# Record statuses (layout.trial_record) grouped as the banner counts them.
GROUPS = {
    "running": ("running",),
    "waiting": ("pending", "paused"),
    "finished": ("terminated",),
    "stopped": ("early_stopped", "collapsed", "diverged"),
    "errored": ("errored",),
}


@dataclass(frozen=True)
class RunState:
    """What run.json says, checked against the driver: `state` is one of `layout.RUN_STATES` or
    `unknown` (no run.json), `reason` says why a `running` file was not believed, or how a run ended."""

    state: str
    reason: str | None = None
    pid: int | None = None
    host: str | None = None
    started: float | None = None
    heartbeat: float | None = None
    ended: float | None = None
    report_every: float | None = None


@dataclass(frozen=True)
class PartialState:
    """A search that has not finished: its run state and its trials counted by `GROUPS`."""

    run: RunState
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.run.state == "running"

    @property
    def reload_s(self) -> int | None:
        """Seconds between reloads of an open HTML page; None once the search no longer runs."""
        if not self.running:
            return None
        return max(MIN_RELOAD_S, round(self.run.report_every or DEFAULT_RELOAD_S))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def read_run_state(folder: str, *, now: float | None = None, host: str | None = None) -> RunState:
    """The search's state from `<folder>/run.json` (the module docstring says how `running` is
    checked). `now` and `host` default to this machine's clock and hostname."""
    text = storage.read_text(storage.join(str(folder), layout.RUN_FILE))
    if text is None:
        return RunState(state="unknown", reason=f"no {layout.RUN_FILE} (a search from before sweetspot recorded its state)")
    try:
        doc = json.loads(text)
        state = doc["state"]
    except (ValueError, KeyError, TypeError):
        return RunState(state="unknown", reason=f"{layout.RUN_FILE} unreadable")
    fields = {k: doc.get(k) for k in ("pid", "host", "started", "heartbeat", "ended", "report_every")}
    if state != "running":
        return RunState(state=state, reason=doc.get("error"), **fields)
    now = time.time() if now is None else now
    host = socket.gethostname() if host is None else host
    driver = f"pid {doc.get('pid')} on host {doc.get('host')}"
    if doc.get("host") == host and isinstance(doc.get("pid"), int):
        if not _alive(doc["pid"]):
            return RunState(
                state="interrupted", reason=f"the driver ({driver}) is gone without recording an end (killed?)", **fields
            )
        return RunState(state="running", **fields)
    age = now - float(doc.get("heartbeat") or 0.0)
    if age > layout.STALE_AFTER_S:
        return RunState(state="interrupted", reason=f"no heartbeat from the driver ({driver}) for {age / 60:.0f} min", **fields)
    return RunState(state="running", **fields)


def trial_counts(statuses: list[str]) -> dict[str, int]:
    """Trials per `GROUPS` entry (statuses outside them, e.g. `unknown`, are not counted)."""
    return {group: sum(s in members for s in statuses) for group, members in GROUPS.items()}


def partial_state(results) -> PartialState | None:
    """The partial state of a loaded results folder (`analysis.results.Results`), or None when its
    search finished (or, without run.json, no trial is left pending, running or paused)."""
    run = read_run_state(results.folder)
    counts = trial_counts([t.status for t in results.trials])
    if run.state == "finished":
        return None
    if run.state == "unknown" and not (counts["running"] or counts["waiting"]):
        return None
    return PartialState(run=run, counts=counts)


# ------------------------------------------------------------------------------------------------
# What a partial report shows: text lines (stdout, report.md), an HTML banner and reload tag.


def _when(t: float | None) -> str:
    return "-" if t is None else datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _headline(p: PartialState) -> str:
    r = p.run
    if r.state == "running":
        refresh = (
            f"the driver refreshes this report every {r.report_every:g} s"
            if r.report_every
            else "run `sweetspot analyze` again (or `sweetspot search --report-every 5m`) for a newer one"
        )
        return (
            f"PARTIAL REPORT: the search is running (driver pid {r.pid} on host {r.host}, started {_when(r.started)}); {refresh}."
        )
    if r.state == "unknown":
        return f"PARTIAL REPORT: trials are still listed as unfinished and the search's state is unknown: {r.reason}."
    return f"PARTIAL REPORT: the search was {r.state}" + (f": {r.reason}." if r.reason else ".")


def _spot_lines(spots) -> list[str]:
    """The sweet spots so far, each marked provisional."""
    if spots is None:
        return []
    lines = []
    for o in spots.optimizers:
        found = [f"lr {i.lower_lr:.2e} .. {i.upper_lr:.2e}" for i in o.intervals]
        lines.append(f"{o.optimizer}: {'; '.join(found) if found else spots.verdict_text(o)} (provisional)")
    if not lines and spots.note:
        lines.append(f"no sweet spot yet: {spots.note} (provisional)")
    return lines


def banner_lines(p: PartialState, spots=None) -> tuple[str, str, list[str], str]:
    """(headline, trial counts, provisional sweet spots, what to do next) as plain text."""
    c = p.counts
    counts = (
        f"Trials so far: {c['running']} running, {c['waiting']} waiting, {c['finished']} finished, "
        f"{c['stopped']} stopped early, {c['errored']} errored."
    )
    if p.running:
        after = "Every figure and table below is provisional: running trials are censored, and the sweet spots change as trials finish."
    else:
        after = "Every figure and table below is provisional. Continue the search with `sweetspot resume RESULTS_DIR`."
    return _headline(p), counts, _spot_lines(spots), after


def format_partial(p: PartialState, spots=None) -> str:
    """The banner as text lines (printed above `sweetspot analyze`'s output, and in report.md)."""
    headline, counts, spot_lines, after = banner_lines(p, spots)
    lines = [headline, counts]
    if spot_lines:
        lines += ["Sweet spots so far (provisional):"] + [f"  {line}" for line in spot_lines]
    return "\n".join(lines + [after])


def to_json(p: PartialState | None, spots=None) -> dict[str, Any] | None:
    """`sweetspot analyze --json`'s `partial` key: None for a final report."""
    if p is None:
        return None
    return {
        "state": p.run.state,
        "reason": p.run.reason,
        "pid": p.run.pid,
        "host": p.run.host,
        "started": p.run.started,
        "heartbeat": p.run.heartbeat,
        "report_every": p.run.report_every,
        "trials": dict(p.counts),
        "reload_s": p.reload_s,
        "provisional_sweet_spots": _spot_lines(spots),
    }


_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_HEAD = _ENV.from_string('{% if reload_s %}<meta http-equiv="refresh" content="{{ reload_s }}">{% endif %}')
_BANNER = _ENV.from_string("""
<div id="partial-report" class="partial" style="background:#fff3cd;border:2px solid #e0a000;padding:.6em 1em;margin:1em 0">
<p><b>{{ headline }}</b></p>
<p>{{ counts }}</p>
{% if spots %}<p>Sweet spots so far (<b>provisional</b>):</p><ul>{% for line in spots %}<li>{{ line }}</li>{% endfor %}</ul>{% endif %}
<p>{{ after }}{% if reload_s %} This page reloads itself every {{ reload_s }} s until the search ends.{% endif %}</p>
</div>""")


def mark_html(page: str, p: PartialState, spots=None) -> str:
    """`page` (the report's HTML) with the partial banner first in its body and, while the search
    runs, the reload tag in its head."""
    headline, counts, spot_lines, after = banner_lines(p, spots)
    head = _HEAD.render(reload_s=p.reload_s)
    banner = _BANNER.render(headline=headline, counts=counts, spots=spot_lines, after=after, reload_s=p.reload_s)
    page, heads = re.subn(r"(<head\b[^>]*>)", lambda m: m.group(1) + head, page, count=1)
    page, bodies = re.subn(r"(<body\b[^>]*>)", lambda m: m.group(1) + banner, page, count=1)
    if not (heads and bodies):
        raise ValueError("the report's HTML has no <head> or <body> to mark as partial")
    return page


def mark_markdown(text: str, p: PartialState, spots=None) -> str:
    """report.md with the partial banner as a quote block above everything else."""
    quote = "\n".join(
        "> " + line.replace("<", "&lt;").replace(">", "&gt;") if line else ">" for line in format_partial(p, spots).splitlines()
    )
    return quote + "\n\n" + text


def parse_duration(text: str) -> float:
    """Seconds from `90`, `90s`, `5m`, `1.5h` (`sweetspot search --report-every`; here, not in
    search/, so that the command line checks it without importing Ray).

    Example:
        >>> parse_duration("5m"), parse_duration("90"), parse_duration("1.5h")
        (300.0, 90.0, 5400.0)
    """
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    text = str(text).strip().lower()
    scale = units.get(text[-1:], None)
    number = text[:-1] if scale is not None else text
    try:
        seconds = float(number) * (scale or 1.0)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration (e.g. 30s, 5m, 1h)") from None
    if not (seconds > 0) or seconds == float("inf"):
        raise ValueError(f"{text!r}: must be a positive duration (e.g. 30s, 5m, 1h)")
    return seconds
