"""Property tests (hypothesis) for the sans-I/O core: frames round-trip, arbitrary bytes never escape as
exceptions, and how a byte stream is chunked never changes what comes out."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from websocket_helpers import close_code_and_reason, decode_frames, summary
from madace_status.websocket import frames
from madace_status.websocket.connection import (
    CLIENT, CLOSED, OPEN, SERVER, BinaryMessage, CloseReceived, Connection, Ping, Pong, TextMessage)
from madace_status.websocket.errors import ProtocolError
from madace_status.websocket.frames import FrameParser, serialize_frame

TEXT, BINARY, CONT = frames.OP_TEXT, frames.OP_BINARY, frames.OP_CONTINUATION
PING, PONG, CLOSE = frames.OP_PING, frames.OP_PONG, frames.OP_CLOSE
FAILURE_CODES = {1002, 1007, 1009}
VALID_CLOSE_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

masks = st.binary(min_size=4, max_size=4)
control_payloads = st.binary(max_size=125)
# Mostly small payloads, sometimes one right at a length-form boundary (built, not drawn byte by byte).
boundary_payloads = st.tuples(st.sampled_from([125, 126, 127, 65535, 65536, 65537]),
                              st.binary(min_size=1, max_size=8)).map(
    lambda pair: (pair[1] * (pair[0] // len(pair[1]) + 1))[:pair[0]])
data_payloads = st.one_of(st.binary(max_size=300), boundary_payloads)


@st.composite
def any_frame(draw):
    """(opcode, payload, fin, mask) of any valid frame."""
    opcode = draw(st.sampled_from([CONT, TEXT, BINARY, CLOSE, PING, PONG]))
    if opcode in frames.CONTROL_OPCODES:
        payload, fin = draw(control_payloads), True
    else:
        payload, fin = draw(data_payloads), draw(st.booleans())
    return opcode, payload, fin, draw(st.none() | masks)


def split_at(data, cuts):
    """`data` cut at the given offsets (any order, duplicates allowed)."""
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    chunks, start = [], 0
    for point in points + [len(data)]:
        chunks.append(data[start:point])
        start = point
    return [chunk for chunk in chunks if chunk]


def run(conn, chunks):
    """Feed `chunks` one by one, draining events after each; what came out, comparable between runs."""
    events = []
    for chunk in chunks:
        if not chunk:
            continue  # b"" would mean EOF
        conn.receive_data(chunk)
        events.extend(summary(event) for event in conn.events())
    sent = decode_frames(conn.data_to_send(), masked=conn.role == CLIENT)
    # A failing close's reason text may say more or less depending on where the bad byte was seen: keep the code.
    sent = [(opcode, close_code_and_reason(payload)[0] if opcode == CLOSE else payload) for opcode, _, payload in sent]
    failure = conn.failure.close_code if conn.failure is not None else None
    return events, sent, failure, conn.state, conn.close_code


# -- frames round-trip ---------------------------------------------------------------------------------------

@PROPERTY_SETTINGS
@given(frame=any_frame(), cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_any_serialized_frame_parses_back_to_the_same_frame_however_it_is_chunked(frame, cuts):
    opcode, payload, fin, mask = frame
    data = serialize_frame(opcode, payload, fin, mask)
    parser = FrameParser(expect_masked=mask is not None)
    pieces = []
    for chunk in split_at(data, cuts):
        parser.feed(chunk)
        while True:
            piece = parser.next_piece()
            if piece is None:
                break
            pieces.append(piece)
    assert pieces, "a complete frame produced nothing"
    assert b"".join(piece.payload for piece in pieces) == payload
    assert all((piece.opcode, piece.fin, piece.frame_length) == (opcode, fin, len(payload)) for piece in pieces)
    assert [piece.first for piece in pieces] == [True] + [False] * (len(pieces) - 1)
    assert [piece.last for piece in pieces] == [False] * (len(pieces) - 1) + [True]
    if opcode in frames.CONTROL_OPCODES:
        assert len(pieces) == 1


message_actions = st.lists(st.one_of(
    st.tuples(st.just("text"), st.text(max_size=40)),
    st.tuples(st.just("binary"), data_payloads),
    st.tuples(st.just("ping"), control_payloads),
    st.tuples(st.just("pong"), control_payloads),
    st.tuples(st.just("fragments"), st.booleans(), st.lists(st.binary(max_size=20), min_size=1, max_size=6)),
), max_size=8)


@PROPERTY_SETTINGS
@given(sender_role=st.sampled_from([CLIENT, SERVER]), actions=message_actions,
       close=st.none() | st.tuples(st.sampled_from(VALID_CLOSE_CODES), st.text(max_size=20)))
def test_anything_one_connection_sends_the_other_receives_unchanged(sender_role, actions, close):
    sender = Connection(sender_role)
    receiver = Connection(SERVER if sender_role == CLIENT else CLIENT)
    wire, expected = [], []
    for action in actions:
        kind = action[0]
        if kind == "text":
            wire.append(sender.send_text(action[1]))
            expected.append(("text", action[1]))
        elif kind == "binary":
            wire.append(sender.send_binary(action[1]))
            expected.append(("binary", action[1]))
        elif kind == "ping":
            wire.append(sender.send_ping(action[1]))
            expected.append(("ping", action[1]))
        elif kind == "pong":
            wire.append(sender.send_pong(action[1]))
            expected.append(("pong", action[1]))
        else:
            _, is_text, parts = action
            if is_text:  # keep the whole message valid UTF-8; the cuts may fall inside a character
                parts = [part.decode("latin-1").encode("utf-8") for part in parts]
            for index, part in enumerate(parts):
                opcode = (TEXT if is_text else BINARY) if index == 0 else CONT
                wire.append(sender.send_fragment(opcode, part, index == len(parts) - 1))
            joined = b"".join(parts)
            expected.append(("text", joined.decode("utf-8")) if is_text else ("binary", joined))
    if close is not None:
        wire.append(sender.send_close(close[0], close[1]))
        expected.append(("close", close[0], close[1]))
    events, _, failure, state, _ = run(receiver, [b"".join(wire)])
    assert failure is None
    assert events == expected
    assert state == (CLOSED if close is not None else OPEN)


# -- arbitrary bytes -----------------------------------------------------------------------------------------

@st.composite
def noisy_streams(draw, masked):
    """Valid frames (for a receiver expecting `masked`) mixed with arbitrary bytes and broken frames."""
    parts = []
    for _ in range(draw(st.integers(min_value=0, max_value=8))):
        kind = draw(st.sampled_from(["frame", "frame", "garbage", "wrong-mask", "bad-text", "bad-close"]))
        mask = draw(masks) if masked else None
        if kind == "frame":
            opcode, payload, fin, _ = draw(any_frame())
            if opcode == CLOSE and payload:
                payload = draw(st.sampled_from(VALID_CLOSE_CODES + [1, 1005, 2000, 5000])).to_bytes(2, "big") + payload[2:]
            parts.append(serialize_frame(opcode, payload, fin, mask))
        elif kind == "garbage":
            parts.append(draw(st.binary(max_size=40)))
        elif kind == "wrong-mask":
            parts.append(serialize_frame(BINARY, draw(st.binary(max_size=10)), True, None if masked else draw(masks)))
        elif kind == "bad-text":
            bad = draw(st.sampled_from([b"\xff", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"\xe2\x82"]))
            parts.append(serialize_frame(TEXT, draw(st.binary(max_size=5)).decode("latin-1").encode("utf-8") + bad,
                                         draw(st.booleans()), mask))
        else:
            parts.append(serialize_frame(CLOSE, draw(st.sampled_from([b"\x03", b"\x03\xe8\xff", b"\x03\xed"])), True,
                                         mask))
    return b"".join(parts)


@st.composite
def receiver_and_stream(draw):
    role = draw(st.sampled_from([SERVER, CLIENT]))
    stream = draw(st.one_of(st.binary(max_size=400), noisy_streams(masked=role == SERVER)))
    limit = draw(st.sampled_from([16, 1000, 70000, 64 * 1024 * 1024]))
    return role, stream, limit


@PROPERTY_SETTINGS
@given(case=receiver_and_stream(), cuts=st.lists(st.integers(min_value=0), max_size=10))
def test_arbitrary_bytes_never_raise_and_any_failure_is_a_protocol_error_with_a_valid_close_code(case, cuts):
    role, stream, limit = case
    conn = Connection(role, max_message_bytes=limit)
    for chunk in split_at(stream, cuts):
        conn.receive_data(chunk)
        for event in conn.events():
            assert isinstance(event, (TextMessage, BinaryMessage, Ping, Pong, CloseReceived))
            if isinstance(event, TextMessage):
                assert isinstance(event.data, str)
    sent = decode_frames(conn.data_to_send(), masked=role == CLIENT)
    closes = [payload for opcode, _, payload in sent if opcode == CLOSE]
    assert all(opcode in (PONG, CLOSE) for opcode, _, _ in sent)
    assert len(closes) <= 1
    if conn.failure is not None:
        assert isinstance(conn.failure, ProtocolError)
        assert conn.failure.close_code in FAILURE_CODES
        assert len(closes) == 1 and close_code_and_reason(closes[0])[0] == conn.failure.close_code
    conn.receive_data(b"")  # EOF afterwards is always fine
    assert conn.state == CLOSED


# -- chunking never changes the outcome ----------------------------------------------------------------------

@st.composite
def valid_streams(draw, masked):
    """A valid byte stream for a receiver expecting `masked`, and the events it must give."""
    wire, expected = [], []

    def frame(opcode, payload, fin=True):
        wire.append(serialize_frame(opcode, payload, fin, draw(masks) if masked else None))

    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        kind = draw(st.sampled_from(["text", "binary", "ping", "pong"]))
        if kind in ("ping", "pong"):
            payload = draw(control_payloads)
            frame(PING if kind == "ping" else PONG, payload)
            expected.append((kind, payload))
            continue
        if kind == "text":
            text = draw(st.text(max_size=30))
            data = text.encode("utf-8")
        else:
            data = draw(data_payloads)
        cuts = draw(st.lists(st.integers(min_value=0), max_size=4))
        parts = [data[a:b] for a, b in zip([0] + sorted(c % (len(data) + 1) for c in cuts),
                                           sorted(c % (len(data) + 1) for c in cuts) + [len(data)])]
        interleaved = draw(st.none() | control_payloads)
        for index, part in enumerate(parts):
            frame((TEXT if kind == "text" else BINARY) if index == 0 else CONT, part, index == len(parts) - 1)
            if index == 0 and interleaved is not None and len(parts) > 1:
                frame(PING, interleaved)
                expected.append(("ping", interleaved))
        expected.append(("text", text) if kind == "text" else ("binary", data))
    ending = draw(st.sampled_from(["open", "close", "empty-close"]))
    if ending == "close":
        code, reason = draw(st.sampled_from(VALID_CLOSE_CODES)), draw(st.text(max_size=20))
        frame(CLOSE, code.to_bytes(2, "big") + reason.encode("utf-8"))
        expected.append(("close", code, reason))
        wire.append(draw(st.binary(max_size=30)))  # never looked at
    elif ending == "empty-close":
        frame(CLOSE, b"")
        expected.append(("close", 1005, ""))
    return b"".join(wire), expected


@st.composite
def role_and_valid_stream(draw):
    role = draw(st.sampled_from([SERVER, CLIENT]))
    stream, expected = draw(valid_streams(masked=role == SERVER))
    return role, stream, expected


@PROPERTY_SETTINGS
@given(case=role_and_valid_stream(), cuts=st.lists(st.integers(min_value=0), max_size=16))
def test_any_split_of_a_valid_stream_yields_the_same_events_as_feeding_it_whole(case, cuts):
    role, stream, expected = case
    whole = run(Connection(role), [stream])
    chunked = run(Connection(role), split_at(stream, cuts))
    assert whole[0] == expected
    assert chunked == whole
    assert whole[2] is None


@PROPERTY_SETTINGS
@given(case=role_and_valid_stream())
def test_a_valid_stream_fed_one_byte_at_a_time_yields_the_same_events(case):
    role, stream, expected = case
    if len(stream) > 5000:
        stream = stream[:5000]  # keep the byte-by-byte run short; a cut-off frame simply waits
        expected = None
    whole = run(Connection(role), [stream])
    byte_by_byte = run(Connection(role), [stream[i:i + 1] for i in range(len(stream))])
    assert byte_by_byte == whole
    if expected is not None:
        assert whole[0] == expected


@PROPERTY_SETTINGS
@given(case=receiver_and_stream(), cuts=st.lists(st.integers(min_value=0), max_size=16))
def test_any_split_of_an_arbitrary_stream_yields_the_same_events_and_failure_as_feeding_it_whole(case, cuts):
    role, stream, limit = case
    whole = run(Connection(role, max_message_bytes=limit), [stream])
    chunked = run(Connection(role, max_message_bytes=limit), split_at(stream, cuts))
    assert chunked == whole
