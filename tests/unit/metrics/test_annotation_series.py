"""Interventions and KPI changes as series: one per company-file entry, valued at its start."""

from __future__ import annotations

from datetime import UTC, date, datetime

from metrics.annotations import INTERVENTIONS, KPI_CHANGES
from metrics.exposition import StateExposition
from salespulse.settings import Intervention, KpiChange, Manager, Settings
from tests.support.scrape import parse

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def company() -> Settings:
    return Settings(
        timezone="Europe/Berlin",
        managers={
            "m-02": Manager(
                name="Sabine Krause",
                team="South",
                kpi_changes=(
                    KpiChange(since=date(2026, 12, 1), max_avg_call_duration_seconds=1320),
                    KpiChange(since=date(2026, 7, 1), max_overdue_rate=0.2, min_win_rate=0.3),
                ),
            ),
            "m-03": Manager(name="Tobias Wagner", team="North"),
        },
        interventions=(
            Intervention(date=date(2026, 11, 2), manager="m-02", note="call coaching"),
            Intervention(date=date(2026, 11, 9), team="North", note='new "script"'),
            Intervention(date=date(2026, 11, 9), team="North", note='new "script"'),
        ),
    )


def series(name: str) -> dict[frozenset[tuple[str, str]], float]:
    samples = parse(StateExposition(company()).text([], NOW))
    return {
        frozenset(labels): value for (family, labels), value in samples.items() if family == name
    }


def test_each_intervention_is_one_series_valued_at_midnight_in_the_company_zone() -> None:
    found = series(INTERVENTIONS)
    # 2 November 2026 begins at 23:00 UTC the day before in Berlin (CET, after DST ended).
    manager = frozenset(
        {("date", "2026-11-02"), ("manager", "m-02"), ("note", "call coaching"), ("team", "South")}
    )
    team = frozenset(
        {("date", "2026-11-09"), ("manager", ""), ("note", 'new "script"'), ("team", "North")}
    )
    assert found == {
        manager: datetime(2026, 11, 1, 23, 0, tzinfo=UTC).timestamp(),
        team: datetime(2026, 11, 8, 23, 0, tzinfo=UTC).timestamp(),
    }


def test_each_kpi_of_each_change_is_one_series_with_its_new_target() -> None:
    found = series(KPI_CHANGES)
    summer = datetime(2026, 6, 30, 22, 0, tzinfo=UTC).timestamp()  # CEST
    assert found == {
        frozenset(
            {
                ("kpi", "max_avg_call_duration_seconds"),
                ("manager", "m-02"),
                ("since", "2026-12-01"),
                ("target", "1320"),
            }
        ): datetime(2026, 11, 30, 23, 0, tzinfo=UTC).timestamp(),
        frozenset(
            {
                ("kpi", "max_overdue_rate"),
                ("manager", "m-02"),
                ("since", "2026-07-01"),
                ("target", "0.2"),
            }
        ): summer,
        frozenset(
            {
                ("kpi", "min_win_rate"),
                ("manager", "m-02"),
                ("since", "2026-07-01"),
                ("target", "0.3"),
            }
        ): summer,
    }


def test_a_company_without_entries_exports_the_families_empty() -> None:
    text = StateExposition(Settings()).text([], NOW)
    assert f"# TYPE {INTERVENTIONS} gauge" in text
    assert f"{INTERVENTIONS}{{" not in text
    assert f"{KPI_CHANGES}{{" not in text
