"""What a simulated manager writes into a new task: a description and maybe links.

Most tasks follow the demo company's standards (``[task_standards]``): brief,
naming a method, with a link where the type needs one. The rest fall short in
the ways real ones do: vague ("contact the client"), rambling, a template
placeholder left in, the link forgotten. How often depends on the manager, so
the wall shows some managers writing worse tasks than others. The texts come
from their own random stream, so adding them changed no other number of the
floor.
"""

from __future__ import annotations

import random
import zlib
from typing import Any

CLIENTS = ("Nordwind GmbH", "Acme Retail", "Baltic Foods", "Kern & Partner", "Solaris AG")
CARD = "https://crm.example.com/deals/"
SCRIPT = "https://wiki.example.com/sales/call-script"

# Per task type: descriptions that meet the standard ({client} filled in here).
GOOD: dict[str, tuple[str, ...]] = {
    "call": (
        "Call back {client} by the script and ask the qualification questions.",
        "Call {client}: qualification questions from the call script, then book a demo.",
    ),
    "email": (
        "Send the proposal to {client} with the follow-up template.",
        "Send the price list to {client}, template 'after the demo'.",
    ),
    "meeting": (
        "Demo of the reporting module for {client}; agenda in the card.",
        "Needs analysis with {client}: agenda and questions in the card.",
    ),
    "proposal": (
        "Prepare the quote for {client} from the current price list, discount at most 10%.",
        "Commercial offer for {client}: two licences from the price list.",
    ),
}
VAGUE = ("Contact the client.", "Follow up.", "Get in touch with {client} about the deal.")
PLACEHOLDER = (
    "Call {{client}} by the script and confirm the demo date.",
    "Send the proposal to [client name] with the follow-up template.",
)
RAMBLING = (
    "Talk to {client} again because last time they said that they might be interested "
    "in the offer but they were not sure about the budget and the timing, so we should "
    "probably check how things are going on their side and whether anything changed "
    "since our previous conversation about the project."
)
NEEDS_LINK = frozenset({"meeting", "proposal"})


def sloppiness(manager_id: str) -> float:
    """The share of a manager's tasks that fall short: 10% to 50%, fixed per manager."""
    return 0.10 + (zlib.crc32(manager_id.encode()) % 5) * 0.10


def task_text(
    rng: random.Random, manager_id: str, task_type: str, deal_id: str | None
) -> dict[str, Any]:
    """The ``description`` and ``links`` fields of a new task (either may be absent)."""
    client = rng.choice(CLIENTS)
    card = (CARD + deal_id) if deal_id else SCRIPT
    fields: dict[str, Any] = {}
    if rng.random() >= sloppiness(manager_id):
        good = GOOD.get(task_type, GOOD["call"])
        fields["description"] = rng.choice(good).format(client=client)
        if task_type in NEEDS_LINK or rng.random() < 0.3:
            fields["links"] = [card]
        return fields
    flaw = rng.randrange(5)
    if flaw == 0:
        fields["description"] = rng.choice(VAGUE).format(client=client)
    elif flaw == 1:
        fields["description"] = rng.choice(PLACEHOLDER)
    elif flaw == 2:
        fields["description"] = RAMBLING.format(client=client)
    elif flaw == 3:  # well written, but the link is forgotten
        fields["description"] = rng.choice(GOOD.get(task_type, GOOD["call"])).format(client=client)
    # flaw 4: no description at all
    return fields
