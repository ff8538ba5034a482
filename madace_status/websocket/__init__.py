"""RFC 6455 WebSocket, written by hand: a sans-I/O core (frames, handshake, connection) and an asyncio
layer (`serve`, `connect`). Imports nothing from the rest of the package."""

from madace_status.websocket.client import ClientWebSocket, connect
from madace_status.websocket.connection import CLIENT, SERVER, Connection
from madace_status.websocket.errors import (
    ConnectionClosed, HandshakeError, InvalidPayload, MessageTooBig, ProtocolError, WebSocketError)
from madace_status.websocket.protocol import WebSocket
from madace_status.websocket.server import Server, ServerWebSocket, serve

__all__ = [
    "CLIENT", "SERVER", "ClientWebSocket", "Connection", "ConnectionClosed", "HandshakeError", "InvalidPayload",
    "MessageTooBig", "ProtocolError", "Server", "ServerWebSocket", "WebSocket", "WebSocketError", "connect", "serve",
]
