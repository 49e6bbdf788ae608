"""HubSpot webhooks: deal stage changes and deal creations.

HubSpot posts a JSON array of notifications (up to 100), each with
``eventId``, ``subscriptionType``, ``objectId``, ``occurredAt`` (ms),
``portalId`` and, for property changes, ``propertyName``/``propertyValue``,
signed with ``X-HubSpot-Signature-v3``. Translated:

- ``deal.propertyChange`` of ``dealstage`` (also the generic
  ``object.propertyChange`` of a deal, ``objectTypeId`` 0-3) ->
  ``deal.stage_changed``; the new stage id maps to pipeline and stage.
- ``deal.creation`` -> ``deal.created`` in the pipeline and first stage the
  mapping's ``[deal_creation]`` names (the notification carries no properties).

A notification names no deal owner: the manager is the HubSpot user who made
the change (``sourceId`` ``userId:<id>``), or the mapping's
``default_manager`` for changes by workflows, imports and integrations. It
carries neither the previous stage nor the amount, so ``from_stage`` and
``amount`` stay unset. Everything else is answered as ``ignored``.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from salespulse.ingest.adapters import PayloadError, id_text, parse_time, stable_id
from salespulse.ingest.validation import Candidate
from schemas.events import ManagerId, Name

SOURCE = "hubspot"
DEAL_OBJECT_TYPE = "0-3"
STAGE_PROPERTY = "dealstage"


class HubSpotStage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    pipeline: Name = "default"
    stage: Name


class HubSpotMapping(BaseModel):
    """The HubSpot mapping file (see salespulse/ingest/mappings/hubspot.example.toml)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    portal_id: int | None = Field(default=None, description="Only notifications of this portal.")
    users: dict[str, ManagerId] = Field(
        default_factory=dict, description="HubSpot user id (sourceId userId:<id>) -> manager_id"
    )
    default_manager: ManagerId | None = Field(
        default=None, description="Manager of changes made by no user (workflows, imports)."
    )
    stages: dict[str, HubSpotStage] = Field(
        default_factory=dict, description="dealstage internal value -> pipeline and stage"
    )
    deal_creation: HubSpotStage | None = Field(
        default=None, description="Pipeline and first stage of deal.creation notifications."
    )


class HubSpotAdapter:
    name = "hubspot"
    content_types: tuple[str, ...] = ("application/json",)

    def __init__(self, mapping: HubSpotMapping) -> None:
        self.mapping = mapping

    def translate(self, body: bytes) -> list[Candidate]:
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise PayloadError("invalid_json", f"the body is not JSON: {exc}") from None
        if isinstance(payload, dict):
            payload = [payload]
        if not isinstance(payload, list):
            raise PayloadError("not_hubspot", "HubSpot sends a JSON array of notifications")
        return [self._one(index, item) for index, item in enumerate(payload)]

    def _one(self, index: int, item: Any) -> Candidate:
        if not isinstance(item, dict):
            return Candidate.rejected(index, "not_an_object", "a notification must be an object")
        subscription = item.get("subscriptionType")
        ref = f"eventId {item.get('eventId')}"[:100]
        portal = id_text(item.get("portalId"))
        if self.mapping.portal_id is not None and portal != str(self.mapping.portal_id):
            return Candidate.rejected(
                index,
                "unknown_account",
                f"portal {portal} is not the mapped portal {self.mapping.portal_id}",
                ref=ref,
            )
        is_deal_change = subscription == "deal.propertyChange" or (
            subscription == "object.propertyChange"
            and str(item.get("objectTypeId")) == DEAL_OBJECT_TYPE
        )
        if is_deal_change and item.get("propertyName") == STAGE_PROPERTY:
            return self._stage_changed(index, ref, item, portal)
        if subscription == "deal.creation" or (
            subscription == "object.creation" and str(item.get("objectTypeId")) == DEAL_OBJECT_TYPE
        ):
            return self._deal_created(index, ref, item, portal)
        what = subscription if isinstance(subscription, str) else "this notification"
        if is_deal_change:
            what = f"a change of deal property {item.get('propertyName')!r}"
        return Candidate.ignored(
            index, "not_translated", f"{what} has no salespulse event"[:500], ref=ref
        )

    def _base(
        self, index: int, ref: str, item: dict[str, Any], portal: str | None, event_type: str
    ) -> dict[str, Any] | Candidate:
        deal = id_text(item.get("objectId"))
        event_id = stable_id(
            SOURCE,
            portal or "-",
            item.get("eventId"),
            item.get("subscriptionType"),
            deal,
            item.get("occurredAt"),
        )
        if deal is None:
            return Candidate.rejected(
                index,
                "missing_field",
                "objectId is missing",
                ref=ref,
                event_id=event_id,
                type=event_type,
            )
        occurred_at = parse_time(item.get("occurredAt"))
        if occurred_at is None:
            return Candidate.rejected(
                index,
                "missing_field",
                "occurredAt is not a time in milliseconds",
                ref=ref,
                event_id=event_id,
                type=event_type,
            )
        source_id = item.get("sourceId")
        user = None
        if isinstance(source_id, str) and source_id.startswith("userId:"):
            user = source_id.removeprefix("userId:").strip()
        manager = self.mapping.users.get(user) if user else None
        if manager is None:
            manager = self.mapping.default_manager
        if manager is None:
            detail = (
                f"HubSpot user {user} is not in [users] of the mapping"
                if user
                else f"the change was made by {source_id!r}, no user, and the mapping has "
                "no default_manager"
            )
            return Candidate.rejected(
                index, "unmapped_user", detail[:500], ref=ref, event_id=event_id, type=event_type
            )
        return {
            "event_id": event_id,
            "type": event_type,
            "occurred_at": occurred_at,
            "manager_id": manager,
            "source": SOURCE,
            "deal_id": deal,
        }

    def _stage_changed(
        self, index: int, ref: str, item: dict[str, Any], portal: str | None
    ) -> Candidate:
        base = self._base(index, ref, item, portal, "deal.stage_changed")
        if isinstance(base, Candidate):
            return base
        value = id_text(item.get("propertyValue"))
        place = self.mapping.stages.get(value) if value is not None else None
        if place is None:
            return Candidate.rejected(
                index,
                "unmapped_stage",
                f"HubSpot deal stage {value!r} is not in [stages] of the mapping"[:500],
                ref=ref,
                event_id=base["event_id"],
                type="deal.stage_changed",
            )
        event = {**base, "pipeline": place.pipeline, "to_stage": place.stage}
        return Candidate(index, event, event_id=base["event_id"], type=event["type"], ref=ref)

    def _deal_created(
        self, index: int, ref: str, item: dict[str, Any], portal: str | None
    ) -> Candidate:
        creation = self.mapping.deal_creation
        if creation is None:
            return Candidate.ignored(
                index,
                "not_translated",
                "deal.creation carries no stage; the mapping has no [deal_creation]",
                ref=ref,
            )
        base = self._base(index, ref, item, portal, "deal.created")
        if isinstance(base, Candidate):
            return base
        event = {**base, "pipeline": creation.pipeline, "stage": creation.stage}
        return Candidate(index, event, event_id=base["event_id"], type=event["type"], ref=ref)
