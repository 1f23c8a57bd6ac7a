"""DKIM signing of outbound mail with dkimpy, with the keys named in ``[dkim]``."""

from __future__ import annotations

import dkim

from continuity.config.dkim import DkimSettings
from continuity.errors import ConfigError

# Header fields signed (RFC 6376 section 5.4.1 recommends these); From is mandatory.
_SIGNED = [
    b"from",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"in-reply-to",
    b"references",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
    b"reply-to",
]


class DkimSigner:
    """Signs messages whose sender domain has a configured key."""

    def __init__(self, settings: DkimSettings) -> None:
        self._keys: dict[str, tuple[bytes, bytes]] = {}
        for key in settings.keys:
            try:
                pem = key.private_key.read_bytes()
            except OSError as exc:
                raise ConfigError(f"dkim.keys: cannot read the private key of {key.domain}: {exc}") from None
            self._keys[key.domain] = (key.selector.encode(), pem)

    def domains(self) -> frozenset[str]:
        """Domains a key is configured for."""
        return frozenset(self._keys)

    def sign(self, message: bytes, domain: str) -> bytes:
        """message with a DKIM-Signature header prepended when domain has a key, else unchanged."""
        key = self._keys.get(domain.lower())
        if key is None:
            return message
        selector, pem = key
        try:
            signature = dkim.sign(message, selector, domain.encode(), pem, include_headers=_SIGNED)
        except dkim.DKIMException as exc:
            raise ConfigError(f"dkim.keys: the key of {domain} cannot sign: {exc}") from None
        return bytes(signature) + message
