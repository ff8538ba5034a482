"""RFC 6455 WebSocket, written by hand: a sans-I/O core (frames, handshake, connection) and an asyncio
layer (`serve`, `connect`). Imports nothing from the rest of the package but `logsafe`
(madace_status/README.md, "Code layout").

This module is the package's interface: code outside `websocket/` imports these names from here, never a
module inside it (tests/unit/test_layers.py holds every module to that). For a server pushing to many clients:
`PreparedMessage` (one message, its frame built once and compressed once per window size) and `SplicedText`
(a shared body between each client's own head and tail), written with `ServerWebSocket.send_frame`."""

from __future__ import annotations

from madace_status.websocket.client import ClientWebSocket, connect
from madace_status.websocket.codes import CloseCode, Opcode
from madace_status.websocket.connection import Connection
from madace_status.websocket.deflate import DeflateParams
from madace_status.websocket.errors import (ConnectionClosed, HandshakeError, InvalidPayload, InvalidState,
                                           MessageTooBig, PolicyViolation, ProtocolError, WebSocketError)
from madace_status.websocket.frames import CLOSE_GOING_AWAY, CLOSE_POLICY_VIOLATION, CLOSE_UNSUPPORTED_DATA
from madace_status.websocket.handshake import Request, refusal_response
from madace_status.websocket.inbound import MESSAGE_RATE_PER_S, InboundLimits
from madace_status.websocket.listener import Listening, listening_sockets, start_listening
from madace_status.websocket.prepared import PreparedMessage, SplicedText
from madace_status.websocket.protocol import WebSocket
from madace_status.websocket.ratelimit import TokenBucket
from madace_status.websocket.server import Server, ServerWebSocket, serve
from madace_status.websocket.states import CLIENT, SERVER, Role, State
from madace_status.websocket.waiters import Message

__all__ = [
    "CLIENT", "CLOSE_GOING_AWAY", "CLOSE_POLICY_VIOLATION", "CLOSE_UNSUPPORTED_DATA", "MESSAGE_RATE_PER_S",
    "SERVER", "ClientWebSocket", "CloseCode", "Connection", "ConnectionClosed", "DeflateParams", "HandshakeError",
    "InboundLimits", "InvalidPayload", "InvalidState", "Listening", "Message", "MessageTooBig", "Opcode",
    "PolicyViolation", "PreparedMessage", "ProtocolError", "Request", "Role", "Server", "ServerWebSocket",
    "SplicedText", "State", "TokenBucket", "WebSocket", "WebSocketError", "connect", "listening_sockets",
    "refusal_response", "serve", "start_listening",
]
