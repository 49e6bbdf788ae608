"""Running the gateway: ``salespulse ingest``.

The HTTP server starts at once; the producer connects in the background, and
until it has, ``/readyz`` answers 503 and so does every POST. SIGTERM and
Ctrl-C stop accepting connections, let requests in flight finish (each waits
at most ``publish_timeout_seconds`` for the broker), then flush and stop the
producer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Mapping

from aiohttp import web
from prometheus_client import CollectorRegistry

from salespulse.ingest.adapters import Adapter, MappingError, load_mapping
from salespulse.ingest.amocrm import AmoCrmAdapter, AmoMapping
from salespulse.ingest.app import Gateway
from salespulse.ingest.config import IngestSettings, IngestSettingsError, load_ingest_settings
from salespulse.ingest.hubspot import HubSpotAdapter, HubSpotMapping
from salespulse.ingest.pipedrive import PipedriveAdapter, PipedriveMapping
from salespulse.ingest.publisher import KafkaPublisher
from salespulse.settings import ConfigurationError, Settings, load_settings

log = logging.getLogger("salespulse.ingest")


def load_adapters(ingest: IngestSettings) -> dict[str, Adapter]:
    """The adapters whose mapping files are configured; MappingError names a bad file."""
    adapters: dict[str, Adapter] = {}
    if ingest.amocrm_mapping is not None:
        adapters["amocrm"] = AmoCrmAdapter(load_mapping(ingest.amocrm_mapping, AmoMapping))
    if ingest.hubspot_mapping is not None:
        adapters["hubspot"] = HubSpotAdapter(load_mapping(ingest.hubspot_mapping, HubSpotMapping))
    if ingest.pipedrive_mapping is not None:
        adapters["pipedrive"] = PipedriveAdapter(
            load_mapping(ingest.pipedrive_mapping, PipedriveMapping)
        )
    return adapters


class RunningGateway:
    """The gateway on a port, with its producer; for the command and for tests."""

    def __init__(
        self,
        settings: Settings,
        ingest: IngestSettings,
        *,
        registry: CollectorRegistry | None = None,
        adapters: Mapping[str, Adapter] | None = None,
    ) -> None:
        self.publisher = KafkaPublisher(settings, ingest)
        self.registry = registry if registry is not None else CollectorRegistry()
        self.gateway = Gateway(
            settings,
            ingest,
            self.publisher,
            self.registry,
            adapters if adapters is not None else load_adapters(ingest),
        )
        self.ingest = ingest
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        await self.publisher.start()
        self._runner = web.AppRunner(
            self.gateway.app(),
            access_log=None,  # the amoCRM token travels in the URL: keep URLs out of logs
            shutdown_timeout=self.ingest.publish_timeout_seconds + 5,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.ingest.host, self.ingest.port, reuse_address=True)
        await site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()  # stops accepting, lets requests in flight finish
            self._runner = None
        await self.publisher.stop()


def run_command(args: argparse.Namespace) -> int:
    """Run the gateway until SIGTERM or Ctrl-C; the exit code (2: configuration)."""
    try:
        settings = load_settings(
            config=getattr(args, "config", None),
            broker=getattr(args, "broker", None),
            log_level=getattr(args, "log_level", None),
        )
        ingest = load_ingest_settings(
            host=getattr(args, "host", None),
            port=getattr(args, "port", None),
            amocrm_mapping=getattr(args, "amocrm_mapping", None),
            hubspot_mapping=getattr(args, "hubspot_mapping", None),
            pipedrive_mapping=getattr(args, "pipedrive_mapping", None),
        )
        adapters = load_adapters(ingest)
    except (ConfigurationError, IngestSettingsError, MappingError) as exc:
        print(f"salespulse: {exc}", file=sys.stderr)
        return 2
    if settings.broker is None:
        print(
            "salespulse: ingest needs a broker (--broker or SALESPULSE_BROKER), the one the "
            "workers consume",
            file=sys.stderr,
        )
        return 2
    if not ingest.has_credentials:
        print(
            "salespulse: ingest admits no request without credentials: set "
            "SALESPULSE_INGEST_TOKENS, SALESPULSE_INGEST_HMAC_SECRET or "
            "SALESPULSE_INGEST_HUBSPOT_CLIENT_SECRET",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return asyncio.run(_serve(settings, ingest, adapters))
    except KeyboardInterrupt:
        return 130


async def _serve(settings: Settings, ingest: IngestSettings, adapters: dict[str, Adapter]) -> int:
    running = RunningGateway(settings, ingest, adapters=adapters)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await running.start()
    except OSError as exc:
        print(f"salespulse: cannot listen on {ingest.host}:{ingest.port}: {exc}", file=sys.stderr)
        await running.stop()
        return 1
    log.info(
        "ingest on http://%s:%d (adapters: %s)",
        ingest.host,
        ingest.port,
        ", ".join(sorted(adapters)) or "none",
    )
    try:
        await stop.wait()
    finally:
        await running.stop()
    return 0
