"""amoCRM (Kommo) webhooks: leads added and moved, tasks added and completed.

amoCRM posts ``application/x-www-form-urlencoded`` bodies whose keys spell a
nested structure, ``leads[status][0][status_id]=142``: entity (``leads``,
``task``, ``contacts``, ...), action (``add``, ``status``, ``update``, ...),
index, field. Translated:

- ``leads[add][i]`` -> ``deal.created`` (stage from ``pipeline_id``/``status_id``)
- ``leads[status][i]`` -> ``deal.stage_changed`` (``old_status_id`` -> ``from_stage``)
- ``task[add][i]`` -> ``task.created`` (``complete_till`` -> ``due_at``, ``text`` ->
  ``description``)
- ``task[update][i]`` with ``status`` 1 -> ``task.completed``

Everything else is answered as ``ignored``. The manager is the lead's or
task's ``responsible_user_id``. amoCRM's webhooks carry no product, channel or
segment (those live in account-specific custom fields), so deals arrive
without them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field

from salespulse.ingest.adapters import (
    PayloadError,
    amount,
    id_text,
    lookup,
    parse_time,
    stable_id,
    task_text,
)
from salespulse.ingest.validation import Candidate
from schemas.events import ManagerId, Name

SOURCE = "amocrm"
MAX_FIELDS = 20_000
WON_STATUS, LOST_STATUS = "142", "143"  # amoCRM's fixed ids, the same in every pipeline
TASK_ELEMENT_LEAD = "2"


class AmoPipeline(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Name = Field(description="The salespulse pipeline this amoCRM pipeline is.")
    stages: dict[str, Name] = Field(
        default_factory=dict, description="amoCRM status id -> salespulse stage"
    )


class AmoMapping(BaseModel):
    """The amoCRM mapping file (see salespulse/ingest/mappings/amocrm.example.toml)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subdomain: str | None = Field(
        default=None, description="Only webhooks of this account (account[subdomain])."
    )
    users: dict[str, ManagerId] = Field(
        default_factory=dict, description="amoCRM user id -> salespulse manager_id"
    )
    pipelines: dict[str, AmoPipeline] = Field(
        default_factory=dict, description="amoCRM pipeline id -> pipeline and its statuses"
    )
    statuses: dict[str, Name] = Field(
        default_factory=lambda: {WON_STATUS: "won", LOST_STATUS: "lost"},
        description="Status ids that mean the same stage in every pipeline (142 won, 143 lost)",
    )
    task_types: dict[str, Name] = Field(
        default_factory=lambda: {"1": "call", "2": "meeting", "3": "email"},
        description="amoCRM task type id -> salespulse task_type (1, 2, 3 are amoCRM's own)",
    )


def expand_form(body: bytes) -> dict[str, Any]:
    """``a[b][0][c]=v`` pairs as nested dicts (indices stay string keys)."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(
            text, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FIELDS
        )
    except UnicodeDecodeError as exc:
        raise PayloadError("invalid_encoding", f"the body is not UTF-8: {exc}") from None
    except ValueError as exc:
        raise PayloadError("invalid_form", f"the form cannot be read: {exc}") from None
    root: dict[str, Any] = {}
    for key, value in pairs:
        head, _, rest = key.partition("[")
        parts = [head] + ([p for p in rest.rstrip("]").split("][")] if rest else [])
        node = root
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise PayloadError("invalid_form", f"field {key!r} nests under a value")
            node = child
        if isinstance(node.get(parts[-1]), dict):
            raise PayloadError("invalid_form", f"field {key!r} overwrites a structure")
        node[parts[-1]] = value
    return root


def _indexed(group: Any) -> Iterator[tuple[str, Any]]:
    if not isinstance(group, dict):
        return

    def order(key: str) -> tuple[bool, int, str]:
        number = key.isascii() and key.isdigit() and len(key) <= 18
        return (not number, int(key) if number else 0, key)

    for position in sorted(group, key=order):
        yield position, group[position]


class AmoCrmAdapter:
    name = "amocrm"
    content_types: tuple[str, ...] = ("application/x-www-form-urlencoded",)

    def __init__(self, mapping: AmoMapping) -> None:
        self.mapping = mapping

    def translate(self, body: bytes) -> list[Candidate]:
        payload = expand_form(body)
        account = payload.get("account")
        account = account if isinstance(account, dict) else {}
        subdomain = id_text(account.get("subdomain"))
        account_key = subdomain or id_text(account.get("id")) or "-"
        if not any(isinstance(value, dict) for value in payload.values()):
            raise PayloadError(
                "not_amocrm", "the form has no entity[action][index][field] keys of amoCRM"
            )
        candidates: list[Candidate] = []
        for entity, actions in payload.items():
            if entity == "account" or not isinstance(actions, dict):
                continue
            for action, entries in actions.items():
                for position, entry in _indexed(entries):
                    index = len(candidates)
                    ref = f"{entity}[{action}][{position}]"[:100]
                    if not isinstance(entry, dict):
                        candidates.append(
                            Candidate.rejected(
                                index, "schema_violation", "not a structure", ref=ref
                            )
                        )
                        continue
                    candidates.append(
                        self._one(index, ref, entity, action, entry, account_key, subdomain)
                    )
        return candidates

    def _one(
        self,
        index: int,
        ref: str,
        entity: str,
        action: str,
        entry: dict[str, Any],
        account_key: str,
        subdomain: str | None,
    ) -> Candidate:
        if self.mapping.subdomain is not None and subdomain != self.mapping.subdomain:
            return Candidate.rejected(
                index,
                "unknown_account",
                f"account {subdomain!r} is not the mapped account {self.mapping.subdomain!r}",
                ref=ref,
            )
        kind = (entity, action)
        if kind == ("leads", "add"):
            return self._deal_created(index, ref, entry, account_key)
        if kind == ("leads", "status"):
            return self._stage_changed(index, ref, entry, account_key)
        if kind == ("task", "add"):
            return self._task_created(index, ref, entry, account_key)
        if kind == ("task", "update"):
            return self._task_update(index, ref, entry, account_key)
        return Candidate.ignored(
            index, "not_translated", f"amoCRM {entity}[{action}] has no salespulse event", ref=ref
        )

    # -- helpers -------------------------------------------------------------------

    def _manager(self, entry: dict[str, Any]) -> tuple[str | None, str]:
        user = id_text(entry.get("responsible_user_id"))
        if user is None:
            return None, "responsible_user_id is missing"
        manager = self.mapping.users.get(user)
        if manager is None:
            return None, f"amoCRM user {user} is not in [users] of the mapping"
        return manager, ""

    def _stage(self, pipeline_id: str | None, status_id: str | None) -> tuple[str, str] | None:
        pipeline = self.mapping.pipelines.get(pipeline_id) if pipeline_id is not None else None
        if pipeline is None or status_id is None:
            return None
        stage = lookup(pipeline.stages, status_id) or lookup(self.mapping.statuses, status_id)
        return (pipeline.name, stage) if stage is not None else None

    def _common(
        self,
        index: int,
        ref: str,
        entry: dict[str, Any],
        event_id: str,
        event_type: str,
        time_fields: tuple[str, ...],
    ) -> dict[str, Any] | Candidate:
        manager, why = self._manager(entry)
        if manager is None:
            reason = "unmapped_user" if "not in" in why else "missing_field"
            return Candidate.rejected(
                index, reason, why, ref=ref, event_id=event_id, type=event_type
            )
        occurred_at = next(
            (t for t in (parse_time(entry.get(f)) for f in time_fields) if t is not None), None
        )
        if occurred_at is None:
            return Candidate.rejected(
                index,
                "missing_field",
                f"none of {', '.join(time_fields)} is a Unix time",
                ref=ref,
                event_id=event_id,
                type=event_type,
            )
        return {
            "event_id": event_id,
            "type": event_type,
            "occurred_at": occurred_at,
            "manager_id": manager,
            "source": SOURCE,
        }

    def _unmapped_stage(
        self, index: int, ref: str, entry: dict[str, Any], event_id: str, event_type: str
    ) -> Candidate:
        pipeline_id = id_text(entry.get("pipeline_id"))
        status_id = id_text(entry.get("status_id"))
        if pipeline_id is None or status_id is None:
            return Candidate.rejected(
                index,
                "missing_field",
                "pipeline_id or status_id is missing",
                ref=ref,
                event_id=event_id,
                type=event_type,
            )
        if pipeline_id not in self.mapping.pipelines:
            return Candidate.rejected(
                index,
                "unmapped_pipeline",
                f"amoCRM pipeline {pipeline_id} is not in [pipelines] of the mapping",
                ref=ref,
                event_id=event_id,
                type=event_type,
            )
        return Candidate.rejected(
            index,
            "unmapped_stage",
            f"amoCRM status {status_id} of pipeline {pipeline_id} is not mapped",
            ref=ref,
            event_id=event_id,
            type=event_type,
        )

    # -- translations --------------------------------------------------------------

    def _deal_created(self, index: int, ref: str, entry: dict[str, Any], account: str) -> Candidate:
        lead = id_text(entry.get("id"))
        if lead is None:
            return Candidate.rejected(index, "missing_field", "the lead has no id", ref=ref)
        event_id = stable_id(SOURCE, account, "lead", lead, "created")
        base = self._common(
            index,
            ref,
            entry,
            event_id,
            "deal.created",
            ("date_create", "created_at", "last_modified", "updated_at"),
        )
        if isinstance(base, Candidate):
            return base
        place = self._stage(id_text(entry.get("pipeline_id")), id_text(entry.get("status_id")))
        if place is None:
            return self._unmapped_stage(index, ref, entry, event_id, "deal.created")
        event = {**base, "deal_id": lead, "pipeline": place[0], "stage": place[1]}
        value = amount(entry.get("price"))
        if value is not None:
            event["amount"] = value
        return Candidate(index, event, event_id=event_id, type="deal.created", ref=ref)

    def _stage_changed(
        self, index: int, ref: str, entry: dict[str, Any], account: str
    ) -> Candidate:
        lead = id_text(entry.get("id"))
        if lead is None:
            return Candidate.rejected(index, "missing_field", "the lead has no id", ref=ref)
        status_id = id_text(entry.get("status_id"))
        old_status = id_text(entry.get("old_status_id"))
        changed_at = id_text(entry.get("last_modified")) or id_text(entry.get("updated_at"))
        event_id = stable_id(
            SOURCE, account, "lead", lead, "status", old_status or "", status_id or "", changed_at
        )
        base = self._common(
            index, ref, entry, event_id, "deal.stage_changed", ("last_modified", "updated_at")
        )
        if isinstance(base, Candidate):
            return base
        pipeline_id = id_text(entry.get("pipeline_id"))
        place = self._stage(pipeline_id, status_id)
        if place is None:
            return self._unmapped_stage(index, ref, entry, event_id, "deal.stage_changed")
        event = {**base, "deal_id": lead, "pipeline": place[0], "to_stage": place[1]}
        old_pipeline = id_text(entry.get("old_pipeline_id")) or pipeline_id
        previous = self._stage(old_pipeline, old_status)
        if previous is not None and previous[0] == place[0]:
            event["from_stage"] = previous[1]
        value = amount(entry.get("price"))
        if value is not None:
            event["amount"] = value
        return Candidate(index, event, event_id=event_id, type="deal.stage_changed", ref=ref)

    def _task_common(self, entry: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
        if id_text(entry.get("element_type")) == TASK_ELEMENT_LEAD:
            deal = id_text(entry.get("element_id"))
            if deal is not None:
                event["deal_id"] = deal
        return event

    def _task_created(self, index: int, ref: str, entry: dict[str, Any], account: str) -> Candidate:
        task = id_text(entry.get("id"))
        if task is None:
            return Candidate.rejected(index, "missing_field", "the task has no id", ref=ref)
        event_id = stable_id(SOURCE, account, "task", task, "created")
        base = self._common(
            index,
            ref,
            entry,
            event_id,
            "task.created",
            ("date_create", "created_at", "last_modified", "updated_at"),
        )
        if isinstance(base, Candidate):
            return base
        due_at = parse_time(entry.get("complete_till")) or parse_time(entry.get("complete_till_at"))
        if due_at is None:
            return Candidate.rejected(
                index,
                "missing_field",
                "complete_till is not a Unix time",
                ref=ref,
                event_id=event_id,
                type="task.created",
            )
        type_id = id_text(entry.get("task_type")) or id_text(entry.get("task_type_id"))
        task_type = lookup(self.mapping.task_types, type_id)
        if task_type is None:
            return Candidate.rejected(
                index,
                "unmapped_task_type",
                f"amoCRM task type {type_id} is not in [task_types] of the mapping",
                ref=ref,
                event_id=event_id,
                type="task.created",
            )
        event = self._task_common(
            entry, {**base, "task_id": task, "task_type": task_type, "due_at": due_at}
        )
        description = task_text(entry.get("text"))
        if description is not None:
            event["description"] = description
        return Candidate(index, event, event_id=event_id, type="task.created", ref=ref)

    def _task_update(self, index: int, ref: str, entry: dict[str, Any], account: str) -> Candidate:
        completed = str(entry.get("status", entry.get("is_completed", ""))).lower()
        if completed not in ("1", "true"):
            return Candidate.ignored(
                index, "not_translated", "a task update that does not complete the task", ref=ref
            )
        task = id_text(entry.get("id"))
        if task is None:
            return Candidate.rejected(index, "missing_field", "the task has no id", ref=ref)
        # One id per task: later edits of a completed task repeat the same event.
        event_id = stable_id(SOURCE, account, "task", task, "completed")
        base = self._common(
            index, ref, entry, event_id, "task.completed", ("last_modified", "updated_at")
        )
        if isinstance(base, Candidate):
            return base
        event = self._task_common(entry, {**base, "task_id": task})
        return Candidate(index, event, event_id=event_id, type="task.completed", ref=ref)
