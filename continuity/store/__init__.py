"""Durable storage: the Store protocol and its implementations (SQLite + content-addressed blobs)."""

from continuity.store.protocol import BlobRepository, MailboxRepository, MessageRepository, Store

__all__ = ["BlobRepository", "MailboxRepository", "MessageRepository", "Store"]
