"""The event contract as pydantic models (see CONTRACT.md, "Events in").

Upstream systems are held to these models byte for byte: every message on a
CRM topic is validated against them before it may touch any number, and the
JSON Schemas published to integrators are generated from them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, TypeAlias

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    model_validator,
)

# Identifiers end up in logs, headers and dedupe keys: printable text only (no C0/C1
# control characters), and at least one character that is not white space.
_CONTROL = r"\x00-\x1f\x7f-\x9f"
_PRINTABLE = rf"^[^{_CONTROL}]*[^\s{_CONTROL}][^{_CONTROL}]*$"

EventId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=_PRINTABLE)]
ManagerId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=_PRINTABLE)]
EntityId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=_PRINTABLE)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=_PRINTABLE)]
OptionalLabel = Annotated[str, StringConstraints(max_length=64, pattern=rf"^[^{_CONTROL}]*$")]
# A trillion-scale cap keeps sums of amounts finite and catches unit mistakes (cents * 1e6).
Money = Annotated[float, Field(ge=0, le=1e15, allow_inf_nan=False)]
Seconds = Annotated[float, Field(ge=0, le=7 * 86400, allow_inf_nan=False)]
# Free text a manager writes (a task's description): line breaks and tabs allowed, other
# control characters not. Bounded so that the largest event stays well under MAX_EVENT_BYTES
# (4,000 characters are at most 16 KB of UTF-8, ten links at most 20 KB).
_TEXT_CONTROL = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
Text = Annotated[str, StringConstraints(max_length=4000, pattern=rf"^[^{_TEXT_CONTROL}]*$")]
# An absolute http(s) URL with a host, no white space or control characters; kept as the
# sender wrote it (not normalised), since it is only ever checked, never followed.
Link = Annotated[
    str,
    StringConstraints(max_length=2048, pattern=rf"^https?://[^\s/?#{_CONTROL}]+[^\s{_CONTROL}]*$"),
]
MAX_TASK_LINKS = 10

EARLIEST_EVENT_TIME = datetime.fromisoformat("2000-01-01T00:00:00+00:00")
# The largest message an event may be: larger ones are rejected as too_large.
MAX_EVENT_BYTES = 64 * 1024


class _Event(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        strict=True,
        str_strip_whitespace=False,
    )

    event_id: EventId = Field(description="Unique per event; a repeat is a duplicate.")
    occurred_at: AwareDatetime = Field(
        description="RFC 3339 timestamp with a UTC offset; naive times are rejected."
    )
    manager_id: ManagerId = Field(description="The manager the event belongs to.")
    source: OptionalLabel | None = Field(default=None, description="The sending system.")

    @model_validator(mode="after")
    def _not_before_2000(self) -> _Event:
        if self.occurred_at < EARLIEST_EVENT_TIME:
            raise ValueError("occurred_at is before 2000-01-01, which no CRM event can be")
        return self


class DealCreated(_Event):
    type: Literal["deal.created"]
    deal_id: EntityId
    pipeline: Name = "default"
    stage: Name = Field(description="The first stage of the deal.")
    amount: Money | None = None
    product: OptionalLabel | None = None
    channel: OptionalLabel | None = None
    segment: OptionalLabel | None = None
    customer_id: EntityId | None = Field(
        default=None, description="The customer (account, company) the deal is with."
    )


class DealStageChanged(_Event):
    type: Literal["deal.stage_changed"]
    deal_id: EntityId
    pipeline: Name = "default"
    to_stage: Name
    from_stage: Name | None = None
    amount: Money | None = Field(default=None, description="The deal value at that moment.")


class TaskCreated(_Event):
    type: Literal["task.created"]
    task_id: EntityId
    task_type: Name = Field(description="e.g. call, meeting, proposal")
    due_at: AwareDatetime
    deal_id: EntityId | None = None
    stage: Name | None = None
    description: Text | None = Field(
        default=None,
        description="What the manager is to do, as written in the CRM; never stored in "
        "state nor exported.",
    )
    links: Annotated[tuple[Link, ...], Field(max_length=MAX_TASK_LINKS)] | None = Field(
        default=None,
        description="Links the task refers to (a script, the deal card); never stored in "
        "state nor exported.",
    )


class TaskCompleted(_Event):
    type: Literal["task.completed"]
    task_id: EntityId
    deal_id: EntityId | None = None


class TaskOverdue(_Event):
    type: Literal["task.overdue"]
    task_id: EntityId


class CallEnded(_Event):
    type: Literal["call.ended"]
    call_id: EntityId
    direction: Literal["inbound", "outbound"]
    duration_seconds: Seconds
    answered: bool | None = Field(
        default=None, description="Default: true when duration_seconds > 0."
    )
    deal_id: EntityId | None = None

    @property
    def was_answered(self) -> bool:
        return self.answered if self.answered is not None else self.duration_seconds > 0


Event: TypeAlias = Annotated[
    DealCreated | DealStageChanged | TaskCreated | TaskCompleted | TaskOverdue | CallEnded,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

EVENT_MODELS: dict[str, type[_Event]] = {
    "deal.created": DealCreated,
    "deal.stage_changed": DealStageChanged,
    "task.created": TaskCreated,
    "task.completed": TaskCompleted,
    "task.overdue": TaskOverdue,
    "call.ended": CallEnded,
}

# Which topic family each type belongs on; the topic names themselves are settings.
TOPIC_OF_TYPE: dict[str, Literal["deals", "tasks", "calls"]] = {
    "deal.created": "deals",
    "deal.stage_changed": "deals",
    "task.created": "tasks",
    "task.completed": "tasks",
    "task.overdue": "tasks",
    "call.ended": "calls",
}
