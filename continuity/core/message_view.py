"""One parse of a message for every filter stage: addresses, thread headers, text, links, attachments.

Parsing is the costly part of filtering, so the pipeline parses once (in a worker
thread) and hands the same read-only view to every stage. The stdlib parser with the
compat32 policy is used because it is several times faster than the default policy and
never raises on malformed input; header fields are decoded (RFC 2047) only where a
stage needs them.
"""

from __future__ import annotations

import email.errors
import email.header
import email.parser
import email.policy
import email.utils
import html.parser
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from enum import StrEnum
from html.parser import HTMLParser

from continuity.core.text_search import occurrences

_PARSER = email.parser.BytesParser(policy=email.policy.compat32)
# A Content-Type field of a multipart or message/* type (in a lower-cased header block
# preceded by a line end); the parsed type is still checked, this only saves a parse.
_CONTAINER_TYPE = re.compile(rb"\ncontent-type:[ \t\r\n]*(?:multipart|message)/")
_URL_IN_TEXT = re.compile(r"""(?i)\b(?:https?://|www\.)[^\s<>"'`{}|\\^\[\]]+""")
_TRAILING_PUNCTUATION = ".,;:!?)>'\""
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
# What makes html.parser rescan the rest of the markup (see _completable_markup).
_MARKUP_OPENING = re.compile(r"<(!--|!\[)?")
_COMMENT_CLOSE = re.compile(r"--\s*>")  # html.parser's own end of comment
# html.parser's scan of a start tag (Python 3.11); absent from releases whose parser no longer rescans.
_START_TAG_SCAN: re.Pattern[str] | None = vars(html.parser).get("locatestarttagend_tolerant")
# Text scanned per message: enough for any real letter, bounded for hostile ones.
MAX_TEXT = 512 * 1024


class LinkSource(StrEnum):
    """Where a link was found."""

    TEXT = "text"  # a URL written in plain text
    HREF = "href"  # an HTML anchor
    FORM = "form"  # an HTML form's action
    IMAGE = "image"  # an HTML image source


@dataclass(frozen=True, slots=True)
class Address:
    """A mailbox from a header field: display name (decoded) and address."""

    display: str
    address: str

    @property
    def domain(self) -> str:
        """The lower-cased domain part ('' when there is none)."""
        return self.address.rpartition("@")[2].lower() if "@" in self.address else ""


@dataclass(frozen=True, slots=True)
class Link:
    """A link target and the text shown for it ('' for links written as text)."""

    url: str
    text: str
    source: LinkSource


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file carried by the message (attached or inline), decoded."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class MessageView:
    """Everything the stages read from a message; built by :func:`parse_message`."""

    raw: bytes
    fields: tuple[tuple[str, str], ...]
    from_: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    subject: str
    message_id: str
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    mailer: str
    text: str
    links: tuple[Link, ...]
    attachments: tuple[Attachment, ...]

    def header(self, name: str) -> str | None:
        """The first field with this name (raw, unfolded), or None."""
        wanted = name.lower()
        return next((value for key, value in self.fields if key.lower() == wanted), None)

    def headers(self, name: str) -> list[str]:
        """Every field with this name, in order."""
        wanted = name.lower()
        return [value for key, value in self.fields if key.lower() == wanted]

    @property
    def sender(self) -> Address | None:
        """The first From address."""
        return self.from_[0] if self.from_ else None

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Message-IDs this message replies to (In-Reply-To first, then References)."""
        return tuple(dict.fromkeys((*self.in_reply_to, *self.references)))

    @property
    def is_reply(self) -> bool:
        """True when the message names earlier messages it answers."""
        return bool(self.in_reply_to or self.references)

    @property
    def participants(self) -> frozenset[str]:
        """Every address in From, Reply-To, To and Cc, lower-cased."""
        return frozenset(
            address.address.lower() for address in (*self.from_, *self.reply_to, *self.to, *self.cc) if address.address
        )


def decode_header_value(value: str) -> str:
    """RFC 2047 decoding, tolerant of broken encodings; whitespace collapsed."""
    if "=?" not in value:
        return " ".join(value.split())
    try:
        decoded = str(email.header.make_header(email.header.decode_header(value)))
    except (ValueError, LookupError, UnicodeError, email.errors.HeaderParseError):
        decoded = value
    return " ".join(decoded.split())


def _addresses(values: list[str]) -> tuple[Address, ...]:
    found = []
    try:
        pairs = email.utils.getaddresses(values)
    except RecursionError:  # the stdlib reads nested comments recursively: "From: ((((..." a thousand deep
        return ()
    for display, address in pairs:
        if address or display:
            found.append(Address(decode_header_value(display), address.strip()))
    return tuple(found)


def _message_ids(value: object) -> tuple[str, ...]:
    # compat32 gives an email.header.Header, not a str, for a field with 8-bit bytes.
    return tuple(_MESSAGE_ID.findall(str(value) if value is not None else ""))


def _charset_text(part: Message, payload: bytes) -> str:
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


class _HtmlScanner(HTMLParser):
    """Collects anchors (href and shown text), form actions, image sources and visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[Link] = []
        self.text: list[str] = []
        self._anchor: tuple[str, list[str]] | None = None
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key.lower(): value or "" for key, value in attrs}
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "a" and values.get("href"):
            self._close_anchor()
            self._anchor = (values["href"].strip(), [])
        elif tag == "form" and values.get("action"):
            self.links.append(Link(values["action"].strip(), "", LinkSource.FORM))
        elif tag == "img" and values.get("src"):
            self.links.append(Link(values["src"].strip(), values.get("alt", ""), LinkSource.IMAGE))
        elif tag in ("br", "p", "div", "tr", "li"):
            self.text.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag == "a":
            self._close_anchor()

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.text.append(data)
        if self._anchor is not None:
            self._anchor[1].append(data)

    def _close_anchor(self) -> None:
        if self._anchor is not None:
            href, parts = self._anchor
            self.links.append(Link(href, " ".join("".join(parts).split()), LinkSource.HREF))
            self._anchor = None

    def close(self) -> None:
        super().close()
        self._close_anchor()

    def check_for_whole_start_tag(self, i: int) -> int:
        """Where the start tag at i ends; one never finished ends where the parser's scan of it stopped.

        html.parser answers -1 for a tag it saw no end of, then takes the text only up to
        the next ">" and scans the same attributes again from the next "<" (quadratic on
        "<a x='>'=" repeated: quoted ">" are inside the tag). The whole text is fed at
        once, so no end is coming: the unfinished tag becomes text, scanned once.
        """
        end = int(super().check_for_whole_start_tag(i))
        if end >= 0 or _START_TAG_SCAN is None:
            return end
        scanned = _START_TAG_SCAN.match(self.rawdata, i)
        return max(scanned.end() if scanned is not None else 0, i + 2)


def links_in_text(text: str) -> list[Link]:
    """URLs written in plain text."""
    return [Link(match.group(0).rstrip(_TRAILING_PUNCTUATION), "", LinkSource.TEXT) for match in _url_matches(text)]


def _url_matches(text: str) -> Iterator[re.Match[str]]:
    """What _URL_IN_TEXT.finditer(text) yields, found faster.

    A case-insensitive scan tries the expression at every character (a 10 KB message:
    0.2 ms); a URL starts with "http" or "www.", so only where the lower-cased text has
    those (found with str.find, at memory speed) is the expression tried.
    """
    lowered = text.lower()
    if len(lowered) != len(text):  # a character whose lower case is longer: positions would not line up
        yield from _URL_IN_TEXT.finditer(text)
        return
    starts = sorted(occurrences(lowered, "http") + occurrences(lowered, "www."))
    consumed = 0
    for start in starts:
        if start < consumed:
            continue
        match = _URL_IN_TEXT.match(text, start)
        if match is not None:
            consumed = match.end()
            yield match


def _completable_markup(html: str) -> str:
    """html with every construct html.parser would rescan to the end of the text made harmless.

    Python 3.11's html.parser, at a "<" that opens something never finished (a tag with no
    ">" after it, a comment with no "-->" after it, a "<![" section with no end), searches
    the whole rest of the text, then moves one construct on and searches again: thousands
    of "<a href=" took seconds, quadratic (later CPython releases changed the parser for
    this). Those "<" can only ever become text, so here they are written as "&lt;" (which
    the parser turns back into "<", in text and in attribute values alike). A "<![" is made
    a bogus comment ("<! [", ended by the next ">", which is what browsers make of it in
    HTML), so a section without its end neither rescans nor stops the parser
    (html.parser raises on an unknown section keyword, which hid every link after it).
    """
    last_tag_end = html.rfind(">")
    last_comment_end = -1
    for close in _COMMENT_CLOSE.finditer(html):
        last_comment_end = close.start()

    def made_harmless(opening: re.Match[str]) -> str:
        at, kind = opening.start(), opening.group(1)
        if at > last_tag_end or (kind == "!--" and at + 4 > last_comment_end):
            return "&lt;" + (kind or "")
        return "<! [" if kind == "![" else opening.group(0)

    return _MARKUP_OPENING.sub(made_harmless, html)


def scan_html(html: str) -> tuple[list[Link], str]:
    """Links and visible text of an HTML body (in time linear in its length)."""
    scanner = _HtmlScanner()
    try:
        scanner.feed(_completable_markup(html))
        scanner.close()
    except (AssertionError, ValueError):
        pass  # malformed markup: keep what was read so far
    return scanner.links, "".join(scanner.text)


def _is_attachment(part: Message) -> bool:
    if part.get_filename():
        return True
    disposition = str(part.get("Content-Disposition") or "").split(";", 1)[0].strip().lower()  # a Header when 8-bit
    if disposition == "attachment":
        return True
    maintype = part.get_content_maintype()
    return maintype not in ("text", "multipart", "message")


def parse_email(raw: bytes) -> Message:
    """raw parsed as the standard library's compat32 parser does, in a fraction of the time for single-part mail.

    The parser reads a body line by line in Python (about 2 microseconds a line, most of
    the cost of a plain-text message), yet for a part that is neither multipart nor
    message/* it only joins those lines into the payload. So when the header block is
    well formed (CRLF lines, nothing the parser reports as a defect) and the message is of
    such a type, only the header block is parsed and the rest becomes the payload as the
    parser would have made it. Anything else is parsed whole, and a header block that
    declares a multipart or message/* type is not parsed on its own first.
    """
    end = raw.find(b"\r\n\r\n")
    if end != -1:
        head = raw[: end + 4]
        crlf = head.count(b"\r\n")
        if head.count(b"\r") == crlf and head.count(b"\n") == crlf and not _CONTAINER_TYPE.search(b"\n" + head.lower()):
            message = _PARSER.parsebytes(head)
            if not message.defects and message.get_content_maintype() not in ("multipart", "message"):
                message.set_payload(raw[end + 4 :].decode("ascii", "surrogateescape"))
                return message
    return _PARSER.parsebytes(raw)


def parse_message(raw: bytes, max_text: int = MAX_TEXT) -> MessageView:
    """Parse raw (CRLF line endings as received) into a view for the stages."""
    message = parse_email(raw)
    fields = tuple((str(key), " ".join(str(value).split())) for key, value in message.items())
    texts: list[str] = []
    links: list[Link] = []
    attachments: list[Attachment] = []
    budget = max_text
    for part in message.walk():
        if part.is_multipart():
            continue
        if _is_attachment(part):
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            filename = decode_header_value(part.get_filename() or "")
            attachments.append(Attachment(filename, part.get_content_type(), data))
            continue
        if budget <= 0 or part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        text = _charset_text(part, payload[:budget])
        budget -= len(payload)
        if part.get_content_subtype() == "html":
            html_links, visible = scan_html(text)
            links.extend(html_links)
            links.extend(links_in_text(visible))
            texts.append(visible)
        else:
            links.extend(links_in_text(text))
            texts.append(text)
    mailer = message.get("X-Mailer") or message.get("User-Agent") or ""
    return MessageView(
        raw=raw,
        fields=fields,
        from_=_addresses([str(value) for value in message.get_all("From", [])]),
        reply_to=_addresses([str(value) for value in message.get_all("Reply-To", [])]),
        to=_addresses([str(value) for value in message.get_all("To", [])]),
        cc=_addresses([str(value) for value in message.get_all("Cc", [])]),
        subject=decode_header_value(str(message.get("Subject") or "")),
        message_id=next(iter(_message_ids(message.get("Message-ID"))), ""),
        in_reply_to=_message_ids(message.get("In-Reply-To")),
        references=_message_ids(message.get("References")),
        mailer=decode_header_value(str(mailer))[:200],
        text="\n".join(texts),
        links=tuple(links),
        attachments=tuple(attachments),
    )
