"""Starting Ray for a search: embedded and sized to this machine when no address is given (listening on
loopback only), or joining a running cluster (`--address auto`, `ray://…`, or `RAY_ADDRESS`)."""

from __future__ import annotations

import contextlib
import os

from sweetspot.search.config import ConfigError


def usable_cpus(cgroup: str | os.PathLike = "/sys/fs/cgroup") -> int:
    """The CPUs this process may use: the CPUs it may run on (its affinity), capped by a container's
    CPU quota (cgroup v2 `cpu.max`, or v1 `cpu/cpu.cfs_quota_us` over `cfs_period_us`) rounded down,
    and at least 1. `os.cpu_count()` counts the host's CPUs: in a 2-CPU container on a 64-core host
    it would start 32 trials at once.

    >>> usable_cpus("/nonexistent") == len(os.sched_getaffinity(0))
    True
    """
    from pathlib import Path

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    root = Path(cgroup)
    quota = period = None
    try:
        fields = (root / "cpu.max").read_text().split()
        if fields and fields[0] != "max":
            quota, period = float(fields[0]), float(fields[1])
    except (OSError, ValueError, IndexError):
        try:
            quota = float((root / "cpu" / "cpu.cfs_quota_us").read_text())
            period = float((root / "cpu" / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            pass
    if quota is not None and period and quota > 0:
        cpus = min(cpus, int(quota // period))
    return max(1, cpus)


def init_ray(address: str | None, dashboard: bool, quiet: bool = False) -> None:
    """`quiet` (sweetspot's console): the trials' own output and Ray's start-up lines stay in Ray's logs."""
    import logging

    import ray

    if ray.is_initialized():
        return
    where = f"--address {address}" if address else f"RAY_ADDRESS={os.environ.get('RAY_ADDRESS')}"
    address = address or os.environ.get("RAY_ADDRESS")
    shown = {"log_to_driver": not quiet, "logging_level": logging.ERROR if quiet else logging.INFO}
    if address:
        try:
            ray.init(address=address, **shown)
        except (ConnectionError, ray.exceptions.AuthenticationError) as e:
            raise ConfigError(f"{where}: cannot join the Ray cluster: {_join_failure(e)}") from None
    else:  # embedded local Ray, sized to this machine
        # address="local": a new instance even when a `ray start` cluster runs on this machine
        # (ray.init() without an address would join it).
        # The dashboard's processes take CPU from the trials (measured: ~5% of a 2-core machine's
        # training throughput), so a local run starts it only when asked.
        _loopback_only()
        with _own_address():
            ray.init(address="local", num_cpus=usable_cpus(), include_dashboard=dashboard, **shown)


@contextlib.contextmanager
def _own_address():
    """While the embedded Ray starts: its GCS on a free port chosen here, and RAY_ADDRESS naming it, which
    the processes Ray starts (and every worker they start) inherit. Inside a trial, Ray code that looks
    for "the" cluster (Ray Train's placement-group cleaner asks the state API with no address) then
    finds this one; with another Ray on the machine it would stop at "Found multiple active Ray
    instances". The driver's own environment is restored after the start."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    saved = {name: os.environ.get(name) for name in ("RAY_ADDRESS", "RAY_GCS_SERVER_PORT")}
    os.environ.update({"RAY_GCS_SERVER_PORT": str(port), "RAY_ADDRESS": f"127.0.0.1:{port}"})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _loopback_only() -> None:
    """Makes the embedded Ray listen on 127.0.0.1 only. On Linux, Ray takes this machine's
    routable address as the node's and its gRPC servers (GCS, raylet, workers, agents) listen on
    every interface: anyone on the network could reach them. With Ray's single-machine mode
    (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, its default on macOS and Windows) the node's address is
    127.0.0.1 and every server listens there. Ray reads the setting when it is imported (this
    driver already has), hence the constant too; the processes it starts read the environment."""
    import ray._private.ray_constants as ray_constants

    os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False


def _join_failure(error: BaseException) -> str:
    """Why `ray.init(address=…)` failed, in one line. A token the cluster refuses reaches us only as
    text inside a RuntimeError inside the ConnectionError; a missing token as an AuthenticationError."""
    import ray

    chain: list[BaseException] = []
    while error is not None and error not in chain:
        chain.append(error)
        error = error.__cause__ or error.__context__
    hint = "a cluster with token authentication needs RAY_AUTH_MODE=token and its token in ~/.ray/auth_token or $RAY_AUTH_TOKEN"
    for e in chain:
        if isinstance(e, ray.exceptions.AuthenticationError):
            return f"{str(e).split('. ')[0]} ({hint})"
    if any("InvalidAuthToken" in str(e) for e in chain):
        return f"the cluster refused this client's token, or it got none ({hint})"
    return str(chain[0]).splitlines()[0]
