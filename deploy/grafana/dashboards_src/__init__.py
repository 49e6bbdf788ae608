"""The salespulse Grafana dashboards as code (grafana-foundation-sdk).

One module per dashboard, each with ``UID``, ``TITLE`` and ``build()``; the
shared pieces (datasource, units, thresholds, variables, panel factories) are in
:mod:`.common`. ``python -m deploy.grafana.build`` renders them to
``deploy/grafana/dashboards/<uid>.json``.
"""

from __future__ import annotations

from collections.abc import Callable

from grafana_foundation_sdk.models.dashboard import Dashboard

from . import manager, processor, sales_floor

# uid -> builder, in the order the dashboards are listed in the report and folder.
DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    sales_floor.UID: sales_floor.build,
    manager.UID: manager.build,
    processor.UID: processor.build,
}

__all__ = ["DASHBOARDS"]
