"""The gateway's own metrics, registered in the registry it is given."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PUBLISH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry, ready: Callable[[], bool]) -> None:
        self.requests = Counter(
            "salespulse_ingest_requests",
            "HTTP requests answered, by endpoint and status code",
            ["endpoint", "code"],
            registry=registry,
        )
        self.accepted = Counter(
            "salespulse_ingest_events_accepted",
            "Events published and acknowledged by the broker",
            ["endpoint", "type"],
            registry=registry,
        )
        self.rejected = Counter(
            "salespulse_ingest_events_rejected",
            "Events not published, by reason (broker_* reasons: the request was answered 503)",
            ["endpoint", "reason"],
            registry=registry,
        )
        self.ignored = Counter(
            "salespulse_ingest_events_ignored",
            "CRM notifications salespulse has no event for",
            ["endpoint"],
            registry=registry,
        )
        self.publish_seconds = Histogram(
            "salespulse_ingest_publish_seconds",
            "Time from handing a request's events to the producer to the broker's "
            "acknowledgement of the last one",
            ["outcome"],
            buckets=PUBLISH_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "salespulse_ingest_publish_in_flight_events",
            "Events handed to the producer and not yet acknowledged or given up on",
            registry=registry,
        )
        connected = Gauge(
            "salespulse_ingest_broker_connected",
            "1 once the gateway's producer is connected to the broker",
            registry=registry,
        )
        connected.set_function(lambda: 1.0 if ready() else 0.0)
