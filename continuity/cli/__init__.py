"""The ``continuity`` command: serve, configuration, mailboxes and the queue."""
