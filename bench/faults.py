"""Faults and load on a real Ray: a worker node lost mid-trial, and a search of 200 short trials.

    python bench/faults.py [node-loss] [load] [--out docs/reliability-faults.json]
    python bench/faults.py --docs-only          # the docs section again, from the committed figures

- node-loss: a local two-node cluster with token authentication (tests/cluster_tests/local_cluster.py:
  a head and one worker node, 1 CPU each), `sweetspot search --address …` running two 1-CPU trials of
  the tiny model with `search.max_failures: 1`, so one trial runs on each node. Once the trial on the
  worker node has written a checkpoint, that node's raylet is killed by PID with SIGKILL. The trial
  fails, waits for the head's CPU, and continues there from its checkpoint; the folder is then read by
  `sweetspot analyze`. Returns the timeline (seconds after the kill) and what each trial's
  result.json says.
- load: the real search path (bench/replay.py's `replay_real`: the runner's Tuner, run records and
  all, with trials that report a ground-truth table's rows instead of training) over 200 random-search
  trials, in a driver process of its own. A second process polls `summary.json` as `sweetspot status`
  would, parses every read, and samples the driver's RSS (psutil) against the number of ended trials.

The figures go to `--out` (JSON); with the default `--out`, the "faults" section of
docs/reliability.md is written from them (bench/docsection.py). The tests
(tests/cluster_tests/test_node_loss.py, tests/search_tests/test_load.py) run the same functions and
assert on what they return; with SWEETSPOT_RECORD_FIGURES=1 they record their figures the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "reliability-faults.json"
DOCS = REPO / "docs" / "reliability.md"
SWEETSPOT = str(Path(sys.executable).with_name("sweetspot"))

# The tiny model on a GoEmotions slice: a few seconds an epoch on one CPU of a 2-core machine.
NODE_LOSS_DATA = {"source": "go_emotions", "max_len": 32, "train_limit": 480, "validation_limit": 64, "test_limit": 32}
NODE_LOSS_EPOCHS = 4


def _cluster_env(home: Path) -> dict[str, str]:
    """The nodes' and the driver's environment: token authentication with the token in HOME, and the
    venv first on PATH (as test_multinode's cluster)."""
    (home / ".ray").mkdir(parents=True, exist_ok=True)
    (home / ".ray" / "auth_token").write_text(secrets.token_hex(32))
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")}
    env.update(
        HOME=str(home),
        RAY_AUTH_MODE="token",
        RAY_USAGE_STATS_ENABLED="0",
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    )
    return env


def _raylet_pid(node_process) -> int:
    """The raylet started by one node's `ray start --block` process."""
    import psutil

    raylets = [p.pid for p in psutil.Process(node_process.pid).children(recursive=True) if p.name() == "raylet"]
    if len(raylets) != 1:
        raise RuntimeError(f"expected one raylet under `ray start` (pid {node_process.pid}), found {raylets}")
    return raylets[0]


def _tune_time(text: str) -> float:
    """Tune's `date_str()` (local time, whole seconds) as a Unix time."""
    return time.mktime(time.strptime(text, "%Y-%m-%d_%H-%M-%S"))


def _gone(pid: int) -> bool:
    """The process has exited (a zombie not yet reaped by its parent counts as exited)."""
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _rows(result_file: Path) -> list[dict[str, Any]]:
    """Every line of a result.json as written (a retried trial's repeated epochs kept)."""
    return [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]


def node_loss(work: Path, datasets_dir: Path, *, timeout: float = 600) -> dict[str, Any]:
    """Runs the node-loss scenario in `work` (see the module's docstring) and returns what happened."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # the cluster helper the tests use
    from sweetspot import layout
    from sweetspot.trainable import keys
    from tests.cluster_tests.local_cluster import LocalCluster

    work.mkdir(parents=True, exist_ok=True)
    env = _cluster_env(work / "home")
    storage = work / "results"
    config = work / "nodeloss.yaml"
    config.write_text(
        json.dumps(
            {  # JSON is YAML
                "name": "nodeloss",
                "storage_path": str(storage),
                "data": NODE_LOSS_DATA,
                "model": {"name": "tiny-distilbert"},
                "train": {"epochs": NODE_LOSS_EPOCHS, "batch_size": 16},
                "search": {
                    "algorithm": "grid",
                    "space": {"optimizer": ["adam", "adamw"], "lr": [1e-3], "weight_decay": [0.0]},
                    "scheduler": {"name": "fifo"},
                    "max_concurrent_trials": 2,
                    "max_failures": 1,
                },
                "resources": {"cpus_per_trial": 1},
            }
        )
    )
    folder = storage / "nodeloss"
    client = {**env, "SWEETSPOT_DATA_DIR": str(datasets_dir), "SWEETSPOT_CACHE_DIR": str(work / "cache")}
    with LocalCluster(env=env, head_cpus=1, worker_cpus=[1]) as cluster:
        nodes = cluster.alive_nodes()
        worker_node = next(node for node, head in nodes.items() if not head)
        head_node = next(node for node, head in nodes.items() if head)
        raylet = _raylet_pid(cluster.processes[1])
        log = open(work / "driver.log", "w")
        load_at_start = os.getloadavg()
        start, start_wall = time.monotonic(), time.time()
        driver = subprocess.Popen(
            [SWEETSPOT, "search", str(config), "--address", cluster.address],
            env=client,
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        killed_after = None
        try:
            # The kill: once the trial on the worker node has written a checkpoint (each checkpoint
            # carries its report, with the node the trial runs on).
            while driver.poll() is None and time.monotonic() - start < timeout:
                for report in folder.glob(f"{layout.TRIAL_PREFIX}*/{layout.CHECKPOINT_PREFIX}*/report.json"):
                    try:
                        row = json.loads(report.read_text())
                    except (OSError, json.JSONDecodeError):
                        continue  # being written
                    if row.get(keys.NODE_ID) == worker_node:
                        killed_after = {
                            "trial": report.parent.parent.name,
                            "checkpoint": report.parent.name,
                            "epoch": row[keys.EPOCH],
                        }
                        break
                if killed_after:
                    os.kill(raylet, signal.SIGKILL)
                    killed_at = time.time()
                    break
                time.sleep(0.2)
            driver.wait(timeout=max(1.0, timeout - (time.monotonic() - start)))
            done_at = time.time()
        finally:
            if driver.poll() is None:
                os.killpg(driver.pid, signal.SIGKILL)
                driver.wait()
            log.close()
        raylet_gone = _gone(raylet)
    driver_log = (work / "driver.log").read_text()
    if driver.returncode != 0 or killed_after is None:
        raise RuntimeError(
            f"search exited {driver.returncode}, kill {'done' if killed_after else 'never happened'}:\n{driver_log[-4000:]}"
        )

    analyze = subprocess.run(
        [SWEETSPOT, "analyze", str(folder), "--json"], env=client, cwd=work, capture_output=True, text=True, timeout=300
    )
    trials = {}
    for trial in sorted(folder.glob(f"{layout.TRIAL_PREFIX}*")):
        rows = _rows(trial / layout.RESULT_FILE)  # every line as written: a rerun epoch would show twice
        errors = (trial / "error.txt").read_text() if (trial / "error.txt").is_file() else ""
        trials[trial.name] = {
            "epochs": [r[keys.EPOCH] for r in rows],
            "steps": [r[keys.STEP] for r in rows],
            "nodes": [
                "worker" if r[keys.NODE_ID] == worker_node else "head" if r[keys.NODE_ID] == head_node else r[keys.NODE_ID]
                for r in rows
            ],
            # Tune's `timestamp` (whole seconds) of each report, as seconds after the kill.
            "reported_s": [round(r["timestamp"] - killed_at, 1) for r in rows],
            "failures": [
                round(_tune_time(t) - killed_at, 1) for t in re.findall(r"Failure # \d+ \(occurred at ([^)]+)\)", errors)
            ],
            "checkpoints": sorted(c.name for c in trial.glob(f"{layout.CHECKPOINT_PREFIX}*")),
        }
    summary = json.loads((folder / layout.SUMMARY_FILE).read_text())
    return {
        "loadavg": load_at_start,
        "killed_after": killed_after,
        "search_done_s": round(done_at - killed_at, 1),
        "search_wall_s": round(done_at - start_wall, 1),
        "trials": trials,
        "summary_status": {t["folder"]: t["status"] for t in summary["trials"]},
        "raylet_gone": raylet_gone,
        "analyze_rc": analyze.returncode,
        "analyze": json.loads(analyze.stdout) if analyze.returncode == 0 else analyze.stderr[-2000:],
        "driver_log_tail": driver_log[-3000:],
    }


# --- load: 200 short trials through the real search path ------------------------------------------

LOAD_TRIALS = 200
LOAD_CONCURRENCY = 4
ENDED = {"terminated", "early_stopped", "collapsed", "diverged", "errored"}


def _load_driver(work: Path, trials: int, concurrency: int) -> None:
    """The driver process of the load scenario: bench/replay.py's real path (`replay_real`: the
    runner's `build_tuner`, run records and all) over `trials` random-search trials of the
    GoEmotions table, each reporting the table's epochs for its configuration."""
    import importlib

    import optuna
    import ray

    sys.path.insert(0, str(REPO / "bench"))  # a process of its own: nothing else on its path
    replay = importlib.import_module("replay")  # as tests/bench_tests/test_replay.py loads it: `replay`
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table = replay.Table.load("go_emotions")
    config = table.experiment(
        "random-asha",
        storage=str(work),
        replay_seed=0,
        extra={"name": "load", "search.num_samples": trials, "search.max_concurrent_trials": concurrency},
    )
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        results, cost = replay.replay_real(table, config, 0)
    finally:
        ray.shutdown()
    (work / "driver.json").write_text(json.dumps({"trials": len(results.trials), "trial_epochs": cost.trial_epochs}))


def read_summary(path: Path) -> tuple[dict[str, Any] | None, bytes | None]:
    """One read of summary.json as a reader sees it: (the parsed document, None), or (None, the
    bytes that did not parse: a torn file); (None, None) while there is no file yet."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, None
    try:
        return json.loads(data), None
    except ValueError:
        return None, data


def watch(summary_file: Path, driver: subprocess.Popen, *, interval: float = 0.05, timeout: float = 1500) -> dict[str, Any]:
    """Polls `summary_file` until `driver` exits, parsing every read, and samples the driver's RSS
    (psutil) beside the number of ended trials the file lists at that moment."""
    import psutil

    process = psutil.Process(driver.pid)
    reads, torn, samples = 0, [], []  # samples: (seconds, ended trials, driver RSS bytes)
    start = time.monotonic()
    ended, driver_cpu, children_cpu = 0, 0.0, {}
    while driver.poll() is None and time.monotonic() - start < timeout:
        document, bad = read_summary(summary_file)
        if document is not None or bad is not None:
            reads += 1
        if bad is not None:
            torn.append(bad[-200:].decode(errors="replace"))
        if document is not None:
            ended = sum(t["status"] in ENDED for t in document["trials"])
        try:
            if process.status() == psutil.STATUS_ZOMBIE:  # exited, not yet reaped: no memory to sample
                break
            samples.append((time.monotonic() - start, ended, process.memory_info().rss))
            if len(samples) % 20 == 1:  # CPU seconds of the driver, and of the Ray processes it started
                cpu = process.cpu_times()
                driver_cpu = cpu.user + cpu.system
                for child in process.children(recursive=True):
                    children_cpu[child.pid] = max(children_cpu.get(child.pid, 0.0), _cpu(child))
        except psutil.NoSuchProcess:
            break
        time.sleep(interval)
    return {
        "reads": reads,
        "torn": torn,
        "samples": samples,
        "wall_s": time.monotonic() - start,
        "driver_cpu_s": driver_cpu,
        "tree_cpu_s": driver_cpu + sum(children_cpu.values()),
    }


def _cpu(process) -> float:
    import psutil

    try:
        cpu = process.cpu_times()
        return cpu.user + cpu.system
    except psutil.NoSuchProcess:
        return 0.0


def load(work: Path, *, trials: int = LOAD_TRIALS, concurrency: int = LOAD_CONCURRENCY, timeout: float = 1500) -> dict[str, Any]:
    """Runs the load scenario in `work`: the driver in its own process, watched from this one."""
    from sweetspot import layout

    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "RAY_ADDRESS": "", "RAY_USAGE_STATS_ENABLED": "0"}
    load_at_start = os.getloadavg()
    with open(work / "driver.log", "w") as log:
        driver = subprocess.Popen(
            [sys.executable, __file__, "--driver", str(work), "--trials", str(trials), "--concurrency", str(concurrency)],
            env=env,
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            seen = watch(work / "load" / layout.SUMMARY_FILE, driver, timeout=timeout)
            driver.wait(timeout=60)
        finally:
            if driver.poll() is None:
                os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray it started
                driver.wait()
    if driver.returncode != 0:
        raise RuntimeError(f"load driver exited {driver.returncode}:\n{(work / 'driver.log').read_text()[-4000:]}")
    final = json.loads((work / "load" / layout.SUMMARY_FILE).read_text())
    samples = seen["samples"]
    rss = [s[2] for s in samples]

    def rss_at(ended: int) -> int:
        """The driver's RSS when the file first listed `ended` ended trials."""
        return next(r for _, n, r in samples if n >= ended)

    at_50 = rss_at(min(50, trials))
    last = rss_at(trials)  # when the file first listed every trial ended
    mib = 1 << 20
    return {
        "loadavg": load_at_start,
        "trials": trials,
        "concurrency": concurrency,
        "driver": json.loads((work / "driver.json").read_text()),
        "records": len(final["trials"]),
        "statuses": sorted({t["status"] for t in final["trials"]}),
        "wall_s": round(seen["wall_s"], 1),
        "driver_cpu_s": round(seen["driver_cpu_s"], 1),
        "tree_cpu_s": round(seen["tree_cpu_s"], 1),
        "reads": seen["reads"],
        "torn_reads": len(seen["torn"]),
        "torn_examples": seen["torn"][:3],
        "rss_samples": len(samples),
        "peak_rss_mib": round(max(rss) / mib, 1),
        "rss_at_50_mib": round(at_50 / mib, 1),
        "rss_at_end_mib": round(last / mib, 1),
        "growth_50_to_end_mib": round((last - at_50) / mib, 1),
        "rss_by_ended": [[n, round(r / mib, 1)] for n, r in _by_ended(samples)],
    }


def _by_ended(samples: list[tuple[float, int, int]]) -> list[tuple[int, int]]:
    """The driver's RSS when the file first listed 0, 25, 50, ... ended trials."""
    out, mark = [], 0
    for _, n, r in samples:
        if n >= mark:
            out.append((n, r))
            mark = (n // 25 + 1) * 25
    return out


# --- the docs section --------------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    """The "faults" section of docs/reliability.md, from the figures."""
    lines = ["## Faults and load on a real Ray (`bench/faults.py`)", ""]
    loss = report.get("node_loss")
    if loss:
        (killed,) = [name for name, t in loss["trials"].items() if "worker" in t["nodes"]]
        t = loss["trials"][killed]
        other = next(v for name, v in loss["trials"].items() if name != killed)
        first_after = next(i for i, node in enumerate(t["nodes"]) if node == "head")
        lines += [
            "### A worker node lost mid-trial",
            "",
            f"A local two-node cluster with token authentication (head and worker node, 1 CPU each, started by "
            f"`ray start`), `sweetspot search --address …` running two 1-CPU trials of the tiny model "
            f"({NODE_LOSS_EPOCHS} epochs, `search.max_failures: 1`), one on each node. Once the trial on the worker node "
            f"had written `{loss['killed_after']['checkpoint']}` (epoch {loss['killed_after']['epoch']}), the worker "
            f"node's raylet was killed by PID with SIGKILL. Timeline, seconds after the kill (Tune's report times "
            f"and failure record have whole-second resolution):",
            "",
            "| event | s |",
            "|---|---|",
            *(
                f"| {event} | {at:.0f} |"
                for at, event in sorted(
                    [
                        (
                            0.0,
                            f"raylet SIGKILLed (right after the trial's epoch-{t['epochs'][first_after - 1]} report and checkpoint, "
                            f"its last on the worker node)",
                        ),
                        *((f, f"Tune records the trial's failure # {i + 1} (error.txt)") for i, f in enumerate(t["failures"])),
                        (
                            other["reported_s"][-1],
                            "the other trial (on the head all along) ends; the retry needs the head's only CPU",
                        ),
                        (
                            t["reported_s"][first_after],
                            f"the retry's first report, on the head: epoch {t['epochs'][first_after]} "
                            f"(step {t['steps'][first_after]}, continuing from the checkpoint)",
                        ),
                        (t["reported_s"][-1], f"the trial's last report (epoch {t['epochs'][-1]})"),
                    ],
                    key=lambda row: row[0],
                )
            ),
            f"| the search ends (`sweetspot search` exits 0) | {loss['search_done_s']:.0f} |",
            "",
            f"The killed trial's result.json: epochs {t['epochs']} on nodes {t['nodes']} (no epoch run twice); the "
            f"other trial: epochs {other['epochs']} on {sorted(set(other['nodes']))}, run once. `sweetspot analyze` "
            f"exit code {loss['analyze_rc']}; statuses {sorted(set(loss['summary_status'].values()))}. Whole search "
            f"{loss['search_wall_s']:.0f} s; machine load average {loss['loadavg'][0]:.1f} at the start "
            f"({os.cpu_count()} cores).",
            "",
        ]
    load = report.get("load")
    if load:
        lines += [
            f"### {load['trials']} short trials",
            "",
            f"bench/replay.py's real search path (the runner's Tuner, run records and all; trials report the GoEmotions "
            f"table's epochs), random search + ASHA, {load['concurrency']} trials at a time, the driver in a process of "
            f"its own; a second process polls `summary.json` every 50 ms, parses every read and samples the driver's RSS.",
            "",
            "| trials | records | wall | driver CPU | + Ray's processes | summary.json reads | torn reads | driver RSS peak | at 50 ended | at the end | growth 50 → end |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
            f"| {load['driver']['trials']} | {load['records']} | {load['wall_s']:.0f} s | {load['driver_cpu_s']:.0f} s | {load['tree_cpu_s']:.0f} s "
            f"| {load['reads']} | {load['torn_reads']} "
            f"| {load['peak_rss_mib']:.0f} MiB | {load['rss_at_50_mib']:.0f} MiB | {load['rss_at_end_mib']:.0f} MiB "
            f"| {load['growth_50_to_end_mib']:+.0f} MiB |",
            "",
            "Driver RSS by ended trials: " + ", ".join(f"{n}: {r:.0f}" for n, r in load["rss_by_ended"]) + " MiB "
            f"(after the first 50: {load['growth_50_to_end_mib'] / max(1, load['trials'] - 50) * 1024:.0f} KiB per trial, "
            "steadily: what the driver keeps per trial, not a plateau). "
            f"Machine load average {load['loadavg'][0]:.1f} at the start ({os.cpu_count()} cores, shared).",
            "",
        ]
    return "\n".join(lines)


def record(scenario: str, figures: dict[str, Any], out: Path = OUT) -> None:
    """Merges one scenario's figures into `out`; for the committed figures, rewrites the docs section."""
    report = json.loads(out.read_text()) if out.is_file() else {}
    report[scenario] = figures
    out.write_text(json.dumps(report, indent=1))
    if out.resolve() == OUT:
        write_docs(report)


def _compact_node_loss(loss: dict[str, Any]) -> dict[str, Any]:
    """The node-loss figures without the driver's log and the analysis's whole report."""
    compact = {k: v for k, v in loss.items() if k not in ("analyze", "driver_log_tail")}
    if loss["analyze_rc"] == 0:
        compact["analyze_trials"] = [{k: t[k] for k in ("status", "epochs")} for t in loss["analyze"]["trials"]]
    return compact


def write_docs(report: dict[str, Any]) -> None:
    sys.path.insert(0, str(REPO / "bench"))
    from docsection import write_section

    write_section("faults", markdown(report), docs=DOCS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", help="node-loss, load (default: both)")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--driver", metavar="WORK", help=argparse.SUPPRESS)  # the load scenario's driver process
    parser.add_argument("--trials", type=int, default=LOAD_TRIALS)
    parser.add_argument("--concurrency", type=int, default=LOAD_CONCURRENCY)
    parser.add_argument("--docs-only", action="store_true", help="rewrite the docs section from the figures in --out")
    args = parser.parse_args()
    if args.docs_only:
        return write_docs(json.loads(Path(args.out).read_text()))
    if args.driver:
        return _load_driver(Path(args.driver), args.trials, args.concurrency)
    args.scenarios = args.scenarios or ["node-loss", "load"]
    if set(args.scenarios) - {"node-loss", "load"}:
        parser.error(f"unknown scenario(s): {', '.join(sorted(set(args.scenarios) - {'node-loss', 'load'}))}")
    datasets = Path(os.environ.get("SWEETSPOT_DATA_DIR", REPO.parent / "shared" / "datasets"))
    with tempfile.TemporaryDirectory() as work:
        if "node-loss" in args.scenarios:
            loss = node_loss(Path(work) / "node-loss", datasets)
            record("node_loss", _compact_node_loss(loss), Path(args.out))
            print(json.dumps(_compact_node_loss(loss), indent=1), flush=True)
        if "load" in args.scenarios:
            figures = load(Path(work) / "load", trials=args.trials, concurrency=args.concurrency)
            record("load", figures, Path(args.out))
            print(json.dumps({k: v for k, v in figures.items() if k != "rss_by_ended"}, indent=1), flush=True)


if __name__ == "__main__":
    sys.exit(main())
