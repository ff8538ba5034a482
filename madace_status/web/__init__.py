"""The HTTP side: dashboard pages and the JSON API."""
