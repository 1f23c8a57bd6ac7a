"""Sanitizing HTML mail with nh3 (an allow-list sanitizer on html5ever, the browser-grade parser).

What survives: text formatting, tables, lists, links with http(s)/mailto targets and
images. What never does: scripts, event handlers, forms, frames, objects, SVG and
MathML (namespace-confusion mXSS), <style>, <link>, <meta>, <base>, style properties
able to load anything, and every URL scheme but http, https, mailto and cid.

Remote images are dropped unless the user asked for them (their URLs are counted so
the page can offer to load them); cid: images point at the message's own parts. Each
link is followed by its real host in brackets when its text does not already show
it, and opens in a new tab without a referrer. The output is sanitized twice: the link
annotation runs on nh3's output and nh3 cleans the annotated result again, so
nothing added here can bypass the allow-list. The result is shown in a sandboxed
iframe under a Content-Security-Policy (webmail.security.headers) as a second wall.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import quote, urlsplit

import nh3

_TAGS = {
    "a", "abbr", "address", "b", "bdi", "bdo", "blockquote", "br", "caption", "center", "cite", "code", "col",
    "colgroup", "dd", "del", "details", "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "font", "h1", "h2",
    "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp",
    "small", "span", "strike", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead",
    "time", "tr", "tt", "u", "ul", "var", "wbr",
}  # fmt: skip
_ATTRIBUTES = {
    "*": {"align", "dir", "lang", "title", "style", "valign"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "width", "height", "bgcolor"},
    "th": {"colspan", "rowspan", "width", "height", "bgcolor"},
    "table": {"width", "border", "cellpadding", "cellspacing", "bgcolor"},
    "font": {"color", "face", "size"},
    "col": {"span", "width"},
    "ol": {"start", "type"},
}
# CSS properties kept in style attributes: none of them can take a url() or change layout
# outside the message (no position, no background-image, no content, no behavior).
_STYLE_PROPERTIES = {
    "color", "background-color", "font", "font-family", "font-size", "font-style", "font-weight", "font-variant",
    "text-align", "text-decoration", "text-indent", "text-transform", "letter-spacing", "word-spacing",
    "line-height", "white-space", "vertical-align", "direction", "margin", "margin-top", "margin-right",
    "margin-bottom", "margin-left", "padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
    "border", "border-top", "border-right", "border-bottom", "border-left", "border-color", "border-style",
    "border-width", "border-collapse", "border-spacing", "border-radius", "width", "height", "max-width",
    "min-width", "max-height", "min-height", "table-layout",
}  # fmt: skip
_REMOVED_WITH_CONTENT = {"script", "style", "title", "noscript", "template", "iframe", "object", "embed", "svg", "math"}
_SCHEMES = {"http", "https", "mailto", "cid"}
# Style values dropped whole: CSS that loads, scripts (old IE) or hides such tricks behind escapes.
_STYLE_DANGER = ("url(", "expression", "javascript:", "@import", "\\", "behavior", "-moz-binding", "image-set(")


@dataclass(frozen=True, slots=True)
class SanitizedHtml:
    """Safe HTML and how many remote images were left out."""

    html: str
    blocked_images: int


def _clean(markup: str, attribute_filter: Callable[[str, str, str], str | None] | None = None) -> str:
    return nh3.clean(
        markup,
        tags=_TAGS,
        clean_content_tags=_REMOVED_WITH_CONTENT,
        attributes=_ATTRIBUTES,
        attribute_filter=attribute_filter,
        strip_comments=True,
        link_rel="noopener noreferrer nofollow",
        url_schemes=_SCHEMES,
        filter_style_properties=_STYLE_PROPERTIES,
        set_tag_attribute_values={"a": {"target": "_blank"}},
        allowed_classes={"span": {"real-link"}},
    )


class _LinkAnnotator(HTMLParser):
    """Re-emits nh3's output with each link's real host after it when the text hides it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._links: list[tuple[str, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.out.append(self.get_starttag_text() or "")
        if tag == "a":
            self._links.append((dict(attrs).get("href") or "", []))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.out.append(self.get_starttag_text() or "")

    def handle_endtag(self, tag: str) -> None:
        self.out.append(f"</{tag}>")
        if tag == "a" and self._links:
            href, text = self._links.pop()
            target = _shown_target(href)
            if target and target.lower() not in "".join(text).lower():
                self.out.append(f' <span class="real-link">[{html.escape(target)}]</span>')

    def handle_data(self, data: str) -> None:
        self.out.append(html.escape(data, quote=False))
        for _href, text in self._links:
            text.append(data)


def _shown_target(href: str) -> str:
    if href.startswith("mailto:"):
        return href[len("mailto:") :]
    parts = urlsplit(href)
    return parts.hostname or ""


def sanitize(markup: str, *, allow_remote_images: bool, cid_base: str) -> SanitizedHtml:
    """Sanitize an HTML body; cid_base is the URL prefix the message's inline parts are served under."""
    blocked = 0

    def attribute_filter(tag: str, attribute: str, value: str) -> str | None:
        nonlocal blocked
        if tag == "img" and attribute == "src":
            scheme = urlsplit(value).scheme.lower()
            if scheme == "cid":
                return cid_base + quote(value[4:], safe="")
            if scheme in ("http", "https") and allow_remote_images:
                return value
            blocked += scheme in ("http", "https")
            return None
        if attribute == "style" and any(danger in value.lower() for danger in _STYLE_DANGER):
            return None
        if tag == "a" and attribute == "href" and urlsplit(value).scheme.lower() not in ("http", "https", "mailto"):
            return None
        return value

    first = _clean(markup, attribute_filter)
    annotator = _LinkAnnotator()
    annotator.feed(first)
    annotator.close()
    return SanitizedHtml(_clean("".join(annotator.out)), blocked)
