"""Durable storage: the Store protocol and its implementations (SQLite + content-addressed blobs)."""

from continuity.store.protocol import AuditRepository, BlobRepository, MailboxRepository, MessageRepository, Store

__all__ = ["AuditRepository", "BlobRepository", "MailboxRepository", "MessageRepository", "Store"]
