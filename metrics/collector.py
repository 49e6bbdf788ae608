"""The metric families made from the processor's state: names, help, labels.

Nothing is updated per event: a scrape walks the state of the partitions
this worker actively owns and renders it (metrics.exposition). Counters
therefore follow the event history (a restart continues them, a replay
reproduces them), and standby copies held for other workers are never
exported twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from salespulse.settings import Settings

Series = dict[tuple[str, ...], float]


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    documentation: str
    labels: tuple[str, ...]  # after the leading "manager" label where there is one


# Short cell names in the state -> exported counter families (manager label first).
MANAGER_COUNTERS: dict[str, Family] = {
    "deals_created_total": Family(
        "salespulse_deals_created", "Deals created.", ("pipeline", "product", "channel")
    ),
    "deals_closed_total": Family(
        "salespulse_deals_closed",
        "Deals reaching a won or lost stage, once per deal.",
        ("pipeline", "outcome", "product", "channel"),
    ),
    "deals_won_amount_total": Family(
        "salespulse_deals_won_amount",
        "Sum of the amount of won deals.",
        ("pipeline", "product", "channel"),
    ),
    "funnel_stage_reached_total": Family(
        "salespulse_funnel_stage_reached",
        "Deals reaching a stage, once per deal and stage; skipped stages count as passed.",
        ("pipeline", "stage", "product", "channel"),
    ),
    "segment_deals_closed_total": Family(
        "salespulse_segment_deals_closed",
        "Deals closed, by market segment.",
        ("pipeline", "segment", "outcome"),
    ),
    "segment_won_amount_total": Family(
        "salespulse_segment_won_amount",
        "Sum of the amount of won deals, by market segment.",
        ("pipeline", "segment"),
    ),
    "tasks_created_total": Family("salespulse_tasks_created", "Tasks created.", ("task_type",)),
    "tasks_completed_total": Family(
        "salespulse_tasks_completed",
        "Tasks completed; on_time is false when completed after due_at.",
        ("task_type", "on_time"),
    ),
    "tasks_overdue_total": Family(
        "salespulse_tasks_overdue",
        "Tasks that passed due_at uncompleted, once per task.",
        ("task_type",),
    ),
    "tasks_deadline_passed_total": Family(
        "salespulse_tasks_deadline_passed",
        "Tasks whose due_at has passed, done or not, once per task: the overdue rate's "
        "denominator.",
        ("task_type",),
    ),
    "regulation_checks_total": Family(
        "salespulse_regulation_checks",
        "Stage regulations (a task of the required type, due in time) met or missed, "
        "counted when their deadline passes.",
        ("pipeline", "stage", "result"),
    ),
    "calls_total": Family("salespulse_calls", "Calls ended.", ("direction", "answered")),
    "call_duration_seconds_total": Family(
        "salespulse_call_duration_seconds", "Talk time of answered calls.", ("direction",)
    ),
}

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

HISTOGRAMS: dict[str, Family] = {
    "deal_stage_duration_seconds": Family(
        "salespulse_deal_stage_duration_seconds",
        "Time deals spent in a stage, observed when they leave it.",
        ("pipeline", "stage"),
    ),
    "deal_sales_cycle_seconds": Family(
        "salespulse_deal_sales_cycle_seconds",
        "Time from creation to won, over won deals.",
        ("pipeline",),
    ),
    "answered_call_duration_seconds": Family(
        "salespulse_answered_call_duration_seconds",
        "Length of answered calls.",
        ("direction",),
    ),
}

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

OPEN_DEALS = Family(
    "salespulse_open_deals", "Open deals by their current stage.", ("pipeline", "stage")
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
