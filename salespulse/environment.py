"""Warnings about ``SALESPULSE_*`` variables that no setting reads.

The settings take from the environment only the names they know, so a
misspelt variable (``SALESPULSE_PARTITONS``) would be ignored without a word
and the default used instead. Each command warns at start about every
``SALESPULSE_`` name that nothing reads, with the closest known name.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from salespulse.ingest.config import IngestSettings
from salespulse.settings import Settings

PREFIX = "SALESPULSE_"
# Read by the development tools and the tests, not by the product's settings.
TOOLING = frozenset(
    {
        "SALESPULSE_VENV",  # ./dev: where the virtualenv lives
        "SALESPULSE_ALLOW_MISSING_TOOLS",  # ./dev test without Prometheus or Alertmanager
        "SALESPULSE_SHARED",  # the tests: where the public sample data lies
        "SALESPULSE_STATE_ENGINE",  # the unit tests: the engine of resting items
        "SALESPULSE_STRESS_LOAD",  # the stress tests
        "SALESPULSE_STRESS_ITERATIONS",
        "SALESPULSE_WALL_SCREENSHOT",  # the wall's browser test: where to save its picture
    }
)


def known_names() -> tuple[frozenset[str], tuple[str, ...]]:
    """Every variable a salespulse process reads, and the prefixes of nested ones
    (``SALESPULSE_KPI__MIN_WIN_RATE``: the common settings split names at ``__``)."""
    common = {f"{PREFIX}{name.upper()}" for name in Settings.model_fields}
    ingest = {f"SALESPULSE_INGEST_{name.upper()}" for name in IngestSettings.model_fields}
    nested = tuple(sorted(f"{name}__" for name in common))
    return frozenset(common | ingest | TOOLING), nested


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One warning for each ``SALESPULSE_`` variable in *environ* that nothing reads."""
    exact, nested = known_names()
    warnings = []
    for name in sorted(environ):
        if not name.upper().startswith(PREFIX) or name.upper() in exact:
            continue
        if name.upper().startswith(nested):
            continue  # a nested setting; the settings themselves check its field
        warnings.append(f"{name} is not a setting and is ignored{_suggestion(name, exact)}")
    return warnings


def _suggestion(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name.upper(), sorted(known), n=1, cutoff=0.8)
    return f" (did you mean {close[0]}?)" if close else ""
