"""Recognising dangerous file types by their content (magic bytes), not only by their name.

A small table of its own rather than libmagic: the types that matter here (PE, ELF,
Mach-O, LNK, ISO 9660 at offset 0x8001, VHD, OneNote, OLE2 and OOXML with macros,
HTML, scripts) are few, their signatures are stable, and libmagic names several of them
differently from version to version. OLE2 streams are read with olefile.
"""

from __future__ import annotations

import io
import zipfile
from enum import StrEnum

import olefile


class Kind(StrEnum):
    """What a file's content says it is."""

    EXECUTABLE = "executable"
    SCRIPT = "script"
    SHORTCUT = "shortcut"
    DISK_IMAGE = "disk_image"
    ONENOTE = "onenote"
    HTML = "html"
    OFFICE_MACRO = "office_macro"
    OFFICE = "office"
    ZIP = "zip"
    GZIP = "gzip"
    TAR = "tar"
    RAR = "rar"
    SEVEN_ZIP = "7z"
    PDF = "pdf"
    OTHER = "other"


# Extensions that run code when opened on Windows (or macOS/Linux desktops).
EXECUTABLE_EXTENSIONS = frozenset(
    [
        "exe",
        "scr",
        "com",
        "pif",
        "cpl",
        "msi",
        "msp",
        "msc",
        "dll",
        "sys",
        "jar",
        "app",
        "dmg",
        "apk",
        "elf",
        "bin",
        "run",
        "gadget",
        "appx",
        "appxbundle",
        "msix",
    ]
)
SCRIPT_EXTENSIONS = frozenset(
    [
        "js",
        "jse",
        "vbs",
        "vbe",
        "wsf",
        "wsh",
        "hta",
        "ps1",
        "psm1",
        "bat",
        "cmd",
        "sh",
        "reg",
        "inf",
        "scf",
        "url",
        "library-ms",
        "settingcontent-ms",
        "xll",
        "iqy",
        "slk",
    ]
)
SHORTCUT_EXTENSIONS = frozenset({"lnk"})
IMAGE_EXTENSIONS = frozenset(["iso", "img", "vhd", "vhdx", "udf"])
ONENOTE_EXTENSIONS = frozenset({"one", "onepkg"})
HTML_EXTENSIONS = frozenset({"htm", "html", "shtml", "xhtml", "svg", "mht", "mhtml"})
MACRO_EXTENSIONS = frozenset(["docm", "dotm", "xlsm", "xltm", "xlam", "pptm", "potm", "ppam", "ppsm", "sldm"])
ARCHIVE_EXTENSIONS = frozenset(["zip", "gz", "tgz", "tar", "rar", "7z", "cab", "arj", "ace", "lzh", "xz", "bz2", "z"])
DOCUMENT_EXTENSIONS = frozenset(
    ["pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "txt", "rtf", "jpg", "jpeg", "png", "gif", "csv", "odt", "ods"]
)

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_LNK_MAGIC = b"L\x00\x00\x00\x01\x14\x02\x00"
_ONENOTE_MAGIC = bytes.fromhex("e4525c7b8cd8a74daeb15378d02996d3")
_HTML_MARKERS = (b"<!doctype html", b"<html", b"<script", b"<head", b"<body", b"<svg", b"<iframe", b"<form")


def extension_of(filename: str) -> str:
    """The last extension, lower-cased, without the dot."""
    base = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1].strip().rstrip(".")
    return base.rsplit(".", 1)[1].lower() if "." in base else ""


def extensions_of(filename: str) -> list[str]:
    """Every extension of a name, e.g. ['pdf', 'exe'] for 'invoice.pdf.exe'."""
    base = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1].strip().rstrip(".")
    return [part.lower() for part in base.split(".")[1:] if part]


def _ole_has_macros(data: bytes) -> bool:
    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            for entry in ole.listdir(streams=True, storages=True):
                names = [part.lower() for part in entry]
                if "vba" in names or "_vba_project_cur" in names or "macros" in names:
                    return True
    except (OSError, ValueError, IndexError, TypeError):
        return False
    return False


def _zip_kind(data: bytes) -> Kind:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [name.lower() for name in archive.namelist()[:5000]]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return Kind.ZIP
    if any(name.endswith("vbaproject.bin") for name in names):
        return Kind.OFFICE_MACRO
    if "[content_types].xml" in names:
        return Kind.OFFICE
    return Kind.ZIP


def sniff(data: bytes) -> Kind:
    """The kind of a file from its first bytes (and, for containers, a look inside)."""
    head = data[:16]
    if head.startswith(b"MZ") or head.startswith(b"\x7fELF"):
        return Kind.EXECUTABLE
    if head[:4] in (
        b"\xfe\xed\xfa\xce",
        b"\xfe\xed\xfa\xcf",
        b"\xce\xfa\xed\xfe",
        b"\xcf\xfa\xed\xfe",
        b"\xca\xfe\xba\xbe",
    ):
        return Kind.EXECUTABLE
    if head.startswith(_LNK_MAGIC):
        return Kind.SHORTCUT
    if head.startswith(_ONENOTE_MAGIC):
        return Kind.ONENOTE
    if data[0x8001:0x8006] == b"CD001" or data[0x9001:0x9006] == b"CD001" or head.startswith(b"conectix"):
        return Kind.DISK_IMAGE
    if data[-512:-504] == b"conectix":
        return Kind.DISK_IMAGE
    if head.startswith(_OLE_MAGIC):
        return Kind.OFFICE_MACRO if _ole_has_macros(data) else Kind.OFFICE
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return _zip_kind(data)
    if head.startswith(b"\x1f\x8b"):
        return Kind.GZIP
    if head.startswith(b"Rar!\x1a\x07"):
        return Kind.RAR
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return Kind.SEVEN_ZIP
    if head.startswith(b"%PDF"):
        return Kind.PDF
    if data[257:262] == b"ustar":
        return Kind.TAR
    if head.startswith(b"#!"):
        return Kind.SCRIPT
    start = data[:1024].lstrip().lower()
    if start.startswith(b"\xef\xbb\xbf"):
        start = start[3:].lstrip()
    if any(start.startswith(marker) for marker in _HTML_MARKERS):
        return Kind.HTML
    return Kind.OTHER


def kind_by_name(filename: str) -> Kind:
    """The kind a file name claims."""
    extension = extension_of(filename)
    if extension in EXECUTABLE_EXTENSIONS:
        return Kind.EXECUTABLE
    if extension in SCRIPT_EXTENSIONS:
        return Kind.SCRIPT
    if extension in SHORTCUT_EXTENSIONS:
        return Kind.SHORTCUT
    if extension in IMAGE_EXTENSIONS:
        return Kind.DISK_IMAGE
    if extension in ONENOTE_EXTENSIONS:
        return Kind.ONENOTE
    if extension in HTML_EXTENSIONS:
        return Kind.HTML
    if extension in MACRO_EXTENSIONS:
        return Kind.OFFICE_MACRO
    if extension in {"zip"}:
        return Kind.ZIP
    if extension in {"gz", "tgz"}:
        return Kind.GZIP
    if extension == "tar":
        return Kind.TAR
    if extension == "rar":
        return Kind.RAR
    if extension == "7z":
        return Kind.SEVEN_ZIP
    return Kind.OTHER
