"""Settings of the HTTP gateway (``salespulse ingest``).

Read from ``SALESPULSE_INGEST_*`` environment variables (and flags), beside the
process-wide :class:`salespulse.settings.Settings` that names the broker, the
topics, the company file and the Kafka security. Tokens and secrets are
``SecretStr``: never printed in logs, settings dumps or metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIN_TOKEN_CHARS = 16


class IngestSettingsError(ValueError):
    """The gateway's settings cannot be used; the message is meant for the operator."""


class IngestSettings(BaseSettings):
    """Everything the gateway needs beyond the common settings."""

    model_config = SettingsConfigDict(
        frozen=True, extra="forbid", env_prefix="SALESPULSE_INGEST_", populate_by_name=True
    )

    host: str = "0.0.0.0"
    port: int = Field(default=9830, ge=0, le=65535)

    # Authentication: any one valid credential admits a request.
    tokens: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        default=(), description="Bearer tokens, comma separated in the environment"
    )
    hmac_secret: SecretStr | None = Field(
        default=None, description="Secret of X-Salespulse-Signature: sha256=<hex HMAC of body>"
    )
    hubspot_client_secret: SecretStr | None = Field(
        default=None, description="HubSpot app client secret, for X-HubSpot-Signature-v3"
    )
    hubspot_max_age_seconds: float = Field(default=300.0, gt=0)
    public_url: str | None = Field(
        default=None,
        description="The gateway's URL as the CRMs call it (https://host[:port]), for "
        "signatures that cover the URL (HubSpot v3); unset = as the request saw it",
    )

    # Limits
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_batch_events: int = Field(default=500, ge=1, le=10_000)

    # Publishing
    publish_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    retry_after_seconds: int = Field(default=5, ge=1, le=3600)
    idempotence: Literal["auto", "on", "off"] = "auto"
    linger_ms: int = Field(default=5, ge=0, le=1000)
    check_funnel: bool = Field(
        default=True,
        description="Reject deal events whose pipeline or stage the company file does not "
        "know (unknown_pipeline, unknown_stage), as the worker would dead-letter them",
    )

    # CRM adapters: one mapping file each; an adapter without one answers 404.
    amocrm_mapping: Path | None = None
    hubspot_mapping: Path | None = None
    pipedrive_mapping: Path | None = None

    @field_validator("tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("tokens")
    @classmethod
    def _strong_tokens(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        for token in value:
            if len(token.get_secret_value()) < MIN_TOKEN_CHARS:
                raise ValueError(f"every token needs at least {MIN_TOKEN_CHARS} characters")
        return value

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("public_url must start with http:// or https://")
        return value.rstrip("/")

    @property
    def has_credentials(self) -> bool:
        return bool(self.tokens or self.hmac_secret or self.hubspot_client_secret)


def load_ingest_settings(**overrides: Any) -> IngestSettings:
    """IngestSettings from flags (*overrides*, None = not given) and the environment."""
    flags = {key: value for key, value in overrides.items() if value is not None}
    try:
        return IngestSettings(**flags)
    except ValidationError as exc:
        lines = ["ingest settings (SALESPULSE_INGEST_* environment, or flags) are invalid:"]
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "(top level)"
            lines.append(f"  {field}: {error['msg']}")
        raise IngestSettingsError("\n".join(lines)) from None
    except ValueError as exc:  # an environment value that is not JSON
        raise IngestSettingsError(f"SALESPULSE_INGEST_* environment: {exc}") from None
