"""Device cookies: attributes, signature, expiry, one account per cookie."""

from __future__ import annotations

from webmail.security.devices import DeviceCookies

KEY = b"k" * 32


def test_a_secure_device_cookie_is_host_only_httponly_and_strict() -> None:
    cookie = DeviceCookies(KEY, 90, secure=True).issue("alice@example.com", 1_000_000.0)
    header = cookie.to_header()
    assert cookie.key == "__Host-cw_device" and cookie.path == "/" and cookie.domain is None
    assert "Secure" in header and "HttpOnly" in header and "SameSite=strict" in header and "Max-Age=7776000" in header
    assert DeviceCookies(KEY, 90, secure=False).name == "cw_device"


def test_only_our_unexpired_signature_names_a_device() -> None:
    devices = DeviceCookies(KEY, 90, secure=False)
    value = devices.issue("alice@example.com", 1_000_000.0).value
    assert value is not None
    known = devices.read(value, 1_000_100.0)
    assert known is not None and known.mailbox == "alice@example.com"
    device_id, issued, mailbox, mac = value.split(".")
    assert devices.read(".".join((device_id, issued, "Ym9iQGV4YW1wbGUuY29t", mac)), 1_000_100.0) is None
    assert devices.read(".".join((device_id, str(int(issued) + 86400), mailbox, mac)), 1_000_100.0) is None
    assert DeviceCookies(b"x" * 32, 90, secure=False).read(value, 1_000_100.0) is None
    assert devices.read(value, 1_000_000.0 + 91 * 86400) is None
    assert devices.read("garbage", 1_000_100.0) is None and devices.read(None, 1.0) is None
    # Signing in again keeps the device id; another account gets a new one.
    again = devices.read(devices.issue("alice@example.com", 1_000_200.0, known).value, 1_000_300.0)
    assert again is not None and again.device_id == known.device_id
    other = devices.read(devices.issue("bob@example.com", 1_000_200.0, known).value, 1_000_300.0)
    assert other is not None and other.device_id != known.device_id


def test_device_cookies_can_be_turned_off() -> None:
    devices = DeviceCookies(KEY, 0, secure=False)
    assert not devices.enabled
    assert devices.read(DeviceCookies(KEY, 90, secure=False).issue("a@example.com", 5.0).value, 6.0) is None
