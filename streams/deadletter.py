"""Dead-letter publishing: the rejected message unchanged, the reason in headers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from streams.processor import DeadLetter

Send = Callable[..., Awaitable[Awaitable[Any]]]


def dead_letter_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    message = letter.message
    return [
        ("error.reason", letter.rejection.reason.encode()),
        ("error.detail", letter.rejection.detail.encode("utf-8", "replace")[:4096]),
        ("origin.topic", letter.topic.encode()),
        ("origin.partition", str(message.partition).encode()),
        ("origin.offset", str(message.offset).encode()),
    ]


async def publish_dead_letters(send: Send, topic: str, letters: Sequence[DeadLetter]) -> None:
    """Publish and wait until the broker has every one of them.

    The state that counts these rejections is written only afterwards, so a
    crash in between re-delivers the messages instead of losing them.
    """
    pending = [
        await send(
            topic,
            letter.message.key,
            letter.message.value,
            None,
            None,
            dead_letter_headers(letter),
        )
        for letter in letters
    ]
    await asyncio.gather(*pending)
