"""The worker's HTTP endpoint: /metrics, /healthz, /readyz.

It runs on the worker's own event loop. The state's families are written in
chunks (metrics.exposition), each sent before the next is made, so a large
scrape lets batches run in between instead of holding the loop for seconds;
a chunk is made between two batches and never sees half of one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

from aiohttp import web
from mode import Service
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

StateChunks = Callable[[], Iterator[str]]


def make_web_app(
    registry: CollectorRegistry, ready: Callable[[], bool], state: StateChunks | None = None
) -> web.Application:
    async def metrics(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE_LATEST})
        await response.prepare(request)
        if state is not None:
            for chunk in state():
                await response.write(chunk.encode())
                await asyncio.sleep(0)  # let a batch run before the next chunk is made
        await response.write(generate_latest(registry))
        await response.write_eof()
        return response

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        if ready():
            return web.Response(text="ready\n")
        return web.Response(status=503, text="recovering state or rebalancing\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


class MetricsServer(Service):
    """Serves the endpoint for as long as the worker runs."""

    def __init__(
        self,
        registry: CollectorRegistry,
        ready: Callable[[], bool],
        host: str,
        port: int,
        state: StateChunks | None = None,
    ) -> None:
        self._web_app = make_web_app(registry, ready, state)
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        super().__init__()

    async def on_start(self) -> None:
        self._runner = web.AppRunner(self._web_app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, reuse_address=True)
        await site.start()
        self.log.info("metrics on http://%s:%d/metrics", self._host, self._port)

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
