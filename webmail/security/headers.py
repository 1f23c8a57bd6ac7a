"""HTTP security headers of the webmail: the Content-Security-Policy of pages and of message frames.

The webmail runs no JavaScript at all, so its pages forbid every script. A message body
is a separate document shown in an iframe with the ``sandbox`` attribute (no scripts,
no same-origin access, no forms, no top navigation) and served with its own policy
that allows nothing but inline styles and images from this site (or, when the user
asked, remote images).
"""

from __future__ import annotations

from urllib.parse import quote

PAGE_CSP = (
    "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'; object-src 'none'"
)


def frame_csp(allow_remote_images: bool) -> str:
    """The policy of a message body document."""
    images = "'self' data: https: http:" if allow_remote_images else "'self' data:"
    return (
        f"default-src 'none'; script-src 'none'; style-src 'unsafe-inline'; img-src {images}; "
        "form-action 'none'; base-uri 'none'; frame-ancestors 'self'; object-src 'none'; "
        "sandbox allow-popups allow-popups-to-escape-sandbox"
    )


COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}


def page_headers() -> dict[str, str]:
    """Headers of every webmail page."""
    return {**COMMON_HEADERS, "Content-Security-Policy": PAGE_CSP, "X-Frame-Options": "DENY"}


def frame_headers(allow_remote_images: bool) -> dict[str, str]:
    """Headers of a message body shown in the sandboxed frame."""
    return {
        **COMMON_HEADERS,
        "Content-Security-Policy": frame_csp(allow_remote_images),
        "X-Frame-Options": "SAMEORIGIN",
    }


def download_headers(filename: str) -> dict[str, str]:
    """Headers of an attachment download: always a download, never rendered."""
    ascii_name = "".join(char if (char.isascii() and char.isalnum()) or char in "._- " else "_" for char in filename)
    return {
        **COMMON_HEADERS,
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Content-Disposition": (
            f"attachment; filename=\"{ascii_name or 'attachment'}\"; filename*=UTF-8''{quote(filename)}"
        ),
    }
