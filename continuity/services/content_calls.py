"""The content work besides judging that runs in the worker processes: rendering, indexing, previews.

Each function takes a message's bytes first (the worker reads them from the store when
it is sent a digest) and returns plain data that pickles back to the serving process.
``CALLS`` names them; a worker runs only what is named here.
"""

from __future__ import annotations

from collections.abc import Callable

from continuity.core import mime_view
from continuity.core.message_view import MessageView as InspectedMessage
from continuity.core.message_view import parse_message
from webmail.security.sanitizer import SanitizedHtml, sanitize


def page(content: bytes) -> tuple[mime_view.MessageView, int]:
    """The message as the webmail shows it, and how many remote images its HTML would load."""
    shown = mime_view.view(content)
    blocked = sanitize(shown.html, allow_remote_images=False, cid_base="").blocked_images if shown.html else 0
    return shown, blocked


def frame(content: bytes, allow_remote_images: bool, cid_base: str) -> SanitizedHtml | None:
    """The sanitized HTML body for the sandboxed frame, or None when there is none."""
    shown = mime_view.view(content)
    if shown.html is None:
        return None
    return sanitize(shown.html, allow_remote_images=allow_remote_images, cid_base=cid_base)


def part(content: bytes, index: int) -> bytes | None:
    """The decoded bytes of the part at index of the walk, or None."""
    found = mime_view.part_bytes(content, index)
    return found[1] if found is not None else None


def summary(content: bytes) -> mime_view.MessageSummary:
    """The summary the webmail index keeps."""
    return mime_view.summarize(content)


def inspect(content: bytes) -> InspectedMessage:
    """The message as the filters see it (links, attachments), for a quarantine preview."""
    return parse_message(content)


CALLS: dict[str, Callable[..., object]] = {
    "page": page,
    "frame": frame,
    "part": part,
    "summary": summary,
    "view": mime_view.view,
    "inspect": inspect,
}
