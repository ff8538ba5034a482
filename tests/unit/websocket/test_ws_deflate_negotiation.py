"""permessage-deflate negotiation (RFC 7692 §5, §7): the server's choice among offers, the client's check of the
answer, and the handshake objects that carry them."""

import itertools

import pytest

import websocket_helpers  # noqa: F401  (puts the checkout on sys.path)
from madace_status.websocket import deflate
from madace_status.websocket.errors import HandshakeError
from madace_status.websocket.handshake import ClientHandshake, RequestReader, accept_key
from madace_status.websocket.prepared import PreparedMessage


def offer(*params):
    return ["; ".join(("permessage-deflate",) + params)]


def answer_parameters(header):
    """The response header → (extension name, {parameter: value or None})."""
    [(name, params)] = deflate.parse_extensions([header])
    return name, dict(params)


# -- the server's answer: every combination of the four parameters --------------------------------------------

SERVER_WINDOW = [None, "8", "12", "15"]
CLIENT_WINDOW = [None, "", "9", "15"]  # "" is the parameter without a value


@pytest.mark.parametrize("server_nct, client_nct, server_bits, client_bits",
                         list(itertools.product([False, True], [False, True], SERVER_WINDOW, CLIENT_WINDOW)))
def test_every_combination_of_the_four_parameters_is_accepted_with_both_no_context_takeovers(
        server_nct, client_nct, server_bits, client_bits):
    params = []
    if server_nct:
        params.append("server_no_context_takeover")
    if client_nct:
        params.append("client_no_context_takeover")
    if server_bits is not None:
        params.append("server_max_window_bits=" + server_bits)
    if client_bits is not None:
        params.append("client_max_window_bits" + ("=" + client_bits if client_bits else ""))
    header, agreed = deflate.accept_offer(offer(*params))
    name, answer = answer_parameters(header)
    assert name == "permessage-deflate"
    # Always: each server message compressed on its own (one frame serves every client), no client context kept.
    assert "server_no_context_takeover" in answer and answer["server_no_context_takeover"] is None
    assert "client_no_context_takeover" in answer
    assert "client_max_window_bits" not in answer  # never limits the client, so never answered
    if server_bits is None:
        assert "server_max_window_bits" not in answer
        assert agreed.send_window_bits == 15
    else:
        assert answer["server_max_window_bits"] == server_bits  # accepted as offered
        assert agreed.send_window_bits == int(server_bits)
    assert agreed.receive_window_bits == 15
    assert agreed.receive_no_context_takeover is True


@pytest.mark.parametrize("bad", [
    "server_max_window_bits",  # needs a value
    "server_max_window_bits=7", "server_max_window_bits=16", "server_max_window_bits=08",
    "server_max_window_bits=abc", "server_max_window_bits=-9", "server_max_window_bits=1 0",
    "client_max_window_bits=7", "client_max_window_bits=16", "client_max_window_bits=010",
    "server_no_context_takeover=1", "client_no_context_takeover=true",
    "x_unknown", "mux", "server_no_context_takeover; server_no_context_takeover",
    "client_max_window_bits; client_max_window_bits=10",
    "server_max_window_bits=10; server_max_window_bits=11",
    'server_max_window_bits="1\\0x"', "server_max_window_bits=\"",
])
def test_an_offer_with_an_unknown_duplicate_or_invalid_parameter_is_declined(bad):
    assert deflate.accept_offer(offer(bad)) is None


def test_quoted_values_are_unquoted_before_they_are_checked():
    header, agreed = deflate.accept_offer(offer('server_max_window_bits="10"', 'client_max_window_bits="9"'))
    assert answer_parameters(header)[1]["server_max_window_bits"] == "10"
    assert agreed.send_window_bits == 10


def test_names_are_case_insensitive_and_spaces_are_allowed():
    header, agreed = deflate.accept_offer(["PerMessage-Deflate ;  Server_Max_Window_Bits = 11 "])
    assert agreed.send_window_bits == 11


def test_the_first_acceptable_offer_wins_and_declined_ones_are_skipped():
    header, agreed = deflate.accept_offer([
        "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=99",
        "permessage-deflate; server_max_window_bits=10, permessage-deflate; server_max_window_bits=12"])
    assert agreed.send_window_bits == 10
    assert answer_parameters(header)[1]["server_max_window_bits"] == "10"


def test_no_offer_or_only_other_extensions_or_malformed_headers_mean_no_compression():
    assert deflate.accept_offer([]) is None
    assert deflate.accept_offer(["x-webkit-deflate-frame"]) is None
    assert deflate.accept_offer(['permessage-deflate; server_max_window_bits="10']) is None  # open quote
    assert deflate.accept_offer(["permessage-deflate; =10", ";;", "pérmessage-deflate"]) is None


def test_an_8_bit_window_is_accepted_and_its_messages_go_uncompressed():
    # zlib cannot deflate with a 256-byte window: honoured by not compressing, which RFC 7692 §6 allows.
    header, agreed = deflate.accept_offer(offer("server_max_window_bits=8"))
    assert answer_parameters(header)[1]["server_max_window_bits"] == "8"
    assert not deflate.can_compress(agreed)
    assert deflate.compress(b"x" * 10000, agreed.send_window_bits) is None
    assert PreparedMessage(b"x" * 10000).frame_for(agreed)[0] == 0x81  # FIN + text, RSV1 clear


# -- the client's check of the answer ---------------------------------------------------------------------------

@pytest.mark.parametrize("server_nct, client_nct, server_bits, client_bits",
                         list(itertools.product([False, True], [False, True], SERVER_WINDOW, [None, "8", "11", "15"])))
def test_every_valid_answer_is_accepted_by_the_client(server_nct, client_nct, server_bits, client_bits):
    params = []
    if server_nct:
        params.append("server_no_context_takeover")
    if client_nct:
        params.append("client_no_context_takeover")
    if server_bits:
        params.append("server_max_window_bits=" + server_bits)
    if client_bits:
        params.append("client_max_window_bits=" + client_bits)
    agreed = deflate.accept_response(offer(*params))
    assert agreed.receive_no_context_takeover is server_nct
    assert agreed.receive_window_bits == int(server_bits or 15)
    assert agreed.send_window_bits == int(client_bits or 15)


@pytest.mark.parametrize("answer", [
    ["permessage-deflate; client_max_window_bits"],  # a response must give the value
    ["permessage-deflate; server_max_window_bits=16"], ["permessage-deflate; client_max_window_bits=7"],
    ["permessage-deflate; x=1"], ["permessage-deflate; server_no_context_takeover; server_no_context_takeover"],
    ["permessage-deflate; client_no_context_takeover=1"],
    ["permessage-deflate", "permessage-deflate"], ["permessage-deflate, x-other"], ["x-other"],
])
def test_an_answer_that_cannot_be_honoured_fails_the_connection(answer):
    with pytest.raises(deflate.NegotiationError):
        deflate.accept_response(answer)


def test_the_client_offers_deflate_without_context_takeover_accepting_any_client_window():
    handshake = ClientHandshake("ws://example.com/")
    request = RequestReader().feed(handshake.request())
    assert request.headers.get_all("Sec-WebSocket-Extensions") == [
        "permessage-deflate; client_no_context_takeover; client_max_window_bits"]
    assert "Sec-WebSocket-Extensions" not in RequestReader().feed(
        ClientHandshake("ws://example.com/", compression=False).request()).headers


def _response(handshake, extension):
    lines = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Accept: " + accept_key(handshake.key)]
    if extension is not None:
        lines.append("Sec-WebSocket-Extensions: " + extension)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_the_client_handshake_keeps_what_the_server_agreed_or_none_when_it_declined():
    handshake = ClientHandshake("ws://example.com/")
    assert handshake.feed(_response(handshake, "permessage-deflate; server_no_context_takeover; "
                                               "client_max_window_bits=10"))
    assert handshake.deflate.send_window_bits == 10 and handshake.deflate.receive_no_context_takeover
    declined = ClientHandshake("ws://example.com/")
    assert declined.feed(_response(declined, None)) and declined.deflate is None


def test_a_bad_answer_is_a_handshake_error_naming_the_header():
    handshake = ClientHandshake("ws://example.com/")
    with pytest.raises(HandshakeError) as info:
        handshake.feed(_response(handshake, "permessage-deflate; client_max_window_bits"))
    assert "Sec-WebSocket-Extensions" in info.value.reason
