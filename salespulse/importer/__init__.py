"""``salespulse import FILE``: backfill history from a CRM export (CSV).

``mapping`` describes an export's columns (built-in ones in ``builtin/``),
``convert`` turns rows into contract events or rejection reasons,
``publish`` puts the events on the broker, ``command`` is the command line.
"""

from salespulse.importer.command import add_import_arguments, import_command
from salespulse.importer.convert import Conversion, convert_file, convert_row, convert_rows
from salespulse.importer.mapping import (
    BUILTIN_COMPANY_CONFIGS,
    BUILTIN_MAPPINGS,
    Mapping,
    load_builtin,
    load_mapping,
)

SAMPLE_COMPANY_CONFIG = BUILTIN_COMPANY_CONFIGS["crm-sales-opportunities"]

__all__ = [
    "BUILTIN_COMPANY_CONFIGS",
    "BUILTIN_MAPPINGS",
    "SAMPLE_COMPANY_CONFIG",
    "Conversion",
    "Mapping",
    "add_import_arguments",
    "convert_file",
    "convert_row",
    "convert_rows",
    "import_command",
    "load_builtin",
    "load_mapping",
]
