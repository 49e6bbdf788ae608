"""A corpus of bad messages, mixed into a valid stream, on the real broker and worker.

Every bad message must end in ``crm.dead-letter`` exactly once, unchanged, with
its precise reason and the coordinates of the original; every consumed
message must end in exactly one outcome (processed, duplicate, late,
rejected); and nothing of it may stop the worker or survive a restart twice.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from salespulse.broker import EmbeddedBroker
from salespulse.settings import load_settings
from schemas.events import MAX_EVENT_BYTES, TOPIC_OF_TYPE
from streams.outputs import KEPT_PREFIX_BYTES, MAX_DEAD_LETTER_BYTES
from streams.processor import DeadLetter, Processor, RawMessage
from streams.state import RejectedState, decode, decode_core, manager_key, rejected_key
from streams.store import StateStore
from tests.support.bad_messages import (
    Sent,
    committed_offsets,
    create_topics,
    key_for_each_partition,
    latest_by_key,
    publish_recorded,
    read_all,
    read_to_reported_end,
)
from tests.support.harness import (
    call,
    deal_created,
    stage_changed,
    task_completed,
    task_created,
    task_overdue,
)
from tests.support.polling import wait_for
from tests.support.processes import WorkerProcess
from tests.support.scrape import Samples, scrape, total

pytestmark = pytest.mark.integration

DEALS, TASKS, CALLS, DEAD = "crm.deals", "crm.tasks", "crm.calls", "crm.dead-letter"
SOURCE_TOPICS = (DEALS, TASKS, CALLS)
TOPIC_NAMES = {"deals": DEALS, "tasks": TASKS, "calls": CALLS}
CHANGELOG = "salespulse-state-changelog"  # <app_id>-<table>-changelog
PARTITIONS = 4  # the worker's default
MANAGERS = ("m-1", "m-2", "m-3", "m-4")  # m-4 is not in the company configuration
ORIGIN_HEADERS = (
    "error.reason",
    "error.detail",
    "origin.topic",
    "origin.partition",
    "origin.offset",
)

NOW = datetime.now(UTC).replace(microsecond=0)
AN_HOUR_AGO = NOW - timedelta(hours=1)


# -- the corpus ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bad:
    name: str
    topic: str
    key: bytes | None
    value: bytes | None
    reason: str
    hint: str  # error.detail must mention this, so the detail is about the actual flaw


def _json(document: Any) -> bytes:
    return json.dumps(document).encode()


def _call(**changes: Any) -> dict[str, Any]:
    """A valid call of m-1 on crm.calls, but for *changes*."""
    event: dict[str, Any] = {
        "event_id": "bad-call",
        "type": "call.ended",
        "occurred_at": AN_HOUR_AGO.isoformat(),
        "manager_id": "m-1",
        "call_id": "C-bad",
        "direction": "outbound",
        "duration_seconds": 42,
    }
    event.update(changes)
    return event


def _without(event: dict[str, Any], field: str) -> dict[str, Any]:
    return {name: value for name, value in event.items() if name != field}


def _padded(size: int) -> bytes:
    """A valid call padded with an ignored free-text field to exactly *size* bytes."""
    bare = _json(_call(notes=""))
    value = _json(_call(notes="x" * (size - len(bare))))
    assert len(value) == size
    return value


def _nested(levels: int) -> bytes:
    """A valid call whose extra field nests *levels* objects deep (too deep for json.dumps)."""
    deep = b'{"a": ' * levels + b"{}" + b"}" * levels
    value = _json(_call(payload=0)).replace(b'"payload": 0', b'"payload": ' + deep)
    assert value.count(b"{") == levels + 2
    return value


def _deal(**changes: Any) -> dict[str, Any]:
    return {**deal_created("m-1", "D-bad", AN_HOUR_AGO), "event_id": "bad-deal", **changes}


CORPUS: tuple[Bad, ...] = (
    Bad("invalid_json", CALLS, b"m-1", _json(_call())[:-9], "invalid_json", "EOF"),
    Bad(
        "non_utf8_latin1",
        CALLS,
        b"m-1",
        json.dumps(_call(source="Jörgs Telefonanlage"), ensure_ascii=False).encode("latin-1"),
        "invalid_encoding",
        "UTF-8",
    ),
    Bad("json_array", CALLS, b"m-1", _json([_call()]), "not_an_object", "JSON object"),
    Bad("json_string", CALLS, b"m-1", _json(json.dumps(_call())), "not_an_object", "JSON object"),
    Bad("json_null", CALLS, b"m-1", b"null", "not_an_object", "JSON object"),
    Bad(
        "missing_required_field",
        CALLS,
        b"m-1",
        _json(_without(_call(), "call_id")),
        "schema_violation",
        "call_id",
    ),
    Bad(
        "missing_type", CALLS, b"m-1", _json(_without(_call(), "type")), "schema_violation", "type"
    ),
    Bad(
        "string_for_number",
        CALLS,
        b"m-1",
        _json(_call(duration_seconds="42")),
        "schema_violation",
        "duration_seconds",
    ),
    Bad(
        "naive_timestamp",
        CALLS,
        b"m-1",
        _json(_call(occurred_at=AN_HOUR_AGO.replace(tzinfo=None).isoformat())),
        "schema_violation",
        "occurred_at",
    ),
    # Before 2000 is a schema rule of the event model, not the clock-skew check.
    Bad(
        "year_1999",
        CALLS,
        b"m-1",
        _json(_call(occurred_at="1999-12-31T23:00:00+00:00")),
        "schema_violation",
        "2000",
    ),
    Bad(
        "beyond_clock_skew",
        CALLS,
        b"m-1",
        _json(_call(occurred_at=(NOW + timedelta(days=3)).isoformat())),
        "out_of_range",
        "clock skew",
    ),
    Bad(
        "year_9999_overflowing_utc",
        CALLS,
        b"m-1",
        _json(_call(occurred_at="9999-12-31T23:59:59-12:00")),
        "out_of_range",
        "clock skew",
    ),
    Bad(
        "negative_duration",
        CALLS,
        b"m-1",
        _json(_call(duration_seconds=-5)),
        "schema_violation",
        "duration_seconds",
    ),
    Bad("negative_amount", DEALS, b"m-1", _json(_deal(amount=-100)), "schema_violation", "amount"),
    Bad(
        "unknown_type",
        CALLS,
        b"m-1",
        _json(_call(type="call.started")),
        "unknown_type",
        "call.started",
    ),
    Bad("wrong_topic", DEALS, b"m-1", _json(_call()), "wrong_topic", "calls topic"),
    Bad("key_mismatch", CALLS, b"m-2", _json(_call()), "key_mismatch", "'m-2'"),
    Bad("no_key", CALLS, None, _json(_call()), "key_mismatch", "no key"),
    # The embedded broker accepts a 2 MiB record, so no fallback size is needed.
    Bad("two_mebibytes", CALLS, b"m-1", _padded(2 * 1024 * 1024), "too_large", "2097152 bytes"),
    Bad(
        "one_byte_over_64_kib",
        CALLS,
        b"m-1",
        _padded(MAX_EVENT_BYTES + 1),
        "too_large",
        f"{MAX_EVENT_BYTES + 1} bytes",
    ),
    Bad("deeply_nested", CALLS, b"m-1", _nested(5000), "invalid_json", "recursion"),
    Bad(
        "nul_in_event_id",
        CALLS,
        b"m-1",
        _json(_call(event_id="bad\x00id")),
        "schema_violation",
        "event_id",
    ),
    Bad(
        "c1_control_in_deal_id",
        DEALS,
        b"m-1",
        _json(_deal(deal_id="D-\x85-1")),
        "schema_violation",
        "deal_id",
    ),
    Bad(
        "control_chars_in_manager_id",
        CALLS,
        b"m-1\r\n",
        _json(_call(manager_id="m-1\r\n")),
        "schema_violation",
        "manager_id",
    ),
    Bad("empty_value", CALLS, b"m-1", b"", "empty_message", "no value"),
    Bad("null_value_tombstone", TASKS, b"m-1", None, "empty_message", "no value"),
    Bad(
        "unknown_pipeline",
        DEALS,
        b"m-1",
        _json(_deal(pipeline="enterprise")),
        "unknown_pipeline",
        "'enterprise'",
    ),
    Bad(
        "unknown_stage",
        DEALS,
        b"m-1",
        _json({**stage_changed("m-1", "D-bad", "signed", AN_HOUR_AGO), "event_id": "bad-stage"}),
        "unknown_stage",
        "'signed'",
    ),
)


def test_the_corpus_is_broad_and_its_cases_distinct() -> None:
    assert len(CORPUS) >= 15
    sizes = {case.name: len(case.value or b"") for case in CORPUS}
    assert sizes["two_mebibytes"] == 2 * 1024 * 1024
    assert sizes["one_byte_over_64_kib"] == MAX_EVENT_BYTES + 1
    assert sizes["deeply_nested"] < MAX_EVENT_BYTES  # too deep, not too large
    assert len({case.name for case in CORPUS}) == len(CORPUS)
    assert len({(case.topic, case.key, case.value) for case in CORPUS}) == len(CORPUS)
    assert {case.reason for case in CORPUS} >= {
        "empty_message",
        "too_large",
        "invalid_encoding",
        "invalid_json",
        "not_an_object",
        "unknown_type",
        "schema_violation",
        "wrong_topic",
        "key_mismatch",
        "out_of_range",
        "unknown_pipeline",
        "unknown_stage",
    }


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_each_bad_message_is_rejected_for_its_own_reason(case: Bad, company_config: Path) -> None:
    """Each case alone through the processor: the reason the broker test expects, and why."""
    processor = Processor(load_settings(config=str(company_config)), StateStore())
    dead = processor.process(case.topic, [RawMessage(0, 0, case.key, case.value)])
    assert all(isinstance(letter, DeadLetter) for letter in dead)
    letters = cast(list[DeadLetter], dead)
    assert [letter.rejection.reason for letter in letters] == [case.reason]
    detail = letters[0].rejection.detail
    assert case.hint in detail
    assert detail.isprintable()


# -- the valid stream around it -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Planned:
    """A message to publish and the one outcome it must end in."""

    topic: str
    key: bytes | None
    value: bytes | None
    outcome: str  # processed | duplicate | late | rejected
    event_type: str = ""
    manager: str = ""
    bad: Bad | None = None


def _planned(event: dict[str, Any], outcome: str = "processed") -> Planned:
    manager = str(event["manager_id"])
    return Planned(
        TOPIC_NAMES[TOPIC_OF_TYPE[event["type"]]],
        manager.encode(),
        _json(event),
        outcome,
        event["type"],
        manager,
    )


def _rejected(case: Bad) -> Planned:
    return Planned(case.topic, case.key, case.value, "rejected", bad=case)


def valid_stream(tag: str) -> list[Planned]:
    """Every event type on all three topics for several managers, then late events and
    exact duplicates; a manager's events of one topic are in order, so lateness and
    duplication are decided, not raced."""
    minute = timedelta(minutes=1)
    due, later = NOW + timedelta(days=2), NOW + timedelta(days=3)
    planned: list[Planned] = []
    for index, manager in enumerate(MANAGERS):
        t0 = NOW - timedelta(hours=3) + index * 10 * minute
        won, lost = f"D-{tag}-{manager}-1", f"D-{tag}-{manager}-2"
        first, second = f"T-{tag}-{manager}-1", f"T-{tag}-{manager}-2"
        events = [
            deal_created(manager, won, t0, product="crm-pro", channel="website"),
            stage_changed(manager, won, "qualified", t0 + minute),
            stage_changed(manager, won, "proposal", t0 + 2 * minute, amount=500.0),
            stage_changed(manager, won, "won", t0 + 3 * minute, amount=1200.0),
            deal_created(manager, lost, t0 + 4 * minute),
            stage_changed(manager, lost, "lost", t0 + 5 * minute),
            task_created(manager, first, "call", t0, due),
            task_completed(manager, first, t0 + 6 * minute),
            task_created(manager, second, "meeting", t0 + minute, later),
            task_overdue(manager, second, t0 + 7 * minute),
            call(manager, f"C-{tag}-{manager}-1", 300.0, t0 + 2 * minute),
            {**call(manager, f"C-{tag}-{manager}-2", 0.0, t0 + 3 * minute), "direction": "inbound"},
        ]
        planned.extend(_planned(event) for event in events)
    # Late: five days before the manager's newest event of the same topic, so their
    # day closed (end + grace_period_seconds, one day) well before it.
    old = NOW - timedelta(days=5)
    for manager in MANAGERS[:2]:
        late = [
            deal_created(manager, f"D-{tag}-{manager}-old", old),
            task_created(manager, f"T-{tag}-{manager}-old", "call", old, due),
            call(manager, f"C-{tag}-{manager}-old", 60.0, old),
        ]
        planned.extend(_planned(event, "late") for event in late)
    # A CRM retrying its webhook: the same bytes again, of processed events and a late one.
    per_manager = len(events)
    originals = [
        planned[0],  # m-1's first deal.created
        planned[per_manager + 7],  # m-2's task.completed
        planned[2 * per_manager + 10],  # m-3's first call
        planned[-1],  # m-2's late call
    ]
    assert [(p.manager, p.event_type, p.outcome) for p in originals] == [
        ("m-1", "deal.created", "processed"),
        ("m-2", "task.completed", "processed"),
        ("m-3", "call.ended", "processed"),
        ("m-2", "call.ended", "late"),
    ]
    planned.extend(replace(original, outcome="duplicate") for original in originals)
    return planned


def mixed_stream(tag: str, corpus: Sequence[Bad]) -> list[Planned]:
    """The valid stream with one bad message after every second valid one."""
    bad = [_rejected(case) for case in corpus]
    mixed: list[Planned] = []
    for index, good in enumerate(valid_stream(tag)):
        mixed.append(good)
        if index % 2 == 1 and bad:
            mixed.append(bad.pop(0))
    return mixed + bad


# -- reading the outcome -------------------------------------------------------------


def publish(broker: EmbeddedBroker, plan: Sequence[Planned]) -> list[tuple[Planned, Sent]]:
    sent = publish_recorded(broker.bootstrap, [(p.topic, p.key, p.value) for p in plan])
    return list(zip(plan, sent, strict=True))


def settled(port: int, consumed: int) -> Callable[[], Samples | None]:
    def probe() -> Samples | None:
        samples = scrape(port)
        return samples if total(samples, "salespulse_events_total") >= consumed else None

    return probe


def state_is_durable(bootstrap: str, published: list[tuple[Planned, Sent]]) -> bool:
    """The changelog holds the effect of every published message.

    Dead letters are acknowledged before the state that counts them is written,
    so a crash in between would legitimately dead-letter again; killing the
    worker only once the state is written makes 'exactly once' the right claim.
    """
    latest = latest_by_key(read_to_reported_end(bootstrap, CHANGELOG))
    for planned, sent in published:
        if planned.bad is not None:
            raw = latest.get(rejected_key(sent.partition, sent.topic))
            record = decode(raw) if raw else None
            if not isinstance(record, RejectedState) or record.offset < sent.offset:
                return False
        else:
            raw = latest.get(manager_key(sent.partition, planned.manager))
            if not raw:
                return False
            if decode_core(raw).state.offsets.get(sent.topic, -1) < sent.offset:
                return False
    return True


def check_dead_letters(letters: list[Any], published: list[tuple[Planned, Sent]]) -> None:
    """One letter per bad message, unchanged, with its reason and true origin; no others."""
    by_origin: dict[tuple[str, int, int], tuple[Any, dict[str, bytes]]] = {}
    problems: list[str] = []
    for letter in letters:
        names = [name for name, _ in letter.headers]
        headers = dict(letter.headers)
        if sorted(names) != sorted(set(names)) or not set(ORIGIN_HEADERS) <= set(names):
            problems.append(f"headers {names} of dead letter at offset {letter.offset}")
            continue
        origin = (
            headers["origin.topic"].decode(),
            int(headers["origin.partition"]),
            int(headers["origin.offset"]),
        )
        if origin in by_origin:
            problems.append(f"{origin} dead-lettered twice")
        by_origin[origin] = (letter, headers)
    bad = [(p.bad, s) for p, s in published if p.bad is not None]
    for case, sent in bad:
        found = by_origin.pop((sent.topic, sent.partition, sent.offset), None)
        if found is None:
            problems.append(
                f"{case.name}: no dead letter for {sent.topic}[{sent.partition}]@{sent.offset}"
            )
            continue
        letter, headers = found
        reason = headers["error.reason"].decode()
        detail = headers["error.detail"].decode("utf-8")
        expected_value = case.value
        if case.value is not None and len(case.value) > MAX_DEAD_LETTER_BYTES:
            # Too large for any broker's default limit: a prefix, and the size it had.
            expected_value = case.value[:KEPT_PREFIX_BYTES]
            if (
                headers.get("error.truncated") != b"true"
                or headers.get("error.original_bytes") != str(len(case.value)).encode()
            ):
                problems.append(f"{case.name}: cut without error.truncated/original_bytes")
        if letter.value != expected_value or letter.key != case.key:
            problems.append(f"{case.name}: key or value changed on the way to the dead letter")
        if reason != case.reason:
            problems.append(f"{case.name}: reason {reason!r}, expected {case.reason!r}")
        if not detail or not detail.isprintable() or case.hint not in detail:
            problems.append(f"{case.name}: detail {detail[:200]!r} does not explain {case.hint!r}")
    problems.extend(f"dead letter for a message that was not bad: {origin}" for origin in by_origin)
    assert not problems, "\n".join(problems)
    assert len(letters) == len(bad)


def check_outcomes(samples: Samples, plan: Sequence[Planned]) -> None:
    """consumed = processed + duplicate + late + rejected, per topic, outcome and reason."""
    events = "salespulse_events_total"
    assert total(samples, events) == len(plan)
    for outcome in ("processed", "duplicate", "late", "rejected"):
        assert total(samples, events, outcome=outcome) == sum(p.outcome == outcome for p in plan), (
            outcome
        )
    expected = Counter((p.topic, p.outcome) for p in plan)
    for topic in SOURCE_TOPICS:
        for outcome in ("processed", "duplicate", "late", "rejected"):
            seen = total(samples, events, topic=topic, outcome=outcome)
            assert seen == expected[(topic, outcome)], (topic, outcome)
    for (topic, event_type), count in Counter(
        (p.topic, p.event_type) for p in plan if p.outcome != "rejected"
    ).items():
        seen = total(samples, events, topic=topic, type=event_type)
        assert seen - total(samples, events, topic=topic, type=event_type, outcome="rejected") == (
            count
        ), (topic, event_type)

    rejected = "salespulse_events_rejected_total"
    reasons = Counter((p.topic, p.bad.reason) for p in plan if p.bad is not None)
    assert total(samples, rejected) == sum(reasons.values())
    for (topic, reason), count in reasons.items():
        assert total(samples, rejected, topic=topic, reason=reason) == count, (topic, reason)
    by_reason = Counter(p.bad.reason for p in plan if p.bad is not None)
    for reason, count in by_reason.items():
        assert total(samples, rejected, reason=reason) == count, reason


def check_business_counters(samples: Samples, plan: Sequence[Planned]) -> None:
    """Bad messages and duplicates changed no number; late events still count in history."""
    counted = [p for p in plan if p.outcome in ("processed", "late")]
    for manager in MANAGERS:
        for metric, event_type in (
            ("salespulse_calls_total", "call.ended"),
            ("salespulse_deals_created_total", "deal.created"),
            ("salespulse_tasks_created_total", "task.created"),
            ("salespulse_tasks_completed_total", "task.completed"),
        ):
            want = sum(p.manager == manager and p.event_type == event_type for p in counted)
            assert total(samples, metric, manager=manager) == want, (manager, metric)
        assert total(samples, "salespulse_deals_closed_total", manager=manager, outcome="won") == 1


# -- the tests ----------------------------------------------------------------------------


def test_bad_input_is_dead_lettered_counted_and_harms_nothing(
    broker: EmbeddedBroker, worker: WorkerProcess
) -> None:
    corpus = CORPUS
    plan = mixed_stream("a", corpus)
    assert sum(p.bad is not None for p in plan) == len(corpus)
    create_topics(broker.url)
    published = publish(broker, plan)

    worker.start().wait_ready()
    wait_for(settled(worker.metrics_port, len(plan)), timeout=60, what="every message counted")
    # Dead letters are acknowledged before the state that counts them is written.
    wait_for(lambda: state_is_durable(broker.bootstrap, published), timeout=30, what="state")

    # (a) every bad message dead-lettered once, unchanged, with reason, detail and origin
    check_dead_letters(read_all(broker.bootstrap, DEAD), published)
    # (b), (c) each reason and each outcome counted exactly, per topic too
    samples = scrape(worker.metrics_port)
    check_outcomes(samples, plan)
    check_business_counters(samples, plan)

    # (d) the worker is still there and still works
    assert worker.process is not None
    assert worker.process.poll() is None
    calls_before = total(samples, "salespulse_calls_total", manager="m-2")
    publish(broker, [_planned(call("m-2", "C-after-corpus", 120.0, NOW))])

    def counted() -> Samples | None:
        now = scrape(worker.metrics_port)
        return now if total(now, "salespulse_calls_total", manager="m-2") > calls_before else None

    samples = wait_for(counted, timeout=30, what="a valid event after the corpus")
    assert total(samples, "salespulse_calls_total", manager="m-2") == calls_before + 1
    assert total(samples, "salespulse_events_total") == len(plan) + 1
    assert total(samples, "salespulse_events_total", outcome="processed") == (
        sum(p.outcome == "processed" for p in plan) + 1
    )
    assert worker.process.poll() is None


# -- restarts -------------------------------------------------------------------------------


# The counters the README says follow the event history (process metrics such as
# batches or changelog writes count from process start and are not among them).
HISTORY_COUNTERS = frozenset(
    f"salespulse_{name}_total"
    for name in (
        "deals_created",
        "deals_closed",
        "deals_won_amount",
        "funnel_stage_reached",
        "segment_deals_closed",
        "segment_won_amount",
        "tasks_created",
        "tasks_completed",
        "tasks_overdue",
        "regulation_checks",
        "calls",
        "call_duration_seconds",
        "events",
        "events_rejected",
        "label_overflow",
    )
)


def counters(samples: Samples) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """All-history counters: what a restart must neither lose nor repeat."""
    return {series: value for series, value in samples.items() if series[0] in HISTORY_COUNTERS}


def markers(tag: str) -> list[Planned]:
    """One valid event on every partition of every source topic.

    Once all are counted, the worker has consumed every partition past everything
    published before them, whatever it had committed.
    """
    at = NOW - timedelta(minutes=5)
    planned: list[Planned] = []
    for manager in key_for_each_partition(f"sync-{tag}-", PARTITIONS):
        planned += [
            _planned(deal_created(manager, f"D-{manager}", at)),
            _planned(task_created(manager, f"T-{manager}", "call", at, NOW + timedelta(days=2))),
            _planned(call(manager, f"C-{manager}", 30.0, at)),
        ]
    return planned


def with_markers(
    before: dict[Any, float], marked: Sequence[tuple[Planned, Sent]]
) -> dict[Any, float]:
    """The counters expected once the markers (of managers of their own) are processed too."""
    expected = dict(before)
    for mark, sent in marked:
        series = (
            "salespulse_events_total",
            frozenset(
                {
                    ("topic", mark.topic),
                    ("type", mark.event_type),
                    ("outcome", "processed"),
                    ("partition", str(sent.partition)),
                }
            ),
        )
        expected[series] = expected.get(series, 0.0) + 1.0
    return expected


def without_markers(samples: Samples) -> dict[Any, float]:
    return {
        series: value
        for series, value in counters(samples).items()
        if not dict(series[1]).get("manager", "").startswith("sync-")
    }


def restart_and_compare(
    broker: EmbeddedBroker,
    worker: WorkerProcess,
    published: list[tuple[Planned, Sent]],
    before: dict[Any, float],
    tag: str,
) -> list[tuple[Planned, Sent]]:
    """Start *worker* again; once it has consumed everything, nothing may have changed."""
    worker.start().wait_ready()
    marks = markers(tag)
    marked = publish(broker, marks)
    processed_before = sum(
        value
        for (name, labels), value in before.items()
        if name == "salespulse_events_total" and ("outcome", "processed") in labels
    )

    def synced() -> bool:
        samples = scrape(worker.metrics_port)
        done = total(samples, "salespulse_events_total", outcome="processed")
        return done >= processed_before + len(marks)

    wait_for(synced, timeout=60, what=f"markers {tag} after the restart")
    # The markers' state is written after the dead letters of their batch are acknowledged.
    wait_for(lambda: state_is_durable(broker.bootstrap, marked), timeout=30, what="markers")
    assert without_markers(scrape(worker.metrics_port)) == with_markers(before, marked)
    check_dead_letters(read_all(broker.bootstrap, DEAD), published)
    return marked


def test_restarts_neither_repeat_dead_letters_nor_change_counters(
    broker: EmbeddedBroker, worker: WorkerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Faust commits no offsets on its own schedule: after SIGKILL everything since the
    # last stop comes again, and only the state's own offsets keep it from counting twice.
    monkeypatch.setenv("BROKER_COMMIT_INTERVAL", "3600")
    create_topics(broker.url)
    plan = mixed_stream("a", CORPUS)
    published = publish(broker, plan)
    worker.start().wait_ready()
    wait_for(settled(worker.metrics_port, len(plan)), timeout=60, what="the first round")
    wait_for(lambda: state_is_durable(broker.bootstrap, published), timeout=30, what="state")
    samples = scrape(worker.metrics_port)
    check_outcomes(samples, plan)
    before = counters(samples)

    assert worker.stop(signal.SIGTERM) == 0
    marked = restart_and_compare(broker, worker, published, before, "term")

    # A second round of everything (new offsets, new valid ids), then SIGKILL once
    # its state is written but before any offset of it is committed.
    published += publish(broker, mixed_stream("b", CORPUS))
    consumed = len(published) + len(marked)
    wait_for(settled(worker.metrics_port, consumed), timeout=60, what="round two")
    wait_for(lambda: state_is_durable(broker.bootstrap, published), timeout=30, what="state")
    before = without_markers(scrape(worker.metrics_port))
    ends: dict[tuple[str, int], int] = {}
    for _, sent in published:
        where = (sent.topic, sent.partition)
        ends[where] = max(ends.get(where, 0), sent.offset + 1)
    committed = committed_offsets(broker.bootstrap, "salespulse", SOURCE_TOPICS)
    assert any(committed.get(where, 0) < end for where, end in ends.items()), (
        "the test must kill a worker that has offsets left to commit"
    )

    assert worker.stop(signal.SIGKILL) == -signal.SIGKILL
    restart_and_compare(broker, worker, published, before, "kill")
