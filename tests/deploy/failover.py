"""Clients that follow a project through a proxy in front of replicas, as the dashboard and `status --watch` do:
each keeps a replica (sync.replica's rules) and, when its connection drops, reconnects through the proxy with its
position (runId + since) after a short jittered wait. Used by test_replicas.py, which prints the reconnect times.

A client's reconnect time is from the moment its connection dropped to the first snapshot (a resync from the new
replica) or replayed event that makes it live again."""

import asyncio
import contextlib
import random
import time

import websockets

from madace_status.sync import Replica, parse_message

RECONNECT_JITTER_S = 0.25  # the first retry's wait: spread over this, as the clients' backoff does
OPEN_TIMEOUT_S = 5.0


class FollowingClient:
    def __init__(self, url, ssl_context, root):
        self.url = url
        self.ssl_context = ssl_context
        self.replica = Replica(root)
        self.live = asyncio.Event()
        self.dropped_at = None  # when the first connection dropped (monotonic)
        self.back_at = None  # when it was live again after that
        self.connections = 0
        self.snapshots = 0  # the first one at the first connection; a resumed one gets the missed events instead
        self.failure = None
        self.stopping = False

    async def run(self):
        while not self.stopping:
            run_id, since = self.replica.position()
            query = "source=failover" + ("&runId=%s&since=%d" % (run_id, since) if run_id else "")
            try:
                async with websockets.connect("%s?%s" % (self.url, query), ssl=self.ssl_context, max_size=None,
                                              open_timeout=OPEN_TIMEOUT_S, ping_interval=None) as connection:
                    self.connections += 1
                    async for text in connection:
                        self._receive(text)
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
                pass
            self.live.clear()
            if self.stopping:
                return
            if self.dropped_at is None and self.connections:
                self.dropped_at = time.monotonic()
            await asyncio.sleep(random.uniform(0, RECONNECT_JITTER_S))

    def _receive(self, text):
        message = parse_message(text)
        if message is None:
            return
        kind = message[0]
        self.snapshots += kind == "snapshot"
        try:
            self.replica.receive(*message)
        except Exception as error:  # noqa: BLE001 — any failure to apply is what the test reports
            self.failure = self.failure or "%s: %s" % (type(error).__name__, error)
        if kind != "ping" and not self.live.is_set():
            self.live.set()
            if self.dropped_at is not None and self.back_at is None:
                self.back_at = time.monotonic()

    @property
    def reconnect_s(self):
        return None if self.dropped_at is None or self.back_at is None else self.back_at - self.dropped_at


@contextlib.asynccontextmanager
async def following(count, url, ssl_context, root):
    """`count` FollowingClients running for the block; all stopped, and their tasks ended, on the way out."""
    clients = [FollowingClient(url, ssl_context, root) for _ in range(count)]
    tasks = [asyncio.ensure_future(client.run()) for client in clients]
    try:
        yield clients
    finally:
        for client in clients:
            client.stopping = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))] if ordered else float("nan")
