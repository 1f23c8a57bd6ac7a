"""Sign-in decisions: password check with the login throttle, TOTP check with replay protection.

Each attempt is counted by the store before the password or the code is checked (see
continuity.core.login_throttle), and forgotten only when it succeeds. Passwords count
per account (or per known device) and per client network; codes count per account under
their own key, which only a right code clears.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from continuity.config.settings import Settings
from continuity.core.addresses import normalize_address
from continuity.core.login_throttle import (
    Attempt,
    Limit,
    ThrottlePolicy,
    ThrottleScope,
    account_key,
    decide,
    device_key,
    ip_key,
    reauth_key,
    second_factor_key,
)
from continuity.passwords import hash_password, verify_password
from continuity.store.protocol import Store
from webmail.security.devices import Device
from webmail.security.totp import matching_step

WRONG_CREDENTIALS = "The address or the password is not right."
WRONG_CODE = "That code is not right or was already used. Enter the current code from your authenticator app."
# Verified when the account does not exist, so a wrong address costs the same time as a wrong password.
_DUMMY_HASH = hash_password("not a real password, only for timing")


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The password was right; second_factor tells whether a TOTP code is still due."""

    mailbox: str
    second_factor: bool


@dataclass(frozen=True, slots=True)
class Refused:
    """Sign-in refused; message is for the user, status the HTTP status."""

    message: str
    status: int


def throttle_policy(settings: Settings) -> ThrottlePolicy:
    """The login throttle's policy from the [webmail] settings."""
    webmail = settings.webmail
    return ThrottlePolicy(
        max_per_account=webmail.max_failures_per_account,
        max_per_ip=webmail.max_failures_per_ip,
        memory_seconds=webmail.failure_memory_hours * 3600.0,
        longest_delay=webmail.throttle_minutes * 60.0,
    )


async def _begin(store: Store, policy: ThrottlePolicy, limits: tuple[Limit, ...]) -> Attempt:
    now = time.time()
    return await store.webmail_auth.begin_attempt(
        [limit.key for limit in limits],
        now - policy.memory_seconds,
        now,
        lambda found: decide(policy, limits, found, now),
    )


async def _passed(store: Store, attempt: Attempt, key: str) -> None:
    """A right password or code: its attempt is not a failure, and the key's earlier failures are forgotten."""
    await store.webmail_auth.forget_attempt(attempt.recorded)
    await store.webmail_auth.clear_failures(key)


def _account(address: str) -> str:
    try:
        return normalize_address(address)
    except ValueError:
        return address.strip().lower()[:320]


async def check_password(
    store: Store, policy: ThrottlePolicy, address: str, password: str, client: str, device: Device | None = None
) -> SignedIn | Refused:
    """Check a sign-in form; device is the browser's valid device cookie, if any."""
    account = _account(address)
    known = device is not None and device.mailbox == account
    first = (
        Limit(ThrottleScope.DEVICE, device_key(device.device_id), policy.max_per_account)
        if device is not None and known
        else Limit(ThrottleScope.ACCOUNT, account_key(account), policy.max_per_account)
    )
    attempt = await _begin(store, policy, (first, Limit(ThrottleScope.IP, ip_key(client), policy.max_per_ip)))
    if attempt.throttled is not None:
        return Refused(attempt.throttled.message, 429)
    mailbox = await store.mailboxes.get(account)
    stored_hash = mailbox.password_hash if mailbox is not None and mailbox.password_hash else _DUMMY_HASH
    matches = await asyncio.to_thread(verify_password, stored_hash, password)
    if mailbox is None or not mailbox.enabled or not mailbox.password_hash or not matches:
        return Refused(WRONG_CREDENTIALS, 401)
    await _passed(store, attempt, first.key)
    totp = await store.webmail_auth.totp(mailbox.address)
    return SignedIn(mailbox.address, second_factor=totp is not None and totp.enabled)


async def check_code(store: Store, policy: ThrottlePolicy, mailbox: str, code: str, client: str) -> Refused | None:
    """Check the TOTP code of a signed-in-by-password session; None when it is right."""
    limits = (
        Limit(ThrottleScope.SECOND_FACTOR, second_factor_key(mailbox), policy.max_per_account),
        Limit(ThrottleScope.IP, ip_key(client), policy.max_per_ip),
    )
    attempt = await _begin(store, policy, limits)
    if attempt.throttled is not None:
        return Refused(attempt.throttled.message, 429)
    record = await store.webmail_auth.totp(mailbox)
    step = matching_step(record.secret, code) if record is not None and record.enabled else None
    if step is None or not await store.webmail_auth.use_totp_step(mailbox, step, enable=False):
        return Refused(WRONG_CODE, 401)
    await _passed(store, attempt, second_factor_key(mailbox))
    return None


async def check_current_password(
    store: Store, policy: ThrottlePolicy, mailbox: str, password: str, client: str
) -> Refused | None:
    """Check the password a signed-in user types to change a setting; None when it is right.

    Throttled like sign-in, under its own key, so a stolen session cannot be used to guess
    the password at Argon2id's cost without limit.
    """
    limits = (
        Limit(ThrottleScope.ACCOUNT, reauth_key(mailbox), policy.max_per_account),
        Limit(ThrottleScope.IP, ip_key(client), policy.max_per_ip),
    )
    attempt = await _begin(store, policy, limits)
    if attempt.throttled is not None:
        return Refused(attempt.throttled.message, 429)
    record = await store.mailboxes.get(mailbox)
    if record is None or not record.password_hash:
        return Refused("The password is not right.", 400)
    if not await asyncio.to_thread(verify_password, record.password_hash, password):
        return Refused("The password is not right.", 400)
    await _passed(store, attempt, reauth_key(mailbox))
    return None
