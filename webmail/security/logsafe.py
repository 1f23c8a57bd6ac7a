"""What the log may say about text a stranger typed into the address field of the sign-in form.

The text is logged only when it is an address (then with every character outside
printable ASCII escaped and cut to 100 characters, so CR, LF or control characters
cannot forge log lines); anything else (often a password typed into the wrong field) is
logged as a short keyed hash, enough to see the same text come back within one run of
the process, useless to guess the text from: the key is random per process.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from continuity.core.addresses import normalize_address

_KEY = os.urandom(32)
_LIMIT = 100


def escaped(text: str, limit: int = _LIMIT) -> str:
    """text with everything outside printable ASCII as a backslash escape, cut to limit characters."""
    out = text[:limit].encode("ascii", "backslashreplace").decode("ascii")
    out = "".join(char if 32 <= ord(char) < 127 else f"\\x{ord(char):02x}" for char in out)
    return out + ("..." if len(text) > limit else "")


def typed_address(text: str) -> str:
    """A safe form of a typed address for the log: <address>, or "text#<hash>" when it is no address."""
    try:
        normalize_address(text)
    except ValueError:
        pass
    else:
        if len(text) <= 320 and all(32 < ord(char) < 127 for char in text.strip()):
            return f"<{escaped(text.strip())}>"
    digest = hmac.new(_KEY, text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:10]
    return f"non-address#{digest}"
