"""Interventions in the company file: dated, for one manager or one team, validated."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from salespulse.settings import ConfigurationError, Intervention, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("SALESPULSE_"):
            monkeypatch.delenv(name)


def test_interventions_load_from_the_company_file(tmp_path: Path) -> None:
    path = tmp_path / "company.toml"
    path.write_text(
        "[[interventions]]\n"
        'date = 2026-11-02\nmanager = "m-03"\nnote = "call coaching"\n'
        "[[interventions]]\n"
        'date = 2026-11-09\nteam = "North"\n',
        encoding="utf-8",
    )
    settings = load_settings(config=path)
    assert settings.interventions == (
        Intervention(date=date(2026, 11, 2), manager="m-03", note="call coaching"),
        Intervention(date=date(2026, 11, 9), team="North"),
    )


@pytest.mark.parametrize(
    "subject",
    ['manager = "m-03"\nteam = "North"', "", 'manager = ""', 'manager = "m-03"\nwho = "x"'],
)
def test_an_intervention_names_exactly_one_manager_or_team(tmp_path: Path, subject: str) -> None:
    path = tmp_path / "company.toml"
    path.write_text(f"[[interventions]]\ndate = 2026-11-02\n{subject}\n", encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(config=path)
    assert "interventions.0" in str(caught.value)


def test_interventions_are_frozen() -> None:
    intervention = Intervention(date=date(2026, 11, 2), team="North")
    with pytest.raises(ValidationError):
        intervention.note = "changed"  # type: ignore[misc]


def test_the_shipped_companies_carry_interventions_and_a_kpi_change() -> None:
    root = Path(__file__).resolve().parents[3]
    for path in (root / "salespulse/config/demo.toml", root / "deploy/salespulse/company.toml"):
        settings = load_settings(config=path)
        assert settings.interventions, path
        assert settings.managers["m-02"].kpi_changes, path
