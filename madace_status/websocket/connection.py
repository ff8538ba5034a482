"""The WebSocket connection state machine (RFC 6455 §5–§7), sans-I/O (README, "The WebSocket implementation").

`receive_data(bytes)` buffers what arrived; `events()` parses lazily and yields TextMessage, BinaryMessage,
Ping, Pong and CloseReceived (events.py). Because parsing is lazy, the caller handles (and answers) each message
before the bytes after it are even looked at: messages that arrived before a protocol error are delivered, and
their replies sent, before the connection is failed. Replies the protocol makes by itself (pong, the close echo,
the failing close) collect in `data_to_send()`; the `send_*` methods return the bytes of one frame.

`state` is the connection's whole life (states.py): a Connection made with `connecting=True` (the asyncio layer's,
from the TCP accept) is CONNECTING until `open()`; one made without is OPEN at once (the handshake was done
elsewhere). Every change goes through `_transition`. Sending on a CONNECTING connection is InvalidState; on a
closing or closed one, ConnectionClosed.

With permessage-deflate negotiated (`deflate`: the agreed DeflateParams), data messages of at least
deflate.MIN_COMPRESS_BYTES go out compressed with RSV1 on their first frame. A received compressed message is
kept as it came (at most MAX_COMPRESSED_FACTOR × `max_message_bytes` of it) and inflated once complete, within
`max_message_bytes`: what a peer makes the connection hold is the bytes it sent, never a live inflater.

A server's inbound limits (inbound.py) reach here as `max_frames_per_message` (more frames in one message is
a PolicyViolation, 1008) and `assembly_budget` (the bytes every connection's unfinished message holds, shared:
a message that would take it past its limit is a PolicyViolation). `assembling` tells the asyncio layer that a
message has started and not ended, for its deadline.
"""

from __future__ import annotations

import codecs
import os
from typing import Iterator

from madace_status.websocket import deflate, frames
from madace_status.websocket.deflate import DeflateParams, Inflater
from madace_status.websocket.errors import (ConnectionClosed, InvalidPayload, InvalidState, MessageTooBig,
                                           PolicyViolation, ProtocolError, WebSocketError)
from madace_status.websocket.events import BinaryMessage, CloseReceived, Event, Ping, Pong, TextMessage
from madace_status.websocket.frames import (CLOSE_ABNORMAL, CLOSE_NO_STATUS, CLOSE_NORMAL, MAX_CONTROL_PAYLOAD_BYTES,
                                            OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT, FramePiece)
from madace_status.websocket.inbound import AssemblyBudget
from madace_status.websocket.states import (CLIENT, CLOSED, CONNECTING, LOCAL_CLOSING, OPEN, SERVER, Role, State,
                                            Trigger, next_state)

__all__ = [
    "CLIENT", "CLOSED", "CONNECTING", "DEFAULT_MAX_MESSAGE_BYTES", "LOCAL_CLOSING", "OPEN", "SERVER", "BinaryMessage",
    "CloseReceived", "Connection", "Event", "Ping", "Pong", "Role", "State", "TextMessage", "Trigger",
]

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_NO_MESSAGE = -1  # _message_opcode while no data message is being received


class Connection:
    """One endpoint of a WebSocket connection."""

    __slots__ = ("role", "max_message_bytes", "state", "close_initiator", "close_code", "close_reason",
                 "sent_close_code", "sent_close_reason", "failure", "_parser", "_outgoing", "_mask_outgoing",
                 "_message_opcode", "_message_bytes", "_fragments", "_utf8", "deflate", "_inflater", "_compressed",
                 "max_frames_per_message", "assembly_budget", "_message_frames")

    def __init__(self, role: Role, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 deflate: DeflateParams | None = None, max_frames_per_message: int | None = None,
                 assembly_budget: AssemblyBudget | None = None, *, connecting: bool = False) -> None:
        if not isinstance(role, Role):
            raise ValueError("role must be SERVER or CLIENT")
        if connecting and deflate is not None:
            raise ValueError("permessage-deflate is agreed by the handshake: pass it to open()")
        self.role = role
        self.max_message_bytes = max_message_bytes
        self.state = CONNECTING if connecting else OPEN
        self.close_initiator: str | None = None  # "local" or "remote": who sent the first close frame
        self.close_code: int | None = None  # what the peer sent (1005 none, 1006 dropped without a close frame)
        self.close_reason = ""
        self.sent_close_code: int | None = None
        self.sent_close_reason = ""
        self.failure: ProtocolError | None = None  # the ProtocolError that failed the connection, if any
        self._parser = frames.FrameParser(expect_masked=(role is SERVER), length_check=self._check_frame_length,
                                          allow_rsv1=deflate is not None)
        self.deflate = deflate  # the negotiated permessage-deflate DeflateParams, or None
        self._inflater: Inflater | None = None  # made by the first compressed message
        self._compressed = False  # the message being received is compressed
        self._outgoing: list[bytes] = []
        self._mask_outgoing = role is CLIENT
        # The data message being received.
        self._message_opcode = _NO_MESSAGE
        self._message_bytes = 0
        # The message being received in several pieces (compressed: as sent), and the incremental decoder of an
        # uncompressed text message that spans several pieces.
        self._fragments: bytearray | None = None
        self._utf8: codecs.IncrementalDecoder | None = None
        self._message_frames = 0  # frames of the message being received
        self.max_frames_per_message = max_frames_per_message  # None: any number
        self.assembly_budget = assembly_budget  # inbound.AssemblyBudget shared by a server's connections, or None

    # -- state ------------------------------------------------------------------------------------------------

    def _transition(self, trigger: Trigger) -> None:
        self.state = next_state(self.state, trigger)

    def open(self, deflate: DeflateParams | None = None) -> None:
        """The opening handshake is done (with the permessage-deflate it agreed, if any): CONNECTING → OPEN."""
        self._transition(Trigger.HANDSHAKE_DONE)
        self.deflate = deflate
        self._parser.allow_rsv1 = deflate is not None

    @property
    def is_open(self) -> bool:
        return self.state is OPEN

    @property
    def buffered_bytes(self) -> int:
        """Received bytes not parsed yet."""
        return self._parser.buffered_bytes

    @property
    def assembling(self) -> bool:
        """True while a data message has started arriving and has not ended (fragmented, compressed, or one
        frame delivered in pieces)."""
        return self._message_opcode != _NO_MESSAGE and self.state is not CLOSED

    # -- sending ----------------------------------------------------------------------------------------------

    def _frame(self, opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False) -> bytes:
        mask = os.urandom(4) if self._mask_outgoing else None
        return frames.serialize_frame(opcode, payload, fin, mask, rsv1)

    def _message_frame(self, opcode: int, payload: bytes) -> bytes:
        params = self.deflate
        if params is not None:
            compressed = deflate.compress(payload, params.send_window_bits, params.min_compress_bytes)
            if compressed is not None:
                return self._frame(opcode, compressed, rsv1=True)
        return self._frame(opcode, payload)

    def closed_error(self) -> ConnectionClosed:
        """The ConnectionClosed for this connection: the peer's code if it sent one, else ours, else 1006."""
        return ConnectionClosed(self.close_code or self.sent_close_code or CLOSE_ABNORMAL,
                                self.close_reason or self.sent_close_reason)

    def not_open_error(self) -> WebSocketError:
        """What a send on this connection raises when it is not OPEN: InvalidState before the handshake is done,
        the ConnectionClosed once closing (a close may come from the peer at any moment: not the caller's
        mistake)."""
        if self.state is CONNECTING:
            return InvalidState("the opening handshake is not done")
        return self.closed_error()

    def _require_open(self) -> None:
        if self.state is not OPEN:
            raise self.not_open_error()

    def send_text(self, text: str) -> bytes:
        self._require_open()
        return self._message_frame(OP_TEXT, text.encode("utf-8"))

    def send_binary(self, data: bytes | bytearray | memoryview) -> bytes:
        self._require_open()
        return self._message_frame(OP_BINARY, bytes(data))

    def send_fragment(self, opcode: int, payload: bytes | bytearray | memoryview, fin: bool) -> bytes:
        """One frame of a fragmented message: OP_TEXT/OP_BINARY first, then OP_CONTINUATION (uncompressed)."""
        self._require_open()
        if opcode not in frames.DATA_OPCODES:
            raise ValueError("fragments are data frames")
        return self._frame(opcode, bytes(payload), fin)

    def send_ping(self, payload: bytes = b"") -> bytes:
        self._require_open()
        if len(payload) > MAX_CONTROL_PAYLOAD_BYTES:
            raise ValueError("ping payload is longer than 125 bytes")
        return self._frame(OP_PING, bytes(payload))

    def send_pong(self, payload: bytes = b"") -> bytes:
        self._require_open()
        if len(payload) > MAX_CONTROL_PAYLOAD_BYTES:
            raise ValueError("pong payload is longer than 125 bytes")
        return self._frame(OP_PONG, bytes(payload))

    def send_close(self, code: int | None = CLOSE_NORMAL, reason: str = "") -> bytes:
        """Start the closing handshake (or answer the peer's); returns the close frame."""
        if code is not None and code != CLOSE_NO_STATUS and not frames.is_valid_close_code(code):
            raise ValueError("close code %d may not be sent" % code)
        self._require_open()
        payload = frames.close_payload(code, reason)
        self.sent_close_code = code if code is not None else CLOSE_NO_STATUS
        self.sent_close_reason = reason
        self.close_initiator = "local"
        self._transition(Trigger.SEND_CLOSE)
        return self._frame(OP_CLOSE, payload)

    def data_to_send(self) -> bytes:
        """Bytes the protocol itself must send (pongs, close replies); empty when there are none."""
        if not self._outgoing:
            return b""
        data = b"".join(self._outgoing)
        self._outgoing.clear()
        return data

    # -- receiving --------------------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the peer; b"" means the TCP connection reached EOF."""
        if not data:
            if self.close_code is None:
                self.close_code = CLOSE_ABNORMAL
            self._transition(Trigger.EOF)
            self._drop_message()
            return
        state = self.state
        if state is CLOSED:
            return  # nothing is processed after the close
        if state is CONNECTING:
            raise InvalidState("frames before the opening handshake is done")
        self._parser.feed(data)

    def events(self) -> Iterator[Event]:
        """Parse what has arrived, one event at a time (lazily: see the module docstring)."""
        while self.state is not CLOSED:
            try:
                piece = self._parser.next_piece()
                if piece is None:
                    return
                if self.failure is not None:
                    event = self._drain_after_failure(piece)
                else:
                    event = self._handle_piece(piece)
            except ProtocolError as error:
                # A bad frame header leaves the stream unframeable: the parser raises again on it, and the
                # second failure closes at once instead of waiting for a close frame that cannot be found.
                self._fail(error)
                continue
            if event is not None:
                yield event

    def _fail(self, error: ProtocolError) -> None:
        """Fail the connection: queue a close with the error's code; from then on only a close is looked for."""
        self._drop_message()
        if self.failure is None:
            self.failure = error
        if self.state is OPEN:
            reason = error.reason.encode("utf-8")[:MAX_CONTROL_PAYLOAD_BYTES - 2].decode("utf-8", "ignore")
            self.sent_close_code = error.close_code
            self.sent_close_reason = reason
            self.close_initiator = "local"
            self._outgoing.append(self._frame(OP_CLOSE, frames.close_payload(error.close_code, reason)))
        self._transition(Trigger.FAIL_ON_CLOSE if error.in_close_frame else Trigger.FAIL)

    def _drain_after_failure(self, piece: FramePiece) -> Event | None:
        # After failing we still read frames, so the peer's close completes the handshake and our close is
        # not lost to a TCP reset; every other frame is dropped unseen.
        if piece.opcode == OP_CLOSE:
            return self._receive_close(piece.payload)
        return None

    def _check_frame_length(self, opcode: int, fin: bool, length: int, rsv1: bool = False) -> None:
        if opcode >= OP_CLOSE or self.failure is not None:
            return
        if rsv1 or (opcode == OP_CONTINUATION and self._compressed):
            # Compressed bytes on the wire; the inflated size is checked while inflating.
            limit = self.max_message_bytes * deflate.MAX_COMPRESSED_FACTOR
        else:
            limit = self.max_message_bytes
        if self._message_bytes + length > limit:
            raise MessageTooBig(self._message_bytes + length, self.max_message_bytes)

    def _handle_piece(self, piece: FramePiece) -> Event | None:
        opcode = piece.opcode
        if opcode >= OP_CLOSE:
            return self._handle_control(opcode, piece.payload)
        if piece.first:
            if opcode == OP_CONTINUATION:
                if self._message_opcode == _NO_MESSAGE:
                    raise ProtocolError("continuation frame without a message to continue")
            elif self._message_opcode != _NO_MESSAGE:
                raise ProtocolError("new data frame inside a fragmented message")
            elif piece.fin and piece.last:  # the common case: one frame, all here (nothing held, nothing counted)
                return self._whole_message(opcode, self._inflate(piece.payload) if piece.rsv1 else piece.payload)
            else:
                self._message_opcode = opcode
                self._fragments = bytearray()
                self._compressed = piece.rsv1
                if opcode == OP_TEXT and not piece.rsv1:
                    self._utf8 = codecs.getincrementaldecoder("utf-8")()
            self._count_frame()
        fragments = self._fragments
        assert fragments is not None  # a message has begun: a continuation without one raised above
        payload = piece.payload
        self._message_bytes += len(payload)  # as sent (compressed: inflated once complete)
        utf8 = self._utf8
        if utf8 is not None:
            self._validate_utf8(utf8, payload, final=False)
        self._hold(len(payload))
        fragments += payload
        if not (piece.last and piece.fin):
            return None
        return self._finish_message()

    def _count_frame(self) -> None:
        self._message_frames += 1
        limit = self.max_frames_per_message
        if limit is not None and self._message_frames > limit:
            raise PolicyViolation("more than %d frames in one message" % limit, "frames per message",
                                  self._message_frames, limit)

    def _hold(self, size: int) -> None:
        """Count `size` more bytes of the unfinished message against the server's shared budget."""
        budget = self.assembly_budget
        if budget is not None and size and not budget.reserve(self, size):
            raise PolicyViolation("the server holds too many unfinished messages", "bytes held in unfinished "
                                  "messages", budget.total + size, budget.limit)

    def discard_message(self) -> None:
        """Forget an unfinished message (the connection is gone): what it held leaves the shared budget."""
        self._drop_message()

    def _drop_message(self) -> None:
        """Forget the message being received (finished, failed, or the connection ended)."""
        self._message_opcode = _NO_MESSAGE
        self._message_bytes = 0
        self._message_frames = 0
        self._fragments = None
        self._utf8 = None
        self._compressed = False
        if self.assembly_budget is not None:
            self.assembly_budget.release(self)

    def _whole_message(self, opcode: int, payload: bytes) -> Event:
        if opcode == OP_BINARY:
            return BinaryMessage(payload)
        try:
            return TextMessage(payload.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidPayload("text message is not valid UTF-8")

    def _validate_utf8(self, decoder: codecs.IncrementalDecoder, payload: bytes, final: bool) -> None:
        try:
            decoder.decode(payload, final)
        except UnicodeDecodeError:
            raise InvalidPayload("text message is not valid UTF-8")
        pending = decoder.getstate()[0]
        # CPython's decoder waits for a third byte before refusing a UTF-16 surrogate (ED A0..BF): refuse now.
        if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
            raise InvalidPayload("text message is not valid UTF-8 (encoded surrogate)")

    def _finish_message(self) -> Event:
        opcode, data, compressed, utf8 = self._message_opcode, self._fragments, self._compressed, self._utf8
        assert data is not None  # called once a message's last piece is in
        if utf8 is not None:
            self._validate_utf8(utf8, b"", final=True)
        self._drop_message()
        return self._whole_message(opcode, self._inflate(data) if compressed else bytes(data))

    def _inflate(self, data: bytes | bytearray) -> bytes:
        """A compressed message, complete, inflated within `max_message_bytes`."""
        inflater = self._inflater
        if inflater is None:
            if self.deflate is None:  # the parser refuses RSV1 without permessage-deflate: never here
                raise ProtocolError("compressed message without permessage-deflate")
            inflater = self._inflater = Inflater(self.deflate)
        return inflater.inflate(data, self.max_message_bytes)

    def _handle_control(self, opcode: int, payload: bytes) -> Event:
        if opcode == OP_PING:
            if self.state is OPEN:
                self._outgoing.append(self._frame(OP_PONG, payload))
            return Ping(payload)
        if opcode == OP_PONG:
            return Pong(payload)
        return self._receive_close(payload)

    def _receive_close(self, payload: bytes) -> CloseReceived:
        try:
            code, reason = self._parse_close(payload)
        except ProtocolError as error:
            error.in_close_frame = True
            raise
        self.close_code = code
        self.close_reason = reason
        if self.state is OPEN:
            self.close_initiator = "remote"
            # Echo the peer's code (RFC 6455 §5.5.1); a close without a code is answered without one.
            self.sent_close_code = code
            self.sent_close_reason = ""
            echo = frames.close_payload(code if code != CLOSE_NO_STATUS else None)
            self._outgoing.append(self._frame(OP_CLOSE, echo))
        self._transition(Trigger.RECEIVE_CLOSE)
        return CloseReceived(code, reason)

    @staticmethod
    def _parse_close(payload: bytes) -> tuple[int, str]:
        if len(payload) == 1:
            raise ProtocolError("close frame with a 1-byte payload")
        if payload:
            code = int.from_bytes(payload[:2], "big")
            if not frames.is_valid_close_code(code):
                raise ProtocolError("invalid close code %d" % code)
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidPayload("close reason is not valid UTF-8")
        else:
            code, reason = CLOSE_NO_STATUS, ""
        return code, reason

