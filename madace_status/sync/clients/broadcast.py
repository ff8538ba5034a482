"""The broadcaster's hot path: one event's frame written to every subscriber in one tight loop.

The frame is serialised once (and compressed at most once per window size, websocket.PreparedMessage);
each recipient then costs a few attribute reads and one `transport.write` — no await, no task, no per-client
encoding — so 1,000 clients cost little more than the 1,000 send() system calls themselves. What went out is
counted once, after the loop (Metrics.count_sent). (README, "The WebSocket protocol")
"""

from __future__ import annotations

from typing import Iterable

from madace_status.sync.clients.subscribers import Client, Event, Metrics
from madace_status.websocket import ConnectionClosed

__all__ = ["fan_out"]


def fan_out(event: Event, clients: Iterable[Client], high_water_bytes: int, metrics: Metrics) -> list[Client]:
    """Write `event` to every client of `clients` that wants it; returns the clients found over
    `high_water_bytes` of unsent output (the hub holds them back for a snapshot). Counts into `metrics`."""
    topic, workflow = event.topic, event.workflow
    frame = event.frame
    shared = event.outgoing
    held: list[Client] = []
    sent = deflate_sent = deflate_bytes = dropped = 0
    window_bits = -1  # the window of `deflate_frame`: clients almost always share one, so no lookup per client
    deflate_frame = b""
    for client in clients:
        if (topic not in client.topics and topic is not None) or (
                workflow is not None and client.workflows is not None and workflow not in client.workflows):
            continue  # not subscribed: subscribers.subscribed, inlined (once per recipient)
        if client.snapshot_due is not None:  # lagging, or a snapshot on its way that will show this event
            dropped += 1
            continue
        websocket = client.websocket
        if websocket.buffered_amount > high_water_bytes:
            held.append(client)
            dropped += 1
            continue
        params = client.deflate
        try:
            if params is None:
                websocket.send_frame(frame)
            else:
                if params.send_window_bits != window_bits:
                    window_bits = params.send_window_bits
                    deflate_frame = shared.frame_for(params)
                websocket.send_frame(deflate_frame)
                deflate_sent += 1
                deflate_bytes += len(deflate_frame)
        except ConnectionClosed:
            continue
        sent += 1
    metrics.dropped_total += dropped
    metrics.count_sent(sent, (sent - deflate_sent) * len(frame) + deflate_bytes, deflate_sent * len(frame),
                       deflate_bytes)
    return held
