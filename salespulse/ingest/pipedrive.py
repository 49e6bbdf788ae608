"""Pipedrive webhooks (v2): deals created, moved, won and lost; activities as tasks.

Pipedrive posts one JSON object per change: ``meta`` (``action`` create,
change or delete; ``entity`` deal, activity, ...; ``id`` of the notification;
``timestamp``; ``company_id``), ``data`` (the object now) and ``previous``
(the fields the change altered). Translated:

- deal create -> ``deal.created`` (stage from ``stage_id``, ``org_id`` ->
  ``customer_id``; a deal created won
  or lost also gets a ``deal.stage_changed`` to the pipeline's won/lost stage)
- deal change of ``status`` to won or lost -> ``deal.stage_changed`` to the
  mapping's ``won_stage``/``lost_stage`` (Pipedrive's won and lost are statuses,
  not stages); back to open -> ``deal.stage_changed`` to its stage
- deal change of ``stage_id`` -> ``deal.stage_changed`` (``previous.stage_id`` ->
  ``from_stage``), with the deal's ``value`` as ``amount``
- activity create -> ``task.created`` (``type`` -> ``task_type``, ``due_date`` +
  ``due_time`` (UTC) -> ``due_at``; an activity without a time is due at the end
  of its day in the mapping's time zone); created done -> also ``task.completed``
- activity change of ``done`` to true -> ``task.completed``

The manager is the object's ``owner_id`` (``user_id`` in older payloads).
Deletions, other changes and other entities are answered as ``ignored``.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from salespulse.ingest.adapters import PayloadError, amount, id_text, parse_time, stable_id
from salespulse.ingest.validation import Candidate
from schemas.events import ManagerId, Name

SOURCE = "pipedrive"


class PipedrivePipeline(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Name = Field(description="The salespulse pipeline this Pipedrive pipeline is.")
    stages: dict[str, Name] = Field(
        default_factory=dict, description="Pipedrive stage id -> salespulse stage"
    )
    won_stage: Name = Field(default="won", description="Stage of a deal marked won.")
    lost_stage: Name = Field(default="lost", description="Stage of a deal marked lost.")


class PipedriveMapping(BaseModel):
    """The Pipedrive mapping file (see salespulse/ingest/mappings/pipedrive.example.toml)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    company_id: int | None = Field(default=None, description="Only webhooks of this company.")
    timezone: str = Field(default="UTC", description="Where all-day activities end their day.")
    users: dict[str, ManagerId] = Field(
        default_factory=dict, description="Pipedrive user id -> salespulse manager_id"
    )
    pipelines: dict[str, PipedrivePipeline] = Field(
        default_factory=dict, description="Pipedrive pipeline id -> pipeline and its stages"
    )
    task_types: dict[str, Name] = Field(
        default_factory=dict,
        description="Activity type key -> task_type; unlisted types are kept as they are",
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _user(data: dict[str, Any]) -> str | None:
    for name in ("owner_id", "user_id"):
        value = data.get(name)
        if isinstance(value, dict):  # v1 payloads nest the user
            value = value.get("id", value.get("value"))
        found = id_text(value)
        if found is not None:
            return found
    return None


class PipedriveAdapter:
    name = "pipedrive"
    content_types: tuple[str, ...] = ("application/json",)

    def __init__(self, mapping: PipedriveMapping) -> None:
        self.mapping = mapping
        self.zone = ZoneInfo(mapping.timezone)

    def translate(self, body: bytes) -> list[Candidate]:
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise PayloadError("invalid_json", f"the body is not JSON: {exc}") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("meta"), dict):
            raise PayloadError("not_pipedrive", "Pipedrive sends one object with meta and data")
        meta: dict[str, Any] = payload["meta"]
        data = payload.get("data")
        previous = payload.get("previous")
        previous = previous if isinstance(previous, dict) else {}
        action = meta.get("action")
        entity = meta.get("entity", meta.get("object"))
        ref = f"{entity}.{action}"[:100]
        version = str(meta.get("version", meta.get("v", "")))
        if not version.startswith("2"):
            return [
                Candidate.rejected(
                    0,
                    "unsupported_version",
                    f"webhooks version {version or '?'}; salespulse reads Pipedrive webhooks v2",
                    ref=ref,
                )
            ]
        company = id_text(meta.get("company_id"))
        if self.mapping.company_id is not None and company != str(self.mapping.company_id):
            return [
                Candidate.rejected(
                    0,
                    "unknown_account",
                    f"company {company} is not the mapped company {self.mapping.company_id}",
                    ref=ref,
                )
            ]
        notification = id_text(meta.get("id"))
        if notification is None:
            return [Candidate.rejected(0, "missing_field", "meta.id is missing", ref=ref)]
        if not isinstance(data, dict):
            return [
                Candidate.ignored(0, "not_translated", f"{ref} carries no data object", ref=ref)
            ]
        occurred_at = parse_time(meta.get("timestamp")) or parse_time(data.get("update_time"))
        context = _Context(company or "-", notification, ref, occurred_at, data, previous)
        if entity == "deal" and action == "create":
            return self._deal_created(context)
        if entity == "deal" and action == "change":
            return [self._deal_changed(context)]
        if entity == "activity" and action == "create":
            return self._activity_created(context)
        if entity == "activity" and action == "change":
            return [self._activity_changed(context)]
        return [Candidate.ignored(0, "not_translated", f"{ref} has no salespulse event", ref=ref)]

    # -- helpers -------------------------------------------------------------------

    def _base(
        self, context: _Context, index: int, event_type: str, suffix: str
    ) -> dict[str, Any] | Candidate:
        event_id = stable_id(SOURCE, context.company, context.notification, suffix)
        user = _user(context.data)
        manager = self.mapping.users.get(user) if user is not None else None
        if manager is None:
            detail = (
                f"Pipedrive user {user} is not in [users] of the mapping"
                if user is not None
                else "the object has no owner_id"
            )
            reason = "unmapped_user" if user is not None else "missing_field"
            return Candidate.rejected(
                index, reason, detail, ref=context.ref, event_id=event_id, type=event_type
            )
        if context.occurred_at is None:
            return Candidate.rejected(
                index,
                "missing_field",
                "meta.timestamp is not a time",
                ref=context.ref,
                event_id=event_id,
                type=event_type,
            )
        return {
            "event_id": event_id,
            "type": event_type,
            "occurred_at": context.occurred_at,
            "manager_id": manager,
            "source": SOURCE,
        }

    def _place(
        self, context: _Context, index: int, event_id: str, event_type: str, stage_id: Any
    ) -> tuple[PipedrivePipeline, str] | Candidate:
        pipeline_id = id_text(context.data.get("pipeline_id"))
        pipeline = self.mapping.pipelines.get(pipeline_id) if pipeline_id is not None else None
        if pipeline is None:
            return Candidate.rejected(
                index,
                "unmapped_pipeline",
                f"Pipedrive pipeline {pipeline_id} is not in [pipelines] of the mapping",
                ref=context.ref,
                event_id=event_id,
                type=event_type,
            )
        stage = id_text(stage_id)
        name = pipeline.stages.get(stage) if stage is not None else None
        if name is None:
            return Candidate.rejected(
                index,
                "unmapped_stage",
                f"Pipedrive stage {stage} of pipeline {pipeline_id} is not mapped",
                ref=context.ref,
                event_id=event_id,
                type=event_type,
            )
        return pipeline, name

    # -- deals ---------------------------------------------------------------------

    def _deal_created(self, context: _Context) -> list[Candidate]:
        deal = id_text(context.data.get("id"))
        if deal is None:
            return [Candidate.rejected(0, "missing_field", "the deal has no id", ref=context.ref)]
        base = self._base(context, 0, "deal.created", "created")
        if isinstance(base, Candidate):
            return [base]
        place = self._place(
            context, 0, base["event_id"], "deal.created", context.data.get("stage_id")
        )
        if isinstance(place, Candidate):
            return [place]
        pipeline, stage = place
        event = {**base, "deal_id": deal, "pipeline": pipeline.name, "stage": stage}
        value = amount(context.data.get("value"))
        if value is not None:
            event["amount"] = value
        customer = id_text(context.data.get("org_id"))
        if customer is not None:
            event["customer_id"] = customer
        created = Candidate(
            0, event, event_id=base["event_id"], type="deal.created", ref=context.ref
        )
        status = context.data.get("status")
        if status not in ("won", "lost"):
            return [created]
        closed_id = stable_id(SOURCE, context.company, context.notification, status)
        closed = {
            **base,
            "event_id": closed_id,
            "type": "deal.stage_changed",
            "deal_id": deal,
            "pipeline": pipeline.name,
            "from_stage": stage,
            "to_stage": pipeline.won_stage if status == "won" else pipeline.lost_stage,
        }
        if value is not None:
            closed["amount"] = value
        return [
            created,
            Candidate(1, closed, event_id=closed_id, type="deal.stage_changed", ref=context.ref),
        ]

    def _deal_changed(self, context: _Context) -> Candidate:
        data, previous = context.data, context.previous
        deal = id_text(data.get("id"))
        if deal is None:
            return Candidate.rejected(0, "missing_field", "the deal has no id", ref=context.ref)
        status = _text(data.get("status"))
        was = _text(previous.get("status"))
        status_changed = "status" in previous and was != status
        stage_changed = "stage_id" in previous and previous.get("stage_id") != data.get("stage_id")
        if not (status_changed or stage_changed):
            return Candidate.ignored(
                0, "not_translated", "a deal change of neither stage nor status", ref=context.ref
            )
        base = self._base(context, 0, "deal.stage_changed", "stage")
        if isinstance(base, Candidate):
            return base
        event_id = base["event_id"]
        place = self._place(context, 0, event_id, "deal.stage_changed", data.get("stage_id"))
        if isinstance(place, Candidate):
            return place
        pipeline, stage = place
        event = {**base, "deal_id": deal, "pipeline": pipeline.name}
        closing = {"won": pipeline.won_stage, "lost": pipeline.lost_stage}
        if status_changed and status in closing:
            event["to_stage"] = closing[status]
            event["from_stage"] = stage
        elif status_changed and was in closing:  # reopened
            event["to_stage"] = stage
            event["from_stage"] = closing[was]
        else:
            event["to_stage"] = stage
            before = pipeline.stages.get(id_text(previous.get("stage_id")) or "")
            if before is not None:
                event["from_stage"] = before
        value = amount(data.get("value"))
        if value is not None:
            event["amount"] = value
        return Candidate(0, event, event_id=event_id, type="deal.stage_changed", ref=context.ref)

    # -- activities ----------------------------------------------------------------

    def _due_at(self, data: dict[str, Any]) -> str | None:
        due_date = data.get("due_date")
        if not isinstance(due_date, str):
            return None
        try:
            day = date.fromisoformat(due_date.strip())
            due_time = data.get("due_time")
            if isinstance(due_time, str) and due_time.strip():
                clock = time.fromisoformat(due_time.strip())
                return datetime.combine(day, clock, tzinfo=UTC).isoformat()
            # No time: due by the end of that day where the company works.
            end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.zone)
            return (end - timedelta(seconds=1)).isoformat()
        except (ValueError, OverflowError):
            return None

    def _task_fields(self, data: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
        deal = id_text(data.get("deal_id"))
        if deal is not None:
            event["deal_id"] = deal
        return event

    def _activity_created(self, context: _Context) -> list[Candidate]:
        task = id_text(context.data.get("id"))
        if task is None:
            return [
                Candidate.rejected(0, "missing_field", "the activity has no id", ref=context.ref)
            ]
        base = self._base(context, 0, "task.created", "created")
        if isinstance(base, Candidate):
            return [base]
        due_at = self._due_at(context.data)
        if due_at is None:
            return [
                Candidate.rejected(
                    0,
                    "missing_field",
                    "due_date (YYYY-MM-DD) is missing or invalid",
                    ref=context.ref,
                    event_id=base["event_id"],
                    type="task.created",
                )
            ]
        kind = id_text(context.data.get("type")) or "task"
        task_type = self.mapping.task_types.get(kind, kind)
        event = self._task_fields(
            context.data, {**base, "task_id": task, "task_type": task_type, "due_at": due_at}
        )
        created = Candidate(
            0, event, event_id=base["event_id"], type="task.created", ref=context.ref
        )
        if context.data.get("done") is not True:
            return [created]
        done_id = stable_id(SOURCE, context.company, "activity", task, "done")
        done = self._task_fields(
            context.data,
            {**base, "event_id": done_id, "type": "task.completed", "task_id": task},
        )
        return [
            created,
            Candidate(1, done, event_id=done_id, type="task.completed", ref=context.ref),
        ]

    def _activity_changed(self, context: _Context) -> Candidate:
        data, previous = context.data, context.previous
        if not (
            "done" in previous and previous.get("done") is not True and data.get("done") is True
        ):
            return Candidate.ignored(
                0,
                "not_translated",
                "an activity change that does not mark it done",
                ref=context.ref,
            )
        task = id_text(data.get("id"))
        if task is None:
            return Candidate.rejected(0, "missing_field", "the activity has no id", ref=context.ref)
        base = self._base(context, 0, "task.completed", "done")
        if isinstance(base, Candidate):
            return base
        # One id per activity: marking it done, undone and done again completes it once.
        done_id = stable_id(SOURCE, context.company, "activity", task, "done")
        event = self._task_fields(data, {**base, "event_id": done_id, "task_id": task})
        return Candidate(0, event, event_id=done_id, type="task.completed", ref=context.ref)


class _Context:
    __slots__ = ("company", "data", "notification", "occurred_at", "previous", "ref")

    def __init__(
        self,
        company: str,
        notification: str,
        ref: str,
        occurred_at: str | None,
        data: dict[str, Any],
        previous: dict[str, Any],
    ) -> None:
        self.company = company
        self.notification = notification
        self.ref = ref
        self.occurred_at = occurred_at
        self.data = data
        self.previous = previous
