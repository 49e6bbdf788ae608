"""Settings: defaults, precedence (flags > env > TOML > defaults), and operator-grade errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from salespulse.settings import (
    DEFAULT_STAGES,
    ConfigurationError,
    Pipeline,
    Settings,
    load_settings,
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SALESPULSE_* variable of the developer's shell may leak into a test."""
    for name in list(os.environ):
        if name.upper().startswith("SALESPULSE_"):
            monkeypatch.delenv(name)


def write_toml(tmp_path: Path, text: str, name: str = "salespulse.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def configuration_error(**flags: object) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(**flags)
    return str(caught.value)


# -- defaults ---------------------------------------------------------------------


def test_defaults() -> None:
    settings = load_settings()

    assert isinstance(settings, Settings)
    assert settings.metrics_port == 9820
    assert settings.broker is None
    assert settings.config is None
    assert settings.timezone == "UTC"
    assert settings.source_topics == ("crm.deals", "crm.tasks", "crm.calls")
    assert settings.topic_dead_letter == "crm.dead-letter"
    assert settings.managers == {}


def test_default_pipeline_has_nine_stages_ending_in_won() -> None:
    settings = load_settings()

    assert list(settings.pipelines) == ["default"]
    pipeline = settings.pipelines["default"]
    assert len(pipeline.stages) == 9
    assert pipeline.stages == DEFAULT_STAGES
    assert pipeline.stages[0] == "lead"
    assert pipeline.stages[-1] == "won"
    assert pipeline.won == ("won",)
    assert pipeline.lost == ("lost",)
    assert pipeline.outcome_of("won") == "won"
    assert pipeline.outcome_of("lost") == "lost"
    assert pipeline.outcome_of("proposal") is None


# -- precedence -------------------------------------------------------------------


def test_toml_file_overrides_defaults(tmp_path: Path) -> None:
    path = write_toml(tmp_path, 'metrics_port = 9000\ntimezone = "Europe/Berlin"\n')

    settings = load_settings(config=path)

    assert settings.metrics_port == 9000
    assert settings.timezone == "Europe/Berlin"
    assert settings.config == path
    assert settings.partitions == 4  # untouched by the file: still the default


def test_toml_file_named_by_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_toml(tmp_path, "metrics_port = 9000\n")
    monkeypatch.setenv("SALESPULSE_CONFIG", str(path))

    settings = load_settings()

    assert settings.metrics_port == 9000
    assert settings.config == path


def test_environment_overrides_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_toml(tmp_path, 'metrics_port = 9000\ntimezone = "Europe/Berlin"\n')
    monkeypatch.setenv("SALESPULSE_CONFIG", str(path))
    monkeypatch.setenv("SALESPULSE_METRICS_PORT", "9100")

    settings = load_settings()

    assert settings.metrics_port == 9100
    assert settings.timezone == "Europe/Berlin"  # not in the environment: from the file


def test_flags_override_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_toml(tmp_path, "metrics_port = 9000\npartitions = 8\n")
    monkeypatch.setenv("SALESPULSE_METRICS_PORT", "9100")
    monkeypatch.setenv("SALESPULSE_BROKER", "kafka://env:9092")

    settings = load_settings(config=path, metrics_port=9200)

    assert settings.metrics_port == 9200
    assert settings.broker == "kafka://env:9092"
    assert settings.partitions == 8


def test_flags_given_as_none_do_not_mask_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SALESPULSE_METRICS_PORT", "9100")

    settings = load_settings(metrics_port=None, broker=None, config=None)

    assert settings.metrics_port == 9100


def test_config_flag_overrides_config_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_env = write_toml(tmp_path, "metrics_port = 9000\n", name="env.toml")
    from_flag = write_toml(tmp_path, "metrics_port = 9001\n", name="flag.toml")
    monkeypatch.setenv("SALESPULSE_CONFIG", str(from_env))

    settings = load_settings(config=str(from_flag))

    assert settings.metrics_port == 9001
    assert settings.config == from_flag


def test_nested_environment_value_merges_into_toml_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_toml(tmp_path, "[kpi]\nmax_overdue_rate = 0.2\nmin_win_rate = 0.25\n")
    monkeypatch.setenv("SALESPULSE_KPI__MIN_WIN_RATE", "0.5")

    settings = load_settings(config=path)

    assert settings.kpi.min_win_rate == 0.5
    assert settings.kpi.max_overdue_rate == 0.2


def test_empty_broker_means_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESPULSE_BROKER", "")

    assert load_settings().broker is None


def test_company_model_from_toml(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path,
        """
timezone = "Europe/Berlin"

[pipelines.enterprise]
stages = ["lead", "pilot", "signed"]
won = ["signed"]
lost = ["lost", "disqualified"]

[managers.m-1]
name = "Anna Petrova"
team = "north"

[managers.m-1.kpi]
max_overdue_rate = 0.1
""",
    )

    settings = load_settings(config=path)

    assert list(settings.pipelines) == ["enterprise"]
    assert settings.pipelines["enterprise"].outcome_of("disqualified") == "lost"
    assert settings.managers["m-1"].name == "Anna Petrova"
    assert settings.managers["m-1"].team == "north"
    assert settings.managers["m-1"].kpi.max_overdue_rate == 0.1
    assert settings.zone.key == "Europe/Berlin"


def test_the_demo_configuration_loads() -> None:
    demo = Path(__file__).resolve().parents[3] / "salespulse" / "config" / "demo.toml"

    settings = load_settings(config=demo)

    assert settings.timezone == "Europe/Berlin"
    assert settings.pipelines["default"].stages == DEFAULT_STAGES


# -- immutability -----------------------------------------------------------------


def test_settings_are_frozen() -> None:
    settings = load_settings()

    with pytest.raises(ValidationError, match="frozen"):
        settings.metrics_port = 1  # type: ignore[misc]
    assert settings.metrics_port == 9820


def test_nested_settings_are_frozen() -> None:
    pipeline = load_settings().pipelines["default"]

    with pytest.raises(ValidationError, match="frozen"):
        pipeline.won = ("contract",)  # type: ignore[misc]
    assert isinstance(pipeline, Pipeline)


# -- errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "field", "hint"),
    [
        ('[pipelines.default]\nstages = ["a", "b"]\nwon = ["won"]\n', "pipelines.default", "won"),
        (
            '[pipelines.default]\nstages = ["a", "lost"]\nwon = ["a"]\nlost = ["lost"]\n',
            "pipelines.default",
            "lost",
        ),
        ('[pipelines.default]\nstages = ["a", "a", "won"]\n', "pipelines.default", "unique"),
        ('timezone = "Mars/Olympus_Mons"\n', "timezone", "Mars/Olympus_Mons"),
        ("metrics_port = -1\n", "metrics_port", "0"),
        ("metrics_port = 70000\n", "metrics_port", "65535"),
        ("metrics_prot = 9000\n", "metrics_prot", "not permitted"),
        ('[managers.m-1]\nnmae = "Anna"\n', "managers.m-1.nmae", "not permitted"),
        ("[kpi]\nmin_win_rate = 1.5\n", "kpi.min_win_rate", "1"),
        ("[plan]\ndeals_closed = 0\n", "plan.deals_closed", "1"),
        ("[plan]\nwon_amount = -5\n", "plan.won_amount", "0"),
        ("[plan]\ndeals_won = 5\n", "plan.deals_won", "not permitted"),
        (
            '[managers.m-1]\nname = "Anna"\nplan = { deals_closed = 2.5 }\n',
            "managers.m-1.plan.deals_closed",
            "integer",
        ),
        ('broker = "localhost:9092"\n', "broker", "kafka://"),
        ("heartbeat_interval_seconds = 60\n", "(top level)", "heartbeat"),
    ],
)
def test_bad_toml_names_the_file_and_the_field(
    tmp_path: Path, toml: str, field: str, hint: str
) -> None:
    path = write_toml(tmp_path, toml)

    message = configuration_error(config=path)

    assert str(path) in message
    assert f"{field}:" in message
    assert hint in message
    assert "Traceback" not in message


def test_bad_toml_named_by_environment_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_toml(tmp_path, 'timezone = "Nowhere/Land"\n')
    monkeypatch.setenv("SALESPULSE_CONFIG", str(path))

    message = configuration_error()

    assert str(path) in message
    assert "timezone:" in message
    assert "Nowhere/Land" in message


def test_bad_environment_value_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESPULSE_METRICS_PORT", "-5")

    message = configuration_error()

    assert "metrics_port:" in message
    assert "environment" in message


def test_bad_flag_names_the_field() -> None:
    message = configuration_error(timezone="Europe/Atlantis")

    assert "timezone:" in message
    assert "Europe/Atlantis" in message


@pytest.mark.parametrize(
    "toml",
    ["metrics_port = \n", "[pipelines.default\nstages = []\n", 'timezone = "unterminated\n'],
)
def test_toml_syntax_error_names_the_file_and_the_line(tmp_path: Path, toml: str) -> None:
    path = write_toml(tmp_path, toml)

    message = configuration_error(config=path)

    assert str(path) in message
    assert "line 1" in message


def test_configuration_error_carries_no_chained_traceback(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "metrics_port = -1\n")

    with pytest.raises(ConfigurationError) as caught:
        load_settings(config=path)

    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ is True


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"

    message = configuration_error(config=missing)

    assert str(missing) in message
    assert "does not exist" in message


def test_missing_config_file_named_by_environment_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere.toml"
    monkeypatch.setenv("SALESPULSE_CONFIG", str(missing))

    message = configuration_error()

    assert str(missing) in message
    assert "does not exist" in message


def test_malformed_complex_environment_value_is_not_blamed_on_a_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SALESPULSE_PIPELINES", "{not json")

    message = configuration_error()

    assert "pipelines" in message
    assert "configuration file None" not in message


def test_a_manager_plan_overrides_the_team_default_field_by_field(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path,
        "[plan]\ndeals_closed = 12\nwon_amount = 50000\n"
        '[managers.m-1]\nname = "Anna"\nplan = { won_amount = 80000 }\n'
        '[managers.m-2]\nname = "Ben"\n',
    )

    settings = load_settings(config=path)

    anna = settings.managers["m-1"].plan.merged_over(settings.plan)
    ben = settings.managers["m-2"].plan.merged_over(settings.plan)
    assert (anna.deals_closed, anna.won_amount) == (12, 80000)
    assert (ben.deals_closed, ben.won_amount) == (12, 50000)
