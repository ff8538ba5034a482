"""RFC 6455 WebSocket, written by hand: a sans-I/O core (frames, handshake, connection) and an asyncio
layer (`serve`, `connect`). Imports nothing from the rest of the package but `logsafe` (README, "Code layout").

This module is the package's interface: code outside `websocket/` imports these names from here, never a
module inside it (tests/unit/test_layers.py holds every module to that)."""

from madace_status.websocket.client import ClientWebSocket, connect
from madace_status.websocket.connection import CLIENT, SERVER, Connection
from madace_status.websocket.errors import (
    ConnectionClosed, HandshakeError, InvalidPayload, MessageTooBig, ProtocolError, WebSocketError)
from madace_status.websocket.frames import (CLOSE_GOING_AWAY, CLOSE_POLICY_VIOLATION, CLOSE_UNSUPPORTED_DATA,
                                            CloseCode, Opcode)
from madace_status.websocket.handshake import refusal_response
from madace_status.websocket.inbound import MESSAGE_RATE_PER_S, InboundLimits
from madace_status.websocket.listener import listening_sockets, start_listening
from madace_status.websocket.prepared import PreparedMessage, SplicedText
from madace_status.websocket.protocol import WebSocket
from madace_status.websocket.ratelimit import TokenBucket
from madace_status.websocket.server import Server, ServerWebSocket, serve

__all__ = [
    "CLIENT", "CLOSE_GOING_AWAY", "CLOSE_POLICY_VIOLATION", "CLOSE_UNSUPPORTED_DATA", "MESSAGE_RATE_PER_S",
    "SERVER", "ClientWebSocket", "CloseCode", "Connection", "ConnectionClosed", "HandshakeError", "InboundLimits",
    "InvalidPayload", "MessageTooBig", "Opcode", "PreparedMessage", "ProtocolError", "Server", "ServerWebSocket",
    "SplicedText", "TokenBucket", "WebSocket", "WebSocketError", "connect", "listening_sockets", "refusal_response",
    "serve", "start_listening",
]
