"""How one accepted event changes a manager's numbers.

Pure functions of (state, event, configuration): no I/O and no wall clock,
so the same history always gives the same numbers, and tests can check them
without a broker. Definitions follow the department's own:

- a deal reaches a stage once, however often it moves back and forth, and a
  deal that jumps ahead has passed the stages in between: reached(k+1) can
  never exceed reached(k), so no stage conversion exceeds 100%;
- a deal closes (won or lost) once;
- a task counts as overdue once, when its deadline passes uncompleted (by
  the manager's event clock here, by wall clock in ``advance`` once live), or
  when it is completed late, or when the CRM confirms it;
- a task counts once among the tasks whose deadline has passed, done or not,
  when its deadline passes: the overdue rate of a period is overdue / those,
  so a task due later in the period is not in it yet (counting it at creation
  made the rate read 0.24 instead of 0.44 on the 2nd of the month);
- a stage regulation is met by a task of the required type for the deal,
  due within the regulation's window, created before the window closes, and
  missed when the window closes without one. Both are counted when the
  window closes, in the period the deadline falls in: counting "met" at once
  while "missed" waits would read compliance high until the deadlines pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from salespulse.settings import LabelLimits, Pipeline, Settings
from schemas.events import (
    TOPIC_OF_TYPE,
    CallEnded,
    DealCreated,
    DealStageChanged,
    Event,
    TaskCompleted,
    TaskCreated,
    TaskOverdue,
)
from streams.buckets import STAGE_DURATION_BUCKETS, observe
from streams.entities import (
    AGE_BAND,
    CHECK_DEADLINE,
    COMPLETION_WAIT,
    CREATION_WAIT,
    STUCK_AFTER,
    TASK_DEADLINE,
    TASK_DUE,
    CellKey,
    DealState,
    RegulationCheck,
    TaskState,
    customer_key,
)
from streams.intake import Rejection
from streams.periods import Period, periods_of
from streams.repository import ItemMap, Manager, OpenPeriod
from streams.task_quality import TaskText, assess

OTHER = "other"


class Aggregator:
    """Applies events to manager state under one company configuration."""

    def __init__(self, settings: Settings):
        self.zone: ZoneInfo = settings.zone
        self.pipelines: dict[str, Pipeline] = dict(settings.pipelines)
        self.grace = settings.grace_period_seconds
        self.retention_days = settings.dedupe_horizon_days
        self.allowance = settings.overdue_allowance_seconds
        self.creation_wait = settings.creation_wait_seconds
        # What each clock passes, by kind of Item.alarms, with the offset it adds.
        self.tasks_clock = {
            TASK_DEADLINE: 0.0,
            TASK_DUE: self.allowance,
            COMPLETION_WAIT: self.creation_wait,
            CHECK_DEADLINE: 0.0,
        }
        self.deals_clock = {CREATION_WAIT: self.creation_wait, STUCK_AFTER: 0.0, AGE_BAND: 0.0}
        limits: LabelLimits = settings.labels
        self.allowed: dict[str, frozenset[str]] = {
            "product": frozenset(limits.products),
            "channel": frozenset(limits.channels),
            "segment": frozenset(limits.segments),
            "task_type": frozenset(limits.task_types),
        }
        # Task types that regulations require are always kept, listed or not.
        self.always: dict[str, frozenset[str]] = {
            "task_type": frozenset(
                r.task_type for p in self.pipelines.values() for r in p.regulations.values()
            )
        }
        self.max_values = limits.max_values
        self.task_standards = settings.task_standards
        # Each configured type's standard merged over the default once: merging at every
        # new task cost about a tenth of the time a task takes. Other types: the default.
        self._standards = {
            task_type: self.task_standards.for_type(task_type)
            for task_type in self.task_standards.types
        }

    def check(self, event: Event) -> Rejection | None:
        """Reject what the configuration cannot place, before any state changes."""
        if isinstance(event, DealCreated | DealStageChanged):
            pipeline = self.pipelines.get(event.pipeline)
            if pipeline is None:
                known = ", ".join(sorted(self.pipelines))
                return Rejection(
                    "unknown_pipeline",
                    f"pipeline {event.pipeline!r} is not configured (configured: {known})",
                    event.type,
                )
            stage = event.stage if isinstance(event, DealCreated) else event.to_stage
            if stage not in pipeline.stages and stage not in pipeline.lost:
                return Rejection(
                    "unknown_stage",
                    f"stage {stage!r} is not a stage of pipeline {event.pipeline!r}",
                    event.type,
                )
        return None

    def apply(self, state: Manager, event: Event) -> bool:
        """Update all-history counters always, and the periods that are still open.

        Returns whether the event was late: its day had closed (end + grace)
        before the newest event of the same stream (topic) for this manager.
        """
        family = TOPIC_OF_TYPE[event.type]
        periods = periods_of(event.occurred_at, self.zone)
        stream = state.stream_watermarks.get(family, float("-inf"))
        late = periods[0].end_epoch + self.grace <= stream
        open_periods = self._open_periods(state, periods, stream)
        at = event.occurred_at.timestamp()
        if isinstance(event, DealCreated | DealStageChanged):
            before = state.deals.get(event.deal_id)
            cells = before.open_cells() if before is not None else ()
            if isinstance(event, DealCreated):
                self._deal_created(state, event, at, open_periods)
            else:
                self._deal_stage_changed(state, event, at, open_periods)
            deal = state.deals.get(event.deal_id)
            state.shift(cells, deal.open_cells() if deal is not None else ())
        elif isinstance(event, CallEnded):
            self._call_ended(state, event, open_periods)
        else:
            before_task = state.tasks.get(event.task_id)
            cells = before_task.open_cells() if before_task is not None else ()
            if isinstance(event, TaskCreated):
                self._task_created(state, event, at)
            elif isinstance(event, TaskCompleted):
                self._task_completed(state, event, at)
            else:
                self._task_overdue(state, event)
            task = state.tasks.get(event.task_id)
            state.shift(cells, task.open_cells() if task is not None else ())
        if at > stream:
            state.stream_watermarks[family] = at
            self._expire_periods(state)
        watermark = state.watermark
        if at > watermark:
            state.watermark = at
            if watermark == float("-inf") or int(at // 3600) != int(watermark // 3600):
                self._expire_closed(state)  # hourly is enough for a retention counted in days
        self.advance(
            state,
            tasks_clock=state.stream_watermarks.get("tasks", float("-inf")),
            deals_clock=state.stream_watermarks.get("deals", float("-inf")),
        )
        return late

    # -- the clock: deadlines -------------------------------------------------

    def advance(self, state: Manager, tasks_clock: float, deals_clock: float) -> bool:
        """Settle every deadline the clocks have passed; returns whether anything changed.

        Called with the manager's own event times after each event (task
        deadlines and regulations by the tasks stream, creation waits of deals
        by the deals stream), and with wall-clock time for partitions that are
        caught up, so a manager who has gone quiet still has overdue tasks
        noticed. ``next_check`` and ``next_deal_check`` never come after the
        earliest deadline; once passed, the items' alarms (streams.items) tell
        which items are due, without decoding the others, and the next.
        """
        changed = False
        if deals_clock >= state.next_deal_check:
            changed = self._settle_waiting_deals(state, deals_clock)
        if tasks_clock < state.next_check:
            return changed
        clock = tasks_clock
        if state.owed.soonest() < clock:
            for at, counter in state.owed.take_before(clock):
                self._count_owed(state, at, counter)
            changed = True
        soonest = self._next_check(state)
        if soonest >= clock:  # what set next_check was settled or completed meanwhile
            state.next_check = soonest
            return changed
        for task_id in state.tasks.due(self.tasks_clock, clock):
            task = state.tasks.peek(task_id)
            if task is None:
                continue
            before = task.open_cells()
            settled = False
            due = task.due_at
            if task.created and due is not None and not task.deadline_counted and due < clock:
                self._count_deadline(state, task)
                settled = True
            if (
                task.is_open
                and not task.overdue
                and due is not None
                and due + self.allowance < clock
            ):
                self._mark_overdue(state, task)
                settled = True
            elif (
                not task.created
                and task.completed_at is not None
                and not task.completion_counted
                and task.completed_at + self.creation_wait < clock
            ):
                # The creation never came within the wait: count what is known.
                self._count_completion(state, task)
                settled = True
            if not settled:
                continue
            state.tasks.put(task_id, task)
            state.shift(before, task.open_cells())
            changed = True
        for deal_id in state.deals.due(self.tasks_clock, clock):
            deal = state.deals.peek(deal_id)
            if deal is None or not deal.checks:
                continue
            pending = []
            for check in deal.checks:
                if check.deadline < clock:
                    self._count_regulation(
                        state, deal.pipeline, check, "met" if check.met else "missed"
                    )
                else:
                    pending.append(check)
            deal.checks = pending
            state.deals.put(deal_id, deal)
            changed = True
        state.next_check = self._next_check(state)
        return changed

    @staticmethod
    def _earliest(state: Manager, clock: Mapping[str, float]) -> float:
        return min(state.tasks.soonest(clock), state.deals.soonest(clock))

    def _next_check(self, state: Manager) -> float:
        return min(self._earliest(state, self.tasks_clock), state.owed.soonest())

    def _settle_waiting_deals(self, state: Manager, clock: float) -> bool:
        """Apply stage changes whose deal's creation did not come within the wait, and
        count as stuck the open deals that stayed in their stage beyond its limit."""
        changed = False
        soonest = state.deals.soonest(self.deals_clock)
        if soonest >= clock:  # what set next_deal_check was settled meanwhile
            state.next_deal_check = soonest
            return changed
        for deal_id in state.deals.due(self.deals_clock, clock):
            deal = state.deals.peek(deal_id)
            if deal is None:
                continue
            before = deal.open_cells()
            settled = False
            if deal.pending and min(at for _, _, at in deal.pending) + self.creation_wait < clock:
                deal.settled = settled = True
                self._replay_pending(state, str(deal_id), deal)
            if (
                deal.outcome is None
                and not deal.stuck
                and deal.stuck_at is not None
                and deal.stuck_at < clock
            ):
                deal.stuck = settled = True  # no stage change came within the stage's limit
            if deal.outcome is None and deal.stage is not None:
                band = deal.age_band_at(clock)
                if band != deal.age_band:
                    deal.age_band, settled = band, True
            if not settled:
                continue  # its creation came meanwhile
            state.deals.put(deal_id, deal)
            state.shift(before, deal.open_cells())
            changed = True
        state.next_deal_check = self._earliest(state, self.deals_clock)
        return changed

    def index(self, state: Manager) -> None:
        """Find a manager's next deadlines again (after its state is restored), and its
        gauges too when the record they came from predates some of their cells."""
        state.restored = False
        if state.gauges_outdated:
            state.rebuild_gauges()
        state.next_check = self._next_check(state)
        state.next_deal_check = self._earliest(state, self.deals_clock)

    def _replay_pending(self, state: Manager, deal_id: str, deal: DealState) -> None:
        pending, deal.pending = sorted(deal.pending, key=lambda entry: entry[2]), []
        stream = state.stream_watermarks.get("deals", float("-inf"))
        for stage, amount, at in pending:
            periods = self._periods_at(state, at, stream)
            self._enter_stage(state, deal_id, deal, stage, amount, at, periods)

    # -- periods and expiry ---------------------------------------------------

    def _open_periods(
        self, state: Manager, periods: Iterable[Period], watermark: float
    ) -> list[OpenPeriod]:
        found = []
        for period in periods:
            end = period.end_epoch
            if end + self.grace <= watermark:
                continue  # closed: the event still counts in the all-history counters
            found.append(state.open_period(period.key, end))
        return found

    def _periods_at(self, state: Manager, at: float, watermark: float) -> list[OpenPeriod]:
        moment = datetime.fromtimestamp(at, self.zone)
        return self._open_periods(state, periods_of(moment, self.zone), watermark)

    def _task_periods_at(self, state: Manager, at: float) -> list[OpenPeriod]:
        return self._periods_at(state, at, state.stream_watermarks.get("tasks", float("-inf")))

    @staticmethod
    def _add_period(periods: list[OpenPeriod], cell: CellKey, amount: float = 1.0) -> None:
        for period in periods:
            period.cells.add(cell, amount)

    def _expire_periods(self, state: Manager) -> None:
        """Forget periods every stream has closed."""
        watermark = min(state.stream_watermarks.values())
        closed = [key for key, p in state.periods.items() if p.end + self.grace <= watermark]
        for key in closed:
            state.close_period(key)

    def _expire_closed(self, state: Manager) -> None:
        """Forget deals and tasks closed, and call ids of days, older than the retention."""
        newest_day = datetime.fromtimestamp(state.watermark, self.zone).date().toordinal()
        cutoff = newest_day - self.retention_days
        maps: tuple[ItemMap[Any], ...] = (state.deals, state.tasks, state.calls)
        for items in maps:
            for name in items.expired(cutoff):
                items.delete(name)

    def _day(self, at: float) -> int:
        return datetime.fromtimestamp(at, self.zone).date().toordinal()

    # -- labels -----------------------------------------------------------------

    def _label(self, state: Manager, kind: str, value: str | None) -> str:
        """A bounded label value: listed, admitted first-come up to the cap, or ``other``."""
        if not value:
            return ""
        if value in self.always.get(kind, ()):
            return value
        allowed = self.allowed[kind]
        if allowed:
            if value in allowed:
                return value
        else:
            admitted = state.labels.setdefault(kind, [])
            if value in admitted:
                return value
            if len(admitted) < self.max_values:
                admitted.append(value)
                return value
        state.add(("label_overflow_total", kind))
        return OTHER

    # -- deals ------------------------------------------------------------------

    def _deal(self, state: Manager, deal_id: str, pipeline: str) -> DealState:
        deal = state.deals.get(deal_id)
        if deal is None:
            deal = DealState(pipeline=pipeline)
            state.deals.put(deal_id, deal)
        return deal

    def _deal_created(
        self, state: Manager, event: DealCreated, at: float, periods: list[OpenPeriod]
    ) -> None:
        deal = self._deal(state, event.deal_id, event.pipeline)
        if deal.created:
            return  # a second creation of the same deal changes nothing
        deal.created = True
        deal.created_at = at
        deal.product = self._label(state, "product", event.product)
        deal.channel = self._label(state, "channel", event.channel)
        deal.segment = self._label(state, "segment", event.segment)
        if event.amount is not None:
            deal.amount = event.amount
        if event.customer_id:
            deal.customer = customer_key(event.customer_id)
        state.add(("deals_created_total", deal.pipeline, deal.product, deal.channel))
        self._add_period(periods, ("deals_created",))
        self._enter_stage(state, event.deal_id, deal, event.stage, event.amount, at, periods)
        if deal.pending:
            self._replay_pending(state, event.deal_id, deal)

    def _deal_stage_changed(
        self, state: Manager, event: DealStageChanged, at: float, periods: list[OpenPeriod]
    ) -> None:
        # A deal first seen here was created before salespulse saw it, or its
        # creation is still on its way; it is counted when (if) that arrives.
        deal = self._deal(state, event.deal_id, event.pipeline)
        if event.amount is not None:
            deal.amount = event.amount
        if not deal.created and not deal.settled:
            # Wait a little for the creation, which carries product and channel.
            deal.pending.append((event.to_stage, event.amount, at))
            first = min(entry[2] for entry in deal.pending)
            state.next_deal_check = min(state.next_deal_check, first + self.creation_wait)
            return
        self._enter_stage(state, event.deal_id, deal, event.to_stage, event.amount, at, periods)

    def _enter_stage(
        self,
        state: Manager,
        deal_id: str,
        deal: DealState,
        stage: str,
        amount: float | None,
        at: float,
        periods: list[OpenPeriod],
    ) -> None:
        pipeline = self.pipelines[deal.pipeline]
        newest = deal.stage_entered_at is None or at >= deal.stage_entered_at
        if newest and deal.stage != stage:
            if deal.stage is not None and deal.stage_entered_at is not None:
                observe(
                    state.histograms,
                    ("deal_stage_duration_seconds", deal.pipeline, deal.stage),
                    at - deal.stage_entered_at,
                )
            deal.stage = stage
            deal.stage_entered_at = at
            limit = pipeline.stuck_after_seconds(stage)
            deal.stuck, deal.stuck_at = False, None if limit is None else at + limit
            deal.age_band = 0
            if deal.outcome is None:
                state.next_deal_check = min(state.next_deal_check, at + STAGE_DURATION_BUCKETS[0])
            if deal.stuck_at is not None and deal.outcome is None:
                state.next_deal_check = min(state.next_deal_check, deal.stuck_at)
            regulation = pipeline.regulations.get(stage)
            if regulation is not None and deal.outcome is None:
                check = RegulationCheck(
                    stage, regulation.task_type, at + regulation.within_hours * 3600, at
                )
                self._open_check(state, deal_id, deal, check)
        index = pipeline.index_of(stage)
        if index is not None and index > deal.reached:
            for passed in pipeline.stages[deal.reached + 1 : index + 1]:
                state.add(
                    (
                        "funnel_stage_reached_total",
                        deal.pipeline,
                        passed,
                        deal.product,
                        deal.channel,
                    )
                )
                self._add_period(periods, ("stage_reached", deal.pipeline, passed))
            deal.reached = index
        self._maybe_close(state, deal, stage, amount, at, periods)

    def _maybe_close(
        self,
        state: Manager,
        deal: DealState,
        stage: str,
        amount: float | None,
        at: float,
        periods: list[OpenPeriod],
    ) -> None:
        outcome = self.pipelines[deal.pipeline].outcome_of(stage)
        if outcome is None or deal.outcome is not None:
            return  # not a closing stage, or closed already: once per deal
        deal.outcome = outcome
        deal.closed_day = self._day(at)
        state.add(("deals_closed_total", deal.pipeline, outcome, deal.product, deal.channel))
        state.add(("segment_deals_closed_total", deal.pipeline, deal.segment, outcome))
        self._add_period(periods, ("deals_closed", outcome))
        if outcome == "won":
            value = amount if amount is not None else (deal.amount or 0.0)
            state.add(("deals_won_amount_total", deal.pipeline, deal.product, deal.channel), value)
            state.add(("segment_won_amount_total", deal.pipeline, deal.segment), value)
            self._add_period(periods, ("won_amount",), value)
            self._add_period(periods, ("segment_won_amount", deal.pipeline, deal.segment), value)
            if deal.customer is not None:
                self._count_won_customer(state, deal, deal.customer, at, periods)
            if deal.created_at is not None:
                observe(
                    state.histograms,
                    ("deal_sales_cycle_seconds", deal.pipeline),
                    max(0.0, at - deal.created_at),
                )

    def _count_won_customer(
        self, state: Manager, deal: DealState, customer: int, at: float, periods: list[OpenPeriod]
    ) -> None:
        """Count the deal's customer once in each open period of the win, by pipeline and
        segment, and, the first time in its calendar month, in the all-history counter.

        Each period remembers the customers it counted (OpenPeriod.note_customer), so a
        second deal won with the same customer adds nothing; a deal closes once, so a
        won event delivered twice never comes here twice. The counter counts a customer
        once per manager and month: its 30 days (x - x offset 30d) count a customer won
        in two months of the range twice, and one won by two managers once for each.
        A win whose month has closed (beyond the grace period) is in no period and
        not in the counter either.
        """
        won = (deal.pipeline, deal.segment, customer)
        month = state.periods.get(
            periods_of(datetime.fromtimestamp(at, self.zone), self.zone)[2].key
        )
        for period in periods:
            if not period.note_customer(won):
                continue
            period.cells.add(("won_customers", deal.pipeline, deal.segment))
            if period is month:
                state.add(("segment_won_customers_total", deal.pipeline, deal.segment))

    # -- regulations ------------------------------------------------------------

    def _open_check(
        self, state: Manager, deal_id: str, deal: DealState, check: RegulationCheck
    ) -> None:
        for task in state.tasks_of_deal(deal_id):
            if task.created and self._satisfies(task, check):
                self._schedule_met(state, deal.pipeline, check)
                return
        deal.checks.append(check)  # waits for a task that meets it, or its deadline
        state.next_check = min(state.next_check, check.deadline)

    def _schedule_met(self, state: Manager, pipeline: str, check: RegulationCheck) -> None:
        """A check met before its deadline is counted met when the deadline passes."""
        self._schedule(
            state, check.deadline, ("regulation_checks_total", pipeline, check.stage, "met")
        )

    @staticmethod
    def _satisfies(task: TaskState, check: RegulationCheck) -> bool:
        return (
            task.task_type == check.task_type
            and task.due_at is not None
            and check.entered_at <= task.due_at <= check.deadline
        )

    def _count_regulation(
        self, state: Manager, pipeline: str, check: RegulationCheck, result: str
    ) -> None:
        state.add(("regulation_checks_total", pipeline, check.stage, result))
        self._add_period(
            self._task_periods_at(state, check.deadline), ("regulation_checks", result)
        )

    # -- tasks ------------------------------------------------------------------

    def _task_created(self, state: Manager, event: TaskCreated, at: float) -> None:
        task = state.tasks.get(event.task_id)
        if task is None:
            task = TaskState()
            state.tasks.put(event.task_id, task)
        if task.created:
            return
        task.created = True
        task.task_type = self._label(state, "task_type", event.task_type)
        task.due_at = event.due_at.timestamp()
        task.deal_id = event.deal_id
        state.add(("tasks_created_total", task.task_type))
        deal_id = event.deal_id
        deal = state.deals.peek(deal_id) if deal_id else None  # decoded once, for both uses
        self._count_description(state, event, task.task_type, at, deal)
        self._schedule_deadline(state, task)
        if task.completed_at is not None:
            if not task.completion_counted:
                self._count_completion(state, task)  # its completion arrived first
        elif task.overdue:
            self._mark_overdue(state, task)  # confirmed before it was created
        else:
            state.next_check = min(state.next_check, task.due_at + self.allowance)
        if deal_id and deal is not None and deal.checks:
            waiting = []
            for check in deal.checks:
                if not check.met and at <= check.deadline and self._satisfies(task, check):
                    self._schedule_met(state, deal.pipeline, check)
                else:
                    waiting.append(check)
            if len(waiting) < len(deal.checks):
                deal.checks = waiting
                state.deals.put(deal_id, deal)

    def _count_description(
        self,
        state: Manager,
        event: TaskCreated,
        task_type: str,
        at: float,
        deal: DealState | None,
    ) -> None:
        """Judge the new task's description once, keeping the outcomes and never the text."""
        standard = self._standards.get(event.task_type, self.task_standards.default)
        if standard is None:
            return
        text = TaskText(
            event.task_type, event.description, event.links or (), at, event.due_at.timestamp()
        )
        checks = assess(text, standard, self._allowed_hours(event, deal))
        for check, passed in checks.items():
            result = "passed" if passed else "failed"
            state.add(("task_description_checks_total", task_type, check, result))
        outcome = "meets" if all(checks.values()) else "falls_short"
        state.add(("task_descriptions_total", task_type, outcome))

    def _allowed_hours(self, event: TaskCreated, deal: DealState | None) -> float | None:
        """How soon the regulation of the task's stage wants a task of its type due.

        The stage is the event's, else the deal's current one; the pipeline is the
        deal's, and for a deal not known here the most lenient regulation of that
        stage in any pipeline, so a task is never failed for what is not known.
        """
        stage = event.stage or (deal.stage if deal is not None else None)
        if stage is None:
            return None
        pipelines = (
            [self.pipelines[deal.pipeline]]
            if deal is not None and deal.pipeline in self.pipelines
            else list(self.pipelines.values())
        )
        allowed = [
            regulation.within_hours
            for pipeline in pipelines
            if (regulation := pipeline.regulations.get(stage)) is not None
            and regulation.task_type == event.task_type
        ]
        return max(allowed) if allowed else None

    def _task_completed(self, state: Manager, event: TaskCompleted, at: float) -> None:
        task = state.tasks.get(event.task_id)
        if task is None:
            task = TaskState(deal_id=event.deal_id)
            state.tasks.put(event.task_id, task)
        if task.completed_at is not None:
            return  # completed once
        task.completed_at = at
        if task.created:
            self._count_completion(state, task)
        else:
            state.next_check = min(state.next_check, at + self.creation_wait)

    def _count_completion(self, state: Manager, task: TaskState) -> None:
        assert task.completed_at is not None
        if task.due_at is None:
            on_time = "unknown"
        else:
            on_time = "true" if task.completed_at <= task.due_at else "false"
        state.add(("tasks_completed_total", task.task_type, on_time))
        self._add_period(
            self._task_periods_at(state, task.completed_at), ("tasks_completed", on_time)
        )
        task.completion_counted = True
        task.closed_day = self._day(task.completed_at)
        if on_time == "false" and not task.overdue:
            self._mark_overdue(state, task)  # it passed its deadline uncompleted
        elif task.due_at is not None and not task.deadline_counted:
            self._schedule_deadline(state, task)  # a task restored from before schedules

    def _task_overdue(self, state: Manager, event: TaskOverdue) -> None:
        """The CRM's confirmation: counts only a task not already counted overdue."""
        task = state.tasks.get(event.task_id)
        if task is None:
            task = TaskState()
            state.tasks.put(event.task_id, task)
        if task.overdue or task.completed_at is not None:
            return
        if task.created:
            self._mark_overdue(state, task)
        else:
            task.overdue = True  # counted when the creation tells its type and deadline

    def _mark_overdue(self, state: Manager, task: TaskState) -> None:
        task.overdue = True
        state.add(("tasks_overdue_total", task.task_type))
        if task.due_at is not None:
            self._add_period(self._task_periods_at(state, task.due_at), ("tasks_overdue",))
            # An overdue task is past its deadline (rate <= 1), even if the CRM says so
            # before the clock has passed it.
            if not task.deadline_counted:
                self._count_deadline(state, task)
            else:
                counter = ("tasks_deadline_passed_total", task.task_type)
                if state.owed.remove(task.due_at, counter):
                    self._count_owed(state, task.due_at, counter)

    def _schedule_deadline(self, state: Manager, task: TaskState) -> None:
        """Count the task's deadline when the tasks clock passes it, done by then or not."""
        assert task.due_at is not None
        task.deadline_counted = True
        self._schedule(state, task.due_at, ("tasks_deadline_passed_total", task.task_type))

    def _count_deadline(self, state: Manager, task: TaskState) -> None:
        assert task.due_at is not None
        task.deadline_counted = True
        self._count_owed(state, task.due_at, ("tasks_deadline_passed_total", task.task_type))

    # -- counts owed at a later time (streams.schedule) ---------------------------

    @staticmethod
    def _schedule(state: Manager, at: float, counter: CellKey) -> None:
        """Add one to *counter* once the tasks clock passes *at*."""
        state.owed.add(at, counter)
        state.next_check = min(state.next_check, at)

    def _count_owed(self, state: Manager, at: float, counter: CellKey) -> None:
        """Count *counter*, owed at *at*, and its period cell in the periods of *at*."""
        state.add(counter)
        if counter[0] == "tasks_deadline_passed_total":
            cell: CellKey = ("tasks_deadline_passed",)
        else:  # regulation_checks_total, by pipeline, stage and result
            cell = ("regulation_checks", counter[-1])
        self._add_period(self._task_periods_at(state, at), cell)

    # -- calls ------------------------------------------------------------------

    def _call_ended(self, state: Manager, event: CallEnded, periods: list[OpenPeriod]) -> None:
        answered = "true" if event.was_answered else "false"
        state.add(("calls_total", event.direction, answered))
        self._add_period(periods, ("calls", answered))
        if event.was_answered:
            state.add(("call_duration_seconds_total", event.direction), event.duration_seconds)
            self._add_period(periods, ("call_duration_seconds",), event.duration_seconds)
            observe(
                state.histograms,
                ("answered_call_duration_seconds", event.direction),
                event.duration_seconds,
            )
