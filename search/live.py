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

import functools
import json
import os
import shutil
import signal
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
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers live in the main thread only
        for signum in _TUNE_STOP_SIGNALS:
            tune_handler = signal.getsignal(signum)
            if callable(tune_handler):
                signal.signal(signum, functools.partial(_note_then, tune_handler))


# Tune ends a run gracefully on these (SIGUSR1 where the platform has it).
_TUNE_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGUSR1") if hasattr(signal, name))


def _note_then(tune_handler, signum, frame):
    _interrupted.set()
    tune_handler(signum, frame)


class LiveRun:
    """Context manager around `tuner.fit()`: run.json, its heartbeat and the report refresh.

    Args:
        folder: The results folder (a local path or a storage URI).
        report_every: Seconds between report refreshes (None: no refresh).
        heartbeat_s: Seconds between heartbeats.
        analyze_args: Extra `sweetspot analyze` arguments of a refresh while the search runs; the
            final refresh uses `sweetspot analyze`'s defaults (what a user gets after the search).
    """

    def __init__(
        self,
        folder: str,
        *,
        report_every: float | None = None,
        heartbeat_s: float = layout.HEARTBEAT_S,
        analyze_args: tuple[str, ...] = ("--no-attention",),
    ):
        self.folder, self.report_every, self.heartbeat_s = str(folder), report_every, heartbeat_s
        self.analyze_args = analyze_args
        self.started = time.time()
        self.reports, self.last_report_s = 0, None
        self._last_failure: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one writer of run.json at a time
        self._threads: list[threading.Thread] = []
        self._handlers: dict[int, object] = {}

    def __enter__(self) -> LiveRun:
        _interrupted.clear()
        # Tune replaces these handlers for the run and leaves its own installed after a run that was
        # not interrupted: put the driver's back on leaving (a Ctrl+C during the last refresh stops it).
        main = threading.current_thread() is threading.main_thread()
        self._handlers = {signum: signal.getsignal(signum) for signum in _TUNE_STOP_SIGNALS} if main else {}
        self.started = time.time()
        self._write("running")
        # Two threads: a refresh may take longer than a heartbeat period, and must not delay one.
        loops = [self._beat] + ([self._refresh_loop] if self.report_every is not None else [])
        self._threads = [
            threading.Thread(target=loop, name=f"sweetspot-live-{loop.__name__.strip('_')}", daemon=True) for loop in loops
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        for signum, handler in self._handlers.items():
            if handler is not None:
                signal.signal(signum, handler)
        self._stop.set()
        for thread in self._threads:
            thread.join()  # a refresh under way finishes first (it writes whole files, never half)
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

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            self._write("running")

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.report_every):  # the period counts from the end of the last refresh
            if self.refresh(self.analyze_args):
                self._write("running")  # its count and cost, at once

    def refresh(self, args: tuple[str, ...]) -> bool:
        """Runs `sweetspot analyze FOLDER ARGS` (the report in FOLDER/report) and returns whether it
        succeeded; a failure (e.g. no trial has reported yet) is one line on stderr, never fatal."""
        command = [sys.executable, "-m", "sweetspot.cli", "analyze", self.folder, *args]
        if shutil.which("nice"):
            command = ["nice", "-n", "10", *command]  # the trials first
        began = time.monotonic()
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=max(600.0, 2 * (self.report_every or 0)),
                stdin=subprocess.DEVNULL,
            )
            ok, why = done.returncode == 0, (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        except (OSError, subprocess.TimeoutExpired) as e:
            ok, why = False, str(e)
        took = time.monotonic() - began
        if ok:
            self.reports, self.last_report_s = self.reports + 1, took
            print(
                f"sweetspot: report refreshed in {took:.1f} s: {storage.join(self.folder, 'report', 'report.html')}",
                file=sys.stderr,
                flush=True,
            )
        elif why != self._last_failure:  # once per reason (no trial has reported yet: every period until one has)
            print(f"sweetspot: report not refreshed: {why}", file=sys.stderr, flush=True)
        self._last_failure = None if ok else why
        return ok

    def _write(self, state: str, *, ended: float | None = None, error: str | None = None) -> None:
        doc = layout.run_document(
            state=state,
            pid=os.getpid(),
            host=socket.gethostname(),
            started=self.started,
            heartbeat=time.time(),
            ended=ended,
            report_every=self.report_every,
            reports=self.reports,
            last_report_s=self.last_report_s,
            error=error,
        )
        with self._lock:
            try:
                storage.write_text(storage.join(self.folder, layout.RUN_FILE), json.dumps(doc, indent=1))
            except OSError as e:  # a heartbeat that cannot be written must not end the search
                print(f"sweetspot: cannot write {layout.RUN_FILE}: {e}", file=sys.stderr, flush=True)
