"""Durable storage: the Store protocol and its implementations (SQLite + content-addressed blobs)."""

from continuity.store.protocol import BlobReader, MailboxRepository, MessageRepository, Store

__all__ = ["BlobReader", "MailboxRepository", "MessageRepository", "Store"]
