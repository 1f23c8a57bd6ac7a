"""Queue identifiers: short, unique, sortable by arrival time (like Postfix's long queue ids)."""

from __future__ import annotations

import random
import threading
import time

# Crockford base32: no I, L, O, U, so ids read aloud or copied by hand stay unambiguous.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


# Queue ids need to be unique, not secret: a fast generator seeded from os.urandom.
_RANDOM = random.Random()
_SEQUENCE_BITS = 30
_last = (-1, 0)  # (milliseconds, sequence) of the last id made in this process
_lock = threading.Lock()  # ids are made on the event loop and in store threads


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def new_queue_id(now: float | None = None) -> str:
    """A 16-character id: 48 bits of milliseconds then a 30-bit sequence.

    The sequence starts at a random value in each millisecond and counts up for further
    ids of the same millisecond (as ULID's monotonic mode does), so ids made in one process
    never collide, however many share a millisecond (with 30 random bits alone, 20,000 ids
    made in one millisecond, as a bulk import does, collide one time in five).
    """
    global _last
    millis = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    with _lock:
        last_millis, last_sequence = _last
        if millis == last_millis:
            sequence = (last_sequence + 1) & ((1 << _SEQUENCE_BITS) - 1)
        else:
            sequence = _RANDOM.getrandbits(_SEQUENCE_BITS - 1)  # room to count up within the millisecond
        _last = (millis, sequence)
    return _encode(millis, 10) + _encode(sequence, 6)


def is_queue_id(text: str) -> bool:
    """True when text has the shape of a queue id."""
    return len(text) == 16 and all(char in _ALPHABET for char in text)
