"""The command line's parser, which says what an unknown option was probably meant to be.

argparse answers ``salespulse demo --port 9900`` with "unrecognized arguments"
alone; a newcomer then has to read ``--help`` to find ``--metrics-port``. This
parser names the options of the command that come closest: by spelling, or
by being the one option of which the unknown one is a part.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence
from typing import Any, NoReturn


class SuggestingParser(argparse.ArgumentParser):
    """An ArgumentParser whose "unrecognized arguments" error suggests known options.

    Sub-commands made with ``add_subparsers`` are of this class too, so the
    suggestions come from the options of the sub-command that was chosen. The
    parser notes its long options and sub-command actions as they are added,
    rather than reading argparse's private lists of them.
    """

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        # ArgumentParser.__init__ adds --help before this class's own fields could be set.
        options: list[str] = self.__dict__.setdefault("long_options", [])
        options.extend(option for option in action.option_strings if option.startswith("--"))
        return action

    def add_subparsers(self, **kwargs: Any) -> Any:
        action = super().add_subparsers(**kwargs)
        self.__dict__.setdefault("subcommands", []).append(action)
        return action

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self._unrecognized(parsed, extras)
        return parsed

    def _unrecognized(self, parsed: argparse.Namespace, extras: list[str]) -> NoReturn:
        parser = self._chosen(parsed)
        known: list[str] = parser.__dict__.get("long_options", [])
        hints = []
        for extra in extras:
            if not extra.startswith("-"):
                continue
            meant = suggestions(extra.split("=", 1)[0], known)
            if meant:
                hints.append(f"{extra}: did you mean {' or '.join(meant)}?")
        message = f"unrecognized arguments: {' '.join(extras)}"
        parser.error("; ".join([message, *hints]))

    def _chosen(self, parsed: argparse.Namespace) -> argparse.ArgumentParser:
        """The deepest sub-command parser *parsed* went through (self when none)."""
        parser: argparse.ArgumentParser = self
        while True:
            deeper = None
            for action in parser.__dict__.get("subcommands", []):
                chosen = getattr(parsed, action.dest, None) if action.dest else None
                if chosen is not None and isinstance(action.choices, dict):
                    deeper = action.choices.get(chosen)
            if deeper is None:
                return parser
            parser = deeper


def suggestions(unknown: str, known: Sequence[str]) -> list[str]:
    """The options of *known* that *unknown* was probably meant to be, best first."""
    words = unknown.lstrip("-").split("-")
    containing = [
        option for option in known if all(w in option.lstrip("-").split("-") for w in words)
    ]
    close = difflib.get_close_matches(unknown, known, n=2, cutoff=0.7)
    return [*containing, *(option for option in close if option not in containing)][:3]
