"""Echo testee for the Autobahn|Testsuite cases (run through kosoku), built only on the public API.

    python tests/conformance/testee.py --port PORT                          echo server on 127.0.0.1:PORT
    python tests/conformance/testee.py --client ws://127.0.0.1:PORT --agent NAME
        client: getCaseCount, then runCase for every case (echoing every message), then updateReports
"""

import argparse
import asyncio
import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from madace_status.websocket import ConnectionClosed, connect, serve  # noqa: E402

MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # Autobahn section 9 sends messages up to 16 MiB
# kosoku's 12.x/13.x cases can only hash an echoed text message that came back compressed (an uncompressed one,
# which RFC 7692 §6 allows, fails them with "Strings must be encoded before hashing"), so the testee compresses
# every message, however short.
COMPRESS_MIN_BYTES = 0


def echo(websocket, message):
    try:
        websocket.send(message)
    except ConnectionClosed:
        pass  # the peer closed while the message was on its way


async def run_server(port):
    server = await serve(on_message=echo, host="127.0.0.1", port=port, max_message_bytes=MAX_MESSAGE_BYTES,
                         compress_min_bytes=COMPRESS_MIN_BYTES)
    print("testee listening on ws://127.0.0.1:%d" % server.port, flush=True)
    stop = asyncio.get_running_loop().create_future()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, lambda: stop.done() or stop.set_result(None))
    await stop
    await server.close()


async def run_client(base_url, agent):
    websocket = await connect(base_url + "/getCaseCount")
    count = int(await websocket.recv())
    await websocket.wait_closed()
    for case in range(1, count + 1):
        websocket = await connect("%s/runCase?case=%d&agent=%s" % (base_url, case, agent),
                                  on_message=echo, max_message_bytes=MAX_MESSAGE_BYTES,
                                  compress_min_bytes=COMPRESS_MIN_BYTES)
        await websocket.wait_closed()
    websocket = await connect("%s/updateReports?agent=%s" % (base_url, agent))
    await websocket.wait_closed()
    print("testee client ran %d cases" % count, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--port", type=int, help="run the echo server on 127.0.0.1:PORT")
    mode.add_argument("--client", metavar="URL", help="run the client testee against the fuzzing server at URL")
    parser.add_argument("--agent", default="madace_status", help="agent name reported to the fuzzing server")
    args = parser.parse_args()
    if args.client:
        asyncio.run(run_client(args.client.rstrip("/"), args.agent))
    else:
        asyncio.run(run_server(args.port))


if __name__ == "__main__":
    main()
