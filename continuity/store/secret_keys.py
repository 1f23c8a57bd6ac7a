"""The webmail's key file: encrypts TOTP secrets in the store and signs device cookies.

The key is kept outside the database (``[webmail] key_file``, by default
``webmail.key`` in the data directory), so a copy of the database alone does not reveal
any user's second factor. The file holds one Fernet key (AES-128-CBC with HMAC-SHA256,
from the ``cryptography`` package) per line: the first encrypts, all of them decrypt.
To rotate, put a new key (``openssl rand -base64 32 | tr '+/' '-_'`` makes one) on the
first line and keep the old one below it; the next start re-encrypts every
secret with the new key, after which the old line can go. The file is created with a
fresh key, mode 0600, the first time the store opens without one.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from continuity.errors import StorageError

# Stored values that are encrypted start with this; base32 TOTP secrets never contain ':'.
_PREFIX = "fernet:"


def new_key() -> str:
    """A fresh Fernet key, for a new line of the key file."""
    return Fernet.generate_key().decode()


class KeyRing:
    """The keys of the key file: the first encrypts, every one decrypts."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise StorageError("the key file holds no key")
        self._primary = Fernet(keys[0])
        self._all = MultiFernet([Fernet(key) for key in keys])
        self._primary_key = keys[0]

    def encrypt(self, text: str) -> str:
        """The stored form of a secret."""
        return _PREFIX + self._primary.encrypt(text.encode()).decode()

    def decrypt(self, stored: str) -> str:
        """The secret of a stored value (one stored before encryption is returned as it is)."""
        if not stored.startswith(_PREFIX):
            return stored
        try:
            return self._all.decrypt(stored[len(_PREFIX) :].encode()).decode()
        except InvalidToken as exc:
            raise StorageError("a stored secret does not decrypt with any key of the key file") from exc

    def current(self, stored: str) -> bool:
        """True when stored is encrypted with the first key (nothing to migrate or rotate)."""
        if not stored.startswith(_PREFIX):
            return False
        try:
            self._primary.decrypt(stored[len(_PREFIX) :].encode())
        except InvalidToken:
            return False
        return True

    def derive(self, purpose: bytes) -> bytes:
        """A 32-byte key for another purpose (e.g. signing cookies), derived from the first key."""
        material = base64.urlsafe_b64decode(self._primary_key)
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(material)


def load_key_ring(path: Path) -> KeyRing:
    """Read the key file, creating it (mode 0600, one fresh key) when it does not exist; blocking."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise StorageError(f"cannot create the key file {path}: {exc}") from exc
    else:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(new_key() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    try:
        lines = [line.strip() for line in path.read_text().splitlines()]
    except OSError as exc:
        raise StorageError(f"cannot read the key file {path}: {exc}") from exc
    try:
        return KeyRing([line.encode() for line in lines if line and not line.startswith("#")])
    except ValueError as exc:
        raise StorageError(f"the key file {path} holds something that is not a Fernet key") from exc
