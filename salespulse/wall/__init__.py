"""``salespulse wall``: the wall screen as a web page for a TV in the sales office.

Team and department figures as big numbers, each manager against the
manager's own KPI targets, the plan leaderboard, the worst funnel step, and
the firing alerts when a Prometheus is given. Complements the Grafana Sales
floor dashboard where Grafana is not at hand.
"""

from __future__ import annotations

from salespulse.wall.command import add_wall_arguments, wall_command
from salespulse.wall.server import serve_wall

__all__ = ["add_wall_arguments", "serve_wall", "wall_command"]
