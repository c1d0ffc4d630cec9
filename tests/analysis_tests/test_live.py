"""Is a search running? analysis/live.py decides from run.json alone: a live or dead driver pid on
this host, a fresh or stale heartbeat from another; a partial report says so (banner, provisional
sweet spots, a reload tag only while the search runs). The real search is in
tests/search_tests/test_live_search.py."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from sweetspot import layout
from sweetspot.analysis import live
from sweetspot.analysis.results import load_results
from sweetspot.cli import main
from tests.analysis_tests.folders import trial, write_results


def _run_json(folder, **fields):
    doc = layout.run_document(
        **{
            "state": "running",
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.time() - 60,
            "heartbeat": time.time(),
            **fields,
        }
    )
    (folder / layout.RUN_FILE).write_text(json.dumps(doc))


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_running_is_believed_only_while_the_driver_lives(tmp_path):
    _run_json(tmp_path)  # this test's own process is the "driver": alive
    assert live.read_run_state(tmp_path).state == "running"
    # A driver killed with SIGKILL left `running` behind: its pid is gone on this host.
    _run_json(tmp_path, pid=_dead_pid())
    state = live.read_run_state(tmp_path)
    assert state.state == "interrupted" and "is gone" in state.reason
    # From another host only the heartbeat tells: fresh is running, stale is not.
    _run_json(tmp_path, host="elsewhere", pid=1, heartbeat=time.time() - 10)
    assert live.read_run_state(tmp_path).state == "running"
    _run_json(tmp_path, host="elsewhere", pid=1, heartbeat=time.time() - layout.STALE_AFTER_S - 60)
    state = live.read_run_state(tmp_path)
    assert state.state == "interrupted" and "no heartbeat" in state.reason
    # Recorded ends are taken as written.
    _run_json(tmp_path, state="failed", error="RuntimeError: boom")
    assert live.read_run_state(tmp_path) == live.RunState(
        state="failed",
        reason="RuntimeError: boom",
        **{
            k: v
            for k, v in json.loads((tmp_path / layout.RUN_FILE).read_text()).items()
            if k in ("pid", "host", "started", "heartbeat", "ended", "report_every")
        },
    )


def _folder(tmp_path):
    return write_results(
        tmp_path / "exp",
        [
            trial("a", "adam", 1e-4, [0.5, 0.6, 0.7]),
            trial("b", "adam", 1e-3, [0.5, 0.6, 0.65]),
            trial("c", "adamw", 1e-3, [0.5], status="running"),
            trial("d", "adamw", 1e-2, [], status="pending"),
        ],
    )


def test_a_running_search_gets_a_partial_report_and_a_finished_one_the_final(tmp_path, capsys):
    folder = _folder(tmp_path)
    _run_json(folder, report_every=30.0)
    assert main(["analyze", str(folder), "--no-baselines", "--no-attention"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PARTIAL REPORT: the search is running") and "(provisional)" in out
    assert "Trials so far: 1 running, 1 waiting, 2 finished, 0 stopped early, 0 errored." in out
    page = (folder / "report" / "report.html").read_text()
    head, body = page.split("<body", 1)
    assert '<meta http-equiv="refresh" content="30">' in head and 'id="partial-report"' in body
    assert "adam: lr 1.00e-04 .. 1.00e-03 (provisional)" in body and "reloads itself every 30 s" in body
    assert (folder / "report" / "report.md").read_text().startswith("> PARTIAL REPORT: the search is running")

    _run_json(folder, state="finished", ended=time.time())
    assert main(["analyze", str(folder), "--json", "--no-baselines", "--no-attention"]) == 0
    assert json.loads(capsys.readouterr().out)["partial"] is None
    page = (folder / "report" / "report.html").read_text()
    assert (
        "http-equiv" not in page
        and "partial-report" not in page
        and "PARTIAL" not in (folder / "report" / "report.md").read_text()
    )


def test_an_interrupted_search_is_partial_without_reloading(tmp_path, capsys):
    folder = _folder(tmp_path)
    _run_json(folder, pid=_dead_pid())
    assert main(["analyze", str(folder), "--json", "--no-baselines", "--no-attention"]) == 0
    partial = json.loads(capsys.readouterr().out)["partial"]
    assert partial["state"] == "interrupted" and partial["reload_s"] is None
    page = (folder / "report" / "report.html").read_text()
    assert "http-equiv" not in page and "search was interrupted" in page and "sweetspot resume" in page


def test_a_folder_without_run_json_is_partial_only_while_trials_are_unfinished(tmp_path):
    results = load_results(str(_folder(tmp_path)))
    assert live.partial_state(results).run.state == "unknown"
    done = write_results(tmp_path / "done", [trial("a", "adam", 1e-4, [0.5, 0.6, 0.7])])
    assert live.partial_state(load_results(str(done))) is None


def test_banner_text_from_data_is_escaped(tmp_path):
    p = live.PartialState(
        run=live.RunState(state="failed", reason="<script>alert(1)</script>"), counts=live.trial_counts(["running"])
    )
    page = live.mark_html('<html><head><meta charset="utf-8"></head><body><p>x</p></body></html>', p)
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_report_periods_read_as_seconds_and_nonsense_is_refused():
    assert [live.parse_duration(t) for t in ("90", "90s", "5m", "1.5h", " 2M ")] == [90.0, 90.0, 300.0, 5400.0, 120.0]
    for bad in ("soon", "0", "-5m", "nan", "inf", "", "5d"):
        with pytest.raises(ValueError):
            live.parse_duration(bad)
