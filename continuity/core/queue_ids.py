"""Queue identifiers: short, unique, sortable by arrival time (like Postfix's long queue ids)."""

from __future__ import annotations

import itertools
import random
import time

# Crockford base32: no I, L, O, U, so ids read aloud or copied by hand stay unambiguous.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


_SEQUENCE_BITS = 30
# One counter for the whole process, from a random start (ids need to be unique, not secret).
# next() on an itertools.count is a single C call, so ids made on the event loop and in store
# threads at the same moment still get different numbers without a lock.
_sequence = itertools.count(random.Random().getrandbits(_SEQUENCE_BITS - 1))


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def new_queue_id(now: float | None = None) -> str:
    """A 16-character id: 48 bits of milliseconds then a 30-bit sequence.

    The sequence is a process-wide counter from a random start, so ids made in one process
    never collide, however many share a millisecond, and ids of one millisecond sort in the
    order they were made (with 30 random bits alone, 20,000 ids made in one millisecond, as a
    bulk import does, collide one time in five). The counter wraps after 2**30 ids; only an
    id made exactly at that moment may sort before an earlier one of the same millisecond.
    """
    millis = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    sequence = next(_sequence) & ((1 << _SEQUENCE_BITS) - 1)
    return _encode(millis, 10) + _encode(sequence, 6)


def is_queue_id(text: str) -> bool:
    """True when text has the shape of a queue id."""
    return len(text) == 16 and all(char in _ALPHABET for char in text)
