"""``salespulse ingest``: an HTTP gateway for contract events and CRM webhooks.

``POST /v1/events`` takes contract events; ``POST /v1/webhooks/{amocrm,hubspot,
pipedrive}`` take what those CRMs send and translate it. Accepted events are
published to their topics keyed by ``manager_id`` and answered 202 only once
the broker has acknowledged them. See docs/ingest.md.

This module stays light (argparse only) so the CLI can build its parser
without importing the gateway.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_ingest_arguments", "ingest_command"]


def add_ingest_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``salespulse ingest``; flags beat SALESPULSE_INGEST_* environment variables."""
    parser.add_argument("--config", help="TOML configuration file (env SALESPULSE_CONFIG)")
    parser.add_argument("--broker", help="kafka://host:port (env SALESPULSE_BROKER)")
    parser.add_argument("--host", help="listen address (env SALESPULSE_INGEST_HOST, 0.0.0.0)")
    parser.add_argument("--port", type=int, help="listen port (env SALESPULSE_INGEST_PORT, 9830)")
    parser.add_argument(
        "--amocrm-mapping", type=Path, help="amoCRM mapping file (SALESPULSE_INGEST_AMOCRM_MAPPING)"
    )
    parser.add_argument(
        "--hubspot-mapping",
        type=Path,
        help="HubSpot mapping file (SALESPULSE_INGEST_HUBSPOT_MAPPING)",
    )
    parser.add_argument(
        "--pipedrive-mapping",
        type=Path,
        help="Pipedrive mapping file (SALESPULSE_INGEST_PIPEDRIVE_MAPPING)",
    )
    parser.add_argument("--log-level", help="debug, info, warning, error")


def ingest_command(args: argparse.Namespace) -> int:
    """Run the gateway until SIGTERM or Ctrl-C; returns the exit code (2: configuration)."""
    from salespulse.ingest.server import run_command

    return run_command(args)
