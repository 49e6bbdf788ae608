"""promtool (Debian's `prometheus` package) for the tests that check rules and queries with it.

A missing promtool fails the test that needs it rather than skipping it, so a CI
image that lost the package cannot pass silently; SALESPULSE_ALLOW_MISSING_TOOLS=1
skips those tests on a workstation without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def require_promtool() -> str:
    """promtool's path; called from the test itself (a fixture would error, not fail)."""
    path = shutil.which("promtool")
    if path is None:
        message = (
            "promtool not found on PATH; install it with `apt-get install prometheus` "
            "(Debian) or set SALESPULSE_ALLOW_MISSING_TOOLS=1 to skip the tests that need it"
        )
        if os.environ.get("SALESPULSE_ALLOW_MISSING_TOOLS") == "1":
            pytest.skip(message)
        pytest.fail(message)
    return path


def run_promtool(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """promtool *args* from the repository root; its output, whatever its exit code."""
    return subprocess.run(
        [require_promtool(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO,
    )
