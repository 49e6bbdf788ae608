"""The HTTP gateway: contract events and CRM webhooks in, Kafka records out.

Every POST goes the same way, and fails at the first step that fails:

1. credentials from headers (or the URL) -> 401, unless a body signature
   remains to be checked;
2. content type -> 415;
3. ``Content-Length`` over ``max_body_bytes`` -> 413, before the body is read
   (with ``Expect: 100-continue`` before the client even sends it); a body
   without a length is read up to the limit and no further -> 413;
4. body signature (``X-Salespulse-Signature``, ``X-HubSpot-Signature-v3``) -> 401;
5. the body: not JSON / not the CRM's format -> 400; more than
   ``max_batch_events`` events -> 413;
6. each event validated as the worker's intake does it;
7. the accepted events published, acknowledged by the broker -> 202 (all
   accepted), 207 (some accepted, some rejected), 422 (none accepted, some
   rejected), 200 (nothing to publish: only ignored CRM notifications); the
   broker not acknowledging within ``publish_timeout_seconds``, or not
   connected -> 503 with ``Retry-After``, and repeating the request is safe.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import hdrs, web
from aiohttp.web_urldispatcher import _default_expect_handler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from salespulse.ingest.adapters import Adapter, PayloadError
from salespulse.ingest.auth import (
    HUBSPOT_SIGNATURE_HEADER,
    HUBSPOT_TIMESTAMP_HEADER,
    SIGNATURE_HEADER,
    basic_password,
    bearer_token,
    hubspot_signature_matches,
    signature_matches,
    token_matches,
)
from salespulse.ingest.config import IngestSettings
from salespulse.ingest.metrics import IngestMetrics
from salespulse.ingest.models import EventResult, IngestResponse, Problem
from salespulse.ingest.openapi import build_openapi
from salespulse.ingest.publisher import Publisher, PublishError
from salespulse.ingest.validation import Candidate, Outcome, Validator
from salespulse.settings import Settings

log = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024
EVENTS_PATH = "/v1/events"
WEBHOOK_PATHS = {
    "amocrm": "/v1/webhooks/amocrm",
    "hubspot": "/v1/webhooks/hubspot",
    "pipedrive": "/v1/webhooks/pipedrive",
}
# Credentials each endpoint takes besides bearer tokens and X-Salespulse-Signature:
# what the CRM can be configured to send.
EXTRA_SCHEMES: dict[str, frozenset[str]] = {
    "events": frozenset(),
    "amocrm": frozenset({"query_token"}),  # amoCRM sets no headers: ?token=... in the URL
    "hubspot": frozenset({"hubspot"}),  # X-HubSpot-Signature-v3
    "pipedrive": frozenset({"basic"}),  # the webhook's HTTP Basic auth, password = a token
}

Auth = Literal["ok", "body", "denied"]


class _BodyTooLargeError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class _Endpoint:
    name: str
    content_types: tuple[str, ...]
    decode: Callable[[bytes], list[Candidate]] | None  # None: adapter not configured
    schemes: frozenset[str]


def _problem(
    status: int,
    error: str,
    detail: str,
    *,
    headers: Mapping[str, str] | None = None,
    results: list[EventResult] | None = None,
) -> web.Response:
    body = Problem(error=error, detail=detail, results=results)
    return web.json_response(
        body.model_dump(mode="json", exclude_none=True), status=status, headers=headers
    )


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class Gateway:
    """Builds the aiohttp application; one per process (or per test)."""

    def __init__(
        self,
        settings: Settings,
        ingest: IngestSettings,
        publisher: Publisher,
        registry: CollectorRegistry,
        adapters: Mapping[str, Adapter] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.ingest = ingest
        self.publisher = publisher
        self.registry = registry
        self.metrics = IngestMetrics(registry, lambda: publisher.ready)
        self.validator = Validator(settings, check_funnel=ingest.check_funnel, clock=clock)
        adapters = adapters or {}
        self.endpoints: dict[str, _Endpoint] = {
            "events": _Endpoint(
                "events", ("application/json",), self._decode_events, EXTRA_SCHEMES["events"]
            )
        }
        for name in WEBHOOK_PATHS:
            adapter = adapters.get(name)
            self.endpoints[name] = _Endpoint(
                name,
                adapter.content_types if adapter else ("application/json",),
                adapter.translate if adapter else None,
                EXTRA_SCHEMES[name],
            )
        self.openapi = build_openapi(ingest)

    # -- the application ---------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(
            middlewares=[self._count], client_max_size=self.ingest.max_body_bytes + 1
        )
        for name, path in {"events": EVENTS_PATH, **WEBHOOK_PATHS}.items():
            endpoint = self.endpoints[name]
            app.router.add_post(
                path,
                self._post_handler(endpoint),
                name=name,
                expect_handler=self._expect_handler(endpoint),
            )
        app.router.add_get("/metrics", self._metrics, name="metrics")
        app.router.add_get("/healthz", self._healthz, name="healthz")
        app.router.add_get("/readyz", self._readyz, name="readyz")
        app.router.add_get("/openapi.json", self._openapi, name="openapi")
        return app

    @web.middleware
    async def _count(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        route = request.match_info.route
        endpoint = route.name if route is not None and route.name else "other"
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            self.metrics.requests.labels(endpoint, str(exc.status)).inc()
            raise
        except Exception:
            self.metrics.requests.labels(endpoint, "500").inc()
            raise
        self.metrics.requests.labels(endpoint, str(response.status)).inc()
        return response

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, _: web.Request) -> web.Response:
        if self.publisher.ready:
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not connected to the broker\n")

    async def _openapi(self, _: web.Request) -> web.Response:
        return web.json_response(self.openapi)

    # -- checks before the body ----------------------------------------------------

    def _header_auth(self, request: web.Request, endpoint: _Endpoint) -> Auth:
        tokens = self.ingest.tokens
        authorization = request.headers.get(hdrs.AUTHORIZATION)
        bearer = bearer_token(authorization)
        if bearer is not None and token_matches(bearer, tokens):
            return "ok"
        if "basic" in endpoint.schemes:
            password = basic_password(authorization)
            if password is not None and token_matches(password, tokens):
                return "ok"
        if "query_token" in endpoint.schemes:
            presented = request.query.get("token")
            if presented and token_matches(presented, tokens):
                return "ok"
        if request.headers.get(SIGNATURE_HEADER) and self.ingest.hmac_secret is not None:
            return "body"
        if (
            "hubspot" in endpoint.schemes
            and request.headers.get(HUBSPOT_SIGNATURE_HEADER)
            and self.ingest.hubspot_client_secret is not None
        ):
            return "body"
        return "denied"

    def _precheck(self, request: web.Request, endpoint: _Endpoint) -> web.Response | Auth:
        auth = self._header_auth(request, endpoint)
        if auth == "denied":
            return self._unauthorized()
        if endpoint.decode is None:
            return _problem(
                404,
                "adapter_not_configured",
                f"the {endpoint.name} adapter has no mapping file "
                f"(SALESPULSE_INGEST_{endpoint.name.upper()}_MAPPING)",
            )
        if request.content_type not in endpoint.content_types:
            return _problem(
                415,
                "unsupported_media_type",
                f"Content-Type must be {' or '.join(endpoint.content_types)}, "
                f"not {request.content_type or 'missing'}",
            )
        length = request.content_length
        if length is not None and length > self.ingest.max_body_bytes:
            return self._too_large(f"the body has {length} bytes")
        return auth

    def _unauthorized(self) -> web.Response:
        return _problem(
            401,
            "unauthorized",
            "missing or invalid credentials: Authorization: Bearer <token> or "
            f"{SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of the body>",
            headers={hdrs.WWW_AUTHENTICATE: 'Bearer realm="salespulse"'},
        )

    def _too_large(self, what: str) -> web.Response:
        return _problem(
            413,
            "body_too_large",
            f"{what}, more than the limit of {self.ingest.max_body_bytes}",
            headers={hdrs.CONNECTION: "close"},
        )

    def _expect_handler(
        self, endpoint: _Endpoint
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse | None]]:
        async def expect(request: web.Request) -> web.StreamResponse | None:
            verdict = self._precheck(request, endpoint)
            if isinstance(verdict, web.Response):
                # Answered before the body is sent; middlewares do not see this path.
                self.metrics.requests.labels(endpoint.name, str(verdict.status)).inc()
                return verdict
            await _default_expect_handler(request)
            return None

        return expect

    # -- the request ---------------------------------------------------------------

    def _post_handler(
        self, endpoint: _Endpoint
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._handle(request, endpoint)

        return handle

    async def _read(self, request: web.Request) -> bytes:
        limit = self.ingest.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = await request.content.read(READ_CHUNK)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > limit:
                raise _BodyTooLargeError
            chunks.append(chunk)

    def _body_auth(self, request: web.Request, endpoint: _Endpoint, body: bytes) -> bool:
        if signature_matches(request.headers.get(SIGNATURE_HEADER), body, self.ingest.hmac_secret):
            return True
        if "hubspot" in endpoint.schemes:
            base = self.ingest.public_url or f"{request.scheme}://{request.host}"
            return hubspot_signature_matches(
                signature=request.headers.get(HUBSPOT_SIGNATURE_HEADER),
                timestamp=request.headers.get(HUBSPOT_TIMESTAMP_HEADER),
                method=request.method,
                url=base + request.raw_path,
                body=body,
                secret=self.ingest.hubspot_client_secret,
                max_age_seconds=self.ingest.hubspot_max_age_seconds,
            )
        return False

    async def _handle(self, request: web.Request, endpoint: _Endpoint) -> web.StreamResponse:
        verdict = self._precheck(request, endpoint)
        if isinstance(verdict, web.Response):
            return verdict
        try:
            body = await self._read(request)
        except _BodyTooLargeError:
            return self._too_large("the body has more bytes")
        if verdict == "body" and not self._body_auth(request, endpoint, body):
            return self._unauthorized()
        assert endpoint.decode is not None
        try:
            candidates = endpoint.decode(body)
        except PayloadError as exc:
            return _problem(400, exc.reason, exc.detail)
        if len(candidates) > self.ingest.max_batch_events:
            return _problem(
                413,
                "too_many_events",
                f"the request has {len(candidates)} events, more than the limit of "
                f"{self.ingest.max_batch_events}",
            )
        outcome = self.validator.validate(candidates)
        if outcome.records:
            failure = await self._publish(outcome)
            if failure is not None:
                return self._unavailable(endpoint, outcome, failure)
        return self._answer(endpoint, outcome)

    async def _publish(self, outcome: Outcome) -> PublishError | None:
        records = outcome.records
        self.metrics.in_flight.inc(len(records))
        started = time.perf_counter()
        try:
            await self.publisher.publish(records, self.ingest.publish_timeout_seconds)
        except PublishError as exc:
            self.metrics.publish_seconds.labels("failed").observe(time.perf_counter() - started)
            log.warning("publishing %d events failed: %s", len(records), exc.detail)
            return exc
        finally:
            self.metrics.in_flight.dec(len(records))
        self.metrics.publish_seconds.labels("acknowledged").observe(time.perf_counter() - started)
        return None

    def _unavailable(
        self, endpoint: _Endpoint, outcome: Outcome, failure: PublishError
    ) -> web.Response:
        results = [
            result.model_copy(
                update={
                    "status": "rejected",
                    "reason": failure.reason,
                    "detail": "not confirmed by the broker; repeat the request",
                }
            )
            if result.status == "accepted"
            else result
            for result in outcome.results
        ]
        self._count_events(endpoint, results)
        return _problem(
            503,
            failure.reason,
            f"{failure.detail}; nothing of this request may be assumed published, and "
            "repeating it is safe (event ids dedupe)",
            headers={hdrs.RETRY_AFTER: str(self.ingest.retry_after_seconds)},
            results=results,
        )

    def _count_events(self, endpoint: _Endpoint, results: list[EventResult]) -> None:
        for result in results:
            if result.status == "accepted":
                self.metrics.accepted.labels(endpoint.name, result.type or "").inc()
            elif result.status == "rejected":
                self.metrics.rejected.labels(endpoint.name, result.reason or "").inc()
            else:
                self.metrics.ignored.labels(endpoint.name).inc()

    def _answer(self, endpoint: _Endpoint, outcome: Outcome) -> web.Response:
        self._count_events(endpoint, outcome.results)
        accepted = outcome.count("accepted")
        rejected = outcome.count("rejected")
        if accepted and rejected:
            status = 207
        elif accepted:
            status = 202
        elif rejected:
            status = 422
        else:
            status = 200
        body = IngestResponse(
            accepted=accepted,
            rejected=rejected,
            ignored=outcome.count("ignored"),
            results=outcome.results,
        )
        return web.json_response(body.model_dump(mode="json", exclude_none=True), status=status)

    # -- contract events -----------------------------------------------------------

    def _decode_events(self, body: bytes) -> list[Candidate]:
        if not body.strip():
            raise PayloadError("empty_body", "the body is empty")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PayloadError("invalid_encoding", f"the body is not UTF-8: {exc}") from None
        try:
            value = json.loads(text, parse_constant=_no_constants)
        except (ValueError, RecursionError) as exc:
            raise PayloadError("invalid_json", f"the body is not JSON: {exc}") from None
        if isinstance(value, dict):
            return [Candidate(0, value)]
        if isinstance(value, list):
            if not value:
                raise PayloadError("empty_batch", "the batch has no events")
            return [Candidate(index, item) for index, item in enumerate(value)]
        raise PayloadError(
            "not_an_object", "the body must be one event (an object) or a batch (an array)"
        )
