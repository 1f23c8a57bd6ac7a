"""Queue identifiers: short, unique, sortable by arrival time (like Postfix's long queue ids)."""

from __future__ import annotations

import random
import time

# Crockford base32: no I, L, O, U, so ids read aloud or copied by hand stay unambiguous.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


# Queue ids need to be unique, not secret: a fast generator seeded from os.urandom.
_RANDOM = random.Random()


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def new_queue_id(now: float | None = None) -> str:
    """A 16-character id: 48 bits of milliseconds then 30 random bits."""
    millis = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    return _encode(millis, 10) + _encode(_RANDOM.getrandbits(30), 6)


def is_queue_id(text: str) -> bool:
    """True when text has the shape of a queue id."""
    return len(text) == 16 and all(char in _ALPHABET for char in text)
