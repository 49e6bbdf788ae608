"""A seeded, clock-driven model of a B2B sales floor that speaks the event contract.

The floor exists so that a demo, a load test or a dashboard review has a
stream that looks like a real department: deals enter the funnel and advance
stage by stage or drop out to the lost stage, every stage brings its regulated
task with a deadline, tasks are done on time, late or never, and calls come in
and go out with realistic talk times. Everything is drawn from one seeded
``random.Random``, and the floor never reads the wall clock: the caller passes
"now" on every step. The same seed and the same sequence of clock readings give
the same events, byte for byte, which is what makes the numbers testable.

Managers come from the configuration (sorted by id) or, when it names none,
are generated as ``m-01`` .. ``m-20``. The first four carry the seed cases from
the department's own worked examples, so the dashboards and alerts have
something to find:

``m-01`` (*delinquent*)
    44% of tasks are overdue: completed after their deadline or never.
``m-02`` (*long caller*)
    answered calls average 32 minutes against a team norm of about 15
    (the demo configuration gives this manager a personal target of 27).
``m-03`` (*strong converter*)
    about 16% of created deals end won.
``m-04`` (*weak converter*)
    about 4% of created deals end won, with a strong drop from stage 4 to
    stage 5 (``needs_analysis`` -> ``demo`` in the demo funnel): only about a
    quarter of the deals that reach stage 4 get further.

The rest of the team has 10-15% of tasks overdue, calls of 13.5-16.5 minutes
on average, and converts 8-10% of deals end to end.

Time is compressed by ``speed``: every simulated duration (time in a stage,
a task's deadline, the time until it is done) is divided by it, so at the
default of 60 one simulated hour passes in one minute and a demo shows
completed and overdue tasks and closed deals almost at once. Events are
stamped with the clock's "now" when they are handed out, never with a
planned time, so ``occurred_at`` is never in the future and never lags far
behind; only ``due_at`` points ahead.

Every new deal names its customer (``customer_id``), drawn from a fixed pool
per segment so that key accounts buy again and small firms rarely do; the
value-per-customer panels need repeat customers to mean anything. A floor
given ``stall_share`` leaves that share of the deals that fail one of the
early transitions (up to ``STALL_BEFORE``) in their stage instead of closing
them as lost, as real managers leave unresponsive leads: without it every
failed lead is a loss and the win rate (won / (won + lost)) equals the
end-to-end conversion, far below what a real floor reports. Customers and
stalls come from random streams of their own, so neither moves any other
number of a seeded floor.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from salespulse.settings import Pipeline, Settings
from salespulse.simulate.descriptions import task_text
from schemas.events import TOPIC_OF_TYPE

__all__ = [
    "DEFAULT_SPEED",
    "SEED_PROFILES",
    "WEAK_TRANSITION",
    "Profile",
    "SalesFloor",
    "SimManager",
    "topic_for",
]

Event = dict[str, Any]

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0

DEFAULT_SPEED = 60.0
SOURCE = "simulator"
GENERATED_MANAGERS = 20

# The transition that the weak converter fails at: from the 4th stage to the 5th.
WEAK_TRANSITION = 3


@dataclass(frozen=True)
class Profile:
    """How one manager works; the seed cases are profiles with one extreme trait."""

    name: str
    overdue_share: float  # share of tasks not done by their deadline (late or never)
    call_minutes: float  # mean talk time of an answered call
    conversion: float  # share of created deals that end won
    weak_step: float | None = None  # conversion of WEAK_TRANSITION, when it is the weak spot
    activity: float = 1.0  # relative share of the floor's new work


DELINQUENT = Profile("delinquent", overdue_share=0.44, call_minutes=15.0, conversion=0.09)
LONG_CALLER = Profile("long_caller", overdue_share=0.12, call_minutes=32.0, conversion=0.09)
STRONG_CONVERTER = Profile(
    "strong_converter", overdue_share=0.12, call_minutes=15.0, conversion=0.16
)
WEAK_CONVERTER = Profile(
    "weak_converter", overdue_share=0.12, call_minutes=15.0, conversion=0.04, weak_step=0.25
)
SEED_PROFILES: tuple[Profile, ...] = (DELINQUENT, LONG_CALLER, STRONG_CONVERTER, WEAK_CONVERTER)


@dataclass(frozen=True)
class SimManager:
    """One simulated manager with the per-transition odds derived from the profile."""

    manager_id: str
    name: str
    team: str
    profile: Profile
    advance: tuple[float, ...]  # probability of passing each funnel transition
    call_log_mu: float  # location of the log-normal talk time, in seconds


# (name, list price, weight); amounts scale with the customer segment.
PRODUCTS: tuple[tuple[str, float, float], ...] = (
    ("crm-starter", 2400.0, 0.30),
    ("crm-pro", 9600.0, 0.25),
    ("analytics", 6000.0, 0.15),
    ("telephony", 3600.0, 0.20),
    ("implementation", 15000.0, 0.10),
)
# (name, weight, relative odds of qualifying a lead); normalised to average 1 below,
# so the channel mix shifts conversion between channels but not per manager.
CHANNELS: tuple[tuple[str, float, float], ...] = (
    ("website", 0.35, 1.00),
    ("referral", 0.15, 1.30),
    ("cold-outreach", 0.25, 0.75),
    ("partner", 0.15, 1.15),
    ("event", 0.10, 1.05),
)
# (name, weight, deal size multiplier)
SEGMENTS: tuple[tuple[str, float, float], ...] = (
    ("smb", 0.55, 1.0),
    ("mid-market", 0.33, 3.0),
    ("enterprise", 0.12, 10.0),
)

# The regulation of each stage of the demo funnel: which task it brings and its deadline.
STAGE_TASKS: dict[str, tuple[str, float]] = {
    "lead": ("call", 30 * MINUTE),  # a new lead is called back within half an hour
    "qualified": ("call", 4 * HOUR),
    "contacted": ("email", 1 * DAY),
    "needs_analysis": ("meeting", 2 * DAY),
    "demo": ("meeting", 2 * DAY),
    "proposal": ("proposal", 1 * DAY),
    "negotiation": ("call", 4 * HOUR),
    "contract": ("email", 1 * DAY),
}
# Stages with other names get regulations by position.
FALLBACK_TASKS: tuple[tuple[str, float], ...] = (
    ("call", 4 * HOUR),
    ("email", 1 * DAY),
    ("meeting", 2 * DAY),
    ("proposal", 1 * DAY),
)
# Tasks nobody's funnel prescribes: follow-ups, reminders.
AD_HOC_TASKS: tuple[tuple[str, float, float], ...] = (
    ("call", 4 * HOUR, 0.45),
    ("email", 1 * DAY, 0.40),
    ("meeting", 2 * DAY, 0.15),
)

_PRODUCT_WEIGHTS = tuple(weight for _, _, weight in PRODUCTS)
_CHANNEL_WEIGHTS = tuple(weight for _, weight, _ in CHANNELS)
_SEGMENT_WEIGHTS = tuple(weight for _, weight, _ in SEGMENTS)
_AD_HOC_WEIGHTS = tuple(weight for _, _, weight in AD_HOC_TASKS)

# Mix of new work when nothing planned is due.
NEW_DEAL_SHARE = 0.35
NEW_CALL_SHARE = 0.45  # the rest are ad-hoc tasks

LEAD_DWELL_MEAN = 4 * HOUR
LEAD_DWELL_MAX = 12 * HOUR
STAGE_DWELL_MEAN = 0.6 * DAY
STAGE_DWELL_MAX = 1.5 * DAY
DWELL_MIN = 10 * MINUTE

SKIP_SHARE = 0.05  # advancing deals that jump over the next stage
REVISE_SHARE = 0.25  # advancing deals whose value is renegotiated
NEVER_DONE_SHARE = 0.30  # overdue tasks that are never completed at all
CONFIRM_SHARE = 0.20  # overdue tasks the CRM confirms with a task.overdue event
INBOUND_SHARE = 0.30
UNANSWERED_INBOUND = 0.08
UNANSWERED_OUTBOUND = 0.28
CALL_SIGMA = 0.55
CALL_MIN_SECONDS = 20.0
CALL_MAX_SECONDS = 4 * HOUR
DEAL_CALL_SHARE = 0.5  # calls that are about one of the manager's open deals
DEAL_TASK_SHARE = 0.4  # ad-hoc tasks that are about one of the manager's open deals
# Customers per segment in the floor's market: few key accounts, many small firms.
CUSTOMER_POOL: dict[str, int] = {"smb": 400, "mid-market": 120, "enterprise": 30}
STALL_BEFORE = 3  # transitions from these stages may stall instead of being lost


@dataclass
class _Deal:
    deal_id: str
    manager: SimManager
    channel_factor: float
    amount: float
    stage: int = 0
    doomed: bool = False  # already failed the transition it will attempt next
    slot: int = -1  # position in the manager's list of open deals


_Action = Callable[[float], Event | None]


class SalesFloor:
    """The simulated department; call :meth:`step` with the clock to get its events.

    Work that is already planned (stage moves, task completions) is handed out
    first, in planned order, as soon as the clock passes its time; the rest of
    what the caller asks for is new work: new deals, calls and ad-hoc tasks.
    Asking for fewer events than are due delays the rest to later steps, so
    the floor never outruns the rate its caller sets.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        seed: int = 0,
        speed: float = DEFAULT_SPEED,
        pipeline: str = "default",
        stall_share: float = 0.0,
    ) -> None:
        if not speed > 0 or math.isinf(speed):
            raise ValueError(f"speed must be a positive number, not {speed!r}")
        if not 0.0 <= stall_share <= 1.0:
            raise ValueError(f"stall_share must be between 0 and 1, not {stall_share!r}")
        if pipeline not in settings.pipelines:
            known = ", ".join(sorted(settings.pipelines)) or "none"
            raise ValueError(f"pipeline {pipeline!r} is not configured (known: {known})")
        self.seed = seed
        self.speed = speed
        self.pipeline_name = pipeline
        self._rng = random.Random(seed)
        self._texts = random.Random(f"task-texts-{seed}")  # apart, so no other number moves
        self._customers = random.Random(f"customers-{seed}")
        self._stalls = random.Random(f"stalls-{seed}")
        self.stall_share = stall_share
        self._zone = ZoneInfo(settings.timezone)
        funnel: Pipeline = settings.pipelines[pipeline]
        self.stages: tuple[str, ...] = funnel.stages
        self.won_index = min(funnel.stages.index(stage) for stage in funnel.won)
        self.lost_stage: str | None = funnel.lost[0] if funnel.lost else None
        self.managers: tuple[SimManager, ...] = self._staff(settings)
        self._cum_activity: list[float] = []
        total = 0.0
        for manager in self.managers:
            total += manager.profile.activity
            self._cum_activity.append(total)
        mean_factor = sum(weight * odds for _, weight, odds in CHANNELS)
        self._channel_factor = {name: odds / mean_factor for name, _, odds in CHANNELS}
        self._open: dict[str, list[_Deal]] = {m.manager_id: [] for m in self.managers}
        self._heap: list[tuple[float, int, _Action]] = []
        self._seq = 0
        self._counters = {"event": 0, "deal": 0, "task": 0, "call": 0}
        self._tag: str | None = None
        self._last: float | None = None
        self._now_text = ""

    # -- the public surface -------------------------------------------------

    @property
    def pending(self) -> int:
        """Planned events not handed out yet."""
        return len(self._heap)

    @property
    def open_deals(self) -> int:
        return sum(len(deals) for deals in self._open.values())

    def manager(self, manager_id: str) -> SimManager:
        for manager in self.managers:
            if manager.manager_id == manager_id:
                return manager
        raise KeyError(manager_id)

    def step(self, now: datetime, wanted: int, *, on_schedule: bool = False) -> list[Event]:
        """Advance the floor to *now* and return *wanted* events stamped with it.

        With *on_schedule*, every planned event that is due comes out besides
        the *wanted* new work, so work planned at a real pace (a task done by
        its deadline) happens when planned however quiet the hour is.
        *now* must be timezone-aware and must not go backwards between calls.
        """
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("the clock must be timezone-aware")
        if wanted < 0:
            raise ValueError(f"cannot hand out {wanted} events")
        ts = now.timestamp()
        if self._last is not None and ts < self._last:
            raise ValueError("the clock went backwards")
        if self._tag is None:
            # Ids carry the seed and the start time: the same run repeats itself exactly,
            # while a second run with the same seed is not taken for a replay of the first.
            origin = f"{self.seed}:{now.isoformat()}".encode()
            self._tag = hashlib.blake2b(origin, digest_size=4).hexdigest()
        self._last = ts
        self._now_text = now.astimezone(self._zone).isoformat()
        out: list[Event] = []
        heap = self._heap
        while (on_schedule or len(out) < wanted) and heap and heap[0][0] <= ts:
            _, _, action = heapq.heappop(heap)
            event = action(ts)
            if event is not None:
                out.append(event)
        if on_schedule:
            wanted += len(out)
        rng = self._rng
        while len(out) < wanted:
            roll = rng.random()
            if roll < NEW_DEAL_SHARE:
                out.append(self._new_deal(ts))
            elif roll < NEW_DEAL_SHARE + NEW_CALL_SHARE:
                out.append(self._new_call(ts))
            else:
                out.append(self._new_task(ts))
        return out

    # -- staffing -----------------------------------------------------------

    def _staff(self, settings: Settings) -> tuple[SimManager, ...]:
        if settings.managers:
            roster = [
                (manager_id, settings.managers[manager_id].name, settings.managers[manager_id].team)
                for manager_id in sorted(settings.managers)
            ]
        else:
            roster = [
                (f"m-{number:02d}", f"Manager {number:02d}", "")
                for number in range(1, GENERATED_MANAGERS + 1)
            ]
        rng = self._rng
        staff: list[SimManager] = []
        for position, (manager_id, name, team) in enumerate(roster):
            if position < len(SEED_PROFILES):
                profile = SEED_PROFILES[position]
            else:
                profile = Profile(
                    "team",
                    overdue_share=rng.uniform(0.10, 0.15),
                    call_minutes=rng.uniform(13.5, 16.5),
                    conversion=rng.uniform(0.08, 0.10),
                    activity=rng.uniform(0.8, 1.2),
                )
            advance = _advance_odds(profile, self.won_index, rng)
            mean_seconds = profile.call_minutes * MINUTE
            staff.append(
                SimManager(
                    manager_id=manager_id,
                    name=name,
                    team=team,
                    profile=profile,
                    advance=advance,
                    call_log_mu=math.log(mean_seconds) - CALL_SIGMA**2 / 2,
                )
            )
        return tuple(staff)

    # -- new work -------------------------------------------------------------

    def _pick_manager(self) -> SimManager:
        return self._rng.choices(self.managers, cum_weights=self._cum_activity)[0]

    def _new_deal(self, ts: float) -> Event:
        rng = self._rng
        manager = self._pick_manager()
        product, price, _ = rng.choices(PRODUCTS, weights=_PRODUCT_WEIGHTS)[0]
        channel, _, _ = rng.choices(CHANNELS, weights=_CHANNEL_WEIGHTS)[0]
        segment, _, size = rng.choices(SEGMENTS, weights=_SEGMENT_WEIGHTS)[0]
        amount = max(100.0, round(price * size * rng.lognormvariate(0.0, 0.35), -2))
        deal = _Deal(
            deal_id=self._next_id("deal", "D"),
            manager=manager,
            channel_factor=self._channel_factor[channel],
            amount=amount,
        )
        self._open_add(deal)
        self._plan_stage(ts, deal)
        return self._event(
            "deal.created",
            manager.manager_id,
            deal_id=deal.deal_id,
            pipeline=self.pipeline_name,
            stage=self.stages[0],
            amount=amount,
            product=product,
            channel=channel,
            segment=segment,
            customer_id=self._customer(segment),
        )

    def _customer(self, segment: str) -> str:
        pool = CUSTOMER_POOL.get(segment, CUSTOMER_POOL["smb"])
        return f"CU-{segment[:3].upper()}-{self._customers.randrange(1, pool + 1):03d}"

    def _new_call(self, ts: float) -> Event:
        rng = self._rng
        manager = self._pick_manager()
        direction = "inbound" if rng.random() < INBOUND_SHARE else "outbound"
        deal = self._some_open_deal(manager) if rng.random() < DEAL_CALL_SHARE else None
        return self._call(manager, direction, deal.deal_id if deal else None, ts)

    def _new_task(self, ts: float) -> Event:
        rng = self._rng
        manager = self._pick_manager()
        task_type, deadline, _ = rng.choices(AD_HOC_TASKS, weights=_AD_HOC_WEIGHTS)[0]
        deal = self._some_open_deal(manager) if rng.random() < DEAL_TASK_SHARE else None
        return self._task_created(manager, deal, task_type, deadline, ts)

    # -- deals ----------------------------------------------------------------

    def _plan_stage(self, ts: float, deal: _Deal) -> None:
        """Give a deal that just entered a stage the stage's task and its next move."""
        task_type, deadline = self._regulation(deal.stage)
        self._plan(ts, partial(self._task_created, deal.manager, deal, task_type, deadline))
        if deal.stage < self.won_index:
            self._plan(ts + self._dwell(deal.stage), partial(self._move, deal))

    def _regulation(self, stage: int) -> tuple[str, float]:
        name = self.stages[stage]
        if name in STAGE_TASKS:
            return STAGE_TASKS[name]
        return FALLBACK_TASKS[stage % len(FALLBACK_TASKS)]

    def _dwell(self, stage: int) -> float:
        if stage == 0:
            mean, longest = LEAD_DWELL_MEAN, LEAD_DWELL_MAX
        else:
            mean, longest = STAGE_DWELL_MEAN, STAGE_DWELL_MAX
        simulated = min(longest, max(DWELL_MIN, self._rng.expovariate(1.0 / mean)))
        return simulated / self.speed

    def _move(self, deal: _Deal, ts: float) -> Event | None:
        rng = self._rng
        manager = deal.manager
        stage = deal.stage
        odds = manager.advance[stage]
        if stage == 0:
            odds = min(0.98, odds * deal.channel_factor)
        passed = not deal.doomed and rng.random() < odds
        deal.doomed = False
        if not passed:
            self._open_remove(deal)
            if stage < STALL_BEFORE and self._stalls.random() < self.stall_share:
                return None  # left in its stage: open, stuck, never closed
            if self.lost_stage is None:
                return None
            return self._stage_changed(deal, stage, self.lost_stage)
        target = stage + 1
        if target + 1 < self.won_index and rng.random() < SKIP_SHARE:
            # A jump is two transitions passed at once; a failed second one is
            # remembered, so a jump never gives a deal a second chance.
            if rng.random() < manager.advance[target]:
                target += 1
            else:
                deal.doomed = True
        if rng.random() < REVISE_SHARE:
            deal.amount = max(100.0, round(deal.amount * rng.uniform(0.85, 1.10), -2))
        deal.stage = target
        event = self._stage_changed(deal, stage, self.stages[target])
        if target >= self.won_index:
            self._open_remove(deal)
        else:
            self._plan_stage(ts, deal)
        return event

    def _stage_changed(self, deal: _Deal, from_stage: int, to_stage: str) -> Event:
        return self._event(
            "deal.stage_changed",
            deal.manager.manager_id,
            deal_id=deal.deal_id,
            pipeline=self.pipeline_name,
            from_stage=self.stages[from_stage],
            to_stage=to_stage,
            amount=deal.amount,
        )

    def _open_add(self, deal: _Deal) -> None:
        deals = self._open[deal.manager.manager_id]
        deal.slot = len(deals)
        deals.append(deal)

    def _open_remove(self, deal: _Deal) -> None:
        deals = self._open[deal.manager.manager_id]
        last = deals.pop()
        if last is not deal:
            deals[deal.slot] = last
            last.slot = deal.slot
        deal.slot = -1

    def _some_open_deal(self, manager: SimManager) -> _Deal | None:
        deals = self._open[manager.manager_id]
        return deals[self._rng.randrange(len(deals))] if deals else None

    # -- tasks ------------------------------------------------------------------

    def _task_created(
        self,
        manager: SimManager,
        deal: _Deal | None,
        task_type: str,
        deadline: float,
        ts: float,
    ) -> Event:
        """Create a task and decide its fate at once: done in time, late, or never."""
        rng = self._rng
        task_id = self._next_id("task", "T")
        deal_id = deal.deal_id if deal else None
        due = ts + deadline / self.speed
        if rng.random() < manager.profile.overdue_share:
            if rng.random() >= NEVER_DONE_SHARE:
                late_by = max(15 * MINUTE, rng.uniform(0.1, 1.5) * deadline)
                done = partial(self._task_completed, manager, task_id, task_type, deal_id)
                self._plan(due + late_by / self.speed, done)
            if rng.random() < CONFIRM_SHARE:
                # Confirmed a few minutes after the deadline, before any late completion.
                confirm = partial(self._task_overdue, manager, task_id)
                self._plan(due + rng.uniform(1, 10) * MINUTE / self.speed, confirm)
        else:
            done_after = rng.uniform(0.1, 0.7) * deadline / self.speed
            done = partial(self._task_completed, manager, task_id, task_type, deal_id)
            self._plan(ts + done_after, done)
        fields: dict[str, Any] = {
            "task_id": task_id,
            "task_type": task_type,
            "due_at": datetime.fromtimestamp(due, self._zone).isoformat(),
        }
        if deal is not None:
            fields["deal_id"] = deal.deal_id
            fields["stage"] = self.stages[deal.stage]
        fields.update(task_text(self._texts, manager.manager_id, task_type, deal_id))
        return self._event("task.created", manager.manager_id, **fields)

    def _task_completed(
        self,
        manager: SimManager,
        task_id: str,
        task_type: str,
        deal_id: str | None,
        ts: float,
    ) -> Event:
        if task_type == "call":
            self._plan(ts, partial(self._call, manager, "outbound", deal_id))
        fields: dict[str, Any] = {"task_id": task_id}
        if deal_id is not None:
            fields["deal_id"] = deal_id
        return self._event("task.completed", manager.manager_id, **fields)

    def _task_overdue(self, manager: SimManager, task_id: str, ts: float) -> Event:
        return self._event("task.overdue", manager.manager_id, task_id=task_id)

    # -- calls ------------------------------------------------------------------

    def _call(self, manager: SimManager, direction: str, deal_id: str | None, ts: float) -> Event:
        rng = self._rng
        unanswered = UNANSWERED_INBOUND if direction == "inbound" else UNANSWERED_OUTBOUND
        answered = rng.random() >= unanswered
        duration = 0.0
        if answered:
            talk = rng.lognormvariate(manager.call_log_mu, CALL_SIGMA)
            duration = float(round(min(CALL_MAX_SECONDS, max(CALL_MIN_SECONDS, talk))))
        fields: dict[str, Any] = {
            "call_id": self._next_id("call", "C"),
            "direction": direction,
            "duration_seconds": duration,
            "answered": answered,
        }
        if deal_id is not None:
            fields["deal_id"] = deal_id
        return self._event("call.ended", manager.manager_id, **fields)

    # -- plumbing ---------------------------------------------------------------

    def _plan(self, at: float, action: _Action) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, action))

    def _next_id(self, kind: str, prefix: str) -> str:
        self._counters[kind] += 1
        return f"{prefix}-{self._tag}-{self._counters[kind]}"

    def _event(self, event_type: str, manager_id: str, **fields: Any) -> Event:
        event: Event = {
            "event_id": self._next_id("event", "sim"),
            "type": event_type,
            "occurred_at": self._now_text,
            "manager_id": manager_id,
            "source": SOURCE,
        }
        event.update(fields)
        return event


def topic_for(event: Event, settings: Settings) -> str:
    """The configured topic an event belongs on, by its type."""
    family = TOPIC_OF_TYPE.get(event.get("type", ""))
    if family == "deals":
        return settings.topic_deals
    if family == "tasks":
        return settings.topic_tasks
    if family == "calls":
        return settings.topic_calls
    raise ValueError(f"no topic for event type {event.get('type')!r}")


def _advance_odds(profile: Profile, transitions: int, rng: random.Random) -> tuple[float, ...]:
    """Split a manager's end-to-end conversion into per-transition odds.

    The first transition (qualifying a lead) is the hardest and the last
    (signing a contract that is on the table) the easiest; a weak step takes
    its fixed share and the others make up the rest, so the product of all
    odds is the profile's conversion.
    """
    if transitions == 0:
        return ()
    difficulty = [1.0 + rng.uniform(-0.15, 0.15) for _ in range(transitions)]
    if transitions > 1:
        difficulty[0] += 0.6
        difficulty[-1] -= 0.4
    odds = [0.0] * transitions
    remaining = math.log(profile.conversion)
    free = list(range(transitions))
    if profile.weak_step is not None and transitions > 1:
        weak = min(WEAK_TRANSITION, transitions - 1)
        odds[weak] = profile.weak_step
        remaining -= math.log(profile.weak_step)
        free.remove(weak)
    total = sum(difficulty[index] for index in free)
    for index in free:
        odds[index] = min(0.98, math.exp(remaining * difficulty[index] / total))
    return tuple(odds)
