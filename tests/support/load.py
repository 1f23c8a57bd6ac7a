"""Client threads that send messages until the server goes away, recording what was acknowledged."""

from __future__ import annotations

import random
import smtplib
import threading
from dataclasses import dataclass, field

from tests.support.messages import make_message


@dataclass
class Acknowledged:
    """Messages the server answered 250 for, by queue id."""

    by_queue_id: dict[str, bytes] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, queue_id: str, message: bytes) -> None:
        with self.lock:
            self.by_queue_id[queue_id] = message


def _queue_id_from(reply: bytes) -> str:
    return reply.decode().rsplit(" ", 1)[-1]


def send_until_stopped(port: int, recipient: str, acked: Acknowledged, stop: threading.Event, seed: int) -> None:
    """Send messages of random size over fresh connections until stop is set or the server dies."""
    rng = random.Random(seed)
    while not stop.is_set():
        message = make_message(recipient=recipient, size=rng.choice([600, 5_000, 40_000, 300_000]))
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                client.ehlo("load.test")
                client.mail("s@outside.test")
                client.rcpt(recipient)
                code, reply = client.data(message)
                if code == 250:
                    acked.add(_queue_id_from(reply), message)
        except (OSError, smtplib.SMTPException):
            return
