"""JSON Schema export of the event contract, one file per event type.

The files in ``schemas/json/`` are what integrators read; they are committed,
and a test regenerates them in memory and fails on any drift from the models.
"""

from __future__ import annotations

import json
from pathlib import Path

from schemas.events import EVENT_MODELS

SCHEMA_DIR = Path(__file__).parent / "json"
SCHEMA_BASE_URI = "urn:salespulse:event:"


def render_schemas() -> dict[str, str]:
    """File name -> JSON text for every event type, deterministic byte for byte."""
    rendered: dict[str, str] = {}
    for event_type, model in sorted(EVENT_MODELS.items()):
        schema = model.model_json_schema(mode="validation")
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"{SCHEMA_BASE_URI}{event_type}",
            **schema,
            "title": event_type,
        }
        rendered[f"{event_type}.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return rendered


def export_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema into *directory*, removing stale files of dropped types."""
    directory.mkdir(parents=True, exist_ok=True)
    rendered = render_schemas()
    for stale in directory.glob("*.json"):
        if stale.name not in rendered:
            stale.unlink()
    written = []
    for name, text in rendered.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
