"""The description checks of a new task, one by one, and as the processor counts them."""

from __future__ import annotations

import pickle
from datetime import timedelta

import pytest
from pydantic import ValidationError

from metrics.exposition import StateExposition
from salespulse.config import DEMO_CONFIG
from salespulse.settings import (
    Pipeline,
    Regulation,
    Settings,
    TaskStandard,
    TaskStandards,
    load_settings,
)
from streams.task_quality import (
    TaskText,
    assess,
    has_placeholder,
    names_method,
    word_count,
)
from tests.support.harness import NOW, Harness, deal_created, stage_changed, task_created

CALL = TaskStandard(max_words=10, methods=("by the script", "call back"))
HOUR = 3600.0


def text(
    description: str | None, *, links: tuple[str, ...] = (), due_hours: float = 1.0
) -> TaskText:
    return TaskText("call", description, links, 0.0, due_hours * HOUR)


# -- the checks one by one -------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "words"),
    [
        ("Call the client.", 3),
        ("Call, then -- email!!! ...", 3),
        ("Don't forget the follow-up call", 5),
        ("Script: https://wiki.example.com/call-script?id=7 now", 2),
        ("   ", 0),
        ("Позвонить клиенту по скрипту", 4),
    ],
)
def test_words_are_runs_of_letters_not_punctuation_nor_links(sentence: str, words: int) -> None:
    assert word_count(sentence) == words


def test_brief_passes_at_the_limit_and_fails_one_word_above() -> None:
    ten = "Call back the client by the script about the demo date"
    assert word_count(ten) == 11
    assert assess(text(ten), CALL, None)["brief"] is False
    assert assess(text(ten.removesuffix(" date")), CALL, None)["brief"] is True


@pytest.mark.parametrize(
    ("description", "named"),
    [
        ("Call the client BY THE SCRIPT", True),
        ("call   back tomorrow", True),
        ("Call\nback tomorrow", True),
        ("Contact the client", False),
        ("Call backlog review", False),  # "call back" only as whole words
        ("by the scripts", False),
    ],
)
def test_method_is_a_whole_word_phrase_in_any_case(description: str, named: bool) -> None:
    assert names_method(description, CALL.methods or ()) is named


def test_link_needs_links_or_a_url_in_the_text() -> None:
    standard = CALL.model_copy(update={"link_required": True})
    assert assess(text("Call back by the script"), standard, None)["link"] is False
    assert assess(text("Call back", links=("https://crm.example.com/d/1",)), standard, None)["link"]
    assert assess(text("Call back, card https://crm.example.com/d/1"), standard, None)["link"]


@pytest.mark.parametrize(
    ("description", "unfilled"),
    [
        ("Call {{client}} by the script", True),
        ("Call {{ client_name }} back", True),
        ("Call ${client} back", True),
        ("Call [client name] back", True),
        ("Call [Client] back", True),
        ("Script: [call script](https://wiki.example.com/script)", False),
        ("Done: [x] intro, [ ] demo", False),
        ("Call Acme {about the demo", False),
        ("Call Acme back", False),
    ],
)
def test_filled_finds_template_placeholders(description: str, unfilled: bool) -> None:
    assert has_placeholder(description) is unfilled
    assert assess(text(description), CALL, None)["filled"] is (not unfilled)


def test_deadline_is_judged_against_the_regulation_only_where_one_applies() -> None:
    assert assess(text("Call back", due_hours=4.0), CALL, 4.0)["deadline"] is True
    assert assess(text("Call back", due_hours=4.5), CALL, 4.0)["deadline"] is False
    assert "deadline" not in assess(text("Call back", due_hours=400.0), CALL, None)


def test_checks_the_standard_does_not_set_do_not_apply() -> None:
    assert assess(text("anything"), TaskStandard(), None) == {"filled": True}
    assert assess(text("anything"), None, 1.0) == {}


def test_a_missing_description_names_no_method_and_is_otherwise_trivially_met() -> None:
    standard = CALL.model_copy(update={"link_required": True})
    assert assess(text(None), standard, None) == {
        "brief": True,
        "method": False,
        "link": False,
        "filled": True,
    }
    assert assess(text("  ", links=("https://x.example",)), standard, None)["link"] is True


def test_a_type_falls_back_to_the_default_field_by_field() -> None:
    standards = TaskStandards(
        default=TaskStandard(max_words=40, link_required=False),
        types={"proposal": TaskStandard(methods=("quote",), link_required=True)},
    )
    assert standards.for_type("proposal") == TaskStandard(
        max_words=40, methods=("quote",), link_required=True
    )
    assert standards.for_type("call") == TaskStandard(max_words=40, link_required=False)
    assert TaskStandards().for_type("call") is None


def test_standards_reject_unknown_keys_and_empty_methods() -> None:
    with pytest.raises(ValidationError):
        TaskStandards.model_validate({"types": {"call": {"max_word": 5}}})
    with pytest.raises(ValidationError):
        TaskStandard(methods=("call", "  "))
    with pytest.raises(ValidationError):
        TaskStandard(max_words=0)


# -- counted by the processor ----------------------------------------------------------

SECRET = "Call back Frau Zimmermann by the script, invoice RE-778"
STANDARDS = TaskStandards(
    default=TaskStandard(max_words=12),
    types={"call": TaskStandard(methods=("by the script",)), "proposal": TaskStandard()},
)
PIPELINE = Pipeline(
    regulations={
        "lead": Regulation(task_type="call", within_hours=1),
        "proposal": Regulation(task_type="proposal", within_hours=24),
    }
)


def harness() -> Harness:
    return Harness(task_standards=STANDARDS, pipelines={"default": PIPELINE})


def test_the_processor_counts_outcomes_once_per_task_and_keeps_no_text() -> None:
    h = harness()
    start = NOW - timedelta(hours=6)
    dead = h.send(
        deal_created("m-a", "D-1", start),
        # meets: brief, by the script, filled, due within the lead's hour
        task_created(
            "m-a",
            "T-good",
            "call",
            start,
            start + timedelta(minutes=30),
            deal_id="D-1",
            description=SECRET,
            links=["https://crm.example.com/card-5521"],
        ),
        # the same task again: judged once
        task_created(
            "m-a",
            "T-good",
            "call",
            start,
            start + timedelta(minutes=30),
            deal_id="D-1",
            description="Contact the client",
        ),
        # the deal's current stage (lead) applies: due in 3 h fails the deadline; no method
        task_created(
            "m-a",
            "T-late",
            "call",
            start,
            start + timedelta(hours=3),
            deal_id="D-1",
            description="Contact {{client}}",
        ),
        stage_changed("m-a", "D-1", "proposal", start + timedelta(hours=1)),
        # proposal: only filled, brief (default) and the proposal stage's deadline apply
        task_created(
            "m-a",
            "T-prop",
            "proposal",
            start + timedelta(hours=1),
            start + timedelta(hours=20),
            deal_id="D-1",
        ),
        # a type with its own standard absent uses the default: brief, filled
        task_created("m-a", "T-mail", "email", start, start + timedelta(days=9)),
    )
    assert dead == []
    assert h.counter("m-a", "task_descriptions_total", "call", "meets") == 1
    assert h.counter("m-a", "task_descriptions_total", "call", "falls_short") == 1
    assert h.counter("m-a", "task_descriptions_total", "proposal", "meets") == 1
    assert h.counter("m-a", "task_descriptions_total", "email", "meets") == 1
    checks = {
        key[1:]: value
        for key, value in h.manager("m-a").counters.items()
        if key[0] == "task_description_checks_total"
    }
    assert checks == {
        ("call", "brief", "passed"): 2,
        ("call", "method", "passed"): 1,
        ("call", "method", "failed"): 1,
        ("call", "filled", "passed"): 1,
        ("call", "filled", "failed"): 1,
        ("call", "deadline", "passed"): 1,
        ("call", "deadline", "failed"): 1,
        ("proposal", "brief", "passed"): 1,
        ("proposal", "filled", "passed"): 1,
        ("proposal", "deadline", "passed"): 1,
        ("email", "brief", "passed"): 1,
        ("email", "filled", "passed"): 1,
    }

    metrics = StateExposition(h.settings).text(h.store.records(), NOW)
    assert 'salespulse_task_descriptions_total{manager="m-a",outcome="meets"} 3.0' in metrics
    assert (
        'salespulse_team_task_description_checks_total{team="",task_type="call",'
        'check="deadline",result="failed"} 1.0'
    ) in metrics
    changelog = b"".join(key + (value or b"") for _, key, value in h.changelog)
    kept = pickle.dumps(h.manager("m-a"))
    for fragment in ("Zimmermann", "RE-778", "card-5521", "Contact", "{{client}}"):
        assert fragment not in metrics, fragment
        assert fragment.encode() not in changelog, fragment
        assert fragment.encode() not in kept, fragment


def test_without_standards_nothing_is_judged() -> None:
    h = Harness()
    h.send(task_created("m-a", "T-1", "call", NOW, NOW + timedelta(hours=1), description="x"))
    assert h.counter("m-a", "tasks_created_total") == 1
    assert h.counter("m-a", "task_descriptions_total") == 0


def test_the_demo_company_has_standards_for_its_task_types() -> None:
    demo: Settings = load_settings(config=str(DEMO_CONFIG))
    for task_type in demo.labels.task_types:
        standard = demo.task_standards.for_type(task_type)
        assert standard is not None, task_type
        assert standard.methods, task_type
