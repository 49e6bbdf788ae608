"""Configuration: one frozen Settings object for the whole process.

Precedence is flags > environment (``SALESPULSE_*``) > the TOML file named by
``--config`` or ``SALESPULSE_CONFIG`` > built-in defaults. The TOML file also
carries the company's model of itself: time zone, funnels, managers, KPI
targets. A configuration that does not validate stops the start with a
message that names the file and the field, never a traceback.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_STAGES = (
    "lead",
    "qualified",
    "contacted",
    "needs_analysis",
    "demo",
    "proposal",
    "negotiation",
    "contract",
    "won",
)


class ConfigurationError(Exception):
    """The configuration cannot be used; the message is meant for the operator."""


class Regulation(BaseModel):
    """What entering a stage obliges a manager to do: a task of a type, due soon enough.

    Met when a task of ``task_type`` for the deal exists, due at most
    ``within_hours`` after the deal entered the stage, by that deadline;
    missed when the deadline passes without one.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_type: str = Field(min_length=1, max_length=64)
    within_hours: float = Field(gt=0, le=24 * 90)


class Pipeline(BaseModel):
    """One funnel: ordered stages, the ones that mean won, and the ones that mean lost.

    Won stages are part of the ordered funnel (reaching them is the last step);
    lost stages stand outside the order, since a deal can be lost from anywhere.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    stages: tuple[str, ...] = DEFAULT_STAGES
    won: tuple[str, ...] = ("won",)
    lost: tuple[str, ...] = ("lost",)
    regulations: dict[str, Regulation] = Field(default_factory=dict)
    # An open deal longer than this many days in a stage counts as stuck there; a stage
    # without a limit never holds stuck deals (the processor cannot know the team's
    # typical time in a stage, so there is no default: the recorded team p75 is guidance).
    stuck_after_days: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Pipeline:
        if not self.stages:
            raise ValueError("a pipeline needs at least one stage")
        if len(set(self.stages)) != len(self.stages):
            raise ValueError("stages must be unique")
        if not self.won:
            raise ValueError("a pipeline needs at least one won stage")
        missing = [stage for stage in self.won if stage not in self.stages]
        if missing:
            raise ValueError(f"won stages {missing} are not among the pipeline's stages")
        overlap = [stage for stage in self.lost if stage in self.stages]
        if overlap:
            raise ValueError(f"lost stages {overlap} must not be part of the ordered stages")
        unknown = [stage for stage in self.regulations if stage not in self.stages]
        if unknown:
            raise ValueError(f"regulations name stages {unknown} that are not ordered stages")
        closing = set(self.won)
        unknown = [s for s in self.stuck_after_days if s not in self.stages or s in closing]
        if unknown:
            raise ValueError(
                f"stuck_after_days names stages {unknown} that are not open ordered stages"
            )
        bad = [s for s, days in self.stuck_after_days.items() if not 0 < days <= 365]
        if bad:
            raise ValueError(f"stuck_after_days of {bad} must be more than 0 and at most 365")
        return self

    def stuck_after_seconds(self, stage: str) -> float | None:
        """How long an open deal may stay in *stage* before it is stuck; None: forever."""
        days = self.stuck_after_days.get(stage)
        return None if days is None else days * 86400.0

    def index_of(self, stage: str) -> int | None:
        """Position in the ordered funnel; None for lost stages."""
        try:
            return self.stages.index(stage)
        except ValueError:
            return None

    def outcome_of(self, stage: str) -> str | None:
        """``won``/``lost`` when entering *stage* closes the deal, else None."""
        if stage in self.won:
            return "won"
        if stage in self.lost:
            return "lost"
        return None


class KpiTargets(BaseModel):
    """KPI targets; unset fields fall back to the team default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_overdue_rate: float | None = Field(default=None, ge=0, le=1)
    max_avg_call_duration_seconds: float | None = Field(default=None, ge=0)
    max_throughput_deviation: float | None = Field(default=None, ge=0)
    min_stage_conversion: float | None = Field(default=None, ge=0, le=1)
    min_win_rate: float | None = Field(default=None, ge=0, le=1)
    min_regulation_compliance: float | None = Field(default=None, ge=0, le=1)

    def merged_over(self, default: KpiTargets) -> KpiTargets:
        """These targets where set, *default*'s elsewhere."""
        return default.model_copy(update=self.model_dump(exclude_none=True))


class KpiChange(KpiTargets):
    """Targets that take effect on a date: a coach tightens a KPI step by step (27, then 22 min)."""

    since: date


class MonthlyPlan(BaseModel):
    """What a manager should reach in a calendar month (company time zone); unset
    fields fall back to the team default, and a target set nowhere is not planned.

    ``deals_closed`` counts won and lost deals alike, as the throughput does;
    ``won_amount`` is the value of the deals won.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    deals_closed: int | None = Field(default=None, ge=1)
    won_amount: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    def merged_over(self, default: MonthlyPlan) -> MonthlyPlan:
        """This plan where set, *default*'s elsewhere."""
        return default.model_copy(update=self.model_dump(exclude_none=True))


class LabelLimits(BaseModel):
    """Bounds on free-text label values so a flood of new values cannot explode series.

    Listed values are always kept. Without a list, each manager keeps the first
    ``max_values`` distinct values it sees; later ones are reported as
    ``other`` (and counted in ``salespulse_label_overflow_total``). Missing
    values are reported as ``""``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    products: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    task_types: tuple[str, ...] = ()
    max_values: int = Field(default=20, ge=0, le=1000)


class TaskStandard(BaseModel):
    """How a task of one type is to be written; a field left unset falls back to the
    default standard (``[task_standards.default]``), and a check without a setting
    anywhere does not apply.

    ``methods`` are the words or phrases that name a concrete way of doing the task
    ("by the script", "call"): matched case-insensitively as whole words.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_words: int | None = Field(default=None, ge=1, le=1000)
    methods: tuple[str, ...] | None = None
    link_required: bool | None = None

    @field_validator("methods")
    @classmethod
    def _methods_have_words(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and any(not method.strip() for method in value):
            raise ValueError("a method must name at least one word")
        return value

    def merged_over(self, default: TaskStandard) -> TaskStandard:
        """This standard where set, *default*'s elsewhere."""
        return default.model_copy(update=self.model_dump(exclude_none=True))


class TaskStandards(BaseModel):
    """The standards task descriptions are held to, per task type.

    A task type with neither its own standard nor a default is not checked.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    default: TaskStandard | None = None
    types: dict[str, TaskStandard] = Field(default_factory=dict)

    def for_type(self, task_type: str) -> TaskStandard | None:
        """The effective standard of *task_type*, or None when it has none."""
        own = self.types.get(task_type)
        if own is None:
            return self.default
        return own if self.default is None else own.merged_over(self.default)


class Manager(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    team: str = Field(default="", max_length=64)
    kpi: KpiTargets = KpiTargets()
    kpi_changes: tuple[KpiChange, ...] = ()
    plan: MonthlyPlan = MonthlyPlan()

    def kpi_on(self, day: date, default: KpiTargets) -> KpiTargets:
        """Effective targets on *day*: the default, this manager's own, then changes due by then."""
        effective = self.kpi.merged_over(default)
        for change in sorted(self.kpi_changes, key=lambda c: c.since):
            if change.since <= day:
                update = change.model_dump(exclude_none=True, exclude={"since"})
                effective = effective.model_copy(update=update)
        return effective


class Intervention(BaseModel):
    """Something done on a date to change results (coaching, a new script), for one
    manager or a whole team, so that its weeks before and after can be compared.

    Exactly one of ``manager`` and ``team`` is set; the manager need not be
    configured (a manager known only from events can be coached too).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    date: date
    manager: str | None = Field(default=None, min_length=1, max_length=128)
    team: str | None = Field(default=None, min_length=1, max_length=64)
    note: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _one_subject(self) -> Intervention:
        if (self.manager is None) == (self.team is None):
            raise ValueError("an intervention names exactly one of manager and team")
        return self


class Forecast(BaseModel):
    """How the weighted pipeline forecast learns from history (``[forecast]``).

    The chance that a deal in a stage is won is the team's won / reached that
    stage over the last ``look_back_days``, or the manager's own once the
    manager reached the stage with at least ``min_own_deals`` deals in that
    time. The recording rules are written for the defaults (a PromQL offset
    is a literal): tests/unit/deploy/test_forecast_rules.py keeps them equal.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    look_back_days: int = Field(default=90, ge=1)
    min_own_deals: int = Field(default=30, ge=1)


_config_file: ContextVar[Path | None] = ContextVar("salespulse_config_file", default=None)


class Settings(BaseSettings):
    """Everything a salespulse process needs to know, read once at start."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        env_prefix="SALESPULSE_",
        env_nested_delimiter="__",
    )

    # Operation
    broker: str | None = Field(
        default=None, description="kafka://host:port[;host:port]; unset = embedded broker"
    )
    metrics_port: int = Field(default=9820, ge=0, le=65535)
    metrics_host: str = "0.0.0.0"
    config: Path | None = Field(default=None, description="TOML file with the company model")
    app_id: str = Field(default="salespulse", pattern=r"^[A-Za-z0-9._-]+$")
    partitions: int = Field(default=4, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1)
    topic_deals: str = "crm.deals"
    topic_tasks: str = "crm.tasks"
    topic_calls: str = "crm.calls"
    topic_dead_letter: str = "crm.dead-letter"
    session_timeout_seconds: float = Field(default=30.0, gt=0)
    heartbeat_interval_seconds: float = Field(default=3.0, gt=0)
    # Most source records one fetch takes (over all partitions); each partition's share
    # reaches its agent as one batch (streams.batching).
    batch_max_events: int = Field(default=2000, ge=1)
    # Longest a fetch waits for records. Kafka answers as soon as there are any; a broker
    # that does not (the embedded one) answers only after this, which bounds latency.
    batch_max_seconds: float = Field(default=0.1, gt=0, le=10)
    # How often touched state is written to the changelog (0: after every batch).
    # A crash loses no event either way: what the changelog misses is read back.
    changelog_interval_seconds: float = Field(default=1.0, ge=0, le=60)
    # Where deals, tasks and call days rest between uses: packed in memory, or in a
    # RocksDB in a temporary directory (docs/performance.md weighs the two).
    state_engine: Literal["memory", "rocksdb"] = "memory"
    log_level: str = "info"
    startup_timeout_seconds: float = Field(default=120.0, gt=0)  # waiting for the broker

    # Kafka security: TLS and SASL (PLAIN, SCRAM). The password is a secret: it is
    # never printed in logs, settings dumps or metrics.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_check_hostname: bool = True

    # Event time
    timezone: str = "UTC"
    grace_period_seconds: float = Field(default=86400.0, ge=0)
    dedupe_horizon_days: int = Field(default=7, ge=1, le=3660)
    max_future_skew_seconds: float = Field(default=86400.0, ge=0)

    # The company
    pipelines: dict[str, Pipeline] = Field(default_factory=lambda: {"default": Pipeline()})
    managers: dict[str, Manager] = Field(default_factory=dict)
    kpi: KpiTargets = KpiTargets()
    plan: MonthlyPlan = MonthlyPlan()  # team default of every manager's monthly plan
    labels: LabelLimits = LabelLimits()
    task_standards: TaskStandards = TaskStandards()
    forecast: Forecast = Forecast()

    # Coaching and other interventions, dated, for the before/after report and annotations
    interventions: tuple[Intervention, ...] = ()

    # Managers not in [managers] that one partition may track; beyond, events are
    # dead-lettered as manager_limit so a flood of ids cannot explode the series.
    max_unconfigured_managers: int = Field(default=1000, ge=0)

    # How long a stage change or task completion waits for its creation (event time)
    creation_wait_seconds: float = Field(default=300.0, ge=0)

    # Task deadlines by wall clock, once a partition is caught up
    overdue_check_interval_seconds: float = Field(default=5.0, gt=0)
    overdue_allowance_seconds: float = Field(default=60.0, ge=0)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("broker")
    @classmethod
    def _broker_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith("kafka://"):
            raise ValueError("broker must look like kafka://host:port")
        return value

    @model_validator(mode="after")
    def _sasl_complete(self) -> Settings:
        if self.security_protocol.startswith("SASL") and not (
            self.sasl_username and self.sasl_password
        ):
            raise ValueError(f"{self.security_protocol} needs sasl_username and sasl_password")
        return self

    @model_validator(mode="after")
    def _heartbeat_below_session(self) -> Settings:
        if self.heartbeat_interval_seconds >= self.session_timeout_seconds:
            raise ValueError("heartbeat_interval_seconds must be below session_timeout_seconds")
        if self.grace_period_seconds > self.dedupe_horizon_days * 86400:
            raise ValueError("grace_period_seconds must not exceed dedupe_horizon_days")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def source_topics(self) -> tuple[str, str, str]:
        return (self.topic_deals, self.topic_tasks, self.topic_calls)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file.get()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def load_settings(**overrides: Any) -> Settings:
    """Build Settings from flags (*overrides*), environment and the TOML file.

    Flags given as None count as not given, so argparse defaults never mask
    the environment.
    """
    flags = {key: value for key, value in overrides.items() if value is not None}
    path_text = flags.get("config") or os.environ.get("SALESPULSE_CONFIG") or None
    path = Path(path_text) if path_text else None
    if path is not None and not path.is_file():
        raise ConfigurationError(f"configuration file {path} does not exist")
    token = _config_file.set(path)
    try:
        if path is not None:
            flags["config"] = path
        return Settings(**flags)
    except ValidationError as exc:
        raise ConfigurationError(_describe(exc, path)) from None
    except ValueError as exc:  # TOML syntax, or an environment value that is not JSON
        where = (
            f"configuration file {path} (or SALESPULSE_* environment)"
            if path
            else ("SALESPULSE_* environment")
        )
        raise ConfigurationError(f"{where}: {exc}") from None
    finally:
        _config_file.reset(token)


def _describe(exc: ValidationError, path: Path | None) -> str:
    where = f"configuration file {path}" if path else "configuration"
    lines = [f"{where} (or SALESPULSE_* environment, or flags) is invalid:"]
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"  {field}: {error['msg']}")
    return "\n".join(lines)
