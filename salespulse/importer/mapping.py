"""How the columns of a CRM export become contract events: the column-mapping model.

A mapping is a TOML file validated by :class:`Mapping`. It names the column
of the record id, the manager, the CRM stage, the dates (created, engaged,
closed), the amount and the labels (product, channel, segment); says which
pipeline the deals belong to and how the CRM's stage values map onto its
stages; how label values are normalised (``GTXPro`` -> ``GTX Pro``); which
date formats the export uses, the time zone of naive dates and the time of
day given to dates without one.

The built-in mappings live in ``builtin/*.toml`` beside this module; the one
for the CRM sales opportunities sample is ``crm_sales_opportunities.toml``,
with the company configuration a worker needs for it in
``crm_sales_opportunities.company.toml``.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from datetime import datetime, time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from salespulse.settings import ConfigurationError, Pipeline

BUILTIN_DIR = Path(__file__).parent / "builtin"

# Built-in mappings by the name --builtin takes, and the company configuration
# a worker needs to accept their events.
BUILTIN_MAPPINGS: dict[str, Path] = {
    "crm-sales-opportunities": BUILTIN_DIR / "crm_sales_opportunities.toml",
}
BUILTIN_COMPANY_CONFIGS: dict[str, Path] = {
    "crm-sales-opportunities": BUILTIN_DIR / "crm_sales_opportunities.company.toml",
}

# strftime directives that carry a time of day; a format without any is a date only.
_TIME_DIRECTIVES = ("%H", "%I", "%M", "%S", "%X", "%c", "%T", "%R", "%p")

LabelColumn = Literal["product", "channel", "segment"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Columns(_Strict):
    """Which column of the export holds what; optional ones may be left out."""

    record_id: str = Field(min_length=1, description="unique per row: becomes the deal_id")
    manager: str = Field(min_length=1, description="the responsible manager (name or id)")
    stage: str = Field(min_length=1, description="the CRM's current stage of the deal")
    created: str | None = Field(default=None, description="when the deal was created")
    engaged: str | None = Field(
        default=None, description="when work on the deal began; used when created is empty"
    )
    closed: str | None = Field(default=None, description="when the deal was won or lost")
    amount: str | None = Field(default=None, description="the deal value")
    product: str | None = None
    channel: str | None = None
    segment: str | None = None

    def named(self) -> list[str]:
        """Every column this mapping reads."""
        return [value for value in self.model_dump().values() if value]


class PipelineMapping(Pipeline):
    """The pipeline the imported deals belong to, as the worker's configuration must have it.

    ``stages``, ``won`` and ``lost`` are checked against the worker's pipeline
    of the same ``name`` when the import is given a configuration file.
    """

    name: str = Field(default="default", min_length=1, max_length=64)
    created_stage: str | None = Field(
        default=None,
        description="the stage a deal is created in (default: the first stage); an export "
        "without creation dates knows a deal first at a later stage",
    )

    @model_validator(mode="after")
    def _created_stage_is_ordered(self) -> PipelineMapping:
        if self.created_stage is not None and self.created_stage not in self.stages:
            raise ValueError(f"created_stage {self.created_stage!r} is not one of the stages")
        return self

    @property
    def first_stage(self) -> str:
        return self.created_stage or self.stages[0]


class Dates(_Strict):
    """How date cells are read.

    ``formats`` are tried in order: strftime patterns, or ``iso`` for ISO 8601
    (``datetime.fromisoformat``). A value without a UTC offset is local time in
    ``timezone``; a value that is a date only gets ``time_of_day`` in that zone
    (noon by default: the day stays the same in any zone within 12 hours).
    """

    formats: tuple[str, ...] = Field(default=("%Y-%m-%d",), min_length=1)
    timezone: str = "UTC"
    time_of_day: time = time(12, 0)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def parse(self, text: str) -> datetime:
        """An aware datetime from *text*; ValueError when no format fits."""
        value = text.strip()
        for fmt in self.formats:
            try:
                if fmt == "iso":
                    parsed = datetime.fromisoformat(value)
                    date_only = len(value) <= 10  # YYYY-MM-DD or YYYYMMDD
                else:
                    parsed = datetime.strptime(value, fmt)
                    date_only = not any(d in fmt for d in _TIME_DIRECTIVES)
            except ValueError:
                continue
            if date_only:
                parsed = datetime.combine(parsed.date(), self.time_of_day)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=self.zone)
            return parsed
        raise ValueError(f"{value!r} matches none of the date formats {list(self.formats)}")


class ManagerIds(_Strict):
    """How the manager column becomes a ``manager_id``.

    ``slug``: lower case, accents dropped, runs of anything but letters and
    digits turned into ``-`` (``Mei-Mei Johns`` -> ``mei-mei-johns``), so a
    name gives a stable id that is easy to type in PromQL. ``verbatim``: the
    cell as it is (for exports that carry ids).
    """

    style: Literal["slug", "verbatim"] = "slug"
    prefix: str = Field(default="", max_length=16)

    def id_of(self, value: str) -> str:
        text = value.strip()
        if self.style == "slug":
            text = slug(text)
        return f"{self.prefix}{text}" if text else ""


class Teams(_Strict):
    """Which columns of a team roster (``--print-managers``) give names and teams."""

    name_column: str = "sales_agent"
    team_column: str = "regional_office"


class Mapping(_Strict):
    """A CRM export's columns mapped onto the event contract (see the module docstring)."""

    source: str = Field(
        min_length=1,
        max_length=48,
        pattern=r"^[a-z0-9][a-z0-9._-]*$",
        description="names the export in event ids (import:<source>:...) and events' source",
    )
    description: str = ""
    header: tuple[str, ...] = Field(
        default=(),
        description="the export's header; a file with exactly these columns is "
        "recognised as this export without --mapping",
    )
    pipeline: PipelineMapping
    columns: Columns
    stages: dict[str, str] = Field(
        min_length=1, description="the CRM's stage values -> stages of the pipeline"
    )
    normalise: dict[LabelColumn, dict[str, str]] = Field(
        default_factory=dict, description="label values as the company names them"
    )
    dates: Dates = Dates()
    manager_ids: ManagerIds = ManagerIds()
    teams: Teams = Teams()

    @model_validator(mode="after")
    def _stages_known(self) -> Mapping:
        known = set(self.pipeline.stages) | set(self.pipeline.lost)
        unknown = sorted({stage for stage in self.stages.values() if stage not in known})
        if unknown:
            raise ValueError(
                f"stages maps CRM values to {unknown}, which are neither stages nor lost "
                f"stages of pipeline {self.pipeline.name!r}"
            )
        if not (self.columns.created or self.columns.engaged):
            raise ValueError("columns need created or engaged: a deal needs a creation time")
        return self

    def missing_columns(self, header: list[str]) -> list[str]:
        present = set(header)
        return [column for column in self.columns.named() if column not in present]

    def normalised(self, column: LabelColumn, value: str) -> str:
        value = value.strip()
        return self.normalise.get(column, {}).get(value, value)


def slug(text: str) -> str:
    """``Mei-Mei Johns`` -> ``mei-mei-johns``; letters of any script are kept."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"[\W_]+", "-", plain.casefold()).strip("-")


def load_mapping(path: Path) -> Mapping:
    """Read and validate a mapping file; ConfigurationError names the file and field."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigurationError(f"mapping file {path} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"mapping file {path}: {exc}") from None
    try:
        return Mapping.model_validate(data)
    except ValidationError as exc:
        lines = [f"mapping file {path} is invalid:"]
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "(top level)"
            lines.append(f"  {field}: {error['msg']}")
        raise ConfigurationError("\n".join(lines)) from None


def load_builtin(name: str) -> Mapping:
    try:
        path = BUILTIN_MAPPINGS[name]
    except KeyError:
        known = ", ".join(sorted(BUILTIN_MAPPINGS))
        raise ConfigurationError(f"no built-in mapping {name!r} (built in: {known})") from None
    return load_mapping(path)


def detect_builtin(header: list[str]) -> str | None:
    """The built-in mapping whose declared header is exactly *header* (in any order)."""
    for name in sorted(BUILTIN_MAPPINGS):
        mapping = load_builtin(name)
        if mapping.header and set(mapping.header) == {column.strip() for column in header}:
            return name
    return None
