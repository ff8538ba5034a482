"""Helpers shared by the sans-I/O WebSocket tests: building frames, reading back what a Connection sends,
and summarising events so two runs can be compared."""

import os
import sys

# The conftest at tests/ already does this; repeated so the module can be imported on its own too.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from madace_status.websocket import frames  # noqa: E402
from madace_status.websocket.connection import (  # noqa: E402
    CLIENT, SERVER, BinaryMessage, CloseReceived, Connection, Ping, Pong, TextMessage)

MASK = b"\x37\xfa\x21\x3d"  # a mask with every byte different, so a wrong lane shows


def client_frame(opcode, payload=b"", fin=True):
    """A frame as a client sends it (masked): valid input for a server-role Connection."""
    return frames.serialize_frame(opcode, payload, fin, MASK)


def server_frame(opcode, payload=b"", fin=True):
    """A frame as a server sends it (unmasked): valid input for a client-role Connection."""
    return frames.serialize_frame(opcode, payload, fin, None)


def close_body(code, reason=b""):
    return code.to_bytes(2, "big") + reason


def decode_frames(data, masked):
    """Every whole frame in `data` as (opcode, fin, payload)."""
    parser = frames.FrameParser(expect_masked=masked, allow_rsv1=True)  # compressed frames decode too
    parser.feed(data)
    result = []
    payload = b""
    while True:
        piece = parser.next_piece()
        if piece is None:
            break
        payload += piece.payload
        if piece.last:
            result.append((piece.opcode, piece.fin, payload))
            payload = b""
    return result


def sent_frames(conn):
    """Drain `conn.data_to_send()` and decode it (a client's frames are masked)."""
    return decode_frames(conn.data_to_send(), masked=conn.role == CLIENT)


def close_code_and_reason(payload):
    if not payload:
        return None, ""
    return int.from_bytes(payload[:2], "big"), payload[2:].decode("utf-8")


def feed(conn, *chunks):
    """Feed each chunk and collect every event it produces."""
    events = []
    for chunk in chunks:
        conn.receive_data(chunk)
        events.extend(conn.events())
    return events


def summary(event):
    """A comparable tuple for one event."""
    if isinstance(event, TextMessage):
        return ("text", event.data)
    if isinstance(event, BinaryMessage):
        return ("binary", event.data)
    if isinstance(event, Ping):
        return ("ping", event.payload)
    if isinstance(event, Pong):
        return ("pong", event.payload)
    if isinstance(event, CloseReceived):
        return ("close", event.code, event.reason)
    raise AssertionError("unexpected event %r" % (event,))


def server():
    return Connection(SERVER)


def client():
    return Connection(CLIENT)
