"""Benchmark of the sans-I/O WebSocket core beside the `websockets` library, in the same process run.

    tests/.venv/bin/python tests/benchmarks/ws_core.py

Prints masking throughput (MB/s) for several payload sizes and frames parsed per second for small and
medium masked client frames. Medians of REPEATS runs; compare the ratios, not the absolute figures.
"""

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from madace_status.websocket import frames  # noqa: E402
from madace_status.websocket.connection import CLIENT, SERVER, Connection  # noqa: E402

REPEATS = 7
MASK_SIZES = [125, 4096, 65536, 1024 * 1024, 16 * 1024 * 1024]
MASK_BYTES_PER_RUN = 64 * 1024 * 1024
PARSE_PAYLOAD_SIZES = [16, 1024]
PARSE_FRAMES_PER_RUN = 20000
FEED_CHUNK_BYTES = 64 * 1024


def median_seconds(function, repeats=REPEATS):
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def masking_rows():
    from websockets import utils as ws_utils
    try:
        from websockets.speedups import apply_mask as ws_c_apply_mask
    except ImportError:
        ws_c_apply_mask = None
    mask = os.urandom(4)
    rows = []
    for size in MASK_SIZES:
        data = os.urandom(size)
        loops = max(1, MASK_BYTES_PER_RUN // size // 4)

        def rate(apply_mask):
            seconds = median_seconds(lambda: [apply_mask(data, mask) for _ in range(loops)])
            return size * loops / seconds / 1e6

        ours = rate(frames.apply_mask)
        pure = rate(ws_utils.apply_mask)  # websockets' pure-Python fallback
        c_ext = rate(ws_c_apply_mask) if ws_c_apply_mask else float("nan")
        rows.append((size, ours, pure, c_ext))
    return rows


def parse_rows():
    from websockets.frames import Frame, Opcode
    from websockets.protocol import Protocol, Side, State
    rows = []
    for size in PARSE_PAYLOAD_SIZES:
        text = "x" * size
        client = Connection(CLIENT)
        stream = b"".join(client.send_text(text) for _ in range(PARSE_FRAMES_PER_RUN))
        chunks = [stream[i:i + FEED_CHUNK_BYTES] for i in range(0, len(stream), FEED_CHUNK_BYTES)]
        # The same payloads framed by websockets' own client serialiser, to feed its parser fairly.
        ws_client = Protocol(Side.CLIENT, state=State.OPEN)
        for _ in range(PARSE_FRAMES_PER_RUN):
            ws_client.send_frame(Frame(Opcode.TEXT, text.encode()))
        ws_stream = b"".join(ws_client.data_to_send())
        ws_chunks = [ws_stream[i:i + FEED_CHUNK_BYTES] for i in range(0, len(ws_stream), FEED_CHUNK_BYTES)]

        def ours():
            connection = Connection(SERVER, max_message_bytes=1 << 20)
            count = 0
            for chunk in chunks:
                connection.receive_data(chunk)
                for _ in connection.events():
                    count += 1
            assert count == PARSE_FRAMES_PER_RUN, count

        def theirs():
            protocol = Protocol(Side.SERVER, state=State.OPEN, max_size=1 << 20)
            count = 0
            for chunk in ws_chunks:
                protocol.receive_data(chunk)
                count += len(protocol.events_received())
            assert count == PARSE_FRAMES_PER_RUN, count

        ours_rate = PARSE_FRAMES_PER_RUN / median_seconds(ours)
        theirs_rate = PARSE_FRAMES_PER_RUN / median_seconds(theirs)
        # The same parser with its C masking swapped for its own pure-Python fallback: like for like.
        import websockets.frames as ws_frames
        from websockets.utils import apply_mask as pure_apply_mask
        c_apply_mask, ws_frames.apply_mask = ws_frames.apply_mask, pure_apply_mask
        try:
            theirs_pure_rate = PARSE_FRAMES_PER_RUN / median_seconds(theirs)
        finally:
            ws_frames.apply_mask = c_apply_mask
        rows.append((size, ours_rate, theirs_rate, theirs_pure_rate))
    return rows


def main():
    import websockets
    print("python %s, websockets %s, %d repeats, medians" % (sys.version.split()[0], websockets.__version__, REPEATS))
    print("\nmasking (MB/s)")
    print("%10s %12s %18s %16s %10s" % ("bytes", "madace", "websockets (py)", "websockets (C)", "ratio py"))
    for size, ours, pure, c_ext in masking_rows():
        print("%10d %12.0f %18.0f %16.0f %9.2fx" % (size, ours, pure, c_ext, ours / pure))
    print("\nmasked client text frames parsed per second (server side, 64 KiB reads)")
    print("%10s %12s %16s %16s %10s %10s" % ("payload", "madace", "websockets (C)", "websockets (py)",
                                             "ratio C", "ratio py"))
    for size, ours, theirs, theirs_pure in parse_rows():
        print("%10d %12.0f %16.0f %16.0f %9.2fx %9.2fx" % (size, ours, theirs, theirs_pure, ours / theirs,
                                                          ours / theirs_pure))


if __name__ == "__main__":
    main()
