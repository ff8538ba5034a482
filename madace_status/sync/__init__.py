"""Live updates: file watcher, event diff, hub, and the sync service tying them to the WebSocket server."""
