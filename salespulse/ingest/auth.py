"""Credentials: bearer tokens, HMAC signatures of the body, and the CRMs' own schemes.

Every comparison of a secret runs in constant time (``hmac.compare_digest``),
and every configured token is compared, so the time taken says nothing about
which token, or how much of one, matched.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Iterable

from pydantic import SecretStr

SIGNATURE_HEADER = "X-Salespulse-Signature"
SIGNATURE_PREFIX = "sha256="
HUBSPOT_SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
HUBSPOT_TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"

# Characters HubSpot decodes in the URI before signing it (its v3 documentation).
_HUBSPOT_DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


def token_matches(presented: str, tokens: Iterable[SecretStr]) -> bool:
    """Whether *presented* equals one of *tokens*; compares against all of them."""
    wanted = presented.encode("utf-8", "replace")
    found = False
    for token in tokens:
        found |= hmac.compare_digest(wanted, token.get_secret_value().encode("utf-8"))
    return found


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def basic_password(authorization: str | None) -> str | None:
    """The password of an ``Authorization: Basic`` header (Pipedrive's webhook auth)."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, sep, password = decoded.partition(":")
    return password if sep else None


def sign(body: bytes, secret: str) -> str:
    """The ``X-Salespulse-Signature`` value of *body*: ``sha256=<hex>``."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def signature_matches(header: str | None, body: bytes, secret: SecretStr | None) -> bool:
    if not header or secret is None:
        return False
    expected = sign(body, secret.get_secret_value())
    return hmac.compare_digest(header.strip().lower().encode(), expected.encode())


def hubspot_uri(url: str) -> str:
    """The URI as HubSpot signs it: a few percent-escapes decoded."""
    result = url
    for escaped, plain in _HUBSPOT_DECODED.items():
        result = result.replace(escaped, plain).replace(escaped.lower(), plain)
    return result


def hubspot_sign(method: str, url: str, body: bytes, timestamp: str, secret: str) -> str:
    """HubSpot's v3 signature: base64 of HMAC-SHA256(method + URI + body + timestamp)."""
    source = method.upper().encode() + hubspot_uri(url).encode("utf-8") + body + timestamp.encode()
    digest = hmac.new(secret.encode("utf-8"), source, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def hubspot_signature_matches(
    *,
    signature: str | None,
    timestamp: str | None,
    method: str,
    url: str,
    body: bytes,
    secret: SecretStr | None,
    max_age_seconds: float,
    now: float | None = None,
) -> bool:
    """Validate ``X-HubSpot-Signature-v3``; requests older than *max_age_seconds* fail."""
    if not signature or not timestamp or secret is None:
        return False
    try:
        sent_ms = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current * 1000 - sent_ms) > max_age_seconds * 1000:
        return False
    expected = hubspot_sign(method, url, body, timestamp, secret.get_secret_value())
    return hmac.compare_digest(signature.strip().encode(), expected.encode())
