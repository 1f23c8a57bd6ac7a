"""The text of document attachments (PDF, OOXML, ODF) for the fraud stages, read within bounds.

An invoice's bank details usually sit in its PDF or spreadsheet, not in the mail text.
This module turns an attachment into text parts, each named by where it came from
("invoice.pdf p.2", "terms.docx", "prices.xlsx sheet2"), so that a finding can say where
its evidence is. Everything an attacker controls is bounded: the bytes of an attachment
read, the pages, the characters kept, the uncompressed size and compression ratio of a
zip member (the archive-bomb limits of the attachments stage), the tokens of one PDF
content stream, and a time budget for all of a message's attachments checked between
pages. PDF streams are decoded by pypdf under its own output limits, lowered here to the
member limit. XML parts are parsed with defusedxml, which refuses entity
declarations (no entity expansion bombs, no external entities).

An attachment that cannot be read is reported as unreadable with the reason; it never
fails the stage. This runs in the filter worker processes, under the per-message deadline.
"""

from __future__ import annotations

import io
import logging
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pypdf
from defusedxml import ElementTree as SafeXml  # type: ignore[import-untyped]

from continuity.core.message_view import Attachment

# pypdf reports every oddity of a malformed PDF as a warning; hostile mail would flood the log.
logging.getLogger("pypdf").setLevel(logging.ERROR)


@dataclass(frozen=True, slots=True)
class TextLimits:
    """How much of an attachment is read (seconds: for all of one message's attachments)."""

    max_bytes: int = 10 * 1024 * 1024
    max_pages: int = 50
    max_chars: int = 200_000
    max_member_bytes: int = 20 * 1024 * 1024
    max_ratio: int = 200
    seconds: float = 2.0
    # Objects (operators, operands) of one PDF content stream (a page or a form it draws). pypdf's extraction
    # costs about 30 µs an object: a 7 KB PDF whose page holds 600,000 "(ab) Tj" took 60 s.
    max_page_objects: int = 30_000


@dataclass(frozen=True, slots=True)
class TextPart:
    """Text from one place of a document: a PDF page, a sheet, a whole word-processing document."""

    location: str
    text: str


@dataclass(frozen=True, slots=True)
class DocumentText:
    """What was read from one attachment: its text parts, or why it could not be read."""

    filename: str
    parts: tuple[TextPart, ...] = ()
    unreadable: str = ""
    truncated: bool = False

    @property
    def text(self) -> str:
        """All parts' text, one after the other."""
        return "\n".join(part.text for part in self.parts)


class _UnreadableError(Exception):
    """The document breaks a bound or its format; the message says which."""


class _Collector:
    """Text parts kept within the character and time budget."""

    def __init__(self, limits: TextLimits, deadline: float) -> None:
        self.limits = limits
        self.parts: list[TextPart] = []
        self.chars = 0
        self.truncated = False
        self._deadline = deadline

    @property
    def full(self) -> bool:
        return self.chars >= self.limits.max_chars

    def check_time(self) -> None:
        if time.monotonic() > self._deadline:
            raise _UnreadableError(f"the message's {self.limits.seconds:g} s for reading attachments ran out")

    def add(self, location: str, text: str) -> None:
        room = self.limits.max_chars - self.chars
        if len(text) > room:
            text, self.truncated = text[:room], True
        if text.strip():
            self.parts.append(TextPart(location, text))
        self.chars += len(text)


def _display_name(attachment: Attachment) -> str:
    return attachment.filename or attachment.content_type or "attachment"


def document_kind(attachment: Attachment) -> str | None:
    """ "pdf" or "zip" (a possible OOXML or ODF document) by content, else None."""
    head = attachment.data[:1024]
    if b"%PDF-" in head:
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        name = attachment.filename.lower()
        if (
            name.endswith((".docx", ".docm", ".xlsx", ".xlsm", ".odt", ".ods"))
            or "officedocument" in (attachment.content_type.lower())
            or "opendocument" in attachment.content_type.lower()
        ):
            return "zip"
    return None


def extract_text(attachment: Attachment, limits: TextLimits, deadline: float | None = None) -> DocumentText | None:
    """The text of a document attachment, None when it is not a document kind read here.

    deadline (time.monotonic()) is when reading must stop; by default limits.seconds from now.
    """
    kind = document_kind(attachment)
    if kind is None:
        return None
    name = _display_name(attachment)
    if len(attachment.data) > limits.max_bytes:
        return DocumentText(name, unreadable=f"larger than {limits.max_bytes} bytes")
    collector = _Collector(limits, time.monotonic() + limits.seconds if deadline is None else deadline)
    try:
        if kind == "pdf":
            _read_pdf(name, attachment.data, collector)
        else:
            _read_zipped(name, attachment.data, collector)
    except _UnreadableError as exc:
        return DocumentText(name, tuple(collector.parts), unreadable=str(exc), truncated=True)
    except pypdf.errors.LimitReachedError as exc:
        reason = f"a page breaks a bound of the PDF reader ({exc})"[:200]
        return DocumentText(name, tuple(collector.parts), unreadable=reason, truncated=True)
    except (RecursionError, MemoryError) as exc:
        return DocumentText(name, tuple(collector.parts), unreadable=f"too deeply nested or too large ({exc!r})"[:200])
    except Exception as exc:  # a malformed document: pypdf, zipfile and expat raise many kinds
        return DocumentText(name, tuple(collector.parts), unreadable=f"malformed: {exc!r}"[:200])
    return DocumentText(name, tuple(collector.parts), truncated=collector.truncated)


def _read_pdf(name: str, data: bytes, collector: _Collector) -> None:
    limit = collector.limits.max_member_bytes
    with pypdf.apply_configuration(
        zlib_maximum_output_length=limit,
        lzw_maximum_output_length=limit,
        run_length_maximum_output_length=limit,
        array_based_stream_maximum_output_length=limit,
        maximum_declared_stream_length=limit,
        stream_decoding_work_maximum_length=limit * 4,
        stream_parsing_work_maximum_count=collector.limits.max_page_objects,
        xform_maximum_invocations_per_extraction=_MAX_FORMS,
        jbig2dec_binary=None,
    ):
        reader = pypdf.PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise _UnreadableError("encrypted")
        for number, page in enumerate(_first_pages(reader, collector), start=1):
            collector.add(f"{name} p.{number}", page.extract_text() or "")


_INHERITED = ("/Resources", "/MediaBox", "/CropBox", "/Rotate")
# Form XObjects drawn per page (each parsed within max_page_objects); an invoice has a few.
_MAX_FORMS = 20
_MAX_TREE_DEPTH = 32


def _first_pages(reader: pypdf.PdfReader, collector: _Collector) -> Iterator[pypdf.PageObject]:
    """The document's first pages, walking the page tree only as far as needed.

    pypdf's own page list reads the whole tree first (2 s for 5,000 pages), so a document
    of thousands of pages would spend its budget before its first page; this walk stops
    after max_pages, refuses a tree deeper than _MAX_TREE_DEPTH and visits a node once.
    """
    root: Any = reader.trailer["/Root"].get_object()
    stack: list[tuple[Any, dict[str, Any], int]] = [(root["/Pages"], {}, 0)]
    seen: set[int] = set()
    count = 0
    while stack:
        collector.check_time()
        reference, inherited, depth = stack.pop()
        node = reference.get_object()
        if id(node) in seen or depth > _MAX_TREE_DEPTH or not isinstance(node, pypdf.generic.DictionaryObject):
            continue
        seen.add(id(node))
        if node.get("/Type") == "/Pages" or "/Kids" in node:
            passed = dict(inherited)
            passed.update({key: node[key] for key in _INHERITED if key in node})
            kids = node.get("/Kids")
            kids = kids.get_object() if kids is not None else []
            stack.extend((kid, passed, depth + 1) for kid in reversed(list(kids)[: collector.limits.max_pages * 4]))
            continue
        if count >= collector.limits.max_pages or collector.full:
            collector.truncated = True
            return
        count += 1
        page = pypdf.PageObject(reader, getattr(reference, "indirect_reference", None))
        page.update({pypdf.generic.NameObject(k): v for k, v in inherited.items()})
        page.update(node)
        yield page


def _sheet_number(path: str) -> str:
    """The number of a worksheet part ("xl/worksheets/sheet3.xml" -> "3"), or ""."""
    prefix, suffix = "xl/worksheets/sheet", ".xml"
    if path.startswith(prefix) and path.endswith(suffix):
        number = path[len(prefix) : -len(suffix)]
        return number if number.isdigit() and number.isascii() else ""
    return ""


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: TextLimits) -> bytes:
    """A member's bytes, refused past the size and ratio bounds (declared sizes are not trusted)."""
    if info.file_size > limits.max_member_bytes:
        raise _UnreadableError(f"{info.filename} unpacks to more than {limits.max_member_bytes} bytes")
    if info.file_size > 1024 * 1024 and info.file_size > limits.max_ratio * max(info.compress_size, 1):
        raise _UnreadableError(f"{info.filename} is compressed more than {limits.max_ratio}:1")
    with archive.open(info) as stream:
        data = stream.read(limits.max_member_bytes + 1)
    if len(data) > limits.max_member_bytes:
        raise _UnreadableError(f"{info.filename} unpacks to more than {limits.max_member_bytes} bytes")
    return data


def _read_zipped(name: str, data: bytes, collector: _Collector) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {info.filename: info for info in archive.infolist()}
        wanted: list[tuple[str, str, str]] = []  # (member, location, format)
        if "word/document.xml" in members:
            wanted.append(("word/document.xml", name, "ooxml"))
        if "xl/sharedStrings.xml" in members:
            wanted.append(("xl/sharedStrings.xml", name, "ooxml"))
        sheets = sorted((int(number), path) for path in members if (number := _sheet_number(path)))
        wanted.extend((path, f"{name} sheet{number}", "sheet") for number, path in sheets)
        if "content.xml" in members:
            wanted.append(("content.xml", name, "odf"))
        if not wanted:
            raise _UnreadableError("no document text part (not OOXML or ODF)")
        for count, (path, location, form) in enumerate(wanted, start=1):
            collector.check_time()
            if collector.full or count > collector.limits.max_pages:
                collector.truncated = True
                break
            root = SafeXml.fromstring(_member(archive, members[path], collector.limits))
            collector.add(location, "\n".join(_xml_lines(root, form)))


def _local(tag: object) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _xml_lines(root: object, form: str) -> Iterator[str]:
    """Lines of text of an XML part: paragraphs (Word, ODF), strings, or a sheet's rows."""
    iterate = root.iter  # type: ignore[attr-defined]
    if form == "odf":
        for element in iterate():
            if _local(element.tag) in ("p", "h"):
                yield "".join(element.itertext())
    elif form == "sheet":
        for row in iterate():
            if _local(row.tag) != "row":
                continue
            cells = []
            for cell in row:
                if _local(cell.tag) == "c" and cell.get("t") != "s":  # shared strings are read on their own
                    cells.append("".join(cell.itertext()))
            yield " ".join(cell for cell in cells if cell)
    else:
        for element in iterate():
            if _local(element.tag) in ("p", "si"):
                yield "".join(t.text or "" for t in element.iter() if _local(t.tag) == "t")


def document_texts(
    attachments: tuple[Attachment, ...], limits: TextLimits, max_documents: int = 10
) -> list[DocumentText]:
    """The texts of a message's document attachments (at most max_documents of them), within limits.seconds."""
    deadline = time.monotonic() + limits.seconds
    texts: list[DocumentText] = []
    for attachment in attachments:
        text = extract_text(attachment, limits, deadline)
        if text is not None:
            texts.append(text)
            if len(texts) >= max_documents:
                break
    return texts
