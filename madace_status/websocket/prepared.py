"""Server messages prepared once for many recipients (README, "The WebSocket implementation").

`PreparedMessage` is one message written unchanged to every recipient: its frame is built once and, for
peers that negotiated permessage-deflate, compressed once per window size. `SplicedText` is a text message
whose large middle is shared and whose two ends are each recipient's own (a snapshot: the project, between a
timestamp and a reason): the middle is compressed once per window size and the ends join it as stored deflate
blocks, so a reconnect storm costs one compression, not one per client.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

from madace_status.websocket import deflate, frames
from madace_status.websocket.deflate import DeflateParams, SharedMessage as PreparedMessage

__all__ = ["PreparedMessage", "SplicedText"]


class SplicedText:
    """A text message `head + body + tail` where `body` is shared by every recipient."""

    __slots__ = ("body", "_chunks")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self._chunks: Dict[int, bytes] = {}  # window bits → `body` compressed as a deflate chunk

    def frame_for(self, head: bytes, tail: bytes, params: Optional[DeflateParams]) -> Tuple[bytes, int]:
        """(the frame for a peer with these DeflateParams (None: no deflate), the frame's size uncompressed)."""
        body = self.body
        plain_bytes = frames.frame_length(len(head) + len(body) + len(tail))
        if params is not None and deflate.can_compress(params) and len(body) >= params.min_compress_bytes:
            window_bits = params.send_window_bits
            chunk = self._chunks.get(window_bits)
            if chunk is None:
                chunk = self._chunks[window_bits] = deflate.compress_chunk(body, window_bits)
            payload = deflate.join_chunks((deflate.stored_chunk(head), chunk, deflate.stored_chunk(tail)))
            return frames.serialize_frame(frames.OP_TEXT, payload, rsv1=True), plain_bytes
        return frames.serialize_frame(frames.OP_TEXT, head + body + tail), plain_bytes
