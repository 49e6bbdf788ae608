"""A mistyped option is named, with what was probably meant."""

from __future__ import annotations

import pytest

from salespulse.arguments import suggestions
from salespulse.cli import main


def test_an_unknown_option_of_a_command_suggests_the_one_meant(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--port", "9900"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "salespulse demo: error: unrecognized arguments: --port 9900" in err
    assert "did you mean --metrics-port?" in err


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
