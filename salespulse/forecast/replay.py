"""An export's events replayed offline through the processor, seen at chosen moments.

The backtest must judge the forecast on what the product itself would have
known, so the events go through the same Processor and StateStore a worker
runs, with event time driving the clocks (the processor's "now" is the moment
being replayed up to, and the deadline sweep runs at each moment as a
caught-up worker's would). At each moment it keeps what a forecast reads: the
counters of the rendered exposition (parsed back from the text, as Prometheus
would scrape them) and the open deals by stage, read from the managers'
records in the store.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client.parser import text_string_to_metric_families

from metrics.exposition import StateExposition
from salespulse.importer.convert import OutEvent
from salespulse.settings import Settings
from streams.processor import Processor, RawMessage
from streams.store import StateStore

REACHED = "salespulse_funnel_stage_reached_total"
DURATION_SUM = "salespulse_deal_stage_duration_seconds_sum"
DURATION_COUNT = "salespulse_deal_stage_duration_seconds_count"
WON_AMOUNT = "salespulse_deals_won_amount_total"
CLOSED = "salespulse_deals_closed_total"
READ = (REACHED, DURATION_SUM, DURATION_COUNT, WON_AMOUNT, CLOSED)

# (series name, manager, pipeline, stage or outcome or "")
SeriesKey = tuple[str, str, str, str]
# (manager, pipeline, stage)
StageKey = tuple[str, str, str]


@dataclass
class OpenStageDeals:
    deals: int = 0
    amount: float = 0.0


@dataclass
class Snapshot:
    """What was known at one moment: the forecast's counters and the open deals."""

    at: datetime
    counters: dict[SeriesKey, float] = field(default_factory=dict)
    open_deals: dict[StageKey, OpenStageDeals] = field(default_factory=dict)

    def value(self, name: str, manager: str, pipeline: str, detail: str = "") -> float:
        return self.counters.get((name, manager, pipeline, detail), 0.0)

    def managers(self) -> set[str]:
        return {key[1] for key in self.counters} | {key[0] for key in self.open_deals}


def parse_counters(text: str) -> dict[SeriesKey, float]:
    """The forecast's series of an exposition, by manager, pipeline and stage or outcome."""
    wanted = "".join(line + "\n" for line in text.splitlines() if line.startswith(READ))
    found: dict[SeriesKey, float] = defaultdict(float)
    for family in text_string_to_metric_families(wanted):
        for sample in family.samples:
            labels = sample.labels
            detail = labels.get("stage") or labels.get("outcome") or ""
            key = (sample.name, labels.get("manager", ""), labels.get("pipeline", ""), detail)
            found[key] += float(sample.value)
    return dict(found)


# The amount an open deal without one is valued at, from its product (None: 0).
Pricing = Callable[[str], float | None]


@dataclass
class Replay:
    """Snapshots by moment, and how many events the processor did not accept."""

    snapshots: dict[datetime, Snapshot]
    dead_letters: int


def replay(
    settings: Settings,
    events: Sequence[OutEvent],
    moments: Sequence[datetime],
    price: Pricing | None = None,
) -> Replay:
    """Replay *events* (in event-time order) and take a snapshot at each of *moments*
    (sorted; every event at or before a moment is applied before it is taken)."""
    store = StateStore()
    now = [moments[0] if moments else datetime.now(settings.zone)]
    processor = Processor(settings, store, clock=lambda: now[0])
    exposition = StateExposition(settings)
    topics = {
        "deals": settings.topic_deals,
        "tasks": settings.topic_tasks,
        "calls": settings.topic_calls,
    }
    offsets: dict[str, int] = defaultdict(lambda: -1)
    snapshots: dict[datetime, Snapshot] = {}
    dead = 0
    position = 0
    for moment in sorted(moments):
        now[0] = moment
        batch: list[OutEvent] = []
        while position < len(events) and events[position].occurred_at <= moment:
            batch.append(events[position])
            position += 1
        dead += _apply(processor, topics, offsets, batch)
        processor.tick({0}, moment.timestamp())
        store.written(store.drain())
        snapshots[moment] = _snapshot(settings, store, exposition, moment, price)
    return Replay(snapshots, dead)


def _apply(
    processor: Processor,
    topics: dict[str, str],
    offsets: dict[str, int],
    batch: Sequence[OutEvent],
) -> int:
    """Feed *batch* in order, one processor batch per run of one topic; dead letters."""
    dead = 0
    run: list[RawMessage] = []
    topic = ""
    for event in batch:
        name = topics[event.family]
        if name != topic and run:
            dead += _process(processor, topic, run)
            run = []
        topic = name
        offsets[name] += 1
        run.append(RawMessage(0, offsets[name], event.key, event.value))
    if run:
        dead += _process(processor, topic, run)
    return dead


def _process(processor: Processor, topic: str, run: list[RawMessage]) -> int:
    outputs = processor.process(topic, run)
    processor.record_outputs(outputs)  # offline, "sent" at once
    return len(outputs)


def _snapshot(
    settings: Settings,
    store: StateStore,
    exposition: StateExposition,
    at: datetime,
    price: Pricing | None,
) -> Snapshot:
    snapshot = Snapshot(at, parse_counters(exposition.text(store.records(), at)))
    pipelines = settings.pipelines
    for state in store.managers_in():
        for _, deal in state.deals.peek_all():
            pipeline = pipelines.get(deal.pipeline)
            if pipeline is None or not deal.created or deal.outcome is not None:
                continue
            stage = deal.stage
            if stage is None or pipeline.index_of(stage) is None or pipeline.outcome_of(stage):
                continue
            amount = deal.amount
            if amount is None and price is not None:
                amount = price(deal.product)
            key = (state.manager_id, deal.pipeline, stage)
            found = snapshot.open_deals.setdefault(key, OpenStageDeals())
            found.deals += 1
            found.amount += amount or 0.0
    return snapshot
