"""Attachment stage: dangerous files by content and name, double extensions, archives and archive bombs.

Each attachment is identified by its bytes (continuity.filters.filetypes) as well as its
name, so a renamed executable is still an executable. ZIP, gzip and tar archives are
opened, recursively up to a nesting limit, with bounded decompression: reading stops
at a byte budget, a compression ratio or an entry count, and the archive then counts as
a bomb. Encrypted archives (which scanners cannot open) and archive formats the stage
cannot read (RAR, 7z) are reported as such.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import IO

from continuity.core.message_view import MessageView
from continuity.core.pipeline import Envelope, Finding, StageReport
from continuity.filters.filetypes import (
    ARCHIVE_EXTENSIONS,
    DOCUMENT_EXTENSIONS,
    EXECUTABLE_EXTENSIONS,
    SCRIPT_EXTENSIONS,
    SHORTCUT_EXTENSIONS,
    Kind,
    extensions_of,
    kind_by_name,
    sniff,
)

_CHUNK = 64 * 1024

# (finding code, score, sentence) per dangerous kind.
_DANGER: dict[Kind, tuple[str, float, str]] = {
    Kind.EXECUTABLE: ("attachments.executable", 10.0, "carries a program (executable) file"),
    Kind.SCRIPT: ("attachments.executable", 10.0, "carries a script file"),
    Kind.SHORTCUT: ("attachments.executable", 10.0, "carries a Windows shortcut (LNK) file"),
    Kind.DISK_IMAGE: ("attachments.disk_image", 8.0, "carries a disk image (ISO/IMG/VHD)"),
    Kind.ONENOTE: ("attachments.onenote", 8.0, "carries a OneNote file"),
    Kind.OFFICE_MACRO: ("attachments.macro", 8.0, "carries an Office document with macros"),
    Kind.HTML: ("attachments.html", 5.0, "carries an HTML file (a common credential-phishing trick)"),
}


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """Bounds on opening archives."""

    max_bytes: int = 100 * 1024 * 1024
    max_ratio: int = 200
    max_entries: int = 5000
    max_nesting: int = 4


class _BombError(Exception):
    """The archive exceeds a decompression bound."""


@dataclass
class _Budget:
    limits: ArchiveLimits
    used: int = 0
    entries: int = 0

    def take(self, count: int) -> None:
        self.used += count
        if self.used > self.limits.max_bytes:
            raise _BombError(f"decompresses to more than {self.limits.max_bytes} bytes")

    def entry(self) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise _BombError(f"holds more than {self.limits.max_entries} entries")


@dataclass(frozen=True, slots=True)
class _Member:
    """A file found in an attachment: its path (archive/inner/name) and content (head or whole)."""

    path: str
    data: bytes
    depth: int


def _read_bounded(stream: IO[bytes] | gzip.GzipFile, budget: _Budget, compressed: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            break
        total += len(chunk)
        budget.take(len(chunk))
        if compressed > 0 and total > 1024 * 1024 and total / compressed > budget.limits.max_ratio:
            raise _BombError(f"compression ratio above {budget.limits.max_ratio}")
        parts.append(chunk)
    return b"".join(parts)


class _Scan:
    """Findings collected while walking one message's attachments."""

    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.findings: dict[str, Finding] = {}

    def add(self, code: str, score: float, message: str, evidence: str) -> None:
        existing = self.findings.get(code)
        if existing is None:
            self.findings[code] = Finding(code, score, message, (evidence,))
        elif evidence not in existing.evidence and len(existing.evidence) < 10:
            self.findings[code] = Finding(code, score, message, (*existing.evidence, evidence))

    def inspect_file(self, path: str, data: bytes, depth: int, budget: _Budget) -> None:
        name = path.rsplit("/", 1)[-1]
        content_kind = sniff(data)
        name_kind = kind_by_name(name)
        for kind in dict.fromkeys((content_kind, name_kind)):
            danger = _DANGER.get(kind)
            if danger is not None:
                self.add(*danger, path)
        extensions = extensions_of(name)
        if (
            len(extensions) >= 2
            and extensions[-2] in DOCUMENT_EXTENSIONS | ARCHIVE_EXTENSIONS
            and extensions[-1] in EXECUTABLE_EXTENSIONS | SCRIPT_EXTENSIONS | SHORTCUT_EXTENSIONS
        ):
            self.add("attachments.double_extension", 6.0, "hides a program behind a document name", path)
        if name_kind not in (Kind.OTHER, content_kind) and content_kind in _DANGER and name_kind not in _DANGER:
            self.add("attachments.disguised", 4.0, "a file's name hides what it really is", path)
        if content_kind in (Kind.ZIP, Kind.GZIP, Kind.TAR, Kind.RAR, Kind.SEVEN_ZIP):
            if depth >= 1:
                self.add("attachments.nested_archive", 2.0, "carries an archive inside an archive", path)
            if depth >= self.limits.max_nesting:
                self.add("attachments.unscannable_archive", 3.0, "archives nested too deep to inspect", path)
                return
            self._open_archive(path, data, content_kind, depth, budget)

    def _open_archive(self, path: str, data: bytes, kind: Kind, depth: int, budget: _Budget) -> None:
        if kind in (Kind.RAR, Kind.SEVEN_ZIP):
            self.add("attachments.unscannable_archive", 3.0, "carries an archive that cannot be inspected", path)
            return
        try:
            for member in _members(path, data, kind, depth, budget, self):
                self.inspect_file(member.path, member.data, member.depth, budget)
        except _BombError as bomb:
            self.add("attachments.archive_bomb", 10.0, f"carries an archive bomb ({bomb})", path)
        except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError, zlib.error, ValueError, NotImplementedError):
            self.add("attachments.corrupt_archive", 2.0, "carries a damaged archive", path)


def _members(path: str, data: bytes, kind: Kind, depth: int, budget: _Budget, scan: _Scan) -> Iterator[_Member]:
    if kind is Kind.ZIP:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                budget.entry()
                if info.is_dir():
                    continue
                inner = f"{path}/{info.filename}"
                if info.flag_bits & 0x1:
                    scan.add("attachments.encrypted_archive", 6.0, "carries a password-protected archive", path)
                    # The name still tells something even when the content cannot be read.
                    scan.inspect_file(inner, b"", depth + 1, budget)
                    continue
                if info.file_size > budget.limits.max_bytes:
                    raise _BombError(f"a member claims {info.file_size} bytes")
                with archive.open(info) as stream:
                    content = _read_bounded(stream, budget, max(info.compress_size, 1))
                yield _Member(inner, content, depth + 1)
    elif kind is Kind.GZIP:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            content = _read_bounded(stream, budget, len(data))
        budget.entry()
        inner_name = path.rsplit("/", 1)[-1].removesuffix(".gz").removesuffix(".tgz") or "content"
        yield _Member(f"{path}/{inner_name}", content, depth + 1)
    elif kind is Kind.TAR:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                budget.entry()
                if not member.isfile():
                    continue
                budget.take(member.size)
                extracted = tar.extractfile(member)
                if extracted is not None:
                    yield _Member(f"{path}/{member.name}", extracted.read(), depth + 1)


def scan_attachments(message: MessageView, limits: ArchiveLimits) -> list[Finding]:
    """Findings about every attachment of message; blocking (decompression)."""
    scan = _Scan(limits)
    for attachment in message.attachments:
        budget = _Budget(limits)
        name = attachment.filename or f"unnamed ({attachment.content_type})"
        scan.inspect_file(name.replace("/", "_"), attachment.data, 0, budget)
    return list(scan.findings.values())


class AttachmentStage:
    """Dangerous attachments."""

    name = "attachments"

    def __init__(self, limits: ArchiveLimits, executor: Executor | None = None) -> None:
        self._limits = limits
        self._executor = executor

    async def inspect(self, envelope: Envelope, message: MessageView) -> StageReport:
        if not message.attachments:
            return StageReport()
        loop = asyncio.get_running_loop()
        findings = await loop.run_in_executor(self._executor, scan_attachments, message, self._limits)
        return StageReport(findings=tuple(findings))
