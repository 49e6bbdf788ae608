"""The department's definitions, case by case: funnel, tasks, regulations, calls, labels."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from metrics.exposition import StateExposition
from salespulse.settings import KpiChange, KpiTargets, LabelLimits, Manager
from streams.state import ManagerState
from tests.support.harness import (
    NOW,
    Harness,
    call,
    deal_created,
    stage_changed,
    task_completed,
    task_created,
    task_overdue,
)
from tests.support.scrape import parse, total

T0 = NOW - timedelta(hours=6)
STAGES = ["lead", "qualified", "contacted", "needs_analysis", "demo"]


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def reached(h: Harness, manager: str = "m-a") -> dict[str, float]:
    state = h.manager(manager)
    found: dict[str, float] = {}
    for cell, value in state.counters.items():
        if cell[0] == "funnel_stage_reached_total":
            found[cell[2]] = found.get(cell[2], 0.0) + value
    return found


def scrape(h: Harness) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return parse(StateExposition(h.settings).text(h.store.records(), NOW))


# -- funnel -----------------------------------------------------------------------


def test_back_and_forth_counts_each_stage_once() -> None:
    h = Harness()
    h.send(
        deal_created("m-a", "D1", T0),  # stage 1
        stage_changed("m-a", "D1", "contacted", T0 + minutes(10)),  # 3 (skips 2)
        stage_changed("m-a", "D1", "qualified", T0 + minutes(20)),  # back to 2
        stage_changed("m-a", "D1", "contacted", T0 + minutes(30)),  # 3 again
        stage_changed("m-a", "D1", "demo", T0 + minutes(40)),  # 5 (skips 4)
    )
    assert reached(h) == dict.fromkeys(STAGES, 1.0)
    samples = scrape(h)
    assert total(samples, "salespulse_open_deals", manager="m-a", stage="demo") == 1
    assert total(samples, "salespulse_open_deals", manager="m-a") == 1
    # Four stays ended: lead, contacted, qualified, contacted.
    assert total(samples, "salespulse_deal_stage_duration_seconds_count", manager="m-a") == 4
    assert (
        total(samples, "salespulse_deal_stage_duration_seconds_sum", stage="contacted") == 2 * 600
    )
    assert (
        total(samples, "salespulse_period_stage_reached", window="day", stage="needs_analysis") == 1
    )


def test_conversion_never_exceeds_one_whatever_the_moves() -> None:
    h = Harness()
    moves = ["proposal", "lead", "demo", "qualified", "negotiation", "contacted", "proposal"]
    for n in range(10):
        events = [deal_created("m-a", f"D{n}", T0)]
        for step, stage in enumerate(moves[: n % len(moves) + 1]):
            events.append(stage_changed("m-a", f"D{n}", stage, T0 + minutes(step + 1)))
        h.send(*events)
    counts = reached(h)
    order = h.settings.pipelines["default"].stages
    values = [counts.get(stage, 0.0) for stage in order]
    assert values[0] == 10
    assert all(later <= earlier for earlier, later in itertools.pairwise(values))


def test_won_without_passing_all_stages_counts_them_and_the_cycle() -> None:
    h = Harness()
    h.send(
        deal_created("m-a", "D1", T0, product="GTX Pro", channel="web", segment="smb"),
        stage_changed("m-a", "D1", "won", T0 + timedelta(hours=2), amount=900.0),
    )
    assert reached(h) == dict.fromkeys(h.settings.pipelines["default"].stages, 1.0)
    assert h.counter("m-a", "deals_closed_total", "default", "won") == 1
    assert h.counter("m-a", "segment_won_amount_total", "default", "smb") == 900
    samples = scrape(h)
    assert total(samples, "salespulse_deal_sales_cycle_seconds_count", manager="m-a") == 1
    assert total(samples, "salespulse_deal_sales_cycle_seconds_sum", manager="m-a") == 7200
    assert total(samples, "salespulse_open_deals", manager="m-a") == 0
    assert total(samples, "salespulse_funnel_stage_reached_total", stage="negotiation") == 1
    # Product and channel are crossed per team only (unconfigured managers: team "").
    assert (
        total(
            samples,
            "salespulse_team_funnel_stage_reached_total",
            stage="negotiation",
            product="GTX Pro",
            channel="web",
        )
        == 1
    )


def test_lost_deal_reaches_no_further_stage() -> None:
    h = Harness()
    h.send(
        deal_created("m-a", "D1", T0),
        stage_changed("m-a", "D1", "qualified", T0 + minutes(5)),
        stage_changed("m-a", "D1", "lost", T0 + minutes(10)),
    )
    assert reached(h) == {"lead": 1.0, "qualified": 1.0}
    assert h.counter("m-a", "deals_closed_total", "default", "lost") == 1


# -- tasks ------------------------------------------------------------------------


def test_task_completed_after_its_deadline_is_late_and_overdue_once() -> None:
    h = Harness()
    h.send(
        task_created("m-a", "T1", "call", T0, due=T0 + minutes(30)),
        task_completed("m-a", "T1", T0 + minutes(90)),
        task_overdue("m-a", "T1", T0 + minutes(95)),  # the CRM confirms: nothing new
    )
    assert h.counter("m-a", "tasks_completed_total", "call", "false") == 1
    assert h.counter("m-a", "tasks_overdue_total", "call") == 1
    samples = scrape(h)
    day = {"manager": "m-a", "window": "day"}
    assert total(samples, "salespulse_period_tasks_deadline_passed", **day) == 1
    assert total(samples, "salespulse_period_tasks_overdue", **day) == 1
    assert total(samples, "salespulse_open_tasks", manager="m-a") == 0


def test_completed_before_created_gives_the_in_order_numbers() -> None:
    due = T0 + minutes(60)
    created = task_created("m-a", "T1", "meeting", T0, due=due)
    completed = task_completed("m-a", "T1", T0 + minutes(30))
    in_order, out_of_order = Harness(), Harness()
    in_order.send(created, completed)
    out_of_order.send(completed, created)
    for h in (in_order, out_of_order):
        assert h.counter("m-a", "tasks_created_total", "meeting") == 1
        assert h.counter("m-a", "tasks_completed_total", "meeting", "true") == 1
        assert h.counter("m-a", "tasks_overdue_total") == 0
    assert in_order.manager("m-a").counters == out_of_order.manager("m-a").counters


def test_overdue_noticed_from_the_managers_own_later_task_events() -> None:
    h = Harness()
    h.send(task_created("m-a", "T1", "call", T0, due=T0 + minutes(10)))
    assert h.counter("m-a", "tasks_overdue_total") == 0
    # A call is on another topic, which may run ahead of the tasks topic after a
    # catch-up: it proves nothing about completions still on their way.
    h.send(call("m-a", "C1", 60, T0 + minutes(15)))
    assert h.counter("m-a", "tasks_overdue_total") == 0
    # A later task event does: the tasks topic is ordered per manager.
    h.send(task_created("m-a", "T2", "email", T0 + minutes(15), due=T0 + minutes(300)))
    assert h.counter("m-a", "tasks_overdue_total", "call") == 1
    h.send(task_overdue("m-a", "T1", T0 + minutes(16)))
    assert h.counter("m-a", "tasks_overdue_total", "call") == 1  # confirmed, not double counted
    samples = scrape(h)
    assert total(samples, "salespulse_open_tasks_overdue", manager="m-a") == 1


def test_overdue_noticed_by_wall_clock_when_the_manager_is_quiet() -> None:
    h = Harness()
    h.send(task_created("m-a", "T1", "call", T0, due=T0 + minutes(10)))
    assert h.tick(T0 + minutes(9)) == 0
    assert h.tick(T0 + minutes(10.5)) == 1  # its deadline has passed ...
    assert h.counter("m-a", "tasks_deadline_passed_total", "call") == 1
    assert h.counter("m-a", "tasks_overdue_total") == 0  # ... but it is within the allowance
    assert h.tick(T0 + minutes(30)) == 1
    assert h.counter("m-a", "tasks_overdue_total", "call") == 1
    assert h.tick(T0 + minutes(60)) == 0  # once per task
    h.restart()
    assert h.counter("m-a", "tasks_overdue_total", "call") == 1  # the tick's state was written


def test_overdue_confirmation_before_creation_counts_once_with_its_type() -> None:
    h = Harness()
    h.send(
        task_overdue("m-a", "T1", T0 + minutes(20)),
        task_created("m-a", "T1", "proposal", T0, due=T0 + minutes(10)),
    )
    assert h.counter("m-a", "tasks_overdue_total", "proposal") == 1
    assert h.counter("m-a", "tasks_overdue_total") == 1


def test_completion_without_creation_is_counted_after_the_creation_wait() -> None:
    h = Harness()
    h.send(task_completed("m-a", "T-old", T0))
    assert h.counter("m-a", "tasks_completed_total") == 0
    h.send(task_completed("m-a", "T-other", T0 + minutes(4)))  # within the 5-minute wait
    assert h.counter("m-a", "tasks_completed_total") == 0
    h.send(task_completed("m-a", "T-last", T0 + minutes(6)))
    assert h.counter("m-a", "tasks_completed_total", "", "unknown") == 1


# -- regulations ------------------------------------------------------------------


@pytest.mark.parametrize("restart", [False, True])
def test_regulation_met_by_a_task_due_within_the_window(restart: bool) -> None:
    h = Harness()
    h.send(
        deal_created("m-a", "D1", T0),
        stage_changed("m-a", "D1", "proposal", T0 + minutes(5)),
        task_created(
            "m-a", "T1", "proposal", T0 + minutes(30), due=T0 + timedelta(hours=20), deal_id="D1"
        ),
    )
    # Decided at the deadline, like the ones that will be missed: no early "met".
    assert h.counter("m-a", "regulation_checks_total") == 0
    if restart:
        h.restart()
    h.tick(T0 + timedelta(hours=25))
    assert h.counter("m-a", "regulation_checks_total", "default", "proposal", "met") == 1
    assert h.counter("m-a", "regulation_checks_total", "default", "proposal", "missed") == 0
    samples = scrape(h)
    assert total(samples, "salespulse_period_regulation_checks", result="met", window="month") == 1


def test_regulation_missed_when_the_window_closes_without_a_fitting_task() -> None:
    h = Harness()
    h.send(
        deal_created("m-a", "D1", T0),
        stage_changed("m-a", "D1", "proposal", T0 + minutes(5)),
        # Wrong type, and one due too late: neither fits.
        task_created(
            "m-a", "T1", "call", T0 + minutes(6), due=T0 + timedelta(hours=2), deal_id="D1"
        ),
        task_created(
            "m-a", "T2", "proposal", T0 + minutes(7), due=T0 + timedelta(hours=30), deal_id="D1"
        ),
    )
    assert h.counter("m-a", "regulation_checks_total") == 0
    h.tick(T0 + timedelta(hours=25))
    assert h.counter("m-a", "regulation_checks_total", "default", "proposal", "missed") == 1
    samples = scrape(h)
    assert (
        total(samples, "salespulse_period_regulation_checks", result="missed", window="month") == 1
    )


def test_regulation_met_by_a_task_prepared_before_entering_the_stage() -> None:
    h = Harness()
    h.send(
        deal_created("m-a", "D1", T0),
        task_created(
            "m-a", "T1", "proposal", T0 + minutes(1), due=T0 + timedelta(hours=3), deal_id="D1"
        ),
        stage_changed("m-a", "D1", "proposal", T0 + minutes(5)),
    )
    assert h.counter("m-a", "regulation_checks_total") == 0
    h.tick(T0 + timedelta(hours=25))
    assert h.counter("m-a", "regulation_checks_total", "default", "proposal", "met") == 1


# -- calls and managers -------------------------------------------------------------


def test_a_call_of_zero_seconds_is_unanswered_and_adds_no_talk_time() -> None:
    h = Harness()
    h.send(call("m-a", "C0", 0, T0), call("m-a", "C1", 1200, T0 + minutes(1)))
    assert h.counter("m-a", "calls_total", "outbound", "false") == 1
    assert h.counter("m-a", "calls_total", "outbound", "true") == 1
    assert h.counter("m-a", "call_duration_seconds_total") == 1200
    samples = scrape(h)
    assert total(samples, "salespulse_calls_total", manager="m-a", answered="true") == 1
    # Buckets per team: the manager's average is talk time / answered calls.
    family = "salespulse_team_answered_call_duration_seconds"
    assert total(samples, f"{family}_count") == 1
    assert total(samples, f"{family}_bucket", le="1200") == 1
    assert total(samples, f"{family}_bucket", le="900") == 0
    assert not any(
        name.startswith(family) and "manager" in dict(labels) for name, labels in samples
    )


def test_a_manager_unknown_to_the_configuration_is_counted_and_named_by_id() -> None:
    h = Harness(managers={"m-a": Manager(name="Anna", team="north")})
    h.send(call("m-zz", "C1", 60, T0))
    assert h.counter("m-zz", "calls_total") == 1
    samples = scrape(h)
    info = {
        dict(series)["manager"]: dict(series)
        for (sample, series), value in samples.items()
        if sample == "salespulse_manager_info" and value == 1
    }
    assert info["m-zz"] == {"manager": "m-zz", "name": "m-zz", "team": ""}
    assert info["m-a"] == {"manager": "m-a", "name": "Anna", "team": "north"}


def test_kpi_targets_export_the_default_and_effective_overrides() -> None:
    h = Harness(
        kpi=KpiTargets(max_avg_call_duration_seconds=900, max_overdue_rate=0.2),
        managers={
            "m-a": Manager(name="Anna", kpi=KpiTargets(max_avg_call_duration_seconds=1620)),
            "m-b": Manager(name="Boris"),
        },
    )
    samples = scrape(h)
    kpi = "salespulse_kpi_target"
    assert total(samples, kpi, kpi="max_avg_call_duration_seconds", manager="") == 900
    assert total(samples, kpi, kpi="max_avg_call_duration_seconds", manager="m-a") == 1620
    assert total(samples, kpi, kpi="max_avg_call_duration_seconds", manager="m-b") == 900
    assert total(samples, kpi, kpi="max_overdue_rate", manager="m-a") == 0.2


# -- bounded labels -----------------------------------------------------------------


def test_products_beyond_the_cap_are_other_and_counted() -> None:
    h = Harness(labels=LabelLimits(max_values=2))
    for n, product in enumerate(["a", "b", "c", "d", "a"]):
        h.send(deal_created("m-a", f"D{n}", T0 + minutes(n), product=product))
    state: ManagerState = h.manager("m-a")
    products = {cell[2] for cell in state.counters if cell[0] == "deals_created_total"}
    assert products == {"a", "b", "other"}
    assert h.counter("m-a", "label_overflow_total", "product") == 2
    samples = scrape(h)
    assert total(samples, "salespulse_label_overflow_total", label="product") == 2


def test_listed_values_are_kept_and_others_folded() -> None:
    h = Harness(labels=LabelLimits(channels=("web", "partner")))
    h.send(
        deal_created("m-a", "D1", T0, channel="web"),
        deal_created("m-a", "D2", T0, channel="tv"),
        deal_created("m-a", "D3", T0),
    )
    channels = {cell[3] for cell in h.manager("m-a").counters if cell[0] == "deals_created_total"}
    assert channels == {"web", "other", ""}


def test_a_kpi_tightened_in_steps_takes_effect_on_its_dates() -> None:
    coached = Manager(
        name="Sabine",
        kpi=KpiTargets(max_avg_call_duration_seconds=1620),
        kpi_changes=(
            KpiChange(since=NOW.date() + timedelta(days=7), max_avg_call_duration_seconds=1320),
        ),
    )
    default = KpiTargets(max_avg_call_duration_seconds=900, max_overdue_rate=0.2)
    assert coached.kpi_on(NOW.date(), default).max_avg_call_duration_seconds == 1620
    later = coached.kpi_on(NOW.date() + timedelta(days=7), default)
    assert later.max_avg_call_duration_seconds == 1320
    assert later.max_overdue_rate == 0.2
    h = Harness(kpi=default, managers={"m-b": coached})
    assert (
        total(
            scrape(h), "salespulse_kpi_target", kpi="max_avg_call_duration_seconds", manager="m-b"
        )
        == 1620
    )


# -- out of order and skew between topics ------------------------------------------


def test_stage_changes_before_the_creation_give_the_in_order_numbers() -> None:
    created = deal_created("m-a", "D1", T0, product="crm-pro", channel="web")
    moves = [
        stage_changed("m-a", "D1", "proposal", T0 + minutes(1)),
        stage_changed("m-a", "D1", "won", T0 + minutes(2), amount=700.0),
    ]
    in_order, out_of_order = Harness(), Harness()
    in_order.send(created, *moves)
    out_of_order.send(*moves)
    assert out_of_order.counter("m-a", "deals_closed_total") == 0  # waiting for the creation
    out_of_order.send(created)
    expected = in_order.manager("m-a")
    actual = out_of_order.manager("m-a")
    assert actual.counters == expected.counters
    assert actual.histograms == expected.histograms
    assert {k: p.cells for k, p in actual.periods.items()} == {
        k: p.cells for k, p in expected.periods.items()
    }


def test_a_deal_never_created_is_counted_after_the_creation_wait() -> None:
    h = Harness()
    h.send(stage_changed("m-a", "OLD", "won", T0, amount=500.0))
    assert h.counter("m-a", "deals_closed_total") == 0
    h.send(stage_changed("m-a", "OTHER", "qualified", T0 + minutes(6)))  # the deals clock moves on
    assert h.counter("m-a", "deals_closed_total", "default", "won", "", "") == 1
    assert h.counter("m-a", "deals_won_amount_total") == 500.0
    assert h.counter("m-a", "deals_created_total") == 0  # its creation was never seen


def test_one_topic_running_ahead_makes_no_other_topic_late() -> None:
    h = Harness()
    h.send(call("m-a", "C-future", 60, T0 + timedelta(days=3)))  # the calls topic caught up first
    h.send(task_created("m-a", "T1", "call", T0, due=T0 + minutes(30)))
    h.send(deal_created("m-a", "D1", T0))
    state = h.manager("m-a")
    assert h.counter("m-a", "events_total", "crm.tasks", "task.created", "processed") == 1
    assert h.counter("m-a", "events_total", "crm.deals", "deal.created", "processed") == 1
    assert h.counter("m-a", "tasks_overdue_total") == 0
    day = f"day:{T0.astimezone(h.processor.zone).date().isoformat()}"
    assert state.periods[day].cells[("deals_created",)] == 1


# -- rates during the period --------------------------------------------------------


def test_the_overdue_rate_mid_month_counts_only_tasks_whose_deadline_has_passed() -> None:
    """The seed's delinquent manager on a day in mid-November: 25 tasks past their
    deadline this month, 11 of them never done, and 20 more due later this month.
    The rate is 11 / 25 = 0.44; counting the 20 at creation read 11 / 45 = 0.24."""
    h = Harness()
    start = NOW - timedelta(days=3)
    events = []
    for n in range(25):
        due = start + timedelta(hours=2 * n + 1)
        events.append(task_created("m-a", f"P{n}", "call", start + minutes(n), due=due))
        if n >= 11:
            events.append(task_completed("m-a", f"P{n}", due - minutes(5)))
    for n in range(20):
        due = NOW + timedelta(days=1 + n % 6)  # still November
        events.append(task_created("m-a", f"L{n}", "email", start + minutes(30 + n), due=due))
    h.send(*sorted(events, key=lambda event: str(event["occurred_at"])))
    h.tick(NOW)
    month = {"manager": "m-a", "window": "month"}
    samples = scrape(h)
    passed = total(samples, "salespulse_period_tasks_deadline_passed", **month)
    overdue = total(samples, "salespulse_period_tasks_overdue", **month)
    assert (passed, overdue) == (25, 11)
    assert overdue / passed == 0.44
    assert total(samples, "salespulse_tasks_deadline_passed_total", manager="m-a") == 25
    # The week began today: none of it was due yet.
    assert total(samples, "salespulse_period_tasks_deadline_passed", window="week") == 0


@pytest.mark.parametrize("restart", [False, True])
def test_a_task_done_early_is_counted_when_its_deadline_passes_weeks_later(restart: bool) -> None:
    """Counted past the dedupe horizon (7 days after it was done, when the task itself
    is forgotten), and after a restart from the changelog."""
    h = Harness()
    created = NOW - timedelta(days=20)
    h.send(
        task_created("m-a", "T-early", "proposal", created, due=NOW - timedelta(hours=1)),
        task_completed("m-a", "T-early", created + timedelta(days=1)),
    )
    for day in range(2, 20):  # the manager works on: the tasks stream moves on for days
        at = created + timedelta(days=day)
        h.send(task_created("m-a", f"T{day}", "call", at, due=at + timedelta(minutes=30)))
    assert h.counter("m-a", "tasks_deadline_passed_total", "proposal") == 0
    assert "T-early" not in h.manager("m-a").tasks
    if restart:
        h.persist()
        h.restart()
    h.tick(NOW)
    assert h.counter("m-a", "tasks_deadline_passed_total", "proposal") == 1
    assert h.counter("m-a", "tasks_completed_total", "proposal", "true") == 1
    assert h.counter("m-a", "tasks_overdue_total", "proposal") == 0
