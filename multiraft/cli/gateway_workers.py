"""`multiraft redis --workers N`: N gateway processes on one port.

The command runs itself again N times with a hidden `--worker` flag; each
worker listens with SO_REUSEPORT and keeps its own cluster connections.
Their Prometheus metrics meet in prometheus_client's multiprocess mode (a
directory of memory-mapped files, named by PROMETHEUS_MULTIPROC_DIR before
the workers start), and this process serves the sum on --metrics-addr. A
worker that exits ends the gateway: the others are stopped and its exit
status returned, for whatever supervises the gateway to act on.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import time

log = logging.getLogger("multiraft.gateway")

STOP_TIMEOUT = 10.0
POLL = 0.2


def supervise(workers: int, metrics_addr: str | None) -> int:
    """Run `workers` copies of this command as workers until a signal or
    until one of them exits; the exit status."""
    with tempfile.TemporaryDirectory(prefix="multiraft-gateway-metrics-") as metrics_dir:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
        argv = [sys.executable, "-m", "multiraft.cli.main", *sys.argv[1:], "--worker"]
        procs = [subprocess.Popen(argv, env=env) for _ in range(workers)]
        try:
            if metrics_addr is not None:
                _serve_metrics(metrics_addr, metrics_dir)
            return _wait(procs)
        finally:
            _stop(procs)


def _serve_metrics(addr: str, metrics_dir: str) -> None:
    """Serve the workers' metrics, summed, on `addr`."""
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=metrics_dir)
    host, _, port = addr.rpartition(":")
    start_http_server(int(port), host, registry)


def _wait(procs: list[subprocess.Popen[bytes]]) -> int:
    stopping: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        stopping.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    while not stopping:
        for p in procs:
            if p.poll() is not None:
                log.error("gateway worker %d exited with status %d: stopping", p.pid, p.returncode)
                return p.returncode or 1
        time.sleep(POLL)
    return 0


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every worker, SIGKILL what outlives STOP_TIMEOUT."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
