"""A real multi-node Ray cluster on this machine, started with the same `ray start` commands a
cluster uses, and stopped without touching any other Ray instance on the machine.

Every node is one `ray start --block` process in its own session (process group) with its own
`--temp-dir` and its own ports, so `ray stop` (which stops *every* Ray process on the machine) is
never needed: `stop()` ends each node's process group, and nothing else.

Example:
    >>> with LocalCluster(env=env, head_cpus=1, worker_cpus=[1]) as cluster:  # doctest: +SKIP
    ...     subprocess.run(["sweetspot", "search", "exp.yaml", "--address", cluster.address], env=env)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))  # the venv's CLI, so every node runs the venv's Python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_ports() -> list[str]:
    """Every port a node opens, chosen free, so two nodes (and other Ray instances) never collide;
    the dashboard agent's default 52365 is what an embedded Ray elsewhere on the machine holds."""
    return [
        f"--node-manager-port={free_port()}",
        f"--object-manager-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--dashboard-agent-grpc-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
        f"--metrics-export-port={free_port()}",
    ]


class LocalCluster:
    """A head (`ray start --head`) and worker nodes (`ray start --address=…`) as separate Ray nodes.

    Args:
        env: The environment every node runs in (e.g. with RAY_AUTH_MODE=token and a HOME holding
            `.ray/auth_token`); job drivers started on the head inherit it.
        head_cpus: `--num-cpus` of the head.
        worker_cpus: `--num-cpus` of each worker node.
    """

    def __init__(self, *, env: dict[str, str], head_cpus: int, worker_cpus: list[int], timeout: float = 120):
        self.env = env
        self.head_cpus, self.worker_cpus, self.timeout = head_cpus, worker_cpus, timeout
        self.port, self.dashboard_port = free_port(), free_port()
        # Unix socket paths must stay under ~107 characters: a short folder directly in /tmp.
        self.temp_root = Path(tempfile.mkdtemp(prefix="ss-", dir="/tmp"))
        self.processes: list[subprocess.Popen] = []
        self._logs: list = []

    @property
    def address(self) -> str:
        """The GCS address drivers join (`sweetspot search --address …`)."""
        return f"127.0.0.1:{self.port}"

    @property
    def dashboard_url(self) -> str:
        """The job-submission endpoint (`ray job submit --address …`)."""
        return f"http://127.0.0.1:{self.dashboard_port}"

    def _start(self, name: str, args: list[str]) -> None:
        log = open(self.temp_root / f"{name}.log", "w")
        self._logs.append(log)
        self.processes.append(
            subprocess.Popen(
                [RAY, "start", "--block", "--disable-usage-stats", f"--temp-dir={self.temp_root / name}", *_node_ports(), *args],
                # No drain on SIGTERM: it waits (up to 30 s) for Serve replicas to move, and there are none.
                env={**self.env, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def start(self) -> LocalCluster:
        self._start(
            "head",
            [
                "--head",
                f"--port={self.port}",
                f"--num-cpus={self.head_cpus}",
                "--num-gpus=0",
                "--include-dashboard=true",
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={self.dashboard_port}",
                f"--ray-client-server-port={free_port()}",
            ],
        )
        self._wait_for_nodes(1)
        for i, cpus in enumerate(self.worker_cpus):
            self._start(f"worker{i}", [f"--address={self.address}", f"--num-cpus={cpus}", "--num-gpus=0"])
        self._wait_for_nodes(1 + len(self.worker_cpus))
        return self

    def alive_nodes(self) -> dict[str, bool]:
        """Node id → is the head, for every alive node, from the dashboard (with the nodes' token)."""
        import requests

        r = requests.get(f"{self.dashboard_url}/nodes?view=summary", timeout=10, headers=self._auth_header())
        r.raise_for_status()
        return {
            n["raylet"]["nodeId"]: n["raylet"]["isHeadNode"]
            for n in r.json()["data"]["summary"]
            if n["raylet"]["state"] == "ALIVE"
        }

    def _wait_for_nodes(self, count: int) -> None:
        """Until `count` nodes are alive, or a node process died, or the timeout."""
        import requests

        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            dead = [p for p in self.processes if p.poll() is not None]
            if dead:
                raise RuntimeError(f"a `ray start` exited with {dead[0].returncode}:\n{self.logs()}")
            try:
                if len(self.alive_nodes()) >= count:
                    return
            except (requests.RequestException, KeyError, ValueError):
                pass  # the dashboard is not up yet
            time.sleep(1)
        raise TimeoutError(f"{count} Ray nodes not alive after {self.timeout:.0f} s:\n{self.logs()}")

    def _auth_header(self) -> dict[str, str]:
        token_file = Path(self.env.get("HOME", "~")).expanduser() / ".ray" / "auth_token"
        return {"Authorization": f"Bearer {token_file.read_text().strip()}"} if token_file.is_file() else {}

    def logs(self) -> str:
        return "\n".join(f"--- {f.name}\n{f.read_text()[-3000:]}" for f in sorted(self.temp_root.glob("*.log")))

    def stop(self) -> None:
        """SIGTERM each node (`ray start --block` then stops what it started), then SIGKILL whatever
        is left in its process group (worker processes, agents, the GCS) and remove the nodes' temp
        dirs. Only these process groups are touched."""
        for p in reversed(self.processes):  # worker nodes first, the head last
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in self.processes:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for p in self.processes:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
        for log in self._logs:
            log.close()
        shutil.rmtree(self.temp_root, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
