"""A real salespulse worker with dedupe switched off, to prove the chaos suite can fail.

Run as ``python -m tests.support.broken_worker`` (from the repository root) with
the usual SALESPULSE_* environment: every event id counts as never seen
before, so a re-sent event is applied a second time.
"""

from __future__ import annotations

import sys

from salespulse.cli import main
from schemas.events import Event
from streams.processor import Processor
from streams.repository import Manager


def _never_seen(self: Processor, state: Manager, event: Event, day: int) -> bool:
    return False


def run() -> int:
    Processor._seen = _never_seen  # type: ignore[method-assign]
    return main(["worker"])


if __name__ == "__main__":
    sys.exit(run())
