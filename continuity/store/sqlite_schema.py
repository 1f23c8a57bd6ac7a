"""SQL schema of the core tables (mailboxes, aliases, queue, standby mailbox copies).

Migrations are numbered per component; append a script to change the schema, never
edit one that has shipped. Other components (webmail, failover, filters) keep their
own lists and register them in continuity.store.sqlite.MIGRATIONS.
"""

from __future__ import annotations

_DIRECTORY_TRIGGERS = "\n".join(
    f"""
CREATE TRIGGER {table}_{event.lower()}_bumps_directory AFTER {event} ON {table}
BEGIN
    UPDATE counters SET value = value + 1 WHERE name = 'directory';
END;"""
    for table in ("mailboxes", "aliases")
    for event in ("INSERT", "UPDATE", "DELETE")
)

CORE_MIGRATIONS: tuple[str, ...] = (
    """
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('directory', 0);

CREATE TABLE mailboxes (
    address TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    password_hash TEXT,
    enabled INTEGER NOT NULL DEFAULT 1,
    alternate_email TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);

CREATE TABLE aliases (
    alias TEXT PRIMARY KEY,
    mailbox TEXT NOT NULL REFERENCES mailboxes (address) ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX aliases_by_mailbox ON aliases (mailbox);

CREATE TABLE messages (
    queue_id TEXT PRIMARY KEY,
    received_at REAL NOT NULL,
    sender TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    message_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    client_address TEXT NOT NULL,
    client_helo TEXT NOT NULL,
    trace_header BLOB NOT NULL,
    state TEXT NOT NULL
);
CREATE INDEX messages_by_received ON messages (received_at);
CREATE INDEX messages_by_state ON messages (state);

CREATE TABLE message_recipients (
    queue_id TEXT NOT NULL REFERENCES messages (queue_id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    address TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (queue_id, position)
);
CREATE INDEX message_recipients_by_mailbox ON message_recipients (mailbox, state);

-- The standby mailbox: one row per message delivered to a mailbox.
CREATE TABLE mailbox_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox TEXT NOT NULL,
    queue_id TEXT NOT NULL REFERENCES messages (queue_id) ON DELETE CASCADE,
    folder TEXT NOT NULL DEFAULT 'INBOX',
    flags TEXT NOT NULL DEFAULT '',
    delivered_at REAL NOT NULL,
    UNIQUE (mailbox, queue_id)
);
CREATE INDEX mailbox_messages_by_folder ON mailbox_messages (mailbox, folder, id);
"""
    + _DIRECTORY_TRIGGERS,
)
