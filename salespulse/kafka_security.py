"""TLS and SASL settings turned into what Faust and aiokafka take.

One place builds the SSL context and the credentials, so the worker, the
topic bootstrap and the simulator connect the same way, and the password
leaves its SecretStr only here, on its way into the client.
"""

from __future__ import annotations

import ssl
from typing import Any

import faust

from salespulse.settings import Settings


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.security_protocol not in ("SSL", "SASL_SSL"):
        return None
    context = ssl.create_default_context(
        cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None
    )
    context.check_hostname = settings.ssl_check_hostname
    if settings.ssl_certfile:
        context.load_cert_chain(
            str(settings.ssl_certfile), str(settings.ssl_keyfile) if settings.ssl_keyfile else None
        )
    return context


def faust_credentials(settings: Settings) -> Any:
    """``broker_credentials`` for the Faust app, or None for plaintext."""
    context = ssl_context(settings)
    if settings.security_protocol.startswith("SASL"):
        assert settings.sasl_username
        assert settings.sasl_password
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password.get_secret_value(),
            mechanism=settings.sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for aiokafka clients (admin, producer, consumer)."""
    options: dict[str, Any] = {"security_protocol": settings.security_protocol}
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.security_protocol.startswith("SASL"):
        assert settings.sasl_username
        assert settings.sasl_password
        options.update(
            sasl_mechanism=settings.sasl_mechanism,
            sasl_plain_username=settings.sasl_username,
            sasl_plain_password=settings.sasl_password.get_secret_value(),
        )
    return options
