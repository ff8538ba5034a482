"""A connection's life as one state machine (RFC 6455 §4, §7): its states, what moves it on, and the roles of its
two ends (README, "The WebSocket implementation").

CONNECTING until the opening handshake is done, then OPEN; LOCAL_CLOSING once we sent a close frame first and
wait for the peer's; CLOSED once both close frames are exchanged, or the connection failed or dropped. The TCP
connection may outlive CLOSED a little: the server closes it after the closing handshake, the client waits for
that (protocol.WebSocket.wait_closed). Every change goes through `next_state`, driven by TRANSITIONS; a pair it
does not list is a call the state does not allow (InvalidState).
"""

from __future__ import annotations

import enum

from madace_status.websocket.errors import InvalidState

__all__ = [
    "CLIENT", "CLOSED", "CONNECTING", "LOCAL_CLOSING", "OPEN", "SERVER", "TRANSITIONS", "Role", "State", "Trigger",
    "next_state",
]


class Role(enum.Enum):
    """Which end of the connection this is: a client masks what it sends, a server must not."""

    SERVER = "server"
    CLIENT = "client"


class State(enum.Enum):
    CONNECTING = "CONNECTING"  # the opening handshake is not done
    OPEN = "OPEN"
    LOCAL_CLOSING = "LOCAL_CLOSING"  # we sent a close frame first and wait for the peer's
    CLOSED = "CLOSED"  # both close frames exchanged, or the connection failed or dropped


class Trigger(enum.Enum):
    """What happened, driving a state change (a misspelt one is an AttributeError where it is written)."""

    HANDSHAKE_DONE = "handshake_done"  # the opening handshake succeeded
    SEND_CLOSE = "send_close"
    FAIL = "fail"  # a protocol error: we send the failing close
    FAIL_ON_CLOSE = "fail_on_close"  # the peer's own close frame was invalid
    RECEIVE_CLOSE = "receive_close"
    EOF = "eof"  # the TCP connection ended


# The members as module constants: what the hot paths compare against (a global read; an attribute of the enum
# class costs several times more on CPython), and the names the tests use.
SERVER, CLIENT = Role.SERVER, Role.CLIENT
CONNECTING, OPEN, LOCAL_CLOSING, CLOSED = State.CONNECTING, State.OPEN, State.LOCAL_CLOSING, State.CLOSED

# (state, what happened) → next state.
TRANSITIONS = {
    (CONNECTING, Trigger.HANDSHAKE_DONE): OPEN,
    (CONNECTING, Trigger.EOF): CLOSED,  # the TCP connection ended before the handshake did
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


def next_state(state: State, trigger: Trigger) -> State:
    """The state after `trigger` in `state`; InvalidState when the pair is not in TRANSITIONS."""
    try:
        return TRANSITIONS[(state, trigger)]
    except KeyError:
        raise InvalidState("no transition from %s on %s" % (state.name, trigger.name)) from None
