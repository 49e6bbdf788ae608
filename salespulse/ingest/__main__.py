"""``python -m salespulse.ingest``: the gateway without the ``salespulse`` command."""

from __future__ import annotations

import argparse
import sys

from salespulse.ingest import add_ingest_arguments, ingest_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="salespulse ingest",
        description="HTTP gateway: contract events and CRM webhooks in, Kafka records out.",
    )
    add_ingest_arguments(parser)
    return ingest_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
