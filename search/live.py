"""The search's own state while it runs, and the report refreshed while it runs.

`LiveRun` wraps `tuner.fit()` in the driver: it writes `run.json` (`sweetspot.layout.RUN_FILE`)
with state `running`, the driver's pid and host and its start time, rewrites the file's heartbeat
every `layout.HEARTBEAT_S` seconds from a thread, and on leaving records `finished`, `interrupted`
(Ctrl+C: Tune ends the run and saves its state) or `failed` (the driver raised). With
`report_every` (`sweetspot search --report-every 5m`) the same thread runs `sweetspot analyze` on
the results folder that often, and once more after the end, so the report is current while the
search runs and final when it ends.

Why a `sweetspot analyze` subprocess and not a call: it is exactly what a user runs (one code path
for a partial and a final report); the search does not import the analysis (the package rule); the
refresh's CPU and memory (matplotlib, pandas, the baselines) stay out of the driver's process, whose
Tune loop keeps its GIL, and it runs at lower priority (`nice`) than the trials; the thread only waits on it.

A driver killed with SIGKILL leaves `running` behind: the analysis then decides from the pid (same
host) or the heartbeat's age (analysis/live.py).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

from ray import tune

from sweetspot import layout, storage

# Set by `InterruptWatch` when Ctrl+C reaches Tune's handler; read by `LiveRun` after `fit()` returns
# (Tune ends an interrupted run the way it ends a finished one: `fit()` returns normally).
_interrupted = threading.Event()


class InterruptWatch(tune.Callback):
    """Notes a Ctrl+C in the driver, then lets Tune's own handler end the run as it always does.

    Tune installs its SIGINT handler before it sets up the callbacks, so `setup` wraps it. Stateless,
    so it pickles with the Tuner (a resumed run restores its callbacks from the results folder)."""

    def setup(self, **info):
        import signal

        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers live in the main thread only
        tune_handler = signal.getsignal(signal.SIGINT)
        if not callable(tune_handler):
            return

        def note_then_tune(signum, frame):
            _interrupted.set()
            tune_handler(signum, frame)

        signal.signal(signal.SIGINT, note_then_tune)


class LiveRun:
    """Context manager around `tuner.fit()`: run.json, its heartbeat and the report refresh.

    Args:
        folder: The results folder (a local path or a storage URI).
        report_every: Seconds between report refreshes (None: no refresh).
        heartbeat_s: Seconds between heartbeats.
        analyze_args: Extra `sweetspot analyze` arguments of a refresh while the search runs; the
            final refresh uses `sweetspot analyze`'s defaults (what a user gets after the search).
    """

    def __init__(self, folder: str, *, report_every: float | None = None, heartbeat_s: float = layout.HEARTBEAT_S,
                 analyze_args: tuple[str, ...] = ("--no-attention",)):
        self.folder, self.report_every, self.heartbeat_s = str(folder), report_every, heartbeat_s
        self.analyze_args = analyze_args
        self.started = time.time()
        self.reports, self.last_report_s = 0, None
        self._last_failure: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one writer of run.json at a time
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "LiveRun":
        _interrupted.clear()
        self.started = time.time()
        self._write("running")
        self._thread = threading.Thread(target=self._loop, name="sweetspot-live", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if exc_type is None:
            state, error = ("interrupted", "stopped by Ctrl+C") if _interrupted.is_set() else ("finished", None)
        elif issubclass(exc_type, KeyboardInterrupt):
            state, error = "interrupted", "stopped by a second Ctrl+C"
        else:
            state, error = "failed", f"{exc_type.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
        ended = time.time()
        self._write(state, ended=ended, error=error)
        if self.report_every is not None and not (exc_type and issubclass(exc_type, KeyboardInterrupt)):
            # The last refresh, after run.json says how the search ended: the final report after a
            # finished search; after any other end a partial report that says so and no longer reloads.
            if self.refresh(() if state == "finished" else self.analyze_args):
                self._write(state, ended=ended, error=error)  # counts the last refresh too

    def _loop(self) -> None:
        next_report = time.monotonic() + self.report_every if self.report_every is not None else None
        while True:
            wait = self.heartbeat_s if next_report is None else min(self.heartbeat_s, max(0.0, next_report - time.monotonic()))
            if self._stop.wait(wait):
                return
            if next_report is not None and time.monotonic() >= next_report:
                self.refresh(self.analyze_args)
                next_report = time.monotonic() + self.report_every
            if not self._stop.is_set():
                self._write("running")

    def refresh(self, args: tuple[str, ...]) -> bool:
        """Runs `sweetspot analyze FOLDER ARGS` (the report in FOLDER/report) and returns whether it
        succeeded; a failure (e.g. no trial has reported yet) is one line on stderr, never fatal."""
        command = [sys.executable, "-m", "sweetspot.cli", "analyze", self.folder, *args]
        if shutil.which("nice"):
            command = ["nice", "-n", "10", *command]  # the trials first
        began = time.monotonic()
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=max(600.0, 2 * (self.report_every or 0)),
                                  stdin=subprocess.DEVNULL)
            ok, why = done.returncode == 0, (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        except (OSError, subprocess.TimeoutExpired) as e:
            ok, why = False, str(e)
        took = time.monotonic() - began
        if ok:
            self.reports, self.last_report_s = self.reports + 1, took
            print(f"sweetspot: report refreshed in {took:.1f} s: {storage.join(self.folder, 'report', 'report.html')}",
                  file=sys.stderr, flush=True)
        elif why != self._last_failure:  # once per reason (no trial has reported yet: every period until one has)
            print(f"sweetspot: report not refreshed: {why}", file=sys.stderr, flush=True)
        self._last_failure = None if ok else why
        return ok

    def _write(self, state: str, *, ended: float | None = None, error: str | None = None) -> None:
        doc = layout.run_document(state=state, pid=os.getpid(), host=socket.gethostname(), started=self.started,
                                  heartbeat=time.time(), ended=ended, report_every=self.report_every,
                                  reports=self.reports, last_report_s=self.last_report_s, error=error)
        with self._lock:
            try:
                storage.write_text(storage.join(self.folder, layout.RUN_FILE), json.dumps(doc, indent=1))
            except OSError as e:  # a heartbeat that cannot be written must not end the search
                print(f"sweetspot: cannot write {layout.RUN_FILE}: {e}", file=sys.stderr, flush=True)


def parse_duration(text: str) -> float:
    """Seconds from `90`, `90s`, `5m`, `1.5h`.

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
