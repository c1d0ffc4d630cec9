"""A report while the search runs, through the CLI on a real local Ray: `sweetspot analyze` on a
running search writes a partial report that says so (banner, provisional sweet spots, HTML reload
tag); `sweetspot search --report-every` refreshes the report while the search runs and replaces it
with the final one at the end (no banner, no reload); Ctrl+C leaves an interrupted, partial report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO, wait_for

SLICE = {"source": "go_emotions", "max_len": 48, "train_limit": 320, "validation_limit": 64, "test_limit": 32}


def _experiment(tmp_path, name, *, epochs, lrs):
    """A grid of adam and adamw × `lrs` on the tiny model, FIFO (every trial runs every epoch)."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "storage_path": str(tmp_path / "results"),
                "data": SLICE,
                "model": {"name": "tiny-distilbert"},
                "train": {"epochs": epochs, "batch_size": 16},
                "search": {
                    "algorithm": "grid",
                    "space": {"optimizer": ["adam", "adamw"], "lr": lrs, "weight_decay": [0.0]},
                    "scheduler": {"name": "fifo"},
                },
            }
        )
    )
    return path


@pytest.fixture
def env(search_env):
    return dict(search_env)


def _cli(*args, env, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "sweetspot.cli", *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=timeout
    )


def _json(path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _wait_for(predicate, timeout, interval=0.5):
    return wait_for(predicate, timeout, interval)


def _reported(folder) -> bool:
    summary = _json(folder / "summary.json")
    return bool(summary and any(t["epochs"] >= 1 for t in summary["trials"]))


def _driver(config, env, log, *args):
    return subprocess.Popen(
        [sys.executable, "-m", "sweetspot.cli", "search", str(config), *args],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(driver):
    if driver.poll() is None:  # a failed assertion: the driver and the embedded Ray it started
        os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()


@pytest.mark.e2e
def test_analyze_and_report_every_while_the_search_runs_then_the_final_report(tmp_path, env, cli):
    # 2 trials × 40 epochs side by side: about 30 s of training on 2 idle cores (12 epochs took 9 s: the
    # search could end before its first refresh); refreshed every 5 s.
    config = _experiment(tmp_path, "live", epochs=40, lrs=[1e-3])
    folder = tmp_path / "results" / "live"
    report = folder / "report" / "report.html"
    with open(tmp_path / "driver.log", "w") as log:
        driver = _driver(config, env, log, "--report-every", "5s")
    try:
        run = _wait_for(lambda: _json(folder / "run.json"), timeout=300)
        assert run["state"] == "running" and run["pid"] == driver.pid and run["report_every"] == 5.0

        # `sweetspot analyze` while it runs (into another folder: report/ is the driver's), and
        # meanwhile the driver's own refresh.
        _wait_for(lambda: _reported(folder), timeout=300)
        mine = tmp_path / "mine"
        with open(tmp_path / "analyze.json", "w") as out, open(tmp_path / "analyze.err", "w") as err:
            analyze = subprocess.Popen(
                [sys.executable, "-m", "sweetspot.cli", "analyze", str(folder), "--json", "--no-attention", "--out", str(mine)],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=err,
            )
        _wait_for(lambda: (r := _json(folder / "run.json")) and r["state"] == "running" and r["reports"] >= 1, timeout=300)
        refreshed = report.read_text()
        assert 'http-equiv="refresh"' in refreshed and 'id="partial-report"' in refreshed and "(provisional)" in refreshed

        assert analyze.wait(timeout=300) == 0, (tmp_path / "analyze.err").read_text()
        partial = json.loads((tmp_path / "analyze.json").read_text())["partial"]
        assert partial["state"] == "running" and partial["reload_s"] == 10, partial  # never faster than every 10 s
        assert partial["trials"]["running"] >= 1 and partial["trials"]["finished"] < 2, partial
        assert partial["provisional_sweet_spots"] and all(s.endswith("(provisional)") for s in partial["provisional_sweet_spots"])
        head, body = (mine / "report.html").read_text().split("<body", 1)
        assert '<meta http-equiv="refresh" content="10">' in head
        assert "PARTIAL REPORT: the search is running" in body and "(provisional)" in body
        assert (mine / "report.md").read_text().startswith("> PARTIAL REPORT: the search is running")

        assert driver.wait(timeout=600) == 0, (tmp_path / "driver.log").read_text()[-3000:]
    finally:
        _stop(driver)

    run = _json(folder / "run.json")
    assert run["state"] == "finished" and run["ended"] >= run["started"] and run["error"] is None
    assert run["reports"] >= 2 and run["last_report_s"] > 0  # refreshes while running, and the final one
    log = (tmp_path / "driver.log").read_text()
    assert log.count("sweetspot: report refreshed in") == run["reports"]
    final = report.read_text()  # the driver's last refresh replaced the partial report
    assert "http-equiv" not in final and "partial-report" not in final and "PARTIAL" not in final
    assert (folder / "report" / "fig_f_attention.png").is_file() or "missing-f" in final  # the final one is a full report
    after = cli("analyze", folder, "--json", "--no-report", env=env)
    assert after.returncode == 0 and json.loads(after.stdout)["partial"] is None
    assert {t["status"] for t in json.loads(after.stdout)["trials"]} == {"terminated"}


@pytest.mark.e2e
def test_ctrl_c_leaves_an_interrupted_partial_report_that_no_longer_reloads(tmp_path, env):
    config = _experiment(tmp_path, "stopped", epochs=20, lrs=[1e-3])
    folder = tmp_path / "results" / "stopped"
    with open(tmp_path / "driver.log", "w") as log:
        driver = _driver(config, env, log, "--report-every", "1h")  # only the last refresh, after Ctrl+C
    try:
        _wait_for(lambda: _reported(folder), timeout=300)
        os.kill(driver.pid, signal.SIGINT)  # Ctrl+C: Tune ends the run and saves its state
        driver.wait(timeout=300)
    finally:
        _stop(driver)
    run = _json(folder / "run.json")
    assert run["state"] == "interrupted" and run["error"] == "stopped by Ctrl+C" and run["reports"] == 1, run
    page = (folder / "report" / "report.html").read_text()
    assert "http-equiv" not in page and "PARTIAL REPORT: the search was interrupted" in page and "sweetspot resume" in page


@pytest.mark.parametrize("every", ["soon", "-5m"])
def test_a_bad_report_period_is_one_line_and_exit_code_2_before_anything_runs(tmp_path, env, cli, every):
    config = _experiment(tmp_path, "bad", epochs=1, lrs=[1e-3])
    run = cli("search", config, f"--report-every={every}", env=env)
    assert (
        run.returncode == 2 and run.stderr.count("\n") == 1 and run.stderr.startswith("sweetspot search: error: --report-every:")
    )
    assert not (tmp_path / "results").exists()
