"""Sign-in decisions: password check with the login throttle, TOTP check with replay protection."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from continuity.core.addresses import normalize_address
from continuity.core.login_throttle import Throttled, ThrottlePolicy, account_key, decide, ip_key
from continuity.passwords import hash_password, verify_password
from continuity.store.protocol import Store
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


async def _throttled(store: Store, policy: ThrottlePolicy, account: str, client: str) -> Throttled | None:
    now = time.time()
    counts = await store.webmail_auth.failure_counts(account_key(account), ip_key(client), now - policy.window_seconds)
    return decide(policy, counts, now)


async def check_password(
    store: Store, policy: ThrottlePolicy, address: str, password: str, client: str
) -> SignedIn | Refused:
    """Check a sign-in form."""
    try:
        account = normalize_address(address)
    except ValueError:
        account = address.strip().lower()[:320]
    throttled = await _throttled(store, policy, account, client)
    if throttled is not None:
        return Refused(throttled.message, 429)
    mailbox = await store.mailboxes.get(account)
    stored_hash = mailbox.password_hash if mailbox is not None and mailbox.password_hash else _DUMMY_HASH
    matches = await asyncio.to_thread(verify_password, stored_hash, password)
    if mailbox is None or not mailbox.enabled or not mailbox.password_hash or not matches:
        await store.webmail_auth.record_failure((account_key(account), ip_key(client)), time.time())
        return Refused(WRONG_CREDENTIALS, 401)
    await store.webmail_auth.clear_failures(account_key(account))
    totp = await store.webmail_auth.totp(mailbox.address)
    return SignedIn(mailbox.address, second_factor=totp is not None and totp.enabled)


async def check_code(store: Store, policy: ThrottlePolicy, mailbox: str, code: str, client: str) -> Refused | None:
    """Check the TOTP code of a signed-in-by-password session; None when it is right."""
    throttled = await _throttled(store, policy, mailbox, client)
    if throttled is not None:
        return Refused(throttled.message, 429)
    record = await store.webmail_auth.totp(mailbox)
    step = matching_step(record.secret, code) if record is not None and record.enabled else None
    if step is None or not await store.webmail_auth.use_totp_step(mailbox, step, enable=False):
        await store.webmail_auth.record_failure((account_key(mailbox), ip_key(client)), time.time())
        return Refused(WRONG_CODE, 401)
    await store.webmail_auth.clear_failures(account_key(mailbox))
    return None
