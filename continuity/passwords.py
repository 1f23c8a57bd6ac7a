"""Password hashing with Argon2id (argon2-cffi), the OWASP-recommended default."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()

MIN_LENGTH = 10


def check_password_policy(password: str) -> None:
    """Raise ValueError with a sentence when password is too weak to set."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"a password must have at least {MIN_LENGTH} characters")
    if password.strip() != password:
        raise ValueError("a password must not start or end with whitespace")


def hash_password(password: str) -> str:
    """An Argon2id hash of password (CPU-heavy: call it off the event loop)."""
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when password matches password_hash."""
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def is_password_hash(text: str) -> bool:
    """True when text looks like an Argon2 hash this module can verify."""
    return text.startswith("$argon2")
