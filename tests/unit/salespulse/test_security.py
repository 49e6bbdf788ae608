"""Secrets stay secret; labels carry no entity ids and survive any manager id."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import faust
import pytest
from pydantic import SecretStr

from metrics.exposition import StateExposition
from salespulse.broker import free_port
from salespulse.kafka_security import client_options, faust_credentials
from salespulse.settings import ConfigurationError, Settings, load_settings
from tests.support.harness import (
    NOW,
    Harness,
    call,
    deal_created,
    stage_changed,
    task_completed,
    task_created,
)
from tests.support.scrape import parse

PASSWORD = "hunter2-very-secret"


def sasl() -> Settings:
    return Settings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="salespulse",
        sasl_password=SecretStr(PASSWORD),
    )


def test_the_password_never_shows_in_settings_dumps() -> None:
    settings = sasl()
    for text in (
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        str(settings.model_dump()),
    ):
        assert PASSWORD not in text


def test_clients_get_the_password_and_tls() -> None:
    settings = sasl()
    options = client_options(settings)
    assert options["sasl_plain_password"] == PASSWORD
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["security_protocol"] == "SASL_SSL"
    assert options["ssl_context"] is not None
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.protocol.value == "SASL_SSL"


def test_plaintext_has_no_credentials() -> None:
    assert faust_credentials(Settings()) is None
    assert client_options(Settings()) == {"security_protocol": "PLAINTEXT"}


def test_sasl_without_password_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESPULSE_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("SALESPULSE_SASL_USERNAME", "salespulse")
    with pytest.raises(ConfigurationError, match="sasl_password"):
        load_settings()


def test_the_worker_never_logs_the_password() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESPULSE_")}
    env.update(
        SALESPULSE_BROKER=f"kafka://127.0.0.1:{free_port()}",  # nobody listens
        SALESPULSE_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        SALESPULSE_SASL_USERNAME="salespulse",
        SALESPULSE_SASL_PASSWORD=PASSWORD,
        SALESPULSE_STARTUP_TIMEOUT_SECONDS="3",
        SALESPULSE_METRICS_PORT=str(free_port()),
    )
    result = subprocess.run(
        [sys.executable, "-m", "salespulse", "worker", "--log-level", "debug"],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    output = (result.stdout + result.stderr).decode(errors="replace")
    assert result.returncode == 1
    assert "did not answer" in output
    assert "Traceback" not in output
    assert PASSWORD not in output


def test_no_deal_task_call_or_event_id_becomes_a_label_value() -> None:
    h = Harness()
    at = NOW - timedelta(hours=1)
    h.send(
        deal_created("m-a", "DEAL-4711", at, product="crm", channel="web"),
        stage_changed("m-a", "DEAL-4711", "won", at + timedelta(minutes=1)),
        task_created(
            "m-a", "TASK-0815", "call", at, due=at + timedelta(hours=1), deal_id="DEAL-4711"
        ),
        task_completed("m-a", "TASK-0815", at + timedelta(minutes=5)),
        call("m-a", "CALL-2342", 120, at),
    )
    text = StateExposition(h.settings).text(h.store.records(), NOW)
    values = {value for (_, series) in parse(text) for _, value in series}
    for identifier in ("DEAL-4711", "TASK-0815", "CALL-2342"):
        assert not any(identifier in value for value in values)


def test_label_values_are_escaped_for_any_manager_id() -> None:
    h = Harness()
    odd = 'm "quoted" \\ back\\slash {brace}'
    h.send(call(odd, "C1", 60, NOW - timedelta(minutes=5)))
    samples = parse(StateExposition(h.settings).text(h.store.records(), NOW))
    managers = {
        dict(series).get("manager")
        for (name, series) in samples
        if name == "salespulse_calls_total"
    }
    assert managers == {odd}
