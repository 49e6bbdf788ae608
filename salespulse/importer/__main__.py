"""``python -m salespulse.importer FILE``: the same as ``salespulse import FILE``."""

from __future__ import annotations

import argparse

from salespulse.importer.command import PROG, add_import_arguments, import_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Backfill history from a CRM export (CSV)."
    )
    add_import_arguments(parser)
    try:
        return import_command(parser.parse_args(argv))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
