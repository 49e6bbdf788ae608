"""The state exposition: records rendered into the contract's metrics at scrape time.

Records are built by hand, registered into a fresh registry, rendered with
``generate_latest`` and read back with the Prometheus text parser, so what is
checked is what a Prometheus server would ingest.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from prometheus_client.parser import text_string_to_metric_families

from metrics.exposition import StateExposition
from salespulse.settings import Settings
from streams.buckets import observe
from streams.cells import Cells
from streams.state import ManagerState, OpenPeriod, Record, RejectedState

BERLIN = ZoneInfo("Europe/Berlin")
SETTINGS = Settings(timezone="Europe/Berlin")
# 23:30 UTC on Sunday 22 November is 00:30 on Monday 23 November in Berlin (CET, +01:00):
# the current local day, ISO week and month differ from the UTC ones for the day and week.
CLOCK = datetime(2026, 11, 22, 23, 30, tzinfo=UTC)
CURRENT = {"day": "day:2026-11-23", "week": "week:2026-W48", "month": "month:2026-11"}
PAST = {"day": "day:2026-11-22", "week": "week:2026-W47", "month": "month:2026-10"}

Labels = frozenset[tuple[str, str]]
Scrape = dict[str, dict[Labels, float]]  # sample name -> labels -> value


def labels(**values: str) -> Labels:
    return frozenset(values.items())


def scrape(records: Iterable[Record], clock: datetime = CLOCK) -> Scrape:
    """Render the records' exposition and parse it."""
    return parse(StateExposition(SETTINGS).text(list(records), clock))


def parse(text: str) -> Scrape:
    found: Scrape = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series = found.setdefault(sample.name, {})
            key = frozenset(sample.labels.items())
            assert key not in series, f"duplicate series {sample.name}{dict(sample.labels)}"
            series[key] = sample.value
    return found


def families(records: Iterable[Record]) -> dict[str, str]:
    """Family name -> type, as the parser sees them."""
    text = StateExposition(SETTINGS).text(list(records), CLOCK)
    return {family.name: family.type for family in text_string_to_metric_families(text)}


def manager(manager_id: str, partition: int = 0) -> ManagerState:
    return ManagerState(manager_id=manager_id, partition=partition)


def busy_manager(manager_id: str, scale: float = 1.0) -> ManagerState:
    """A manager with one cell in every counter family, values multiplied by *scale*."""
    state = manager(manager_id)
    state.add(("deals_created_total", "default", "crm-pro", "web"), 3 * scale)
    state.add(("deals_closed_total", "default", "won", "crm-pro", "web"), 2 * scale)
    state.add(("deals_closed_total", "default", "lost", "crm-pro", "web"), 1 * scale)
    state.add(("deals_won_amount_total", "default", "crm-pro", "web"), 25000 * scale)
    state.add(("calls_total", "outbound", "true"), 7 * scale)
    state.add(("calls_total", "outbound", "false"), 4 * scale)
    state.add(("call_duration_seconds_total", "outbound"), 1800 * scale)
    state.add(("events_total", "crm.deals", "deal.created", "processed"), 3 * scale)
    return state


# -- counters ---------------------------------------------------------------------


MANAGER_COUNTER_LABELS = {
    "salespulse_deals_created_total": {"manager", "pipeline"},
    "salespulse_deals_closed_total": {"manager", "pipeline", "outcome"},
    "salespulse_deals_won_amount_total": {"manager", "pipeline"},
    "salespulse_calls_total": {"manager", "direction", "answered"},
    "salespulse_call_duration_seconds_total": {"manager", "direction"},
}


def test_counter_samples_end_in_total_and_carry_the_manager_label() -> None:
    result = scrape([busy_manager("m-1")])

    for name, label_names in MANAGER_COUNTER_LABELS.items():
        assert name in result, f"{name} missing from the exposition"
        for series in result[name]:
            assert {label for label, _ in series} == label_names, name
            assert dict(series)["manager"] == "m-1"


def test_counter_families_are_typed_counter() -> None:
    types = families([busy_manager("m-1")])

    for name in [*MANAGER_COUNTER_LABELS, "salespulse_events_total"]:
        assert types[name.removesuffix("_total")] == "counter", name


def test_counter_values_come_from_the_record() -> None:
    result = scrape([busy_manager("m-1")])

    assert result["salespulse_deals_created_total"] == {
        labels(manager="m-1", pipeline="default"): 3.0
    }
    closed = result["salespulse_deals_closed_total"]
    common = {"manager": "m-1", "pipeline": "default"}
    assert closed == {labels(**common, outcome="won"): 2.0, labels(**common, outcome="lost"): 1.0}
    assert result["salespulse_deals_won_amount_total"] == {labels(**common): 25000.0}
    assert result["salespulse_calls_total"] == {
        labels(manager="m-1", direction="outbound", answered="true"): 7.0,
        labels(manager="m-1", direction="outbound", answered="false"): 4.0,
    }
    assert result["salespulse_call_duration_seconds_total"] == {
        labels(manager="m-1", direction="outbound"): 1800.0
    }


def test_a_manager_series_sums_the_labels_it_leaves_to_the_team() -> None:
    state = busy_manager("m-1")
    state.add(("deals_created_total", "default", "analytics", "referral"), 4)
    state.add(("tasks_completed_total", "call", "true"), 2)
    state.add(("tasks_completed_total", "email", "true"), 3)
    state.add(("tasks_completed_total", "email", "false"), 1)

    result = scrape([state])

    assert result["salespulse_deals_created_total"] == {
        labels(manager="m-1", pipeline="default"): 7.0
    }
    assert result["salespulse_tasks_completed_total"] == {
        labels(manager="m-1", on_time="true"): 5.0,
        labels(manager="m-1", on_time="false"): 1.0,
    }


def test_team_families_cross_every_label_and_sum_the_team() -> None:
    settings = Settings(
        timezone="Europe/Berlin",
        managers={
            "m-1": {"name": "Anna", "team": "North"},
            "m-2": {"name": "Boris", "team": "North"},
            "m-3": {"name": "Chloe", "team": "South"},
        },
    )
    records = [busy_manager("m-1"), busy_manager("m-2", scale=10), busy_manager("m-3")]
    records.append(busy_manager("m-stranger"))  # not in the company file: team ""
    records[0].add(("deals_created_total", "default", "analytics", "referral"), 4)

    result = parse(StateExposition(settings).text(records, CLOCK))

    created = result["salespulse_team_deals_created_total"]
    web = {"pipeline": "default", "product": "crm-pro", "channel": "web"}
    assert created == {
        labels(team="North", **web): 33.0,
        labels(team="North", pipeline="default", product="analytics", channel="referral"): 4.0,
        labels(team="South", **web): 3.0,
        labels(team="", **web): 3.0,  # Prometheus stores team="" as no team label
    }
    for name, series in result.items():
        if name.startswith("salespulse_team_"):
            assert all("manager" not in dict(found) for found in series), name


def test_histograms_keep_sum_and_count_per_manager_and_buckets_per_team() -> None:
    state = manager("m-1")
    for seconds in (60.0, 60.0):
        observe(state.histograms, ("deal_stage_duration_seconds", "default", "lead"), seconds)

    result = scrape([state])

    series = labels(manager="m-1", pipeline="default", stage="lead")
    assert result["salespulse_deal_stage_duration_seconds_sum"] == {series: 120.0}
    assert result["salespulse_deal_stage_duration_seconds_count"] == {series: 2.0}
    assert "salespulse_deal_stage_duration_seconds_bucket" not in result
    buckets = result["salespulse_team_deal_stage_duration_seconds_bucket"]
    assert buckets[labels(team="", pipeline="default", stage="lead", le="+Inf")] == 2.0
    assert all("manager" not in dict(found) for found in buckets)


def test_a_scrape_reads_the_state_as_it_is_now() -> None:
    state = busy_manager("m-1")
    exposition = StateExposition(SETTINGS)
    series = labels(manager="m-1", direction="outbound", answered="true")

    before = parse(exposition.text([state], CLOCK))["salespulse_calls_total"][series]
    state.add(("calls_total", "outbound", "true"), 5)
    after = parse(exposition.text([state], CLOCK))["salespulse_calls_total"][series]

    assert (before, after) == (7.0, 12.0)


def test_manager_ids_with_special_characters_survive_the_exposition() -> None:
    awkward = 'O"Brien \\ Zoë'
    state = manager(awkward)
    state.add(("calls_total", "inbound", "true"), 1)

    result = scrape([state])

    assert result["salespulse_calls_total"] == {
        labels(manager=awkward, direction="inbound", answered="true"): 1.0
    }


def test_no_records_no_state_samples_only_configuration() -> None:
    result = scrape([])

    # no managers configured, no KPIs, no plan
    assert set(result) == {
        "salespulse_funnel_stage_info",
        "salespulse_funnel_stage_follows",
        "salespulse_calendar_elapsed_ratio",
        "salespulse_calendar_month_seconds_left",
    }
    assert len(result["salespulse_funnel_stage_info"]) == 9
    assert len(result["salespulse_funnel_stage_follows"]) == 8 * 9 // 2  # team "" only


# -- two managers -----------------------------------------------------------------


def test_two_managers_numbers_never_mix() -> None:
    one, two = busy_manager("m-1", scale=1), busy_manager("m-2", scale=10)
    one.periods[CURRENT["day"]] = OpenPeriod(0.0, Cells({("calls", "true"): 3}))
    two.periods[CURRENT["day"]] = OpenPeriod(0.0, Cells({("calls", "true"): 30}))

    result = scrape([one, two])

    for name in MANAGER_COUNTER_LABELS:
        by_manager: dict[str, float] = {}
        for series, value in result[name].items():
            who = dict(series)["manager"]
            by_manager[who] = by_manager.get(who, 0.0) + value
        assert set(by_manager) == {"m-1", "m-2"}, name
        assert by_manager["m-2"] == pytest.approx(10 * by_manager["m-1"]), name
    calls = result["salespulse_calls_total"]
    assert calls[labels(manager="m-1", direction="outbound", answered="true")] == 7.0
    assert calls[labels(manager="m-2", direction="outbound", answered="true")] == 70.0
    period = result["salespulse_period_calls"]
    assert period[labels(manager="m-1", window="day", answered="true")] == 3.0
    assert period[labels(manager="m-2", window="day", answered="true")] == 30.0


def test_a_manager_without_cells_of_a_family_gets_no_counter_series() -> None:
    quiet = manager("m-quiet")
    quiet.add(("calls_total", "inbound", "false"), 1)

    result = scrape([busy_manager("m-1"), quiet])

    created = result["salespulse_deals_created_total"]
    assert all(dict(series)["manager"] == "m-1" for series in created)
    quiet_calls = labels(manager="m-quiet", direction="inbound", answered="false")
    assert result["salespulse_calls_total"][quiet_calls] == 1.0


def test_a_manager_in_two_partitions_is_exported_once_summed() -> None:
    first, second = manager("m-1", partition=0), manager("m-1", partition=3)
    first.add(("calls_total", "inbound", "true"), 2)
    second.add(("calls_total", "inbound", "true"), 5)

    result = scrape([first, second])  # parse() fails on duplicate series

    assert result["salespulse_calls_total"] == {
        labels(manager="m-1", direction="inbound", answered="true"): 7.0
    }


# -- events_total -----------------------------------------------------------------


def test_events_total_is_summed_across_managers_and_rejections_per_partition() -> None:
    one, two = manager("m-1", partition=0), manager("m-2", partition=1)
    one.add(("events_total", "crm.calls", "call.ended", "processed"), 4)
    one.add(("events_total", "crm.calls", "call.ended", "duplicate"), 1)
    two.add(("events_total", "crm.calls", "call.ended", "processed"), 6)
    two.add(("events_total", "crm.deals", "deal.created", "late"), 2)
    rejected_calls = RejectedState(
        "crm.calls",
        0,
        offset=17,
        counters=Cells(
            {
                ("events_total", "crm.calls", "invalid", "rejected"): 3,
                ("events_rejected_total", "crm.calls", "invalid_json"): 3,
            }
        ),
    )
    rejected_calls_other_partition = RejectedState(
        "crm.calls",
        1,
        offset=4,
        counters=Cells(
            {
                ("events_total", "crm.calls", "invalid", "rejected"): 2,
                ("events_total", "crm.calls", "call.ended", "rejected"): 1,
                ("events_rejected_total", "crm.calls", "invalid_json"): 2,
                ("events_rejected_total", "crm.calls", "schema_violation"): 1,
            }
        ),
    )

    result = scrape([one, two, rejected_calls, rejected_calls_other_partition])

    # The partition travels with its counts when it moves to another worker.
    assert result["salespulse_events_total"] == {
        labels(topic="crm.calls", type="call.ended", outcome="processed", partition="0"): 4.0,
        labels(topic="crm.calls", type="call.ended", outcome="processed", partition="1"): 6.0,
        labels(topic="crm.calls", type="call.ended", outcome="duplicate", partition="0"): 1.0,
        labels(topic="crm.deals", type="deal.created", outcome="late", partition="1"): 2.0,
        labels(topic="crm.calls", type="invalid", outcome="rejected", partition="0"): 3.0,
        labels(topic="crm.calls", type="invalid", outcome="rejected", partition="1"): 2.0,
        labels(topic="crm.calls", type="call.ended", outcome="rejected", partition="1"): 1.0,
    }
    assert result["salespulse_events_rejected_total"] == {
        labels(topic="crm.calls", reason="invalid_json", partition="0"): 3.0,
        labels(topic="crm.calls", reason="invalid_json", partition="1"): 2.0,
        labels(topic="crm.calls", reason="schema_violation", partition="1"): 1.0,
    }


def test_events_total_has_no_manager_label() -> None:
    result = scrape([busy_manager("m-1"), busy_manager("m-2")])

    series = result["salespulse_events_total"]
    assert series == {
        labels(topic="crm.deals", type="deal.created", outcome="processed", partition="0"): 6.0
    }
    for name in ("salespulse_events_total", "salespulse_events_rejected_total"):
        for found in result.get(name, {}):
            assert "manager" not in dict(found)


def test_rejected_records_alone_create_no_manager_series() -> None:
    rejected_only = RejectedState(
        "crm.deals",
        2,
        offset=1,
        counters=Cells({("events_total", "crm.deals", "invalid", "rejected"): 1}),
    )

    result = scrape([rejected_only])

    assert set(result) == {
        "salespulse_events_total",
        "salespulse_funnel_stage_info",
        "salespulse_funnel_stage_follows",
        "salespulse_calendar_elapsed_ratio",
        "salespulse_calendar_month_seconds_left",
    }


# -- period gauges ----------------------------------------------------------------


PERIOD_GAUGES = {
    "salespulse_period_deals_created": ("deals_created", ()),
    "salespulse_period_deals_closed": ("deals_closed", ("outcome",)),
    "salespulse_period_won_amount": ("won_amount", ()),
    "salespulse_period_calls": ("calls", ("answered",)),
    "salespulse_period_call_duration_seconds": ("call_duration_seconds", ()),
}


def test_period_gauges_are_typed_gauge() -> None:
    types = families([manager("m-1")])

    for name in PERIOD_GAUGES:
        assert types[name] == "gauge", name


def test_period_gauges_export_zeros_for_known_label_values() -> None:
    result = scrape([manager("m-1")])

    windows = ("day", "week", "month")
    for gauge in ("deals_created", "won_amount", "call_duration_seconds"):
        assert result[f"salespulse_period_{gauge}"] == {
            labels(manager="m-1", window=window): 0.0 for window in windows
        }, gauge
    assert result["salespulse_period_deals_closed"] == {
        labels(manager="m-1", window=window, outcome=outcome): 0.0
        for window in windows
        for outcome in ("won", "lost")
    }
    assert result["salespulse_period_calls"] == {
        labels(manager="m-1", window=window, answered=answered): 0.0
        for window in windows
        for answered in ("true", "false")
    }


def test_period_gauges_show_the_current_local_period() -> None:
    state = manager("m-1")
    state.periods[CURRENT["day"]] = OpenPeriod(
        0.0, Cells({("calls", "true"): 1, ("won_amount",): 10})
    )
    state.periods[CURRENT["week"]] = OpenPeriod(
        0.0, Cells({("calls", "true"): 5, ("won_amount",): 50})
    )
    state.periods[CURRENT["month"]] = OpenPeriod(
        0.0,
        Cells(
            {
                ("calls", "true"): 20,
                ("calls", "false"): 4,
                ("won_amount",): 200,
                ("deals_created",): 9,
                ("deals_closed", "won"): 3,
                ("deals_closed", "lost"): 2,
                ("call_duration_seconds",): 3600,
            }
        ),
    )

    result = scrape([state])

    calls = result["salespulse_period_calls"]
    assert calls[labels(manager="m-1", window="day", answered="true")] == 1.0
    assert calls[labels(manager="m-1", window="week", answered="true")] == 5.0
    assert calls[labels(manager="m-1", window="month", answered="true")] == 20.0
    assert calls[labels(manager="m-1", window="month", answered="false")] == 4.0
    assert calls[labels(manager="m-1", window="day", answered="false")] == 0.0
    won = result["salespulse_period_won_amount"]
    assert won == {
        labels(manager="m-1", window="day"): 10.0,
        labels(manager="m-1", window="week"): 50.0,
        labels(manager="m-1", window="month"): 200.0,
    }
    month = labels(manager="m-1", window="month")
    assert result["salespulse_period_deals_created"][month] == 9.0
    assert result["salespulse_period_call_duration_seconds"][month] == 3600.0
    closed = result["salespulse_period_deals_closed"]
    assert closed[labels(manager="m-1", window="month", outcome="won")] == 3.0
    assert closed[labels(manager="m-1", window="month", outcome="lost")] == 2.0


def test_a_past_period_does_not_leak_into_the_current_one() -> None:
    state = manager("m-1")
    # The UTC day and week of CLOCK are already the past in Berlin.
    for key in PAST.values():
        state.periods[key] = OpenPeriod(0.0, Cells({("calls", "true"): 99, ("deals_created",): 99}))
    state.periods[CURRENT["day"]] = OpenPeriod(0.0, Cells({("calls", "true"): 1}))

    result = scrape([state])

    calls = result["salespulse_period_calls"]
    assert calls[labels(manager="m-1", window="day", answered="true")] == 1.0
    assert calls[labels(manager="m-1", window="week", answered="true")] == 0.0
    assert calls[labels(manager="m-1", window="month", answered="true")] == 0.0
    assert set(result["salespulse_period_deals_created"].values()) == {0.0}
    assert all(value != 99 for series in result.values() for value in series.values())


def test_a_new_month_starts_at_local_midnight() -> None:
    # 23:30 UTC on 30 November is 00:30 on 1 December in Berlin.
    clock = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    state = manager("m-1")
    state.periods["month:2026-11"] = OpenPeriod(0.0, Cells({("deals_created",): 40}))
    state.periods["day:2026-11-30"] = OpenPeriod(0.0, Cells({("deals_created",): 2}))
    state.periods["week:2026-W49"] = OpenPeriod(0.0, Cells({("deals_created",): 7}))

    result = scrape([state], clock=clock)

    assert result["salespulse_period_deals_created"] == {
        labels(manager="m-1", window="day"): 0.0,
        labels(manager="m-1", window="week"): 7.0,  # Monday 30 Nov started ISO week 49
        labels(manager="m-1", window="month"): 0.0,
    }


def test_the_elapsed_share_of_each_period_is_local_and_counts_a_short_day() -> None:
    # 29 March 2026 is 23 hours long in Berlin (clocks go forward at 02:00):
    # at 12:00 local (10:00 UTC, CEST) 11 of its 23 hours have passed.
    clock = datetime(2026, 3, 29, 10, 0, tzinfo=UTC)

    elapsed = scrape([], clock=clock)["salespulse_calendar_elapsed_ratio"]

    assert elapsed[labels(window="day")] == pytest.approx(11 / 23)
    # the ISO week began Monday 23 March 00:00 CET: 6 days and 11 hours of 167
    assert elapsed[labels(window="week")] == pytest.approx((6 * 24 + 11) / 167)
    # March: 28 days and 11 hours of 743
    assert elapsed[labels(window="month")] == pytest.approx((28 * 24 + 11) / 743)


def test_a_month_begun_locally_has_barely_begun() -> None:
    # 00:30 on 1 December in Berlin, still 30 November in UTC
    clock = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)

    elapsed = scrape([], clock=clock)["salespulse_calendar_elapsed_ratio"]

    assert elapsed[labels(window="month")] == pytest.approx(0.5 / (31 * 24))


def test_plans_export_the_default_and_each_managers_effective_plan() -> None:
    settings = Settings.model_validate(
        {
            "timezone": "Europe/Berlin",
            "plan": {"deals_closed": 12, "won_amount": 50000},
            "managers": {
                "m-1": {"name": "Anna", "plan": {"won_amount": 80000}},
                "m-2": {"name": "Ben"},
            },
        }
    )

    result = parse(StateExposition(settings).text([], CLOCK))

    assert result["salespulse_plan_target"] == {
        labels(manager="", plan="deals_closed"): 12.0,
        labels(manager="", plan="won_amount"): 50000.0,
        labels(manager="m-1", plan="deals_closed"): 12.0,
        labels(manager="m-1", plan="won_amount"): 80000.0,
        labels(manager="m-2", plan="deals_closed"): 12.0,
        labels(manager="m-2", plan="won_amount"): 50000.0,
    }


def test_a_target_planned_nowhere_is_not_exported() -> None:
    settings = Settings.model_validate(
        {"managers": {"m-1": {"name": "Anna", "plan": {"deals_closed": 9}}}}
    )

    result = parse(StateExposition(settings).text([], CLOCK))

    assert result["salespulse_plan_target"] == {labels(manager="m-1", plan="deals_closed"): 9.0}


def test_the_same_record_reads_differently_by_clock() -> None:
    state = manager("m-1")
    state.periods["day:2026-11-22"] = OpenPeriod(0.0, Cells({("calls", "false"): 6}))
    series = labels(manager="m-1", window="day", answered="false")
    before_local_midnight = datetime(2026, 11, 22, 22, 59, tzinfo=UTC)  # 23:59 in Berlin

    assert scrape([state], clock=before_local_midnight)["salespulse_period_calls"][series] == 6.0
    assert scrape([state], clock=CLOCK)["salespulse_period_calls"][series] == 0.0


def test_period_gauges_carry_manager_and_window_labels() -> None:
    result = scrape([manager("m-1")])

    for name, (_, extra) in PERIOD_GAUGES.items():
        assert name in result, name
        for series in result[name]:
            assert {label for label, _ in series} == {"manager", "window", *extra}, name
