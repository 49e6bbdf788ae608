"""A mistyped option or ``SALESPULSE_*`` variable is named, with what was probably meant."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from salespulse.arguments import suggestions
from salespulse.cli import main
from salespulse.environment import unknown_variables

REPO = Path(__file__).resolve().parents[3]


def test_an_unknown_option_of_a_command_suggests_the_one_meant(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--port", "9900"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "salespulse demo: error: unrecognized arguments: --port 9900" in err
    assert "did you mean --metrics-port" in err


def test_a_misspelt_option_suggests_the_spelling(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["import", "export.csv", "--dry-runn"])
    assert "--dry-runn: did you mean --dry-run?" in capsys.readouterr().err


def test_nothing_is_suggested_when_nothing_is_close(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["top", "--frobnicate"])
    err = capsys.readouterr().err
    assert "unrecognized arguments: --frobnicate" in err
    assert "did you mean" not in err


def test_suggestions_put_the_option_containing_the_word_first() -> None:
    known = ["--help", "--config", "--metrics-port", "--rate", "--seed", "--speed"]
    assert suggestions("--port", known) == ["--metrics-port"]
    assert suggestions("--sped", known) == ["--speed", "--seed"]


def test_unknown_salespulse_variables_are_named_with_the_closest_known_one() -> None:
    environ = {
        "SALESPULSE_PARTITONS": "8",
        "SALESPULSE_PARTITIONS": "4",
        "SALESPULSE_KPI__MIN_WIN_RATE": "0.2",  # a nested setting
        "SALESPULSE_INGEST_PORT": "9831",  # the gateway's
        "SALESPULSE_VENV": ".venv",  # ./dev's
        "SALESPULSE_WHATEVER": "1",
        "PATH": "/usr/bin",
    }
    assert unknown_variables(environ) == [
        "SALESPULSE_PARTITONS is not a setting and is ignored "
        "(did you mean SALESPULSE_PARTITIONS?)",
        "SALESPULSE_WHATEVER is not a setting and is ignored",
    ]


def test_a_command_warns_about_an_unknown_variable_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SALESPULSE_PARTITONS", "8")
    assert main(["schemas", "export", "--dir", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "salespulse: warning: SALESPULSE_PARTITONS is not a setting" in err


def test_every_variable_the_repository_names_is_known() -> None:
    """The docs, deployment files, tools and tests name only variables something reads
    (a name ending in ``_`` is a prefix, as in "SALESPULSE_INGEST_*")."""
    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    named: set[str] = set()
    for name in files:
        path = REPO / name
        if path.suffix in {".py", ".md", ".yml", ".toml", ""} and path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            named.update(re.findall(r"\bSALESPULSE_[A-Z0-9_]*[A-Z0-9]\b", text))
    named -= {"SALESPULSE_PARTITONS", "SALESPULSE_WHATEVER"}  # this file's misspellings
    assert len(named) > 20
    assert unknown_variables(dict.fromkeys(named, "")) == []
