"""The metric families made from the processor's state: names, help, labels.

Nothing is updated per event: a scrape walks the state of the partitions
this worker actively owns and renders it (metrics.exposition). Counters
therefore follow the event history (a restart continues them, a replay
reproduces them), and standby copies held for other workers are never
exported twice.

A manager's series are held to a budget (README, "Metrics out": at most 150
for a company with 5 products, 4 channels, 3 segments, 4 task types and a
9-stage funnel). So the state's cells, which keep every label, are exported
twice over: per manager with the few labels a manager's KPIs need, and per
team (the team of the company file; managers outside it are team "") with
all of them, crossed: product x channel funnels, task types, the stages of
regulations, histogram buckets. A team family comes from every worker for
the partitions it owns: sum by (team, ...) across workers before anything
else, and never rate() one worker's series (it falls when a partition moves
away).
"""

from __future__ import annotations

from dataclasses import dataclass

from salespulse.settings import Settings

Series = dict[tuple[str, ...], float]


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    documentation: str
    labels: tuple[str, ...]  # after the leading "manager" (or "team") label where there is one


@dataclass(frozen=True, slots=True)
class CellFamilies:
    """How the state's cells named *cell* (labels *labels*) are exported: per manager
    with the labels at positions *keep* (summed over the rest), and per team whole."""

    cell: str
    labels: tuple[str, ...]
    manager: Family | None
    keep: tuple[int, ...]
    team: Family | None

    def manager_labels(self, labels: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(labels[position] for position in self.keep)


def _counter(
    cell: str,
    labels: tuple[str, ...],
    manager: tuple[str, str, tuple[str, ...]] | None,
    team: tuple[str, str] | None,
) -> CellFamilies:
    """*manager*: (name, help, the labels kept); *team*: (name, help), all labels."""
    keep: tuple[int, ...] = ()
    manager_family = None
    if manager is not None:
        name, documentation, kept = manager
        keep = tuple(labels.index(label) for label in kept)
        manager_family = Family(name, documentation, kept)
    team_family = None if team is None else Family(team[0], team[1], labels)
    return CellFamilies(cell, labels, manager_family, keep, team_family)


_BY_TEAM = " Per team, summed over the workers."

# Counter cells of a manager's state -> exported counter families ("_total" added).
COUNTERS: tuple[CellFamilies, ...] = (
    _counter(
        "deals_created_total",
        ("pipeline", "product", "channel"),
        ("salespulse_deals_created", "Deals created.", ("pipeline",)),
        ("salespulse_team_deals_created", "Deals created." + _BY_TEAM),
    ),
    _counter(
        "deals_closed_total",
        ("pipeline", "outcome", "product", "channel"),
        (
            "salespulse_deals_closed",
            "Deals reaching a won or lost stage, once per deal.",
            ("pipeline", "outcome"),
        ),
        ("salespulse_team_deals_closed", "Deals closed, once per deal." + _BY_TEAM),
    ),
    _counter(
        "deals_won_amount_total",
        ("pipeline", "product", "channel"),
        ("salespulse_deals_won_amount", "Sum of the amount of won deals.", ("pipeline",)),
        ("salespulse_team_deals_won_amount", "Sum of the amount of won deals." + _BY_TEAM),
    ),
    _counter(
        "funnel_stage_reached_total",
        ("pipeline", "stage", "product", "channel"),
        (
            "salespulse_funnel_stage_reached",
            "Deals reaching a stage, once per deal and stage; skipped stages count as passed.",
            ("pipeline", "stage"),
        ),
        (
            "salespulse_team_funnel_stage_reached",
            "Deals reaching a stage, once per deal and stage, by product and channel." + _BY_TEAM,
        ),
    ),
    _counter(
        "segment_deals_closed_total",
        ("pipeline", "segment", "outcome"),
        None,
        ("salespulse_team_segment_deals_closed", "Deals closed, by market segment." + _BY_TEAM),
    ),
    _counter(
        "segment_won_amount_total",
        ("pipeline", "segment"),
        None,
        (
            "salespulse_team_segment_won_amount",
            "Sum of the amount of won deals, by market segment." + _BY_TEAM,
        ),
    ),
    _counter(
        "segment_won_customers_total",
        ("pipeline", "segment"),
        None,
        (
            "salespulse_team_segment_won_customers",
            "Customers with a won deal, by market segment, counted once per manager and "
            "calendar month (a customer won again next month counts again; deals without "
            "customer_id are not counted)." + _BY_TEAM,
        ),
    ),
    _counter(
        "tasks_created_total",
        ("task_type",),
        ("salespulse_tasks_created", "Tasks created.", ()),
        ("salespulse_team_tasks_created", "Tasks created, by type." + _BY_TEAM),
    ),
    _counter(
        "tasks_completed_total",
        ("task_type", "on_time"),
        (
            "salespulse_tasks_completed",
            "Tasks completed; on_time false when after due_at, unknown without a creation.",
            ("on_time",),
        ),
        ("salespulse_team_tasks_completed", "Tasks completed, by type." + _BY_TEAM),
    ),
    _counter(
        "tasks_overdue_total",
        ("task_type",),
        ("salespulse_tasks_overdue", "Tasks that passed due_at uncompleted, once per task.", ()),
        ("salespulse_team_tasks_overdue", "Tasks that became overdue, by type." + _BY_TEAM),
    ),
    _counter(
        "tasks_deadline_passed_total",
        ("task_type",),
        (
            "salespulse_tasks_deadline_passed",
            "Tasks whose due_at has passed, done or not, once per task: the overdue rate's "
            "denominator.",
            (),
        ),
        (
            "salespulse_team_tasks_deadline_passed",
            "Tasks whose due_at has passed, by type." + _BY_TEAM,
        ),
    ),
    _counter(
        "regulation_checks_total",
        ("pipeline", "stage", "result"),
        (
            "salespulse_regulation_checks",
            "Stage regulations whose deadline passed, met or missed.",
            ("pipeline", "result"),
        ),
        (
            "salespulse_team_regulation_checks",
            "Stage regulations whose deadline passed, by stage, met or missed." + _BY_TEAM,
        ),
    ),
    _counter(
        "task_descriptions_total",
        ("task_type", "outcome"),
        (
            "salespulse_task_descriptions",
            "New tasks of a type with a description standard, once per task: meets (every "
            "check that applies passed) or falls_short.",
            ("outcome",),
        ),
        (
            "salespulse_team_task_descriptions",
            "New tasks held to a description standard, by type, meets or falls_short." + _BY_TEAM,
        ),
    ),
    _counter(
        "task_description_checks_total",
        ("task_type", "check", "result"),
        None,
        (
            "salespulse_team_task_description_checks",
            "Description checks of new tasks (brief, method, link, filled, deadline) that "
            "applied, passed or failed, by type." + _BY_TEAM,
        ),
    ),
    _counter(
        "calls_total",
        ("direction", "answered"),
        ("salespulse_calls", "Calls ended.", ("direction", "answered")),
        None,
    ),
    _counter(
        "call_duration_seconds_total",
        ("direction",),
        ("salespulse_call_duration_seconds", "Talk time of answered calls.", ("direction",)),
        None,
    ),
)

# Cells summed over managers, exported without a manager label but with the source
# partition: a partition moves between workers with its counts, so a worker's series
# never drop (which Prometheus would read as a reset) when it hands one over.
PROCESSOR_COUNTERS: dict[str, Family] = {
    "events_total": Family(
        "salespulse_events",
        "Consumed messages by outcome; each message has exactly one.",
        ("topic", "type", "outcome", "partition"),
    ),
    "events_rejected_total": Family(
        "salespulse_events_rejected",
        "Messages sent to the dead-letter topic, by reason.",
        ("topic", "reason", "partition"),
    ),
    "label_overflow_total": Family(
        "salespulse_label_overflow",
        "Label values reported as 'other' because their label reached its cap.",
        ("label", "partition"),
    ),
}


@dataclass(frozen=True, slots=True)
class HistogramFamilies:
    """A histogram of the state: per manager its sum and count only (a summary without
    quantiles), per team with its buckets."""

    cell: str
    labels: tuple[str, ...]
    manager: Family | None
    team: Family


HISTOGRAMS: tuple[HistogramFamilies, ...] = (
    HistogramFamilies(
        "deal_stage_duration_seconds",
        ("pipeline", "stage"),
        Family(
            "salespulse_deal_stage_duration_seconds",
            "Time deals spent in a stage, observed when they leave it (sum and count).",
            ("pipeline", "stage"),
        ),
        Family(
            "salespulse_team_deal_stage_duration_seconds",
            "Time deals spent in a stage, observed when they leave it." + _BY_TEAM,
            ("pipeline", "stage"),
        ),
    ),
    HistogramFamilies(
        "deal_sales_cycle_seconds",
        ("pipeline",),
        Family(
            "salespulse_deal_sales_cycle_seconds",
            "Time from creation to won, over won deals (sum and count).",
            ("pipeline",),
        ),
        Family(
            "salespulse_team_deal_sales_cycle_seconds",
            "Time from creation to won, over won deals." + _BY_TEAM,
            ("pipeline",),
        ),
    ),
    HistogramFamilies(
        "answered_call_duration_seconds",
        ("direction",),
        None,  # a manager's sum and count are salespulse_call_duration_seconds, _calls
        Family(
            "salespulse_team_answered_call_duration_seconds",
            "Length of answered calls." + _BY_TEAM,
            ("direction",),
        ),
    ),
)

# Period cells -> gauge families (labels after manager and window).
PERIOD_GAUGES: dict[str, Family] = {
    "deals_created": Family(
        "salespulse_period_deals_created", "Deals created in the current period.", ()
    ),
    "deals_closed": Family(
        "salespulse_period_deals_closed", "Deals closed in the current period.", ("outcome",)
    ),
    "won_amount": Family(
        "salespulse_period_won_amount", "Amount of deals won in the current period.", ()
    ),
    "stage_reached": Family(
        "salespulse_period_stage_reached",
        "Deals reaching a stage in the current period, once per deal and stage.",
        ("pipeline", "stage"),
    ),
    "tasks_deadline_passed": Family(
        "salespulse_period_tasks_deadline_passed",
        "Tasks due in the current period whose due_at has passed so far, done or not.",
        (),
    ),
    "tasks_overdue": Family(
        "salespulse_period_tasks_overdue",
        "Tasks due in the current period that became overdue, once per task.",
        (),
    ),
    "tasks_completed": Family(
        "salespulse_period_tasks_completed",
        "Tasks completed in the current period.",
        ("on_time",),
    ),
    "regulation_checks": Family(
        "salespulse_period_regulation_checks",
        "Stage regulations whose deadline passed in the current period, met or missed.",
        ("result",),
    ),
    "calls": Family("salespulse_period_calls", "Calls ended in the current period.", ("answered",)),
    "call_duration_seconds": Family(
        "salespulse_period_call_duration_seconds",
        "Talk time of answered calls in the current period.",
        (),
    ),
}

# Period cells summed over a team's managers -> gauge families (labels after team and
# window): what is worth a director's filter but not a series per manager.
TEAM_PERIOD_GAUGES: dict[str, Family] = {
    "segment_won_amount": Family(
        "salespulse_team_period_segment_won_amount",
        "Amount of deals won in the current period, by market segment." + _BY_TEAM,
        ("pipeline", "segment"),
    ),
    "won_customers": Family(
        "salespulse_team_period_won_customers",
        "Customers with a deal won in the current period, by market segment: distinct per "
        "manager, summed over the team's managers (a customer two managers won counts "
        "twice; managers are counted on different workers). Deals without customer_id "
        "are in the won amount, not here." + _BY_TEAM,
        ("pipeline", "segment"),
    ),
}

OPEN_DEALS = Family(
    "salespulse_open_deals", "Open deals by their current stage.", ("pipeline", "stage")
)
OPEN_DEALS_AMOUNT = Family(
    "salespulse_open_deals_amount",
    "Amount of the open deals by their current stage (deals without an amount count 0).",
    ("pipeline", "stage"),
)
STUCK_DEALS = Family(
    "salespulse_stuck_deals",
    "Open deals longer in their current stage than the stage's stuck_after_days.",
    ("pipeline", "stage"),
)
OPEN_DEALS_BY_AGE = Family(
    "salespulse_team_open_deals_stage_age_at_most",
    "Open deals whose time in their current stage is at most le seconds, by the"
    ' bounds of salespulse_team_deal_stage_duration_seconds (le="+Inf": all open'
    " deals of the stage); a gauge, per team.",
    ("pipeline", "stage"),
)
OPEN_TASKS = Family("salespulse_open_tasks", "Tasks created and not completed.", ())
OPEN_TASKS_OVERDUE = Family("salespulse_open_tasks_overdue", "Open tasks past their due_at.", ())


def period_label_sets(settings: Settings) -> dict[str, tuple[tuple[str, ...], ...]]:
    """Label values every manager exports for every window, zero when nothing happened."""
    stages = tuple(
        (name, stage) for name, pipeline in settings.pipelines.items() for stage in pipeline.stages
    )
    return {
        "deals_created": ((),),
        "deals_closed": (("won",), ("lost",)),
        "won_amount": ((),),
        "stage_reached": stages,
        "tasks_deadline_passed": ((),),
        "tasks_overdue": ((),),
        "tasks_completed": (("true",), ("false",)),
        "regulation_checks": (("met",), ("missed",)),
        "calls": (("true",), ("false",)),
        "call_duration_seconds": ((),),
    }
