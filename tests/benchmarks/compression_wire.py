"""Benchmark: bytes on the wire for the welcome + snapshot of a 2,000-story, 100-workflow project, with and
without permessage-deflate, beside a `websockets` server (default compression) sending the same two messages.

    python tests/benchmarks/compression_wire.py [--stories 2000] [--workflows 100]

Generates the project (tests/benchmarks/status_cli.generate), starts the real `serve` on it, and opens raw
sockets: one offering nothing, one offering `permessage-deflate; client_max_window_bits` as Chromium does.
Each counts the frame bytes after the 101 until the welcome and the snapshot are in (the compressed ones are
inflated and checked against the plain ones). Then a `websockets` server with its default compression sends
the same two texts to a third socket making the same offer. Target: deflate ≥ 5× smaller than plain.
"""

import argparse
import asyncio
import base64
import json
import os
import socket
import sys
import tempfile
import threading
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _serve_bench as bench  # noqa: E402
import status_cli  # noqa: E402

TARGET_RATIO = 5.0
OFFER = "permessage-deflate; client_max_window_bits"
READ_TIMEOUT_S = 30.0


class WireReader:
    """A blocking raw client: the upgrade, then the first `count` text messages and the bytes they took."""

    def __init__(self, port, offer=None, path="/ws"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT_S)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1:%d" % port, "Upgrade: websocket", "Connection: Upgrade",
                 "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13", "User-Agent: bench"]
        if offer:
            lines.append("Sec-WebSocket-Extensions: " + offer)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        self.extensions = [line.split(":", 1)[1].strip() for line in head.decode("latin-1").split("\r\n")
                           if line.lower().startswith("sec-websocket-extensions:")]
        self.inflater = None  # one per connection: websockets takes over context between messages

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("server closed")
        self.buffer += chunk

    def _take(self, count):
        while len(self.buffer) < count:
            self._fill()
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def messages(self, count):
        """(texts, wire bytes) of the next `count` text messages (pings skipped, not counted)."""
        texts, wire = [], 0
        while len(texts) < count:
            first, second = self._take(2)
            length, header = second & 0x7F, 2
            if length == 126:
                length, header = int.from_bytes(self._take(2), "big"), 4
            elif length == 127:
                length, header = int.from_bytes(self._take(8), "big"), 10
            payload = self._take(length)
            if first & 0x0F != 1:
                continue
            assert first & 0x80, "fragmented messages are not expected here"
            wire += header + length
            if first & 0x40:
                if self.inflater is None:
                    self.inflater = zlib.decompressobj(-15)
                payload = self.inflater.decompress(payload + b"\x00\x00\xff\xff")
            texts.append(payload.decode("utf-8"))
        return texts, wire

    def close(self):
        self.sock.close()


def websockets_wire_bytes(texts):
    """Bytes a `websockets` server (default compression) puts on the wire for `texts`, to a deflate client."""
    from websockets.asyncio.server import serve
    ready, done = threading.Event(), threading.Event()
    port = []

    async def main():
        async def handler(websocket):
            for text in texts:
                await websocket.send(text)
            await asyncio.get_running_loop().run_in_executor(None, done.wait)

        async with serve(handler, "127.0.0.1", 0, ping_interval=None, max_size=None) as server:
            port.append(server.sockets[0].getsockname()[1])
            ready.set()
            await asyncio.get_running_loop().run_in_executor(None, done.wait)

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    ready.wait(READ_TIMEOUT_S)
    reader = WireReader(port[0], OFFER)
    try:
        received, wire = reader.messages(len(texts))
        assert received == texts
        return wire, reader.extensions
    finally:
        reader.close()
        done.set()
        thread.join(READ_TIMEOUT_S)


def run(args):
    print(bench.machine_note())
    with tempfile.TemporaryDirectory(prefix="madace-bench-") as parent:
        root = os.path.join(parent, "project")
        status_cli.generate(root, stories=args.stories, workflows=args.workflows)
        with bench.ServeProcess(root) as server:
            plain = WireReader(server.ws_port)
            plain_texts, plain_bytes = plain.messages(2)
            deflated = WireReader(server.ws_port, OFFER)
            deflate_texts, deflate_bytes = deflated.messages(2)
            plain.close()
            deflated.close()
    for plain_text, deflate_text in zip(plain_texts, deflate_texts):
        a, b = json.loads(plain_text), json.loads(deflate_text)
        a.pop("timestamp"), b.pop("timestamp")
        a["data"].pop("clientId", None), b["data"].pop("clientId", None)
        assert a == b, "the compressed messages do not inflate to the plain ones"
    snapshot = json.loads(plain_texts[1])["data"]
    print("project: %d stories, %d workflows; welcome %d B + snapshot %d B of JSON"
          % (args.stories, len(snapshot.get("workflows", [])), len(plain_texts[0]), len(plain_texts[1])))
    print("negotiated: %s" % deflated.extensions)
    theirs, their_extensions = websockets_wire_bytes(plain_texts)
    ratio = plain_bytes / deflate_bytes
    print("RESULT wire bytes for welcome + snapshot: plain %d B, ours with deflate %d B (%.1fx smaller), "
          "websockets with its default compression %d B (%.1fx smaller; negotiated %s)"
          % (plain_bytes, deflate_bytes, ratio, theirs, plain_bytes / theirs, their_extensions))
    print("target: >= %.0fx smaller %s" % (TARGET_RATIO, bench.verdict(ratio >= TARGET_RATIO)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stories", type=int, default=2000)
    parser.add_argument("--workflows", type=int, default=100)
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
