"""What the CRM adapters share: the adapter interface, mapping files, ids and times.

An adapter turns the body a CRM posts into :class:`Candidate` events. It
never talks to the CRM: what the webhook does not carry, the event does not
get (docs/ingest.md lists what each CRM leaves out). CRM ids become
salespulse names through a TOML mapping file per adapter, loaded and
validated at start.
"""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from salespulse.ingest.validation import Candidate
from schemas.events import Text

M = TypeVar("M", bound=BaseModel)

_TEXT: TypeAdapter[str] = TypeAdapter(Text)

_PRINTABLE_ID = re.compile(r"^[^\x00-\x1f\x7f-\x9f]{1,128}$")


class PayloadError(ValueError):
    """The body is not what the CRM sends at all (answered 400)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class MappingError(ValueError):
    """A mapping file cannot be used; the message names the file and the field."""


class Adapter(Protocol):
    """Translates one CRM's webhook bodies into candidate contract events."""

    name: str
    content_types: tuple[str, ...]

    def translate(self, body: bytes) -> list[Candidate]:
        """Candidates in payload order; raises PayloadError for a body that is not the CRM's."""
        ...


def load_mapping(path: Path, model: type[M]) -> M:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MappingError(f"mapping file {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MappingError(f"mapping file {path}: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [f"mapping file {path} is invalid:"]
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "(top level)"
            lines.append(f"  {field}: {error['msg']}")
        raise MappingError("\n".join(lines)) from None


def stable_id(*parts: object) -> str:
    """An event id from the CRM's own identifiers: equal for a retried webhook.

    Readable when it fits the contract (1-128 printable characters), else the
    first part followed by a SHA-256 of the whole.
    """
    text = ":".join(str(part) for part in parts)
    if _PRINTABLE_ID.match(text):
        return text
    digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:48]
    return f"{str(parts[0])[:64]}:{digest}"


def from_epoch(seconds: float) -> str:
    """RFC 3339 (UTC) of a Unix time in seconds."""
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def parse_time(value: Any) -> str | None:
    """RFC 3339 of a CRM time: Unix seconds or milliseconds (number or digits), or ISO 8601.

    ISO times without an offset are taken as UTC (Pipedrive's API times are UTC).
    None when there is no usable time.
    """
    if isinstance(value, bool) or value is None:
        return None
    try:
        digits = isinstance(value, str) and re.fullmatch(r"\d{9,14}(\.\d+)?", value.strip())
        if isinstance(value, int | float | str) and (not isinstance(value, str) or digits):
            number = float(value)
        elif isinstance(value, str) and value.strip():
            parsed = datetime.fromisoformat(value.strip())
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            return parsed.isoformat()
        else:
            return None
        if number > 1e11:  # milliseconds
            number /= 1000
        return from_epoch(number)
    except (ValueError, OverflowError, OSError):
        return None


def id_text(value: Any) -> str | None:
    """A CRM identifier as text: integers and non-empty strings; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def task_text(value: Any) -> str | None:
    """A CRM task's text as the contract's description, or None when it does not fit.

    The description is optional: a text too long or with control characters is left
    out rather than costing the task itself, which the contract took before it had one.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return _TEXT.validate_python(value)
    except ValidationError:
        return None


def amount(value: Any) -> float | None:
    """A deal value as a finite number, or None when absent or not numeric."""
    if isinstance(value, bool) or value is None:
        return None
    number: float | None = None
    try:
        if isinstance(value, int | float):
            number = float(value)
        elif isinstance(value, str) and value.strip():
            number = float(value.strip())
    except (ValueError, OverflowError):
        return None
    return number if number is not None and math.isfinite(number) else None


def lookup(table: Mapping[str, str], key: str | None) -> str | None:
    return table.get(key) if key is not None else None
