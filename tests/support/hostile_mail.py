"""Hostile messages of at least 1 MB, one per kind of attack on a mail parser, for the liveness tests.

Each is a complete message with CRLF line ends. ``VECTORS`` names them; the liveness
test sends them all, from several clients at once.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable

MB = 1024 * 1024
_HEAD = b"From: attacker@outside.test\r\nTo: alice@example.com\r\nMIME-Version: 1.0\r\n"


def _message(subject: str, rest: bytes) -> bytes:
    return _HEAD + f"Subject: {subject}\r\n".encode() + rest


def folded_parameters(size: int = MB) -> bytes:
    """An inner part whose Content-Type has a megabyte of folded parameters: slow in the email parser."""
    count = size // 7 + 1
    inner = b"Content-Type: text/plain" + b";\r\n p=v" * count + b"\r\n\r\nboundary boundary\r\n"
    return _message("parameters", b'Content-Type: multipart/mixed; boundary="q"\r\n\r\n--q\r\n' + inner + b"--q--\r\n")


def head_soup(size: int = MB) -> bytes:
    """An HTML-only body of unclosed <head tags (quadratic in the old tag stripper)."""
    lines = b"".join([b"<head" * 200 + b"\r\n"] * (size // 1000 + 1))
    return _message("head soup", b"Content-Type: text/html\r\n\r\n" + lines)


def tag_soup(size: int = MB) -> bytes:
    """An HTML body of half-open tags, unbalanced quotes and stray angle brackets."""
    piece = b'<a href="x <b <<div class=\'<span></p><script>x<style a="</head ><!-- <'
    lines = b"".join([piece * 12 + b"\r\n"] * (size // (len(piece) * 12) + 1))
    return _message("tag soup", b"Content-Type: text/html\r\n\r\n" + lines)


def deep_nesting(depth: int = 500, size: int = MB) -> bytes:
    """Multiparts nested depth deep around a megabyte of text."""
    nested = b"Content-Type: text/plain\r\n\r\n" + (b"x" * 76 + b"\r\n") * (size // 78)
    for level in range(depth):
        boundary = f"n{level}".encode()
        nested = (
            b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n--' + boundary + b"\r\n"
            + nested + b"\r\n--" + boundary + b"--\r\n"
        )  # fmt: skip
    return _message("deep", nested)


def many_parts(count: int = 10_000, size: int = MB) -> bytes:
    """A multipart of count small parts, a megabyte or more in all."""
    filler = b"y" * max(1, size // count)
    parts = b"".join(b"--p\r\nContent-Type: text/plain\r\n\r\n" + filler + b"\r\n" for _ in range(count))
    return _message("parts", b'Content-Type: multipart/mixed; boundary="p"\r\n\r\n' + parts + b"--p--\r\n")


def folded_header(lines: int = 100_000) -> bytes:
    """One header field folded over lines lines (over a megabyte)."""
    return _message("folded", b"X-Folded: start" + b"\r\n continued-xxxx" * lines + b"\r\n\r\nbody\r\n")


def single_line_base64(size: int = 10 * MB) -> bytes:
    """A 10 MB attachment as one base64 line, never wrapped."""
    data = base64.b64encode(os.urandom(size * 3 // 4))
    return _message(
        "one line",
        b'Content-Type: multipart/mixed; boundary="s"\r\n\r\n--s\r\nContent-Type: application/octet-stream\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + data + b"\r\n--s--\r\n",
    )


def large_attachment(size: int = 10 * MB) -> bytes:
    """A well-formed 10 MB attachment (base64 in 76-character lines): heavy, not malformed."""
    data = base64.encodebytes(os.urandom(size * 3 // 4)).replace(b"\n", b"\r\n")
    return _message(
        "large",
        b'Content-Type: multipart/mixed; boundary="s"\r\n\r\n--s\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n'
        b'--s\r\nContent-Type: application/pdf; name="big.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + data + b"--s--\r\n",
    )  # fmt: skip


VECTORS: dict[str, Callable[[], bytes]] = {
    "folded parameters": folded_parameters,
    "head soup": head_soup,
    "tag soup": tag_soup,
    "deep nesting": deep_nesting,
    "10,000 parts": many_parts,
    "100,000-line folded header": folded_header,
    "10 MB single-line base64": single_line_base64,
    "10 MB attachment": large_attachment,
}
