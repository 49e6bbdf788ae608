"""Processor health: the SRE's view of the salespulse workers.

Is every worker ready and consuming, how far behind is it (messages and event
time), what does it reject and why, how fast does it recover, and what runs.
Counters that follow the partitions (events, rejections) move between workers
at a rebalance, which shows as a short spike in their per-worker rates.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as dashboard_models

from . import common as c

UID = "salespulse-processor"
TITLE = "Processor health"

INSTANCE = 'instance=~"$instance"'

# Event time behind the wall clock: a quiet floor (nights, weekends) is behind by
# design, so the colours are a hint during office hours, not an alarm.
FRESHNESS = c.Thresholds(c.GREEN, ((5 * 60, c.AMBER), (30 * 60, c.RED)))
LAG = c.Thresholds(c.GREEN, ((1_000, c.AMBER), (10_000, c.RED)))
# startup_timeout_seconds is 120 by default: a recovery close to it is at risk.
RECOVERY = c.Thresholds(c.GREEN, ((60, c.AMBER), (120, c.RED)))
REJECTED = c.Thresholds(c.GREEN, ((0.01, c.AMBER), (1, c.RED)))


def _stats() -> list[c.PanelBuilder]:
    top = 0
    height = 4
    return [
        c.stat_panel(
            "Workers ready",
            "Worker processes that have restored their state and consume (/readyz 200).",
            [c.query(f"sum(salespulse_worker_ready{{{INSTANCE}}})", "ready", instant=True)],
            unit=c.COUNT,
            decimals=0,
            value_size=48,
            place=c.at(0, top, 4, height),
        ),
        c.stat_panel(
            "Workers not ready",
            "Worker processes still restoring state or joining the group. Red from one.",
            [
                c.query(
                    f"count(salespulse_worker_ready{{{INSTANCE}}} == 0) or vector(0)",
                    "not ready",
                    instant=True,
                )
            ],
            unit=c.COUNT,
            decimals=0,
            value_size=48,
            thresholds=c.ZERO_IS_GOOD,
            place=c.at(4, top, 4, height),
        ),
        c.stat_panel(
            "Partitions assigned",
            "Partitions the workers actively own, summed (standby copies not counted); "
            "equals the topics' partition count when every partition is served.",
            [
                c.query(
                    f"sum(salespulse_assigned_partitions{{{INSTANCE}}})", "partitions", instant=True
                )
            ],
            unit=c.COUNT,
            decimals=0,
            value_size=48,
            place=c.at(8, top, 4, height),
        ),
        c.stat_panel(
            "Consumer lag",
            "Messages in the owned partitions not consumed yet, all topics. Amber from "
            "1,000, red from 10,000.",
            [
                c.query(
                    f"sum(salespulse_consumer_lag_messages{{{INSTANCE}}})", "messages", instant=True
                )
            ],
            unit=c.COUNT,
            decimals=0,
            value_size=48,
            thresholds=LAG,
            place=c.at(12, top, 4, height),
        ),
        c.stat_panel(
            "Event time behind",
            "Wall clock minus the event time of the newest event applied, for the "
            "partition furthest behind. Amber from 5 min, red from 30 min; a quiet "
            "floor is behind by design.",
            [
                c.query(
                    f"max(time() - salespulse_newest_event_timestamp_seconds{{{INSTANCE}}})",
                    "behind",
                    instant=True,
                )
            ],
            unit=c.SECONDS,
            decimals=0,
            value_size=48,
            thresholds=FRESHNESS,
            place=c.at(16, top, 4, height),
        ),
        c.stat_panel(
            "Rejected per second",
            "Messages dead-lettered per second over the last 5 minutes, all reasons.",
            [
                c.query(
                    f"sum(rate(salespulse_events_rejected_total{{{INSTANCE}}}[5m])) or vector(0)",
                    "rejected",
                    instant=True,
                )
            ],
            unit=c.PER_SECOND,
            decimals=2,
            value_size=48,
            thresholds=REJECTED,
            place=c.at(20, top, 4, height),
        ),
    ]


def _flow() -> list[c.PanelBuilder]:
    top = 4
    height = 8
    return [
        c.timeseries_panel(
            "Events per second by outcome",
            "Consumed messages per second, each with exactly one outcome: processed, "
            "duplicate (replayed event id), late (its day closed), rejected, or rerouted "
            "(on another partition than its key maps to; its copy counts again there).",
            [
                c.query(
                    f"sum by (outcome) (rate(salespulse_events_total{{{INSTANCE}}}[5m]))",
                    "{{outcome}}",
                )
            ],
            unit=c.PER_SECOND,
            place=c.at(0, top, 12, height),
        ),
        c.timeseries_panel(
            "Rejected and rerouted events",
            "Messages sent to the dead-letter topic per second, by reason code "
            "(invalid_json, schema_violation, key_mismatch, ...); and messages rerouted "
            "per second, by topic and the partition they landed on: a sender whose Kafka "
            "client does not partition by murmur2 (librdkafka needs "
            "partitioner=murmur2_random).",
            [
                c.query(
                    f"sum by (reason) (rate(salespulse_events_rejected_total{{{INSTANCE}}}[5m]))",
                    "{{reason}}",
                ),
                c.query(
                    "sum by (topic, partition) "
                    f'(rate(salespulse_events_total{{outcome="rerouted", {INSTANCE}}}[5m]))',
                    "rerouted from {{topic}} / {{partition}}",
                    ref_id="B",
                ),
            ],
            unit=c.PER_SECOND,
            bars=True,
            place=c.at(12, top, 12, height),
        ),
    ]


def _lag_and_freshness() -> list[c.PanelBuilder]:
    top = 12
    height = 8
    return [
        c.timeseries_panel(
            "Consumer lag per partition",
            "Messages not yet consumed, per topic and partition, as reported by the "
            "worker that owns the partition.",
            [
                c.query(
                    f"max by (topic, partition) (salespulse_consumer_lag_messages{{{INSTANCE}}})",
                    "{{topic}} / {{partition}}",
                )
            ],
            unit=c.COUNT,
            thresholds=LAG,
            place=c.at(0, top, 12, height),
        ),
        c.timeseries_panel(
            "Event-time freshness per partition",
            "Wall clock minus the event time of the newest event applied, per topic and "
            "partition: how far behind the real world the numbers are.",
            [
                c.query(
                    "time() - max by (topic, partition) "
                    f"(salespulse_newest_event_timestamp_seconds{{{INSTANCE}}})",
                    "{{topic}} / {{partition}}",
                )
            ],
            unit=c.SECONDS,
            thresholds=FRESHNESS,
            place=c.at(12, top, 12, height),
        ),
    ]


def _workers() -> list[c.PanelBuilder]:
    top = 20
    height = 8
    return [
        c.timeseries_panel(
            "Ready and assigned partitions per worker",
            "Per worker: readiness (1 ready, 0 not) and the partitions it actively owns; "
            "a rebalance shows as partitions moving between workers.",
            [
                c.query(f"salespulse_worker_ready{{{INSTANCE}}}", "{{instance}} ready"),
                c.query(
                    f"salespulse_assigned_partitions{{{INSTANCE}}}", "{{instance}} partitions", "B"
                ),
            ],
            unit=c.COUNT,
            stepped=True,
            place=c.at(0, top, 8, height),
        ),
        c.bar_gauge_panel(
            "Recovery time",
            "Seconds from process start to first ready (state restored, group joined), "
            "per worker. Amber from 60 s, red from 120 s (the default startup timeout).",
            [
                c.query(
                    f"max by (instance) (salespulse_worker_recovery_seconds{{{INSTANCE}}})",
                    "{{instance}}",
                    instant=True,
                )
            ],
            unit=c.SECONDS,
            decimals=1,
            thresholds=RECOVERY,
            place=c.at(8, top, 8, height),
        ),
        c.timeseries_panel(
            "Batches, changelog writes and read-backs per second",
            "Per worker: event batches processed; state records written to the changelog "
            "(each touched record at most once per changelog interval); source messages "
            "the consumer went past without handing them over, read back from the broker "
            "(normally 0; see the runbook's lag section).",
            [
                c.query(
                    f"sum by (instance) (rate(salespulse_batches_total{{{INSTANCE}}}[5m]))",
                    "{{instance}} batches",
                ),
                c.query(
                    "sum by (instance) "
                    f"(rate(salespulse_changelog_records_total{{{INSTANCE}}}[5m]))",
                    "{{instance}} changelog records",
                    "B",
                ),
                c.query(
                    "sum by (instance) "
                    f"(rate(salespulse_messages_read_back_total{{{INSTANCE}}}[5m]))",
                    "{{instance}} read back",
                    "C",
                ),
            ],
            unit=c.PER_SECOND,
            place=c.at(16, top, 8, height),
        ),
    ]


def _inventory() -> list[c.PanelBuilder]:
    top = 28
    height = 7
    return [
        c.table_panel(
            "Build info",
            "What each worker runs: salespulse, Python and Faust versions.",
            [c.instant_table(f"salespulse_build_info{{{INSTANCE}}}")],
            transformations=[c.organize(exclude=["Time", "Value", "__name__"])],
            place=c.at(0, top, 12, height),
        ),
        c.bar_gauge_panel(
            "Label overflow",
            "Label values reported as 'other' in the time range because their label hit "
            "its cap (free-text product, channel, segment or task type): extend the lists "
            "in the company configuration if this grows.",
            [
                c.query(
                    "sum by (label) "
                    f"(increase(salespulse_label_overflow_total{{{INSTANCE}}}[$__range]))",
                    "{{label}}",
                    instant=True,
                )
            ],
            unit=c.COUNT,
            decimals=0,
            thresholds=c.ZERO_IS_GOOD,
            place=c.at(12, top, 6, height),
        ),
        c.stat_panel(
            "Scrape targets up",
            "Prometheus reaching each worker's /metrics (scrape jobs named salespulse*): "
            "1 up, 0 down.",
            [c.query(f'up{{job=~"salespulse.*", {INSTANCE}}}', "{{instance}}", instant=True)],
            unit=c.COUNT,
            decimals=0,
            value_size=32,
            title_size=14,
            thresholds=c.Thresholds(c.RED, ((1, c.GREEN),)),
            place=c.at(18, top, 6, height),
        ),
    ]


def build() -> dashboard_models.Dashboard:
    builder = c.base_dashboard(
        UID,
        TITLE,
        "salespulse workers: readiness, lag, event-time freshness, rejections, "
        "recovery, throughput of batches and changelog writes, versions.",
        refresh="30s",
        time_from="now-6h",
    ).with_variable(c.instance_variable())
    panels = [*_stats(), *_flow(), *_lag_and_freshness(), *_workers(), *_inventory()]
    for panel in panels:
        builder = builder.with_panel(panel)
    return c.finish(builder)
