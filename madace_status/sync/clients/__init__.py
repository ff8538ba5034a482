"""The connected clients: the hub (subscriptions, seq, ring buffer, snapshots, heartbeats), its per-client
records and the broadcaster's hot path (README, "The WebSocket protocol"). Used through `madace_status.sync`."""

from __future__ import annotations

__all__: list[str] = []
