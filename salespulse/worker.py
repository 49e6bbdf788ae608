"""Running one processing worker, with or without an embedded broker."""

from __future__ import annotations

import asyncio
import socket
import sys
from datetime import UTC, datetime

import faust
from prometheus_client import CollectorRegistry

from metrics.exposition import StateExposition
from metrics.health import HealthCollector
from metrics.server import MetricsServer
from salespulse.broker import broker_url
from salespulse.settings import Settings
from salespulse.topics import BrokerUnavailableError, ensure_topics, partition_mismatch
from streams.app import build_app

# The embedded broker makes a joining consumer wait out the session timeout; with
# one local worker a short one costs nothing and makes the demo ready in seconds.
EMBEDDED_GROUP_TIMING = {"session_timeout_seconds": 6.0, "heartbeat_interval_seconds": 1.0}


def run_worker(settings: Settings) -> int:
    """Block until the worker stops (Ctrl-C, SIGTERM); returns the exit code."""
    embedded = settings.broker is None
    with broker_url(settings.broker) as url:
        update: dict[str, object] = {"broker": url}
        if embedded:
            update.update(
                {
                    name: value
                    for name, value in EMBEDDED_GROUP_TIMING.items()
                    if name not in settings.model_fields_set
                }
            )
        return _run(settings.model_copy(update=update))


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _run(settings: Settings) -> int:
    if not _port_free(settings.metrics_host, settings.metrics_port):
        print(
            f"salespulse: port {settings.metrics_port} on {settings.metrics_host} is in use; "
            "choose another with --metrics-port or SALESPULSE_METRICS_PORT",
            file=sys.stderr,
        )
        return 1
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        counts = loop.run_until_complete(ensure_topics(settings))
    except BrokerUnavailableError as exc:
        print(f"salespulse: {exc}", file=sys.stderr)
        return 1
    mismatch = partition_mismatch(settings, counts)
    if mismatch is not None:
        print(f"salespulse: {mismatch}", file=sys.stderr)
        return 1
    runtime = build_app(settings)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HealthCollector(runtime))
    exposition = StateExposition(settings)
    server = MetricsServer(
        registry,
        runtime.ready,
        settings.metrics_host,
        settings.metrics_port,
        state=lambda: exposition.chunks(runtime.records(), datetime.now(UTC)),
    )
    worker = faust.Worker(runtime.app, server, loglevel=settings.log_level, loop=loop)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int | None) else 1
    return 0
