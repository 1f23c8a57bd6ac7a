"""Device cookies: a signed mark that this browser signed in to an account before.

After a complete sign-in (password and, when on, the code) the browser gets a cookie
``cw_device`` (``__Host-cw_device`` when cookies are Secure): HttpOnly, SameSite=Strict,
valid ``device_cookie_days``, holding a random device id, the account and the time it
was issued, signed with HMAC-SHA256 under a key derived from the webmail's key file.
A browser that shows a valid one for the account it signs in to is counted under its
own device key by the login throttle, so the delays strangers cause for the account do
not apply to it (its own failures still do). The cookie proves nothing else: the
password and the code are always checked. One cookie per browser, for the account that
signed in last.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from litestar.datastructures import Cookie

_PURPOSE = b"continuity webmail device cookie v1"
_MAX_LENGTH = 700


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Device:
    """A browser known from an earlier sign-in to mailbox."""

    device_id: str
    mailbox: str
    issued_at: int


class DeviceCookies:
    """Issues and checks device cookies."""

    def __init__(self, key: bytes, days: int, *, secure: bool) -> None:
        self._key = key
        self._lifetime = days * 86400
        self._secure = secure
        self.name = ("__Host-" if secure else "") + "cw_device"

    @property
    def enabled(self) -> bool:
        """False when device_cookie_days is 0."""
        return self._lifetime > 0

    def _mac(self, device_id: str, issued_at: int, mailbox: str) -> str:
        message = b"\0".join((device_id.encode(), str(issued_at).encode(), mailbox.encode()))
        return _b64(hmac.new(self._key, _PURPOSE + b"\0" + message, hashlib.sha256).digest())

    def issue(self, mailbox: str, now: float, known: Device | None = None) -> Cookie:
        """The cookie for a browser that just signed in to mailbox (keeping its device id when it had one)."""
        device_id = known.device_id if known is not None and known.mailbox == mailbox else secrets.token_urlsafe(16)
        issued = int(now)
        value = ".".join((device_id, str(issued), _b64(mailbox.encode()), self._mac(device_id, issued, mailbox)))
        return Cookie(
            key=self.name,
            value=value,
            path="/",
            max_age=self._lifetime,
            secure=self._secure,
            httponly=True,
            samesite="strict",
        )

    def read(self, value: str | None, now: float) -> Device | None:
        """The device a cookie value names, when it is signed by us and not expired; else None."""
        if not self.enabled or not value or len(value) > _MAX_LENGTH:
            return None
        parts = value.split(".")
        if len(parts) != 4 or not parts[1].isdigit():
            return None
        device_id, issued_text, mailbox_b64, mac = parts
        try:
            mailbox = _unb64(mailbox_b64).decode()
        except (binascii.Error, ValueError):
            return None
        issued = int(issued_text)
        if not hmac.compare_digest(mac.encode(), self._mac(device_id, issued, mailbox).encode()):
            return None
        if not issued <= now + 60 < issued + self._lifetime + 60:
            return None
        return Device(device_id, mailbox, issued)
