"""The bounded MIME walk: each limit, agreement with the email parser, and linear time on hostile shapes."""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Callable
from email.message import EmailMessage, Message

from hypothesis import given, settings
from hypothesis import strategies as st

from continuity.core.mime_structure import Breach, StructureLimits, find_breach
from tests.support.messages import nested_multipart

WIDE = StructureLimits(max_depth=1000, max_parts=100_000)


def _multipart(parts: int, boundary: str = "sep") -> bytes:
    body = b"".join(f"--{boundary}\r\nContent-Type: text/plain\r\n\r\npart {n}\r\n".encode() for n in range(parts))
    return (
        (
            f'Subject: many\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
            f"preamble\r\n"
        ).encode()
        + body
        + f"--{boundary}--\r\nepilogue\r\n".encode()
    )


def _parsed_shape(message: Message) -> tuple[int, int]:
    """(parts, depth) as the email parser sees them."""
    payload = message.get_payload()
    if isinstance(payload, list):
        shapes = [_parsed_shape(part) for part in payload if isinstance(part, Message)]
        return 1 + sum(p for p, _ in shapes), 1 + max((d for _, d in shapes), default=0)
    return 1, 1


def test_each_limit_is_met_at_its_value_and_not_before() -> None:
    assert find_breach(_multipart(9), StructureLimits(max_parts=10)) is None
    assert find_breach(_multipart(10), StructureLimits(max_parts=10)) is Breach.PARTS
    assert find_breach(nested_multipart(3), StructureLimits(max_depth=4)) is None
    assert find_breach(nested_multipart(4), StructureLimits(max_depth=4)) is Breach.DEPTH
    params = b"Content-Type: text/plain" + b";\r\n a=b" * 65 + b"\r\n\r\nx\r\n"
    assert find_breach(params, StructureLimits(max_parameters=65)) is None
    assert find_breach(params, StructureLimits(max_parameters=64)) is Breach.PARAMETERS
    header = b"X-Long: " + b"y" * 2000 + b"\r\n\r\nbody\r\n"
    assert find_breach(header, StructureLimits(max_part_header_size=2010)) is None
    assert find_breach(header, StructureLimits(max_part_header_size=1024)) is Breach.PART_HEADER
    assert find_breach(_multipart(50), StructureLimits(max_total_header_size=1024)) is Breach.TOTAL_HEADER
    big = b"Subject: big\r\n\r\n" + b"a" * 5000
    assert find_breach(big, StructureLimits(max_part_size=5000)) is None
    assert find_breach(big, StructureLimits(max_part_size=4999)) is Breach.PART_SIZE


def test_a_boundary_that_prefixes_another_and_message_parts_are_walked_like_the_parser() -> None:
    inner = _multipart(3, "sep-inner").replace(b"Subject: many\r\nMIME-Version: 1.0\r\n", b"")
    outer = (
        b'Content-Type: multipart/mixed; boundary="sep"\r\n\r\n--sep\r\n' + inner + b"\r\n--sep\r\n"
        b"Content-Type: message/rfc822\r\n\r\nSubject: attached\r\n\r\nhello\r\n--sep--\r\n"
    )
    parsed = _parsed_shape(email.message_from_bytes(outer))
    assert parsed == (7, 3)
    assert find_breach(outer, StructureLimits(max_parts=parsed[0], max_depth=parsed[1])) is None
    assert find_breach(outer, StructureLimits(max_parts=parsed[0] - 1)) is Breach.PARTS
    assert find_breach(outer, StructureLimits(max_depth=parsed[1] - 1)) is Breach.DEPTH


@st.composite
def _trees(draw: st.DrawFn, depth: int = 0) -> EmailMessage:
    message = EmailMessage()
    kind = draw(st.sampled_from(["text", "multipart", "message"] if depth < 4 else ["text"]))
    if kind == "text":
        message.set_content(draw(st.text(alphabet="ab -\n", max_size=40)) or "x")
    elif kind == "message":
        message.set_content(draw(_trees(depth + 1)))
    else:
        message.make_mixed()
        for child in draw(st.lists(_trees(depth + 1), min_size=1, max_size=3)):
            message.attach(child)
    return message


@settings(max_examples=150, deadline=None)
@given(_trees())
def test_parts_and_depth_agree_with_the_email_parser(tree: EmailMessage) -> None:
    data = tree.as_bytes(policy=email.policy.SMTP)
    parts, depth = _parsed_shape(email.message_from_bytes(data))
    assert find_breach(data, StructureLimits(max_parts=parts, max_depth=depth)) is None
    assert find_breach(data, StructureLimits(max_parts=parts - 1, max_depth=1000)) is Breach.PARTS or parts == 1
    if depth > 1:
        assert find_breach(data, StructureLimits(max_parts=100_000, max_depth=depth - 1)) is Breach.DEPTH


def _worst_seconds(data: bytes, limits: StructureLimits) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        find_breach(data, limits)
        best = min(best, time.perf_counter() - started)
    return best


def test_time_grows_linearly_on_hostile_shapes() -> None:
    shapes: dict[str, Callable[[int], bytes]] = {
        "delimiter look-alikes": lambda n: _multipart(1) + b"\r\n--sepX" * n,
        "folded parameters": lambda n: b"Content-Type: text/plain" + b";\r\n a=b" * n + b"\r\n\r\nx",
        "parts": lambda n: _multipart(n),
        "long header": lambda n: b"X: " + b"\r\n y" * n + b"\r\n\r\nx",
    }
    for name, make in shapes.items():
        small, large = make(20_000), make(80_000)
        ratio = _worst_seconds(large, WIDE) / max(_worst_seconds(small, WIDE), 1e-6)
        assert ratio < 8, f"{name}: 4x the input took {ratio:.1f}x the time"
