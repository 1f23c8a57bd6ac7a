"""TOTP second factor (RFC 6238) with pyotp, and its enrolment QR code as inline SVG (segno)."""

from __future__ import annotations

import time

import pyotp
import segno

_INTERVAL = 30
# Codes of the previous and next 30-second step are accepted too (clock drift).
_WINDOW = 1


def new_secret() -> str:
    """A fresh random base32 secret (160 bits)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The otpauth:// URI authenticator apps read from the QR code."""
    return pyotp.TOTP(secret, interval=_INTERVAL).provisioning_uri(name=account, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """An inline <svg> QR code of uri (no script, no external reference)."""
    return str(segno.make(uri, error="m").svg_inline(scale=5, dark="#000", light="#fff", title="Authenticator QR code"))


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step code belongs to (within the drift window), or None when it does not match."""
    digits = "".join(code.split())
    if len(digits) != 6 or not digits.isdigit():
        return None
    moment = time.time() if now is None else now
    totp = pyotp.TOTP(secret, interval=_INTERVAL)
    current = int(moment // _INTERVAL)
    for step in range(current - _WINDOW, current + _WINDOW + 1):
        if pyotp.utils.strings_equal(totp.at(step * _INTERVAL), digits):
            return step
    return None
