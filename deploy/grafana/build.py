"""Render the salespulse dashboards to JSON for Grafana's file provisioning.

From the repository root:

    .venv/bin/python -m deploy.grafana.build           # write deploy/grafana/dashboards/*.json
    .venv/bin/python -m deploy.grafana.build --check   # exit 1 and list the files that drifted

The output is deterministic (sorted keys, 2-space indent, trailing newline), so
the committed JSON can be compared byte for byte with a fresh rendering.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from deploy.grafana.dashboards_src import DASHBOARDS

OUTPUT_DIR = Path(__file__).resolve().parent / "dashboards"
BUILD_COMMAND = ".venv/bin/python -m deploy.grafana.build"


def render(dashboard: Dashboard) -> str:
    """The dashboard as Grafana JSON: sorted keys, 2-space indent, trailing newline."""
    text = json.dumps(dashboard, cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False)
    return text + "\n"


def rendered(output_dir: Path = OUTPUT_DIR) -> dict[Path, str]:
    """Every dashboard's file path and content, rendered from the sources."""
    files: dict[Path, str] = {}
    for uid, build in DASHBOARDS.items():
        dashboard = build()
        if dashboard.uid != uid:
            raise ValueError(f"dashboard registered as {uid!r} has uid {dashboard.uid!r}")
        files[output_dir / f"{uid}.json"] = render(dashboard)
    return files


def drifted(output_dir: Path = OUTPUT_DIR) -> list[Path]:
    """Files that differ from a fresh rendering: changed, missing, or no longer built."""
    expected = rendered(output_dir)
    stale = [path for path in sorted(output_dir.glob("*.json")) if path not in expected]
    changed = [
        path
        for path, content in expected.items()
        if not path.is_file() or path.read_text(encoding="utf-8") != content
    ]
    return sorted(changed + stale)


def write(output_dir: Path = OUTPUT_DIR) -> list[Path]:
    """Write every dashboard, remove JSON files no source builds; the paths changed."""
    expected = rendered(output_dir)
    touched = drifted(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for path in touched:
        if path in expected:
            path.write_text(expected[path], encoding="utf-8")
        else:
            path.unlink()
    return touched


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.grafana.build",
        description="Render the salespulse Grafana dashboards to deploy/grafana/dashboards/.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 listing the files that differ from the sources",
    )
    args = parser.parse_args(argv)
    root = Path.cwd()

    def shown(path: Path) -> str:
        return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)

    if args.check:
        stale = drifted()
        if stale:
            print("dashboards out of date with deploy/grafana/dashboards_src:", file=sys.stderr)
            for path in stale:
                print(f"  {shown(path)}", file=sys.stderr)
            print(f"run: {BUILD_COMMAND}", file=sys.stderr)
            return 1
        print(f"{len(DASHBOARDS)} dashboards up to date")
        return 0

    for path in write():
        print(f"wrote {shown(path)}" if path.exists() else f"removed {shown(path)}")
    print(f"{len(DASHBOARDS)} dashboards in {shown(OUTPUT_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
