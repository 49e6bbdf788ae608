"""The real importer, stopping itself (SIGSTOP) once its first window is acknowledged.

Run as ``python -m tests.support.pausing_importer FILE ...`` (from the repository
root) with the importer's arguments. A test that stalls the broker mid-import
waits for this process to stop, stops the broker, then lets the importer go on:
the importer is then certainly mid-import, with events still to send, whatever
the machine's speed. Watching the broker for the first events instead races an
import that can finish before the watcher has read a single message.
"""

from __future__ import annotations

import os
import signal

from salespulse.importer.__main__ import main
from salespulse.importer.publish import Progress

_update = Progress.update
_stopped: list[bool] = []


def _update_then_stop(self: Progress, done: int) -> None:
    if not _stopped:
        _stopped.append(True)
        os.kill(os.getpid(), signal.SIGSTOP)
    _update(self, done)


if __name__ == "__main__":
    Progress.update = _update_then_stop  # type: ignore[method-assign]
    raise SystemExit(main())
