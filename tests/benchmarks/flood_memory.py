"""Benchmark: how much a client that never reads can grow `serve`'s memory by flooding requests (issue 10 §4).

    tests/.venv/bin/python tests/benchmarks/flood_memory.py [--messages 20000] [--variants subscribe,resume,ping]
                                                           [--settle 2]

For each variant a fresh `python -m madace_status serve` (on a copy of tests/fixtures/sample-project) gets one
raw-socket client with a tiny receive window (SO_RCVBUF 4 KiB, set before connect) that completes the
handshake, then sends MESSAGES small masked text frames and never reads a byte:
  subscribe   {"type":"subscribe","topics":["workflows","stories","epics"]} (each answered by a snapshot);
  resume      {"type":"resume","runId":"x","since":0} (an unknown run: each answered by a resync snapshot);
  ping        {"type":"ping","timestamp":1} (each answered by a pong).
The frames are sent in batches with a 2 s send timeout: when the server stops reading (backpressure) the
sends block, and the script stops sending and says how much of the flood got through. VmRSS of the server
(/proc/<pid>/status) is read before the flood (after one ordinary client got its welcome and snapshot) and
every 0.1 s during the flood and for SETTLE seconds after it; the peak growth is printed with the ratio
peak / before. The issue's figure before the fix: 20,000 subscribes (1.3 MB sent) took the server from 34 MB
to 200 MB RSS. Target: growth under 16 MiB whatever is sent. Takes about 15 s.
"""

import argparse
import json
import os
import socket
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _serve_bench as bench  # noqa: E402

TARGET_GROWTH_KIB = 16 * 1024
RECEIVE_BUFFER_BYTES = 4096
SEND_TIMEOUT_S = 2.0
BATCH_MESSAGES = 200
MESSAGES = {
    "subscribe": {"type": "subscribe", "topics": ["workflows", "stories", "epics"]},
    "resume": {"type": "resume", "runId": "not-this-run", "since": 0},
    "ping": {"type": "ping", "timestamp": 1},
}


def masked_frame(payload):
    mask = os.urandom(4)
    header = struct.pack("!BB", 0x81, 0x80 | len(payload)) if len(payload) < 126 else \
        struct.pack("!BBH", 0x81, 0x80 | 126, len(payload))
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def open_raw(host, port, receive_buffer=None):
    sock = socket.socket()
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(10)
    sock.connect((host, port))
    sock.sendall(bench.handshake_request(host, port))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)  # byte by byte: nothing after the 101 is read
        if not chunk:
            raise SystemExit("the server closed the connection during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise SystemExit("handshake refused: %r" % head[:80])
    return sock


def flood(server, variant, count, settle):
    reader = open_raw(server.ws_host, server.ws_port)  # an ordinary client: reads its welcome and snapshot
    reader.settimeout(2)
    try:
        reader.recv(1 << 20)
    except socket.timeout:
        pass
    time.sleep(0.5)
    before = server.rss_kib()
    peak = before
    sock = open_raw(server.ws_host, server.ws_port, RECEIVE_BUFFER_BYTES)
    frame = masked_frame(json.dumps(MESSAGES[variant], separators=(",", ":")).encode())
    sock.settimeout(SEND_TIMEOUT_S)
    sent_messages = sent_bytes = 0
    blocked = False
    started = time.monotonic()
    while sent_messages < count:
        batch = min(BATCH_MESSAGES, count - sent_messages)
        data = frame * batch
        try:
            sock.sendall(data)
        except socket.timeout:
            blocked = True
            break
        except OSError as error:
            print("  the server closed the flooding connection: %s" % error)
            break
        sent_messages += batch
        sent_bytes += len(data)
        peak = max(peak, server.rss_kib())
    flood_s = time.monotonic() - started
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        peak = max(peak, server.rss_kib())
        time.sleep(0.1)
    after = server.rss_kib()
    sock.close()
    reader.close()
    return before, peak, after, sent_messages, sent_bytes, blocked, flood_s


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--variants", default="subscribe,resume,ping")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds of RSS sampling after the flood")
    args = parser.parse_args()
    print(bench.machine_note())
    worst = 0
    with tempfile.TemporaryDirectory() as parent:
        for variant in args.variants.split(","):
            root = bench.make_project(tempfile.mkdtemp(dir=parent))
            with bench.ServeProcess(root) as server:
                time.sleep(0.5)
                before, peak, after, messages, sent, blocked, seconds = flood(server, variant, args.messages,
                                                                              args.settle)
            growth = peak - before
            worst = max(worst, growth)
            print("%-9s sent %6d of %d messages (%.2f MB) in %.1f s%s" % (
                variant, messages, args.messages, sent / 1e6, seconds,
                "; then the server stopped reading (sends blocked %.0f s)" % SEND_TIMEOUT_S if blocked else ""))
            print("          RSS before %.1f MB, peak %.1f MB (+%.1f MB, %.2fx), after %.1f MB" % (
                before / 1024, peak / 1024, growth / 1024, peak / before, after / 1024))
    print("worst growth %.1f MB; target < %.0f MB: %s" % (worst / 1024, TARGET_GROWTH_KIB / 1024,
                                                         bench.verdict(worst < TARGET_GROWTH_KIB)))


if __name__ == "__main__":
    main()
