"""How one accepted event changes a manager's numbers.

Pure functions of (state, event, configuration): no I/O, no clock, so the
same history always gives the same numbers, and tests can check them
without a broker.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from salespulse.settings import Pipeline, Settings
from schemas.events import CallEnded, DealCreated, DealStageChanged, Event
from streams.intake import Rejection
from streams.periods import WINDOWS, Period, periods_of
from streams.state import CellKey, DealState, ManagerState, OpenPeriod


class Aggregator:
    """Applies events to manager state under one company configuration."""

    def __init__(self, settings: Settings):
        self.zone: ZoneInfo = settings.zone
        self.pipelines: dict[str, Pipeline] = dict(settings.pipelines)
        self.grace = settings.grace_period_seconds
        self.deal_retention_days = settings.dedupe_horizon_days

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

    def apply(self, state: ManagerState, event: Event) -> bool:
        """Update all-history counters always, and the periods that are still open.

        Returns whether the event was late: its day had closed (end + grace)
        before the manager's newest event.
        """
        periods = periods_of(event.occurred_at, self.zone)
        watermark = state.watermark
        late = periods[0].end_epoch + self.grace <= watermark
        open_periods = self._open_periods(state, periods)
        if isinstance(event, DealCreated):
            self._deal_created(state, event, open_periods)
        elif isinstance(event, DealStageChanged):
            self._deal_stage_changed(state, event, open_periods)
        elif isinstance(event, CallEnded):
            self._call_ended(state, event, open_periods)
        occurred = event.occurred_at.timestamp()
        if occurred > watermark:
            state.watermark = occurred
            self._expire_periods(state)
            if watermark == float("-inf") or int(occurred // 3600) != int(watermark // 3600):
                self._expire_deals(state)  # hourly is enough for a retention counted in days
        return late

    # -- periods ---------------------------------------------------------------

    def _open_periods(self, state: ManagerState, periods: tuple[Period, ...]) -> list[OpenPeriod]:
        found = []
        for period in periods:
            end = period.end_epoch
            if end + self.grace <= state.watermark:
                continue  # closed: the event still counts in the all-history counters
            found.append(self._period(state, period, end))
        return found

    @staticmethod
    def _period(state: ManagerState, period: Period, end: float) -> OpenPeriod:
        existing = state.periods.get(period.key)
        if existing is None:
            existing = OpenPeriod(end)
            state.periods[period.key] = existing
        return existing

    @staticmethod
    def _add_period(periods: list[OpenPeriod], cell: CellKey, amount: float = 1.0) -> None:
        for period in periods:
            period.cells[cell] = period.cells.get(cell, 0.0) + amount

    def _expire_periods(self, state: ManagerState) -> None:
        """Forget closed periods: memory stays bounded."""
        watermark = state.watermark
        closed = [key for key, p in state.periods.items() if p.end + self.grace <= watermark]
        for key in closed:
            del state.periods[key]

    def _expire_deals(self, state: ManagerState) -> None:
        """Forget deals closed longer ago than the retention: memory stays bounded."""
        watermark = state.watermark
        if state.deals:
            newest_day = datetime.fromtimestamp(watermark, self.zone).date().toordinal()
            cutoff = newest_day - self.deal_retention_days
            stale = [
                deal_id
                for deal_id, deal in state.deals.items()
                if deal.closed_day is not None and deal.closed_day < cutoff
            ]
            for deal_id in stale:
                del state.deals[deal_id]

    # -- deals -----------------------------------------------------------------

    def _deal_created(
        self, state: ManagerState, event: DealCreated, periods: list[OpenPeriod]
    ) -> None:
        deal = state.deals.get(event.deal_id)
        if deal is None:
            deal = DealState(pipeline=event.pipeline)
            state.deals[event.deal_id] = deal
        if deal.created:
            return  # a second creation of the same deal changes nothing
        deal.created = True
        deal.product = event.product or ""
        deal.channel = event.channel or ""
        deal.segment = event.segment or ""
        if event.amount is not None:
            deal.amount = event.amount
        state.add(("deals_created_total", deal.pipeline, deal.product, deal.channel))
        self._add_period(periods, ("deals_created",))
        self._maybe_close(state, deal, event.stage, event.amount, event.occurred_at, periods)

    def _deal_stage_changed(
        self, state: ManagerState, event: DealStageChanged, periods: list[OpenPeriod]
    ) -> None:
        deal = state.deals.get(event.deal_id)
        if deal is None:
            # The deal was created before salespulse saw it, or its creation is
            # still on its way; it is counted when (if) the creation arrives.
            deal = DealState(pipeline=event.pipeline)
            state.deals[event.deal_id] = deal
        if event.amount is not None:
            deal.amount = event.amount
        self._maybe_close(state, deal, event.to_stage, event.amount, event.occurred_at, periods)

    def _maybe_close(
        self,
        state: ManagerState,
        deal: DealState,
        stage: str,
        amount: float | None,
        occurred_at: datetime,
        periods: list[OpenPeriod],
    ) -> None:
        outcome = self.pipelines[deal.pipeline].outcome_of(stage)
        if outcome is None or deal.outcome is not None:
            return  # not a closing stage, or closed already: once per deal
        deal.outcome = outcome
        deal.closed_day = occurred_at.astimezone(self.zone).date().toordinal()
        state.add(("deals_closed_total", deal.pipeline, outcome, deal.product, deal.channel))
        self._add_period(periods, ("deals_closed", outcome))
        if outcome == "won":
            value = amount if amount is not None else (deal.amount or 0.0)
            state.add(("deals_won_amount_total", deal.pipeline, deal.product, deal.channel), value)
            self._add_period(periods, ("won_amount",), value)

    # -- calls -----------------------------------------------------------------

    def _call_ended(self, state: ManagerState, event: CallEnded, periods: list[OpenPeriod]) -> None:
        answered = "true" if event.was_answered else "false"
        state.add(("calls_total", event.direction, answered))
        self._add_period(periods, ("calls", answered))
        if event.was_answered:
            state.add(("call_duration_seconds_total", event.direction), event.duration_seconds)
            self._add_period(periods, ("call_duration_seconds",), event.duration_seconds)


__all__ = ["WINDOWS", "Aggregator"]
