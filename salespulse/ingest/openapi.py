"""The OpenAPI 3.1 description of the gateway, generated from the pydantic models.

The event schemas come from :mod:`schemas.events` (the contract), the
response schemas from :mod:`salespulse.ingest.models`, so neither can drift
from what the gateway validates and answers. Served at ``/openapi.json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic.json_schema import models_json_schema

from salespulse import __version__
from salespulse.ingest.models import IngestResponse, Problem
from schemas.events import EVENT_ADAPTER

if TYPE_CHECKING:
    from salespulse.ingest.config import IngestSettings

REF = "#/components/schemas/{model}"

_SECURITY_SCHEMES: dict[str, Any] = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "One of the tokens in SALESPULSE_INGEST_TOKENS.",
    },
    "signature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Salespulse-Signature",
        "description": "sha256=<hex HMAC-SHA256 of the raw body>, keyed with "
        "SALESPULSE_INGEST_HMAC_SECRET.",
    },
    "queryToken": {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "A token in the URL, for amoCRM, which cannot set headers.",
    },
    "hubspotSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-HubSpot-Signature-v3",
        "description": "HubSpot's v3 signature (with X-HubSpot-Request-Timestamp), keyed "
        "with SALESPULSE_INGEST_HUBSPOT_CLIENT_SECRET.",
    },
    "basicAuth": {
        "type": "http",
        "scheme": "basic",
        "description": "Pipedrive's webhook HTTP auth: any user name, a token as password.",
    },
}

_AMOCRM_FORM: dict[str, Any] = {
    "type": "object",
    "description": "amoCRM's form fields, e.g. leads[status][0][id], "
    "leads[status][0][status_id], leads[status][0][pipeline_id], "
    "leads[status][0][old_status_id], leads[status][0][responsible_user_id], "
    "leads[status][0][price], leads[status][0][last_modified], account[subdomain].",
    "additionalProperties": {"type": "string"},
}

_HUBSPOT_NOTIFICATION: dict[str, Any] = {
    "type": "object",
    "description": "One HubSpot webhook notification.",
    "properties": {
        "eventId": {"type": "integer"},
        "subscriptionId": {"type": "integer"},
        "portalId": {"type": "integer"},
        "appId": {"type": "integer"},
        "occurredAt": {"type": "integer", "description": "Unix time in milliseconds"},
        "subscriptionType": {"type": "string", "examples": ["deal.propertyChange"]},
        "attemptNumber": {"type": "integer"},
        "objectId": {"type": "integer"},
        "objectTypeId": {"type": "string"},
        "propertyName": {"type": "string", "examples": ["dealstage"]},
        "propertyValue": {"type": "string"},
        "changeSource": {"type": "string"},
        "sourceId": {"type": "string", "examples": ["userId:1234567"]},
    },
}

_PIPEDRIVE_WEBHOOK: dict[str, Any] = {
    "type": "object",
    "description": "One Pipedrive webhook (v2).",
    "required": ["meta"],
    "properties": {
        "meta": {
            "type": "object",
            "properties": {
                "action": {"type": "string", "enum": ["create", "change", "delete"]},
                "entity": {"type": "string", "examples": ["deal", "activity"]},
                "id": {"type": "string"},
                "company_id": {"type": ["string", "integer"]},
                "timestamp": {"type": ["string", "integer"]},
                "version": {"type": "string", "examples": ["2.0"]},
            },
        },
        "data": {"type": ["object", "null"]},
        "previous": {"type": ["object", "null"]},
    },
}


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


def _responses(*, webhook: bool) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "202": {
            "description": "Every event accepted and acknowledged by the broker "
            "(CRM notifications without a salespulse event may be ignored).",
            "content": _json("IngestResponse"),
        },
        "207": {
            "description": "Some events accepted (acknowledged by the broker), some rejected.",
            "content": _json("IngestResponse"),
        },
        "400": {
            "description": "Not JSON (not the CRM's format), or neither an object nor an array.",
            "content": _json("Problem"),
        },
        "401": {
            "description": "Missing or invalid credentials.",
            "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
            "content": _json("Problem"),
        },
        "413": {
            "description": "The body is larger than max_body_bytes, or has more events "
            "than max_batch_events.",
            "content": _json("Problem"),
        },
        "415": {"description": "Wrong Content-Type.", "content": _json("Problem")},
        "422": {
            "description": "No event accepted: every one is invalid (reasons per event).",
            "content": _json("IngestResponse"),
        },
        "503": {
            "description": "The broker is not connected or did not acknowledge in time; "
            "repeat the request after Retry-After seconds (event ids make that safe).",
            "headers": {"Retry-After": {"schema": {"type": "string"}}},
            "content": _json("Problem"),
        },
    }
    if webhook:
        responses["200"] = {
            "description": "Nothing to publish: only notifications salespulse has no event "
            "for (ignored).",
            "content": _json("IngestResponse"),
        }
        responses["404"] = {
            "description": "This adapter has no mapping file configured.",
            "content": _json("Problem"),
        }
    return dict(sorted(responses.items()))


def _text(description: str, *codes: str) -> dict[str, Any]:
    return {
        code: {
            "description": description,
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
        for code in codes
    }


def build_openapi(ingest: IngestSettings) -> dict[str, Any]:
    event = EVENT_ADAPTER.json_schema(ref_template=REF, mode="validation")
    schemas: dict[str, Any] = dict(event.pop("$defs", {}))
    schemas["Event"] = {
        **event,
        "description": "One contract event (see CONTRACT.md); its type chooses the fields.",
    }
    _, responses = models_json_schema(
        [(IngestResponse, "serialization"), (Problem, "serialization")], ref_template=REF
    )
    schemas.update(responses.get("$defs", {}))
    schemas["EventBatch"] = {
        "type": "array",
        "minItems": 1,
        "maxItems": ingest.max_batch_events,
        "description": "Up to max_batch_events events; each item is validated as an Event on "
        "its own and answered in results by its index, so one invalid item does not fail "
        "the others.",
        "items": {},
    }
    schemas["AmoCrmWebhook"] = _AMOCRM_FORM
    schemas["HubSpotWebhook"] = {"type": "array", "items": _HUBSPOT_NOTIFICATION}
    schemas["PipedriveWebhook"] = _PIPEDRIVE_WEBHOOK

    def post(
        summary: str,
        media: str,
        schema: dict[str, Any],
        security: list[str],
        *,
        webhook: bool,
    ) -> dict[str, Any]:
        return {
            "post": {
                "summary": summary,
                "security": [{name: []} for name in ["bearerAuth", "signature", *security]],
                "requestBody": {"required": True, "content": {media: {"schema": schema}}},
                "responses": _responses(webhook=webhook),
            }
        }

    paths: dict[str, Any] = {
        "/v1/events": post(
            "Publish one contract event or a batch of them",
            "application/json",
            {
                "oneOf": [
                    {"$ref": "#/components/schemas/Event"},
                    {"$ref": "#/components/schemas/EventBatch"},
                ]
            },
            [],
            webhook=False,
        ),
        "/v1/webhooks/amocrm": post(
            "amoCRM (Kommo) webhook",
            "application/x-www-form-urlencoded",
            {"$ref": "#/components/schemas/AmoCrmWebhook"},
            ["queryToken"],
            webhook=True,
        ),
        "/v1/webhooks/hubspot": post(
            "HubSpot webhook",
            "application/json",
            {"$ref": "#/components/schemas/HubSpotWebhook"},
            ["hubspotSignature"],
            webhook=True,
        ),
        "/v1/webhooks/pipedrive": post(
            "Pipedrive webhook (v2)",
            "application/json",
            {"$ref": "#/components/schemas/PipedriveWebhook"},
            ["basicAuth"],
            webhook=True,
        ),
        "/metrics": {
            "get": {
                "summary": "The gateway's Prometheus metrics",
                "security": [],
                "responses": _text("Prometheus text exposition.", "200"),
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness",
                "security": [],
                "responses": _text("The process is alive.", "200"),
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: 200 once connected to the broker, 503 before",
                "security": [],
                "responses": _text("Connected (200) or not (503).", "200", "503"),
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This description",
                "security": [],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "salespulse ingest",
            "version": __version__,
            "description": "Contract events and CRM webhooks in; Kafka records out. A 202 "
            "means the broker acknowledged every accepted event.",
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": _SECURITY_SCHEMES,
        },
    }
