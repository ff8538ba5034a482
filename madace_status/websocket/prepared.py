"""Server messages prepared once for many recipients (README, "The WebSocket implementation").

`PreparedMessage` is one message written unchanged to every recipient: its frame is built once and, for
peers that negotiated permessage-deflate, compressed once per window size (the server never takes over context,
so a compressed frame does not depend on the connection). `SplicedText` is a text message whose large middle is
shared and whose two ends are each recipient's own (a snapshot: the project, between a timestamp and a reason):
the middle is compressed once per window size and the ends join it as stored deflate blocks, so a reconnect storm
costs one compression, not one per client.

A recipient's DeflateParams is `websocket.connection.deflate` (None without permessage-deflate).
"""

from __future__ import annotations

from madace_status.websocket import deflate
from madace_status.websocket.deflate import DeflateParams
from madace_status.websocket.frames import OP_TEXT, frame_length, serialize_frame

__all__ = ["PreparedMessage", "SplicedText"]


class PreparedMessage:
    """One server message written unchanged to many clients: its plain frame, and its compressed frame for each
    window size, built the first time a client with that window needs it."""

    __slots__ = ("opcode", "payload", "frame", "_by_window")

    def __init__(self, payload: bytes, opcode: int = OP_TEXT) -> None:
        self.opcode = opcode
        self.payload = payload
        self.frame = serialize_frame(opcode, payload)
        self._by_window: dict[int, bytes] | None = None

    def frame_for(self, params: DeflateParams | None) -> bytes:
        """The frame for a client with these DeflateParams (None: no deflate)."""
        if params is None:
            return self.frame
        window_bits = params.send_window_bits
        by_window = self._by_window
        if by_window is None:
            by_window = self._by_window = {}
        frame = by_window.get(window_bits)
        if frame is None:
            compressed = deflate.compress(self.payload, window_bits, params.min_compress_bytes)
            frame = self.frame if compressed is None else serialize_frame(self.opcode, compressed, rsv1=True)
            by_window[window_bits] = frame
        return frame


class SplicedText:
    """A text message `head + body + tail` where `body` is shared by every recipient."""

    __slots__ = ("body", "_chunks")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self._chunks: dict[int, bytes] = {}  # window bits → `body` compressed as a deflate chunk

    def frame_for(self, head: bytes, tail: bytes, params: DeflateParams | None) -> tuple[bytes, int]:
        """(the frame for a peer with these DeflateParams (None: no deflate), the frame's size uncompressed)."""
        body = self.body
        plain_bytes = frame_length(len(head) + len(body) + len(tail))
        if params is not None and deflate.can_compress(params) and len(body) >= params.min_compress_bytes:
            window_bits = params.send_window_bits
            chunk = self._chunks.get(window_bits)
            if chunk is None:
                chunk = self._chunks[window_bits] = deflate.compress_chunk(body, window_bits)
            payload = deflate.join_chunks((deflate.stored_chunk(head), chunk, deflate.stored_chunk(tail)))
            return serialize_frame(OP_TEXT, payload, rsv1=True), plain_bytes
        return serialize_frame(OP_TEXT, head + body + tail), plain_bytes
