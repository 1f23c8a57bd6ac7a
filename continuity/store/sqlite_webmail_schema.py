"""SQL schema of the webmail component: folder state, the search index, sessions, second factors.

The core table ``mailbox_messages`` stays the single source of truth for "this message is
in this user's folder with these flags" (the replay reads it): these migrations add to it
an ``expunged`` mark (emptied from Trash, still replayed to Deleted Items), a
``changed_at`` time and a generated ``seen`` column for fast unread counts. Everything
else here is webmail's own. Append a script to change the schema; never edit one that
has shipped.
"""

from __future__ import annotations

WEBMAIL_MIGRATIONS: tuple[str, ...] = (
    """
ALTER TABLE mailbox_messages ADD COLUMN expunged INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailbox_messages ADD COLUMN changed_at REAL NOT NULL DEFAULT 0;
ALTER TABLE mailbox_messages ADD COLUMN seen INTEGER GENERATED ALWAYS AS (instr(flags, '\\Seen') > 0) VIRTUAL;
CREATE INDEX mailbox_messages_listing ON mailbox_messages (mailbox, folder, expunged, id);
CREATE INDEX mailbox_messages_unseen ON mailbox_messages (mailbox, folder, expunged, seen);

-- Folders a user created (the standard ones always exist).
CREATE TABLE webmail_folders (
    mailbox TEXT NOT NULL REFERENCES mailboxes (address) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (mailbox, name)
);

-- Header summary of each stored message, parsed once by the indexer.
CREATE TABLE webmail_index (
    queue_id TEXT PRIMARY KEY REFERENCES messages (queue_id) ON DELETE CASCADE,
    from_name TEXT NOT NULL,
    from_address TEXT NOT NULL,
    to_addresses TEXT NOT NULL,
    cc_addresses TEXT NOT NULL,
    subject TEXT NOT NULL,
    sent_at REAL NOT NULL,
    size INTEGER NOT NULL,
    has_attachments INTEGER NOT NULL,
    preview TEXT NOT NULL
);

-- Full-text index, one row per mailbox_messages row (rowid = mailbox_messages.id);
-- owner holds a token naming the mailbox so a search never crosses mailboxes. It is
-- contentless (the text lives in the bodies); rows of replaced drafts stay behind and
-- are dropped by the join with mailbox_messages.
CREATE VIRTUAL TABLE webmail_fts USING fts5 (
    owner, subject, addresses, body,
    content = '', tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TABLE webmail_index_progress (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    last_id INTEGER NOT NULL
);
INSERT INTO webmail_index_progress (singleton, last_id) VALUES (1, 0);

-- Server-side sessions; only the SHA-256 of the cookie value is stored.
CREATE TABLE webmail_sessions (
    token_hash TEXT PRIMARY KEY,
    mailbox TEXT NOT NULL REFERENCES mailboxes (address) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    stage TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_seen REAL NOT NULL,
    client_address TEXT NOT NULL
);
CREATE INDEX webmail_sessions_by_mailbox ON webmail_sessions (mailbox);

CREATE TABLE webmail_totp (
    mailbox TEXT PRIMARY KEY REFERENCES mailboxes (address) ON DELETE CASCADE,
    secret TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    last_step INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);

CREATE TABLE webmail_activation_tokens (
    token_hash TEXT PRIMARY KEY,
    mailbox TEXT NOT NULL REFERENCES mailboxes (address) ON DELETE CASCADE,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    used_at REAL
);

-- Failed authentication attempts, by key ('account:<address>' or 'ip:<address>').
CREATE TABLE webmail_auth_failures (
    key TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX webmail_auth_failures_by_key ON webmail_auth_failures (key, at);
""",
    """
-- Message and unread counts per folder, kept by triggers so lists never count 100,000 rows.
CREATE TABLE webmail_folder_counts (
    mailbox TEXT NOT NULL,
    folder TEXT NOT NULL,
    total INTEGER NOT NULL,
    unread INTEGER NOT NULL,
    PRIMARY KEY (mailbox, folder)
);
INSERT INTO webmail_folder_counts (mailbox, folder, total, unread)
    SELECT mailbox, folder, COUNT(*), SUM(seen = 0) FROM mailbox_messages WHERE expunged = 0 GROUP BY mailbox, folder;
CREATE TRIGGER mailbox_messages_counted_on_insert AFTER INSERT ON mailbox_messages WHEN NEW.expunged = 0
BEGIN
    INSERT INTO webmail_folder_counts (mailbox, folder, total, unread) VALUES (NEW.mailbox, NEW.folder, 1, NEW.seen = 0)
    ON CONFLICT (mailbox, folder) DO UPDATE SET total = total + 1, unread = unread + (NEW.seen = 0);
END;
CREATE TRIGGER mailbox_messages_counted_on_delete AFTER DELETE ON mailbox_messages WHEN OLD.expunged = 0
BEGIN
    UPDATE webmail_folder_counts SET total = total - 1, unread = unread - (OLD.seen = 0)
    WHERE mailbox = OLD.mailbox AND folder = OLD.folder;
END;
CREATE TRIGGER mailbox_messages_counted_on_update AFTER UPDATE OF mailbox, folder, flags, expunged ON mailbox_messages
BEGIN
    UPDATE webmail_folder_counts SET total = total - 1, unread = unread - (OLD.seen = 0)
    WHERE OLD.expunged = 0 AND mailbox = OLD.mailbox AND folder = OLD.folder;
    INSERT INTO webmail_folder_counts (mailbox, folder, total, unread)
    SELECT NEW.mailbox, NEW.folder, 1, NEW.seen = 0 WHERE NEW.expunged = 0
    ON CONFLICT (mailbox, folder) DO UPDATE SET total = total + 1, unread = unread + (NEW.seen = 0);
END;
""",
)
