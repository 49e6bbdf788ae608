"""What the gateway answers: per-event results and request-level problems.

These models are the response schemas of the OpenAPI description too, so the
documentation cannot drift from what is sent.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EventStatus = Literal["accepted", "rejected", "ignored"]


class EventResult(BaseModel):
    """The outcome of one event of the request."""

    model_config = ConfigDict(frozen=True)

    index: int = Field(
        ge=0,
        description="Position of the event in the request (in a CRM webhook: of the item "
        "of the CRM's payload it was translated from).",
    )
    event_id: str | None = Field(
        default=None, description="The event's event_id, when it has a usable one."
    )
    status: EventStatus = Field(
        description="accepted: acknowledged by the broker; rejected: invalid, not published; "
        "ignored: a CRM notification salespulse has no event for."
    )
    reason: str | None = Field(
        default=None,
        description="Stable code for rejected and ignored events (schema_violation, "
        "unknown_type, out_of_range, unmapped_user, ...).",
    )
    detail: str | None = Field(default=None, description="Human-readable explanation.")
    type: str | None = Field(default=None, description="The event type, when known.")
    ref: str | None = Field(
        default=None,
        description="Where in a CRM webhook the event came from (e.g. leads[status][0]).",
    )


class IngestResponse(BaseModel):
    """Body of 200, 202, 207 and 422 answers."""

    model_config = ConfigDict(frozen=True)

    accepted: int = Field(ge=0, description="Events the broker acknowledged.")
    rejected: int = Field(ge=0, description="Events that were not published.")
    ignored: int = Field(ge=0, description="CRM notifications without a salespulse event.")
    results: list[EventResult]


class Problem(BaseModel):
    """Body of every other error answer (400, 401, 404, 413, 415, 503)."""

    model_config = ConfigDict(frozen=True)

    error: str = Field(description="Stable code, e.g. invalid_json, unauthorized, body_too_large.")
    detail: str = Field(description="Human-readable explanation.")
    results: list[EventResult] | None = Field(
        default=None,
        description="On 503: the events that would have been accepted; none of them may "
        "be assumed published, and repeating the request is safe (event ids dedupe).",
    )
