"""The worker's HTTP endpoint: /metrics, /healthz, /readyz.

It runs on the worker's own event loop. The state's families are written in
chunks (metrics.exposition), each sent before the next is made, so a large
scrape lets batches run in between instead of holding the loop for seconds;
a chunk is made between two batches and never sees half of one.

A client that accepts gzip (Prometheus always does) gets the exposition
gzip-compressed, still a chunk at a time: one compressor per response, fed
each chunk as it is made, finished at the end. A client that goes away
mid-scrape (``curl … | grep -q``) ends the scrape quietly.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Callable, Generator, Iterator

from aiohttp import hdrs, web
from mode import Service
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

StateChunks = Callable[[], Iterator[str]]

log = logging.getLogger(__name__)

# zlib level 1: the scrape is rendered and compressed on the worker's only event loop, so
# compressing must cost little next to rendering. Measured on a month of the simulated
# floor (`python -m bench.run --sections scrape`, 1,000 managers, 11 MB of text in 256 KiB
# chunks, rendered in 0.7-1.0 s): level 1 compresses 15x at 140-240 MB/s, 0.05-0.08 s;
# level 6 (zlib's default) 20x at 50-80 MB/s, 2.5-3x that; level 9 23x at 17-26 MB/s.
# At 10,000 managers (109 MB) level 1 adds about half a second to a 5.5-7 s scrape, level 6
# would add one and a half to two. A 1.3x smaller body is not worth that on the loop.
GZIP_LEVEL = 1
_GZIP_WBITS = 31  # 16 + 15: a gzip header and trailer around a deflate stream


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header value admits gzip (RFC 9110, 12.5.3): listed as
    ``gzip`` or ``x-gzip`` with a q above 0, or not listed and ``*`` with a q above 0."""
    listed: float | None = None
    wildcard: float | None = None
    for element in accept_encoding.split(","):
        coding, _, parameters = element.partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        quality = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0  # a q we cannot read is no consent
        if coding in ("gzip", "x-gzip"):
            listed = quality if listed is None else max(listed, quality)
        elif coding == "*":
            wildcard = quality
    if listed is not None:
        return listed > 0.0
    return wildcard is not None and wildcard > 0.0


def make_web_app(
    registry: CollectorRegistry, ready: Callable[[], bool], state: StateChunks | None = None
) -> web.Application:
    async def metrics(request: web.Request) -> web.StreamResponse:
        gzip = accepts_gzip(request.headers.get(hdrs.ACCEPT_ENCODING, ""))
        headers = {hdrs.CONTENT_TYPE: CONTENT_TYPE_LATEST, hdrs.VARY: hdrs.ACCEPT_ENCODING}
        if gzip:
            headers[hdrs.CONTENT_ENCODING] = "gzip"
        response = web.StreamResponse(headers=headers)
        compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, _GZIP_WBITS) if gzip else None

        async def send(data: bytes) -> None:
            if compressor is not None:
                data = compressor.compress(data)  # Z_NO_FLUSH: it emits what it has
            if data:  # the compressor may hold a small chunk back
                await response.write(data)

        chunks = state() if state is not None else iter(())
        try:
            await response.prepare(request)
            for chunk in chunks:
                await send(chunk.encode())
                await asyncio.sleep(0)  # let a batch run before the next chunk is made
            await send(generate_latest(registry))
            if compressor is not None:
                await response.write(compressor.flush())
            await response.write_eof()
        except ConnectionError:
            # aiohttp's ClientConnectionResetError (a ConnectionResetError) from a write
            # to a closed transport, or "Connection lost" from a write waiting to drain:
            # the client left (a scraper's timeout, `curl ... | grep -q`). Not an error of
            # ours; aiohttp would log it with a traceback if it got out of here.
            log.debug("/metrics: the client closed the connection mid-scrape")
        finally:
            if isinstance(chunks, Generator):
                chunks.close()  # the exposition's generator, not left to the collector
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
