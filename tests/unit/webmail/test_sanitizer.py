"""The HTML sanitizer on its own: what survives, what never does, links and images."""

from __future__ import annotations

import pytest

from tests.e2e.hostile_vectors import VECTORS
from webmail.security.sanitizer import sanitize

_NEVER = ("<script", "onerror", "onload", "ontoggle", "javascript:", "<style", "<meta", "<base", "<iframe", "<svg",
          "<math", "<form", "<object", "<embed", "<link", "url(", "expression(", "attacker.test")  # fmt: skip


@pytest.mark.parametrize("vector", VECTORS, ids=lambda vector: vector.name)
def test_hostile_vectors_come_out_inert(vector: object) -> None:
    cleaned = sanitize(vector.html, allow_remote_images=False, cid_base="/inline/").html.lower()  # type: ignore[attr-defined]
    assert not [marker for marker in _NEVER if marker in cleaned], cleaned


def test_sanitizing_is_stable_when_repeated() -> None:
    for vector in VECTORS:
        once = sanitize(vector.html, allow_remote_images=False, cid_base="/inline/").html
        assert sanitize(once, allow_remote_images=False, cid_base="/inline/").html == once


def test_formatting_survives() -> None:
    html = '<table border="1"><tr><td style="color: red; font-weight: bold">cell</td></tr></table><p><b>x</b></p>'
    cleaned = sanitize(html, allow_remote_images=False, cid_base="/i/").html
    assert '<td style="color:red;font-weight:bold">cell</td>' in cleaned
    assert "<b>x</b>" in cleaned and 'border="1"' in cleaned


def test_links_show_their_real_target_and_open_safely() -> None:
    cleaned = sanitize(
        '<a href="https://evil.test/login">https://bank.test/login</a>', allow_remote_images=False, cid_base=""
    ).html
    assert 'href="https://evil.test/login"' in cleaned
    assert 'target="_blank"' in cleaned and "noopener" in cleaned and "noreferrer" in cleaned
    assert '<span class="real-link">[evil.test]</span>' in cleaned
    honest = sanitize('<a href="https://bank.test/">bank.test</a>', allow_remote_images=False, cid_base="").html
    assert "real-link" not in honest
    mail = sanitize('<a href="mailto:a@b.test">write</a>', allow_remote_images=False, cid_base="").html
    assert "[a@b.test]" in mail


def test_remote_images_are_blocked_until_asked_and_cid_images_are_local() -> None:
    html = '<img src="https://tracker.test/p.gif"><img src="cid:logo@x"><img src="data:image/png;base64,AAAA">'
    blocked = sanitize(html, allow_remote_images=False, cid_base="/mail/inline/1/t/")
    assert blocked.blocked_images == 1 and "tracker.test" not in blocked.html
    assert 'src="/mail/inline/1/t/logo%40x"' in blocked.html
    shown = sanitize(html, allow_remote_images=True, cid_base="/mail/inline/1/t/")
    assert 'src="https://tracker.test/p.gif"' in shown.html and shown.blocked_images == 0
