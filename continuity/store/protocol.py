"""The Store protocol: what callers may ask of storage, whatever the backend.

The embedded default is SQLite plus content-addressed files (continuity.store.sqlite);
a PostgreSQL implementation can be added by implementing these protocols, without
touching callers. Every method is async; implementations keep blocking I/O off the
event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from continuity.core.audit import AuditEntry, AuditRecord, ChainVerdict
from continuity.core.models import DirectoryEntry, IncomingMessage, Mailbox, QueueEntry, UpsertOutcome
from continuity.store.directory_protocol import DirectorySyncRepository
from continuity.store.failover_protocol import FailoverRepository
from continuity.store.filters_protocol import FilterMemoryRepository, QuarantineRepository, VerdictRepository
from continuity.store.replay_protocol import ReplayRepository
from continuity.store.signals_protocol import FeedRepository, SignalRepository
from continuity.store.webmail_protocol import OutboundRepository, WebmailAuthRepository, WebmailRepository


class MailboxRepository(Protocol):
    """Pre-provisioned mailboxes and their aliases."""

    async def upsert(self, mailbox: Mailbox, *, keep_password: bool = True) -> UpsertOutcome:
        """Create or update a mailbox and replace its aliases.

        With keep_password, an existing password hash survives when mailbox has none.
        Raises InvalidInputError when an alias belongs to another mailbox.
        """
        ...

    async def get(self, address: str) -> Mailbox | None:
        """The mailbox with this primary address, or None."""
        ...

    async def list(self) -> list[Mailbox]:
        """Every mailbox, ordered by address."""
        ...

    async def set_enabled(self, address: str, enabled: bool) -> None:
        """Enable or disable a mailbox; NotFoundError when it does not exist."""
        ...

    async def set_password_hash(self, address: str, password_hash: str) -> None:
        """Store a new password hash; NotFoundError when the mailbox does not exist."""
        ...

    async def directory(self) -> dict[str, DirectoryEntry]:
        """Every accepted address (mailboxes and aliases) mapped to its mailbox."""
        ...

    async def directory_serial(self) -> int:
        """A number that changes whenever a mailbox or alias changes (for cache refresh)."""
        ...


class MessageRepository(Protocol):
    """Queued messages: durable commit, listing and reading."""

    async def prepare(self, message: IncomingMessage) -> None:
        """Write message's body ahead of its commit (not yet durable), or raise StorageError.

        Optional: many sessions' body writes overlap this way outside the group commit,
        which then makes the whole batch durable at once. commit() writes the bodies of
        messages that were not prepared.
        """
        ...

    async def commit(self, batch: Sequence[IncomingMessage]) -> None:
        """Make every message of batch durable, bodies first and then the rows, or raise StorageError.

        On return each body is fsynced under its final name with its directory fsynced,
        and the rows are committed in one transaction; a row never points at a missing
        body. On error no row of the batch is visible.
        """
        ...

    async def page(self, before: tuple[float, str] | None, limit: int) -> list[QueueEntry]:
        """Up to limit messages older than before (received_at, queue_id), newest first (None: from the newest)."""
        ...

    async def list(self, limit: int = 1000, offset: int = 0) -> list[QueueEntry]:
        """Queued messages, newest first."""
        ...

    async def get(self, queue_id: str) -> QueueEntry | None:
        """One queued message, or None."""
        ...

    async def count(self) -> int:
        """Number of messages in the queue that are not yet replayed."""
        ...

    async def trace_header(self, queue_id: str) -> bytes | None:
        """The header block prepended on receipt, or None for an unknown id.

        Received, then the filter pipeline's fields (Authentication-Results, X-Continuity-*);
        the stored body stays byte-identical to what the client sent.
        """
        ...


class BlobRepository(Protocol):
    """Message bodies, content-addressed by sha256."""

    async def put(self, sha256: str, content: bytes) -> None:
        """Store content durably (on return it survives a crash); StorageError when the disk refuses."""
        ...

    async def read(self, sha256: str) -> bytes:
        """The body bytes; NotFoundError when absent, StorageError when unreadable or corrupt."""
        ...

    async def read_many(self, digests: Sequence[str]) -> dict[str, bytes]:
        """The bodies of digests read in one go, by digest; one that cannot be read is left out (read says why)."""
        ...


class AuditRepository(Protocol):
    """The append-only, hash-chained audit log."""

    async def append(self, record: AuditRecord) -> AuditEntry:
        """Durably append one entry (and anchor the new head); StorageError on failure."""
        ...

    async def list(self, limit: int = 100) -> list[AuditEntry]:
        """The newest entries, oldest first."""
        ...

    async def verify(self) -> ChainVerdict:
        """Recompute the whole chain and compare it with the anchored head."""
        ...


class Store(Protocol):
    """Everything the appliance stores."""

    @property
    def mailboxes(self) -> MailboxRepository:
        """Pre-provisioned mailboxes."""
        ...

    @property
    def messages(self) -> MessageRepository:
        """The message queue."""
        ...

    @property
    def blobs(self) -> BlobRepository:
        """Message bodies."""
        ...

    @property
    def audit(self) -> AuditRepository:
        """The audit log."""
        ...

    @property
    def failover(self) -> FailoverRepository:
        """The failover state, its history, operator commands and the latest probes."""
        ...

    @property
    def webmail(self) -> WebmailRepository:
        """Folders, flags and search of standby mailboxes (continuity.store.webmail_protocol)."""
        ...

    @property
    def webmail_auth(self) -> WebmailAuthRepository:
        """Webmail sessions, second factors, activation tokens, failed sign-ins."""
        ...

    @property
    def outbound(self) -> OutboundRepository:
        """Mail users send, waiting for delivery."""
        ...

    @property
    def verdicts(self) -> VerdictRepository:
        """Each filtered message's verdict and findings (continuity.store.filters_protocol)."""
        ...

    @property
    def filter_memory(self) -> FilterMemoryRepository:
        """The filter pipeline's memory of threads and correspondents' bank accounts."""
        ...

    @property
    def quarantine(self) -> QuarantineRepository:
        """Held messages: list, release, delete."""
        ...

    @property
    def replay(self) -> ReplayRepository:
        """Replay runs and the per-recipient replay journal (continuity.store.replay_protocol)."""
        ...

    @property
    def feeds(self) -> FeedRepository:
        """The primary's relayed mail: its queue, held outbound mail, the mailbox window."""
        ...

    @property
    def signals(self) -> SignalRepository:
        """Compromise signals, mailbox states and the baselines' history."""
        ...

    @property
    def directory_sync(self) -> DirectorySyncRepository:
        """Directory sync: links of directory objects to mailboxes, groups, cursors, runs."""
        ...

    async def close(self) -> None:
        """Release connections and threads."""
        ...
