"""The connected clients: the hub (subscriptions, seq, ring buffer, snapshots, heartbeats), its per-client
records and the broadcaster's hot path."""
