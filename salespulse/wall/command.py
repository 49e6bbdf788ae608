"""The command line of ``salespulse wall``."""

from __future__ import annotations

import argparse
import asyncio
import logging

from salespulse.wall.server import DEFAULT_PORT, WINDOWS, serve_wall


def add_wall_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        action="append",
        help="a worker's /metrics (repeat for several workers; default localhost:9820)",
    )
    parser.add_argument(
        "--prometheus", help="Prometheus base URL: read the recording rules and alerts instead"
    )
    parser.add_argument("--host", default="0.0.0.0", help="address to serve on (default all)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port of the page")
    parser.add_argument("--window", choices=WINDOWS, default="week")
    parser.add_argument("--refresh", type=float, default=10.0, help="seconds between refreshes")


def wall_command(args: argparse.Namespace) -> int:
    if args.url and args.prometheus:
        print("salespulse wall: --url and --prometheus exclude each other")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")

    async def main() -> None:
        runner = await serve_wall(
            urls=args.url,
            prometheus=args.prometheus,
            host=args.host,
            port=args.port,
            window=args.window,
            refresh=args.refresh,
        )
        source = args.prometheus or ", ".join(args.url or ["http://localhost:9820/metrics"])
        shown = "localhost" if args.host in ("0.0.0.0", "::") else args.host
        print(f"salespulse wall on http://{shown}:{args.port}/ reading {source}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())
    return 0
