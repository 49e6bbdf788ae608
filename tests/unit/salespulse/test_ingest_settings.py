"""The gateway's settings and its command's refusals."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from salespulse.ingest import add_ingest_arguments, ingest_command
from salespulse.ingest.config import IngestSettingsError, load_ingest_settings
from tests.support.ingest import MAPPINGS

STRONG = "a-token-of-sixteen-or-more"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SALESPULSE_"):
            monkeypatch.delenv(name)


def test_tokens_come_comma_separated_from_the_environment_and_stay_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SALESPULSE_INGEST_TOKENS", f"{STRONG}-1, {STRONG}-2")
    monkeypatch.setenv("SALESPULSE_INGEST_HMAC_SECRET", "hmac-secret-value")
    settings = load_ingest_settings()
    assert [t.get_secret_value() for t in settings.tokens] == [f"{STRONG}-1", f"{STRONG}-2"]
    shown = repr(settings) + str(settings.model_dump())
    assert STRONG not in shown
    assert "hmac-secret-value" not in shown


def test_a_short_token_is_refused_without_printing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESPULSE_INGEST_TOKENS", "short1")
    with pytest.raises(IngestSettingsError, match="tokens") as refused:
        load_ingest_settings()
    assert "short1" not in str(refused.value)


def test_flags_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESPULSE_INGEST_PORT", "9999")
    assert load_ingest_settings(port=7777, host=None).port == 7777
    assert load_ingest_settings().port == 9999


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_ingest_arguments(parser)
    return ingest_command(parser.parse_args(list(argv)))


def test_the_command_needs_a_broker(capsys: pytest.CaptureFixture[str]) -> None:
    assert run() == 2
    assert "needs a broker" in capsys.readouterr().err


def test_the_command_needs_credentials(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("--broker", "kafka://127.0.0.1:1") == 2
    assert "SALESPULSE_INGEST_TOKENS" in capsys.readouterr().err


def test_a_bad_mapping_file_stops_the_start_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "hubspot.toml"
    bad.write_text('[stages]\nclosedwon = { pipeline = "default" }\n')
    assert run("--broker", "kafka://127.0.0.1:1", "--hubspot-mapping", str(bad)) == 2
    err = capsys.readouterr().err
    assert str(bad) in err
    assert "stages.closedwon.stage" in err


@pytest.mark.parametrize("name", ["amocrm", "hubspot", "pipedrive"])
def test_the_shipped_example_mappings_load(name: str) -> None:
    from salespulse.ingest.server import load_adapters

    settings = load_ingest_settings(**{f"{name}_mapping": MAPPINGS / f"{name}.example.toml"})
    assert list(load_adapters(settings)) == [name]
