"""What the domain remembers of a manager's deals, tasks and calls, as plain records.

These are the items the aggregation changes (streams.aggregate) and the
cells it counts in. How they are kept, packed, compressed and written to
the changelog is the state layer's business (streams.state, streams.items);
a record here only says how it becomes a list and back (``to_list``,
``from_list``), when it may be forgotten (``closed_day``) and what times it
waits for (``alarms``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from streams.buckets import STAGE_DURATION_BUCKETS

CellKey = tuple[str, ...]  # a metric's short name, then its label values
# A current-state gauge cell and what one item counts in it: 1 for a count, the deal's
# amount for the open pipeline's value.
GaugeCell = tuple[CellKey, float]

# What an item waits for (Alarms), each passed by the clock named.
TASK_DEADLINE = "l"  # tasks clock: an unscheduled deadline passed, the task done or not
TASK_DUE = "o"  # tasks clock, plus the overdue allowance
COMPLETION_WAIT = "w"  # tasks clock, plus the creation wait
CHECK_DEADLINE = "c"  # tasks clock
CREATION_WAIT = "p"  # deals clock, plus the creation wait
STUCK_AFTER = "s"  # deals clock: the end of the time an open deal may stay in its stage
AGE_BAND = "a"  # deals clock: an open deal's time in its stage passes the next age bound

Alarms = tuple[tuple[str, float], ...]  # (kind of wait, epoch seconds)

OPEN_DEAL_AGE = "open_deal_age"  # (pipeline, stage, age band): open deals by time in stage
OPEN_DEALS_AMOUNT = "open_deals_amount"  # (pipeline, stage): open deals' amount, the forecast's


def customer_key(customer_id: str) -> int:
    """The customer a deal is with, as kept in state: a signed 64-bit hash of its id.

    The contract's customer id may be a company's name; state keeps only what
    telling two customers apart needs (eight bytes, the same in every process
    and after a restart), never the text. Two of a million ids colliding is a
    chance of about three in 10^8.
    """
    digest = hashlib.blake2b(customer_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


OPEN_TASK: CellKey = ("open_tasks",)
OPEN_OVERDUE_TASK: CellKey = ("open_tasks_overdue",)
_OPEN_TASK_CELLS: tuple[GaugeCell, ...] = ((OPEN_TASK, 1.0),)
_OPEN_OVERDUE_TASK_CELLS: tuple[GaugeCell, ...] = ((OPEN_TASK, 1.0), (OPEN_OVERDUE_TASK, 1.0))


@dataclass(slots=True)
class RegulationCheck:
    """A stage regulation waiting, on its deal, for a task that meets it or its deadline.

    Both outcomes are counted at the deadline: counting a check met as soon as
    its task comes, while the ones that will be missed wait for the deadline,
    would show compliance too high until then. Once met, the check leaves its
    deal for the manager's schedule (ManagerState.owed); ``met`` is true
    only in records written before that schedule existed.
    """

    stage: str
    task_type: str
    deadline: float  # epoch seconds
    entered_at: float
    met: bool = False


_TAIL_DEFAULTS: tuple[Any, ...] = (None, False, 0, None)  # stuck_at, stuck, age_band, customer


@dataclass(slots=True)
class DealState:
    """What salespulse remembers of one deal until it is closed and expired."""

    pipeline: str
    product: str = ""
    channel: str = ""
    segment: str = ""
    amount: float | None = None
    created: bool = False
    outcome: str | None = None
    closed_day: int | None = None
    created_at: float | None = None
    stage: str | None = None  # the current stage
    stage_entered_at: float | None = None
    reached: int = -1  # highest index of the ordered funnel reached
    checks: list[RegulationCheck] = field(default_factory=list)
    # Stage changes seen before the deal's creation: (stage, amount, at), applied
    # when the creation arrives, or as they are once the creation wait is over.
    pending: list[tuple[str, float | None, float]] = field(default_factory=list)
    settled: bool = False  # no creation is waited for any more
    ids: list[str] = field(default_factory=list)  # event ids applied to this deal
    # When the deal, still in its current stage, becomes stuck there (the stage's limit
    # after entering it; None for a stage without one), and whether it has.
    stuck_at: float | None = None
    stuck: bool = False
    # How many of STAGE_DURATION_BUCKETS the deal's time in its current stage has
    # passed, as of the last sweep: its age band, counted per stage so that a rule
    # can compare the open deals' ages with the team's usual time in the stage.
    age_band: int = 0
    customer: int | None = None  # customer_key of deal.created's customer_id, if it named one

    def to_list(self) -> list[Any]:
        return [
            self.pipeline,
            self.product,
            self.channel,
            self.segment,
            self.amount,
            self.created,
            self.outcome,
            self.closed_day,
            self.created_at,
            self.stage,
            self.stage_entered_at,
            self.reached,
            self.settled,
            [list(entry) for entry in self.pending],
            [[c.stage, c.task_type, c.deadline, c.entered_at, c.met] for c in self.checks],
            self.ids,
            *self._tail(),
        ]

    def _tail(self) -> list[Any]:
        """The fields added since, without the trailing ones still at their defaults:
        most open deals are not stuck, in their first age band and without a customer,
        and a million deals carry those bytes in memory and in every changelog record
        (``from_list`` reads a shorter list as those defaults)."""
        tail: list[Any] = [self.stuck_at, self.stuck, self.age_band, self.customer]
        while tail and tail[-1] == _TAIL_DEFAULTS[len(tail) - 1]:
            tail.pop()
        if len(tail) == 1:
            tail.append(self.stuck)  # stuck_at and stuck are read as a pair
        return tail

    @classmethod
    def from_list(cls, items: list[Any]) -> DealState:
        deal = cls(*items[:12])
        deal.settled = items[12]
        deal.pending = [(stage, amount, at) for stage, amount, at in items[13]]
        deal.checks = [RegulationCheck(*check) for check in items[14]]
        if len(items) > 15:
            deal.ids = items[15]
        if len(items) > 17:  # absent from records written before stuck deals were counted
            deal.stuck_at, deal.stuck = items[16], items[17]
        if len(items) > 18:  # absent from records written before ages were banded
            deal.age_band = items[18]
        if len(items) > 19:  # absent from records written before customers were kept
            deal.customer = items[19]
        return deal

    def alarms(self) -> Alarms:
        """What the deal waits for: its regulations' deadline (tasks clock), the end of
        the wait for its creation (deals clock), counted from its first early change, and,
        open in a stage with a limit, the moment it becomes stuck there (deals clock)."""
        found: Alarms = ()
        if self.checks:
            found += ((CHECK_DEADLINE, min(check.deadline for check in self.checks)),)
        if self.pending:
            found += ((CREATION_WAIT, min(at for _, _, at in self.pending)),)
        if self.stuck_at is not None and not self.stuck and self.outcome is None:
            found += ((STUCK_AFTER, self.stuck_at),)
        next_bound = self.next_age_bound()
        if next_bound is not None:
            found += ((AGE_BAND, next_bound),)
        return found

    def next_age_bound(self) -> float | None:
        """When the open deal's time in its stage passes its band's upper bound."""
        if (
            self.outcome is None
            and self.stage_entered_at is not None
            and self.age_band < len(STAGE_DURATION_BUCKETS)
        ):
            return self.stage_entered_at + STAGE_DURATION_BUCKETS[self.age_band]
        return None

    def age_band_at(self, clock: float) -> int:
        """The band of the time in the current stage that *clock* has passed into."""
        if self.stage_entered_at is None:
            return 0
        age = clock - self.stage_entered_at
        return sum(1 for bound in STAGE_DURATION_BUCKETS if bound < age)

    def open_cells(self) -> tuple[GaugeCell, ...]:
        """The current-state gauge cells this deal counts in, and how much in each.

        An open deal counts 1 in its stage and its age band, and its amount (0
        without one) in the stage's open amount, which the pipeline forecast
        weighs by the chance of winning from that stage; moved with the deal
        when its stage or amount changes.
        """
        if self.outcome is None and self.stage is not None:
            cells: tuple[GaugeCell, ...] = (
                (("open_deals", self.pipeline, self.stage), 1.0),
                ((OPEN_DEALS_AMOUNT, self.pipeline, self.stage), self.amount or 0.0),
                ((OPEN_DEAL_AGE, self.pipeline, self.stage, str(self.age_band)), 1.0),
            )
            if self.stuck:
                return (*cells, (("stuck_deals", self.pipeline, self.stage), 1.0))
            return cells
        return ()


@dataclass(slots=True)
class TaskState:
    """A task from creation until it is completed and expired.

    A completion that arrives before its creation is held here (created
    False, completed_at set) until the creation tells the task's type and
    deadline, so out-of-order delivery gives the same numbers as in-order.
    """

    task_type: str = ""
    due_at: float | None = None
    created: bool = False
    deal_id: str | None = None
    completed_at: float | None = None
    completion_counted: bool = False
    overdue: bool = False
    closed_day: int | None = None
    ids: list[str] = field(default_factory=list)  # event ids applied to this task
    # Counted among the tasks whose deadline has passed (the overdue rate's denominator),
    # or, done before it, handed to ManagerState.owed to be counted when it passes.
    deadline_counted: bool = False

    def to_list(self) -> list[Any]:
        return [
            self.task_type,
            self.due_at,
            self.created,
            self.deal_id,
            self.completed_at,
            self.completion_counted,
            self.overdue,
            self.closed_day,
            self.ids,
            self.deadline_counted,
        ]

    @classmethod
    def from_list(cls, items: list[Any]) -> TaskState:
        return cls(*items)

    @property
    def is_open(self) -> bool:
        return self.created and self.completed_at is None

    def alarms(self) -> Alarms:
        """What the task waits for: its due time while open (then it is overdue, after
        the allowance); completed before its creation came, the end of that wait; and,
        restored from a record written before deadlines were scheduled in the manager's
        core (ManagerState.owed), its deadline, to be counted as passed."""
        found: Alarms = ()
        if self.created and self.due_at is not None and not self.deadline_counted:
            found += ((TASK_DEADLINE, self.due_at),)
        if self.is_open and not self.overdue and self.due_at is not None:
            found += ((TASK_DUE, self.due_at),)
        if not self.created and self.completed_at is not None and not self.completion_counted:
            found += ((COMPLETION_WAIT, self.completed_at),)
        return found

    def open_cells(self) -> tuple[GaugeCell, ...]:
        if not self.is_open:
            return ()
        if self.overdue:
            return _OPEN_OVERDUE_TASK_CELLS
        return _OPEN_TASK_CELLS


@dataclass(slots=True)
class CallIds:
    """Event ids of one manager's calls on one local day (forgotten like a deal closed
    that day)."""

    day: int
    ids: set[str] = field(default_factory=set)

    @property
    def closed_day(self) -> int:
        return self.day

    def alarms(self) -> Alarms:
        return ()

    def to_list(self) -> list[Any]:
        return [self.day, sorted(self.ids)]

    @classmethod
    def from_list(cls, items: list[Any]) -> CallIds:
        return cls(items[0], set(items[1]))
