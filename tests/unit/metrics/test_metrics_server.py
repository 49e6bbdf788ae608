"""The /metrics endpoint: gzip when the client accepts it, streamed chunk by chunk, and a
client that leaves mid-scrape ends the scrape without an error in the log."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import itertools
import logging
import socket
import struct
import zlib
from collections.abc import Iterator

import pytest
from aiohttp import hdrs, web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from metrics.server import accepts_gzip, make_web_app

# Several chunks, the way metrics.exposition hands them out; not all ASCII.
CHUNKS = [
    "# HELP salespulse_x_total A family.\n# TYPE salespulse_x_total counter\n",
    *(
        "".join(
            f'salespulse_x_total{{manager="m-{chunk:02d}{line:04d}",name="Zoë Müller"}} '
            f"{chunk * line}.0\n"
            for line in range(2000)
        )
        for chunk in range(5)
    ),
]


def registry_with_a_counter() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("salespulse_test_scrapes", "A worker-level metric.", registry=registry).inc(3)
    return registry


def expected_text(registry: CollectorRegistry) -> bytes:
    return "".join(CHUNKS).encode() + generate_latest(registry)


def app_with(registry: CollectorRegistry) -> web.Application:
    return make_web_app(registry, lambda: True, lambda: iter(CHUNKS))


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("gzip", True),
        ("gzip, deflate", True),
        ("deflate, gzip;q=0.5", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("*", True),
        ("gzip;q=1.0, identity; q=0.5, *;q=0", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("gzip;q=0, *", False),
        ("*;q=0", False),
        ("identity", False),
        ("deflate, br", False),
        ("", False),
        ("gzip;q=nonsense", False),
    ],
)
def test_accept_encoding(header: str, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted


async def test_gzip_when_accepted_decompresses_to_exactly_the_plain_text() -> None:
    registry = registry_with_a_counter()
    async with TestClient(TestServer(app_with(registry)), auto_decompress=False) as client:
        zipped = await client.get("/metrics", headers={hdrs.ACCEPT_ENCODING: "gzip"})
        assert zipped.status == 200
        assert zipped.headers[hdrs.CONTENT_ENCODING] == "gzip"
        assert zipped.headers[hdrs.CONTENT_TYPE] == CONTENT_TYPE_LATEST
        assert hdrs.ACCEPT_ENCODING in zipped.headers[hdrs.VARY]
        body = await zipped.read()
        plain = await client.get("/metrics", headers={hdrs.ACCEPT_ENCODING: "identity"})
        text = await plain.read()
    assert text == expected_text(registry)
    assert gzip.decompress(body) == text
    assert len(body) * 5 < len(text)
    # One gzip member, nothing after it.
    stream = zlib.decompressobj(31)
    assert stream.decompress(body) == text
    assert stream.eof
    assert stream.unused_data == b""


@pytest.mark.parametrize("header", [None, "identity", "gzip;q=0", "deflate", "*;q=0"])
async def test_plain_text_when_gzip_is_not_accepted(header: str | None) -> None:
    registry = registry_with_a_counter()
    async with TestClient(TestServer(app_with(registry)), auto_decompress=False) as client:
        if header is None:
            response = await client.get("/metrics", skip_auto_headers=[hdrs.ACCEPT_ENCODING])
        else:
            response = await client.get("/metrics", headers={hdrs.ACCEPT_ENCODING: header})
        assert response.status == 200
        assert hdrs.CONTENT_ENCODING not in response.headers
        assert await response.read() == expected_text(registry)


@pytest.mark.parametrize("encoding", ["gzip", "identity"])
async def test_each_chunk_is_made_after_the_loop_ran_again(encoding: str) -> None:
    """Chunks are made one at a time, with the event loop running between them."""
    ticks = 0
    seen: list[int] = []

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    def chunks() -> Iterator[str]:
        for chunk in CHUNKS:
            seen.append(ticks)
            yield chunk

    app = make_web_app(CollectorRegistry(), lambda: True, chunks)
    running = asyncio.create_task(ticker())
    try:
        async with TestClient(TestServer(app), auto_decompress=False) as client:
            response = await client.get("/metrics", headers={hdrs.ACCEPT_ENCODING: encoding})
            body = await response.read()
    finally:
        running.cancel()
    text = gzip.decompress(body) if encoding == "gzip" else body
    assert text == "".join(CHUNKS).encode()
    assert len(seen) == len(CHUNKS)
    assert all(later > earlier for earlier, later in itertools.pairwise(seen))


@pytest.mark.parametrize("how", ["close", "reset"])
@pytest.mark.parametrize("encoding", ["gzip", "identity"])
async def test_a_client_leaving_mid_scrape_logs_no_error(
    encoding: str, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    """As `curl -s .../metrics | grep -q ...` does: read the start, then close (or reset)."""
    caplog.set_level(logging.DEBUG)
    made = 0
    closed = asyncio.Event()
    incompressible = zlib.compress(bytes(range(256)) * 512, 0).hex()  # about 256 KiB of text

    def chunks() -> Iterator[str]:
        nonlocal made
        try:
            for _ in range(10_000):  # 2.6 GB: far more than a closed socket takes
                made += 1
                yield incompressible
        finally:
            closed.set()

    app = make_web_app(registry_with_a_counter(), lambda: True, chunks)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        request = f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: {encoding}\r\n"
        writer.write(request.encode() + b"\r\n")
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(100_000)
        if how == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closed.wait(), timeout=10)
    finally:
        writer.transport.abort()  # already closed, unless the test failed on the way
        await runner.cleanup()  # waits for the handler to be done
    assert head.startswith(b"HTTP/1.1 200")
    assert (b"Content-Encoding: gzip" in head) is (encoding == "gzip")
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert problems == [], [r.getMessage() for r in problems]
    ours = [r for r in caplog.records if r.name == "metrics.server"]
    assert len(ours) <= 1
    assert closed.is_set()  # the scrape ended, and closed its generator
    assert made < 10_000


@pytest.mark.parametrize("how", ["close", "reset"])
async def test_a_client_closing_right_after_its_request_logs_no_error(
    how: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that sends GET /metrics and closes at once, before the answer starts;
    the next scrape is answered as usual."""
    caplog.set_level(logging.DEBUG)
    registry = registry_with_a_counter()
    runner = web.AppRunner(app_with(registry), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        for _ in range(20):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            if how == "reset":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)
        writer.close()
    finally:
        await runner.cleanup()  # waits for the handlers to be done
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"salespulse_test_scrapes_total 3.0" in body
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert problems == [], [r.getMessage() for r in problems]
    debug_lines = [r for r in caplog.records if r.name == "metrics.server"]
    assert all(r.levelno == logging.DEBUG for r in debug_lines)
