"""A Ray address probed before `ray.init`: a wrong `--address` fails in seconds with one line, instead of
Ray's minutes of reconnect warnings.

Example:
    >>> host_port("ray://head:10001"), host_port("10.0.0.5:6379"), host_port("auto")
    (('head', 10001), ('10.0.0.5', 6379), None)
"""

from __future__ import annotations

import socket
from urllib.parse import urlparse

from sweetspot.search.config import ConfigError

PROBE_TIMEOUT_S = 3.0


def host_port(address: str) -> tuple[str, int] | None:
    """The TCP endpoint an address names (`HOST:PORT`, `ray://HOST:PORT`, `http(s)://HOST:PORT`); None for
    `auto` and `local`, which name no endpoint."""
    if address in ("auto", "local"):
        return None
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    if not parsed.hostname:
        raise ConfigError(f"--address {address}: not HOST:PORT, ray://HOST:PORT, or auto")
    try:
        port = parsed.port
    except ValueError:
        port = None
    if port is None:
        raise ConfigError(f"--address {address}: no port (HOST:PORT, e.g. 10.0.0.5:6379 or ray://head:10001)")
    return parsed.hostname, port


def probe(address: str, *, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Raises ConfigError naming the address when nothing answers there within `timeout` seconds;
    `auto` must find a cluster started on this machine (`ray start`)."""
    endpoint = host_port(address)
    if endpoint is None:
        if address == "auto":
            from ray._private.services import find_bootstrap_address

            found = find_bootstrap_address(None)
            if not found:
                raise ConfigError(
                    "--address auto: no Ray cluster started on this machine (`ray start --head`, or --address HOST:PORT)"
                )
            endpoint = host_port(found if isinstance(found, str) else sorted(found)[0])
        else:
            return
    try:
        with socket.create_connection(endpoint, timeout=timeout):
            pass
    except OSError as e:
        why = "no answer" if isinstance(e, TimeoutError) else (e.strerror or str(e)).lower()
        raise ConfigError(
            f"--address {address}: cannot reach {endpoint[0]}:{endpoint[1]} ({why} within {timeout:g} s); "
            f"is the cluster up (`ray status`)?"
        ) from None
