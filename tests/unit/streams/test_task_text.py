"""A task's description and links are read, never kept: no trace in state or /metrics.

The text a manager writes may name customers and people; the contract promises it is
never stored in the changelog nor exported, whatever the processor counts from it.
"""

from __future__ import annotations

from datetime import timedelta

from metrics.exposition import StateExposition
from tests.support.harness import NOW, Harness, deal_created, task_completed, task_created

SECRET = "Call Frau Zimmermann on +49 30 1234567 about invoice RE-778"
SECRET_LINK = "https://crm.example.com/deals/secret-card-5521"
# Fragments that would survive a sentence being cut, escaped or split into words.
FRAGMENTS = ["Zimmermann", "1234567", "RE-778", "secret-card-5521", "crm.example.com"]


def test_a_described_task_leaves_no_trace_of_its_text_in_changelog_or_metrics() -> None:
    h = Harness()
    dead = h.send(
        deal_created("m-a", "D-traced", NOW - timedelta(hours=2), customer_id="CUST-traced"),
        task_created(
            "m-a",
            "T-traced",
            "call",
            NOW - timedelta(hours=1),
            NOW + timedelta(hours=3),
            deal_id="D-traced",
            description=SECRET,
            links=[SECRET_LINK],
        ),
        task_completed("m-a", "T-traced", NOW - timedelta(minutes=5)),
    )
    h.tick(NOW)
    assert dead == []

    changelog = b"".join(key + (value or b"") for _, key, value in h.changelog)
    metrics = StateExposition(h.settings).text(h.store.records(), NOW)

    # The task was taken in, kept and counted: the checks below look where it is.
    assert h.counter("m-a", "tasks_created_total") == 1
    assert b"T-traced" in changelog
    assert 'salespulse_tasks_created_total{manager="m-a"' in metrics
    for fragment in FRAGMENTS:
        assert fragment.encode() not in changelog, fragment
        assert fragment not in metrics, fragment
