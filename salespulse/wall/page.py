"""The wall's HTML page (wall.html): one self-contained document for an office TV.

Everything is inline (CSS, script, system fonts): an office TV often has no
internet. The script fetches ``data.json`` from the same server every few
seconds and redraws; a failed fetch keeps the last numbers and says since when.
Sizes are in viewport units so a 1080p TV read from five metres gets figures a
tenth of the screen high; colours are white and the three grades on black.
Every figure carries ``data-*`` attributes naming what it shows, for tests and
for anyone scraping the page.
"""

from __future__ import annotations

from importlib import resources

PAGE = resources.files(__package__).joinpath("wall.html").read_text(encoding="utf-8")


def render(refresh_seconds: float) -> str:
    """The page, refreshing its numbers every *refresh_seconds*."""
    return PAGE.replace("__REFRESH__", f"{refresh_seconds:g}")
