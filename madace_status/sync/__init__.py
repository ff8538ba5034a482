"""Live updates: change detection (`detect/`), the connected clients (`clients/`), the flow history
(`history/`), and the sync service tying them to the WebSocket server (madace_status/README.md, "Code layout").

This module is the package's interface: code outside `sync/` imports these names from here, never a module
inside it (tests/unit/test_layers.py holds every module to that)."""

from __future__ import annotations

from madace_status.sync.clients.admission import WEBSOCKET_PATH
from madace_status.sync.clients.hub import HEARTBEAT_S
from madace_status.sync.clients.streams import MAX_STREAMS
from madace_status.sync.clients.subscribers import SubscriptionError, parse_topics, parse_workflows
from madace_status.sync.detect.watch_select import SAFETY_RESCAN_S, ChangeSignal
from madace_status.sync.detect.watcher import project_watcher
from madace_status.sync.history.samples import HISTORY_MAX_SAMPLES, Sample as HistorySample
from madace_status.sync.history.store import HistoryStore, read_history
from madace_status.sync.replica import Replica, ReplicaOutOfStep, parse_message
from madace_status.sync.service import DEFAULT_WS_PORT, POLL_INTERVAL_S, SyncService

__all__ = [
    "DEFAULT_WS_PORT", "HEARTBEAT_S", "HISTORY_MAX_SAMPLES", "MAX_STREAMS", "POLL_INTERVAL_S", "SAFETY_RESCAN_S",
    "WEBSOCKET_PATH", "ChangeSignal", "HistorySample", "HistoryStore", "Replica", "ReplicaOutOfStep",
    "SubscriptionError", "SyncService", "parse_message", "parse_topics", "parse_workflows", "project_watcher",
    "read_history",
]
