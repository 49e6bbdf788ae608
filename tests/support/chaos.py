"""Fault-tolerance testing: a realistic faulty stream, its offline truth, and the comparison.

The stream comes from the simulated sales floor driven by a synthetic clock,
with faults injected the way real CRMs and networks produce them: exact
duplicates re-sent a little later, late events (days back, with new ids) and
messages that cannot be used at all. It is published to a real broker while
workers are killed, stopped and cut off; every message's partition and offset
are recorded from the broker's acknowledgement.

The offline truth feeds the same messages, per (topic, partition) in offset
order, to the broker-free processor with the worker's own settings, renders
its state with the same collector the worker uses, and parses the exposition.
Topics are fed one after another, never interleaved as live: the processor
claims that interleaving across topics does not change any number, so any
difference that comes from it is a finding too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry, generate_latest

from metrics.annotations import FAMILIES as MARKER_FAMILIES
from metrics.exposition import StateExposition
from metrics.health import HealthCollector
from salespulse.settings import Settings, load_settings
from salespulse.simulate.floor import SalesFloor, topic_for
from salespulse.simulate.publisher import encode
from streams.processor import Processor, RawMessage
from streams.state import Record
from streams.store import StateStore
from tests.support.polling import wait_for
from tests.support.processes import WorkerProcess
from tests.support.scrape import Samples, parse, scrape

ROOT = Path(__file__).resolve().parents[2]

# Families that describe the configuration (and the calendar), not the state: every worker
# exports them whole.
CONFIG_FAMILIES = frozenset(
    {
        "salespulse_kpi_target",
        "salespulse_plan_target",
        "salespulse_manager_info",
        "salespulse_funnel_stage_info",
        "salespulse_calendar_elapsed_ratio",
        "salespulse_calendar_month_seconds_left",
        "salespulse_funnel_stage_follows",
        *MARKER_FAMILIES,  # interventions and KPI changes, for annotations
    }
)
# Families that describe the worker process (metrics.health), not the state.
PROCESS_FAMILIES = frozenset(
    {
        "salespulse_build_info",
        "salespulse_worker_ready",
        "salespulse_worker_start_time_seconds",
        "salespulse_worker_recovery_seconds",
        "salespulse_assigned_partitions",
        "salespulse_consumer_lag_messages",
        "salespulse_batches",
        "salespulse_changelog_records",
        "salespulse_messages_read_back",
    }
)

# What a message in the stream is meant to be.
EVENT, DUPLICATE, LATE, BAD = "event", "duplicate", "late", "bad"

# Bad messages, each named by the rejection reason it must provoke.
BAD_KINDS = (
    "invalid_json",
    "invalid_encoding",
    "empty_message",
    "not_an_object",
    "unknown_type",
    "schema_violation",
    "wrong_topic",
    "key_mismatch",
    "out_of_range",
    "unknown_stage",
)


def chaos_seed() -> int:
    """A scenario's seed: CHAOS_SEED when set (to replay a printed run), else a fresh one."""
    text = os.environ.get("CHAOS_SEED")
    return int(text) if text else random.SystemRandom().randrange(2**32)


# -- the stream -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    key: bytes | None
    value: bytes
    kind: str  # EVENT, DUPLICATE, LATE or BAD
    detail: str  # the event type, or for BAD the rejection reason it must provoke


@dataclass
class Stream:
    seed: int
    messages: list[Message]
    first_event_at: datetime
    last_event_at: datetime

    def __len__(self) -> int:
        return len(self.messages)

    def count(self, kind: str) -> int:
        return sum(1 for message in self.messages if message.kind == kind)

    def bad_kinds(self) -> Counter[str]:
        return Counter(message.detail for message in self.messages if message.kind == BAD)

    def describe(self) -> str:
        kinds = ", ".join(f"{kind}={n}" for kind, n in sorted(self.bad_kinds().items()))
        return (
            f"events={self.count(EVENT)} messages={len(self)} duplicates={self.count(DUPLICATE)} "
            f"late={self.count(LATE)} bad={self.count(BAD)} (by kind: {kinds})"
        )


def build_stream(
    settings: Settings,
    seed: int,
    *,
    events: int,
    start: datetime,
    span: timedelta = timedelta(hours=2),
    speed: float = 60.0,
    duplicate_share: float = 0.05,
    late_share: float = 0.01,
    bad_share: float = 0.01,
) -> Stream:
    """*events* floor events between *start* and about *start* + *span*, plus injected faults."""
    rng = random.Random(seed)
    floor = SalesFloor(settings, seed=rng.randrange(2**31), speed=speed)
    mean_wanted = 4
    step = span / (events / mean_wanted)
    originals: list[dict[str, Any]] = []
    clock = start
    while len(originals) < events:
        wanted = min(rng.randint(1, 2 * mean_wanted - 1), events - len(originals))
        originals.extend(floor.step(clock, wanted))
        clock += step

    def message(event: dict[str, Any], kind: str, topic: str | None = None) -> Message:
        return Message(
            topic or topic_for(event, settings),
            str(event["manager_id"]).encode(),
            encode(event),
            kind,
            str(event["type"]),
        )

    # (position, tie-break, message); duplicates and late events go after their original.
    placed: list[tuple[float, int, Message]] = [
        (float(index), 0, message(event, EVENT)) for index, event in enumerate(originals)
    ]
    n = len(originals)
    for index in rng.sample(range(n), round(n * duplicate_share)):
        later = index + rng.randint(1, 400) + 0.5
        placed.append((later, 1, message(originals[index], DUPLICATE)))
    for index in rng.sample(range(n // 10, n), round(n * late_share)):
        late = _late_copy(originals[index], days=rng.uniform(2.0, 5.0))
        placed.append((index + rng.randint(1, 400) + 0.5, 2, message(late, LATE)))
    for _ in range(round(n * bad_share)):
        kind = rng.choice(BAD_KINDS)
        bad = _bad_message(kind, originals, rng, settings)
        placed.append((rng.uniform(0, n), 3, bad))
    placed.sort(key=lambda item: (item[0], item[1]))
    times = [datetime.fromisoformat(event["occurred_at"]) for event in originals]
    return Stream(seed, [item[2] for item in placed], min(times), max(times))


def _late_copy(event: dict[str, Any], days: float) -> dict[str, Any]:
    """The event as if it had happened *days* earlier, with new event and entity ids.

    Entity ids are unique to the copy: a late stage change and a late task of the
    same deal, on two topics, give numbers that depend on which topic is consumed
    first (see test_chaos.py, the strict xfail on backdated regulations), and the
    scenarios here must not depend on the interleaving a worker happens to choose.
    """
    late = dict(event)
    shift = timedelta(days=days)
    late["event_id"] = f"{event['event_id']}-late"
    late["occurred_at"] = (datetime.fromisoformat(event["occurred_at"]) - shift).isoformat()
    if "due_at" in late:
        late["due_at"] = (datetime.fromisoformat(event["due_at"]) - shift).isoformat()
    for field in ("deal_id", "task_id", "call_id"):
        if field in late:
            late[field] = f"{late[field]}-late-{event['event_id']}"
    return late


def _bad_message(
    kind: str, originals: Sequence[dict[str, Any]], rng: random.Random, settings: Settings
) -> Message:
    if kind == "unknown_stage":
        deals = [e for e in originals if e["type"] == "deal.created"]
        event = dict(rng.choice(deals), stage="limbo")
    else:
        event = dict(rng.choice(originals))
    event["event_id"] = f"{event['event_id']}-bad-{kind}"
    topic = topic_for(event, settings)
    key: bytes | None = str(event["manager_id"]).encode()
    value = encode(event)
    if kind == "invalid_json":
        value = value[: len(value) // 2]
    elif kind == "invalid_encoding":
        value = b"\xff\xfe" + value
    elif kind == "empty_message":
        value = b""
    elif kind == "not_an_object":
        value = json.dumps(list(event.values())).encode()
    elif kind == "unknown_type":
        value = encode({**event, "type": "deal.archived"})
    elif kind == "schema_violation":
        value = encode({k: v for k, v in event.items() if k != "occurred_at"})
    elif kind == "wrong_topic":
        others = [t for t in settings.source_topics if t != topic]
        topic = rng.choice(others)
    elif kind == "key_mismatch":
        key = b"m-nobody"
    elif kind == "out_of_range":
        moment = datetime.fromisoformat(event["occurred_at"]) + timedelta(days=3)
        value = encode({**event, "occurred_at": moment.isoformat()})
    return Message(topic, key, value, BAD, kind)


# -- publishing -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sent:
    """A message as the broker acknowledged it."""

    index: int
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


class Publisher:
    """Publishes a stream in chunks from a background thread, up to a movable gate.

    Every acknowledgement is recorded (partition and offset as the broker
    assigned them), so the offline truth sees exactly what the workers see.
    """

    def __init__(
        self,
        bootstrap: str,
        messages: Sequence[Message],
        *,
        chunk: int = 50,
        pause: float = 0.03,
    ) -> None:
        self.bootstrap = bootstrap
        self.messages = list(messages)
        self.chunk = chunk
        self.pause = pause  # between chunks: the rate of the stream, not synchronisation
        self.results: list[Sent] = []
        self.error: BaseException | None = None
        self._gate = 0
        self._stopping = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="chaos-publisher", daemon=True)

    @property
    def sent(self) -> int:
        with self._changed:
            return len(self.results)

    @property
    def done(self) -> bool:
        return self.sent == len(self.messages)

    def start(self) -> Publisher:
        self._thread.start()
        return self

    def allow(self, upto: int) -> None:
        """Let the publisher send messages up to index *upto* (exclusive)."""
        with self._changed:
            self._gate = max(self._gate, min(upto, len(self.messages)))
            self._changed.notify_all()

    def wait_sent(self, count: int, timeout: float = 120.0) -> int:
        """Block until at least *count* messages are acknowledged."""
        count = min(count, len(self.messages))
        with self._changed:
            ok = self._changed.wait_for(
                lambda: len(self.results) >= count or self.error is not None, timeout
            )
            if self.error is not None:
                raise AssertionError(f"publishing failed: {self.error!r}") from self.error
            if not ok:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {count} messages published; "
                    f"{len(self.results)} were"
                )
            return len(self.results)

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._thread.join(30)

    def _wait_gate(self, index: int) -> bool:
        with self._changed:
            self._changed.wait_for(lambda: self._gate > index or self._stopping)
            return not self._stopping

    def _run(self) -> None:
        try:
            asyncio.run(self._publish())
        except BaseException as exc:  # reported to the test thread by wait_sent
            with self._changed:
                self.error = exc
                self._changed.notify_all()

    async def _publish(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            index = 0
            while index < len(self.messages):
                if not await asyncio.to_thread(self._wait_gate, index):
                    return
                with self._changed:
                    end = min(index + self.chunk, self._gate)
                batch = self.messages[index:end]
                futures = [await producer.send(m.topic, value=m.value, key=m.key) for m in batch]
                acks = await asyncio.gather(*futures)
                with self._changed:
                    for offset, (m, ack) in enumerate(zip(batch, acks, strict=True)):
                        self.results.append(
                            Sent(index + offset, m.topic, ack.partition, ack.offset, m.key, m.value)
                        )
                    self._changed.notify_all()
                index = end
                await asyncio.sleep(self.pause)
        finally:
            await producer.stop()


# -- the offline truth -------------------------------------------------------------


class Truth:
    """The broker-free processor fed the acknowledged messages, topic by topic."""

    def __init__(self, settings: Settings, sent: Sequence[Sent], batch: int = 500) -> None:
        self.settings = settings
        self.sent = list(sent)
        self.store = StateStore()
        self.processor = Processor(settings, self.store)
        by_source: dict[tuple[str, int], list[Sent]] = defaultdict(list)
        for message in sent:
            by_source[(message.topic, message.partition)].append(message)
        for topic, partition in sorted(by_source):
            messages = sorted(by_source[(topic, partition)], key=lambda m: m.offset)
            offsets = [m.offset for m in messages]
            assert len(set(offsets)) == len(offsets), f"offsets repeat in {topic}[{partition}]"
            for start in range(0, len(messages), batch):
                dead = self.processor.process(
                    topic,
                    [
                        RawMessage(m.partition, m.offset, m.key, m.value)
                        for m in messages[start : start + batch]
                    ],
                )
                self.processor.record_outputs(dead)  # as the worker, once acknowledged
        self.store.drain()

    def records(self) -> list[Record]:
        return list(self.store.records())

    def render(self, at: datetime, *, tick: bool = True) -> Samples:
        """The exposition at *at*, after the wall-clock deadline check a live worker runs."""
        if tick:
            self.processor.tick(set(range(self.settings.partitions)), at.timestamp())
            self.store.drain()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(HealthCollector(_TruthView(self)))  # as the worker's /metrics
        state = StateExposition(self.settings).text(self.records(), at)
        return parse(state + generate_latest(registry).decode())


class _TruthView:
    """The truth seen as a worker that owns every partition, for metrics.health."""

    batches = 0
    started_at = 0.0
    ready_at: float | None = None

    def __init__(self, truth: Truth) -> None:
        self._truth = truth
        self.lag: dict[tuple[str, int], int] = {}

    def ready(self) -> bool:
        return True

    def active_partitions(self) -> set[int]:
        return set(range(self._truth.settings.partitions))

    def changelog_records_written(self) -> int:
        return 0

    def messages_read_back(self) -> dict[str, int]:
        return {}


# -- comparing ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mismatch:
    series: str
    expected: float | None
    actual: float | None

    def __str__(self) -> str:
        return f"({self.series}, expected={self.expected}, actual={self.actual})"


def series_name(key: tuple[str, frozenset[tuple[str, str]]]) -> str:
    name, labels = key
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels))
    return f"{name}{{{inner}}}"


def family_of(sample: str) -> str:
    """The metric family of a sample: without a counter's or histogram's suffix."""
    for suffix in ("_total", "_bucket", "_count", "_sum"):
        if sample.endswith(suffix):
            return sample.removesuffix(suffix)
    return sample


def state_series(samples: Samples) -> Samples:
    """Every salespulse_* series derived from state (configuration and process left out)."""
    return {
        key: value
        for key, value in samples.items()
        if key[0].startswith("salespulse_")
        and family_of(key[0]) not in CONFIG_FAMILIES | PROCESS_FAMILIES
    }


def compare(expected: Samples, actual: Samples) -> list[Mismatch]:
    want, got = state_series(expected), state_series(actual)
    mismatches = []
    for key in sorted(want.keys() | got.keys(), key=series_name):
        e, a = want.get(key), got.get(key)
        if e is None or a is None or not math.isclose(e, a, rel_tol=1e-9, abs_tol=1e-9):
            mismatches.append(Mismatch(series_name(key), e, a))
    return mismatches


def sum_samples(per_worker: Sequence[Samples]) -> Samples:
    total: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for samples in per_worker:
        for key, value in state_series(samples).items():
            total[key] = total.get(key, 0.0) + value
    return total


def exported_twice(per_worker: Sequence[Samples]) -> list[str]:
    """Per-manager or per-partition series that more than one worker exports.

    Each manager and each partition belongs to one worker: a series of either
    exported twice is a standby copy exported, or worse.
    """
    owners: Counter[tuple[str, frozenset[tuple[str, str]]]] = Counter()
    for samples in per_worker:
        for key in state_series(samples):
            if any(label in ("manager", "partition") for label, _ in key[1]):
                owners[key] += 1
    return sorted(series_name(key) for key, n in owners.items() if n > 1)


def events_total(samples: Samples) -> float:
    return sum(v for (name, _), v in samples.items() if name == "salespulse_events_total")


def summarize(mismatches: Sequence[Mismatch], limit: int = 40) -> str:
    shown = "\n  ".join(str(m) for m in mismatches[:limit])
    more = f"\n  ... and {len(mismatches) - limit} more" if len(mismatches) > limit else ""
    return f"{len(mismatches)} mismatches:\n  {shown}{more}"


@dataclass
class Outcome:
    mismatches: list[Mismatch]
    per_worker: list[Samples]
    accounted_after: float | None  # seconds until every message had its outcome (None: never)
    settled_after: float  # seconds until live equalled the truth (or the deadline)
    without_tick: list[Mismatch] | None = None  # vs a truth never given the wall-clock check

    def explain(self) -> str:
        text = summarize(self.mismatches)
        if self.without_tick is not None:
            text += "\nvs a truth without the final wall-clock check: " + summarize(
                self.without_tick, limit=10
            )
        return text

    @property
    def accounted(self) -> str:
        return "never" if self.accounted_after is None else f"{self.accounted_after:.1f}s"


def settle(
    ports: Sequence[int],
    truth: Truth,
    expected_messages: int,
    *,
    timeout: float = 60.0,
    settle_timeout: float = 20.0,
) -> Outcome:
    """Wait until the workers account for every message, then until live equals the truth.

    Numbers may still move for a few seconds after the last message (the
    wall-clock deadline check runs every 5 s), so the comparison is repeated
    until it is clean or *settle_timeout* has passed; the last result is
    returned either way. Messages never accounted for (lost state) show up as
    mismatches too, after *timeout*.
    """
    started = time.monotonic()

    def accounted() -> list[Samples] | None:
        per_worker = [scrape(port) for port in ports]
        return per_worker if events_total(sum_samples(per_worker)) >= expected_messages else None

    accounted_after: float | None = None
    with contextlib.suppress(AssertionError):  # never: the comparison says what is missing
        wait_for(accounted, timeout=timeout, interval=0.25, what=f"{expected_messages} messages")
        accounted_after = time.monotonic() - started
    last: list[tuple[list[Mismatch], list[Samples]]] = []

    def clean() -> bool:
        at = datetime.now(UTC)
        per_worker = [scrape(port) for port in ports]
        last[:] = [(compare(truth.render(at), sum_samples(per_worker)), per_worker)]
        return not last[0][0]

    try:
        wait_for(clean, timeout=settle_timeout, interval=0.5, what="live numbers equal to truth")
    except AssertionError as exc:  # the deadline passed: report what differs
        if not last:  # not one scrape of every worker succeeded
            unreachable = f"workers on ports {list(ports)} could not be scraped"
            raise AssertionError(f"{unreachable}: {exc}") from exc
    mismatches, per_worker = last[0]
    outcome = Outcome(mismatches, per_worker, accounted_after, time.monotonic() - started)
    if mismatches:  # a clue for the report: would live equal the truth without the tick?
        untouched = Truth(truth.settings, truth.sent).render(datetime.now(UTC), tick=False)
        outcome.without_tick = compare(untouched, sum_samples(per_worker))
    return outcome


def wait_committed(
    bootstrap: str, group: str, sent: Sequence[Sent], timeout: float = 60.0
) -> float:
    """Wait until *group* has committed every source partition past its last sent message.

    A worker killed after that is restored from its changelog alone: no
    message is delivered again to make up for state the changelog lost.
    Returns the seconds waited.
    """
    ends: dict[tuple[str, int], int] = {}
    for message in sent:
        key = (message.topic, message.partition)
        ends[key] = max(ends.get(key, 0), message.offset + 1)

    async def fetch() -> dict[tuple[str, int], int]:
        # A consumer that never subscribes only asks the coordinator (no group join).
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            found = {}
            for topic, partition in ends:
                offset = await consumer.committed(TopicPartition(topic, partition))
                found[(topic, partition)] = -1 if offset is None else offset
            return found
        finally:
            await consumer.stop()

    short: dict[tuple[str, int], tuple[int, int]] = {}

    def committed() -> bool:
        offsets = asyncio.run(fetch())
        short.clear()
        short.update(
            {
                key: (offsets.get(key, -1), end)
                for key, end in ends.items()
                if offsets.get(key, -1) < end
            }
        )
        return not short

    started = time.monotonic()
    try:
        wait_for(committed, timeout=timeout, interval=0.5, what=f"group {group} committed")
    except AssertionError as exc:
        behind = ", ".join(f"{t}[{p}] {c}<{e}" for (t, p), (c, e) in sorted(short.items()))
        raise AssertionError(f"{exc}; committed < end: {behind}") from None
    return time.monotonic() - started


# -- workers -------------------------------------------------------------------------


class ChaosWorker(WorkerProcess):
    """A worker process with a configurable command, killable by signal."""

    def __init__(
        self,
        broker_url: str,
        config: Path,
        log_dir: Path,
        *,
        command: Sequence[str] | None = None,
        app_id: str = "salespulse",
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(broker_url, config, log_dir, app_id=app_id)
        self.command = list(command or [sys.executable, "-m", "salespulse", "worker"])
        self.extra_env = dict(extra_env or {})

    def env(self) -> dict[str, str]:
        return {**super().env(), **self.extra_env}

    def start(self) -> ChaosWorker:
        self.starts += 1
        path = self.log_dir / f"worker-{self.metrics_port}-{self.starts}.log"
        with open(path, "wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    def signal(self, sig: signal.Signals, timeout: float = 60.0) -> int:
        """Send *sig* and wait for the process to end; returns its exit code."""
        return self.stop(sig, timeout)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        logs = sorted(self.log_dir.glob(f"worker-{self.metrics_port}-*.log"))
        return "\n".join(path.read_text(errors="replace") for path in logs)


@contextmanager
def salespulse_environment(env: Mapping[str, str]) -> Iterator[None]:
    """os.environ with exactly the SALESPULSE_* variables of *env*, for load_settings."""
    ours = {k: v for k, v in env.items() if k.startswith("SALESPULSE_")}
    theirs = [k for k in os.environ if k.startswith("SALESPULSE_") and k not in ours]
    with mock.patch.dict(os.environ, ours):
        for key in theirs:
            del os.environ[key]
        yield


def settings_of(worker: WorkerProcess) -> Settings:
    """The settings the worker process loads (its environment, its configuration file)."""
    with salespulse_environment(worker.env()):
        return load_settings()


def figures(scenario: str, seed: int, stream: Stream, **extra: object) -> str:
    details = " ".join(f"{key}={value}" for key, value in extra.items())
    return f"chaos[{scenario}] seed={seed} {stream.describe()} {details}".rstrip()
