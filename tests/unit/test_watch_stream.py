"""The event stream client's body reader (watch/stream.py): chunked transfer coding, which nginx uses when it passes
a stream on over HTTP/1.1, decoded in linear time, and malformed coding refused (README, "Server-Sent Events")."""

import asyncio
import time

import pytest

from madace_status.watch.stream import _Body, _is_chunked


def lines_of(raw, chunked=True):
    async def read():
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        body, lines = _Body(reader, chunked), []
        while True:
            line = await body.readline()
            if not line:
                return lines
            lines.append(line)
    return asyncio.run(read())


def chunked(*pieces):
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def test_lines_split_across_chunks_come_out_whole():
    raw = chunked(b"id: r:1\ndata: {\"a\"", b":1}\n", b"\n: keep", b"-alive\n")
    assert lines_of(raw) == [b"id: r:1\n", b'data: {"a":1}\n', b"\n", b": keep-alive\n"]


def test_a_chunk_extension_is_ignored_and_a_plain_body_is_read_as_it_is():
    assert lines_of(b"5;name=value\r\nabc\nd\r\n0\r\n\r\n") == [b"abc\n", b"d"]
    assert lines_of(b"data: x\n\n", chunked=False) == [b"data: x\n", b"\n"]


@pytest.mark.parametrize("raw", [b"zz\r\nabc\r\n", b"-1\r\n", b"123456789\r\nx\r\n", b"\r\n"])
def test_malformed_chunked_coding_is_a_value_error(raw):
    with pytest.raises(ValueError):
        lines_of(raw)


def test_a_long_line_in_many_small_chunks_is_read_in_linear_time():
    raw = chunked(*[b"x" * 16] * 50_000 + [b"\n"])
    started = time.perf_counter()
    assert lines_of(raw) == [b"x" * 800_000 + b"\n"]
    assert time.perf_counter() - started < 5.0


def test_the_chunked_coding_is_recognised_however_the_header_is_written():
    assert _is_chunked("Content-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n")
    assert _is_chunked("transfer-encoding:CHUNKED")
    assert _is_chunked("Transfer-Encoding: gzip, chunked")
    assert not _is_chunked("Content-Type: text/event-stream\r\nX-Note: Transfer-Encoding: chunked")
    assert not _is_chunked("Transfer-Encoding: chunked, gzip")
