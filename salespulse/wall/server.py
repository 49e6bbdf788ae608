"""The wall's web server: the page at ``/``, its numbers at ``/data.json``.

One read of the source serves every screen polling within half a refresh
interval, so ten TVs do not mean ten scrapes of every worker. A source that
cannot be read gives ``{"error": ...}`` with status 200: the page keeps the
last numbers it had and says since when, instead of going blank.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from salespulse.wall.page import render
from salespulse.wall.sources import PrometheusSource, Source, WorkersSource

log = logging.getLogger(__name__)
WINDOWS = ("day", "week", "month")
DEFAULT_PORT = 9840


class Wall:
    """The page and its cached snapshots, one per calendar window."""

    def __init__(self, source: Source, window: str = "week", refresh: float = 10.0) -> None:
        self.source = source
        self.window = window
        self.refresh = refresh
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = asyncio.Lock()

    async def snapshot(self, window: str) -> dict[str, Any]:
        async with self._lock:
            cached = self._cache.get(window)
            if cached and time.monotonic() - cached[0] < self.refresh / 2:
                return cached[1]
            try:
                data = await self.source.read(window)
            except Exception as exc:  # any failure of the source is shown, not raised
                log.warning("wall: cannot read the numbers: %s", exc)
                return {"error": f"{type(exc).__name__}: {exc}", "window": window}
            self._cache[window] = (time.monotonic(), data)
            return data

    async def page(self, _: web.Request) -> web.Response:
        return web.Response(text=render(self.refresh), content_type="text/html")

    async def data(self, request: web.Request) -> web.Response:
        window = request.query.get("window", self.window)
        if window not in WINDOWS:
            raise web.HTTPBadRequest(text=f"window must be one of {', '.join(WINDOWS)}")
        return web.json_response(await self.snapshot(window))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.page)
        app.router.add_get("/data.json", self.data)
        return app


def source_for(urls: Sequence[str] | None, prometheus: str | None) -> Source:
    """A Prometheus when given one, else the workers' /metrics."""
    if prometheus:
        return PrometheusSource(prometheus)
    return WorkersSource(urls or ["http://localhost:9820/metrics"])


async def serve_wall(
    *,
    urls: Sequence[str] | None = None,
    prometheus: str | None = None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    window: str = "week",
    refresh: float = 10.0,
) -> web.AppRunner:
    """Start the wall in the running event loop; ``await runner.cleanup()`` stops it.

    For a process that already runs an event loop (the demo): the page is then at
    ``http://{host}:{port}/``.
    """
    wall = Wall(source_for(urls, prometheus), window, refresh)
    runner = web.AppRunner(wall.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True).start()
    return runner
