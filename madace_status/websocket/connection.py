"""The WebSocket connection state machine (RFC 6455 §5–§7), sans-I/O.

`receive_data(bytes)` buffers what arrived; `events()` parses lazily and yields TextMessage, BinaryMessage,
Ping, Pong and CloseReceived. Because parsing is lazy, the caller handles (and answers) each message before
the bytes after it are even looked at: messages that arrived before a protocol error are delivered, and their
replies sent, before the connection is failed. Replies the protocol makes by itself (pong, the close echo, the
failing close) collect in `data_to_send()`; the `send_*` methods return the bytes of one frame.

Every state change goes through `_transition`, driven by the table `_TRANSITIONS`.

With permessage-deflate negotiated (`deflate`: the agreed DeflateParams), data messages of at least
deflate.MIN_COMPRESS_BYTES go out compressed with RSV1 on their first frame. A received compressed message is
kept as it came (at most MAX_COMPRESSED_FACTOR × `max_message_bytes` of it) and inflated once complete, within
`max_message_bytes`: what a peer makes the connection hold is the bytes it sent, never a live inflater.

A server's inbound limits (inbound.py) reach here as `max_frames_per_message` (more frames in one message is
a PolicyViolation, 1008) and `assembly_budget` (the bytes every connection's unfinished message holds, shared:
a message that would take it past its limit is a PolicyViolation). `assembling` tells the asyncio layer that a
message has started and not ended, for its deadline.
"""

import codecs
import enum
import os

from madace_status.websocket import deflate, frames
from madace_status.websocket.errors import (ConnectionClosed, InvalidPayload, MessageTooBig, PolicyViolation,
                                           ProtocolError)

class Role(enum.Enum):
    """Which end of the connection this is: a client masks what it sends, a server must not."""

    SERVER = "server"
    CLIENT = "client"


class State(enum.Enum):
    OPEN = "OPEN"
    LOCAL_CLOSING = "LOCAL_CLOSING"  # we sent a close frame first and wait for the peer's
    CLOSED = "CLOSED"  # both close frames exchanged, or the connection failed or dropped


class Trigger(enum.Enum):
    """What happened, driving a state change (a misspelt one is an AttributeError where it is written)."""

    SEND_CLOSE = "send_close"
    FAIL = "fail"  # a protocol error: we send the failing close
    FAIL_ON_CLOSE = "fail_on_close"  # the peer's own close frame was invalid
    RECEIVE_CLOSE = "receive_close"
    EOF = "eof"  # the TCP connection ended


SERVER, CLIENT = Role.SERVER, Role.CLIENT
OPEN, LOCAL_CLOSING, CLOSED = State.OPEN, State.LOCAL_CLOSING, State.CLOSED

# (state, what happened) → next state. Anything missing is a programming error.
_TRANSITIONS = {
    (OPEN, Trigger.SEND_CLOSE): LOCAL_CLOSING,
    (OPEN, Trigger.FAIL): LOCAL_CLOSING,
    (OPEN, Trigger.RECEIVE_CLOSE): CLOSED,  # the echo goes out at once
    (OPEN, Trigger.EOF): CLOSED,
    (LOCAL_CLOSING, Trigger.RECEIVE_CLOSE): CLOSED,
    (LOCAL_CLOSING, Trigger.FAIL): CLOSED,  # garbage after our close: stop waiting for the peer's
    (OPEN, Trigger.FAIL_ON_CLOSE): CLOSED,  # the peer's own close frame was invalid: no other close will come
    (LOCAL_CLOSING, Trigger.FAIL_ON_CLOSE): CLOSED,
    (LOCAL_CLOSING, Trigger.EOF): CLOSED,
    (CLOSED, Trigger.EOF): CLOSED,
}

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class TextMessage:
    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data

    def __repr__(self):
        return "TextMessage(%d chars)" % len(self.data)


class BinaryMessage:
    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data

    def __repr__(self):
        return "BinaryMessage(%d bytes)" % len(self.data)


class Ping:
    """The peer pinged; the pong is already in `data_to_send()`."""

    __slots__ = ("payload",)

    def __init__(self, payload):
        self.payload = payload


class Pong:
    __slots__ = ("payload",)

    def __init__(self, payload):
        self.payload = payload


class CloseReceived:
    """The peer's close frame (`code` 1005 when it carried none). When the peer started the close, the echo
    is already in `data_to_send()`."""

    __slots__ = ("code", "reason")

    def __init__(self, code, reason):
        self.code = code
        self.reason = reason

    def __repr__(self):
        return "CloseReceived(%d, %r)" % (self.code, self.reason)


class Connection:
    """One endpoint of an open WebSocket connection (the handshake is done before it is made)."""

    __slots__ = ("role", "max_message_bytes", "state", "close_initiator", "close_code", "close_reason",
                 "sent_close_code", "sent_close_reason", "failure", "_parser", "_outgoing", "_mask_outgoing",
                 "_message_opcode", "_message_bytes", "_fragments", "_utf8", "deflate", "_inflater", "_compressed",
                 "max_frames_per_message", "assembly_budget", "_message_frames")

    def __init__(self, role, max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES, deflate=None, max_frames_per_message=None,
                 assembly_budget=None):
        if role not in (SERVER, CLIENT):
            raise ValueError("role must be SERVER or CLIENT")
        self.role = role
        self.max_message_bytes = max_message_bytes
        self.state = OPEN
        self.close_initiator = None  # "local" or "remote": who sent the first close frame
        self.close_code = None  # what the peer sent (1005 none, 1006 dropped without a close frame)
        self.close_reason = ""
        self.sent_close_code = None
        self.sent_close_reason = ""
        self.failure = None  # the ProtocolError that failed the connection, if any
        self._parser = frames.FrameParser(expect_masked=(role == SERVER), length_check=self._check_frame_length,
                                          allow_rsv1=deflate is not None)
        self.deflate = deflate  # the negotiated permessage-deflate DeflateParams, or None
        self._inflater = None  # made by the first compressed message
        self._compressed = False  # the message being received is compressed
        self._outgoing = []
        self._mask_outgoing = role == CLIENT
        # The data message being received.
        self._message_opcode = None
        self._message_bytes = 0
        self._fragments = None  # bytearray of the message being received in several pieces (compressed: as sent)
        self._utf8 = None  # incremental decoder of an uncompressed text message that spans several pieces
        self._message_frames = 0  # frames of the message being received
        self.max_frames_per_message = max_frames_per_message  # None: any number
        self.assembly_budget = assembly_budget  # inbound.AssemblyBudget shared by a server's connections, or None

    # -- state ------------------------------------------------------------------------------------------------

    def _transition(self, happening):
        try:
            self.state = _TRANSITIONS[(self.state, happening)]
        except KeyError:
            raise AssertionError("no transition from %s on %s" % (self.state.name, happening.name))

    @property
    def is_open(self):
        return self.state == OPEN

    @property
    def buffered_bytes(self):
        """Received bytes not parsed yet."""
        return self._parser.buffered_bytes

    @property
    def assembling(self):
        """True while a data message has started arriving and has not ended (fragmented, compressed, or one
        frame delivered in pieces)."""
        return self._message_opcode is not None and self.state != CLOSED

    # -- sending ----------------------------------------------------------------------------------------------

    def _frame(self, opcode, payload, fin=True, rsv1=False):
        mask = os.urandom(4) if self._mask_outgoing else None
        return frames.serialize_frame(opcode, payload, fin, mask, rsv1)

    def _message_frame(self, opcode, payload):
        if self.deflate is not None:
            compressed = deflate.compress(payload, self.deflate.send_window_bits, self.deflate.min_compress_bytes)
            if compressed is not None:
                return self._frame(opcode, compressed, rsv1=True)
        return self._frame(opcode, payload)

    def closed_error(self):
        """The ConnectionClosed for this connection: the peer's code if it sent one, else ours, else 1006."""
        return ConnectionClosed(self.close_code or self.sent_close_code or frames.CLOSE_ABNORMAL,
                                self.close_reason or self.sent_close_reason)

    def _require_open(self):
        if self.state != OPEN:
            raise self.closed_error()

    def send_text(self, text):
        self._require_open()
        return self._message_frame(frames.OP_TEXT, text.encode("utf-8"))

    def send_binary(self, data):
        self._require_open()
        return self._message_frame(frames.OP_BINARY, bytes(data))

    def send_fragment(self, opcode, payload, fin):
        """One frame of a fragmented message: OP_TEXT/OP_BINARY first, then OP_CONTINUATION (uncompressed)."""
        self._require_open()
        if opcode not in frames.DATA_OPCODES:
            raise ValueError("fragments are data frames")
        return self._frame(opcode, bytes(payload), fin)

    def send_ping(self, payload=b""):
        self._require_open()
        if len(payload) > frames.MAX_CONTROL_PAYLOAD_BYTES:
            raise ValueError("ping payload is longer than 125 bytes")
        return self._frame(frames.OP_PING, bytes(payload))

    def send_pong(self, payload=b""):
        self._require_open()
        if len(payload) > frames.MAX_CONTROL_PAYLOAD_BYTES:
            raise ValueError("pong payload is longer than 125 bytes")
        return self._frame(frames.OP_PONG, bytes(payload))

    def send_close(self, code=frames.CLOSE_NORMAL, reason=""):
        """Start the closing handshake (or answer the peer's); returns the close frame."""
        if code is not None and code != frames.CLOSE_NO_STATUS and not frames.is_valid_close_code(code):
            raise ValueError("close code %d may not be sent" % code)
        self._require_open()
        payload = frames.close_payload(code, reason)
        self.sent_close_code = code if code is not None else frames.CLOSE_NO_STATUS
        self.sent_close_reason = reason
        self.close_initiator = "local"
        self._transition(Trigger.SEND_CLOSE)
        return self._frame(frames.OP_CLOSE, payload)

    def data_to_send(self):
        """Bytes the protocol itself must send (pongs, close replies); empty when there are none."""
        if not self._outgoing:
            return b""
        data = b"".join(self._outgoing)
        self._outgoing.clear()
        return data

    # -- receiving --------------------------------------------------------------------------------------------

    def receive_data(self, data):
        """Feed bytes from the peer; b"" means the TCP connection reached EOF."""
        if not data:
            if self.close_code is None:
                self.close_code = frames.CLOSE_ABNORMAL
            self._transition(Trigger.EOF)
            self._drop_message()
            return
        if self.state == CLOSED:
            return  # nothing is processed after the close
        self._parser.feed(data)

    def events(self):
        """Parse what has arrived, one event at a time (lazily: see the module docstring)."""
        while self.state != CLOSED:
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

    def _fail(self, error):
        """Fail the connection: queue a close with the error's code; from then on only a close is looked for."""
        self._drop_message()
        if self.failure is None:
            self.failure = error
        if self.state == OPEN:
            reason = error.reason.encode("utf-8")[:frames.MAX_CONTROL_PAYLOAD_BYTES - 2].decode("utf-8", "ignore")
            self.sent_close_code = error.close_code
            self.sent_close_reason = reason
            self.close_initiator = "local"
            self._outgoing.append(self._frame(frames.OP_CLOSE, frames.close_payload(error.close_code, reason)))
        self._transition(Trigger.FAIL_ON_CLOSE if error.in_close_frame else Trigger.FAIL)

    def _drain_after_failure(self, piece):
        # After failing we still read frames, so the peer's close completes the handshake and our close is
        # not lost to a TCP reset; every other frame is dropped unseen.
        if piece.opcode == frames.OP_CLOSE:
            return self._receive_close(piece.payload)
        return None

    def _check_frame_length(self, opcode, fin, length, rsv1=False):
        if opcode >= frames.OP_CLOSE or self.failure is not None:
            return
        if rsv1 or (opcode == frames.OP_CONTINUATION and self._compressed):
            # Compressed bytes on the wire; the inflated size is checked while inflating.
            limit = self.max_message_bytes * deflate.MAX_COMPRESSED_FACTOR
        else:
            limit = self.max_message_bytes
        if self._message_bytes + length > limit:
            raise MessageTooBig("message is larger than %d bytes" % self.max_message_bytes)

    def _handle_piece(self, piece):
        opcode = piece.opcode
        if opcode >= frames.OP_CLOSE:
            return self._handle_control(opcode, piece.payload)
        if piece.first:
            if opcode == frames.OP_CONTINUATION:
                if self._message_opcode is None:
                    raise ProtocolError("continuation frame without a message to continue")
            elif self._message_opcode is not None:
                raise ProtocolError("new data frame inside a fragmented message")
            elif piece.fin and piece.last:  # the common case: one frame, all here (nothing held, nothing counted)
                return self._whole_message(opcode, self._inflate(piece.payload) if piece.rsv1 else piece.payload)
            else:
                self._message_opcode = opcode
                self._fragments = bytearray()
                self._compressed = piece.rsv1
                if opcode == frames.OP_TEXT and not piece.rsv1:
                    self._utf8 = codecs.getincrementaldecoder("utf-8")()
            self._count_frame()
        payload = piece.payload
        self._message_bytes += len(payload)  # as sent (compressed: inflated once complete)
        if self._utf8 is not None:
            self._validate_utf8(payload, final=False)
        self._hold(len(payload))
        self._fragments += payload
        if not (piece.last and piece.fin):
            return None
        return self._finish_message()

    def _count_frame(self):
        self._message_frames += 1
        limit = self.max_frames_per_message
        if limit is not None and self._message_frames > limit:
            raise PolicyViolation("more than %d frames in one message" % limit, "frames per message",
                                  self._message_frames, limit)

    def _hold(self, size):
        """Count `size` more bytes of the unfinished message against the server's shared budget."""
        budget = self.assembly_budget
        if budget is not None and size and not budget.reserve(self, size):
            raise PolicyViolation("the server holds too many unfinished messages", "bytes held in unfinished "
                                  "messages", budget.total + size, budget.limit)

    def discard_message(self):
        """Forget an unfinished message (the connection is gone): what it held leaves the shared budget."""
        self._drop_message()

    def _drop_message(self):
        """Forget the message being received (finished, failed, or the connection ended)."""
        self._message_opcode = None
        self._message_bytes = 0
        self._message_frames = 0
        self._fragments = None
        self._utf8 = None
        self._compressed = False
        if self.assembly_budget is not None:
            self.assembly_budget.release(self)

    def _whole_message(self, opcode, payload):
        if opcode == frames.OP_BINARY:
            return BinaryMessage(payload)
        try:
            return TextMessage(payload.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidPayload("text message is not valid UTF-8")

    def _validate_utf8(self, payload, final):
        try:
            self._utf8.decode(payload, final)
        except UnicodeDecodeError:
            raise InvalidPayload("text message is not valid UTF-8")
        pending = self._utf8.getstate()[0]
        # CPython's decoder waits for a third byte before refusing a UTF-16 surrogate (ED A0..BF): refuse now.
        if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
            raise InvalidPayload("text message is not valid UTF-8 (encoded surrogate)")

    def _finish_message(self):
        opcode, data, compressed = self._message_opcode, self._fragments, self._compressed
        if self._utf8 is not None:
            self._validate_utf8(b"", final=True)
        self._drop_message()
        return self._whole_message(opcode, self._inflate(data) if compressed else bytes(data))

    def _inflate(self, data):
        """A compressed message, complete, inflated within `max_message_bytes`."""
        if self._inflater is None:
            self._inflater = deflate.Inflater(self.deflate)
        return self._inflater.inflate(data, self.max_message_bytes)

    def _handle_control(self, opcode, payload):
        if opcode == frames.OP_PING:
            if self.state == OPEN:
                self._outgoing.append(self._frame(frames.OP_PONG, payload))
            return Ping(payload)
        if opcode == frames.OP_PONG:
            return Pong(payload)
        return self._receive_close(payload)

    def _receive_close(self, payload):
        try:
            code, reason = self._parse_close(payload)
        except ProtocolError as error:
            error.in_close_frame = True
            raise
        self.close_code = code
        self.close_reason = reason
        if self.state == OPEN:
            self.close_initiator = "remote"
            # Echo the peer's code (RFC 6455 §5.5.1); a close without a code is answered without one.
            self.sent_close_code = code
            self.sent_close_reason = ""
            echo = frames.close_payload(code if code != frames.CLOSE_NO_STATUS else None)
            self._outgoing.append(self._frame(frames.OP_CLOSE, echo))
        self._transition(Trigger.RECEIVE_CLOSE)
        return CloseReceived(code, reason)

    @staticmethod
    def _parse_close(payload):
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
            code, reason = frames.CLOSE_NO_STATUS, ""
        return code, reason
