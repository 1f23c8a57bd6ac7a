"""TLS contexts built from the configured certificate and key."""

from __future__ import annotations

import ssl
from pathlib import Path

from continuity.errors import ConfigError


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side context (TLS 1.2 or newer) for STARTTLS; ConfigError when unusable."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=cert, keyfile=key)
    except FileNotFoundError as exc:
        raise ConfigError(f"Invalid configuration: smtp.tls_cert/tls_key: {exc.filename} does not exist.") from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"Invalid configuration: smtp.tls_cert/tls_key: cannot load {cert} with {key}: {exc}."
        ) from None
    return context
