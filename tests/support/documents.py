"""Documents made for tests: PDFs written object by object, DOCX, XLSX and ODT built with zipfile.

The PDF writer is a few lines of its own (no PDF-writing library is a dependency): it
writes pages whose content streams show lines of text with the standard Helvetica font,
optionally Flate-compressed, with a correct cross-reference table.
"""

from __future__ import annotations

import io
import random
import zipfile
import zlib
from xml.sax.saxutils import escape


def _pdf_string(text: str) -> str:
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def make_pdf(
    pages: list[list[str]],
    compress: bool = False,
    page_extra: str = "",
    content_prefix: bytes = b"",
    image_bytes: int = 0,
) -> bytes:
    """A PDF with one page per list of lines; page_extra is added to each page dictionary, content_prefix to
    each content stream before it is compressed (hostile documents); image_bytes adds an image of that
    size to the first page's resources (as a scanned logo makes a real invoice larger)."""
    objects: list[bytes] = []
    count = len(pages)
    first_page = 4
    kids = " ".join(f"{first_page + 2 * i} 0 R" for i in range(count))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    for index, lines in enumerate(pages):
        content_number = first_page + 2 * index + 1
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >>"
            f" /Contents {content_number} 0 R {page_extra}>>".encode()
        )
        body = "BT /F1 11 Tf 14 TL 50 750 Td " + " ".join(f"{_pdf_string(line)} Tj T*" for line in lines) + " ET"
        raw = content_prefix + body.encode("latin-1")
        if compress:
            raw = zlib.compress(raw)
            objects.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(raw) + raw + b"\nendstream")
        else:
            objects.append(b"<< /Length %d >>\nstream\n" % len(raw) + raw + b"\nendstream")
    if image_bytes:
        pixels = random.Random(image_bytes).randbytes(image_bytes)
        objects.append(
            b"<< /Type /XObject /Subtype /Image /Width %d /Height 1 /ColorSpace /DeviceGray /BitsPerComponent 8"
            b" /Length %d >>\nstream\n" % (image_bytes, image_bytes) + pixels + b"\nendstream"
        )
        image_ref = f"/XObject << /Im1 {len(objects)} 0 R >> "
        objects[first_page - 1] = objects[first_page - 1].replace(
            b"/Resources << ", b"/Resources << " + image_ref.encode()
        )
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body_bytes in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body_bytes + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def _zip(members: dict[str, str | bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_S = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def make_docx(paragraphs: list[str]) -> bytes:
    """A DOCX whose document.xml holds these paragraphs."""
    body = "".join(f"<w:p><w:r><w:t>{escape(p)}</w:t></w:r></w:p>" for p in paragraphs)
    return _zip(
        {
            "[Content_Types].xml": "<Types/>",
            "word/document.xml": f'<?xml version="1.0"?><w:document xmlns:w="{_W}"><w:body>{body}</w:body>'
            "</w:document>",
        }
    )


def make_xlsx(shared: list[str], rows: list[list[str]]) -> bytes:
    """An XLSX with shared strings and one sheet of inline number or string cells."""
    strings = "".join(f"<si><t>{escape(s)}</t></si>" for s in shared)
    sheet_rows = "".join("<row>" + "".join(f"<c><v>{escape(cell)}</v></c>" for cell in row) + "</row>" for row in rows)
    return _zip(
        {
            "[Content_Types].xml": "<Types/>",
            "xl/sharedStrings.xml": f'<?xml version="1.0"?><sst xmlns="{_S}">{strings}</sst>',
            "xl/worksheets/sheet1.xml": f'<?xml version="1.0"?><worksheet xmlns="{_S}"><sheetData>{sheet_rows}'
            "</sheetData></worksheet>",
        }
    )


def make_odt(paragraphs: list[str]) -> bytes:
    """An ODT whose content.xml holds these paragraphs."""
    ns = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
    body = "".join(f"<text:p>{escape(p)}</text:p>" for p in paragraphs)
    return _zip(
        {
            "mimetype": "application/vnd.oasis.opendocument.text",
            "content.xml": f'<?xml version="1.0"?><office:document-content xmlns:office="urn:x" xmlns:text="{ns}">'
            f"<office:body><office:text>{body}</office:text></office:body></office:document-content>",
        }
    )


def zip_document(members: dict[str, str | bytes]) -> bytes:
    """A zip of arbitrary members (hostile documents)."""
    return _zip(members)
