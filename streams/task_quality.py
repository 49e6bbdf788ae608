"""Is a task written well? The checks of a new task's description against its standard.

A director wants tasks a manager can act on without asking: brief, naming a
concrete method ("call by the script", not "contact the client"), with the
links the type needs, no template left unfilled, and a deadline no later than
the stage's regulation allows. Each check is judged once, when the task is
created, and only its outcome is kept: the description itself is never stored
or exported.

A check that does not apply is left out, not passed: a type without a
standard is not checked at all; ``brief``, ``method`` and ``link`` apply when
the standard sets them; ``filled`` applies to every checked task; ``deadline``
applies when a regulation of the task's stage asks for a task of its type.

A task without a description (or only white space) names no method, so it
fails ``method``; it is trivially brief and has nothing unfilled; its
``links`` alone can meet ``link``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from salespulse.settings import TaskStandard

CHECKS = ("brief", "method", "link", "filled", "deadline")

# A link written into the text; counted as a link, not as words.
_URL = re.compile(r"https?://\S+", re.IGNORECASE)
# A word: letters or digits, joined by an apostrophe or a hyphen ("don't", "follow-up").
_WORD = re.compile(r"\w+(?:['\u2019-]\w+)*")
# Template placeholders left unfilled: {{client}}, ${client}, and [client name]-style
# square brackets holding only words (a Markdown link "[script](https://...)" is not one).
_PLACEHOLDERS = (
    re.compile(r"\{\{[^{}]*\}\}"),
    re.compile(r"\$\{[^{}]*\}"),
    re.compile(r"\[[^\W\d][\w \-]{1,48}\](?!\()"),
)


@dataclass(frozen=True, slots=True)
class TaskText:
    """What a task.created event says about the work, for the checks only."""

    task_type: str
    description: str | None
    links: tuple[str, ...]
    created_at: float  # epoch seconds
    due_at: float  # epoch seconds


def word_count(text: str) -> int:
    """Words in *text*, links not counted, punctuation never a word."""
    return len(_WORD.findall(_URL.sub(" ", text)))


def names_method(text: str, methods: tuple[str, ...]) -> bool:
    """Whether *text* names one of *methods* as whole words, in any case."""
    return bool(methods) and _methods_pattern(methods).search(text) is not None


@lru_cache(maxsize=256)
def _methods_pattern(methods: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern for a standard's method phrases: built once, not at every task."""
    phrases = [r"\s+".join(re.escape(word) for word in method.split()) for method in methods]
    return re.compile(r"(?<!\w)(?:" + "|".join(phrases) + r")(?!\w)", re.IGNORECASE)


def has_placeholder(text: str) -> bool:
    """Whether *text* still holds a template placeholder."""
    return any(pattern.search(text) for pattern in _PLACEHOLDERS)


def has_link(text: str, links: tuple[str, ...]) -> bool:
    return bool(links) or _URL.search(text) is not None


def assess(
    task: TaskText, standard: TaskStandard | None, allowed_hours: float | None
) -> dict[str, bool]:
    """Each applicable check of *task* -> whether it passed, in ``CHECKS`` order.

    *allowed_hours*: how soon after its creation the regulation of the task's
    stage wants a task of this type due (None: no regulation applies).
    """
    if standard is None:
        return {}
    text = (task.description or "").strip()
    outcome: dict[str, bool] = {}
    if standard.max_words is not None:
        outcome["brief"] = word_count(text) <= standard.max_words
    if standard.methods:
        outcome["method"] = names_method(text, standard.methods)
    if standard.link_required:
        outcome["link"] = has_link(text, task.links)
    outcome["filled"] = not has_placeholder(text)
    if allowed_hours is not None:
        outcome["deadline"] = task.due_at <= task.created_at + allowed_hours * 3600
    return outcome
