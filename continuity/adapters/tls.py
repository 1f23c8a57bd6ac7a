"""TLS contexts built from the configured certificate and key."""

from __future__ import annotations

import ssl
from pathlib import Path

from continuity.errors import ConfigError


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side context (TLS 1.2 or newer) for STARTTLS; ConfigError when unusable."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # ssl does not say which file is missing (its FileNotFoundError has no file name): look first.
    for path in (cert, key):
        if not path.exists():
            raise ConfigError(f"Invalid configuration: smtp.tls_cert/tls_key: {path} does not exist.")
    try:
        context.load_cert_chain(certfile=cert, keyfile=key)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"Invalid configuration: smtp.tls_cert/tls_key: cannot load {cert} with {key}: {exc}."
        ) from None
    return context
